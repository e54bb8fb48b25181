"""Tests for course_lib.plots and course_lib.widgets.

The plots are checked through what they drew (contour paths, pixel colours,
line data, counts of circles and segments), the widgets through their
``.state`` after a control changes, and everything once more headless in a
real kernel with nbclient, the way nbval/nbgrader run the course notebooks.
"""

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402

from course_lib import plots, widgets  # noqa: E402
from course_lib.nn import ACTIVATIONS, Dense, Sequential  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def pixel(ax, x, y):
    """RGB in [0, 1] of the rendered pixel at data point (x, y)."""
    fig = ax.figure
    fig.canvas.draw()
    buf = np.asarray(fig.canvas.buffer_rgba())
    px, py = ax.transData.transform((x, y))
    return buf[int(round(buf.shape[0] - py)), int(round(px)), :3] / 255.0


def scatter_offsets(ax):
    return [c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)]


def line(ax, label):
    found = [ln for ln in ax.get_lines() if ln.get_label() == label]
    assert found, f"no line labelled {label!r} in {[ln.get_label() for ln in ax.get_lines()]}"
    return found[0]


# ----- plot_decision_boundary ----------------------------------------------
def test_binary_boundary_is_the_half_level_line_of_a_linear_classifier():
    # P(y=1|x) = σ(3(x1 − x2)): the boundary is the diagonal x1 = x2.
    def predict(P):
        return sigmoid(3 * (P[:, 0] - P[:, 1]))[:, None]  # (k, 1), as Sequential.predict gives

    X = np.array([[-2.0, -2.0], [2.0, 2.0]])
    ax = plots.plot_decision_boundary(predict, X, np.array([0, 1]), resolution=101)
    level_sets = [c for c in ax.collections if getattr(c, "levels", None) is not None and list(c.levels) == [0.5]]
    assert len(level_sets) == 1
    vertices = np.vstack([p.vertices for p in level_sets[0].get_paths()])
    assert len(vertices) > 10
    assert np.max(np.abs(vertices[:, 0] - vertices[:, 1])) < 0.05  # on x1 = x2
    assert vertices[:, 0].min() < -2 and vertices[:, 0].max() > 2  # across the whole window

    ax.get_legend().remove()  # so it cannot cover the probed pixels
    r, _, b = pixel(ax, 1.5, -1.5)  # P ≈ 1: class 1, vermillion
    assert r > b + 0.3
    r, _, b = pixel(ax, -1.5, 1.5)  # P ≈ 0: class 0, blue
    assert b > r + 0.3
    assert ax.get_xlabel() == "x₁" and ax.get_ylabel() == "x₂"
    assert [t.get_text() for t in ax.figure.axes[1].get_yticklabels()][0] == "0.00"  # colorbar


def test_scatter_is_coloured_by_class():
    X = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]])
    y = np.array([0, 1, 1])
    ax = plots.plot_decision_boundary(lambda P: np.full(len(P), 0.3), X, y, resolution=20)
    offsets = scatter_offsets(ax)
    assert [len(o) for o in offsets] == [1, 2]
    np.testing.assert_allclose(offsets[1], X[1:])
    dots = [c for c in ax.collections if isinstance(c, PathCollection)]
    colours = [to_rgb(c.get_facecolor()[0]) for c in dots]
    assert colours == [to_rgb(plots.BLUE), to_rgb(plots.VERMILLION)]
    assert [t.get_text() for t in ax.get_legend().get_texts()][-2:] == ["y = 0", "y = 1"]


def test_plot_data_scatters_each_class():
    X = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [3.0, 1.0]])
    Y = np.eye(3)[[0, 2, 2, 1]]  # one-hot rows are accepted too
    ax = plots.plot_data(X, Y)
    offsets = scatter_offsets(ax)
    assert [len(o) for o in offsets] == [1, 1, 2]
    np.testing.assert_allclose(offsets[2], X[1:3])
    assert ax.get_title() == "4 examples"


