"""course_lib's training step against its own GEMMs and against a Python loop.

* vectorization: one vectorized training step (forward + backward + update)
  versus only the *forward* pass written as a Python loop over examples.
* GEMM fraction: a full training step versus the matrix products alone that
  it must do (X @ W forward, Xᵀ dZ and dZ Wᵀ backward), at several batch
  sizes. Goal: at batch ≥ 512 the step costs ≤ 1.4× its GEMMs.
* Step inside fit: the same ratio for the steps ``Sequential.fit`` takes
  (slicing the shuffled batch, accuracy, the loop), on the week-4-sized net
  64→256→256→10 with the small batches the notebooks use. Whatever is not a
  GEMM here is a fixed cost per minibatch. Goals: ≤ 2.0 at batch 32 and
  ≤ 1.3 at batch 128.
"""

import time

import numpy as np

from course_lib import nn

SIZES = [256, 512, 512, 10]  # input, hidden, hidden, classes
FIT_SIZES = [64, 256, 256, 10]  # the digits net of the issue: 8×8 images, 10 classes


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


def _digits_model(dtype=np.float64):
    layers = [nn.Dense(FIT_SIZES[1], activation="relu", input_dim=FIT_SIZES[0])]
    layers += [nn.Dense(n, activation="relu") for n in FIT_SIZES[2:-1]]
    layers += [nn.Dense(FIT_SIZES[-1], activation="softmax")]
    model = nn.Sequential(layers, seed=0, dtype=dtype)
    return model.compile(loss="sparse_categorical_crossentropy", optimizer=nn.SGD(0.01), metrics=["accuracy"])


def step_in_fit(batch, n_batches=20, repeat=25, dtype=np.float64):
    """Time of one step inside ``fit`` (an epoch of n_batches, divided) / time of its GEMMs."""
    rng = np.random.default_rng(0)
    model = _digits_model(dtype)
    X = rng.normal(size=(batch * n_batches, FIT_SIZES[0])).astype(dtype)
    y = rng.integers(0, FIT_SIZES[-1], size=batch * n_batches)
    Ws = [layer.W for layer in model.layers]
    Xb = X[:batch]
    dZs = [rng.normal(size=(batch, W.shape[1])).astype(dtype) for W in Ws]
    As = [Xb] + [rng.normal(size=(batch, W.shape[1])).astype(dtype) for W in Ws[:-1]]

    def gemms():  # n_batches steps' worth, so both sides run about as long
        for _ in range(n_batches):
            for i, (A, W, dZ) in enumerate(zip(As, Ws, dZs)):
                A @ W
                A.T @ dZ
                if i > 0:
                    dZ @ W.T

    epoch = lambda: model.fit(X, y, epochs=1, batch_size=batch, verbose=0)  # noqa: E731
    epoch()
    return _ratio(epoch, gemms, repeat)


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
    for batch, goal in ((32, 2.0), (128, 1.3)):
        f = step_in_fit(batch)
        rows.append((f"training step inside fit / its GEMMs, batch {batch} (float64)", f"{f:.2f}x", f"goal <= {goal}"))
    return rows
