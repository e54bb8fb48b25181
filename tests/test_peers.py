"""course_lib.nn against the conventions of its peers (PyTorch, Keras, Kingma & Ba), without torch.

Every reference here is written from the peer's documented formula with plain loops,
in the peer's own layout where it differs (PyTorch is channels-first: x (N, C, H, W),
conv weights (C_out, C_in, kH, kW)); course_lib is channels-last like Keras
(X (m, h, w, c), W (kh, kw, c_in, c_out)), so the tests transpose between the two.
Backward passes are checked by centered differences in float64, computed here, not
with course_lib.gradcheck, so a bug there cannot hide one in the layers.

Deliberate differences from PyTorch, pinned so graders can see them (and the docs say so):
* mse is 1/(2m) Σ‖ŷ − y‖² (torch's MSELoss: mean over all m·k entries, no ½);
* the cross-entropies average over examples and sum over outputs (torch's BCE averages
  over all m·k entries; the two agree for one output);
* Adam adds ε to √s, not to √ŝ (Kingma & Ba's "efficient" form, as Keras); torch adds it to √ŝ;
* MaxPooling2D ties go to the first maximum in reading order (one element, as torch's CPU kernel).
"""

import math

import numpy as np
import pytest

from course_lib import nn
from tests.fixtures.padding import keras_same_pads

EPS_FD = 1e-6


