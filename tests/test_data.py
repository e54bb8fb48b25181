"""Tests for course_lib.data: generators, slide tables, preprocessing, shipped datasets."""

import fnmatch
import gzip
import hashlib
import itertools
import re
import socket
import tomllib
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from course_lib.data import (
    Dataset,
    Standardizer,
    default_weights,
    diagonal_patterns,
    load_breast_cancer,
    load_digits,
    logic_gate,
    make_blobs,
    make_circles,
    make_linear,
    make_moons,
    make_spirals,
    one_hot,
    standardize,
    train_test_split,
)

ROOT = Path(__file__).resolve().parents[1]
DATA_PKG = resources.files("course_lib.data")

# ----------------------------------------------------------------- generators

# name -> (call with a seed, expected X shape, number of classes or None for regression)
GENERATORS = {
    "linear": (lambda s: make_linear(seed=s), (50, 1), None),
    "linear_3d": (lambda s: make_linear(m=40, n_features=3, seed=s), (40, 3), None),
    "blobs": (lambda s: make_blobs(seed=s), (200, 2), 2),
    "blobs_4x3": (lambda s: make_blobs(m=101, centers=4, n_features=3, seed=s), (101, 3), 4),
    "moons": (lambda s: make_moons(seed=s), (200, 2), 2),
    "circles": (lambda s: make_circles(m=99, seed=s), (99, 2), 2),
    "spirals": (lambda s: make_spirals(seed=s), (300, 2), 3),
    "spirals_5": (lambda s: make_spirals(m=52, n_classes=5, seed=s), (52, 2), 5),
}


@pytest.mark.parametrize("name", GENERATORS)
def test_generator_shapes_and_dtypes(name):
    make, shape, n_classes = GENERATORS[name]
    X, y = make(0)
    assert X.shape == shape and X.dtype == np.float64
    assert y.shape == (shape[0],)
    assert np.all(np.isfinite(X))
    if n_classes is None:
        assert y.dtype == np.float64
    else:
        assert y.dtype == np.int64
        counts = np.bincount(y, minlength=n_classes)
        assert len(counts) == n_classes
        assert counts.max() - counts.min() <= 1  # balanced classes
        assert counts.sum() == shape[0]


@pytest.mark.parametrize("name", GENERATORS)
def test_generators_are_deterministic(name):
    make = GENERATORS[name][0]
    X1, y1 = make(7)
    X2, y2 = make(7)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    X3, _ = make(8)
    assert not np.array_equal(X1, X3)
    # A Generator is accepted and gives the same stream as the int that seeded it.
    X4, y4 = make(np.random.default_rng(7))
    np.testing.assert_array_equal(X1, X4)
    np.testing.assert_array_equal(y1, y4)


@pytest.mark.parametrize("name", ["blobs", "moons", "circles", "spirals"])
def test_classification_rows_are_shuffled(name):
    _, y = GENERATORS[name][0](0)
    assert np.any(np.diff(y) < 0), "labels come sorted; minibatches would be one class"


def test_make_linear_defaults_and_noise_free_plane():
    X, y = make_linear(m=30, noise=0.0, seed=1)
    np.testing.assert_allclose(y, 2 * X[:, 0] + 1)  # documented default y = 2x + 1
    assert X.min() >= -5 and X.max() <= 5
    np.testing.assert_allclose(default_weights(4), [2, -1, 0.5, -0.25])
    w, b = np.array([1.0, -2.0, 3.0]), -4.0
    X, y = make_linear(m=20, n_features=3, w=w, b=b, noise=0.0, x_range=(0, 1), seed=2)
    np.testing.assert_allclose(y, X @ w + b)
    assert X.min() >= 0 and X.max() <= 1


def test_make_linear_noise_has_the_requested_std():
    X, y = make_linear(m=20000, n_features=2, noise=0.5, seed=3)
    residual = y - (X @ default_weights(2) + 1.0)
    assert abs(residual.mean()) < 0.02
    assert abs(residual.std() - 0.5) < 0.02


