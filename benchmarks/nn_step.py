"""course_lib's training step against its own GEMMs and against a Python loop.

* vectorization: one vectorized training step (forward + backward + update)
  versus only the *forward* pass written as a Python loop over examples.
* GEMM fraction: a full training step versus the matrix products alone that
  it must do (X @ W forward, Xᵀ dZ and dZ Wᵀ backward), at several batch
  sizes. Goal: at batch ≥ 512 the step costs ≤ 1.4× its GEMMs.
"""

import time

import numpy as np

from course_lib import nn

SIZES = [256, 512, 512, 10]  # input, hidden, hidden, classes


def _best(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _ratio(fa, fb, repeat):
    """min time of fa / min time of fb, timed alternately so that machine load hits both alike."""
    ta = tb = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fa()
        ta = min(ta, time.perf_counter() - t)
        t = time.perf_counter()
        fb()
        tb = min(tb, time.perf_counter() - t)
    return ta / tb


def _model(dtype):
    layers = [nn.Dense(SIZES[1], activation="relu", input_dim=SIZES[0])]
    layers += [nn.Dense(n, activation="relu") for n in SIZES[2:-1]]
    layers += [nn.Dense(SIZES[-1], activation="softmax")]
    model = nn.Sequential(layers, seed=0, dtype=dtype)
    return model.compile(loss="sparse_categorical_crossentropy", optimizer=nn.SGD(0.01))


def gemm_fraction(batch, dtype=np.float32, repeat=15):
    rng = np.random.default_rng(0)
    model = _model(dtype)
    X = rng.normal(size=(batch, SIZES[0])).astype(dtype)
    y = rng.integers(0, SIZES[-1], size=batch)
    Ws = [layer.W for layer in model.layers]
    dZs = [rng.normal(size=(batch, W.shape[1])).astype(dtype) for W in Ws]
    As = [X] + [rng.normal(size=(batch, W.shape[1])).astype(dtype) for W in Ws[:-1]]

    def gemms():
        for i, (A, W, dZ) in enumerate(zip(As, Ws, dZs)):
            A @ W
            A.T @ dZ
            if i > 0:
                dZ @ W.T

    step = lambda: model.train_step(X, y)  # noqa: E731
    step()
    return _ratio(step, gemms, repeat)


def loop_vs_vectorized(batch=256, repeat=3):
    rng = np.random.default_rng(0)
    model = _model(np.float64)
    X = rng.normal(size=(batch, SIZES[0]))
    y = rng.integers(0, SIZES[-1], size=batch)
    params = model.get_weights()

    def loop_forward():
        out = []
        for x in X:  # one example at a time, one unit at a time
            a = list(x)
            for layer_i in range(0, len(params), 2):
                W, b = params[layer_i], params[layer_i + 1]
                z = [b[j] + sum(a[i] * W[i, j] for i in range(len(a))) for j in range(W.shape[1])]
                a = [max(0.0, v) for v in z]
            out.append(a)
        return out

    step = lambda: model.train_step(X, y)  # noqa: E731
    # The loop is slow; time it on a few examples and scale up.
    few = 4
    Xf = X
    X = X[:few]
    t_loop = _best(loop_forward, 1) * (batch / few)
    X = Xf
    return t_loop / _best(step, repeat)


def run():
    rows = [
        ("vectorized training step vs Python-loop forward pass (batch 256)", f"{loop_vs_vectorized():.0f}x faster", "")
    ]
    for batch in (64, 512, 4096):
        f = gemm_fraction(batch)
        goal = "goal <= 1.4" if batch >= 512 else ""
        rows.append((f"training step / its GEMMs, batch {batch} (float32)", f"{f:.2f}x", goal))
    f64 = gemm_fraction(512, np.float64)
    rows.append(("training step / its GEMMs, batch 512 (float64)", f"{f64:.2f}x", ""))
    return rows
