"""Activation functions g(z) and their derivatives.

Every function works elementwise on an array of any shape, except softmax,
which normalises each row: ``Z: (m, K) -> A: (m, K)``. Inputs keep their float
dtype, so a float32 network stays float32.

``backward(dA, Z, A)`` is the vector-Jacobian product dZ = dA * g'(Z) used by
backpropagation. Elementwise activations use ``derivative`` (sigmoid and tanh
write it in terms of A, which the forward pass already computed); softmax
couples the entries of a row, so it needs the general form.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


def _float(z):
    z = np.asarray(z)
    return z if z.dtype.kind == "f" else z.astype(np.float64)


def identity(z):
    """g(z) = z.  Z: any shape -> same shape."""
    return _float(z)


def identity_derivative(z):
    """g'(z) = 1."""
    return np.ones_like(_float(z))


def sigmoid(z):
    """σ(z) = 1 / (1 + e^(-z)), stable for any |z| (no overflow warning, no nan).

    Only e^(-|z|) is ever computed, which lies in (0, 1].
    """
    z = _float(z)
    e = np.exp(-np.abs(z))
    r = 1.0 / (1.0 + e)
    return np.where(z >= 0, r, e * r)


def sigmoid_derivative(z):
    """σ'(z) = σ(z) (1 - σ(z))."""
    s = sigmoid(z)
    return s * (1.0 - s)


def tanh(z):
    """tanh(z), in (-1, 1)."""
    return np.tanh(_float(z))


def tanh_derivative(z):
    """tanh'(z) = 1 - tanh(z)^2."""
    t = np.tanh(_float(z))
    return 1.0 - t * t


def relu(z):
    """ReLU(z) = max(0, z)."""
    z = _float(z)
    return np.maximum(z, 0.0)  # a Python 0.0 keeps z's dtype (float32 stays float32)


def relu_derivative(z):
    """ReLU'(z) = 1 if z > 0 else 0 (we pick 0 at the kink z = 0)."""
    z = _float(z)
    return (z > 0).astype(z.dtype)


def softplus(z):
    """softplus(z) = log(1 + e^z), a smooth ReLU; stable via logaddexp."""
    z = _float(z)
    return np.logaddexp(0, z).astype(z.dtype, copy=False)


def softplus_derivative(z):
    """softplus'(z) = σ(z)."""
    return sigmoid(z)


def softmax(z):
    """Row-wise softmax. Z: (m, K) or (K,) -> same shape, each row sums to 1.

    Subtracting the row maximum leaves the result unchanged mathematically
    and keeps every exponent ≤ 0, so e^z cannot overflow.
    """
    z = _float(z)
    shifted = z - z.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def _elementwise_backward(derivative):
    def backward(dA, Z, A):
        return dA * derivative(Z)

    return backward


# σ' and tanh' written with a = g(z), which the forward pass already computed:
# reusing it saves evaluating g(z) a second time during backpropagation.
def _sigmoid_backward(dA, Z, A):
    return dA * (A * (1.0 - A))  # σ'(z) = a (1 − a)


def _tanh_backward(dA, Z, A):
    return dA * (1.0 - A * A)  # tanh'(z) = 1 − a²


def _relu_backward(dA, Z, A):
    return dA * (Z > 0)  # ReLU'(z) as a mask: True and False multiply as 1 and 0


def _softmax_backward(dA, Z, A):
    # Row-wise Jacobian-vector product: J = diag(a) - a aᵀ, so dZ = a * (dA - <dA, a>).
    return A * (dA - np.sum(dA * A, axis=-1, keepdims=True))


@dataclass(frozen=True)
class Activation:
    """An activation g with its derivative g' (None when g is not elementwise)."""

    name: str
    fn: Callable
    derivative: Callable | None
    backward: Callable

    def __call__(self, z):
        return self.fn(z)


def _make(name, fn, derivative, backward=None):
    """An elementwise activation; its backward is dA * g'(Z) unless given."""
    return Activation(name, fn, derivative, backward or _elementwise_backward(derivative))


ACTIVATIONS = {
    "identity": _make("identity", identity, identity_derivative),
    "sigmoid": _make("sigmoid", sigmoid, sigmoid_derivative, _sigmoid_backward),
    "tanh": _make("tanh", tanh, tanh_derivative, _tanh_backward),
    "relu": _make("relu", relu, relu_derivative, _relu_backward),
    "softplus": _make("softplus", softplus, softplus_derivative),
    "softmax": Activation("softmax", softmax, None, _softmax_backward),
}
ACTIVATIONS["linear"] = ACTIVATIONS["identity"]  # Keras spells identity "linear"


def get_activation(name):
    """Look an activation up by name ("sigmoid", "relu", ...); None means identity."""
    if isinstance(name, Activation):
        return name
    if name is None:
        return ACTIVATIONS["identity"]
    try:
        return ACTIVATIONS[name]
    except KeyError:
        known = ", ".join(sorted(ACTIVATIONS))
        raise ValueError(f"Unknown activation {name!r}. Choose one of: {known}.") from None
