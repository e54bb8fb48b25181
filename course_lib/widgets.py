"""Interactive demos for JupyterLab: a single neuron, gradient descent, a playground, optimizers, feature maps.

Each demo is an ``ipywidgets.VBox`` (controls on top, picture below) with
two extra attributes for anyone who wants to look inside, tests included:

    demo.controls   dict name -> widget; setting ``.value`` redraws
    demo.state      dict of what the current picture shows (weights,
                    boundary, losses, accuracy, ...), updated on every redraw
    demo.figure     the last matplotlib Figure drawn (closed, still inspectable)

Every redraw clears an ``ipywidgets.Output``, builds a fresh figure, shows it
with ``display`` and closes it. Closing matters: the inline backend would
otherwise show every figure a second time at the end of the cell. This works
the same in JupyterLab and headless (nbclient, nbval, nbgrader), where nobody
moves a slider and each demo simply renders its first picture.

Sliders use ``continuous_update=False``: a redraw takes ~0.1 s, and redrawing
while a slider is dragged would queue up dozens of figures.
"""

import time

import ipywidgets as widgets
import numpy as np
from IPython import get_ipython
from IPython.display import display
from matplotlib import pyplot as plt
from matplotlib.ticker import LogFormatter

from . import plots
from .nn.activations import sigmoid

_SLIDER = {"continuous_update": False, "style": {"description_width": "initial"}}


class Demo(widgets.VBox):
    """A VBox of controls, a status line and an Output holding the current figure."""

    def __init__(self, controls, rows):
        super().__init__()
        self.controls = controls
        self.state = {}
        self.figure = None
        self.status = widgets.HTML()
        self.output = widgets.Output()
        self.children = [*rows, self.status, self.output]

    def _observe_all(self, callback, names):
        for name in names:
            self.controls[name].observe(lambda _change: callback(), names="value")

    def _show(self, fig, text):
        self.status.value = text
        self.state["text"] = text
        if get_ipython() is not None:  # in a plain script display() would just print a repr
            with self.output:
                self.output.clear_output(wait=True)  # wait: no flicker between two pictures
                display(fig)
        plt.close(fig)
        self.figure = fig


def _figure(ncols, figsize=(10, 4), wspace=0.25, **kw):
    """A figure with fixed margins: a layout engine would cost ~0.1 s on every redraw,
    and the inline backend trims the outer white space anyway."""
    fig, axes = plt.subplots(1, ncols, figsize=figsize, squeeze=False, **kw)
    w, h = figsize  # margins in inches, so labels fit whatever the size
    fig.subplots_adjust(left=0.75 / w, right=1 - 0.65 / w, bottom=0.55 / h, top=1 - 0.4 / h, wspace=wspace)
    return fig, axes[0]


def _binary01(y):
    """Labels as 0/1: bipolar −1/+1 (perceptron data) maps −1 -> 0."""
    y = np.asarray(y).reshape(-1)
    return (y > 0).astype(np.int64) if y.min() < 0 else y.astype(np.int64)


# ----- a single neuron -----------------------------------------------------
_NEURON_OUTPUTS = {
    # activation -> P(y=1|x) as a function of z = w0 + w1 x1 + w2 x2
    "sigmoid": sigmoid,
    "step": lambda z: (z > 0).astype(np.float64),  # the perceptron's threshold unit
}


def _line_in_box(w0, w1, w2, xlim, ylim):
    """Endpoints of the line w0 + w1 x1 + w2 x2 = 0 inside a box, or None."""
    points = []
    if w2 != 0:  # crossings of the left and right edges
        points += [(x1, -(w0 + w1 * x1) / w2) for x1 in xlim]
    if w1 != 0:  # crossings of the bottom and top edges
        points += [(-(w0 + w2 * x2) / w1, x2) for x2 in ylim]
    eps = 1e-9
    inside = {
        (round(a, 9), round(b, 9))
        for a, b in points
        if xlim[0] - eps <= a <= xlim[1] + eps and ylim[0] - eps <= b <= ylim[1] + eps
    }
    if len(inside) < 2:
        return None
    inside = sorted(inside)
    return inside[0], inside[-1]


