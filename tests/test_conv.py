"""course_lib.nn Conv2D, MaxPooling2D and Flatten: against naive loops, hand-worked
examples and Keras's shapes; gradients checked numerically in float64."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import nn
from course_lib.gradcheck import check_model_gradients, numerical_gradient, rel_error
from tests.fixtures.padding import keras_same_pads

settings.register_profile("conv", deadline=None, max_examples=25, derandomize=True)
settings.load_profile("conv")

seeds = st.integers(0, 2**31 - 1)


# ----- independent reference implementations (loops, written from the definitions) -----
def naive_conv(X, W, b, s, padding):
    m, h, w, c_in = X.shape
    kh, kw, _, c_out = W.shape
    if padding == "same":
        (t, bo), (le, r) = keras_same_pads(h, kh, s), keras_same_pads(w, kw, s)
        X = np.pad(X, ((0, 0), (t, bo), (le, r), (0, 0)))
    oh, ow = (X.shape[1] - kh) // s + 1, (X.shape[2] - kw) // s + 1
    Z = np.zeros((m, oh, ow, c_out))
    for e in range(m):
        for i in range(oh):
            for j in range(ow):
                for k in range(c_out):
                    Z[e, i, j, k] = b[k] + np.sum(X[e, i * s : i * s + kh, j * s : j * s + kw, :] * W[:, :, :, k])
    return Z


def naive_maxpool(X, p, s):
    m, h, w, c = X.shape
    oh, ow = (h - p) // s + 1, (w - p) // s + 1
    A = np.zeros((m, oh, ow, c))
    for e in range(m):
        for i in range(oh):
            for j in range(ow):
                for k in range(c):
                    A[e, i, j, k] = X[e, i * s : i * s + p, j * s : j * s + p, k].max()
    return A


conv_cases = st.fixed_dictionaries(
    {
        "m": st.integers(1, 3),
        "h": st.integers(1, 7),
        "w": st.integers(1, 7),
        "c_in": st.integers(1, 3),
        "c_out": st.integers(1, 3),
        "kh": st.integers(1, 3),
        "kw": st.integers(1, 3),
        "s": st.sampled_from([1, 2]),
        "padding": st.sampled_from(["valid", "same"]),
        "seed": seeds,
    }
).filter(lambda d: d["padding"] == "same" or (d["h"] >= d["kh"] and d["w"] >= d["kw"]))


def _conv_inputs(d):
    rng = np.random.default_rng(d["seed"])
    X = rng.normal(size=(d["m"], d["h"], d["w"], d["c_in"]))
    W = rng.normal(size=(d["kh"], d["kw"], d["c_in"], d["c_out"]))
    return X, W, rng.normal(size=d["c_out"]), rng


# ----- convolution forward -------------------------------------------------------
@given(d=conv_cases)
def test_conv_forward_matches_a_naive_loop(d):
    X, W, b, _ = _conv_inputs(d)
    Z, _ = nn.conv_forward(X, W, b, (d["s"], d["s"]), d["padding"])
    np.testing.assert_allclose(Z, naive_conv(X, W, b, d["s"], d["padding"]), rtol=1e-12, atol=1e-12)


def test_diagonal_filter_by_hand():
    # Deck 004's 2×2 diagonal filter on a 3×3 image: each output adds a pixel and its lower-right neighbour.
    X = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)  # [[1,2,3],[4,5,6],[7,8,9]]
    Z, _ = nn.conv_forward(X, np.array([[1.0, 0.0], [0.0, 1.0]]).reshape(2, 2, 1, 1), np.zeros(1))
    np.testing.assert_array_equal(Z[0, :, :, 0], [[1 + 5, 2 + 6], [4 + 8, 5 + 9]])
    # An asymmetric kernel shows that the kernel is not flipped (cross-correlation).
    Z, _ = nn.conv_forward(X, np.array([[1.0, 2.0], [0.0, 0.0]]).reshape(2, 2, 1, 1), np.zeros(1))
    np.testing.assert_array_equal(Z[0, :, :, 0], [[1 + 4, 2 + 6], [4 + 10, 5 + 12]])


def test_the_course_diagonal_detector_responds_8_to_its_pattern():
    F = np.array([[-2.0, 2.0], [2.0, -2.0]]).reshape(2, 2, 1, 1)
    pattern = np.array([[-1.0, 1.0], [1.0, -1.0]]).reshape(1, 2, 2, 1)
    assert nn.conv_forward(pattern, F, np.zeros(1))[0].item() == 8.0
    assert nn.conv_forward(-pattern, F, np.zeros(1))[0].item() == -8.0  # the mirrored pattern


def test_same_padding_with_stride_2_pads_the_bottom_right():
    # 4×4 input, 3×3 kernel, stride 2: ceil(4/2) = 2 outputs need 1 pad row, which Keras
    # puts at the bottom. A kernel that picks its centre then reads X[1, 1], X[1, 3], ...
    X = np.arange(16.0).reshape(1, 4, 4, 1)
    centre = np.zeros((3, 3, 1, 1))
    centre[1, 1] = 1.0
    Z, _ = nn.conv_forward(X, centre, np.zeros(1), (2, 2), "same")
    np.testing.assert_array_equal(Z[0, :, :, 0], [[5.0, 7.0], [13.0, 15.0]])


@pytest.mark.parametrize(
    "n, k, s, padding, out",
    [
        (8, 3, 1, "same", 8),
        (7, 2, 1, "same", 7),
        (8, 3, 2, "same", 4),
        (7, 3, 2, "same", 4),
        (5, 2, 2, "same", 3),
        (4, 1, 2, "same", 2),
        (1, 3, 2, "same", 1),
        (8, 3, 1, "valid", 6),
        (8, 3, 2, "valid", 3),
        (7, 2, 2, "valid", 3),
        (3, 3, 2, "valid", 1),
    ],
)
def test_output_shapes_follow_keras(n, k, s, padding, out):
    layer = nn.Conv2D(4, k, strides=s, padding=padding, input_shape=(n, n + 1, 2))
    model = nn.Sequential([layer], seed=0)
    out_w = nn.conv.output_size(n + 1, k, s, padding)
    assert layer.output_dim == (out, out_w, 4)
    assert model.predict(np.zeros((2, n, n + 1, 2))).shape == (2, out, out_w, 4)


# ----- convolution backward ------------------------------------------------------
@given(d=conv_cases)
def test_conv_gradients_match_numerical(d):
    X, W, b, rng = _conv_inputs(d)
    strides = (d["s"], d["s"])
    Z, cache = nn.conv_forward(X, W, b, strides, d["padding"])
    G = rng.normal(size=Z.shape)  # L = Σ G ⊙ Z, so ∂L/∂Z = G

    def loss(X_, W_, b_):
        return np.sum(G * nn.conv_forward(X_, W_, b_, strides, d["padding"])[0])

    dX, dW, db = nn.conv_backward(G, cache, strides)
    assert rel_error(dX, numerical_gradient(lambda x: loss(x, W, b), X.copy())) < 1e-7
    assert rel_error(dW, numerical_gradient(lambda w: loss(X, w, b), W.copy())) < 1e-7
    assert rel_error(db, numerical_gradient(lambda b_: loss(X, W, b_), b.copy())) < 1e-7
    assert nn.conv_backward(G, cache, strides, need_dX=False)[0] is None


# ----- max pooling ---------------------------------------------------------------
def _distinct(rng, shape):
    """Values at least 1/size apart, so a 1e-5 nudge never changes a window's argmax."""
    return rng.permutation(math.prod(shape)).reshape(shape) / math.prod(shape)


