"""Pictures for the course: decision boundaries, loss curves, activations, networks.

Every function draws with matplotlib only, takes an optional ``ax=`` (draw
into an existing Axes, e.g. one panel of a bigger figure) and returns the
Axes it drew on, or the Figure for the multi-panel pictures. Nothing here
calls ``plt.show()``: in Jupyter the inline backend shows a figure at the end
of its cell, and in scripts and tests the caller decides.

Colours come from the Okabe-Ito palette, which stays distinguishable with the
common kinds of colour blindness; classes also differ by marker shape, so the
pictures still work in greyscale. Coordinates follow the course notation:
inputs are rows of X: (m, 2) with features x₁, x₂.
"""

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.collections import LineCollection
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.patches import FancyBboxPatch

# Okabe & Ito (2008), "Color Universal Design".
BLUE, ORANGE, GREEN, VERMILLION = "#0072B2", "#E69F00", "#009E73", "#D55E00"
SKY, PURPLE, YELLOW, GREY = "#56B4E9", "#CC79A7", "#F0E442", "#999999"
CLASS_COLORS = (BLUE, VERMILLION, GREEN, ORANGE, PURPLE, SKY, YELLOW, GREY)
CLASS_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")

# P(y=1|x): blue (class 0) through white (undecided) to vermillion (class 1).
PROBA_CMAP = LinearSegmentedColormap.from_list("course_proba", [BLUE, "#FFFFFF", VERMILLION])

_SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def sub(i):
    """Unicode subscript digits: sub(12) == "₁₂" (for labels like x₁)."""
    return str(i).translate(_SUB)


def _new_ax(ax, figsize=None):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


# ----- decision boundaries -------------------------------------------------
def _labels(y):
    """Class labels (m,) from labels (m,), a column (m, 1) or one-hot rows (m, C)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)
    return y.reshape(-1)


def _is_integral(a):
    return a.dtype.kind in "biu" or (a.dtype.kind == "f" and np.all(a == np.round(a)))


def _grid(X, resolution, padding):
    """A resolution × resolution grid around the data: xx, yy: (r, r), points: (r², 2)."""
    lo, hi = X.min(axis=0) - padding, X.max(axis=0) + padding
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    return xx, yy, np.column_stack([xx.ravel(), yy.ravel()])


def _scatter_classes(ax, X, labels, classes, size=None):
    size = np.clip(3000 / len(X), 24, 90) if size is None else size  # few points: bigger
    for i, c in enumerate(classes):
        mask = labels == c
        if not mask.any():
            continue
        ax.scatter(
            X[mask, 0],
            X[mask, 1],
            s=size,
            c=CLASS_COLORS[i % len(CLASS_COLORS)],
            marker=CLASS_MARKERS[i % len(CLASS_MARKERS)],
            edgecolors="black",
            linewidths=0.6,
            label=f"y = {c:g}",
            zorder=3,
        )


def plot_data(X, y, ax=None, title=None):
    """Scatter 2-D data coloured (and shaped) by class.

    X: (m, 2), y: (m,) labels (or (m, 1), or one-hot (m, C)). Returns the Axes.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_data draws 2 features, X: (m, 2); got {X.shape}")
    labels = _labels(y)
    ax = _new_ax(ax)
    _scatter_classes(ax, X, labels, np.unique(labels))
    ax.set(xlabel="x₁", ylabel="x₂", title=f"{len(X)} examples" if title is None else title)
    ax.legend(fontsize="small")
    return ax


