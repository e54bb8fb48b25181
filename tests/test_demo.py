"""course_lib.demo (demo cells use a student's function only once it works), and the
release notebooks hand out no implementation of an exercise."""

import ast
import importlib
import re
import types
from pathlib import Path

import nbformat
import numpy as np
import pytest

from course_lib import demo

REPO = Path(__file__).resolve().parents[1]
RELEASES = sorted((REPO / "release").glob("*/*.ipynb"))

X = np.array([[1.0, 2.0], [3.0, -1.0]])
W = np.array([[0.5], [-1.0]])
b = np.array([0.25])
Y = np.array([[-1.25], [2.75]])  # X @ W + b, worked out by hand


def predict(X, W, b):
    return X @ W + b


def works(fn, capsys, **options):
    ok = demo.works(fn, X, W, b, expect=Y, exercise="Exercise 1", **options)
    return ok, capsys.readouterr().out


# ----- works --------------------------------------------------------------------------
def test_a_correct_function_works_silently(capsys):
    assert works(predict, capsys) == (True, "")


def test_results_may_be_tuples_lists_dicts_and_scalars(capsys):
    def parts(X, W, b):
        Z = X @ W + b
        return Z, [float(Z.sum()), 2], {"Z": Z}

    expect = (Y, (1.5, 2), {"Z": Y})
    assert demo.works(parts, X, W, b, expect=expect, exercise="Exercise 2")
    assert not demo.works(parts, X, W, b, expect=(Y, (1.4, 2), {"Z": Y}), exercise="Exercise 2")
    assert "gives different values" in capsys.readouterr().out


def test_a_stub_is_not_implemented_yet(capsys):
    def predict(X, W, b):
        raise NotImplementedError()

    ok, out = works(predict, capsys)
    assert not ok
    assert out == (
        "(This demo needs Exercise 1, `predict`: it will appear here once your function passes its checks. "
        "Right now it is not implemented yet.)\n"
    )


@pytest.mark.parametrize("error", [ValueError("shapes"), ZeroDivisionError(), SystemExit(1), RecursionError()])
def test_a_function_that_raises_is_skipped_with_one_line(capsys, error):
    def predict(X, W, b):
        raise error

    ok, out = works(predict, capsys)
    assert not ok and out.count("\n") == 1 and "raises an error" in out and "`predict`" in out


def test_a_keyboard_interrupt_still_stops_the_cell():
    def predict(X, W, b):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        demo.works(predict, X, W, b, expect=Y, exercise="Exercise 1")


def test_an_in_place_edit_does_not_work_even_with_the_right_result(capsys):
    def standardize(X, W, b):
        out = X @ W + b
        X -= X.mean(axis=0)  # the bug that once corrupted a later demo's data
        return out

    ok, out = works(standardize, capsys)
    assert not ok and "changes its input" in out
    assert np.array_equal(X, [[1.0, 2.0], [3.0, -1.0]]), "the caller's arrays are never touched"


def test_edits_inside_lists_and_dicts_of_arguments_count(capsys):
    def step(params, grads):
        params["W"] -= grads["W"]
        return params["W"]

    params, grads = {"W": np.ones(2)}, {"W": np.full(2, 0.5)}
    assert not demo.works(step, params, grads, expect=np.full(2, 0.5), exercise="Exercise 5")
    assert "changes its input" in capsys.readouterr().out
    assert np.array_equal(params["W"], np.ones(2))


@pytest.mark.parametrize(
    "wrong",
    [
        lambda X, W, b: X @ W,  # forgot the bias
        lambda X, W, b: (X @ W + b).ravel(),  # wrong shape
        lambda X, W, b: (X @ W + b).tolist(),  # not an array
        lambda X, W, b: None,  # forgot return
        lambda X, W, b: np.full((2, 1), np.nan),
    ],
)
def test_wrong_values_do_not_work(capsys, wrong):
    ok, out = works(wrong, capsys)
    assert not ok and "gives different values" in out


def test_tolerances_are_passed_on(capsys):
    def close(X, W, b):
        return X @ W + b + 1e-4

    assert not works(close, capsys)[0]
    assert works(close, capsys, atol=1e-3)[0]


class LyingEq:
    def __eq__(self, other):
        return True

    __hash__ = None

    def __bool__(self):
        return True


class RaisingArray:
    def __array__(self, dtype=None, copy=None):
        raise RuntimeError("no")

    def __eq__(self, other):
        raise RuntimeError("no")

    def __len__(self):
        raise RuntimeError("no")