@given(
    m=st.integers(1, 3),
    h=st.integers(2, 7),
    w=st.integers(2, 7),
    c=st.integers(1, 3),
    p=st.integers(1, 3),
    s=st.sampled_from([1, 2, 3]),
    seed=seeds,
)
def test_maxpool_forward_matches_a_naive_loop(m, h, w, c, p, s, seed):
    p = min(p, h, w)
    X = np.random.default_rng(seed).normal(size=(m, h, w, c))
    A, _ = nn.maxpool_forward(X, (p, p), (s, s))
    np.testing.assert_array_equal(A, naive_maxpool(X, p, s))


@given(
    m=st.integers(1, 2),
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    c=st.integers(1, 2),
    p=st.integers(1, 3),
    s=st.sampled_from([1, 2]),
    padding=st.sampled_from(["valid", "same"]),
    seed=seeds,
)
def test_maxpool_gradient_matches_numerical(m, h, w, c, p, s, padding, seed):
    if padding == "valid":
        p = min(p, h, w)
    rng = np.random.default_rng(seed)
    X = _distinct(rng, (m, h, w, c))
    A, cache = nn.maxpool_forward(X, (p, p), (s, s), padding)
    G = rng.normal(size=A.shape)
    numeric = numerical_gradient(lambda x: np.sum(G * nn.maxpool_forward(x, (p, p), (s, s), padding)[0]), X.copy())
    assert rel_error(nn.maxpool_backward(G, cache), numeric) < 1e-7