def plot_decision_boundary(
    predict, X, y, ax=None, resolution=200, padding=0.5, threshold=0.5, title=None, colorbar=True
):
    """Colour the plane by what a classifier predicts and scatter the data on top.

    predict: function mapping points (k, 2) to one of
        * probabilities P(y=1|x): (k,) or (k, 1) floats in [0, 1] -> filled
          contours of P with the level line P = threshold (the decision boundary);
        * class probabilities (k, C) -> regions coloured by argmax;
        * integer labels (k,) (e.g. from a ``predict`` method, or ±1 from a
          perceptron) -> regions coloured by label.
    X: (m, 2) inputs, y: (m,) labels (or (m, 1), or one-hot (m, C)).
    Returns the Axes.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary needs 2 features, X: (m, 2); got {X.shape}")
    labels = _labels(y)
    ax = _new_ax(ax)
    xx, yy, points = _grid(X, resolution, padding)
    out = np.asarray(predict(points))
    if out.shape[0] != len(points):
        raise ValueError(f"predict returned {out.shape[0]} rows for {len(points)} points")

    scores = None
    if out.ndim == 2 and out.shape[1] > 1:
        region = out.argmax(axis=1)  # multiclass probabilities: pick the likeliest class
        scores = out
    elif _is_integral(out) and (out.dtype.kind != "f" or out.min() < 0 or out.max() > 1):
        region = out.reshape(-1)  # hard labels such as 0/1/2 or -1/+1
    else:
        region = None
        proba = out.reshape(-1).astype(np.float64)
        if proba.min() < -1e-9 or proba.max() > 1 + 1e-9:
            raise ValueError(
                f"predict returned values from {proba.min():.3g} to {proba.max():.3g}, but "
                "probabilities lie in [0, 1]. Did you return z instead of σ(z)?"
            )

    if region is None:
        classes = np.unique(labels)
        if len(classes) < 2:  # keep class 1 vermillion even when only one class is present
            classes = np.array([-1, 1]) if classes[0] < 0 else np.array([0, 1])
        P = proba.reshape(xx.shape)
        filled = ax.contourf(xx, yy, P, levels=np.linspace(0, 1, 11), cmap=PROBA_CMAP, vmin=0, vmax=1, alpha=0.6)
        if P.min() < threshold < P.max():
            ax.contour(xx, yy, P, levels=[threshold], colors="black", linewidths=2)
        # A proxy artist: contour lines have no legend label of their own.
        ax.plot([], [], color="black", lw=2, label=f"P(y=1|x) = {threshold:g}")
        if colorbar:
            ax.figure.colorbar(filled, ax=ax, label="P(y=1|x)", ticks=[0, 0.25, 0.5, 0.75, 1])
    else:
        classes = np.unique(np.concatenate([labels, region]))
        index = np.searchsorted(classes, region)
        # Fill and outline each class region k through a field that is above `level`
        # exactly inside it. (Contouring the label index itself would draw a staircase,
        # and two lines where regions 0 and 2 meet, as the index passes through 1.)
        for k, c in enumerate(classes):
            if scores is not None and 0 <= c < scores.shape[1]:
                # p_k − max_{j≠k} p_j changes sign smoothly on the boundary of region k.
                others = np.delete(scores, int(c), axis=1).max(axis=1)
                field, level = scores[:, int(c)] - others, 0.0
            else:
                field, level = (index == k).astype(np.float64), 0.5
            field = field.reshape(xx.shape)
            if field.max() <= level:
                continue  # class k is predicted nowhere in the window
            color = CLASS_COLORS[k % len(CLASS_COLORS)]
            ax.contourf(xx, yy, field, levels=[level, np.inf], colors=[color], alpha=0.3)
            if field.min() < level:
                ax.contour(xx, yy, field, levels=[level], colors="black", linewidths=1.2)
        if len(np.unique(index)) > 1:
            ax.plot([], [], color="black", lw=1.2, label="decision boundary")

    _scatter_classes(ax, X, labels, classes)
    ax.set(
        xlim=(xx.min(), xx.max()),
        ylim=(yy.min(), yy.max()),
        xlabel="x₁",
        ylabel="x₂",
        title="Decision boundary" if title is None else title,
    )
    ax.legend(loc="best", fontsize="small", framealpha=0.85)
    return ax


# ----- training curves -----------------------------------------------------
def _history_dict(history):
    if hasattr(history, "history"):  # a History from Sequential.fit
        history = history.history
    if isinstance(history, dict):
        return {k: np.asarray(v, dtype=np.float64) for k, v in history.items()}
    return {"loss": np.asarray(history, dtype=np.float64).reshape(-1)}  # a plain list of losses


def _curve(ax, values, **kw):
    epochs = np.arange(1, len(values) + 1)
    return ax.plot(epochs, values, marker="o" if len(values) <= 30 else None, ms=3, **kw)[0]


def plot_history(history, ax=None, twin=True):
    """Loss per epoch (and val_loss), plus accuracy if it was logged.

    history: a History (``model.fit(...)``), a dict of per-epoch lists with
    keys "loss", "val_loss", "accuracy", "val_accuracy", or just a list of losses.
    ax: None (new figure), one Axes (accuracy, if any, goes on a twin y-axis,
    or with twin=False on the same one), or two Axes (loss, accuracy).
    Returns the Figure when it draws two panels, otherwise the Axes.
    """
    h = _history_dict(history)
    if "loss" not in h:
        raise ValueError(f"history has no 'loss' entry; it has {sorted(h)}")
    has_acc = "accuracy" in h or "val_accuracy" in h
    two_panels = has_acc and (ax is None or np.ndim(ax) == 1)
    if ax is None:
        if two_panels:
            fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.6), layout="constrained")
        else:
            fig, ax_loss = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
    elif np.ndim(ax) == 1:
        ax_loss, ax_acc = ax
    else:
        ax_loss = ax

    _curve(ax_loss, h["loss"], color=BLUE, label="training loss")
    if "val_loss" in h:
        _curve(ax_loss, h["val_loss"], color=ORANGE, ls="--", label="validation loss")
    ax_loss.set(xlabel="epoch", ylabel="loss L", title="Loss per epoch")
    ax_loss.grid(alpha=0.3)
    ax_loss.legend(fontsize="small")
    if not has_acc:
        return ax_loss

    if not two_panels:  # one panel: accuracy on the right-hand axis, or on the same one
        ax_acc = ax_loss.twinx() if twin else ax_loss
    if "accuracy" in h:
        _curve(ax_acc, h["accuracy"], color=GREEN, ls="-" if two_panels else ":", label="training accuracy")
    if "val_accuracy" in h:
        _curve(ax_acc, h["val_accuracy"], color=VERMILLION, ls="--", label="validation accuracy")
    if ax_acc is ax_loss:
        ax_loss.set(ylim=(0, max(1.02, 1.05 * np.nanmax(h["loss"]))), ylabel="loss L, accuracy")
    else:
        ax_acc.set(ylim=(-0.02, 1.02), ylabel="accuracy")
    if two_panels:
        ax_acc.set(xlabel="epoch", title="Accuracy per epoch")
        ax_acc.grid(alpha=0.3)
        ax_acc.legend(fontsize="small", loc="lower right")
        return ax_loss.figure
    lines = ax_loss.get_lines() + (ax_acc.get_lines() if ax_acc is not ax_loss else [])
    ax_loss.legend(lines, [ln.get_label() for ln in lines], fontsize="small", loc="center right")
    ax_loss.set_title("Loss and accuracy per epoch")
    return ax_loss


# ----- activations ---------------------------------------------------------
_FORMULAS = {
    "identity": "identity: g(z) = z",
    "linear": "identity: g(z) = z",
    "sigmoid": "sigmoid: σ(z) = 1 / (1 + e⁻ᶻ)",
    "tanh": "tanh: g(z) = tanh(z)",
    "relu": "ReLU: g(z) = max(0, z)",
    "softplus": "softplus: g(z) = log(1 + eᶻ)",
}


def plot_activations(names=("identity", "sigmoid", "tanh", "relu", "softplus"), z=None, ax=None):
    """A grid of panels, one per activation, each with g(z) and its derivative g'(z).

    names: activation names from ``course_lib.nn.ACTIVATIONS`` (elementwise ones).
    z: (k,) points to evaluate at; default 401 points in [-4, 4].
    ax: optional sequence of Axes, one per name. Returns the Figure.
    """
    from .nn.activations import get_activation

    names = [names] if isinstance(names, str) else list(names)
    z = np.linspace(-4, 4, 401) if z is None else np.sort(np.asarray(z, dtype=np.float64))
    if ax is None:
        ncols = min(3, len(names))
        nrows = -(-len(names) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 2.7 * nrows), layout="constrained", squeeze=False)
        axes = axes.ravel()
        for extra in axes[len(names) :]:
            extra.set_visible(False)
    else:
        axes = np.ravel(ax)
        fig = axes[0].figure
    for a, name in zip(axes, names, strict=False):  # spare axes stay empty
        g = get_activation(name)
        if g.derivative is None:
            raise ValueError(f"{name} is not elementwise (it couples a row), so g'(z) has no plot")
        a.axhline(0, color=GREY, lw=0.8)
        a.axvline(0, color=GREY, lw=0.8)
        a.plot(z, g.fn(z), color=BLUE, lw=2.2, label="g(z)")
        a.plot(z, g.derivative(z), color=VERMILLION, lw=1.8, ls="--", label="g′(z)")
        a.set_title(_FORMULAS.get(g.name, g.name), fontsize="medium")
        a.set_xlabel("z")
        a.grid(alpha=0.3)
    axes[0].legend(fontsize="small", loc="upper left")
    return fig


# ----- regression ----------------------------------------------------------
def plot_regression(X, y, predict=None, ax=None, residuals=False, title=None):
    """Scatter 1-D data and, if given, the fitted function.

    X: (m, 1) or (m,), y: (m,) or (m, 1). predict: maps (k, 1) -> (k,) or (k, 1).
    residuals=True also draws the errors f(x⁽ⁱ⁾) − y⁽ⁱ⁾ that the MSE squares.
    Returns the Axes.
    """
    x = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    if x.shape[1] != 1:
        raise ValueError(f"plot_regression draws one feature, X: (m, 1); got {x.shape}")
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    ax = _new_ax(ax)
    ax.scatter(x[:, 0], y, s=22, color=BLUE, edgecolors="white", linewidths=0.5, zorder=3, label="data")
    if predict is not None:
        span = x.max() - x.min() or 1.0
        grid = np.linspace(x.min() - 0.05 * span, x.max() + 0.05 * span, 300)[:, None]
        ax.plot(
            grid[:, 0], np.asarray(predict(grid)).reshape(-1), color=VERMILLION, lw=2.2, label="model f(x)", zorder=4
        )
        if residuals:
            fit = np.asarray(predict(x)).reshape(-1)
            ax.vlines(x[:, 0], fit, y, color=GREY, lw=0.8, label="residual f(x) − y", zorder=2)
    ax.set(xlabel="x", ylabel="y", title="Regression" if title is None else title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax


# ----- network diagrams ----------------------------------------------------
MAX_DRAWN_UNITS = 12  # a larger layer shows its first and last few units around a "⋮"
_SHOWN_EACH_SIDE = 5


def _describe_network(model_or_sizes):
    """Layer sizes, activation names (None for the input) and weight matrices (or None)."""
    if hasattr(model_or_sizes, "layers"):  # a Sequential
        dense = [layer for layer in model_or_sizes.layers if hasattr(layer, "units")]
        if not dense or dense[0].input_dim is None:
            raise ValueError("Build the model first (give the first layer input_dim=...).")
        sizes = [dense[0].input_dim] + [layer.units for layer in dense]
        acts = [None] + [layer.activation.name for layer in dense]
        weights = [layer.W for layer in dense]
    else:
        sizes = [int(s) for s in model_or_sizes]
        acts, weights = [None] * len(sizes), None
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"A network needs at least 2 layers of ≥ 1 unit, got sizes {sizes}")
    return sizes, acts, weights


def _visible_units(n):
    """Indices of the units drawn for a layer of n, and whether it is truncated."""
    if n <= MAX_DRAWN_UNITS:
        return list(range(n)), False
    return list(range(_SHOWN_EACH_SIDE)) + list(range(n - _SHOWN_EACH_SIDE, n)), True


def _unit_y(n_slots):
    """Vertical positions of n slots, centred on 0, top to bottom, 1 apart."""
    return (n_slots - 1) / 2 - np.arange(n_slots)


def _has_image_layers(model):
    """True for a Sequential with image layers (Conv2D, MaxPooling2D, Flatten): their input is (h, w, c)."""
    layers = getattr(model, "layers", None) or []
    return any(layer.input_dim is not None and not np.isscalar(layer.input_dim) for layer in layers)


def _box_label(layer):
    """Kind and settings of one layer, from its public attributes: "Conv2D\\n8 × 3×3\\nvalid, relu"."""
    kind = type(layer).__name__
    if hasattr(layer, "filters"):
        (kh, kw), (sh, sw) = layer.kernel_size, layer.strides
        detail = f"{layer.filters} × {kh}×{kw}"
        if (sh, sw) != (1, 1):
            detail += f", stride {sh}" if sh == sw else f", stride {sh}×{sw}"
        detail += f"\n{layer.padding}, {layer.activation.name}"
    elif hasattr(layer, "pool_size"):
        detail = f"{layer.pool_size[0]}×{layer.pool_size[1]}"
    elif hasattr(layer, "units"):
        detail = f"{layer.units}, {layer.activation.name}"
    elif hasattr(layer, "rate"):
        detail = f"rate {layer.rate:g}"
    else:
        detail = ""
    return f"{kind}\n{detail}" if detail else kind


def _shape_text(dim):
    return str(tuple(dim)) if not np.isscalar(dim) else f"({dim},)"


def plot_layers(model, ax=None, title=None):
    """Draw a model as a chain of labelled boxes, one per layer, for conv nets.

    Each box names the layer and its settings, its output shape and its
    parameter count (pooling and Flatten have none). Returns the Axes.
    """
    if not getattr(model, "built", False):
        raise ValueError("Build the model first (give the first layer input_shape=...).")
    boxes = [("input", _shape_text(model.layers[0].input_dim), None, SKY)]
    for layer in model.layers:
        n = sum(p.size for p in layer.params)
        fill = GREEN if hasattr(layer, "filters") else ORANGE if hasattr(layer, "units") else YELLOW
        boxes.append((_box_label(layer), _shape_text(layer.output_dim), n, fill))
    ax = _new_ax(ax, figsize=(min(1.9 * len(boxes) + 0.4, 13.0), 2.8))
    for i, (label, shape, n, fill) in enumerate(boxes):
        ax.add_patch(
            FancyBboxPatch((i - 0.4, -0.5), 0.8, 1.0, boxstyle="round,pad=0.02", fc=fill, ec="black", alpha=0.85)
        )
        ax.text(i, 0.2, label, ha="center", va="center", fontsize="small")
        ax.text(i, -0.28, shape, ha="center", va="center", fontsize="small", family="monospace")
        if n is not None:
            ax.text(i, -0.62, f"{n} params", ha="center", va="top", fontsize="x-small", color="#444444")
        if i:
            ax.annotate("", (i - 0.42, 0), (i - 0.58, 0), arrowprops={"arrowstyle": "->", "lw": 1.2})
    ax.set_xlim(-0.55, len(boxes) - 0.45)
    ax.set_ylim(-0.95, 0.7)
    ax.axis("off")
    ax.set_title(f"{model.count_params()} parameters" if title is None else title)
    return ax


def plot_network(model_or_sizes, ax=None, title=None):
    """Draw a fully connected network: units as circles in columns, weights as lines.

    model_or_sizes: a built Sequential, or layer sizes such as [2, 3, 1].
    For a Sequential the lines show the weights: colour = sign (blue w > 0,
    vermillion w < 0) and width ∝ |w|. Layers with more than 12 units show
    their first and last 5 units around a "⋮". A model with image layers
    (Conv2D, MaxPooling2D, Flatten) is drawn as labelled boxes with their
    output shapes instead (see ``plot_layers``). Returns the Axes.
    """
    if _has_image_layers(model_or_sizes):
        return plot_layers(model_or_sizes, ax=ax, title=title)
    sizes, acts, weights = _describe_network(model_or_sizes)
    L = len(sizes) - 1
    ax = _new_ax(ax, figsize=(min(1.9 * (L + 1) + 1.2, 9.0), 4.2))
    shown = [_visible_units(n) for n in sizes]
    slots = max(len(units) + truncated for units, truncated in shown)

    # Positions: layer l at x = l; a truncated layer leaves its middle slot for "⋮".
    pos = []
    for l, (units, truncated) in enumerate(shown):
        ys = _unit_y(len(units) + truncated)
        if truncated:
            ax.text(l, ys[_SHOWN_EACH_SIDE], "⋮", ha="center", va="center", fontsize=16)
            ys = np.delete(ys, _SHOWN_EACH_SIDE)
        pos.append({u: (l, y) for u, y in zip(units, ys, strict=True)})

    segments, colors, widths = [], [], []
    for l in range(L):
        W = None if weights is None else np.asarray(weights[l])
        scale = None if W is None else (np.abs(W).max() or 1.0)
        for i, p in pos[l].items():
            for j, q in pos[l + 1].items():
                segments.append([p, q])
                if W is None:
                    colors.append(GREY)
                    widths.append(1.0)
                else:
                    colors.append(BLUE if W[i, j] >= 0 else VERMILLION)
                    widths.append(0.4 + 2.6 * abs(W[i, j]) / scale)
    ax.add_collection(LineCollection(segments, colors=colors, linewidths=widths, alpha=0.7, zorder=1, label="weights"))

    # Layout: the units fill the band [0.25, 0.92] of the axes height; the
    # layer labels and the parameter sum sit below it, in axes coordinates.
    band_lo, band_hi = 0.22, 0.92
    half = max((slots - 1) / 2, 0.5)
    span = 2 * half / (band_hi - band_lo)
    ax.set_ylim(-half - band_lo * span, half + (1 - band_hi) * span)
    ax.set_xlim(-0.6, L + 0.6)
    ax.axis("off")

    # Marker sizes are in points, so circles stay round whatever the aspect ratio.
    fig = ax.figure
    height_pt = ax.get_position().height * fig.get_figheight() * 72
    pitch_pt = (band_hi - band_lo) * height_pt / max(slots - 1, 1)
    diameter = min(28.0, 0.6 * pitch_pt)
    fills = [SKY] + [GREEN] * (L - 1) + [ORANGE]
    xy = np.array([p for layer in pos for p in layer.values()])
    face = [fills[l] for l, layer in enumerate(pos) for _ in layer]
    ax.scatter(xy[:, 0], xy[:, 1], s=diameter**2, c=face, edgecolors="black", linewidths=1.0, zorder=2, label="units")

    # Name the inputs and outputs next to their units, a few points off the circle.
    gap = diameter / 2 + 4
    for u, p in pos[0].items():
        ax.annotate(
            f"x{sub(u + 1)}", p, xytext=(-gap, 0), textcoords="offset points", ha="right", va="center", fontsize="small"
        )
    for u, p in pos[L].items():
        name = "ŷ" if sizes[L] == 1 else f"ŷ{sub(u + 1)}"
        ax.annotate(name, p, xytext=(gap, 0), textcoords="offset points", ha="left", va="center", fontsize="small")

    below = ax.get_xaxis_transform()  # x in data, y in axes fraction
    label_y = band_lo - (diameter / 2 + 6) / height_pt
    for l, n in enumerate(sizes):
        kind = "input" if l == 0 else "output" if l == L else f"hidden {l}"
        detail = f"{n}" if acts[l] is None else f"{n}, {acts[l]}"
        ax.text(l, label_y, f"{kind}\n({detail})", transform=below, ha="center", va="top", fontsize="small")

    n_params = sum(sizes[l] * sizes[l + 1] + sizes[l + 1] for l in range(L))
    terms = " + ".join(f"({sizes[l]}·{sizes[l + 1]} + {sizes[l + 1]})" for l in range(L))
    arrows = " → ".join(str(n) for n in sizes)
    ax.set_title(f"{arrows} network: {n_params} parameters" if title is None else title)
    if L <= 4:  # the sum gets too long to read for deep nets
        ax.text(
            0.5,
            0.0,
            f"weights + biases: {terms} = {n_params}",
            transform=ax.transAxes,
            ha="center",
            va="bottom",
            fontsize="x-small",
            color="#444444",
        )
    return ax


# ----- loss surfaces -------------------------------------------------------
def _evaluate_surface(loss_fn, W, B):
    try:
        L = np.asarray(loss_fn(W, B), dtype=np.float64)
        if L.shape == W.shape:
            return L
    except (TypeError, ValueError):
        pass  # loss_fn takes scalars only: evaluate point by point
    return np.vectorize(lambda w, b: float(loss_fn(w, b)))(W, B)


def plot_loss_surface(
    loss_fn, w_range, b_range, path=None, ax=None, resolution=100, minimum=None, title=None, colorbar=True
):
    """Contours of a loss L(w, b) of two parameters, with an optional descent path.

    loss_fn(w, b) -> L: works on arrays of equal shape (preferred) or scalars.
    w_range, b_range: (low, high) of the window. path: (T, 2) array of (w, b)
    iterates, drawn as markers joined by arrows from start to end; points that
    overflowed (inf/nan) are dropped. minimum: optional (w*, b*) to mark.
    Returns the Axes.
    """
    ax = _new_ax(ax)
    w = np.linspace(*w_range, resolution)
    b = np.linspace(*b_range, resolution)
    W, B = np.meshgrid(w, b)
    L = _evaluate_surface(loss_fn, W, B)
    # Quantile levels put more contours near the minimum, where the path ends up.
    levels = np.unique(np.quantile(L, np.linspace(0, 1, 16) ** 1.5))
    filled = ax.contourf(W, B, L, levels=levels, cmap="viridis", alpha=0.9)
    ax.contour(W, B, L, levels=levels, colors="white", linewidths=0.4, alpha=0.6)
    if colorbar:
        ax.figure.colorbar(filled, ax=ax, label="L(w, b)", format="%.3g")
    if minimum is not None:
        ax.plot(*minimum, marker="X", ms=11, color="white", mec="black", ls="none", label="minimum", zorder=5)
    if path is not None:
        path = np.asarray(path, dtype=np.float64).reshape(-1, 2)
        path = path[np.all(np.isfinite(path), axis=1)]
        ax.plot(path[:, 0], path[:, 1], color=ORANGE, lw=0.8, alpha=0.8, zorder=4)
        ax.plot(
            path[:, 0], path[:, 1], "o", ms=3.5, color=ORANGE, mec="black", mew=0.5, zorder=4, label="gradient descent"
        )
        # Arrowheads on tiny steps would pile up into a blob: only the longer steps get one.
        diag = np.hypot(w_range[1] - w_range[0], b_range[1] - b_range[0])
        for p, q in list(zip(path[:-1], path[1:], strict=True))[:60]:
            if np.hypot(*(q - p)) < 0.025 * diag:
                continue
            ax.annotate(
                "",
                xy=q,
                xytext=p,
                zorder=4,
                arrowprops={"arrowstyle": "->", "color": ORANGE, "lw": 1.3, "shrinkA": 0, "shrinkB": 2},
            )
        if len(path):
            ax.plot(*path[0], marker="s", ms=8, color=GREEN, mec="black", ls="none", label="start", zorder=5)
    ax.set(xlim=w_range, ylim=b_range, xlabel="w", ylabel="b", title="Loss surface L(w, b)" if title is None else title)
    if minimum is not None or path is not None:
        ax.legend(fontsize="small", loc="best", framealpha=0.85)
    return ax