class SneakyNdarray(np.ndarray):
    def __eq__(self, other):
        return np.ones(self.shape, dtype=bool)


@pytest.mark.parametrize(
    "result",
    [LyingEq(), RaisingArray(), np.zeros((2, 1)).view(SneakyNdarray), (LyingEq(),), {"Z": RaisingArray()}],
)
def test_hostile_results_do_not_work_and_do_not_raise(capsys, result):
    assert works(lambda X, W, b: result, capsys)[0] is False


def test_a_function_that_swaps_in_a_lying_argument_does_not_work(capsys):
    def step(params):
        params[0] = LyingEq()
        return 1.0

    assert not demo.works(step, [np.ones(2)], expect=1.0, exercise="Exercise 4")
    assert "changes its input" in capsys.readouterr().out


class HostileCallable:
    @property
    def __name__(self):
        raise RuntimeError("no name")

    def __call__(self, *args):
        raise NotImplementedError


def test_a_hostile_or_strangely_named_function_is_not_named(capsys):
    assert not demo.works(HostileCallable(), 1.0, expect=1.0, exercise="Exercise 2")
    out = capsys.readouterr().out
    assert out.startswith("(This demo needs Exercise 2: it will")

    def f(x):
        return x

    f.__name__ = "<script>alert(1)</script>"
    assert not demo.works(f, 1.0, expect=2.0, exercise="Exercise 2")
    assert "script" not in capsys.readouterr().out


def test_not_a_function_at_all(capsys):
    assert not demo.works(None, 1.0, expect=1.0, exercise="Exercise 2")
    assert "raises an error" in capsys.readouterr().out


# ----- needs --------------------------------------------------------------------------
def test_needs_names_the_missing_results(capsys):
    g = {"demo": demo, "W_fit": np.ones(2), "losses": None}
    exec("ok_all = demo.needs('W_fit')\nok_some = demo.needs('W_fit', 'losses', 'nowhere')", g)
    assert g["ok_all"] is True and g["ok_some"] is False
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "`losses`, `nowhere`" in out and "`W_fit`" not in out


# ----- no implementation of an exercise in a student notebook ---------------------------
def _role(cell):
    nb = cell.metadata.get("nbgrader", {})
    return "solution" if nb.get("solution") else "other"


def _exercise_names(nb):
    """The functions the student writes: the `def` lines of the solution cells."""
    return {
        name
        for c in nb.cells
        if c.cell_type == "code" and _role(c) == "solution"
        for name in re.findall(r"^def\s+(\w+)", c.source, re.M)
    }


# course_lib implementations of an exercise under another name. (Not the solution cells'
# not_delegate lists: those also name tools a demo may use, such as numerical_gradient.)
IMPLEMENTED_AS = {
    "bce_loss": ["course_lib.nn.losses.binary_cross_entropy"],
    "cross_entropy": ["course_lib.nn.losses.categorical_cross_entropy"],
    "perceptron_step": ["course_lib.linear.Perceptron"],
    "train_perceptron": ["course_lib.linear.Perceptron"],
    "softmax_regression_gradient": ["course_lib.nn.losses.softmax_cross_entropy_with_logits"],
    "train_softmax_regression": ["course_lib.linear.SoftmaxRegression"],
    "normal_equation": ["course_lib.linear.LinearRegression"],
    "gradient_descent": ["course_lib.linear.LinearRegression"],
}


def _module(path):
    try:
        return importlib.import_module(path)
    except ImportError:
        return None


def _resolve(dotted):
    """The object a dotted course_lib name stands for, or None."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        obj = _module(".".join(parts[:i]))
        if obj is not None:
            for attr in parts[i:]:
                obj = getattr(obj, attr, None)
            return obj
    return None


def _chain(node):
    """a.b.c -> ["a", "b", "c"], or None for anything but names and attributes."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return [node.id, *reversed(parts)] if isinstance(node, ast.Name) else None