class NeuronExplorer(Demo):
    """One neuron a = g(w0 + w1 x1 + w2 x2) on 2-D data; see ``neuron_explorer``."""

    def __init__(self, X=None, y=None, activation="sigmoid"):
        if activation not in _NEURON_OUTPUTS:
            raise ValueError(f"activation must be one of {sorted(_NEURON_OUTPUTS)}, got {activation!r}")
        if X is None:
            from .data import make_blobs

            X, y = make_blobs(60, centers=[[-1.2, -0.8], [1.2, 0.9]], std=0.75, seed=0)
        self.X = np.asarray(X, dtype=np.float64)
        self.y = np.asarray(y).reshape(-1)
        if self.X.ndim != 2 or self.X.shape[1] != 2 or len(self.X) != len(self.y):
            raise ValueError(f"Need X: (m, 2) and y: (m,); got {self.X.shape} and {self.y.shape}")
        self.activation = activation
        controls = {
            name: widgets.FloatSlider(value=v, min=-5, max=5, step=0.1, description=d, **_SLIDER)
            for name, v, d in [("w0", 0.0, "w₀ (bias)"), ("w1", 1.0, "w₁"), ("w2", 0.5, "w₂")]
        }
        super().__init__(controls, [widgets.HBox(list(controls.values()))])
        self._observe_all(self.redraw, controls)
        self.redraw()

    def redraw(self):
        w0, w1, w2 = (float(self.controls[k].value) for k in ("w0", "w1", "w2"))
        g = _NEURON_OUTPUTS[self.activation]

        def predict(P):  # P: (k, 2) -> P(y=1|x): (k,)
            return g(w0 + P @ np.array([w1, w2]))

        t01 = _binary01(self.y)
        p = predict(self.X)
        acc = float(np.mean((p > 0.5) == (t01 == 1)))
        if self.activation == "step":
            loss, loss_text = None, "BCE: undefined for a step (use sigmoid)"
        else:
            q = np.clip(p, 1e-15, 1 - 1e-15)  # never log(0)
            loss = float(-np.mean(t01 * np.log(q) + (1 - t01) * np.log(1 - q)))
            loss_text = f"BCE loss L = {loss:.3f}"

        fig, (ax,) = _figure(1, figsize=(6.4, 4.6))
        plots.plot_decision_boundary(
            predict,
            self.X,
            self.y,
            ax=ax,
            resolution=120,
            title=f"a = {self.activation}({w0:g} + {w1:g}·x₁ + {w2:g}·x₂)",
        )
        line = _line_in_box(w0, w1, w2, ax.get_xlim(), ax.get_ylim())
        if line is not None:
            (a1, a2), (b1, b2) = line
            ax.plot([a1, b1], [a2, b2], color="black", lw=2, zorder=2)
            # The weight vector (w1, w2) is normal to the boundary and points to class 1.
            mx, my = (a1 + b1) / 2, (a2 + b2) / 2
            size = 0.15 * max(np.ptp(ax.get_xlim()), np.ptp(ax.get_ylim()))
            nx, ny = np.array([w1, w2]) / np.hypot(w1, w2) * size
            ax.annotate(
                "",
                xy=(mx + nx, my + ny),
                xytext=(mx, my),
                zorder=5,
                arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.8},
            )
            ax.text(
                mx + 1.3 * nx,
                my + 1.3 * ny,
                "w",
                fontsize=12,
                fontweight="bold",
                ha="center",
                va="center",
                zorder=5,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7},
            )
        self.state.update(w=(w0, w1, w2), boundary=line, loss=loss, accuracy=acc)
        text = (
            f"z = {w0:g} + {w1:g}·x₁ + {w2:g}·x₂ &nbsp;·&nbsp; {loss_text} &nbsp;·&nbsp; "
            f"accuracy {acc:.0%} ({int(round(acc * len(t01)))}/{len(t01)})"
        )
        self._show(fig, text)


def neuron_explorer(X=None, y=None, activation="sigmoid"):
    """Sliders for the weights of one neuron a = g(w₀ + w₁x₁ + w₂x₂) on 2-D data.

    X: (m, 2), y: (m,) labels 0/1 (or bipolar −1/+1); default two seeded blobs.
    activation: "sigmoid" (logistic regression) or "step" (perceptron).
    Shows the shaded P(y=1|x), the boundary line w₀ + w₁x₁ + w₂x₂ = 0 with the
    normal vector w, and the BCE loss and accuracy.
    state: w = (w0, w1, w2), boundary = ((x1, x2), (x1, x2)) endpoints inside
    the view (None if the line misses it), loss, accuracy, text.
    """
    return NeuronExplorer(X, y, activation)


