"""Reference linear models and the gradient checker."""

import numpy as np
import pytest

from course_lib import linear
from course_lib.gradcheck import numerical_gradient, rel_error

AND_BIPOLAR = (np.array([[-1, -1], [-1, 1], [1, -1], [1, 1]], float), np.array([-1, -1, -1, 1]))
OR_BIPOLAR = (AND_BIPOLAR[0], np.array([-1, 1, 1, 1]))
XOR_BIPOLAR = (AND_BIPOLAR[0], np.array([-1, 1, 1, -1]))


def test_normal_equations_match_lstsq():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    y = rng.normal(size=(30, 2))
    W, b = linear.normal_equation(X, y)
    theta, *_ = np.linalg.lstsq(np.hstack([np.ones((30, 1)), X]), y, rcond=None)
    np.testing.assert_allclose(b, theta[0], atol=1e-10)
    np.testing.assert_allclose(W, theta[1:], atol=1e-10)


def test_normal_equations_explain_a_singular_system():
    X = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])  # second column = 2 × first
    with pytest.raises(np.linalg.LinAlgError, match="linear combinations"):
        linear.normal_equation(X, np.array([1.0, 2.0, 3.0]))


def test_gradient_descent_reaches_the_normal_equation_solution():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 2))
    y = X @ np.array([2.0, -1.0]) + 0.5 + 0.1 * rng.normal(size=100)
    exact = linear.LinearRegression("normal").fit(X, y)
    gd = linear.LinearRegression("gd", learning_rate=0.1, epochs=2000).fit(X, y)
    np.testing.assert_allclose(gd.W, exact.W, atol=1e-6)
    np.testing.assert_allclose(gd.b, exact.b, atol=1e-6)
    assert np.all(np.diff(gd.losses_) <= 1e-12)  # a small enough step never increases the loss
    assert gd.predict(X).shape == (100,)


def test_logistic_regression_separates_blobs():
    rng = np.random.default_rng(2)
    X = np.vstack([rng.normal(-2, 1, (50, 2)), rng.normal(2, 1, (50, 2))])
    y = np.repeat([0, 1], 50)
    model = linear.LogisticRegression(learning_rate=0.5, epochs=500).fit(X, y)
    assert np.mean(model.predict(X) == y) >= 0.95
    assert model.losses_[-1] < model.losses_[0]
    with pytest.raises(ValueError, match="0 and 1"):
        linear.LogisticRegression().fit(X, y * 2)


def test_softmax_regression_on_three_blobs():
    rng = np.random.default_rng(3)
    centers = np.array([[0, 4], [-4, -2], [4, -2]])
    X = np.vstack([rng.normal(c, 1, (40, 2)) for c in centers])
    y = np.repeat([0, 1, 2], 40)
    model = linear.SoftmaxRegression(learning_rate=0.5, epochs=300).fit(X, y)
    assert np.mean(model.predict(X) == y) >= 0.95
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)


@pytest.mark.parametrize("data", [AND_BIPOLAR, OR_BIPOLAR])
def test_perceptron_learns_linearly_separable_gates(data):
    X, y = data
    p = linear.Perceptron(learning_rate=0.5, seed=0).fit(X, y)
    assert p.converged_
    np.testing.assert_array_equal(p.predict(X), y)


def test_perceptron_never_converges_on_xor():
    X, y = XOR_BIPOLAR
    p = linear.Perceptron(learning_rate=0.5, max_epochs=50, seed=0).fit(X, y)
    assert not p.converged_ and min(p.errors_) > 0


def test_perceptron_without_shuffle_visits_examples_in_order():
    # AND from w = 0, b = 0 in the given order, worked by hand with the slides' rule (η = 0.5):
    # epoch 1: only (+1,+1) is wrong (net 0 -> o = -1): w = (1, 1), b = 1.
    # epoch 2: (-1,+1) is wrong: w = (2, 0), b = 0; then (+1,-1): w = (1, 1), b = -1.
    # epoch 3: no mistakes; the line -1 + x1 + x2 = 0 of the slides.
    X, y = AND_BIPOLAR
    assert [tuple(x) for x in X] == [(-1, -1), (-1, 1), (1, -1), (1, 1)]
    p = linear.Perceptron(learning_rate=0.5, shuffle=False).fit(X, y)
    assert p.errors_ == [1, 2, 0] and p.w.tolist() == [1.0, 1.0] and p.b == -1.0
    shuffled = [linear.Perceptron(learning_rate=0.5, seed=s).fit(X, y).errors_ for s in range(8)]
    assert any(e != [1, 2, 0] for e in shuffled)  # the default order really is random


def test_sign_of_zero_is_minus_one_as_in_the_slides():
    np.testing.assert_array_equal(linear.sign(np.array([-2.0, 0.0, 3.0])), [-1, -1, 1])


def test_numerical_gradient_of_a_known_function():
    A = np.array([[2.0, 1.0], [1.0, 3.0]])
    x = np.array([0.5, -1.0])
    g = numerical_gradient(lambda v: v @ A @ v, x.copy())
    assert rel_error(g, 2 * A @ x) < 1e-9
    np.testing.assert_array_equal(x, [0.5, -1.0])


def test_numerical_gradient_refuses_float32():
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda v: float(v.sum()), np.ones(3, dtype=np.float32))


def test_rel_error_thresholds():
    a = np.array([1.0, 2.0, 3.0])
    assert rel_error(a, a) == 0.0
    assert rel_error(a, a * (1 + 1e-9)) < 1e-7
    assert rel_error(a, -a) > 1e-2
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
