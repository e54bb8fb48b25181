"""Preparing data for training: split, standardize, one-hot encode.

* ``train_test_split``: hold out examples the model never sees while
  training; their error estimates how the model does on new data.
* ``standardize`` / ``Standardizer``: give every feature mean 0 and standard
  deviation 1, so gradient descent can use one learning rate for all weights.
  The mean and std come from the TRAINING set only and are reused for the
  test set: the test set must not leak into any part of training.
* ``one_hot``: integer labels -> the (m, K) target of softmax cross-entropy.
"""

import numpy as np

from .._rng import as_rng


def _n_test(test_size, m):
    """The number of test examples: a fraction of m (rounded up) or a count."""
    if isinstance(test_size, bool):
        raise TypeError("test_size must be a fraction in (0, 1) or a number of examples")
    if isinstance(test_size, (int, np.integer)):
        n_test = int(test_size)
    elif isinstance(test_size, (float, np.floating)):
        if not 0 < test_size < 1:
            raise ValueError(f"A fractional test_size must lie in (0, 1), got {test_size}")
        n_test = int(np.ceil(test_size * m))
    else:
        raise TypeError("test_size must be a fraction in (0, 1) or a number of examples")
    if not 1 <= n_test <= m - 1:
        raise ValueError(
            f"test_size={test_size!r} leaves {n_test} of {m} examples for testing; "
            "both the training and the test set need at least one."
        )
    return n_test


def _stratified_test_rows(y, n_test, rng):
    """Pick n_test row indices so that each class keeps its share of the data.

    Class k with c_k examples gets c_k·n_test/m test rows, rounded so that
    the counts add up to n_test exactly (largest remainders round up).
    """
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    if np.any(counts < 2):
        rare = classes[counts < 2].tolist()
        raise ValueError(f"Cannot stratify: classes {rare} have fewer than 2 examples.")
    exact = counts * n_test / len(y)
    per_class = np.floor(exact).astype(int)
    shortfall = n_test - per_class.sum()
    per_class[np.argsort(-(exact - per_class), kind="stable")[:shortfall]] += 1
    rows = [rng.permutation(np.flatnonzero(inverse == k))[:n] for k, n in enumerate(per_class)]
    return np.concatenate(rows)


def train_test_split(X, y, test_size=0.25, seed=None, stratify=False):
    """Shuffle the examples and split them into a training and a test set.

    X: (m, ...), y: (m, ...) -> X_train, X_test, y_train, y_test, rows kept
    paired. test_size: a fraction of m (rounded up) or a number of examples.
    stratify=True keeps each class's share of y the same in both parts (as
    near as whole examples allow), which matters for small or unbalanced data.
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError("X and y must be arrays with one row per example")
    m = len(X)
    if len(y) != m:
        raise ValueError(f"X has {m} rows but y has {len(y)}; rows are examples and must pair up.")
    n_test = _n_test(test_size, m)
    rng = as_rng(seed)
    if stratify:
        if y.ndim != 1:
            raise ValueError(f"stratify=True needs 1-D class labels y, got shape {y.shape}")
        test = rng.permutation(_stratified_test_rows(y, n_test, rng))
    else:
        test = rng.permutation(m)[:n_test]
    is_test = np.zeros(m, dtype=bool)
    is_test[test] = True
    train = rng.permutation(np.flatnonzero(~is_test))  # shuffled, so classes are mixed
    return X[train], X[test], y[train], y[test]


class Standardizer:
    """z-scores: x' = (x − mean) / std per column, with mean and std from ``fit``.

    After ``fit(X)``: ``mean_`` and ``std_`` (population std, ddof=0) have
    shape (n,). A column whose training values are all equal has no scale,
    so it is only centred (divided by 1 instead of 0): ``scale_`` is ``std_``
    with those entries set to 1. A 1-D X is treated as one column.
    """

    def fit(self, X):
        """X: (m, n) -> self."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim not in (1, 2) or len(X) == 0:
            raise ValueError(f"Standardizer needs a 1-D or 2-D array of rows, got shape {X.shape}")
        constant = np.all(X == X[0], axis=0)
        # Take a constant column's value itself as its mean: np.mean can be one
        # rounding step off, which would leave ±1e-17 instead of exact zeros.
        self.mean_ = np.where(constant, X[0], X.mean(axis=0))
        self.std_ = np.where(constant, 0.0, X.std(axis=0))
        self.scale_ = np.where(constant, 1.0, self.std_)
        return self

    def _check(self, X):
        if not hasattr(self, "mean_"):
            raise RuntimeError("Call fit(X_train) before transform.")
        X = np.asarray(X, dtype=np.float64)
        if X.shape[1:] != self.mean_.shape:
            raise ValueError(
                f"Fitted on rows of shape {self.mean_.shape} but got an array of shape {X.shape}; "
                "every array needs the training set's columns."
            )
        return X

    def transform(self, X):
        """X: (m, n) -> (X − mean_) / scale_: (m, n)."""
        return (self._check(X) - self.mean_) / self.scale_

    def fit_transform(self, X):
        return self.fit(X).transform(X)

    def inverse_transform(self, Z):
        """Z: (m, n) -> Z · scale_ + mean_, the original units."""
        return self._check(Z) * self.scale_ + self.mean_


def standardize(X_train, *others):
    """Standardize X_train column-wise, and every other array with X_train's statistics.

    X_train: (m, n), others: (m_i, n) -> X_train' alone if no others are
    given, else the tuple (X_train', *others'). Train columns end with mean 0
    and std 1 (constant columns: mean 0, left unscaled); a test set does not,
    exactly, which is expected.
    """
    scaler = Standardizer().fit(X_train)
    out = tuple(scaler.transform(A) for A in (X_train, *others))
    return out[0] if not others else out


def one_hot(y, n_classes=None):
    """Integer labels -> one-hot rows.  y: (m,) in 0..K-1 -> Y: (m, K) float64.

    Y[i, y[i]] = 1 and every other entry is 0, so ``Y.argmax(axis=1)``
    gives y back. K = n_classes, or max(y) + 1 when n_classes is None.
    Whole-number floats such as 2.0 are accepted as labels.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"one_hot needs a 1-D array of labels, got shape {y.shape}")
    if y.dtype == bool:
        y = y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.number) or np.issubdtype(y.dtype, np.complexfloating):
        raise ValueError(f"Labels must be integers 0..K-1, got an array of dtype {y.dtype}")
    if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
        bad = y[~np.isfinite(y) | (y != np.round(y))][:3].tolist()
        raise ValueError(f"Labels must be whole numbers 0..K-1, got for example {bad}")
    if y.size and y.min() < 0:
        raise ValueError(f"Labels must be 0..K-1, but the smallest is {y.min()}")
    labels = y.astype(np.int64)
    needed = int(labels.max()) + 1 if labels.size else 0
    if n_classes is None:
        n_classes = needed
    elif isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise ValueError(f"n_classes must be an integer, got {n_classes!r}")
    elif n_classes < needed:
        raise ValueError(f"n_classes={n_classes} is too small: the largest label is {needed - 1}")
    Y = np.zeros((len(labels), int(n_classes)))
    Y[np.arange(len(labels)), labels] = 1.0
    return Y