def test_maxpool_routes_the_gradient_to_the_argmax_only_and_ties_to_the_first():
    X = np.array([[3.0, 3.0, 0.0, 1.0], [1.0, 0.0, 2.0, 5.0]]).reshape(1, 2, 4, 1)
    A, cache = nn.maxpool_forward(X, (2, 2))
    np.testing.assert_array_equal(A[0, :, :, 0], [[3.0, 5.0]])
    dX = nn.maxpool_backward(np.array([10.0, 20.0]).reshape(1, 1, 2, 1), cache)[0, :, :, 0]
    # The tie 3, 3 goes to the first in reading order (top-left); 5 is at the bottom right.
    np.testing.assert_array_equal(dX, [[10.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 20.0]])


def test_a_nan_in_a_pool_window_is_its_maximum_and_the_gradient_goes_where_the_docstring_says():
    def pool(values):
        A, cache = nn.maxpool_forward(np.array(values).reshape(1, 2, 2, 1))
        return A.ravel(), nn.maxpool_backward(np.ones_like(A), cache).ravel()

    for values, grad in [
        ([1.0, 5.0, np.nan, 7.0], [0, 1, 0, 0]),  # the argmax of 1, 5, read before the NaN
        ([np.nan, 5.0, 2.0, 7.0], [1, 0, 0, 0]),  # the NaN, read first
    ]:
        A, dX = pool(values)
        assert np.isnan(A).all() and np.isnan(np.max(values))
        np.testing.assert_array_equal(dX, grad)


def test_overlapping_pool_windows_add_up_their_gradients():
    X = np.array([0.0, 9.0, 1.0, 2.0]).reshape(1, 1, 4, 1)
    _, cache = nn.maxpool_forward(X, (1, 2), (1, 1))  # windows [0,9], [9,1], [1,2]
    dX = nn.maxpool_backward(np.ones((1, 1, 3, 1)), cache)
    np.testing.assert_array_equal(dX.ravel(), [0.0, 2.0, 0.0, 1.0])


def test_pooling_has_no_weights_and_defaults_strides_to_the_pool_size():
    layer = nn.MaxPooling2D(input_shape=(7, 6, 3))
    model = nn.Sequential([layer])
    assert layer.params == [] and model.count_params() == 0
    assert layer.strides == (2, 2) and layer.output_dim == (3, 3, 3)
    assert nn.MaxPooling2D(3, strides=1).strides == (1, 1)


# ----- flatten -------------------------------------------------------------------
def test_flatten_round_trip_in_keras_order():
    X = np.random.default_rng(0).normal(size=(2, 3, 4, 5))
    layer = nn.Flatten()
    layer.build((3, 4, 5), None, np.float64)
    F = layer.forward(X)
    assert F.shape == (2, 60) and layer.output_dim == 60
    assert F[1, (2 * 4 + 1) * 5 + 3] == X[1, 2, 1, 3]  # channels vary fastest, then columns, then rows
    np.testing.assert_array_equal(layer.backward(F), X)