# ----- helpers: centered differences and peers' formulas as loops -------------------
def num_grad(f, x, h=EPS_FD):
    """∂f/∂x by centered differences; x (float64) is perturbed in place and restored."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = f()
        x[i] = old - h
        down = f()
        x[i] = old
        g[i] = (up - down) / (2 * h)
    return g


def close(a, b, tol=1e-7):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = max(1e-8, float(np.max(np.abs(a) + np.abs(b), initial=0.0)))
    assert float(np.max(np.abs(a - b), initial=0.0)) / scale < tol


def torch_conv2d(x, w, b, stride, pads):
    """torch.nn.functional.conv2d on an explicitly padded input, from its documented formula:
    out(n, j) = bias(j) + Σ_k weight(j, k) ⋆ input(n, k), ⋆ the (unflipped) cross-correlation.
    x: (N, C_in, H, W), w: (C_out, C_in, kH, kW), pads = ((top, bottom), (left, right))."""
    (t, bo), (le, r) = pads
    xp = np.pad(x, ((0, 0), (0, 0), (t, bo), (le, r)))
    n, c_in, hp, wp = xp.shape
    c_out, _, kh, kw = w.shape
    oh, ow = (hp - kh) // stride + 1, (wp - kw) // stride + 1  # torch: ⌊(H + pads − k)/s⌋ + 1
    out = np.zeros((n, c_out, oh, ow))
    for e in range(n):
        for j in range(c_out):
            for i in range(oh):
                for q in range(ow):
                    acc = b[j]
                    for c in range(c_in):
                        for u in range(kh):
                            for v in range(kw):
                                acc += w[j, c, u, v] * xp[e, c, i * stride + u, q * stride + v]
                    out[e, j, i, q] = acc
    return out


def torch_max_pool2d(x, k, s):
    """max_pool2d with indices (N, C, H, W): the first maximum in row-major scan wins a tie."""
    n, c, h, w = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    out, idx = np.zeros((n, c, oh, ow)), np.zeros((n, c, oh, ow, 2), dtype=int)
    for e, ch, i, j in np.ndindex(n, c, oh, ow):
        best = None
        for u in range(k):
            for v in range(k):
                val = x[e, ch, i * s + u, j * s + v]
                if best is None or val > best:
                    best, idx[e, ch, i, j] = val, (i * s + u, j * s + v)
        out[e, ch, i, j] = best
    return out, idx


def nchw(X):
    return X.transpose(0, 3, 1, 2)


def oihw(W):
    return W.transpose(3, 2, 0, 1)


def built(layer, input_dim, seed=0):
    layer.build(input_dim, np.random.default_rng(seed), np.float64)
    return layer


# ----- Conv2D: cross-correlation, sizes, bias, layout ---------------------------------
CONV_CASES = [  # m, h, w, c_in, c_out, kh, kw, stride, padding
    (1, 5, 5, 1, 1, 3, 3, 1, "valid"),
    (1, 7, 6, 3, 4, 3, 3, 2, "same"),
    (2, 6, 7, 2, 3, 2, 3, 2, "valid"),
    (3, 5, 4, 2, 2, 3, 2, 3, "same"),
    (2, 1, 5, 3, 1, 1, 2, 1, "same"),
    (1, 9, 9, 2, 5, 5, 5, 2, "same"),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_forward_equals_torch_conv2d_in_its_own_layout(case):
    m, h, w, c_in, c_out, kh, kw, s, padding = case
    rng = np.random.default_rng(sum(case[:-1]))
    X, W, b = rng.normal(size=(m, h, w, c_in)), rng.normal(size=(kh, kw, c_in, c_out)), rng.normal(size=c_out)
    pads = (keras_same_pads(h, kh, s), keras_same_pads(w, kw, s)) if padding == "same" else ((0, 0), (0, 0))
    Z, _ = nn.conv_forward(X, W, b, (s, s), padding)
    close(nchw(Z), torch_conv2d(nchw(X), oihw(W), b, s, pads), 1e-12)
    expected = [math.ceil(n / s) if padding == "same" else (n - k) // s + 1 for n, k in ((h, kh), (w, kw))]
    assert Z.shape == (m, *expected, c_out)
    assert built(nn.Conv2D(c_out, (kh, kw), s, padding), (h, w, c_in)).output_dim == (*expected, c_out)


def test_conv_does_not_flip_the_kernel():
    X = np.arange(25.0).reshape(1, 5, 5, 1)
    W = np.zeros((3, 3, 1, 1))
    W[0, 0] = 1.0  # picks the window's top-left pixel; a flipped kernel would pick its bottom-right
    Z, _ = nn.conv_forward(X, W, np.zeros(1), (2, 2), "valid")
    np.testing.assert_array_equal(Z[0, :, :, 0], X[0, ::2, ::2, 0][:2, :2])


def test_conv_bias_is_one_number_per_output_channel():
    b = np.array([0.5, -2.0, 3.0])
    Z, _ = nn.conv_forward(np.zeros((2, 4, 5, 2)), np.ones((3, 3, 2, 3)), b, (1, 1), "same")
    np.testing.assert_array_equal(Z, np.broadcast_to(b, Z.shape))


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_conv2d_layer_backward_matches_centered_differences(case, activation):
    m, h, w, c_in, c_out, kh, kw, s, padding = case
    rng = np.random.default_rng(7 + sum(case[:-1]))
    layer = built(nn.Conv2D(c_out, (kh, kw), s, padding, activation=activation), (h, w, c_in))
    layer.W[...] = rng.normal(size=layer.W.shape)
    layer.b[...] = rng.normal(size=layer.b.shape)
    X = rng.normal(size=(m, h, w, c_in))
    G = rng.normal(size=(m, *layer.output_dim))

    def loss():
        return float(np.sum(G * layer.forward(X)))

    loss()
    dX = layer.backward(G)
    dW, db = layer.dW.copy(), layer.db.copy()
    tol = 1e-5 if activation == "relu" else 1e-7  # a kink may sit within h of a sample
    close(dX, num_grad(loss, X), tol)
    close(dW, num_grad(loss, layer.W), tol)
    close(db, num_grad(loss, layer.b), tol)


# ----- pooling: torch's routing of the maximum, subgradients, overlap -----------------
@pytest.mark.parametrize("k, s", [(2, 2), (3, 2), (2, 1), (3, 3)])
def test_maxpool_forward_and_gradient_routing_equal_torch_with_ties(k, s):
    rng = np.random.default_rng(k * 10 + s)
    X = rng.integers(0, 3, size=(2, 7, 6, 3)).astype(float)  # three values: ties everywhere
    A, cache = nn.maxpool_forward(X, (k, k), (s, s))
    ref, idx = torch_max_pool2d(nchw(X), k, s)
    np.testing.assert_array_equal(nchw(A), ref)
    G = rng.normal(size=A.shape)
    expected = np.zeros(nchw(X).shape)
    for e, c, i, j in np.ndindex(ref.shape):  # torch's backward: scatter-add at the saved index
        expected[(e, c, *idx[e, c, i, j])] += nchw(G)[e, c, i, j]
    np.testing.assert_allclose(nchw(nn.maxpool_backward(G, cache)), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_maxpool_gradient_at_ties_is_a_subgradient(padding):
    """f(X) = Σ G·maxpool(X) is convex for G ≥ 0: a subgradient g satisfies f(X + D) ≥ f(X) + <g, D>."""
    rng = np.random.default_rng(3)
    X = rng.integers(0, 2, size=(1, 5, 5, 2)).astype(float)
    A, cache = nn.maxpool_forward(X, (2, 2), (2, 2), padding)
    G = rng.uniform(0.1, 1.0, size=A.shape)
    g = nn.maxpool_backward(G, cache)
    for _ in range(200):
        D = rng.normal(size=X.shape) * rng.choice([1e-3, 1.0])
        assert (
            np.sum(G * nn.maxpool_forward(X + D, (2, 2), (2, 2), padding)[0]) >= np.sum(G * A) + np.sum(g * D) - 1e-12
        )
    # and it is one element per window: each window passes on exactly its G
    if padding == "valid":
        np.testing.assert_allclose(g[:, :4, :4].reshape(1, 2, 2, 2, 2, 2).sum(axis=(2, 4)), G)


@pytest.mark.parametrize(
    "m, h, w, c, p, s, padding", [(1, 5, 5, 1, 2, 2, "same"), (2, 7, 6, 3, 3, 2, "valid"), (1, 6, 5, 2, 2, 1, "same")]
)
def test_maxpool_and_flatten_backward_match_centered_differences(m, h, w, c, p, s, padding):
    rng = np.random.default_rng(11)
    X = rng.permutation(m * h * w * c).reshape(m, h, w, c) / 7.0  # distinct values: no ties within h
    pool = built(nn.MaxPooling2D(p, s, padding), (h, w, c))
    flat = built(nn.Flatten(), pool.output_dim)
    G = rng.normal(size=(m, flat.output_dim))

    def loss():
        return float(np.sum(G * flat.forward(pool.forward(X))))

    loss()
    close(pool.backward(flat.backward(G)), num_grad(loss, X))


# ----- Dense and Dropout ----------------------------------------------------------
@pytest.mark.parametrize("activation", ["identity", "sigmoid", "tanh", "relu", "softplus", "softmax"])
@pytest.mark.parametrize("m, n_in, units, l2", [(1, 3, 2, 0.0), (5, 4, 3, 0.3), (2, 1, 5, 0.05)])
def test_dense_backward_with_l2_matches_centered_differences(activation, m, n_in, units, l2):
    rng = np.random.default_rng(m + 10 * units)
    layer = built(nn.Dense(units, activation=activation, l2=l2), n_in)
    layer.W[...] = rng.normal(size=layer.W.shape)
    layer.b[...] = rng.normal(size=layer.b.shape)
    X, G = rng.normal(size=(m, n_in)), rng.normal(size=(m, units))

    def loss():  # data term plus the Keras penalty λ‖W‖² (the bias is not penalized)
        return float(np.sum(G * layer.forward(X))) + l2 * float(np.sum(layer.W**2))

    assert layer.penalty() == pytest.approx(l2 * np.sum(layer.W**2))
    loss()
    dX = layer.backward(G)
    close(dX, num_grad(loss, X), 1e-6)
    close(layer.dW, num_grad(loss, layer.W), 1e-6)
    close(layer.db, num_grad(loss, layer.b), 1e-6)


def test_dropout_rate_is_the_drop_probability_and_survivors_scale_by_one_over_keep():
    X = np.random.default_rng(0).uniform(1.0, 2.0, size=(400, 500))
    for rate in (0.2, 0.75):
        layer = built(nn.Dropout(rate, seed=1), 500)
        out = layer.forward(X, training=True)
        dropped = out == 0
        assert abs(dropped.mean() - rate) < 0.005  # torch's p, Keras's rate: the DROP probability
        np.testing.assert_allclose(out[~dropped], X[~dropped] / (1 - rate), rtol=1e-15)
        np.testing.assert_array_equal(layer.forward(X, training=False), X)


def test_dropout_backward_matches_centered_differences_for_a_fixed_mask():
    rng = np.random.default_rng(4)
    X, G = rng.normal(size=(3, 7)), rng.normal(size=(3, 7))

    def loss():  # a fresh layer with the same seed draws the same mask every time
        return float(np.sum(G * built(nn.Dropout(0.4, seed=9), 7).forward(X, training=True)))

    layer = built(nn.Dropout(0.4, seed=9), 7)
    layer.forward(X, training=True)
    close(layer.backward(G), num_grad(loss, X))


# ----- losses: reductions and stability ---------------------------------------------
@pytest.mark.parametrize("m, K", [(1, 3), (4, 5), (7, 2)])
def test_softmax_cross_entropy_is_the_batch_mean_like_torch_reduction_mean(m, K):
    rng = np.random.default_rng(5 + m)
    Z, labels = rng.normal(size=(m, K)) * 3, rng.integers(0, K, size=m)
    Y = np.eye(K)[labels]
    ref = sum(math.log(sum(math.exp(z) for z in Z[i])) - Z[i, labels[i]] for i in range(m)) / m
    value, dZ = nn.softmax_cross_entropy_with_logits(Z, Y)
    assert value == pytest.approx(ref, rel=1e-12)
    close(dZ, num_grad(lambda: nn.softmax_cross_entropy_with_logits(Z, Y)[0], Z))
    assert nn.get_loss("sparse_categorical_crossentropy").fused["softmax"](Z, labels)[0] == pytest.approx(ref)


def test_softmax_cross_entropy_is_stable_at_logits_of_1000():
    Z, Y = np.array([[1000.0, 0.0, -1000.0], [-1000.0, 1000.0, 0.0]]), np.array([[0.0, 0.0, 1.0], [0, 1.0, 0]])
    value, dZ = nn.softmax_cross_entropy_with_logits(Z, Y)
    assert value == pytest.approx((2000.0 + 0.0) / 2)
    np.testing.assert_allclose(dZ, (np.array([[1.0, 0, 0], [0, 1.0, 0]]) - Y) / 2, atol=1e-300)


def test_bce_with_logits_equals_torchs_stable_formula_at_plus_minus_1000():
    z = np.array([[1000.0], [-1000.0], [1000.0], [-1000.0], [0.0], [3.0]])
    y = np.array([[1.0], [1.0], [0.0], [0.0], [1.0], [0.0]])
    # torch documents max(z, 0) − z·y + log(1 + e^(−|z|)), averaged (one output: over the batch)
    ref = np.mean([max(a, 0) - a * t + math.log1p(math.exp(-abs(a))) for a, t in zip(z[:, 0], y[:, 0])])
    value, dz = nn.binary_cross_entropy_with_logits(z, y)
    assert value == pytest.approx(ref, rel=1e-12) and np.isfinite(dz).all()
    np.testing.assert_allclose(dz[:4, 0], np.array([0.0, -1.0, 1.0, 0.0]) / 6, atol=1e-300)
    close(dz, num_grad(lambda: nn.binary_cross_entropy_with_logits(z, y)[0], z))


def test_bce_with_logits_sums_outputs_and_averages_examples():
    """Documented course convention: −1/m Σ over m·k entries; torch's mean is over m·k."""
    rng = np.random.default_rng(6)
    z, y = rng.normal(size=(4, 3)), rng.integers(0, 2, size=(4, 3)).astype(float)
    torch_mean = np.mean([max(a, 0) - a * t + math.log1p(math.exp(-abs(a))) for a, t in zip(z.ravel(), y.ravel())])
    assert nn.binary_cross_entropy_with_logits(z, y)[0] == pytest.approx(3 * torch_mean, rel=1e-12)


