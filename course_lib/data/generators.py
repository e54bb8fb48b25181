"""Seeded toy datasets: a noisy line, Gaussian blobs, moons, circles and spirals.

Every generator takes ``seed=`` (an int, None or a ``np.random.Generator``), so
the same seed gives the same arrays and a notebook's plots never change.
Rows are examples: X: (m, n_features) float64; class labels y: (m,) int64
in 0..C-1, with the classes as equal in size as m allows (the first m % C
classes get one example more) and the rows in random order, so a minibatch
is not all one class.

Which model needs which dataset:

* ``make_linear``: a line (plane) plus Gaussian noise, for linear regression.
* ``make_blobs``: clusters that a straight line separates, for logistic regression.
* ``make_moons``, ``make_circles``, ``make_spirals``: no straight line
  separates the classes, so they need a hidden layer (an MLP).
"""

import numpy as np

from .._rng import as_rng

DEFAULT_B = 1.0


def default_weights(n_features):
    """The weights ``make_linear`` uses when w=None: w_j = 2·(−½)^j.

    n_features -> w: (n_features,), i.e. [2, -1, 0.5, -0.25, ...]; with one
    feature the data follow y = 2x + 1. Distinct sizes and signs make it easy
    to see which weight a fitted model got right.
    """
    return 2.0 * (-0.5) ** np.arange(n_features)


def _count(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_noise(noise):
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise is a standard deviation and must be >= 0, got {noise!r}")
    return float(noise)


def _class_sizes(m, n_classes):
    """Split m examples into n_classes groups that differ in size by at most one."""
    return [m // n_classes + (k < m % n_classes) for k in range(n_classes)]


def _shuffled(X, y, rng):
    order = rng.permutation(len(y))
    return X[order], y[order]


def make_linear(m=50, n_features=1, w=None, b=None, noise=1.0, x_range=(-5, 5), seed=None):
    """Noisy linear data y = X @ w + b + ε, with ε ~ N(0, noise²).

    m, n_features -> X: (m, n_features) uniform in ``x_range``, y: (m,).
    Defaults: w = ``default_weights(n_features)`` = [2, -1, 0.5, ...] and
    b = 1, so ``make_linear()`` samples y = 2x + 1 + ε. A scalar w is used
    for every feature. With noise=0 the points lie exactly on the plane.
    """
    m = _count(m, "m")
    n_features = _count(n_features, "n_features")
    noise = _check_noise(noise)
    w = default_weights(n_features) if w is None else np.asarray(w, dtype=np.float64)
    if w.ndim == 0:
        w = np.full(n_features, float(w))
    if w.shape != (n_features,):
        raise ValueError(f"w has shape {w.shape} but n_features={n_features}; they must agree")
    b = DEFAULT_B if b is None else float(b)
    low, high = x_range
    if not low < high:
        raise ValueError(f"x_range must be (low, high) with low < high, got {x_range!r}")
    rng = as_rng(seed)
    X = rng.uniform(low, high, size=(m, n_features))
    y = X @ w + b + noise * rng.standard_normal(m)
    return X, y


def make_blobs(m=200, centers=2, n_features=2, std=1.0, center_box=(-5, 5), seed=None):
    """Gaussian clusters, one class per cluster.

    -> X: (m, n_features), y: (m,) int labels 0..C-1.
    centers: an int C (the centers are then drawn uniformly from
    ``center_box`` in every coordinate) or an array (C, n_features) of
    center coordinates, which sets n_features. std: one standard deviation
    for all clusters or one per cluster, shape (C,).
    """
    rng = as_rng(seed)
    if np.ndim(centers) == 0:
        shape = (_count(centers, "centers"), _count(n_features, "n_features"))
        centers = rng.uniform(*center_box, size=shape)
    else:
        centers = np.asarray(centers, dtype=np.float64)
        if centers.ndim != 2:
            raise ValueError(f"centers must be an int or a (C, n_features) array, got shape {centers.shape}")
    n_classes = len(centers)
    m = _count(m, "m", minimum=n_classes)  # every class gets at least one example
    std = np.broadcast_to(np.asarray(std, dtype=np.float64), (n_classes,))
    if np.any(std < 0):
        raise ValueError("std must be >= 0")
    sizes = _class_sizes(m, n_classes)
    y = np.repeat(np.arange(n_classes), sizes)
    X = centers[y] + std[y, None] * rng.standard_normal((m, centers.shape[1]))
    return _shuffled(X, y, rng)


def make_moons(m=200, noise=0.1, seed=None):
    """Two interleaving half circles.

    -> X: (m, 2), y: (m,). Class 0 is the upper arc (cos t, sin t), class 1
    the lower arc (1 − cos t, ½ − sin t), t ∈ [0, π]; then Gaussian noise
    with standard deviation ``noise`` is added to both coordinates.
    """
    m = _count(m, "m", minimum=2)
    noise = _check_noise(noise)
    rng = as_rng(seed)
    n0, n1 = _class_sizes(m, 2)
    t0, t1 = np.linspace(0, np.pi, n0), np.linspace(0, np.pi, n1)
    upper = np.column_stack([np.cos(t0), np.sin(t0)])
    lower = np.column_stack([1 - np.cos(t1), 0.5 - np.sin(t1)])
    X = np.vstack([upper, lower]) + noise * rng.standard_normal((m, 2))
    y = np.repeat([0, 1], [n0, n1])
    return _shuffled(X, y, rng)


def make_circles(m=200, noise=0.05, factor=0.5, seed=None):
    """A circle inside a circle.

    -> X: (m, 2), y: (m,). Class 0 lies on the unit circle, class 1 on the
    circle of radius ``factor`` (0 < factor < 1); Gaussian noise with
    standard deviation ``noise`` is added to both coordinates.
    """
    m = _count(m, "m", minimum=2)
    noise = _check_noise(noise)
    if not 0 < factor < 1:
        raise ValueError(f"factor is the inner radius and must be in (0, 1), got {factor!r}")
    rng = as_rng(seed)
    sizes = _class_sizes(m, 2)
    rings = []
    for radius, n in zip((1.0, factor), sizes, strict=True):
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)  # endpoint=False: no point twice
        rings.append(radius * np.column_stack([np.cos(t), np.sin(t)]))
    X = np.vstack(rings) + noise * rng.standard_normal((m, 2))
    y = np.repeat([0, 1], sizes)
    return _shuffled(X, y, rng)


def make_spirals(m=300, n_classes=3, noise=0.2, turns=0.75, seed=None):
    """Interleaved spiral arms, one class per arm (as in Stanford's CS231n notes).

    -> X: (m, 2), y: (m,). Along arm k the radius r grows evenly from 0 to 1
    while the angle turns from 2πk/C through ``turns`` full turns:
        θ = 2πk/C + 2π·turns·r + noise·N(0, 1),   x = r (cos θ, sin θ).
    As in CS231n the noise perturbs the angle (in radians), so the arms
    blur more at the rim than near the center. The default 0.75 turns is
    close to CS231n's picture; more turns or classes make it harder.
    """
    n_classes = _count(n_classes, "n_classes")
    m = _count(m, "m", minimum=n_classes)
    noise = _check_noise(noise)
    rng = as_rng(seed)
    sizes = _class_sizes(m, n_classes)
    r = np.concatenate([np.linspace(0, 1, n) for n in sizes])
    y = np.repeat(np.arange(n_classes), sizes)
    theta = 2 * np.pi * (y / n_classes + turns * r) + noise * rng.standard_normal(m)
    X = r[:, None] * np.column_stack([np.cos(theta), np.sin(theta)])
    return _shuffled(X, y, rng)
