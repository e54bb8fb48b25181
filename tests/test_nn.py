"""course_lib.nn: derivatives checked numerically, numerics at extremes, training, reproducibility."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import nn
from course_lib.gradcheck import check_model_gradients, numerical_gradient, rel_error
from course_lib.nn.activations import ACTIVATIONS

ELEMENTWISE = ["identity", "sigmoid", "tanh", "relu", "softplus"]
settings.register_profile("course", deadline=None, max_examples=25, derandomize=True)
settings.load_profile("course")

shapes = st.tuples(st.integers(1, 5), st.integers(1, 4))
seeds = st.integers(0, 2**31 - 1)


def _away_from_kinks(z):
    # ReLU has no derivative at 0; keep sample points clear of it.
    return np.where(np.abs(z) < 1e-3, 0.5, z)


@pytest.mark.parametrize("name", ELEMENTWISE)
@given(shape=shapes, seed=seeds)
def test_activation_derivative_matches_centered_differences(name, shape, seed):
    act = ACTIVATIONS[name]
    z = _away_from_kinks(np.random.default_rng(seed).normal(0, 3, size=shape))
    numeric = np.empty_like(z)
    for idx in np.ndindex(z.shape):  # derivative of g at each entry separately
        e = np.zeros_like(z)
        e[idx] = 1e-5
        numeric[idx] = ((act(z + e) - act(z - e)) / 2e-5)[idx]
    assert rel_error(act.derivative(z), numeric) < 1e-7


@given(shape=shapes, seed=seeds)
def test_softmax_backward_is_the_jacobian_vector_product(shape, seed):
    rng = np.random.default_rng(seed)
    Z, G = rng.normal(size=shape), rng.normal(size=shape)
    A = nn.softmax(Z)
    analytic = ACTIVATIONS["softmax"].backward(G, Z, A)
    numeric = numerical_gradient(lambda z: np.sum(G * nn.softmax(z)), Z.copy())
    assert rel_error(analytic, numeric) < 1e-7


@pytest.mark.parametrize(
    "loss, make_targets",
    [
        (nn.mse_loss, lambda rng, s: rng.normal(size=s)),
        (nn.binary_cross_entropy, lambda rng, s: rng.integers(0, 2, size=s).astype(float)),
        (nn.binary_cross_entropy_with_logits, lambda rng, s: rng.integers(0, 2, size=s).astype(float)),
        (nn.categorical_cross_entropy, lambda rng, s: np.eye(s[1])[rng.integers(0, s[1], size=s[0])]),
        (nn.softmax_cross_entropy_with_logits, lambda rng, s: np.eye(s[1])[rng.integers(0, s[1], size=s[0])]),
    ],
)
@given(shape=shapes, seed=seeds)
def test_loss_gradients_match_numerical(loss, make_targets, shape, seed):
    rng = np.random.default_rng(seed)
    y = make_targets(rng, shape)
    if loss in (nn.binary_cross_entropy, nn.categorical_cross_entropy):
        p = rng.uniform(0.05, 0.95, size=shape)  # probabilities inside the clip range
    else:
        p = rng.normal(size=shape)
    _, grad = loss(p, y)
    assert rel_error(grad, numerical_gradient(lambda q: loss(q, y)[0], p.copy())) < 1e-7


def test_loss_values_follow_the_course_conventions():
    y_hat, y = np.array([[1.0], [3.0]]), np.array([[0.0], [1.0]])
    assert nn.mse_loss(y_hat, y)[0] == pytest.approx((1 + 4) / (2 * 2))  # 1/(2m) Σ‖ŷ−y‖²
    p, t = np.array([[0.9], [0.2]]), np.array([[1.0], [0.0]])
    assert nn.binary_cross_entropy(p, t)[0] == pytest.approx(-(np.log(0.9) + np.log(0.8)) / 2)
    P, Y = np.array([[0.7, 0.2, 0.1]]), np.array([[0.0, 1.0, 0.0]])
    assert nn.categorical_cross_entropy(P, Y)[0] == pytest.approx(-np.log(0.2))


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize(
    "activation, loss, out_act",
    [
        ("sigmoid", "binary_crossentropy", "sigmoid"),
        ("tanh", "mse", None),
        ("softplus", "categorical_crossentropy", "softmax"),
        ("relu", "sparse_categorical_crossentropy", "softmax"),
    ],
)
def test_whole_model_gradients_match_numerical(depth, activation, loss, out_act):
    rng = np.random.default_rng(depth)
    n_out = 3 if out_act == "softmax" else 1
    layers = [nn.Dense(4, activation=activation, input_dim=3)]
    layers += [nn.Dense(5 - i % 2, activation=activation) for i in range(depth - 1)]
    layers += [nn.Dense(n_out, activation=out_act)]
    model = nn.Sequential(layers, seed=depth).compile(loss=loss)
    X = rng.normal(size=(7, 3))
    if loss == "sparse_categorical_crossentropy":
        y = rng.integers(0, 3, size=7)
    elif out_act == "softmax":
        y = np.eye(3)[rng.integers(0, 3, size=7)]
    elif loss == "mse":
        y = rng.normal(size=(7, 1))
    else:
        y = rng.integers(0, 2, size=(7, 1))
    if activation == "relu":  # move pre-activations away from the kink at 0
        for layer in model.layers:
            layer.b += 0.05
    # Deep sigmoid nets have tiny first-layer gradients (vanishing gradients), so
    # at h=1e-5 rounding noise is ~1e-7 of them; h=1e-4 keeps the O(h²) term and
    # the noise both far below the 1e-7 bar.
    errors = check_model_gradients(model, X, y, h=1e-4)
    assert max(errors.values()) < 1e-7, errors


@given(m=st.integers(1, 6), n_in=st.integers(1, 4), units=st.integers(1, 4), seed=seeds)
def test_l2_penalty_gradient_is_included(m, n_in, units, seed):
    rng = np.random.default_rng(seed)
    model = nn.Sequential(
        [nn.Dense(units, activation="tanh", input_dim=n_in, l2=0.1), nn.Dense(1, l2=0.05)], seed=seed
    ).compile(loss="mse")
    X, y = rng.normal(size=(m, n_in)), rng.normal(size=(m, 1))
    assert max(check_model_gradients(model, X, y).values()) < 1e-7


def test_gradients_are_in_get_weights_order_and_do_not_change_the_model():
    model = nn.Sequential([nn.Dense(3, activation="sigmoid", input_dim=2), nn.Dense(1, activation="sigmoid")], seed=1)
    model.compile(loss="binary_crossentropy")
    before = model.get_weights()
    _, grads = model.gradients(np.ones((4, 2)), np.ones(4))
    assert [g.shape for g in grads] == [w.shape for w in before] == [(2, 3), (3,), (3, 1), (1,)]
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_sigmoid_and_softmax_are_stable_at_extremes():
    z = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any overflow warning fails the test
        s = nn.sigmoid(z)
        p = nn.softmax(np.array([[1000.0, 0.0, -1000.0], [-1000.0, -1000.0, -1000.0]]))
        bce, _ = nn.binary_cross_entropy(np.array([[0.0], [1.0]]), np.array([[1.0], [0.0]]))
        bce_logits, _ = nn.binary_cross_entropy_with_logits(np.array([[-1000.0]]), np.array([[1.0]]))
    assert np.all(np.isfinite(s)) and s[0] == 0.0 and s[-1] == 1.0 and s[2] == 0.5
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(p[1], [1 / 3] * 3)
    assert np.isfinite(bce) and bce > 30  # confident and wrong: large but finite
    assert bce_logits == pytest.approx(1000.0)
    assert nn.sigmoid(np.float32(-1000)).dtype == np.float32


def test_relu_derivative_is_zero_at_the_kink_and_softplus_is_smooth_relu():
    assert nn.ACTIVATIONS["relu"].derivative(np.array([0.0]))[0] == 0.0
    z = np.array([-30.0, 30.0])
    np.testing.assert_allclose(nn.softplus(z), nn.relu(z), atol=1e-12)


def _xor():
    return np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float), np.array([0, 1, 1, 0])


def test_mlp_learns_xor():
    X, y = _xor()
    model = nn.Sequential([nn.Dense(4, activation="tanh", input_dim=2), nn.Dense(1, activation="sigmoid")], seed=0)
    model.compile(loss="binary_crossentropy", optimizer=nn.Adam(0.05), metrics=["accuracy"])
    model.fit(X, y, epochs=300, batch_size=4, verbose=0)
    loss, acc = model.evaluate(X, y)
    assert acc == 1.0 and loss < 0.1


def test_logistic_regression_cannot_learn_xor():
    X, y = _xor()
    model = nn.Sequential([nn.Dense(1, activation="sigmoid", input_dim=2)], seed=0)
    model.compile(loss="binary_crossentropy", optimizer=nn.Adam(0.05), metrics=["accuracy"])
    model.fit(X, y, epochs=300, batch_size=4, verbose=0)
    assert model.evaluate(X, y)[1] <= 0.75


def test_zero_initialization_keeps_hidden_units_identical():
    X, y = _xor()
    model = nn.Sequential(
        [
            nn.Dense(3, activation="tanh", input_dim=2, kernel_initializer="zeros"),
            nn.Dense(1, activation="sigmoid", kernel_initializer="zeros"),
        ],
        seed=0,
    )
    model.compile(loss="binary_crossentropy", optimizer=nn.SGD(0.5))
    model.fit(X, y, epochs=50, batch_size=4, verbose=0)
    W1 = model.get_weights()[0]
    assert np.allclose(W1, W1[:, :1])  # every hidden unit still has the same weights


@pytest.mark.parametrize("optimizer", [nn.SGD(0.1), nn.SGD(0.05, momentum=0.9), nn.Adam(0.01)])
def test_every_optimizer_reduces_the_loss(optimizer):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    y = (X @ np.array([1.0, -2.0, 0.5]) > 0).astype(float)
    model = nn.Sequential([nn.Dense(8, activation="relu", input_dim=3), nn.Dense(1, activation="sigmoid")], seed=0)
    model.compile(loss="binary_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    history = model.fit(X, y, epochs=40, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.6 * history.history["loss"][0]


def test_fixed_seed_reproduces_training_exactly():
    def run():
        rng = np.random.default_rng(3)
        X, y = rng.normal(size=(50, 2)), rng.integers(0, 2, 50)
        model = nn.Sequential(
            [nn.Dense(5, activation="relu", input_dim=2), nn.Dropout(0.2), nn.Dense(1, activation="sigmoid")], seed=42
        )
        model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
        h = model.fit(X, y, epochs=5, batch_size=8, verbose=0)
        return h.history["loss"], model.get_weights()

    (l1, w1), (l2, w2) = run(), run()
    assert l1 == l2
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)


def test_dropout_is_active_only_in_training():
    layer = nn.Dropout(0.5, seed=0)
    layer.build(1000, np.random.default_rng(0), np.float64)
    X = np.ones((4, 1000))
    np.testing.assert_array_equal(layer.forward(X, training=False), X)
    out = layer.forward(X, training=True)
    assert set(np.unique(out)) == {0.0, 2.0}  # inverted dropout scales survivors by 1/(1-p)
    assert 0.45 < np.mean(out == 0) < 0.55
    np.testing.assert_array_equal(layer.backward(np.ones_like(X)), out)


def test_early_stopping_stops_and_restores_best_weights():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 2)), rng.integers(0, 2, size=40)  # pure noise: val loss rises
    Xv, yv = rng.normal(size=(40, 2)), rng.integers(0, 2, size=40)
    stop = nn.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    model = nn.Sequential([nn.Dense(32, activation="relu", input_dim=2), nn.Dense(1, activation="sigmoid")], seed=0)
    model.compile(loss="binary_crossentropy", optimizer=nn.Adam(0.05))
    h = model.fit(X, y, epochs=200, batch_size=8, validation_data=(Xv, yv), callbacks=[stop], verbose=0)
    assert len(h.history["val_loss"]) < 200
    assert model.evaluate(Xv, yv) == pytest.approx(min(h.history["val_loss"]))


def test_keras_seed_snippet_runs_with_the_same_calls():
    rng = np.random.default_rng(0)
    XTrain = rng.normal(size=(40, 2))
    yTrain = (XTrain[:, 0] * XTrain[:, 1] > 0).astype(int)
    modelMc = nn.Sequential(seed=0)
    modelMc.add(nn.Dense(units=3, input_dim=2, activation="sigmoid"))
    modelMc.add(nn.Dense(units=1, activation="sigmoid"))
    modelMc.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    modelMc.fit(XTrain, yTrain, epochs=3, batch_size=10, verbose=0)
    assert [w.shape for w in modelMc.get_weights()] == [(2, 3), (3,), (3, 1), (1,)]
    score = modelMc.evaluate(XTrain, yTrain)
    assert len(score) == 2 and 0 <= score[1] <= 1


def test_summary_counts_parameters(capsys):
    model = nn.Sequential(
        [
            nn.Dense(12, activation="relu", input_dim=8),
            nn.Dense(8, activation="relu"),
            nn.Dense(1, activation="sigmoid"),
        ]
    )
    model.summary()
    out = capsys.readouterr().out
    assert model.count_params() == (8 * 12 + 12) + (12 * 8 + 8) + (8 + 1)
    assert f"Total params: {model.count_params()}" in out


def test_set_weights_rejects_transposed_arrays_with_a_hint():
    model = nn.Sequential([nn.Dense(3, input_dim=2)])
    W, b = model.get_weights()
    with pytest.raises(ValueError, match="transposed"):
        model.set_weights([W.T, b])


def test_bad_input_gets_clear_errors():
    model = nn.Sequential([nn.Dense(3, input_dim=2), nn.Dense(1)])
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(np.ones((2, 2)), np.ones(2))
    model.compile(loss="mse")
    with pytest.raises(ValueError, match=r"shape \(m, 2\)"):
        model.fit(np.ones((2, 3)), np.ones(2), verbose=0)
    with pytest.raises(ValueError, match="Unknown activation"):
        nn.Dense(3, activation="sigmiod")
    with pytest.raises(ValueError, match="Unknown loss"):
        model.compile(loss="cross_entropy")


@pytest.mark.parametrize(
    "name", ["zeros", "random_normal", "glorot_uniform", "glorot_normal", "he_normal", "he_uniform"]
)
def test_initializers_are_seeded_and_scaled(name):
    init = nn.INITIALIZERS[name]
    a, b = init((400, 300), seed=1), init((400, 300), seed=1)
    np.testing.assert_array_equal(a, b)
    expected_std = {
        "zeros": 0.0,
        "random_normal": 0.01,
        "glorot_uniform": np.sqrt(2 / 700),
        "glorot_normal": np.sqrt(2 / 700),
        "he_normal": np.sqrt(2 / 400),
        "he_uniform": np.sqrt(2 / 400),
    }[name]
    assert a.std() == pytest.approx(expected_std, rel=0.03, abs=1e-12)
    if name != "zeros":
        assert not np.array_equal(a, init((400, 300), seed=2))
        gen = np.random.default_rng(5)
        assert not np.array_equal(init((3, 3), seed=gen), init((3, 3), seed=gen))


def test_float32_model_stays_float32():
    model = nn.Sequential(
        [nn.Dense(4, activation="relu", input_dim=3), nn.Dense(2, activation="softmax")], seed=0, dtype=np.float32
    )
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd")
    X = np.random.default_rng(0).normal(size=(8, 3))
    assert model.predict(X).dtype == np.float32
    _, grads = model.gradients(X, np.arange(8) % 2)
    assert all(g.dtype == np.float32 for g in grads)


def test_mlp_reaches_90_percent_on_the_shipped_digits():
    from course_lib.data import load_digits, one_hot, standardize, train_test_split

    X, y = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, seed=0, stratify=True)
    X_train, X_test = standardize(X_train, X_test)
    model = nn.Sequential([nn.Dense(32, activation="relu", input_dim=64), nn.Dense(10, activation="softmax")], seed=0)
    model.compile(loss="categorical_crossentropy", optimizer=nn.Adam(0.01), metrics=["accuracy"])
    model.fit(X_train, one_hot(y_train, 10), epochs=15, batch_size=32, verbose=0)
    _, accuracy = model.evaluate(X_test, one_hot(y_test, 10))
    assert accuracy >= 0.90


def test_fit_shows_a_progress_bar_only_when_verbose(capsys):
    X, y = _xor()
    model = nn.Sequential([nn.Dense(2, activation="tanh", input_dim=2), nn.Dense(1, activation="sigmoid")], seed=0)
    model.compile(loss="binary_crossentropy", optimizer="sgd")
    model.fit(X, y, epochs=3, verbose=0)
    assert capsys.readouterr().out == ""
    model.fit(X, y, epochs=3, verbose=1)
    out = capsys.readouterr().out
    assert "3/3" in out and "loss=" in out


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_backward_equals_dA_times_the_derivative_bit_for_bit(name, dtype):
    # sigmoid, tanh and relu backpropagate through shortcuts (reusing A, a boolean mask);
    # they must give exactly dA * g'(Z), signed zeros included, so training is unchanged.
    rng = np.random.default_rng(3)
    Z = rng.normal(0, 3, size=(6, 5)).astype(dtype)
    Z[0, :4] = [0.0, -0.0, 40.0, -40.0]
    dA = rng.normal(size=Z.shape).astype(dtype)
    act = ACTIVATIONS[name]
    got = act.backward(dA, Z, act(Z))
    expected = dA * act.derivative(Z)
    assert got.dtype == expected.dtype == dtype
    assert got.tobytes() == expected.tobytes()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_softmax_cross_entropy_gradient_is_exactly_softmax_minus_targets(dtype):
    rng = np.random.default_rng(4)
    Z = rng.normal(0, 5, size=(7, 4)).astype(dtype)
    Y = np.eye(4, dtype=dtype)[rng.integers(0, 4, size=7)]
    _, dZ = nn.softmax_cross_entropy_with_logits(Z, Y)
    assert dZ.tobytes() == ((nn.softmax(Z) - Y) / 7).tobytes()