def test_make_linear_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_features"):
        make_linear(n_features=2, w=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="noise"):
        make_linear(noise=-1)
    with pytest.raises(ValueError, match="x_range"):
        make_linear(x_range=(1, 1))
    with pytest.raises(ValueError, match="m must be"):
        make_linear(m=0)


def test_make_blobs_with_given_centers():
    centers = np.array([[0.0, 0.0, 0.0], [10.0, 10.0, 10.0], [-10.0, 10.0, 0.0]])
    X, y = make_blobs(m=3000, centers=centers, std=0.5, seed=0)
    assert X.shape == (3000, 3)
    for k, c in enumerate(centers):
        np.testing.assert_allclose(X[y == k].mean(axis=0), c, atol=0.1)  # 6 standard errors
        np.testing.assert_allclose(X[y == k].std(axis=0), 0.5, atol=0.05)
    with pytest.raises(ValueError, match="m must be"):
        make_blobs(m=2, centers=centers)


def test_noise_free_moons_lie_on_their_arcs():
    X, y = make_moons(m=101, noise=0.0, seed=0)
    upper, lower = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.hypot(*upper.T), 1.0)
    assert np.all(upper[:, 1] >= -1e-12)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1, lower[:, 1] - 0.5), 1.0)
    assert np.all(lower[:, 1] <= 0.5 + 1e-12)


def test_noise_free_circles_have_the_two_radii():
    X, y = make_circles(m=80, noise=0.0, factor=0.3, seed=0)
    r = np.hypot(*X.T)
    np.testing.assert_allclose(r[y == 0], 1.0)
    np.testing.assert_allclose(r[y == 1], 0.3)
    assert len(np.unique(np.round(X, 12), axis=0)) == 80  # no point twice
    with pytest.raises(ValueError, match="factor"):
        make_circles(factor=1.0)


def test_noise_free_spirals_follow_the_documented_formula():
    C, turns = 4, 1.25
    X, y = make_spirals(m=200, n_classes=C, noise=0.0, turns=turns, seed=0)
    r = np.hypot(*X.T)
    assert r.max() <= 1 + 1e-12
    for k in range(C):
        np.testing.assert_allclose(np.sort(r[y == k]), np.linspace(0, 1, 50), atol=1e-12)
    theta = 2 * np.pi * (y / C + turns * r)
    np.testing.assert_allclose(X, r[:, None] * np.column_stack([np.cos(theta), np.sin(theta)]), atol=1e-12)


# --------------------------------------------------------- slide truth tables

LOGIC = {
    "and": lambda a, b: a and b,
    "or": lambda a, b: a or b,
    "xor": lambda a, b: a ^ b,
    "nand": lambda a, b: 1 - (a and b),
    "nor": lambda a, b: 1 - (a or b),
}


@pytest.mark.parametrize("name", LOGIC)
def test_logic_gate_truth_tables(name):
    X, y = logic_gate(name)
    assert X.shape == (4, 2) and y.shape == (4,)
    assert X.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(X, [[0, 0], [0, 1], [1, 0], [1, 1]])
    expected = [int(LOGIC[name](a, b)) for a, b in itertools.product((0, 1), repeat=2)]
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("name", LOGIC)
def test_bipolar_gates_map_zero_to_minus_one(name):
    X01, y01 = logic_gate(name)
    X, y = logic_gate(name, bipolar=True)
    np.testing.assert_array_equal(X, [[-1, -1], [-1, 1], [1, -1], [1, 1]])
    np.testing.assert_array_equal(X, 2 * X01 - 1)
    np.testing.assert_array_equal(y, 2 * y01 - 1)
    assert set(y.tolist()) <= {-1, 1}


def test_bipolar_and_or_match_the_slides():
    X, y = logic_gate("OR", bipolar=True)  # names are case-insensitive
    assert [tuple(x) for x in X[y == -1]] == [(-1.0, -1.0)]
    X, y = logic_gate("and", bipolar=True)
    assert [tuple(x) for x in X[y == 1]] == [(1.0, 1.0)]


def test_unknown_gate_lists_the_choices():
    with pytest.raises(ValueError, match="xnor") as info:
        logic_gate("xnor")
    for choice in LOGIC:
        assert choice in str(info.value)