# ----- gradient descent on 1-D linear regression -----------------------------
class GradientDescentExplorer(Demo):
    """Gradient descent on L(w, b) = 1/(2m) Σ (w x + b − y)²; see ``gradient_descent_explorer``."""

    def __init__(self, x=None, y=None):
        if x is None:
            from .data import make_linear

            # Mean and spread of x make the valley diagonal and stretched, as real data do.
            X, y = make_linear(40, w=2.0, b=1.0, noise=0.5, x_range=(-1, 3), seed=0)
            x = X[:, 0]
        self.x = np.asarray(x, dtype=np.float64).reshape(-1)
        self.y = np.asarray(y, dtype=np.float64).reshape(-1)
        if len(self.x) != len(self.y) or len(self.x) < 2:
            raise ValueError(f"Need x: (m,) and y: (m,) with m ≥ 2; got {len(self.x)} and {len(self.y)}")
        # L is quadratic with Hessian H = 1/m [[Σx², Σx], [Σx, m]]. GD converges
        # exactly when α < 2/λ_max(H) and overshoots (zig-zags) when α > 1/λ_max.
        m = len(self.x)
        H = np.array([[self.x @ self.x, self.x.sum()], [self.x.sum(), m]]) / m
        self.lam_max = float(np.linalg.eigvalsh(H)[-1])
        A = np.column_stack([self.x, np.ones(m)])
        self.w_star, self.b_star = np.linalg.lstsq(A, self.y, rcond=None)[0]
        self.loss_star = float(self.loss(self.w_star, self.b_star))
        span = max(3.0, 1.5 * abs(self.w_star), 1.5 * abs(self.b_star))
        self.w_range = (self.w_star - span, self.w_star + span)
        self.b_range = (self.b_star - span, self.b_star + span)

        lr_top = max(1.5, 1.5 * 2 / self.lam_max)  # always reach the divergent regime
        controls = {
            "lr": widgets.FloatLogSlider(
                value=float(f"{0.9 / self.lam_max:.2g}"),
                base=10,
                min=-3,
                max=np.log10(lr_top),
                step=0.05,
                description="α (learning rate)",
                readout_format=".3g",
                **_SLIDER,
            ),
            "steps": widgets.IntSlider(value=30, min=1, max=100, description="steps", **_SLIDER),
            "w_start": widgets.FloatSlider(
                value=round(self.w_star - 0.8 * span, 1),
                min=self.w_range[0],
                max=self.w_range[1],
                step=0.1,
                description="start w",
                **_SLIDER,
            ),
            "b_start": widgets.FloatSlider(
                value=round(self.b_star + 0.8 * span, 1),
                min=self.b_range[0],
                max=self.b_range[1],
                step=0.1,
                description="start b",
                **_SLIDER,
            ),
        }
        rows = [
            widgets.HBox([controls["lr"], controls["steps"]]),
            widgets.HBox([controls["w_start"], controls["b_start"]]),
        ]
        super().__init__(controls, rows)
        self._observe_all(self.redraw, controls)
        self.redraw()

    def loss(self, w, b):
        """L(w, b) = 1/(2m) Σ (w x + b − y)²; w and b: scalars or arrays of one shape."""
        w, b = np.asarray(w, dtype=np.float64), np.asarray(b, dtype=np.float64)
        r = w[..., None] * self.x + b[..., None] - self.y  # residuals: (..., m)
        return 0.5 * np.mean(r * r, axis=-1)

    def run(self, lr, steps, w, b):
        """Gradient descent from (w, b): path (T+1, 2) and losses (T+1,), T ≤ steps."""
        path, losses = [(w, b)], [float(self.loss(w, b))]
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(steps):
                r = w * self.x + b - self.y
                w, b = w - lr * np.mean(r * self.x), b - lr * np.mean(r)  # ∂L/∂w, ∂L/∂b
                loss = float(self.loss(w, b))
                if not np.isfinite(loss):  # overflowed: the divergence is already plain
                    break
                path.append((w, b))
                losses.append(loss)
        return np.array(path), np.array(losses)

    def redraw(self):
        c = self.controls
        lr, steps = float(c["lr"].value), int(c["steps"].value)
        path, losses = self.run(lr, steps, float(c["w_start"].value), float(c["b_start"].value))
        lr_crit = 2.0 / self.lam_max
        diverging = lr > lr_crit
        gap = losses[-1] - self.loss_star  # how far above the minimum L* we stopped
        if diverging:
            verdict = f"diverging: α too large (α = {lr:.3g} > 2/λ_max = {lr_crit:.3g})"
        elif gap <= 1e-3 * (losses[0] - self.loss_star) + 1e-12:  # 99.9% of the way down
            verdict = "converged to the minimum" + (
                " (overshooting: α > 1/λ_max makes it zig-zag)" if lr > lr_crit / 2 else ""
            )
        elif lr > lr_crit / 2:
            verdict = f"still zig-zagging: α close to 2/λ_max = {lr_crit:.3g} (L − L* = {gap:.3g})"
        else:
            verdict = f"still descending: α small or too few steps (L − L* = {gap:.3g})"

        fig, (ax_s, ax_l) = _figure(2, width_ratios=[1.3, 1], wspace=0.45)
        plots.plot_loss_surface(
            self.loss,
            self.w_range,
            self.b_range,
            path=path,
            ax=ax_s,
            resolution=60,
            minimum=(self.w_star, self.b_star),
            title=f"L(w, b) and {len(path) - 1} steps of GD",
        )
        ax_l.plot(
            np.arange(len(losses)),
            losses,
            "o-",
            ms=3,
            color=plots.VERMILLION if diverging else plots.BLUE,
            label="L(w, b) at step t",
        )
        ax_l.axhline(self.loss_star, color=plots.GREY, ls="--", label=f"minimum L* = {self.loss_star:.3g}")
        log = losses.max() > 1e3 * max(losses.min(), 1e-12)  # a linear axis is easier to read
        if log:
            ax_l.set_yscale("log")
            # Plain "1e+20" labels: the default 10²⁰ goes through mathtext, ~0.2 s a redraw.
            ax_l.yaxis.set_major_formatter(LogFormatter(labelOnlyBase=True))
        ax_l.set(xlabel="step t", ylabel="loss L (log scale)" if log else "loss L", title="Loss per step")
        ax_l.grid(alpha=0.3, which="both")
        ax_l.legend(fontsize="small", loc="lower right" if diverging else "upper right")
        if diverging:
            ax_l.text(
                0.04,
                0.96,
                "diverging:\nα too large",
                transform=ax_l.transAxes,
                ha="left",
                va="top",
                fontsize=14,
                color=plots.VERMILLION,
            )

        self.state.update(
            lr=lr,
            steps=steps,
            path=path,
            losses=losses,
            final_loss=float(losses[-1]),
            diverging=diverging,
            lr_critical=lr_crit,
            minimum=(self.w_star, self.b_star),
        )
        color = plots.VERMILLION if diverging else "black"
        self._show(
            fig,
            f"<b style='color:{color}'>{verdict}</b> &nbsp;·&nbsp; final loss "
            f"{losses[-1]:.4g} after {len(path) - 1} steps",
        )


