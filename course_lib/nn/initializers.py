"""Weight initializers. Each maps ``(shape, seed) -> array`` with shape (n_in, n_out)
(or a conv kernel (kh, kw, c_in, c_out): n_in = kh·kw·c_in, n_out = kh·kw·c_out).

* zeros: every unit starts identical and receives the same gradient, so the
  units never become different (the symmetry problem of week 4).
* random_normal: small random numbers, N(0, 0.01²), breaks the symmetry.
* glorot_*: keeps the activation variance about constant across layers for
  tanh/sigmoid (Glorot & Bengio, 2010): Var(W) = 2 / (n_in + n_out).
* he_*: the same idea for ReLU, which zeroes half its input: Var(W) = 2 / n_in.

The fans are PyTorch's too (its conv weight (c_out, c_in, kh, kw) has fan_in =
c_in·kh·kw). The *_normal ones draw a plain normal, like torch's xavier_normal_
and kaiming_normal_; Keras's truncate it at two standard deviations instead.
"""

import numpy as np

from .._rng import as_rng


def _fans(shape):
    """(n_in, n_out). A conv kernel (kh, kw, c_in, c_out) connects each output to
    kh·kw·c_in inputs and each input to kh·kw·c_out outputs, as in Keras."""
    if len(shape) not in (2, 4):
        raise ValueError(f"Initializers expect a (n_in, n_out) or (kh, kw, c_in, c_out) shape, got {shape}")
    receptive = int(np.prod(shape[:-2]))
    return receptive * shape[-2], receptive * shape[-1]


def zeros(shape, seed=None, dtype=np.float64):
    """All zeros. (seed is accepted and ignored, so every initializer has one signature.)"""
    return np.zeros(shape, dtype=dtype)


def random_normal(shape, seed=None, dtype=np.float64, stddev=0.01):
    """Small random weights ~ N(0, stddev²)."""
    return (as_rng(seed).standard_normal(shape) * stddev).astype(dtype)


def glorot_uniform(shape, seed=None, dtype=np.float64):
    """U(−r, r) with r = sqrt(6 / (n_in + n_out)); the Keras default for Dense."""
    n_in, n_out = _fans(shape)
    r = np.sqrt(6.0 / (n_in + n_out))
    return as_rng(seed).uniform(-r, r, size=shape).astype(dtype)


def glorot_normal(shape, seed=None, dtype=np.float64):
    """N(0, 2 / (n_in + n_out))."""
    n_in, n_out = _fans(shape)
    return (as_rng(seed).standard_normal(shape) * np.sqrt(2.0 / (n_in + n_out))).astype(dtype)


def he_normal(shape, seed=None, dtype=np.float64):
    """N(0, 2 / n_in), for ReLU layers."""
    n_in, _ = _fans(shape)
    return (as_rng(seed).standard_normal(shape) * np.sqrt(2.0 / n_in)).astype(dtype)


def he_uniform(shape, seed=None, dtype=np.float64):
    """U(−r, r) with r = sqrt(6 / n_in), for ReLU layers."""
    n_in, _ = _fans(shape)
    r = np.sqrt(6.0 / n_in)
    return as_rng(seed).uniform(-r, r, size=shape).astype(dtype)


INITIALIZERS = {f.__name__: f for f in (zeros, random_normal, glorot_uniform, glorot_normal, he_normal, he_uniform)}
INITIALIZERS["xavier_uniform"] = glorot_uniform
INITIALIZERS["xavier_normal"] = glorot_normal
INITIALIZERS["small_random"] = random_normal


def get_initializer(name):
    """Look an initializer up by name, or pass a callable through."""
    if callable(name):
        return name
    try:
        return INITIALIZERS[name]
    except KeyError:
        known = ", ".join(sorted(INITIALIZERS))
        raise ValueError(f"Unknown initializer {name!r}. Choose one of: {known}.") from None