@pytest.mark.parametrize("m, k", [(1, 1), (5, 1), (3, 4)])
def test_mse_is_half_the_sum_over_the_batch_size_not_torchs_mean(m, k):
    rng = np.random.default_rng(8 + m)
    P, Y = rng.normal(size=(m, k)), rng.normal(size=(m, k))
    torch_mean = sum((P[i, j] - Y[i, j]) ** 2 for i in range(m) for j in range(k)) / (m * k)
    value, grad = nn.mse_loss(P, Y)
    assert value == pytest.approx(torch_mean * k / 2, rel=1e-12)  # L = 1/(2m) ΣΣ (ŷ − y)²
    close(grad, num_grad(lambda: nn.mse_loss(P, Y)[0], P))
    np.testing.assert_allclose(grad, (P - Y) / m, rtol=1e-15)


# ----- optimizers -------------------------------------------------------------------
def _grads(rng, n, shape=(3, 2)):
    return [rng.normal(size=shape) for _ in range(n)]


def test_momentum_equals_torchs_and_keras_formulations_at_a_fixed_learning_rate():
    rng = np.random.default_rng(12)
    W0, gs = rng.normal(size=(3, 2)), _grads(rng, 6)
    W, opt = W0.copy(), nn.SGD(0.05, momentum=0.8)
    p_t, buf = W0.copy(), np.zeros_like(W0)  # torch: buf = μ·buf + g; p −= lr·buf
    p_k, vel = W0.copy(), np.zeros_like(W0)  # Keras: v = μ·v − lr·g; p += v
    for g in gs:
        opt.update([W], [g.copy()])
        buf = 0.8 * buf + g
        p_t = p_t - 0.05 * buf
        vel = 0.8 * vel - 0.05 * g
        p_k = p_k + vel
        np.testing.assert_allclose(W, p_k, rtol=0, atol=1e-15)
        np.testing.assert_allclose(W, p_t, rtol=0, atol=1e-13)