# ----- in a Sequential ---------------------------------------------------------------
def _small_convnet(seed, padding="valid", strides=1, conv_act="tanh"):
    return nn.Sequential(
        [
            nn.Conv2D(3, 3, strides=strides, padding=padding, activation=conv_act, input_shape=(6, 5, 2)),
            nn.MaxPooling2D(2, padding=padding),
            nn.Flatten(),
            nn.Dense(3, activation="softmax"),
        ],
        seed=seed,
    )


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides", [1, 2])
def test_whole_convnet_gradients_match_numerical(padding, strides):
    rng = np.random.default_rng(strides)
    model = _small_convnet(strides, padding, strides).compile(loss="sparse_categorical_crossentropy")
    X, y = rng.normal(size=(4, 6, 5, 2)), rng.integers(0, 3, size=4)
    errors = check_model_gradients(model, X, y)
    assert list(errors) == ["W1", "b1", "W2", "b2"]
    assert max(errors.values()) < 1e-7, errors


def test_summary_counts_parameters_like_keras(capsys):
    model = nn.Sequential(
        [
            nn.Conv2D(16, 5, padding="same", activation="relu", input_shape=(8, 8, 3)),
            nn.MaxPooling2D(),
            nn.Conv2D(8, (3, 2), activation="relu"),
            nn.Flatten(),
            nn.Dense(10, activation="softmax"),
        ]
    )
    model.summary()
    out = capsys.readouterr().out
    # 5·5·3·16 + 16, then 3·2·16·8 + 8 on (4, 4, 16) -> (2, 3, 8), flattened to 48.
    assert model.count_params() == 1216 + 776 + 48 * 10 + 10
    assert "(None, 8, 8, 16)" in out and "(None, 4, 4, 16)" in out and "(None, 2, 3, 8)" in out
    assert "(None, 48)" in out and "Total params: 2482" in out
    assert [w.shape for w in model.get_weights()] == [(5, 5, 3, 16), (16,), (3, 2, 16, 8), (8,), (48, 10), (10,)]


def test_get_and_set_weights_round_trip():
    a, b = _small_convnet(0), _small_convnet(1)
    X = np.random.default_rng(0).normal(size=(3, 6, 5, 2))
    assert not np.allclose(a.predict(X), b.predict(X))
    b.set_weights(a.get_weights())
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    W1 = a.get_weights()[0]
    with pytest.raises(ValueError, match=r"W1 must have shape \(3, 3, 2, 3\)"):
        b.set_weights([W1[:2], *a.get_weights()[1:]])


def test_conv_kernels_use_keras_fans_for_initialization():
    W = nn.glorot_uniform((5, 5, 16, 32), seed=0)  # fan_in = 5·5·16 = 400, fan_out = 5·5·32 = 800
    assert W.std() == pytest.approx(np.sqrt(2 / 1200), rel=0.03)
    assert nn.he_normal((5, 5, 16, 32), seed=0).std() == pytest.approx(np.sqrt(2 / 400), rel=0.03)


def _digits_images():
    from course_lib.data import load_digits, train_test_split

    X, y = load_digits()
    X = X.reshape(-1, 8, 8, 1) / 16.0  # pixels 0..16 -> 0..1, channels last
    return train_test_split(X, y, test_size=0.25, seed=0, stratify=True)


def _train_digits_convnet():
    X_train, X_test, y_train, y_test = _digits_images()
    model = nn.Sequential(
        [
            nn.Conv2D(8, 3, activation="relu", input_shape=(8, 8, 1), kernel_initializer="he_uniform"),
            nn.MaxPooling2D(),
            nn.Flatten(),
            nn.Dense(10, activation="softmax"),
        ],
        seed=0,
    )
    model.compile(loss="sparse_categorical_crossentropy", optimizer=nn.Adam(0.01), metrics=["accuracy"])
    history = model.fit(X_train, y_train, epochs=8, batch_size=32, verbose=0)
    return model, history, model.evaluate(X_test, y_test)


def test_small_convnet_learns_the_digits_deterministically():
    model, history, (loss, accuracy) = _train_digits_convnet()
    assert accuracy >= 0.93 and loss < 0.3
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    model2, history2, _ = _train_digits_convnet()
    assert history.history == history2.history
    for w1, w2 in zip(model.get_weights(), model2.get_weights()):
        np.testing.assert_array_equal(w1, w2)


def test_float32_convnet_stays_float32():
    model = nn.Sequential(
        [nn.Conv2D(2, 3, padding="same", input_shape=(5, 5, 1)), nn.MaxPooling2D(), nn.Flatten(), nn.Dense(2)],
        seed=0,
        dtype=np.float32,
    ).compile(loss="mse")
    X = np.random.default_rng(0).normal(size=(3, 5, 5, 1))
    assert model.predict(X).dtype == np.float32
    _, grads = model.gradients(X, np.zeros((3, 2)))
    assert all(g.dtype == np.float32 for g in grads)