def gradient_descent_explorer(x=None, y=None):
    """Gradient descent for f(x) = w x + b with L = 1/(2m) Σ (f(x) − y)².

    x: (m,), y: (m,); default 40 seeded points around y = 2x + 1.
    Controls: learning rate α (log scale), number of steps, start (w, b).
    Draws the contours of L(w, b) with the path of GD and the loss per step;
    the text says whether GD converges or diverges (α > 2/λ_max of the Hessian).
    state: lr, steps, path (T+1, 2), losses (T+1,), final_loss, diverging,
    lr_critical = 2/λ_max, minimum = (w*, b*), text.
    """
    return GradientDescentExplorer(x, y)


# ----- the playground ----------------------------------------------------------
def _xor_clouds(m, seed):
    """Four Gaussian clouds at (±1, ±1); the class is XOR of the two signs."""
    from .data import make_blobs

    X, cloud = make_blobs(m, centers=[[-1, -1], [1, 1], [-1, 1], [1, -1]], std=0.35, seed=seed)
    return X, (cloud >= 2).astype(np.int64)  # clouds 2, 3 have x₁·x₂ < 0


def _playground_makers():
    from . import data

    return {
        "moons": lambda seed: data.make_moons(200, noise=0.15, seed=seed),
        "circles": lambda seed: data.make_circles(200, noise=0.08, factor=0.5, seed=seed),
        "spirals": lambda seed: data.make_spirals(300, n_classes=2, noise=0.15, turns=1.0, seed=seed),
        "xor": lambda seed: _xor_clouds(200, seed),
        "blobs": lambda seed: data.make_blobs(240, centers=[[-2, -1.2], [2, -1.2], [0, 2]], std=0.8, seed=seed),
    }


PLAYGROUND_DATASETS = tuple(_playground_makers())


def _dataset(name, seed=0):
    makers = _playground_makers()
    if name not in makers:
        raise ValueError(f"Unknown dataset {name!r}. Choose one of: {', '.join(makers)}.")
    return makers[name](seed)