def _adam_torch(W, gs, lr, b1, b2, eps):
    """Kingma & Ba's Algorithm 1, which torch.optim.Adam implements: ε added to √v̂."""
    m, v, W = np.zeros_like(W), np.zeros_like(W), W.copy()
    for t, g in enumerate(gs, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        W = W - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return W


def test_adam_with_eps_zero_is_kingma_and_ba_algorithm_1_step_by_step():
    rng = np.random.default_rng(13)
    W0, gs = rng.normal(size=(3, 2)), _grads(rng, 5)
    W, opt = W0.copy(), nn.Adam(0.01, beta_1=0.8, beta_2=0.95, epsilon=0.0)
    for t in range(1, len(gs) + 1):
        opt.update([W], [gs[t - 1].copy()])
        close(W, _adam_torch(W0, gs[:t], 0.01, 0.8, 0.95, 0.0), 1e-13)


def test_adam_adds_epsilon_to_sqrt_s_not_to_sqrt_s_hat():
    """Keras and K&B's efficient form: W −= α√(1−β₂ᵗ)/(1−β₁ᵗ) · m/(√s + ε); torch: α m̂/(√ŝ + ε).

    With gradients of the size of ε the two differ: at t = 1 course_lib takes
    α g/(|g| + ε/√(1−β₂)), torch α g/(|g| + ε)."""
    g, eps = np.array([1e-7, -3e-7]), 1e-7
    W = np.zeros(2)
    nn.Adam(0.1, epsilon=eps).update([W], [g.copy()])
    np.testing.assert_allclose(W, -0.1 * g / (np.abs(g) + eps / np.sqrt(1 - 0.999)), rtol=1e-12)
    assert not np.allclose(W, _adam_torch(np.zeros(2), [g], 0.1, 0.9, 0.999, eps), rtol=1e-3)
    # ... which is torch's update with a step-dependent ε_t = ε/√(1 − β₂ᵗ)
    rng = np.random.default_rng(14)
    W0, gs = rng.normal(size=(3, 2)), _grads(rng, 4)
    W, opt = W0.copy(), nn.Adam(0.01, epsilon=0.3)
    for g in gs:
        opt.update([W], [g.copy()])
    m, v, ref = np.zeros_like(W0), np.zeros_like(W0), W0.copy()
    for t, g in enumerate(gs, start=1):
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        ref -= 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 0.3 / np.sqrt(1 - 0.999**t))
    close(W, ref, 1e-13)