@pytest.mark.parametrize("colors", [(-1, 1), (0, 1)])
def test_diagonal_patterns(colors):
    c1, c2 = colors
    X, y = diagonal_patterns(colors)
    assert X.shape == (16, 4) and y.shape == (16,)
    assert X.dtype == np.float64 and y.dtype == np.int64
    assert set(np.unique(X).tolist()) == {c1, c2}
    assert len(np.unique(X, axis=0)) == 16  # all grids, each once
    assert y.sum() == 1 and set(y.tolist()) == {0, 1}
    grid = X[y == 1][0].reshape(2, 2)  # row-major: [[a00, a01], [a10, a11]]
    assert grid[0, 0] == grid[1, 1] == c1
    assert grid[0, 1] == grid[1, 0] == c2


def test_diagonal_pattern_encodings_match_the_slides():
    X, y = diagonal_patterns((0, 1))
    np.testing.assert_array_equal(X[y == 1][0], [0, 1, 1, 0])  # the worked GD example
    X, y = diagonal_patterns()  # default colors: c1 = -1 (black), c2 = +1 (white)
    np.testing.assert_array_equal(X[y == 1][0], [-1, 1, 1, -1])
    # The slides' hand-set weights score the diagonal pattern strictly highest.
    score = X @ np.array([-2.0, 2.0, 2.0, -2.0])
    assert np.argmax(score) == np.flatnonzero(y)[0]
    assert np.sum(score == score.max()) == 1
    with pytest.raises(ValueError, match="differ"):
        diagonal_patterns((1, 1))


# -------------------------------------------------------------- preprocessing


def _indexed(m):
    """X whose rows name their index, y paired with it, to follow rows through a split."""
    X = np.column_stack([np.arange(m), -np.arange(m)]).astype(float)
    return X, np.arange(m) * 10


@pytest.mark.parametrize("test_size, n_test", [(0.25, 25), (0.1, 10), (0.333, 34), (7, 7)])
def test_train_test_split_sizes_and_disjointness(test_size, n_test):
    X, y = _indexed(100)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=test_size, seed=0)
    assert len(X_te) == len(y_te) == n_test
    assert len(X_tr) == len(y_tr) == 100 - n_test
    ids_tr, ids_te = X_tr[:, 0].astype(int), X_te[:, 0].astype(int)
    assert set(ids_tr).isdisjoint(ids_te)
    assert sorted(np.concatenate([ids_tr, ids_te])) == list(range(100))
    np.testing.assert_array_equal(y_tr, ids_tr * 10)  # rows stay paired
    np.testing.assert_array_equal(y_te, ids_te * 10)
    assert not np.array_equal(ids_te, np.sort(ids_te))  # shuffled, not the first/last rows


def test_train_test_split_is_reproducible():
    X, y = _indexed(50)
    a = train_test_split(X, y, seed=3)
    b = train_test_split(X, y, seed=3)
    c = train_test_split(X, y, seed=4)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[1], c[1])


def test_train_test_split_stratify_keeps_proportions():
    y = np.repeat([0, 1, 2], [60, 30, 10])
    X = np.arange(100.0)[:, None]
    for seed in range(5):
        _, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, seed=seed, stratify=True)
        np.testing.assert_array_equal(np.bincount(y_te), [12, 6, 2])
        np.testing.assert_array_equal(np.bincount(y_tr), [48, 24, 8])
        np.testing.assert_array_equal(y[X_te[:, 0].astype(int)], y_te)
    # Uneven shares: the counts still add up and stay within one of the exact share.
    y = np.repeat([0, 1], [7, 4])
    _, _, _, y_te = train_test_split(np.zeros((11, 1)), y, test_size=5, seed=0, stratify=True)
    counts = np.bincount(y_te, minlength=2)
    assert counts.sum() == 5
    assert np.all(np.abs(counts - np.array([7, 4]) * 5 / 11) < 1)


def test_train_test_split_errors():
    X, y = _indexed(10)
    with pytest.raises(ValueError, match="rows"):
        train_test_split(X, y[:9])
    for bad in (0, 10, 0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="test"):
            train_test_split(X, y, test_size=bad)
    with pytest.raises(TypeError):
        train_test_split(X, y, test_size=True)
    with pytest.raises(ValueError, match="stratify"):
        train_test_split(X, np.array([0] * 9 + [1]), stratify=True)


