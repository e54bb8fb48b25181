"""Numerical gradients by centered differences, to check backpropagation.

    ∂f/∂xᵢ ≈ (f(x + h eᵢ) − f(x − h eᵢ)) / (2h),   error O(h²)

Use float64 and h ≈ 1e-5: a smaller h loses digits to rounding, a larger
one to the O(h²) term. Compare with ``rel_error``: below 1e-7 is good,
above 1e-2 means the analytic gradient is wrong.
"""

import numpy as np


def rel_error(a, b):
    """max|a − b| / max(1e-8, max(|a| + |b|)), a scale-free distance between arrays.

    The denominator uses the largest magnitude of the whole array, so entries
    that should be exactly 0 do not blow the ratio up; 1e-8 guards 0/0.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"Cannot compare arrays of shapes {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1e-8, float(np.max(np.abs(a) + np.abs(b)))))


def numerical_gradient(f, x, h=1e-5):
    """Centered-difference gradient of a scalar function f at x.

    f: callable taking x (it is called on x modified in place and must not
    keep it); x: float64 array of any shape. Returns an array shaped like x.
    x is restored exactly afterwards.
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise TypeError(
            "numerical_gradient needs a float64 numpy array: in float32 the "
            "difference f(x+h) - f(x-h) is mostly rounding noise."
        )
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError("x must be contiguous so it can be perturbed in place")
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        f_plus = float(f(x))
        flat[i] = old - h
        f_minus = float(f(x))
        flat[i] = old
        gflat[i] = (f_plus - f_minus) / (2 * h)
    return grad


def model_numerical_gradients(model, X, y, h=1e-5):
    """Numerical ∂L/∂θ for every array of ``model.get_weights()``, in that order."""
    params = model._params()
    grads = []
    for p in params:
        grads.append(numerical_gradient(lambda _: model.gradients(X, y)[0], p, h))
    return grads


def check_model_gradients(model, X, y, h=1e-5):
    """Compare backprop with numerical gradients for a compiled float64 model.

    Returns a dict {"W1": err, "b1": err, ...} of relative errors (see rel_error).
    """
    if model.dtype != np.float64:
        raise TypeError("Gradient checks need a float64 model: Sequential(..., dtype=np.float64)")
    _, analytic = model.gradients(X, y)
    numeric = model_numerical_gradients(model, X, y, h)
    names = [f"{'Wb'[i % 2]}{i // 2 + 1}" for i in range(len(analytic))]
    return {n: rel_error(a, g) for n, a, g in zip(names, analytic, numeric)}