def _module_aliases(tree):
    """{name: module path} for the course_lib modules a cell imports (`from course_lib import nn`)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "course_lib":
            for a in node.names:
                if isinstance(_resolve(f"{node.module}.{a.name}"), types.ModuleType):
                    names[a.asname or a.name] = f"{node.module}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "course_lib":
                    names[a.asname or "course_lib"] = a.name if a.asname else "course_lib"
    return names


def _parse(source):
    return ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))


def handed_out(source, exercises, modules=None, forbidden=()):
    """What a non-solution cell hands out: reference_/library_ names, the old demo
    fallbacks, and course_lib's implementation of an exercise: a course_lib function with
    an exercise's name, or one of ``forbidden`` (implementations under another name),
    imported, aliased, or reached as an attribute of a course_lib module (``modules``:
    the module aliases of the notebook's other cells)."""
    tree = _parse(source)
    modules = {"course_lib": "course_lib", **(modules or {}), **_module_aliases(tree)}
    banned = {id(obj) for obj in forbidden if obj is not None}
    found = []

    def check(dotted, name):
        if name in exercises or id(_resolve(dotted)) in banned:
            found.append(f"uses {dotted}")

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "course_lib":
            for a in node.names:
                check(f"{node.module}.{a.name}", a.name)
        if isinstance(node, ast.Attribute) and (parts := _chain(node)) and parts[0] in modules:
            check(".".join([modules[parts[0]], *parts[1:]]), parts[-1])
        bound = None
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound = node.name
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound = node.id
        elif isinstance(node, ast.alias):
            bound = node.asname or node.name.split(".")[0]
        if bound and (bound.startswith(("reference_", "library_")) or bound == "pick"):
            found.append(f"defines {bound}")
        if isinstance(node, ast.Name) and node.id == "yours_or_reference" and isinstance(node.ctx, ast.Load):
            found.append("calls yours_or_reference")
    return found


def test_the_scanner_finds_every_way_of_handing_out_an_answer():
    ex = {"sigmoid", "predict"}
    assert handed_out("from course_lib.nn.activations import sigmoid", ex)
    assert handed_out("from course_lib.nn.activations import sigmoid as s", ex)
    assert handed_out("from course_lib.nn import activations\nf = activations.sigmoid", ex)
    assert handed_out("import course_lib.nn.activations as A\nA.sigmoid(0)", ex)
    assert handed_out("import course_lib\ncourse_lib.nn.activations.sigmoid(0)", ex)
    assert handed_out("Z = nn.sigmoid(0)", ex, modules={"nn": "course_lib.nn"})  # nn imported in the setup cell
    # A course_lib implementation under another name, when the caller names it (``forbidden``):
    bce = [_resolve("course_lib.nn.losses.binary_cross_entropy")]
    assert handed_out("from course_lib.nn.losses import binary_cross_entropy", ex, forbidden=bce)
    assert handed_out("from course_lib import nn\nL = nn.binary_cross_entropy", ex, forbidden=bce)
    assert not handed_out("from course_lib.nn.losses import binary_cross_entropy", ex)
    assert handed_out("from course_lib import nn\ny = pick(sigmoid, nn.sigmoid, 0.0)", ex)
    assert handed_out("def reference_predict(X, W, b):\n    return X @ W + b", ex)
    assert handed_out("from course_lib.nn.losses import mse_loss as library_mse_loss", ex)
    assert handed_out("W = yours_or_reference(predict, lambda *a: 0, 1)", ex)
    assert handed_out("def pick(yours, reference, *args):\n    return yours", ex)
    # Helpers that are not this week's exercises, and the student's own functions, are fine.
    assert not handed_out("%matplotlib inline\nfrom course_lib import data, nn\nZ = nn.relu(data.moons(seed=0)[0])", ex)
    assert not handed_out(
        "from course_lib import demo\nif demo.works(sigmoid, 0.0, expect=0.5, exercise='E1'):\n    y = sigmoid(0.0)", ex
    )


@pytest.mark.parametrize("path", RELEASES, ids=[p.parent.name for p in RELEASES])
def test_release_notebooks_hand_out_no_implementation_of_an_exercise(path):
    nb = nbformat.read(path, 4)
    exercises = _exercise_names(nb)
    assert exercises, "the scan needs the solution cells' def lines"
    cells = [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code" and _role(c) != "solution"]
    modules = {k: v for _, source in cells for k, v in _module_aliases(_parse(source)).items()}
    forbidden = [_resolve(t) for name in exercises for t in IMPLEMENTED_AS.get(name, [])]
    found = [
        f"cell {i}: {what}"
        for i, source in cells
        for what in sorted(set(handed_out(source, exercises, modules, forbidden)))
    ]
    assert not found, "\n".join(found)


def test_course_lib_names_are_resolved():
    from course_lib.nn import activations

    assert _resolve("course_lib.nn") is importlib.import_module("course_lib.nn")
    assert _resolve("course_lib.nn.activations.sigmoid") is activations.sigmoid
    assert _resolve("course_lib.nn.no_such_thing") is None
    assert all(_resolve(t) is not None for targets in IMPLEMENTED_AS.values() for t in targets)
