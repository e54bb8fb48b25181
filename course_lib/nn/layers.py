"""Layers: a forward pass that caches what its backward pass needs.

Shapes follow the course notation, rows are examples:

    X: (m, n_in)   W: (n_in, n_out)   b: (n_out,)   Z = X @ W + b: (m, n_out)

The functions ``dense_forward`` / ``dense_backward`` are the bare maths;
``Dense`` and ``Dropout`` wrap them as objects a ``Sequential`` can stack.
"""

import numpy as np

from .._rng import as_rng
from .activations import get_activation
from .initializers import get_initializer


def dense_forward(X, W, b):
    """Affine map Z = X @ W + b.

    X: (m, n_in), W: (n_in, n_out), b: (n_out,) -> Z: (m, n_out), cache = (X, W).
    """
    Z = X @ W
    Z += b  # in place: saves one (m, n_out) temporary per layer
    return Z, (X, W)


def dense_backward(dZ, cache, need_dX=True):
    """Gradients of the affine map, given dZ = ∂L/∂Z: (m, n_out).

    Returns dX: (m, n_in) (None if not needed), dW = Xᵀ dZ: (n_in, n_out),
    db = Σᵢ dZᵢ: (n_out,). Summing over rows adds up every example's
    contribution; the 1/m of the mean already sits inside dZ.
    """
    X, W = cache
    dW = X.T @ dZ
    db = dZ.sum(axis=0)
    dX = dZ @ W.T if need_dX else None
    return dX, dW, db


class Layer:
    """Base class: parameters, their gradients, and forward/backward."""

    trainable = True

    def __init__(self, name=None):
        self.name = name
        self.input_dim = None
        self.output_dim = None

    def build(self, input_dim, rng, dtype):
        self.input_dim = self.output_dim = input_dim

    @property
    def built(self):
        return self.output_dim is not None

    @property
    def params(self):
        return []

    @property
    def grads(self):
        return []

    def penalty(self):
        """Extra loss from regularization (0 unless the layer has l2 > 0)."""
        return 0.0

    def forward(self, X, training=False):
        raise NotImplementedError

    def backward(self, dA, need_dX=True):
        raise NotImplementedError


def positive_int(value, what):
    """``value`` as an int, or a ValueError naming ``what`` (units, filters)."""
    if int(value) != value or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


class WeightedLayer(Layer):
    """What Dense and Conv2D share: a kernel W, a bias b (one per output unit) and an activation."""

    def __init__(self, activation, kernel_initializer, bias_initializer, name):
        super().__init__(name)
        self.activation = get_activation(activation)
        self.kernel_initializer = get_initializer(kernel_initializer)
        self.bias_initializer = get_initializer(bias_initializer)
        self.W = self.b = self.dW = self.db = None
        self._cache = None

    def init_weights(self, shape, rng, dtype):
        """W of ``shape`` (its last axis: the output units) and b of shape (shape[-1],)."""
        self.W = np.asarray(self.kernel_initializer(shape, seed=rng, dtype=dtype), dtype=dtype)
        self.b = np.asarray(self.bias_initializer((1, shape[-1]), seed=rng, dtype=dtype), dtype=dtype).reshape(-1)

    @property
    def params(self):
        return [self.W, self.b]

    @property
    def grads(self):
        return [self.dW, self.db]


class Dense(WeightedLayer):
    """A fully connected layer A = g(X @ W + b), as in Keras.

    Dense(units, activation="sigmoid", input_dim=2): the first layer of a
    model names its input size; later layers infer it from the layer before.
    ``l2=λ`` adds λ‖W‖² to the loss (the Keras convention) and 2λW to dW, so it
    equals PyTorch's SGD weight_decay=2λ; the bias is not penalized.
    """

    def __init__(
        self,
        units,
        activation=None,
        input_dim=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        l2=0.0,
        name=None,
    ):
        super().__init__(activation, kernel_initializer, bias_initializer, name)
        self.units = positive_int(units, "units")
        self.declared_input_dim = input_dim
        self.l2 = float(l2)

    def build(self, input_dim, rng, dtype):
        if not np.isscalar(input_dim):
            raise ValueError(
                f"{self!r} needs flat features but receives shape {tuple(input_dim)}; add Flatten() before it"
            )
        self.input_dim, self.output_dim = int(input_dim), self.units
        self.init_weights((self.input_dim, self.units), rng, dtype)

    def penalty(self):
        return self.l2 * float(np.sum(self.W * self.W)) if self.l2 else 0.0

    def forward(self, X, training=False):
        """X: (m, n_in) -> A: (m, units). Caches X, Z, A for backward."""
        Z, cache = dense_forward(X, self.W, self.b)
        A = self.activation(Z)
        self._cache = (cache, Z, A)
        return A

    def backward(self, dA, need_dX=True):
        """dA = ∂L/∂A: (m, units) -> dX: (m, n_in); stores dW and db."""
        _, Z, A = self._cache
        return self.backward_from_dZ(self.activation.backward(dA, Z, A), need_dX)

    def backward_from_dZ(self, dZ, need_dX=True):
        """Backward pass when ∂L/∂Z is already known (a loss fused with the activation)."""
        cache, _, _ = self._cache
        dX, self.dW, self.db = dense_backward(dZ, cache, need_dX)
        if self.l2:
            self.dW += 2.0 * self.l2 * self.W
        return dX

    def pre_activation(self):
        """Z of the last forward pass: (m, units)."""
        return self._cache[1]

    def __repr__(self):
        return f"Dense({self.units}, activation={self.activation.name!r})"


class Dropout(Layer):
    """Inverted dropout: in training, zero each unit with probability ``rate``
    and scale the survivors by 1/(1 − rate), so that at test time the layer is
    simply the identity and the expected activation is unchanged.

    ``rate`` is the DROP probability, like PyTorch's p and Keras's rate; week 5's
    keep_prob is 1 − rate.
    """

    trainable = False

    def __init__(self, rate, seed=None, name=None):
        super().__init__(name)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.seed = seed
        self._rng = None
        self._mask = None

    def build(self, input_dim, rng, dtype):
        super().build(input_dim, rng, dtype)
        self._rng = as_rng(self.seed) if self.seed is not None else rng

    def forward(self, X, training=False):
        if not training or self.rate == 0.0:
            self._mask = None
            return X
        keep = 1.0 - self.rate
        self._mask = (self._rng.random(X.shape) < keep).astype(X.dtype) / keep
        return X * self._mask

    def backward(self, dA, need_dX=True):
        return dA if self._mask is None else dA * self._mask

    def __repr__(self):
        return f"Dropout({self.rate})"