def test_standardize_uses_train_statistics():
    rng = np.random.default_rng(0)
    X_train = rng.normal([5.0, -3.0, 100.0], [2.0, 0.1, 30.0], size=(200, 3))
    X_test = rng.normal([5.0, -3.0, 100.0], [2.0, 0.1, 30.0], size=(50, 3))
    Z_train, Z_test = standardize(X_train, X_test)
    np.testing.assert_allclose(Z_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z_train.std(axis=0), 1, atol=1e-12)
    expected = (X_test - X_train.mean(axis=0)) / X_train.std(axis=0)
    np.testing.assert_allclose(Z_test, expected)
    assert not np.allclose(Z_test.mean(axis=0), 0, atol=1e-6)  # not the test set's own stats


def test_standardize_returns_an_array_for_one_input_and_a_tuple_otherwise():
    X = np.arange(12.0).reshape(6, 2)
    single = standardize(X)
    assert isinstance(single, np.ndarray) and single.shape == (6, 2)
    out = standardize(X, X[:2], X[:3])
    assert isinstance(out, tuple) and [a.shape for a in out] == [(6, 2), (2, 2), (3, 2)]


def test_standardize_zero_variance_column_is_only_centred():
    X_train = np.column_stack([np.full(7, 0.1), np.arange(7.0)])
    X_test = np.array([[0.1, 3.0], [2.1, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divide-by-zero RuntimeWarning
        Z_train, Z_test = standardize(X_train, X_test)
    np.testing.assert_array_equal(Z_train[:, 0], 0.0)  # exactly 0, no rounding residue
    np.testing.assert_allclose(Z_test[:, 0], [0.0, 2.0])
    assert np.all(np.isfinite(Z_test))


def test_standardizer_round_trip_and_errors():
    X = np.random.default_rng(1).normal(3, 4, size=(30, 4))
    X[:, 2] = 7.0
    s = Standardizer().fit(X)
    np.testing.assert_allclose(s.mean_, X.mean(axis=0))
    np.testing.assert_allclose(s.std_, X.std(axis=0), atol=1e-15)
    assert s.std_[2] == 0 and s.scale_[2] == 1
    np.testing.assert_allclose(s.inverse_transform(s.transform(X)), X)
    np.testing.assert_allclose(Standardizer().fit_transform(X), s.transform(X))
    with pytest.raises(ValueError, match="shape"):
        s.transform(X[:, :3])
    with pytest.raises(RuntimeError, match="fit"):
        Standardizer().transform(X)


def test_one_hot_round_trip():
    y = np.array([2, 0, 1, 2, 4])
    Y = one_hot(y)
    assert Y.shape == (5, 5) and Y.dtype == np.float64
    np.testing.assert_array_equal(Y.argmax(axis=1), y)
    np.testing.assert_array_equal(Y.sum(axis=1), 1)
    assert set(np.unique(Y).tolist()) == {0.0, 1.0}
    Y7 = one_hot(y, n_classes=7)
    assert Y7.shape == (5, 7) and not Y7[:, 5:].any()
    np.testing.assert_array_equal(one_hot([1.0, 0.0]), [[0, 1], [1, 0]])  # whole floats are fine


@pytest.mark.parametrize(
    "y, n_classes, message",
    [
        ([0, -1, 2], None, "smallest"),
        ([0, 1.5], None, "whole"),
        ([0, np.nan], None, "whole"),
        ([0, 3], 3, "too small"),
        ([[0, 1]], None, "1-D"),
        (["a", "b"], None, "integers"),
        ([0, 1], 2.5, "n_classes"),
    ],
)
def test_one_hot_rejects_bad_labels(y, n_classes, message):
    with pytest.raises(ValueError, match=message):
        one_hot(y, n_classes)


# ------------------------------------------------------------ real datasets


def test_load_digits():
    ds = load_digits()
    assert isinstance(ds, Dataset)
    assert ds.X.shape == (1797, 64) and ds.X.dtype == np.float64
    assert ds.y.shape == (1797,) and ds.y.dtype == np.int64
    assert ds.images.shape == (1797, 8, 8)
    np.testing.assert_array_equal(ds.images.reshape(1797, 64), ds.X)
    assert ds.X.min() == 0 and ds.X.max() == 16
    np.testing.assert_array_equal(ds.X, np.round(ds.X))  # pixel counts are integers
    np.testing.assert_array_equal(np.bincount(ds.y), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    assert ds.target_names == tuple("0123456789")
    assert len(ds.feature_names) == 64 and ds.feature_names[9] == "pixel_1_1"
    assert "10.24432/C50P49" in ds.description
    X, y = ds  # unpacks like a generator's (X, y)
    assert X is ds.X and y is ds.y


def test_load_breast_cancer():
    ds = load_breast_cancer()
    assert ds.X.shape == (569, 30) and ds.X.dtype == np.float64
    assert ds.y.shape == (569,) and ds.y.dtype == np.int64
    assert ds.images is None
    assert ds.target_names == ("malignant", "benign")
    np.testing.assert_array_equal(np.bincount(ds.y), [212, 357])  # 0 = malignant, 1 = benign
    assert len(set(ds.feature_names)) == 30
    assert ds.feature_names[0] == "mean radius"
    assert ds.feature_names[-1] == "worst fractal dimension"
    assert np.all(ds.X >= 0)
    # The coding is right if malignant masses (y = 0) have the larger nuclei.
    radius = ds.X[:, ds.feature_names.index("mean radius")]
    assert radius[ds.y == 0].mean() > radius[ds.y == 1].mean() + 3
    assert "y = 1 means benign" in ds.description
    X, y = ds
    assert X.shape == (569, 30) and y.shape == (569,)


def test_loaders_return_fresh_arrays():
    a = load_digits()
    a.X[0, 0] = 99
    assert load_digits().X[0, 0] != 99


def _recorded_checksums():
    """{file: (bytes, sha256 of file, sha256 after gunzip)} from PROVENANCE.md's table."""
    text = (DATA_PKG / "PROVENANCE.md").read_text(encoding="utf-8")
    sha = r"\s*`([0-9a-f]{64})`\s*\|"
    row = re.compile(r"^\|\s*`([\w.]+)`\s*\|\s*(\d+)\s*\|" + sha + sha, re.MULTILINE)
    return {name: (int(size), f, raw) for name, size, f, raw in row.findall(text)}


def test_shipped_files_match_provenance_checksums():
    recorded = _recorded_checksums()
    shipped = {p.name for p in DATA_PKG.iterdir() if p.name.endswith(".csv.gz")}
    assert shipped == {"digits.csv.gz", "breast_cancer.csv.gz"}
    assert set(recorded) == shipped, "every shipped file needs a row in PROVENANCE.md"
    for name, (size, file_sha, raw_sha) in recorded.items():
        data = (DATA_PKG / name).read_bytes()
        assert len(data) == size, name
        assert hashlib.sha256(data).hexdigest() == file_sha, name
        assert hashlib.sha256(gzip.decompress(data)).hexdigest() == raw_sha, name


def test_data_files_are_declared_package_data():
    """A file that pyproject's package-data globs miss would be absent from the wheel."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["course_lib"]
    data_dir = ROOT / "course_lib" / "data"
    files = [p for p in data_dir.iterdir() if p.is_file() and p.suffix not in (".py", ".pyc")]
    assert {p.name for p in files} >= {"digits.csv.gz", "breast_cancer.csv.gz", "PROVENANCE.md"}
    for p in files:
        rel = f"data/{p.name}"
        assert any(fnmatch.fnmatch(rel, pat) for pat in patterns), f"{rel} is not package data"
        assert p.stat().st_size < 100_000, f"{rel} is too big to ship"


def test_loading_needs_no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("course_lib.data tried to open a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    with pytest.raises(AssertionError):  # the patch is live
        socket.socket()
    assert load_digits().X.shape == (1797, 64)
    assert load_breast_cancer().X.shape == (569, 30)