def test_bad_shapes_get_clear_errors():
    model = nn.Sequential([nn.Conv2D(2, 3, input_shape=(8, 8, 1)), nn.Flatten(), nn.Dense(1)]).compile(loss="mse")
    with pytest.raises(ValueError, match=r"shape \(m, 8, 8, 1\)"):
        model.fit(np.zeros((4, 64)), np.zeros(4), verbose=0)
    with pytest.raises(ValueError, match="Flatten"):
        nn.Sequential([nn.Conv2D(2, 3, input_shape=(8, 8, 1)), nn.Dense(1)])
    with pytest.raises(ValueError, match="height, width, channels"):
        nn.Sequential([nn.Dense(4, input_dim=3), nn.Conv2D(2, 3)])
    with pytest.raises(ValueError, match="does not fit"):
        nn.Sequential([nn.Conv2D(2, 5, input_shape=(4, 4, 1))])
    with pytest.raises(ValueError, match="padding"):
        nn.Conv2D(2, 3, padding="full")
    with pytest.raises(ValueError, match="kernel_size"):
        nn.Conv2D(2, 0)


# ----- optional: PyTorch as a second, independent opinion ---------------------------
def test_conv_and_pool_gradients_match_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X, W, b = rng.normal(size=(2, 7, 6, 3)), rng.normal(size=(3, 3, 3, 4)), rng.normal(size=4)
    Z, cache = nn.conv_forward(X, W, b, (2, 2), "same")
    A, pool_cache = nn.maxpool_forward(Z, (2, 2))
    G = rng.normal(size=A.shape)
    dZ = nn.maxpool_backward(G, pool_cache)
    dX, dW, db = nn.conv_backward(dZ, cache, (2, 2))

    # PyTorch is channels-first, (m, c, h, w), with kernels (c_out, c_in, kh, kw) and
    # symmetric padding only: pad Keras's way (bottom/right gets the extra row) by hand.
    tX = torch.tensor(X.transpose(0, 3, 1, 2), requires_grad=True)
    tW = torch.tensor(W.transpose(3, 2, 0, 1), requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    (t, bo), (le, r) = keras_same_pads(7, 3, 2), keras_same_pads(6, 3, 2)
    tZ = torch.nn.functional.conv2d(torch.nn.functional.pad(tX, (le, r, t, bo)), tW, tb, stride=2)
    tA = torch.nn.functional.max_pool2d(tZ, 2)
    (tA * torch.tensor(G.transpose(0, 3, 1, 2))).sum().backward()
    np.testing.assert_allclose(A, tA.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-12)
    assert rel_error(dX, tX.grad.numpy().transpose(0, 2, 3, 1)) < 1e-12
    assert rel_error(dW, tW.grad.numpy().transpose(2, 3, 1, 0)) < 1e-12
    assert rel_error(db, tb.grad.numpy()) < 1e-12


# ----- the network diagram ---------------------------------------------------------
def test_network_diagram_draws_conv_layers_as_boxes_with_shapes():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    from course_lib import plots

    model = nn.Sequential(
        [
            nn.Conv2D(8, 3, activation="relu", input_shape=(8, 8, 1)),
            nn.MaxPooling2D(),
            nn.Flatten(),
            nn.Dense(10, activation="softmax"),
        ]
    )
    ax = plots.plot_network(model)
    texts = [t.get_text() for t in ax.texts]
    assert sum(isinstance(p, FancyBboxPatch) for p in ax.patches) == 5  # input + 4 layers
    assert {"(8, 8, 1)", "(6, 6, 8)", "(3, 3, 8)", "(72,)", "(10,)"} <= set(texts)
    assert "Conv2D\n8 × 3×3\nvalid, relu" in texts and "MaxPooling2D\n2×2" in texts
    assert {"80 params", "0 params", "730 params"} <= set(texts)  # 3·3·1·8 + 8 and 72·10 + 10
    assert ax.get_title() == "810 parameters"
    plt.close(ax.figure)