def test_l2_is_torch_sgd_weight_decay_of_two_lambda():
    rng = np.random.default_rng(15)
    X, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    plain = nn.Sequential([nn.Dense(2, input_dim=3)], seed=0).compile(loss="mse", optimizer=nn.SGD(0.1))
    decayed = nn.Sequential([nn.Dense(2, input_dim=3, l2=0.25)], seed=0).compile(loss="mse", optimizer=nn.SGD(0.1))
    W, b = plain.get_weights()
    (_, (dW, db)), (_, (dW_l2, db_l2)) = plain.gradients(X, y), decayed.gradients(X, y)
    np.testing.assert_allclose(dW_l2, dW + 2 * 0.25 * W, rtol=1e-14)  # torch: g + weight_decay·p, wd = 2λ
    np.testing.assert_array_equal(db_l2, db)
    assert decayed.evaluate(X, y) == pytest.approx(plain.evaluate(X, y) + 0.25 * np.sum(W**2), rel=1e-14)


# ----- initializers: variances and fans (conv: fan_in = C_in·k·k) ----------------------
def torch_fans(shape_oihw):
    """torch.nn.init._calculate_fan_in_and_fan_out for (C_out, C_in, kH, kW) or (out, in)."""
    receptive = int(np.prod(shape_oihw[2:])) if len(shape_oihw) > 2 else 1
    return shape_oihw[1] * receptive, shape_oihw[0] * receptive


