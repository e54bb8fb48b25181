"""Reference linear models: the weeks 1-2 algorithms, vectorized.

Shapes: X: (m, n), y: (m,) or (m, k). Each model stores W: (n, k) and
b: (k,) and predicts with X @ W + b, the same convention as ``Dense``.
"""

import numpy as np

from ._rng import as_rng
from .nn.activations import sigmoid, softmax
from .nn.losses import binary_cross_entropy_with_logits, mse_loss, softmax_cross_entropy_with_logits


def _columns(y):
    y = np.asarray(y, dtype=np.float64)
    return y[:, None] if y.ndim == 1 else y


def _check_rows(X, y):
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (m examples, n features), got shape {X.shape}")
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}; rows are examples.")
    return X


def normal_equation(X, y):
    """Closed-form least squares with a bias: solves (X̃ᵀX̃) θ = X̃ᵀy, X̃ = [1 | X].

    X: (m, n), y: (m,) or (m, k) -> W: (n, k), b: (k,).
    """
    y2 = _columns(y)
    X = _check_rows(X, y2)
    Xb = np.hstack([np.ones((len(X), 1)), X])
    try:
        theta = np.linalg.solve(Xb.T @ Xb, Xb.T @ y2)
    except np.linalg.LinAlgError:
        raise np.linalg.LinAlgError(
            "XᵀX is singular: some features are linear combinations of others "
            "(or there are fewer examples than features). Remove duplicate features "
            "or use gradient descent."
        ) from None
    return theta[1:], theta[0]


def _gradient_descent(X, y, grad_fn, learning_rate, epochs, W0=None, b0=None):
    W = np.zeros((X.shape[1], y.shape[1])) if W0 is None else np.array(W0, dtype=np.float64)
    b = np.zeros(y.shape[1]) if b0 is None else np.array(b0, dtype=np.float64)
    losses = np.empty(epochs)
    for t in range(epochs):
        losses[t], dZ = grad_fn(X @ W + b, y)  # dZ already carries the 1/m
        W -= learning_rate * (X.T @ dZ)
        b -= learning_rate * dZ.sum(axis=0)
    return W, b, losses


class LinearRegression:
    """Least-squares regression f(x) = xW + b, fitted exactly or by gradient descent.

    method="normal": the normal equations. method="gd": batch gradient
    descent on L = 1/(2m)‖XW + b − y‖²; ``losses_`` records L per epoch.
    """

    def __init__(self, method="normal", learning_rate=0.1, epochs=1000):
        if method not in ("normal", "gd"):
            raise ValueError("method must be 'normal' or 'gd'")
        self.method, self.learning_rate, self.epochs = method, learning_rate, epochs

    def fit(self, X, y):
        y2 = _columns(y)
        X = _check_rows(X, y2)
        self._1d = np.ndim(y) == 1
        if self.method == "normal":
            self.W, self.b = normal_equation(X, y2)
            self.losses_ = np.array([mse_loss(X @ self.W + self.b, y2)[0]])
        else:
            self.W, self.b, self.losses_ = _gradient_descent(X, y2, mse_loss, self.learning_rate, self.epochs)
        return self

    def predict(self, X):
        out = np.asarray(X, dtype=np.float64) @ self.W + self.b
        return out[:, 0] if self._1d else out


class LogisticRegression:
    """Binary logistic regression P(y=1|x) = σ(xW + b), trained by gradient
    descent on binary cross-entropy, where dZ = (σ(Z) − y)/m.
    """

    def __init__(self, learning_rate=0.1, epochs=1000):
        self.learning_rate, self.epochs = learning_rate, epochs

    def fit(self, X, y):
        y2 = _columns(y)
        X = _check_rows(X, y2)
        if not np.all((y2 == 0) | (y2 == 1)):
            raise ValueError("LogisticRegression needs labels 0 and 1")
        self.W, self.b, self.losses_ = _gradient_descent(
            X, y2, binary_cross_entropy_with_logits, self.learning_rate, self.epochs
        )
        return self

    def predict_proba(self, X):
        """P(y=1|x) for each row: (m,)."""
        return sigmoid(np.asarray(X, dtype=np.float64) @ self.W + self.b)[:, 0]

    def predict(self, X):
        """Decision rule: 1 if P(y=1|x) > ½ else 0, i.e. 1 if xW + b > 0."""
        return (self.predict_proba(X) > 0.5).astype(np.int64)


class SoftmaxRegression:
    """Multiclass logistic regression: P(y|x) = softmax(xW + b), trained on
    categorical cross-entropy. y holds integer labels 0..K-1.
    """

    def __init__(self, learning_rate=0.1, epochs=1000):
        self.learning_rate, self.epochs = learning_rate, epochs

    def fit(self, X, y, n_classes=None):
        from .data import one_hot

        Y = one_hot(y, n_classes)
        X = _check_rows(X, Y)
        self.W, self.b, self.losses_ = _gradient_descent(
            X, Y, softmax_cross_entropy_with_logits, self.learning_rate, self.epochs
        )
        return self

    def predict_proba(self, X):
        return softmax(np.asarray(X, dtype=np.float64) @ self.W + self.b)

    def predict(self, X):
        return self.predict_proba(X).argmax(axis=1)


def sign(net):
    """The perceptron's activation: +1 if net > 0, otherwise −1 (so sign(0) = −1)."""
    return np.where(np.asarray(net) > 0, 1, -1)


class Perceptron:
    """Rosenblatt's perceptron with bipolar labels y ∈ {−1, +1}.

    Output o = sign(w·x + b). Learning rule, one example at a time:
        w ← w + η (y − o) x,   b ← b + η (y − o)
    which changes nothing when o = y. On linearly separable data (AND, OR)
    it stops making mistakes after finitely many passes; on XOR it never does.
    ``shuffle=False`` visits the examples in their given order every epoch
    (as on the slides); otherwise each epoch uses a fresh random order.
    """

    def __init__(self, learning_rate=0.5, max_epochs=100, seed=None, shuffle=True):
        self.learning_rate, self.max_epochs, self.seed = learning_rate, max_epochs, seed
        self.shuffle = shuffle

    def fit(self, X, y):
        X = _check_rows(X, y)
        y = np.asarray(y)
        if not np.all(np.isin(y, (-1, 1))):
            raise ValueError("The perceptron uses bipolar labels: y must be -1 or +1")
        rng = as_rng(self.seed)
        self.w, self.b = np.zeros(X.shape[1]), 0.0
        self.errors_ = []  # mistakes per epoch
        for _ in range(self.max_epochs):
            mistakes = 0
            for i in rng.permutation(len(X)) if self.shuffle else range(len(X)):
                o = 1 if X[i] @ self.w + self.b > 0 else -1
                if o != y[i]:
                    self.w += self.learning_rate * (y[i] - o) * X[i]
                    self.b += self.learning_rate * (y[i] - o)
                    mistakes += 1
            self.errors_.append(mistakes)
            if mistakes == 0:
                break
        self.converged_ = self.errors_[-1] == 0
        return self

    def predict(self, X):
        return sign(np.asarray(X, dtype=np.float64) @ self.w + self.b)
