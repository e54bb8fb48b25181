"""A conv net's training step against its own im2col GEMMs, timed in the same run.

The net is digits-sized: X: (m, 8, 8, 1) -> Conv2D(16, 3, same, relu) ->
MaxPooling2D(2) -> Flatten -> Dense(10, softmax). The GEMMs are the matrix
products the step cannot avoid, on ready-made operands: the convolution as
cols @ W and colsᵀ dZ (cols is the (m·64, 9) im2col matrix; the first layer
needs no dX), and the dense layer's A @ W, Aᵀ dZ, dZ Wᵀ. The ratio is what
the rest costs: building cols, activations, pooling, the loss, the update.
"""

import numpy as np

from course_lib import nn

from .nn_step import _ratio

SHAPE, FILTERS, CLASSES = (8, 8, 1), 16, 10


def _model(dtype):
    layers = [
        nn.Conv2D(FILTERS, 3, padding="same", activation="relu", input_shape=SHAPE),
        nn.MaxPooling2D(2),
        nn.Flatten(),
        nn.Dense(CLASSES, activation="softmax"),
    ]
    model = nn.Sequential(layers, seed=0, dtype=dtype)
    return model.compile(loss="sparse_categorical_crossentropy", optimizer=nn.SGD(0.01))


def gemm_fraction(batch, dtype=np.float32, repeat=30):
    """min time of one training step / min time of its GEMMs."""
    rng = np.random.default_rng(0)
    model = _model(dtype)
    X = rng.normal(size=(batch, *SHAPE)).astype(dtype)
    y = rng.integers(0, CLASSES, size=batch)
    conv, dense = model.layers[0], model.layers[-1]
    oh, ow, _ = conv.output_dim
    cols = rng.normal(size=(batch * oh * ow, conv.W[..., 0].size)).astype(dtype)
    Wc = conv.W.reshape(-1, FILTERS)
    dZc = rng.normal(size=(batch * oh * ow, FILTERS)).astype(dtype)
    A = rng.normal(size=(batch, dense.W.shape[0])).astype(dtype)
    dZd = rng.normal(size=(batch, CLASSES)).astype(dtype)

    def gemms():
        cols @ Wc
        cols.T @ dZc
        A @ dense.W
        A.T @ dZd
        dZd @ dense.W.T

    step = lambda: model.train_step(X, y)  # noqa: E731
    step()
    return _ratio(step, gemms, repeat)


def run():
    rows = []
    for batch in (128, 1024):
        rows.append(
            (f"conv training step / its im2col GEMMs, batch {batch} (float32)", f"{gemm_fraction(batch):.2f}x", "")
        )
    f64 = gemm_fraction(128, np.float64)
    rows.append(("conv training step / its im2col GEMMs, batch 128 (float64)", f"{f64:.2f}x", ""))
    return rows
