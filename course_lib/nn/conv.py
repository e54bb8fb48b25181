"""Convolution, max pooling and flattening, channels-last as in Keras.

Shapes (m examples, height h, width w, c channels):

    X: (m, h, w, c_in)   W: (kh, kw, c_in, c_out)   b: (c_out,)   Z: (m, oh, ow, c_out)

``Z[e, i, j, k] = b[k] + Σ_{p, q, c} Xp[e, i·s + p, j·s + q, c] · W[p, q, c, k]``
with Xp the padded input and s the stride. This is cross-correlation (the
kernel is not flipped), which deep-learning libraries call convolution.

PyTorch is channels-first instead: its x is X.transpose(0, 3, 1, 2) and its
conv2d weight (c_out, c_in, kh, kw) is W.transpose(3, 2, 0, 1); its padding is
symmetric, so pad Keras's "same" (extra row/column at the bottom/right) by hand.
There is no average pooling in this library, only max pooling.

Vectorized with im2col: every kh×kw×c_in window becomes one row of a matrix,
so the convolution is a single matrix product, exactly like ``Dense``. Only
the backward pass of the input (col2im) loops, over the kh·kw kernel offsets,
never over examples or output positions.
"""

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .layers import Layer, WeightedLayer, positive_int

PADDINGS = ("valid", "same")