class Playground(Demo):
    """A small MLP trained on 2-D toy data; see ``playground``."""

    def __init__(self, dataset="moons", seed=0, **settings):
        self.seed = seed
        self.model = None
        controls = {
            "dataset": widgets.Dropdown(options=PLAYGROUND_DATASETS, value=dataset, description="data"),
            "hidden_layers": widgets.IntSlider(value=1, min=0, max=3, description="hidden layers", **_SLIDER),
            "units": widgets.IntSlider(value=4, min=1, max=8, description="units per layer", **_SLIDER),
            "activation": widgets.Dropdown(options=["tanh", "relu", "sigmoid"], value="tanh", description="activation"),
            "lr": widgets.FloatLogSlider(
                value=0.1,
                base=10,
                min=-3,
                max=0,
                step=0.1,
                description="learning rate",
                readout_format=".3g",
                **_SLIDER,
            ),
            "epochs": widgets.IntSlider(value=100, min=10, max=500, step=10, description="epochs", **_SLIDER),
            "train": widgets.Button(description="Train", button_style="primary", icon="play"),
        }
        for w in controls.values():
            if not isinstance(w, widgets.Button):
                w.layout.width = "300px"
        c = controls
        rows = [
            widgets.HBox([c["dataset"], c["hidden_layers"], c["units"]]),
            widgets.HBox([c["activation"], c["lr"], c["epochs"]]),
            c["train"],
        ]
        super().__init__(controls, rows)
        c["train"].on_click(lambda _button: self.train())
        c["dataset"].observe(lambda _change: self.show_data(), names="value")
        # Training takes up to a second, so settings only take effect on "Train".
        names = ["hidden_layers", "units", "activation", "lr", "epochs"]
        unknown = sorted(set(settings) - set(names))
        if unknown:
            raise ValueError(f"Unknown playground setting(s) {unknown}. Choose from: {', '.join(names)}.")
        for name, value in settings.items():  # before the first training, so it trains once
            controls[name].value = value
        self._observe_all(self._settings_changed, names)
        self.train()

    def _settings_changed(self):
        if self.state.get("trained"):  # after a dataset change the text already says so
            self.status.value = self.state["text"] + " &nbsp;·&nbsp; <i>settings changed: press Train</i>"

    def _data(self):
        X, y = _dataset(self.controls["dataset"].value, seed=self.seed)
        return X, y, int(y.max()) + 1

    def build_model(self, n_classes):
        """The Sequential the controls describe: 2 inputs -> hidden layers -> output."""
        from .nn import Adam, Dense, Sequential

        c = self.controls
        layers = [Dense(c["units"].value, activation=c["activation"].value) for _ in range(c["hidden_layers"].value)]
        if n_classes == 2:  # one sigmoid unit: P(y=1|x), trained on BCE
            layers.append(Dense(1, activation="sigmoid"))
            loss = "binary_crossentropy"
        else:  # softmax over the classes, labels stay integers
            layers.append(Dense(n_classes, activation="softmax"))
            loss = "sparse_categorical_crossentropy"
        model = Sequential(layers, seed=self.seed)
        model.build(2)
        model.compile(loss=loss, optimizer=Adam(c["lr"].value), metrics=["accuracy"])
        return model

    def train(self):
        """Build a fresh model from the controls, train it, redraw; returns the History."""
        X, y, n_classes = self._data()
        c = self.controls
        c["train"].disabled = True
        try:
            start = time.perf_counter()
            self.model = self.build_model(n_classes)
            history = self.model.fit(X, y, epochs=c["epochs"].value, batch_size=64, verbose=0)
            seconds = time.perf_counter() - start
        finally:
            c["train"].disabled = False
        acc = history.history["accuracy"][-1]
        final_acc = self.model.evaluate(X, y)[1]  # after the last update, not averaged over it
        sizes = [2] + [layer.units for layer in self.model.layers]
        self.state.update(
            trained=True,
            dataset=c["dataset"].value,
            sizes=sizes,
            activation=c["activation"].value,
            lr=c["lr"].value,
            epochs=c["epochs"].value,
            history=history.history,
            final_loss=history.history["loss"][-1],
            train_accuracy=float(final_acc),
            last_epoch_accuracy=acc,
            n_params=self.model.count_params(),
            train_seconds=seconds,
        )

        fig, (ax_b, ax_h) = _figure(2, width_ratios=[1.15, 1])
        title = " → ".join(map(str, sizes)) + f" network ({c['dataset'].value})"
        # A coarser grid, no colorbar and no twin axis keep a redraw well under 0.5 s.
        plots.plot_decision_boundary(self.model.predict, X, y, ax=ax_b, resolution=80, title=title, colorbar=False)
        plots.plot_history(history, ax=ax_h, twin=False)
        text = (
            f"train accuracy <b>{final_acc:.1%}</b> &nbsp;·&nbsp; final loss "
            f"{history.history['loss'][-1]:.3f} &nbsp;·&nbsp; {self.model.count_params()} "
            f"parameters &nbsp;·&nbsp; trained in {seconds:.2f} s"
        )
        self._show(fig, text)
        return history

    def show_data(self):
        """Draw the chosen dataset alone (no training: that waits for "Train")."""
        X, y, _ = self._data()
        self.state.update(trained=False, dataset=self.controls["dataset"].value)
        fig, (ax,) = _figure(1, figsize=(5, 4))
        plots.plot_data(X, y, ax=ax, title=f"{self.controls['dataset'].value}: {len(X)} points")
        self._show(fig, f"{len(X)} examples, {len(np.unique(y))} classes &nbsp;·&nbsp; <i>press Train</i>")


