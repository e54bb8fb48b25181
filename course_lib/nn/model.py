"""Sequential: a stack of layers with a Keras-like API.

    model = Sequential([Dense(3, activation="sigmoid", input_dim=2),
                        Dense(1, activation="sigmoid")], seed=0)
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    history = model.fit(X, y, epochs=150, batch_size=10, verbose=0)
    loss, acc = model.evaluate(X_test, y_test)

``gradients(X, y)`` returns the loss and ∂L/∂θ in the order of
``get_weights()`` ([W1, b1, W2, b2, ...]) without changing the model, which
is how the course looks inside backpropagation and checks it numerically.
"""

import sys

import numpy as np

from .._rng import as_rng
from .callbacks import History
from .layers import Dense, Layer
from .losses import get_loss
from .optimizers import get_optimizer


def _as_float(X, dtype, what):
    X = np.asarray(X)
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise TypeError(f"{what} must be numeric, got an array of dtype {X.dtype}")
    return X.astype(dtype, copy=False)


class Sequential:
    """A linear stack of layers; rows of X are examples.

    seed: int or np.random.Generator used for the initial weights, for
    shuffling in ``fit`` and for dropout, so a fixed seed reproduces a run
    exactly. dtype: float64 by default (exact gradient checks); float32
    halves memory and time for larger experiments.
    """

    def __init__(self, layers=None, seed=None, dtype=np.float64, name=None):
        self.layers = []
        self.name = name
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise TypeError(f"dtype must be a float type, got {self.dtype}")
        self._rng = as_rng(seed)
        self.loss = self.optimizer = None
        self.metrics = []
        self.stop_training = False
        for layer in layers or []:
            self.add(layer)

    # ----- building -------------------------------------------------------
    def add(self, layer):
        """Append a layer; it is built as soon as its input size is known."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential takes layers such as Dense(...), got {layer!r}")
        if not self.layers and getattr(layer, "declared_input_dim", None) is None:
            self.layers.append(layer)  # input size arrives later, with build() or fit()
            return
        self.layers.append(layer)
        n_in = layer.declared_input_dim if len(self.layers) == 1 else self.layers[-2].output_dim
        if n_in is not None:
            self._build_from(len(self.layers) - 1, n_in)

    def build(self, input_dim):
        """Create every layer's weights for inputs with ``input_dim`` features."""
        if not self.layers:
            raise ValueError("The model has no layers yet; add some with model.add(Dense(...)).")
        self._build_from(0, input_dim if np.isscalar(input_dim) else tuple(input_dim))

    def _build_from(self, start, n_in):
        for layer in self.layers[start:]:
            declared = getattr(layer, "declared_input_dim", None)
            if declared is not None and declared != n_in:
                raise ValueError(f"{layer!r} declares input_dim={declared} but receives {n_in} features")
            if not layer.built:
                layer.build(n_in, self._rng, self.dtype)
            n_in = layer.output_dim

    @property
    def built(self):
        return bool(self.layers) and all(layer.built for layer in self.layers)

    def _ensure_built(self, X):
        if X.ndim < 2:
            raise ValueError(f"X must have one row per example, shape (m, ...), got {X.shape}")
        if not self.built:
            self.build(X.shape[1] if X.ndim == 2 else X.shape[1:])  # images: (m, h, w, c)
        expected = _shape(self.layers[0].input_dim)
        if X.shape[1:] != expected:
            dims = ", ".join(map(str, expected))
            raise ValueError(f"X must have shape (m, {dims}) (rows are examples), got {X.shape}")

    # ----- weights --------------------------------------------------------
    def _params(self):
        return [p for layer in self.layers for p in layer.params]

    def get_weights(self):
        """Copies of all parameters: [W1, b1, W2, b2, ...]; Wl: (n_in, n_out), bl: (n_out,)."""
        return [p.copy() for p in self._params()]

    def set_weights(self, weights):
        """Load parameters given in the order and shapes of ``get_weights()``."""
        params = self._params()
        if len(weights) != len(params):
            raise ValueError(f"Expected {len(params)} arrays [W1, b1, ...], got {len(weights)}")
        for i, (p, w) in enumerate(zip(params, weights)):
            w = np.asarray(w, dtype=self.dtype)
            if w.shape != p.shape:
                kind = "W" if i % 2 == 0 else "b"
                raise ValueError(
                    f"{kind}{i // 2 + 1} must have shape {p.shape}, got {w.shape}"
                    + (" (transposed?)" if w.shape == p.shape[::-1] else "")
                )
            p[...] = w

    def count_params(self):
        return sum(p.size for p in self._params())

    def summary(self, print_fn=print):
        """Print each layer's output shape and parameter count, as Keras does."""
        if not self.built:
            raise ValueError("Build the model first: give the first layer input_dim=..., or call fit.")
        rows = [("Layer (type)", "Output Shape", "Param #")]
        for i, layer in enumerate(self.layers):
            name = layer.name or f"{type(layer).__name__.lower()}_{i}"
            n = sum(p.size for p in layer.params)
            shape = ", ".join(["None", *map(str, _shape(layer.output_dim))])
            rows.append((f"{name} ({type(layer).__name__})", f"({shape})", str(n)))
        widths = [max(len(r[c]) for r in rows) + 2 for c in range(3)]
        line = "-" * sum(widths)
        out = [line] + ["".join(r[c].ljust(widths[c]) for c in range(3)) for r in rows[:1]]
        out += ["=" * sum(widths)]
        out += ["".join(r[c].ljust(widths[c]) for c in range(3)) for r in rows[1:]]
        out += ["=" * sum(widths), f"Total params: {self.count_params()}", line]
        print_fn("\n".join(out))

    # ----- training -------------------------------------------------------
    def compile(self, loss="mse", optimizer="sgd", metrics=None):
        """Choose the loss, the optimizer and the metrics (only "accuracy" is known)."""
        self.loss = get_loss(loss)
        self.optimizer = get_optimizer(optimizer)
        self.metrics = list(metrics or [])
        unknown = [m for m in self.metrics if m not in ("accuracy", "acc")]
        if unknown:
            raise ValueError(f"Unknown metrics {unknown}; this course supports 'accuracy'.")
        return self

    def _require_compiled(self):
        if self.loss is None:
            raise RuntimeError("Call model.compile(loss=..., optimizer=...) before training.")

    def _targets(self, y):
        y = np.asarray(y)
        if self.loss.name == "sparse_categorical_crossentropy":
            return y.astype(np.int64).ravel()
        y = y.astype(self.dtype, copy=False)
        return y[:, None] if y.ndim == 1 else y

    def forward(self, X, training=False):
        """Run every layer: X: (m, n_in) -> output (m, n_out)."""
        A = X
        for layer in self.layers:
            A = layer.forward(A, training=training)
        return A

    def _loss_and_backward(self, X, y, training):
        A = self.forward(X, training=training)
        last = self.layers[-1]
        fused = self.loss.fused.get(last.activation.name) if isinstance(last, Dense) else None
        if fused is not None:
            value, dZ = fused(last.pre_activation(), y)
            dA = last.backward_from_dZ(dZ, need_dX=len(self.layers) > 1)
        else:
            value, dA = self.loss(A, y)
            dA = last.backward(dA, need_dX=len(self.layers) > 1)
        for i in range(len(self.layers) - 2, -1, -1):
            dA = self.layers[i].backward(dA, need_dX=i > 0)  # the input X needs no gradient
        value += sum(layer.penalty() for layer in self.layers)
        return value, A

    def gradients(self, X, y, training=False):
        """Loss and gradients without updating: (L, [dW1, db1, dW2, db2, ...]).

        The gradient list matches ``get_weights()`` in order and shapes.
        Dropout is off unless training=True, so the result is deterministic.
        """
        self._require_compiled()
        X = _as_float(X, self.dtype, "X")
        self._ensure_built(X)
        value, _ = self._loss_and_backward(X, self._targets(y), training)
        return value, [g.copy() for layer in self.layers for g in layer.grads]

    def train_step(self, X, y):
        """One gradient step on a batch; returns (loss, predictions)."""
        value, A = self._loss_and_backward(X, y, training=True)
        params = [p for layer in self.layers for p in layer.params]
        grads = [g for layer in self.layers for g in layer.grads]
        self.optimizer.update(params, grads)
        return value, A

    def fit(
        self,
        X,
        y,
        epochs=1,
        batch_size=32,
        validation_data=None,
        shuffle=True,
        callbacks=None,
        verbose=1,
    ):
        """Train with minibatch gradient descent; returns a History.

        history.history is a dict of per-epoch lists: "loss", "accuracy"
        (if requested) and "val_loss"/"val_accuracy" with validation_data.
        batch_size=None uses the whole training set (batch gradient descent).
        verbose=1 shows a progress bar (a widget in Jupyter); verbose=0 is silent.
        """
        self._require_compiled()
        X = _as_float(X, self.dtype, "X")
        self._ensure_built(X)
        y = self._targets(y)
        m = X.shape[0]
        if len(y) != m:
            raise ValueError(f"X has {m} rows but y has {len(y)}; rows are examples.")
        if epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {epochs}")
        batch = m if batch_size is None else int(batch_size)
        history = History()
        callbacks = [history, *(callbacks or [])]
        self.stop_training = False
        for cb in callbacks:
            cb.on_train_begin(self)
        bar = _progress(epochs, verbose)
        for epoch in range(epochs):
            order = self._rng.permutation(m) if shuffle else np.arange(m)
            total, correct = 0.0, 0
            for start in range(0, m, batch):
                idx = order[start : start + batch]
                X_batch, y_batch = X[idx], y[idx]
                value, A = self.train_step(X_batch, y_batch)
                total += value * len(idx)
                if self.metrics:
                    correct += _n_correct(A, y_batch)
            logs = {"loss": total / m}
            if self.metrics:
                logs["accuracy"] = correct / m
            if validation_data is not None:
                val = self.evaluate(*validation_data, return_dict=True)
                logs.update({f"val_{k}": v for k, v in val.items()})
            for cb in callbacks:
                cb.on_epoch_end(epoch, logs, self)
            if bar is not None:
                bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=False)
                bar.update(1)
            if self.stop_training:
                break
        if bar is not None:
            bar.close()
        for cb in callbacks:
            cb.on_train_end(self)
        return history

    # ----- inference ------------------------------------------------------
    def predict(self, X, batch_size=None, verbose=0):
        """Outputs for X: (m, n_in) -> (m, n_out); dropout is off."""
        X = _as_float(X, self.dtype, "X")
        self._ensure_built(X)
        if batch_size is None:
            return self.forward(X)
        return np.concatenate([self.forward(X[i : i + batch_size]) for i in range(0, len(X), batch_size)])

    def evaluate(self, X, y, verbose=0, return_dict=False):
        """Loss (plus metrics) on (X, y): a float, or [loss, accuracy] with metrics."""
        self._require_compiled()
        X = _as_float(X, self.dtype, "X")
        self._ensure_built(X)
        y = self._targets(y)
        A = self.forward(X)
        last = self.layers[-1]
        fused = self.loss.fused.get(last.activation.name) if isinstance(last, Dense) else None
        value = fused(last.pre_activation(), y)[0] if fused else self.loss(A, y)[0]
        value += sum(layer.penalty() for layer in self.layers)
        out = {"loss": value}
        if self.metrics:
            out["accuracy"] = _n_correct(A, y) / len(y)
        if return_dict:
            return out
        return value if len(out) == 1 else list(out.values())

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential([{inner}])"


def _shape(dim):
    """A layer size as a shape tuple: 64 -> (64,), (8, 8, 1) stays."""
    return (int(dim),) if np.isscalar(dim) else tuple(int(n) for n in dim)


def _n_correct(A, y):
    """Number of correct predictions: threshold ½ for one output, argmax otherwise."""
    if A.shape[1] == 1:
        return int(np.count_nonzero((A[:, 0] > 0.5) == (y.reshape(len(y), -1)[:, 0] > 0.5)))
    labels = y if y.ndim == 1 else y.argmax(axis=1)
    return int(np.count_nonzero(A.argmax(axis=1) == labels))  # faster than np.sum on booleans


def _progress(epochs, verbose):
    if not verbose:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=epochs, desc="epochs", unit="epoch", file=sys.stdout, leave=True)