# ----- sizes and padding -----------------------------------------------------
def _pair(value, what):
    """An int or a pair of ints -> a pair of positive ints."""
    pair = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair) != 2 or any(int(v) != v or v < 1 for v in pair):
        raise ValueError(f"{what} must be a positive int or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _check_padding(padding):
    padding = str(padding).lower()
    if padding not in PADDINGS:
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    return padding


def output_size(n, k, s, padding):
    """Output length along one axis: input n, window k, stride s.

    "valid": only whole windows, ⌊(n − k)/s⌋ + 1.  "same": ⌈n/s⌉ (= n for s = 1).
    """
    if padding == "same":
        return math.ceil(n / s)
    if n < k:
        raise ValueError(f"A window of {k} does not fit in an input of {n} with padding='valid'")
    return (n - k) // s + 1


def padding_amounts(n, k, s, padding):
    """(before, after) zeros along one axis. "same" pads as TensorFlow/Keras:
    just enough for ⌈n/s⌉ outputs, and the odd one out at the bottom/right."""
    if padding == "valid":
        return 0, 0
    total = max((output_size(n, k, s, padding) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def _pad(X, pads, value=0.0):
    """Pad axes 1 and 2 of X: (m, h, w, c) by pads = ((top, bottom), (left, right))."""
    if pads == ((0, 0), (0, 0)):
        return X
    return np.pad(X, ((0, 0), *pads, (0, 0)), constant_values=value)


def _windows(Xp, window, strides, out):
    """View of every window: Xp: (m, H, W, c) -> (m, oh, ow, c, kh, kw), no copy."""
    (sh, sw), (oh, ow) = strides, out
    return sliding_window_view(Xp, window, axis=(1, 2))[:, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]


def _offset_slices(window, strides, out):
    """For each offset (p, q) inside a window, in reading order: the strided slice
    of the padded input that this offset reads, one entry per output position."""
    (sh, sw), (oh, ow) = strides, out
    for p in range(window[0]):
        for q in range(window[1]):
            yield np.s_[:, p : p + (oh - 1) * sh + 1 : sh, q : q + (ow - 1) * sw + 1 : sw]


def _scatter_add(dXp, dwin, strides, out):
    """col2im: add dwin: (m, oh, ow, kh, kw, c) back onto the windows of dXp: (m, H, W, c).

    Windows overlap when the stride is smaller than the window, so the
    loop runs over the kh·kw offsets (p, q): each adds one strided slice.
    """
    kh, kw = dwin.shape[3:5]
    for k, where in enumerate(_offset_slices((kh, kw), strides, out)):
        dXp[where] += dwin[:, :, :, k // kw, k % kw]
    return dXp


def _crop(Xp, pads):
    (top, bottom), (left, right) = pads
    return Xp[:, top : Xp.shape[1] - bottom, left : Xp.shape[2] - right]


def _geometry(in_shape, window, strides, padding):
    """Padding ((top, bottom), (left, right)) and output size (oh, ow) for X: (m, h, w, c)."""
    _, h, w, _ = in_shape
    pads = tuple(padding_amounts(n, k, s, padding) for n, k, s in zip((h, w), window, strides))
    out = tuple(output_size(n, k, s, padding) for n, k, s in zip((h, w), window, strides))
    return pads, out


def _check_4d(X, what):
    if X.ndim != 4:
        raise ValueError(f"{what} needs inputs of shape (m, height, width, channels), got {X.shape}")


# ----- convolution -------------------------------------------------------------
def conv_forward(X, W, b, strides=(1, 1), padding="valid"):
    """Z = X ⋆ W + b by im2col.

    X: (m, h, w, c_in), W: (kh, kw, c_in, c_out), b: (c_out,) ->
    Z: (m, oh, ow, c_out), cache = (cols, W, X.shape, pads, out).
    cols: (m·oh·ow, kh·kw·c_in) holds one window per row, ordered (p, q, c)
    like W.reshape(kh·kw·c_in, c_out).
    """
    _check_4d(X, "conv_forward")
    kh, kw, c_in, c_out = W.shape
    if X.shape[3] != c_in:
        raise ValueError(f"X has {X.shape[3]} channels but W expects {c_in}")
    pads, out = _geometry(X.shape, (kh, kw), strides, padding)
    win = _windows(_pad(X, pads), (kh, kw), strides, out)  # (m, oh, ow, c_in, kh, kw)
    cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(-1, kh * kw * c_in)  # the one copy: im2col
    Z = cols @ W.reshape(-1, c_out)
    Z += b
    return Z.reshape(X.shape[0], *out, c_out), (cols, W, X.shape, pads, out)


def conv_backward(dZ, cache, strides=(1, 1), need_dX=True):
    """Gradients of conv_forward given dZ = ∂L/∂Z: (m, oh, ow, c_out).

    dW = colsᵀ dZ: (kh, kw, c_in, c_out), db = Σ dZ over examples and
    positions: (c_out,), and dX: (m, h, w, c_in) (None if not needed) by
    col2im of dZ Wᵀ, dropping the padding.
    """
    cols, W, x_shape, pads, out = cache
    kh, kw, c_in, c_out = W.shape
    dZ2 = dZ.reshape(-1, c_out)
    dW = (cols.T @ dZ2).reshape(W.shape)
    db = np.ones(len(dZ2), dZ.dtype) @ dZ2  # Σ over rows as a GEMV: dZ2.sum(axis=0) is ~20× slower here
    if not need_dX:
        return None, dW, db
    dwin = (dZ2 @ W.reshape(-1, c_out).T).reshape(x_shape[0], *out, kh, kw, c_in)
    m, h, w, _ = x_shape
    (top, bottom), (left, right) = pads
    dXp = np.zeros((m, h + top + bottom, w + left + right, c_in), dtype=dZ.dtype)
    return _crop(_scatter_add(dXp, dwin, strides, out), pads), dW, db


# ----- max pooling -------------------------------------------------------------
def maxpool_forward(X, pool_size=(2, 2), strides=None, padding="valid"):
    """Maximum of each pool window, channel by channel.

    X: (m, h, w, c) -> A: (m, oh, ow, c), cache = (arg, X.shape, pads, out,
    strides, pool_size) where arg: (m, oh, ow, c) is the offset p·pw + q of
    the maximum inside each window. Ties go to the first maximum in reading
    order (top row first, then left to right), like np.argmax and PyTorch's
    CPU max_pool2d. At a tie max has no derivative; routing the whole gradient to
    one of the tied entries is a valid subgradient. "same" pads with −∞, so the
    padding is never the maximum. A window holding a NaN (training has diverged)
    has the maximum NaN, as np.max gives; its gradient goes to the argmax of the
    entries read before the first NaN, or to the NaN when it is read first.

    The loop runs over the ph·pw offsets of a window, each a strided slice
    covering every window at once: ph·pw elementwise maxima on whole arrays.
    """
    _check_4d(X, "maxpool_forward")
    strides = pool_size if strides is None else strides
    pads, out = _geometry(X.shape, pool_size, strides, padding)
    Xp = _pad(X, pads, -np.inf)
    offsets = _offset_slices(pool_size, strides, out)
    A = Xp[next(offsets)].copy()
    arg = np.zeros(A.shape, dtype=np.min_scalar_type(pool_size[0] * pool_size[1]))
    for k, where in enumerate(offsets, start=1):
        larger = Xp[where] > A  # strictly: a tie keeps the earlier offset
        np.maximum(A, Xp[where], out=A)
        arg += larger * (k - arg)  # arg = k where larger; arithmetic beats masked writes ~10×
    return A, (arg, X.shape, pads, out, strides, pool_size)


def maxpool_backward(dA, cache):
    """dA: (m, oh, ow, c) -> dX: (m, h, w, c). Each window passes its gradient
    to its argmax only; the other entries get 0 (max is linear in its maximum).
    Overlapping windows (strides < pool_size) add up at a shared maximum."""
    arg, x_shape, pads, out, strides, pool_size = cache
    m, h, w, c = x_shape
    (top, bottom), (left, right) = pads
    dXp = np.zeros((m, h + top + bottom, w + left + right, c), dtype=dA.dtype)
    for k, where in enumerate(_offset_slices(pool_size, strides, out)):
        dXp[where] += dA * (arg == k)
    return _crop(dXp, pads)


# ----- layers ------------------------------------------------------------------
def _as_input_shape(input_shape):
    if input_shape is None:
        return None
    shape = tuple(int(n) for n in input_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
    return shape


def _spatial(layer, input_dim):
    """The (h, w, c) a layer receives; a clear error if it gets flat features."""
    shape = (input_dim,) if np.isscalar(input_dim) else tuple(input_dim)
    if len(shape) != 3:
        raise ValueError(
            f"{layer!r} needs images of shape (height, width, channels), got features of shape {shape}; "
            "give the first layer input_shape=(h, w, c)"
        )
    return shape


class Conv2D(WeightedLayer):
    """A 2-D convolution layer A = g(X ⋆ W + b), as in Keras.

    Conv2D(filters, kernel_size, strides=1, padding="valid", activation=None,
    input_shape=(h, w, c)): X: (m, h, w, c) -> A: (m, oh, ow, filters),
    W: (kh, kw, c, filters), b: (filters,). The first layer of a model names
    its input_shape; later layers infer it.
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        activation=None,
        input_shape=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        name=None,
    ):
        super().__init__(activation, kernel_initializer, bias_initializer, name)
        self.filters = positive_int(filters, "filters")
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.padding = _check_padding(padding)
        self.declared_input_dim = _as_input_shape(input_shape)

    def build(self, input_dim, rng, dtype):
        h, w, c = self.input_dim = _spatial(self, input_dim)
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        self.output_dim = (
            output_size(h, kh, sh, self.padding),
            output_size(w, kw, sw, self.padding),
            self.filters,
        )
        self.init_weights((kh, kw, c, self.filters), rng, dtype)

    def forward(self, X, training=False):
        """X: (m, h, w, c) -> A: (m, oh, ow, filters). Caches the im2col matrix, Z and A."""
        Z, cache = conv_forward(X, self.W, self.b, self.strides, self.padding)
        A = self.activation(Z)
        self._cache = (cache, Z, A)
        return A

    def backward(self, dA, need_dX=True):
        """dA: (m, oh, ow, filters) -> dX: (m, h, w, c); stores dW and db."""
        cache, Z, A = self._cache
        dZ = self.activation.backward(dA, Z, A)
        dX, self.dW, self.db = conv_backward(dZ, cache, self.strides, need_dX)
        return dX

    def __repr__(self):
        return (
            f"Conv2D({self.filters}, {self.kernel_size}, strides={self.strides}, "
            f"padding={self.padding!r}, activation={self.activation.name!r})"
        )


class MaxPooling2D(Layer):
    """Max pooling, as in Keras: MaxPooling2D(pool_size=2, strides=None, padding="valid").

    X: (m, h, w, c) -> (m, oh, ow, c); strides default to the pool size
    (windows side by side). It has no weights: it only selects.
    """

    trainable = False

    def __init__(self, pool_size=2, strides=None, padding="valid", input_shape=None, name=None):
        super().__init__(name)
        self.pool_size = _pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else _pair(strides, "strides")
        self.padding = _check_padding(padding)
        self.declared_input_dim = _as_input_shape(input_shape)
        self._cache = None

    def build(self, input_dim, rng, dtype):
        h, w, c = self.input_dim = _spatial(self, input_dim)
        sizes = zip((h, w), self.pool_size, self.strides)
        self.output_dim = (*(output_size(n, k, s, self.padding) for n, k, s in sizes), c)

    def forward(self, X, training=False):
        A, self._cache = maxpool_forward(X, self.pool_size, self.strides, self.padding)
        return A

    def backward(self, dA, need_dX=True):
        return maxpool_backward(dA, self._cache) if need_dX else None

    def __repr__(self):
        return f"MaxPooling2D({self.pool_size}, strides={self.strides}, padding={self.padding!r})"


class Flatten(Layer):
    """(m, d1, d2, ...) -> (m, d1·d2·...), in C order (channels vary fastest), as Keras."""

    trainable = False

    def __init__(self, input_shape=None, name=None):
        super().__init__(name)
        self.declared_input_dim = None if input_shape is None else tuple(int(n) for n in input_shape)
        self._shape = None

    def build(self, input_dim, rng, dtype):
        self.input_dim = (input_dim,) if np.isscalar(input_dim) else tuple(input_dim)
        self.output_dim = math.prod(self.input_dim)

    def forward(self, X, training=False):
        self._shape = X.shape
        return X.reshape(X.shape[0], -1)

    def backward(self, dA, need_dX=True):
        return dA.reshape(self._shape) if need_dX else None

    def __repr__(self):
        return "Flatten()"