@pytest.mark.parametrize("shape", [(300, 200), (3, 3, 64, 128), (5, 3, 40, 24)])
def test_he_and_glorot_variances_use_torchs_fans(shape):
    torch_shape = (shape[1], shape[0]) if len(shape) == 2 else (shape[3], shape[2], shape[0], shape[1])
    fan_in, fan_out = torch_fans(torch_shape)
    want = {
        "he_normal": 2 / fan_in,
        "he_uniform": 2 / fan_in,
        "glorot_normal": 2 / (fan_in + fan_out),
        "glorot_uniform": 2 / (fan_in + fan_out),
    }
    for name, var in want.items():
        W = nn.INITIALIZERS[name](shape, seed=16)
        assert W.shape == shape and abs(W.mean()) < 0.02 * math.sqrt(var)
        assert W.var() == pytest.approx(var, rel=0.03), name
        if name.endswith("uniform"):  # U(−r, r) has variance r²/3
            assert np.abs(W).max() <= math.sqrt(3 * var) < 1.001 * np.abs(W).max()


# ----- a whole Sequential: backprop and one fit step against peers --------------------
def _reference_convnet_loss(X, labels, W1, b1, W2, b2):
    """relu(conv 'same', stride 2) → max_pool 2 → flatten (channels-last order) → softmax CE mean."""
    pads = (keras_same_pads(X.shape[1], 3, 2), keras_same_pads(X.shape[2], 3, 2))
    Z = np.maximum(torch_conv2d(nchw(X), oihw(W1), b1, 2, pads), 0.0)
    P, _ = torch_max_pool2d(Z, 2, 2)
    F = P.transpose(0, 2, 3, 1).reshape(len(X), -1)  # Keras's Flatten of (m, h, w, c)
    logits = F @ W2 + b2
    return sum(math.log(np.sum(np.exp(row - row.max()))) + row.max() - row[t] for row, t in zip(logits, labels)) / len(
        X
    )


def test_convnet_gradients_and_a_fit_step_match_the_reference_network():
    rng = np.random.default_rng(17)
    X, labels = rng.normal(size=(3, 9, 8, 2)), np.array([0, 2, 1])
    model = nn.Sequential(
        [
            nn.Conv2D(3, 3, 2, "same", activation="relu", input_shape=(9, 8, 2)),
            nn.MaxPooling2D(),
            nn.Flatten(),
            nn.Dense(3, activation="softmax"),
        ],
        seed=3,
    ).compile(loss="sparse_categorical_crossentropy", optimizer=nn.SGD(0.5))
    params = [p + 0.0 for p in model.get_weights()]
    value, grads = model.gradients(X, labels)
    assert value == pytest.approx(_reference_convnet_loss(X, labels, *params), rel=1e-12)
    for p, g in zip(params, grads):
        close(g, num_grad(lambda: _reference_convnet_loss(X, labels, *params), p), 1e-5)
    model.fit(X, labels, epochs=1, batch_size=None, shuffle=False, verbose=0)
    for after, before, g in zip(model.get_weights(), params, grads):
        np.testing.assert_allclose(after, before - 0.5 * g, rtol=0, atol=1e-14)