def playground(dataset="moons", seed=0, **settings):
    """A miniature playground.tensorflow.org: train a small MLP on 2-D data.

    Controls: dataset (moons, circles, spirals, xor, blobs), hidden layers
    (0–3), units per layer, activation (tanh/relu/sigmoid), learning rate
    (Adam), epochs, and a Train button. Changing a setting does not retrain;
    the button does (once at start, with small defaults or the ``settings``
    given, e.g. ``playground("circles", hidden_layers=3, activation="sigmoid")``). Minibatches of 64,
    weights and shuffling seeded with ``seed``, so a run is reproducible.
    state: trained, dataset, sizes, activation, lr, epochs, history,
    final_loss, train_accuracy (after training), last_epoch_accuracy (as
    logged during the last epoch), n_params, train_seconds, text; ``.model``
    is the trained Sequential.
    """
    return Playground(dataset, seed, **settings)


# ----- convolution: one filter slid over an image ------------------------------
FEATURE_MAP_FILTERS = {
    # name -> a small kernel; on the digits, ink is positive and the background 0
    "vertical edge (ink on the left)": [[1.0, 0.0, -1.0], [1.0, 0.0, -1.0], [1.0, 0.0, -1.0]],
    "horizontal edge (ink above)": [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -1.0, -1.0]],
    "diagonal ↘ stroke": [[1.0, -1.0], [-1.0, 1.0]],
    "diagonal ↗ stroke": [[-1.0, 1.0], [1.0, -1.0]],
    "blur (mean of 3×3)": [[1 / 9] * 3] * 3,
}


def _shift_right(image, shift):
    """The image moved ``shift`` pixels to the right (left if negative), zeros coming in."""
    out = np.zeros_like(image)
    if shift >= 0:
        out[:, shift:] = image[:, : image.shape[1] - shift]
    else:
        out[:, :shift] = image[:, -shift:]
    return out


