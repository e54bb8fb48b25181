"""Loss functions L(ŷ, y). Each returns ``(value, gradient)``.

Conventions used everywhere in the course (and said once to students in week 1):

* mean squared error  L = 1/(2m) Σᵢ ‖ŷ⁽ⁱ⁾ − y⁽ⁱ⁾‖²   (the ½ cancels the 2 of the derivative)
* binary cross-entropy  L = −1/m Σᵢ [y log p + (1 − y) log(1 − p)]
* categorical cross-entropy  L = −1/m Σᵢ Σₖ yₖ log pₖ   (y one-hot)

Seed 002 writes 1/(2m) in front of the cross-entropies too; a constant factor
does not move the minimum, and 1/m makes dz = (a − y)/m come out clean.

Peers: every loss here sums over the k outputs and averages over the m examples.
Categorical cross-entropy therefore equals PyTorch's CrossEntropyLoss (reduction
"mean") and Keras's. PyTorch's MSELoss/BCEWithLogitsLoss and Keras's "mse" and
"binary_crossentropy" average over all m·k entries, and MSE has no ½ there: our
mse is k/2 times theirs, our binary cross-entropy k times theirs (the same for k = 1).

Shapes: predictions and targets are (m, k), rows are examples. A target of
shape (m,) is accepted for a (m, 1) prediction. Probabilities are clipped to
[eps, 1 − eps] before any log, so log(0) never happens; the ``*_with_logits``
versions work from z directly and need no clipping at all.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .activations import sigmoid


def _eps(dtype):
    # 1 - eps must stay below 1.0 in the working precision, or log(1 - p) = log(0).
    return 1e-7 if np.dtype(dtype).itemsize <= 4 else 1e-15


def _pair(y_pred, y):
    y_pred = np.asarray(y_pred)
    if y_pred.dtype.kind != "f":  # not a float array
        y_pred = y_pred.astype(np.float64)
    y = np.asarray(y, dtype=y_pred.dtype)
    if y.ndim == 1 and y_pred.ndim == 2 and y_pred.shape[1] == 1:
        y = y[:, None]
    if y.shape != y_pred.shape:
        raise ValueError(
            f"Predictions have shape {y_pred.shape} but targets have shape {y.shape}; "
            "they must match (rows are examples)."
        )
    return y_pred, y


def mse_loss(y_pred, y):
    """L = 1/(2m) Σ‖ŷ − y‖².  y_pred, y: (m, k) -> (L: float, dL/dŷ: (m, k))."""
    y_pred, y = _pair(y_pred, y)
    m = y_pred.shape[0]
    diff = y_pred - y
    return float(np.sum(diff * diff) / (2 * m)), diff / m


def binary_cross_entropy(p, y):
    """L = −1/m Σ [y log p + (1−y) log(1−p)].  p, y: (m, k) -> (L, dL/dp: (m, k))."""
    p, y = _pair(p, y)
    m = p.shape[0]
    eps = _eps(p.dtype)
    pc = np.clip(p, eps, 1 - eps)
    value = -np.sum(y * np.log(pc) + (1 - y) * np.log(1 - pc)) / m
    grad = (pc - y) / (pc * (1 - pc)) / m
    grad = np.where((p > eps) & (p < 1 - eps), grad, 0.0)  # clip has zero slope outside
    return float(value), grad


def binary_cross_entropy_with_logits(z, y):
    """BCE of σ(z), computed from z. z, y: (m, k) -> (L, dL/dz = (σ(z) − y)/m).

    Uses log σ(z) = −softplus(−z) and log(1 − σ(z)) = −softplus(z).
    """
    z, y = _pair(z, y)
    m = z.shape[0]
    value = np.sum(np.logaddexp(0, z) - y * z) / m
    return float(value), (sigmoid(z) - y) / m


def categorical_cross_entropy(P, Y):
    """L = −1/m ΣᵢΣₖ Yᵢₖ log Pᵢₖ.  P, Y: (m, K), Y one-hot -> (L, dL/dP: (m, K))."""
    P, Y = _pair(P, Y)
    m = P.shape[0]
    eps = _eps(P.dtype)
    Pc = np.clip(P, eps, 1.0)
    grad = np.where(P > eps, -Y / Pc, 0.0) / m
    return float(-np.sum(Y * np.log(Pc)) / m), grad


def softmax_cross_entropy_with_logits(Z, Y):
    """CE of softmax(Z), computed from Z. Z, Y: (m, K) -> (L, dL/dZ = (softmax(Z) − Y)/m)."""
    Z, Y = _pair(Z, Y)
    m = Z.shape[0]
    shifted = Z - Z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    norm = e.sum(axis=1, keepdims=True)
    value = -np.sum(Y * (shifted - np.log(norm))) / m
    return float(value), (e / norm - Y) / m  # e / norm is softmax(Z), reusing e


def _sparse(fn):
    def with_int_labels(P, y):
        P = np.asarray(P)
        y = np.asarray(y).ravel()
        K = P.shape[1]
        if y.dtype.kind not in "iu" or y.min(initial=0) < 0 or y.max(initial=0) >= K:
            raise ValueError(f"sparse labels must be integers in [0, {K}), got {y[:5]}...")
        return fn(P, np.eye(K, dtype=P.dtype)[y])

    return with_int_labels


@dataclass(frozen=True)
class Loss:
    """A loss, plus stable versions fused with a final activation.

    ``fused[activation]`` maps the last layer's pre-activation Z straight to
    (L, dL/dZ), which is both cheaper and more accurate than going through
    the probabilities (this is where dz = (a − y)/m comes from).
    """

    name: str
    fn: Callable
    fused: dict = field(default_factory=dict)

    def __call__(self, y_pred, y):
        return self.fn(y_pred, y)


LOSSES = {
    "mse": Loss("mse", mse_loss),
    "binary_crossentropy": Loss(
        "binary_crossentropy", binary_cross_entropy, {"sigmoid": binary_cross_entropy_with_logits}
    ),
    "categorical_crossentropy": Loss(
        "categorical_crossentropy",
        categorical_cross_entropy,
        {"softmax": softmax_cross_entropy_with_logits},
    ),
    "sparse_categorical_crossentropy": Loss(
        "sparse_categorical_crossentropy",
        _sparse(categorical_cross_entropy),
        {"softmax": _sparse(softmax_cross_entropy_with_logits)},
    ),
}
LOSSES["mean_squared_error"] = LOSSES["mse"]


def get_loss(name):
    """Look a loss up by its Keras name ("mse", "binary_crossentropy", ...)."""
    if isinstance(name, Loss):
        return name
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(LOSSES))
        raise ValueError(f"Unknown loss {name!r}. Choose one of: {known}.") from None