def test_multiclass_probabilities_colour_regions_by_argmax():
    centers = np.array([[-2.0, 0.0], [2.0, 0.0], [0.0, 2.5]])

    def predict(P):  # softmax of −distance²: the nearest center wins
        s = -((P[:, None, :] - centers) ** 2).sum(axis=2)
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    X = np.vstack([centers + 0.8, centers - 0.8])
    y = np.array([0, 1, 2, 0, 1, 2])
    ax = plots.plot_decision_boundary(predict, X, y, resolution=80)
    ax.get_legend().remove()
    for k, (cx, cy) in enumerate(centers):
        got = pixel(ax, cx, cy - 0.4)
        expect = 0.7 * np.ones(3) + 0.3 * np.array(to_rgb(plots.CLASS_COLORS[k]))  # alpha 0.3
        assert np.abs(got - expect).max() < 0.06, (k, got, expect)


def test_integer_labels_including_bipolar_are_regions():
    X = np.array([[-1.0, -1.0], [1.0, 1.0]])
    y = np.array([-1, 1])

    def predict(P):  # a perceptron's sign output
        return np.where(P.sum(axis=1) > 0, 1, -1)

    ax = plots.plot_decision_boundary(predict, X, y, resolution=60)
    assert "y = -1" in [t.get_text() for t in ax.get_legend().get_texts()]
    ax.get_legend().remove()
    r, _, b = pixel(ax, 1.2, 0.3)
    assert r > b  # +1 side: second class colour (vermillion)
    r, _, b = pixel(ax, -1.2, -0.3)
    assert b > r