class FeatureMapExplorer(Demo):
    """One filter slid over one image, then 2×2 max pooling; see ``feature_map_explorer``."""

    def __init__(self, images, filters=None, labels=None):
        from .nn.conv import conv_forward, maxpool_forward

        self._conv, self._pool = conv_forward, maxpool_forward
        self.images = np.asarray(images, dtype=np.float64)
        if self.images.ndim != 3 or len(self.images) == 0:
            raise ValueError(f"images must have shape (n, height, width), got {self.images.shape}")
        filters = FEATURE_MAP_FILTERS if filters is None else filters
        self.filters = {str(name): np.asarray(k, dtype=np.float64) for name, k in filters.items()}
        bad = [name for name, k in self.filters.items() if k.ndim != 2 or k.shape[0] > self.images.shape[1]]
        if not self.filters or bad:
            raise ValueError(f"filters must be a non-empty dict of small 2-D kernels; check {bad}")
        self.labels = None if labels is None else list(labels)
        width = self.images.shape[2]
        controls = {
            "image": widgets.IntSlider(value=0, min=0, max=len(self.images) - 1, description="image", **_SLIDER),
            "filter": widgets.Dropdown(options=list(self.filters), description="filter"),
            "shift": widgets.IntSlider(
                value=0, min=-(width // 4), max=width // 4, description="shift right (pixels)", **_SLIDER
            ),
            "relu": widgets.Checkbox(value=True, description="ReLU after the filter"),
        }
        controls["filter"].layout.width = "330px"
        rows = [
            widgets.HBox([controls["image"], controls["filter"]]),
            widgets.HBox([controls["shift"], controls["relu"]]),
        ]
        super().__init__(controls, rows)
        self._observe_all(self.redraw, controls)
        self.redraw()

    def redraw(self):
        c = self.controls
        i, name, shift = c["image"].value, c["filter"].value, c["shift"].value
        image = _shift_right(self.images[i], shift)
        kernel = self.filters[name]
        Z, _ = self._conv(image[None, :, :, None], kernel[:, :, None, None], np.zeros(1))
        fmap = np.maximum(Z, 0.0) if c["relu"].value else Z
        pooled, _ = self._pool(fmap)
        fmap, pooled = fmap[0, :, :, 0], pooled[0, :, :, 0]
        self.state.update(
            image_index=i, filter=name, shift=shift, image=image, kernel=kernel, feature_map=fmap, pooled=pooled
        )

        fig, axes = _figure(4, figsize=(11, 3.3), wspace=0.35, width_ratios=[1, 0.6, 1, 1])
        label = "" if self.labels is None else f" (label {self.labels[i]})"
        lim = max(np.abs(fmap).max(), 1e-12)
        panels = [
            (image, f"image {i}{label}", "gray_r", None),
            (kernel, "filter", "RdBu_r", np.abs(kernel).max()),
            (fmap, f"feature map {fmap.shape[0]}×{fmap.shape[1]}", "RdBu_r", lim),
            (pooled, f"after 2×2 max pooling {pooled.shape[0]}×{pooled.shape[1]}", "RdBu_r", lim),
        ]
        for ax, (values, title, cmap, v) in zip(axes, panels):
            ax.imshow(values, cmap=cmap, vmin=None if v is None else -v, vmax=v)
            ax.set_title(title, fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
        where = np.unravel_index(np.argmax(fmap), fmap.shape)
        self._show(
            fig,
            f"strongest response <b>{fmap.max():.3g}</b> at row {where[0]}, column {where[1]} "
            f"&nbsp;·&nbsp; the filter has {kernel.size} weights, used at all {fmap.size} positions",
        )


def feature_map_explorer(images, filters=None, labels=None):
    """Slide a filter over an image and look at the feature map, before and after pooling.

    images: (n, h, w), e.g. the 8×8 digits; filters: dict name -> 2-D kernel
    (default FEATURE_MAP_FILTERS: edges, diagonal strokes, blur); labels: (n,) or None.
    Controls: which image, which filter, a horizontal shift of the image (to
    see the feature map move with it) and whether a ReLU follows the filter.
    The feature map is the "valid" cross-correlation (no bias), then 2×2 max pooling.
    state: image_index, filter, shift, image, kernel, feature_map, pooled, text.
    """
    return FeatureMapExplorer(images, filters, labels)


# ----- optimizers on a 2-D loss surface -------------------------------------------------
def _ravine(x, y):
    """A long, narrow valley: curvature 1 along x and 20 along y, minimum at (0, 0)."""
    return 0.5 * (x * x + 20.0 * y * y), (x, 20.0 * y)


def _banana(x, y):
    """Rosenbrock's curved valley with a gentler wall: (1 − x)² + 10 (y − x²)², minimum at (1, 1)."""
    r = y - x * x
    return (1 - x) ** 2 + 10.0 * r * r, (-2.0 * (1 - x) - 40.0 * x * r, 20.0 * r)


# name -> (loss and gradient, x range, y range, start, minimum)
_SURFACES = {
    "ravine": (_ravine, (-3.5, 3.5), (-1.5, 1.5), (-3.0, 1.0), (0.0, 0.0)),
    "banana": (_banana, (-2.0, 2.0), (-1.0, 3.0), (-1.5, 2.5), (1.0, 1.0)),
}
_OPTIMIZER_COLORS = {"SGD": "white", "momentum": plots.ORANGE, "Adam": plots.VERMILLION}


class OptimizerExplorer(Demo):
    """SGD, momentum and Adam from one start on a 2-D surface; see ``optimizer_explorer``."""

    def __init__(self, surface="ravine"):
        if surface not in _SURFACES:
            raise ValueError(f"surface must be one of {sorted(_SURFACES)}, got {surface!r}")
        controls = {
            "surface": widgets.Dropdown(options=sorted(_SURFACES), value=surface, description="surface"),
            "lr": widgets.FloatLogSlider(
                value=0.02, base=10, min=-3, max=0, step=0.1, description="α", readout_format=".3g", **_SLIDER
            ),
            "momentum": widgets.FloatSlider(
                value=0.9, min=0.0, max=0.99, step=0.01, description="μ (momentum)", **_SLIDER
            ),
            "steps": widgets.IntSlider(value=100, min=1, max=300, description="steps", **_SLIDER),
        }
        rows = [
            widgets.HBox([controls["surface"], controls["steps"]]),
            widgets.HBox([controls["lr"], controls["momentum"]]),
        ]
        super().__init__(controls, rows)
        self._observe_all(self.redraw, controls)
        self.redraw()

    def loss(self, x, y):
        """The current surface's loss at (x, y); arrays of one shape work too."""
        return _SURFACES[self.controls["surface"].value][0](x, y)[0]

    def run(self, optimizer, steps):
        """Path (T+1, 2) and losses (T+1,) of a course_lib optimizer from the surface's start."""
        f, *_ranges, start, _ = _SURFACES[self.controls["surface"].value]
        p = np.array(start, dtype=np.float64)
        path, losses = [p.copy()], [float(f(*p)[0])]
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(steps):
                optimizer.update([p], [np.array(f(*p)[1])])
                loss = float(f(*p)[0])
                if not (np.all(np.isfinite(p)) and np.isfinite(loss)):  # diverged
                    break
                path.append(p.copy())
                losses.append(loss)
        return np.array(path), np.array(losses)

    def redraw(self):
        from .nn.optimizers import SGD, Adam

        c = self.controls
        lr, mu, steps = float(c["lr"].value), float(c["momentum"].value), int(c["steps"].value)
        f, xr, yr, _start, minimum = _SURFACES[c["surface"].value]
        runs = {
            "SGD": SGD(lr),
            "momentum": SGD(lr, momentum=mu) if mu > 0 else SGD(lr),
            "Adam": Adam(lr),
        }
        paths, losses = {}, {}
        for name, opt in runs.items():
            paths[name], losses[name] = self.run(opt, steps)

        fig, (ax_s, ax_l) = _figure(2, width_ratios=[1.3, 1], wspace=0.35)
        plots.plot_loss_surface(
            self.loss,
            xr,
            yr,
            ax=ax_s,
            resolution=60,
            minimum=minimum,
            colorbar=False,
            title=f"{steps} steps, α = {lr:.3g}",
        )
        for name, path in paths.items():
            inside = path[(path[:, 0] >= xr[0]) & (path[:, 0] <= xr[1]) & (path[:, 1] >= yr[0]) & (path[:, 1] <= yr[1])]
            color = _OPTIMIZER_COLORS[name]
            ax_s.plot(inside[:, 0], inside[:, 1], "o-", ms=2.5, lw=1, color=color, mec="black", mew=0.3, label=name)
            ax_l.semilogy(
                np.arange(len(losses[name])),
                losses[name] + 1e-12,
                color=color if name != "SGD" else "black",
                label=name,
            )
        ax_s.set(xlim=xr, ylim=yr, xlabel="w₁", ylabel="w₂")
        ax_s.legend(fontsize="small", loc="upper right")
        ax_l.set(xlabel="step t", ylabel="loss (log scale)", title="Loss per step")
        ax_l.grid(alpha=0.3, which="both")
        ax_l.legend(fontsize="small")
        final = {name: float(v[-1]) for name, v in losses.items()}
        self.state.update(
            lr=lr,
            momentum=mu,
            steps=steps,
            surface=c["surface"].value,
            paths=paths,
            losses=losses,
            final_loss=final,
            minimum=minimum,
        )
        self._show(fig, " &nbsp;·&nbsp; ".join(f"{name}: final loss {v:.3g}" for name, v in final.items()))


def optimizer_explorer(surface="ravine"):
    """SGD, SGD with momentum and Adam (course_lib's optimizers) side by side on a 2-D loss.

    Surfaces: "ravine", ½(w₁² + 20 w₂²), a narrow valley where plain gradient descent
    zig-zags; "banana", (1 − w₁)² + 10 (w₂ − w₁²)², a curved valley (Rosenbrock's, gentler).
    Controls: surface, learning rate α (log scale, shared), momentum μ, steps.
    Draws the three paths from one start over the contours, and the loss per step.
    state: lr, momentum, steps, surface, paths {name: (T+1, 2)}, losses {name: (T+1,)},
    final_loss {name: float}, minimum, text.
    """
    return OptimizerExplorer(surface)