def test_logits_instead_of_probabilities_get_a_helpful_error():
    X = np.array([[0.0, 0.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match="σ"):
        plots.plot_decision_boundary(lambda P: 3.7 * P[:, 0] - 0.2, X, [0, 1])
    with pytest.raises(ValueError, match=r"\(m, 2\)"):
        plots.plot_decision_boundary(lambda P: P[:, 0], np.zeros((3, 3)), [0, 1, 0])


# ----- plot_history ----------------------------------------------------------
def test_history_from_fit_is_drawn_with_accuracy_panel():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = (X[:, 0] > 0).astype(float)
    model = Sequential([Dense(1, activation="sigmoid", input_dim=2)], seed=0)
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    history = model.fit(X, y, epochs=7, batch_size=10, verbose=0, validation_data=(X, y))

    fig = plots.plot_history(history)
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == 2
    ax_loss, ax_acc = fig.axes
    loss = line(ax_loss, "training loss")
    np.testing.assert_allclose(loss.get_xdata(), np.arange(1, 8))
    np.testing.assert_allclose(loss.get_ydata(), history.history["loss"])
    np.testing.assert_allclose(line(ax_loss, "validation loss").get_ydata(), history.history["val_loss"])
    np.testing.assert_allclose(line(ax_acc, "training accuracy").get_ydata(), history.history["accuracy"])
    np.testing.assert_allclose(line(ax_acc, "validation accuracy").get_ydata(), history.history["val_accuracy"])
    assert ax_loss.get_xlabel() == "epoch"


def test_history_dict_list_and_single_axes():
    ax = plots.plot_history({"loss": [3.0, 2.0, 1.5]})
    assert isinstance(ax, matplotlib.axes.Axes)
    np.testing.assert_allclose(line(ax, "training loss").get_ydata(), [3.0, 2.0, 1.5])

    ax = plots.plot_history([1.0, 0.5])  # e.g. LinearRegression(method="gd").losses_
    np.testing.assert_allclose(line(ax, "training loss").get_ydata(), [1.0, 0.5])

    fig, ax = plt.subplots()
    out = plots.plot_history({"loss": [1.0, 0.4], "accuracy": [0.5, 0.9]}, ax=ax)
    assert out is ax and len(fig.axes) == 2  # accuracy went on a twin y-axis
    np.testing.assert_allclose(line(fig.axes[1], "training accuracy").get_ydata(), [0.5, 0.9])

    with pytest.raises(ValueError, match="loss"):
        plots.plot_history({"accuracy": [0.5]})


# ----- plot_activations --------------------------------------------------------
def test_activation_panels_show_g_and_its_derivative():
    z = np.linspace(-3, 3, 61)
    names = ("identity", "sigmoid", "tanh", "relu", "softplus")
    fig = plots.plot_activations(names, z=z)
    shown = [a for a in fig.axes if a.get_visible()]
    assert len(shown) == 5
    for ax, name in zip(shown, names, strict=True):
        g = ACTIVATIONS[name]
        np.testing.assert_allclose(line(ax, "g(z)").get_ydata(), g.fn(z))
        np.testing.assert_allclose(line(ax, "g′(z)").get_ydata(), g.derivative(z))
        assert ax.get_title().lower().startswith(name.lower()[:4])
    assert max(line(shown[1], "g′(z)").get_ydata()) == pytest.approx(0.25)  # σ' peaks at ¼
    with pytest.raises(ValueError, match="elementwise"):
        plots.plot_activations(["softmax"])


# ----- plot_regression ---------------------------------------------------------
def test_regression_draws_data_fit_and_residuals():
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([1.2, 2.9, 5.1, 7.0])
    ax = plots.plot_regression(X, y, predict=lambda G: 2 * G + 1, residuals=True)
    np.testing.assert_allclose(scatter_offsets(ax)[0], np.column_stack([X[:, 0], y]))
    fit = line(ax, "model f(x)")
    np.testing.assert_allclose(fit.get_ydata(), 2 * fit.get_xdata() + 1)
    assert fit.get_xdata().min() < 0 and fit.get_xdata().max() > 3
    residuals = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(residuals) == 1 and len(residuals[0].get_segments()) == 4
    with pytest.raises(ValueError, match="one feature"):
        plots.plot_regression(np.zeros((3, 2)), np.zeros(3))


# ----- plot_network --------------------------------------------------------------
def network_parts(ax):
    circles = [c for c in ax.collections if isinstance(c, PathCollection)]
    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(circles) == 1 and len(lines) == 1
    return circles[0], lines[0]


def texts(ax):
    return [t.get_text() for t in ax.texts]


def test_network_2_3_1_has_6_units_and_9_weights():
    ax = plots.plot_network([2, 3, 1])
    circles, weights = network_parts(ax)
    assert len(circles.get_offsets()) == 6
    segments = weights.get_segments()
    assert len(segments) == 2 * 3 + 3 * 1
    # Every weight joins a unit in one column to a unit in the next.
    assert all(round(s[1][0] - s[0][0]) == 1 for s in segments)
    assert "13 parameters" in ax.get_title()
    assert {"input\n(2)", "hidden 1\n(3)", "output\n(1)"} <= set(texts(ax))
    assert {"x₁", "x₂", "ŷ"} <= set(texts(ax))


def test_network_from_model_labels_activations_and_weight_signs():
    model = Sequential([Dense(3, activation="sigmoid", input_dim=2), Dense(1, activation="sigmoid")], seed=0)
    W1 = np.array([[1.0, -2.0, 0.5], [-0.1, 3.0, -1.0]])
    W2 = np.array([[2.0], [-0.5], [1.0]])
    model.set_weights([W1, np.zeros(3), W2, np.zeros(1)])
    ax = plots.plot_network(model)
    assert {"hidden 1\n(3, sigmoid)", "output\n(1, sigmoid)", "input\n(2)"} <= set(texts(ax))
    assert f"{model.count_params()} parameters" in ax.get_title()
    _, weights = network_parts(ax)
    expected = np.concatenate([W1.ravel(), W2.ravel()])  # drawn layer by layer, row by row
    colours = [tuple(np.round(c[:3], 3)) for c in weights.get_colors()]
    blue, vermillion = (tuple(np.round(to_rgb(c), 3)) for c in (plots.BLUE, plots.VERMILLION))
    assert colours == [blue if w >= 0 else vermillion for w in expected]
    widths = np.asarray(weights.get_linewidths())
    assert np.argmax(widths[:6]) == np.argmax(np.abs(W1.ravel()))  # |w| = 3 is the thickest


def test_large_layers_are_truncated_with_an_ellipsis():
    ax = plots.plot_network([64, 30, 10])
    circles, weights = network_parts(ax)
    assert len(circles.get_offsets()) == 10 + 10 + 10  # 5 + ⋮ + 5 for the two big layers
    assert len(weights.get_segments()) == 10 * 10 + 10 * 10
    assert texts(ax).count("⋮") == 2
    assert "x₆₄" in texts(ax)
    assert f"{64 * 30 + 30 + 30 * 10 + 10} parameters" in ax.get_title()


# ----- plot_loss_surface --------------------------------------------------------
def test_loss_surface_contours_and_path():
    def loss(w, b):
        return (w - 1) ** 2 + 3 * (b + 2) ** 2

    path = np.array([[-2.0, 1.0], [-0.5, -1.0], [0.4, -1.7], [np.inf, 0.0]])
    ax = plots.plot_loss_surface(loss, (-3, 4), (-4, 2), path=path, minimum=(1, -2))
    drawn = line(ax, "gradient descent")
    np.testing.assert_allclose(
        np.column_stack([drawn.get_xdata(), drawn.get_ydata()]), path[:3]
    )  # the overflowed point is dropped
    np.testing.assert_allclose(line(ax, "start").get_xydata()[0], path[0])
    np.testing.assert_allclose(line(ax, "minimum").get_xydata()[0], [1, -2])
    filled = ax.collections[0]
    assert filled.levels[0] == pytest.approx(0, abs=0.01)  # the grid passes near the minimum
    corners = [loss(w, b) for w in (-3, 4) for b in (-4, 2)]
    assert filled.levels[-1] == pytest.approx(max(corners), rel=1e-9)  # a bowl peaks at a corner
    assert ax.get_xlim() == (-3, 4) and ax.get_ylim() == (-4, 2)
    assert ax.get_xlabel() == "w" and ax.get_ylabel() == "b"


def test_loss_surface_accepts_a_scalar_only_loss():
    import math

    ax = plots.plot_loss_surface(
        lambda w, b: math.exp(-w) + b * b, (0, 1), (-1, 1), resolution=11
    )  # b = 0 is on the grid
    assert ax.collections[0].levels[0] == pytest.approx(math.exp(-1), abs=1e-9)


# ----- widgets: the neuron ---------------------------------------------------------
NEURON_X = np.array([[-2.0, -1.0], [-1.0, -2.0], [-1.5, -1.5], [1.0, 2.0], [2.0, 1.0], [1.5, 0.5]])
NEURON_Y = np.array([0, 0, 0, 1, 1, 1])


def on_line(state):
    w0, w1, w2 = state["w"]
    return [w0 + w1 * x1 + w2 * x2 for x1, x2 in state["boundary"]]


def test_neuron_explorer_boundary_moves_with_the_bias():
    demo = widgets.neuron_explorer(NEURON_X, NEURON_Y)
    assert {"w0", "w1", "w2"} <= set(demo.controls)
    demo.controls["w1"].value = 1.0
    demo.controls["w2"].value = 1.0
    demo.controls["w0"].value = 0.0
    assert np.allclose(on_line(demo.state), 0, atol=1e-6)
    before, figure_before = demo.state["boundary"], demo.figure

    demo.controls["w0"].value = 1.0  # the line x1 + x2 = −w0 moves down-left
    assert demo.state["w"] == (1.0, 1.0, 1.0)
    assert np.allclose(on_line(demo.state), 0, atol=1e-6)
    assert demo.state["boundary"] != before
    assert sum(np.mean(demo.state["boundary"], axis=0)) == pytest.approx(-1.0, abs=1e-6)
    assert demo.figure is not figure_before

    demo.controls["w1"].value = 0.0
    demo.controls["w2"].value = 0.0  # z = w0 everywhere: no boundary at all
    assert demo.state["boundary"] is None


def test_neuron_explorer_reports_bce_and_accuracy():
    demo = widgets.neuron_explorer(NEURON_X, NEURON_Y)
    for name, value in (("w0", 0.5), ("w1", 2.0), ("w2", 1.5)):
        demo.controls[name].value = value
    p = sigmoid(0.5 + NEURON_X @ np.array([2.0, 1.5]))
    bce = -np.mean(NEURON_Y * np.log(p) + (1 - NEURON_Y) * np.log(1 - p))
    assert demo.state["loss"] == pytest.approx(bce, rel=1e-9)
    assert demo.state["accuracy"] == 1.0
    assert f"{bce:.3f}" in demo.state["text"] and "100%" in demo.state["text"]

    demo.controls["w1"].value = -2.0  # now half of the points are on the wrong side
    assert demo.state["accuracy"] < 1.0 and demo.state["loss"] > bce


def test_neuron_explorer_default_data_and_bipolar_step():
    demo = widgets.neuron_explorer()
    assert 0 <= demo.state["accuracy"] <= 1 and demo.state["loss"] > 0
    X = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
    y = np.array([-1, -1, -1, 1])  # bipolar AND
    demo = widgets.neuron_explorer(X, y, activation="step")
    for name, value in (("w0", -1.0), ("w1", 1.0), ("w2", 1.0)):
        demo.controls[name].value = value
    assert demo.state["accuracy"] == 1.0 and demo.state["loss"] is None
    with pytest.raises(ValueError, match="activation"):
        widgets.neuron_explorer(activation="relu")


# ----- widgets: gradient descent ------------------------------------------------------
def test_gradient_descent_explorer_follows_the_update_rule():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    y = 2 * x + 1
    demo = widgets.gradient_descent_explorer(x, y)
    np.testing.assert_allclose(demo.state["minimum"], (2.0, 1.0), atol=1e-9)
    demo.controls["lr"].value = 0.1
    demo.controls["steps"].value = 3
    w, b = demo.controls["w_start"].value, demo.controls["b_start"].value
    expected = [(w, b)]
    for _ in range(3):
        r = w * x + b - y
        w, b = w - 0.1 * np.mean(r * x), b - 0.1 * np.mean(r)
        expected.append((w, b))
    np.testing.assert_allclose(demo.state["path"], expected)
    np.testing.assert_allclose(demo.state["losses"], [0.5 * np.mean((p[0] * x + p[1] - y) ** 2) for p in expected])

    demo.controls["w_start"].value = 0.0
    demo.controls["b_start"].value = 0.0
    np.testing.assert_allclose(demo.state["path"][0], (0.0, 0.0))


def test_gradient_descent_explorer_converges_below_and_diverges_above_2_over_lambda():
    demo = widgets.gradient_descent_explorer()
    x = demo.x
    H = np.array([[np.mean(x * x), np.mean(x)], [np.mean(x), 1.0]])
    lr_crit = 2 / np.linalg.eigvalsh(H)[-1]
    assert demo.state["lr_critical"] == pytest.approx(lr_crit)
    assert demo.controls["lr"].max >= np.log10(1.2 * lr_crit)  # the slider reaches divergence

    demo.controls["steps"].value = 100
    demo.controls["lr"].value = 0.7 * lr_crit  # overshoots (> 1/λ_max) but converges
    assert not demo.state["diverging"]
    assert demo.state["final_loss"] == pytest.approx(demo.loss(*demo.state["minimum"]), rel=1e-6)
    assert "converged" in demo.state["text"]
    assert "diverging" not in demo.state["text"]

    demo.controls["lr"].value = 1.2 * lr_crit
    assert demo.state["diverging"]
    assert "diverging: α too large" in demo.state["text"]
    losses = demo.state["losses"]
    assert losses[-1] > 1e6 * losses[0]
    assert np.all(np.diff(losses[-10:]) > 0)

    demo.controls["lr"].value = 1e-3
    assert "still descending" in demo.state["text"] and not demo.state["diverging"]

    demo.controls["steps"].value = demo.controls["steps"].min  # slow because it zig-zags, not because α is small
    demo.controls["lr"].value = 0.995 * lr_crit
    assert "zig-zagging" in demo.state["text"] and "α small" not in demo.state["text"]


# ----- widgets: the playground ---------------------------------------------------------
def configure(demo, **values):
    for name, value in values.items():
        demo.controls[name].value = value


def test_playground_xor_needs_a_hidden_layer():
    demo = widgets.playground("xor")
    configure(demo, hidden_layers=1, units=4, activation="tanh", lr=0.1, epochs=150)
    demo.controls["train"].click()
    assert demo.state["sizes"] == [2, 4, 1]
    assert demo.state["train_accuracy"] >= 0.9
    assert len(demo.state["history"]["loss"]) == 150

    configure(demo, hidden_layers=0)
    demo.controls["train"].click()
    assert demo.state["sizes"] == [2, 1]
    assert demo.state["train_accuracy"] <= 0.75
    assert "train accuracy" in demo.state["text"]


def test_playground_trains_only_on_click_and_reproducibly():
    demo = widgets.playground("moons")
    assert demo.state["trained"] and demo.model is not None  # trained once at start
    model, history = demo.model, demo.state["history"]
    configure(demo, units=6, epochs=60, lr=0.05)
    assert demo.model is model and demo.state["history"] is history  # no retraining
    assert "press Train" in demo.status.value

    demo.controls["train"].click()
    first = demo.state["history"]["loss"]
    assert demo.model is not model and demo.state["sizes"] == [2, 6, 1]
    demo.controls["train"].click()
    assert demo.state["history"]["loss"] == first  # seeded: the same run again

    demo.controls["dataset"].value = "blobs"
    assert demo.state["trained"] is False and demo.state["dataset"] == "blobs"
    demo.controls["train"].click()
    assert demo.state["sizes"][-1] == 3  # three blobs: a softmax output
    assert demo.state["train_accuracy"] > 0.9


def test_widgets_are_fast_and_leave_no_open_figures():
    for make in (widgets.neuron_explorer, widgets.gradient_descent_explorer, widgets.playground):
        start = time.perf_counter()
        demo = make()
        assert time.perf_counter() - start < 1.5, make.__name__
        assert isinstance(demo, widgets.widgets.VBox)
        assert demo.figure is not None and demo.state["text"]
    assert plt.get_fignums() == []  # closed, so the inline backend cannot show them twice


# ----- headless, in a real kernel --------------------------------------------------------------
@pytest.mark.slow
def test_widgets_render_headless_in_a_kernel():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cells = [
        "from course_lib.widgets import neuron_explorer, gradient_descent_explorer, playground\n"
        "from course_lib import plots",
        "neuron_explorer()",
        "gradient_descent_explorer()",
        "playground()",
        "plots.plot_network([2, 3, 1]);",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    # Each cell takes < 1 s. The timeout also bounds a stall outside our code: with
    # pyzmq 27 + jupyter_client 8 the client now and then misses the wake-up for an
    # execute_reply that has already arrived and only finds it when the timeout fires.
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=20, store_widget_state=True, resources={"metadata": {"path": str(REPO)}}
    )
    client.execute()

    outputs = [o for cell in nb.cells for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    for cell in nb.cells[1:4]:  # each demo displays as a widget, not as loose figures
        data = [o.get("data", {}) for o in cell.outputs]
        assert any("application/vnd.jupyter.widget-view+json" in d for d in data)
        assert not any("image/png" in d for d in data)
    assert any("image/png" in o.get("data", {}) for o in nb.cells[4].outputs)

    # The pictures went into the Output widgets.
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    output_models = [m for m in state.values() if m["model_name"] == "OutputModel"]
    pictures = [
        m for m in output_models if any("image/png" in o.get("data", {}) for o in m["state"].get("outputs", []))
    ]
    assert len(pictures) == 3


# ----- widgets: feature maps ---------------------------------------------------------------
def test_feature_map_explorer_slides_the_filter_and_pools():
    image = np.zeros((6, 6))
    image[np.arange(6), np.arange(6)] = 1.0  # a ↘ diagonal stroke
    demo = widgets.feature_map_explorer(image[None], filters={"d": [[1.0, -1.0], [-1.0, 1.0]]})
    fmap = demo.state["feature_map"]
    # by hand: each 2×2 window on the stroke holds 1, 0 / 0, 1 -> 2; one step off it -> -1, cut to 0 by the ReLU
    assert fmap.shape == (5, 5) and np.array_equal(np.diag(fmap), np.full(5, 2.0))
    assert np.array_equal(fmap, np.diag(np.full(5, 2.0)))
    assert np.array_equal(demo.state["pooled"], [[2.0, 0.0], [0.0, 2.0]])
    demo.controls["relu"].value = False
    assert demo.state["feature_map"][0, 1] == -1.0
    demo.controls["shift"].value = 1  # the feature map moves with the image
    assert demo.state["image"][0, 1] == 1.0 and demo.state["feature_map"][0, 1] == 2.0
    assert "strongest response" in demo.state["text"]
    with pytest.raises(ValueError, match="shape"):
        widgets.feature_map_explorer(np.zeros((8, 8)))


# ----- widgets: optimizers on a 2-D surface -----------------------------------------------
def test_optimizer_explorer_paths_follow_sgd_momentum_and_adam_by_hand():
    demo = widgets.optimizer_explorer()
    configure(demo, surface="ravine", steps=3, lr=0.1, momentum=0.5)

    def grad(p):  # ½(x² + 20 y²)
        return np.array([p[0], 20.0 * p[1]])

    start = np.array([-3.0, 1.0])
    p, sgd = start.copy(), [start.copy()]
    for _ in range(3):
        p = p - 0.1 * grad(p)
        sgd.append(p)
    p, v, mom = start.copy(), np.zeros(2), [start.copy()]
    for _ in range(3):
        v = 0.5 * v - 0.1 * grad(p)
        p = p + v
        mom.append(p)
    p, m, s, adam = start.copy(), np.zeros(2), np.zeros(2), [start.copy()]
    for t in range(1, 4):
        g = grad(p)
        m, s = 0.9 * m + 0.1 * g, 0.999 * s + 0.001 * g * g
        p = p - 0.1 * (m / (1 - 0.9**t)) / (np.sqrt(s / (1 - 0.999**t)) + 1e-7)
        adam.append(p)
    np.testing.assert_allclose(demo.state["paths"]["SGD"], sgd)
    np.testing.assert_allclose(demo.state["paths"]["momentum"], mom)
    np.testing.assert_allclose(demo.state["paths"]["Adam"], adam, rtol=1e-6)
    np.testing.assert_allclose(demo.state["losses"]["SGD"], [0.5 * (q[0] ** 2 + 20 * q[1] ** 2) for q in sgd])
    # Adam's first step moves every coordinate by about α, whatever the gradient's size.
    np.testing.assert_allclose(np.abs(adam[1] - start), [0.1, 0.1], rtol=1e-5)


def test_optimizer_explorer_shows_the_ravine_lesson_and_survives_divergence():
    demo = widgets.optimizer_explorer()
    final = demo.state["final_loss"]
    assert final["momentum"] < 1e-2 * final["SGD"]  # momentum crosses the narrow valley much faster
    assert "momentum: final loss" in demo.state["text"]

    configure(demo, lr=0.2)  # above 2/20: plain gradient descent explodes along the steep axis
    assert demo.state["final_loss"]["SGD"] > 1e6
    assert np.all(np.isfinite(demo.state["paths"]["SGD"]))
    assert demo.state["final_loss"]["Adam"] < 1.0  # Adam's steps are bounded by about α

    configure(demo, surface="banana", lr=0.01, steps=300, momentum=0.9)
    assert demo.state["minimum"] == (1.0, 1.0)
    assert demo.state["final_loss"]["momentum"] < 1e-3
    assert len(demo.state["paths"]["Adam"]) == 301
    with pytest.raises(ValueError, match="surface must be one of"):
        widgets.optimizer_explorer("bowl")


def test_optimizer_explorer_is_fast_and_closes_its_figures():
    start = time.perf_counter()
    demo = widgets.optimizer_explorer("banana")
    assert time.perf_counter() - start < 1.5
    assert isinstance(demo, widgets.widgets.VBox) and demo.figure is not None
    assert plt.get_fignums() == []


def test_playground_settings_apply_before_its_one_training_run(monkeypatch):
    from course_lib.widgets import Playground

    runs = []
    real = Playground.train
    monkeypatch.setattr(Playground, "train", lambda self: runs.append(1) or real(self))
    pg = widgets.playground("circles", hidden_layers=3, units=4, activation="sigmoid", lr=0.01, epochs=20)
    assert runs == [1]  # trained once, with the settings given
    assert pg.state["sizes"] == [2, 4, 4, 4, 1] and pg.state["activation"] == "sigmoid" and pg.state["epochs"] == 20
    with pytest.raises(ValueError, match="Unknown playground setting"):
        widgets.playground("circles", layers=2)
    plt.close("all")
