"""Exercise checks with targeted hints: type, then shape, then values.

Test cells in the course notebooks call these::

    check_close("Z for a 2x3 batch", dense_forward(X, W, b), [[1.0, 2.0], ...],
                mistakes={"forgot to add the bias b": [[0.5, 1.5], ...]})

On success a check prints a pass line; on failure it raises ``CheckFailed``
with a message that says what is wrong and, where it can tell, which
common mistake produces exactly your result ("It looks like you forgot to
add the bias b", "Looks transposed", "off by a factor of 4: a sum where a
mean belongs?").

Every comparison is done by ``compare`` on plain numpy data, never by the
value's own ``==``, so an object that claims to equal everything fails.
When notebooks are graded, the grader runs the same ``compare`` in its own
process (see ``course_lib._wire``); these functions are for your feedback.
"""

import math
from dataclasses import dataclass

import numpy as np

from ._wire import NUMPY_FLOAT_TYPES, NUMPY_INT_TYPES, Opaque, type_name

KINDS = ("close", "equal", "accuracy", "at_least", "at_most")


class CheckFailed(AssertionError):
    """A check did not pass; the message explains why."""


@dataclass(frozen=True)
class Verdict:
    ok: bool
    message: str = ""
    mistake: str | None = None  # the named mistake the result matches, if any


# ----- classifying values -------------------------------------------------
def _is_number(x):
    t = type(x)
    return t is int or t is float or t in NUMPY_INT_TYPES or t in NUMPY_FLOAT_TYPES


def _is_bool(x):
    return type(x) is bool or type(x) is np.bool_


def _scalar_like(x):
    """A real number, or a 0-d array of one."""
    return _is_number(x) or (type(x) is np.ndarray and x.ndim == 0 and x.dtype.kind in "iuf")


# The only words the grader uses for the type of a value: a type's name is chosen by the
# student's code (it can even be built at run time from the hidden tests), so it is never quoted.
_KNOWN_TYPES = {bool: "bool", int: "int", float: "float", str: "str", list: "list", tuple: "tuple", dict: "dict"}
_OPAQUE_WORDS = {
    "ndarray": "a numpy array of a dtype or size the checks do not accept",
    "list": "a list with too many items",
    "tuple": "a tuple with too many items",
    "dict": "a dict whose keys are not all strings, or with too many keys",
    "deep": "a value nested too deeply",
}


def _describe(x, show=True):
    """What ``x`` is, in words. show=False (the grader): a closed vocabulary only."""
    if type(x) is np.ndarray:
        return f"a numpy array of shape {tuple(int(d) for d in x.shape)}"
    if isinstance(x, Opaque):
        return _OPAQUE_WORDS.get(x.kind, "a value of another type")
    if x is None:
        return "None"
    if type(x) in _KNOWN_TYPES:
        return f"a {_KNOWN_TYPES[type(x)]}"
    if type(x) is np.bool_ or type(x) in NUMPY_INT_TYPES or type(x) in NUMPY_FLOAT_TYPES:
        return f"a numpy {type(x).__name__}"
    # The student's own kernel may name their own type; the grader never does.
    return f"a {type_name(x)}" if show else "a value of another type"


def _dtype(a, show):
    # A structured dtype's text carries field names the student chose.
    return f"dtype {a.dtype}" if show else "another dtype"


def _fmt(x, show):
    if not show:
        return ""
    with np.printoptions(precision=6, threshold=20, edgeitems=3, suppress=True):
        return np.array2string(np.asarray(x), separator=", ") if type(x) is np.ndarray else repr(x)


# ----- the comparison -----------------------------------------------------
def compare(kind, actual, expected, *, show_values=True, **options):
    """Decide whether ``actual`` passes a check of ``kind`` against ``expected``.

    kind: "close" (numbers/arrays within rtol/atol), "equal" (exact),
    "accuracy" (predicted labels vs true labels, needs min_accuracy),
    "at_least" / "at_most" (a number against a bound).
    show_values=False keeps every value (the student's and the expected one)
    out of the message: the grader's feedback must neither echo student output
    nor give away hidden tests.
    Returns a Verdict; never raises for a wrong answer.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown check kind {kind!r}")
    try:
        if kind in ("at_least", "at_most"):
            return _bound(kind, actual, expected, show_values)
        if kind == "accuracy":
            return _accuracy(actual, expected, options["min_accuracy"], show_values)
        return _compare(kind, actual, expected, options, show_values, path="")
    except (TypeError, ValueError, OverflowError, MemoryError) as e:
        return Verdict(False, f"could not be compared ({type(e).__name__})")


def _compare(kind, actual, expected, opts, show, path):
    where = f" in {path}" if path else ""
    if actual is None and expected is not None:
        return Verdict(False, f"got None{where}: did you forget a `return` statement?")
    if type(expected) in (tuple, list):
        return _compare_sequence(kind, actual, expected, opts, show, path)
    if type(expected) is dict:
        return _compare_dict(kind, actual, expected, opts, show, path)
    if type(expected) is str:
        ok = type(actual) is str and actual == expected
        return Verdict(ok, "" if ok else (f"expected the text {expected!r}{where}" if show else f"wrong text{where}"))
    if _is_bool(expected):
        if not _is_bool(actual):
            return Verdict(False, f"expected True or False{where}, got {_describe(actual, show)}")
        ok = bool(actual) == bool(expected)
        return Verdict(ok, "" if ok else (f"expected {bool(expected)}{where}" if show else f"wrong answer{where}"))
    if _scalar_like(expected):
        return _compare_scalar(kind, actual, expected, opts, show, where)
    if type(expected) is np.ndarray:
        return _compare_array(kind, actual, expected, opts, show, where)
    raise TypeError(f"checks cannot compare against {type_name(expected)}")


def _compare_sequence(kind, actual, expected, opts, show, path):
    if type(actual) not in (tuple, list):
        return Verdict(False, f"expected a tuple of {len(expected)} values, got {_describe(actual, show)}")
    if len(actual) != len(expected):
        return Verdict(False, f"expected {len(expected)} values, got {len(actual)}")
    labels = opts.get("labels") or [f"item {i}" for i in range(len(expected))]
    if len(labels) != len(expected):
        raise ValueError(f"labels names {len(labels)} items but the expected value has {len(expected)}")
    for label, a, e in zip(labels, actual, expected):
        v = _compare(kind, a, e, {**opts, "labels": None, "mistakes": None}, show, "")
        if not v.ok:
            named = _with_mistakes(None, actual, expected, kind, opts)
            return named or Verdict(False, f"{label}: {v.message}", v.mistake)
    return Verdict(True)


def _compare_dict(kind, actual, expected, opts, show, path):
    if type(actual) is not dict:
        return Verdict(False, f"expected a dict with keys {sorted(expected)}, got {_describe(actual, show)}")
    missing = sorted(set(expected) - set(actual))
    if missing:
        return Verdict(False, f"missing keys {missing}")
    for key in expected:
        v = _compare(kind, actual[key], expected[key], {**opts, "mistakes": None}, show, "")
        if not v.ok:
            named = _with_mistakes(None, actual, expected, kind, opts)
            return named or Verdict(False, f"{key!r}: {v.message}", v.mistake)
    return Verdict(True)


def _compare_scalar(kind, actual, expected, opts, show, where):
    if type(actual) is np.ndarray and actual.ndim > 0:
        return Verdict(
            False,
            f"expected a single number{where}, got an array of shape {actual.shape}. "
            "Return a number, e.g. with float(...) or .item()"
            + (" (np.dot of two column vectors gives a (1, 1) array)" if actual.shape == (1, 1) else ""),
        )
    if not _scalar_like(actual):
        return Verdict(False, f"expected a number{where}, got {_describe(actual, show)}")
    a = float(actual)
    e = float(expected)
    if kind == "equal" and type(expected) is not float and type(expected) not in NUMPY_FLOAT_TYPES:
        if not float(a).is_integer():
            return Verdict(False, f"expected a whole number{where}{_got(a, show)}")
    if math.isnan(a) or math.isinf(a):
        if not (math.isnan(e) or math.isinf(e)):
            return Verdict(False, f"got {a}{where}: an overflow (e.g. np.exp of a large number) or 0/0?")
    if _values_ok(kind, np.float64(a), np.float64(e), opts):
        return Verdict(True)
    verdict = _with_mistakes(None, actual, expected, kind, opts)
    if verdict is not None:
        return verdict
    # The grader's feedback (show=False) names no numbers: expected values of hidden checks
    # would give the test away, and the student's own would echo their output.
    msg = f"expected {e:.6g}{where}{_got(a, show)}" if show else f"wrong value{where}"
    return Verdict(False, msg + _hint_for(kind, np.array([a]), np.array([e]), show))


def _got(a, show):
    return f", got {a:.6g}" if show else ""


def _compare_array(kind, actual, expected, opts, show, where):
    if type(actual) is not np.ndarray:
        if type(actual) in (list, tuple):
            return Verdict(
                False, f"expected a numpy array{where}, got a {type(actual).__name__}: wrap it in np.array(...)"
            )
        if _scalar_like(actual) and expected.size > 1:
            return Verdict(False, f"expected an array of shape {expected.shape}{where}, got a single number")
        if not _scalar_like(actual):
            return Verdict(False, f"expected a numpy array{where}, got {_describe(actual, show)}")
        actual = np.asarray(float(actual))
    if actual.dtype.kind not in "biuf":
        return Verdict(False, f"expected numbers{where}, got an array of {_dtype(actual, show)}")
    if actual.shape != expected.shape:
        return Verdict(False, _shape_message(actual.shape, expected.shape, where))
    if expected.dtype.kind == "f" and actual.dtype.kind in "iub" and kind == "close":
        if not np.all(expected == np.round(expected)):
            return Verdict(
                False,
                f"expected floating-point values{where}, got integers ({actual.dtype}): "
                "integer division or an int array?",
            )
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    bad = ~np.isfinite(a) & np.isfinite(e)
    if bad.any():
        return Verdict(
            False, f"contains nan or inf{where}: an overflow (e.g. np.exp of a large number), log(0) or 0/0?"
        )
    if _values_ok(kind, a, e, opts):
        return Verdict(True)
    verdict = _with_mistakes(None, actual, expected, kind, opts)
    if verdict is not None:
        return verdict
    wrong = ~_close_mask(kind, a, e, opts)
    n_wrong = int(wrong.sum())
    msg = f"{n_wrong} of {e.size} values are wrong{where}"
    if show:
        first = tuple(int(i) for i in np.argwhere(wrong)[0])
        msg += f"; first at index {first}: expected {e[first]:.6g}, got {a[first]:.6g}"
        msg += f"\n  expected: {_fmt(expected, True)}\n  got:      {_fmt(actual, True)}"
    return Verdict(False, msg + _hint_for(kind, a, e, show))


def _hint_for(kind, a, e, show):
    # The generic hints speak of signs, ½ and 1/m of real-valued formulas; counts and labels
    # (check_equal) that are off by a factor are not a forgotten 1/m.
    return _generic_hint(a, e, show) if kind == "close" else ""


def _close_mask(kind, a, e, opts):
    if kind == "equal":
        return a == e
    rtol, atol = float(opts.get("rtol", 1e-6)), float(opts.get("atol", 1e-8))
    both_inf = np.isinf(a) & np.isinf(e) & (np.sign(a) == np.sign(e))
    with np.errstate(invalid="ignore", over="ignore"):
        return both_inf | (np.abs(a - e) <= atol + rtol * np.abs(e))


def _values_ok(kind, a, e, opts):
    return bool(np.all(_close_mask(kind, np.asarray(a, np.float64), np.asarray(e, np.float64), opts)))


def _with_mistakes(default, actual, expected, kind, opts):
    """Name the common mistake that reproduces ``actual`` exactly, if any."""
    for description, wrong in (opts.get("mistakes") or {}).items():
        try:
            matches = _compare(kind, actual, wrong, {**opts, "mistakes": None}, False, "").ok
        except (TypeError, ValueError):
            matches = False
        if matches and not _compare(kind, wrong, expected, {**opts, "mistakes": None}, False, "").ok:
            return Verdict(False, f"It looks like you {description}.", description)
    return default


def _shape_message(got, want, where):
    msg = f"wrong shape{where}: expected {want}, got {got}"
    if len(got) == len(want) == 2 and got == want[::-1]:
        return msg + ". It looks transposed: a missing or extra .T, or n_in and n_out swapped?"
    if math.prod(got) == math.prod(want):
        if tuple(d for d in got if d != 1) == tuple(d for d in want if d != 1):
            return msg + ". An extra or missing axis of length 1: try .reshape(...), .ravel() or keepdims=True."
        return msg + ". The number of entries is right but the layout is not: check reshapes and which axis is which."
    if len(got) < len(want):
        return msg + ". You reduced over an axis that should stay: check the axis= of sum/mean."
    if len(got) == len(want) == 1 or (len(got) == len(want) and sum(g != w for g, w in zip(got, want)) == 1):
        return msg + ". Did you sum or average over the wrong axis, or index rows and columns the wrong way round?"
    return msg + ". Broadcasting may have stretched an array: compare the shapes of your intermediate results."


def _generic_hint(a, e, show):
    """Recognise a flipped sign, a constant factor, a constant offset or a transpose."""
    with np.errstate(all="ignore"):
        big = np.abs(e) > 1e-12
        if (
            a.shape == e.shape
            and a.ndim == 2
            and a.shape[0] == a.shape[1] > 1
            and np.allclose(a, e.T, rtol=1e-6, atol=1e-9)
        ):
            return ". Your result is the transpose of the expected one."
        if big.any() and np.allclose(a, -e, rtol=1e-6, atol=1e-9):
            return ". The sign is flipped: check a minus sign (gradient descent subtracts the gradient)."
        if big.sum() >= 1 and np.allclose(a[~big], 0, atol=1e-9):
            ratios = a[big] / e[big]
            r = float(np.median(ratios))
            if np.isfinite(r) and r != 0 and np.allclose(ratios, r, rtol=1e-6) and not np.isclose(r, 1):
                # One number always has *some* ratio to another: only a round one means something.
                if big.sum() > 1 or _round_ratio(r):
                    return _factor_hint(r, show)
        diff = a - e
        if diff.size > 1 and np.allclose(diff, diff.flat[0], rtol=1e-6, atol=1e-9) and abs(diff.flat[0]) > 1e-9:
            c = f" ({diff.flat[0]:.4g})" if show else ""
            return f". Every value is off by the same constant{c}: a missing or extra bias/intercept term?"
    return ""


def _round_ratio(r):
    k = abs(r) if abs(r) >= 1 else 1 / abs(r)
    return bool(np.isclose(k, round(k), rtol=1e-6))


def _factor_hint(r, show):
    factor = f" of {r:.4g}" if show else ""
    if np.isclose(r, 2) or np.isclose(r, 0.5):
        return f". Off by a factor{factor}: check the constant ½ or 2 (the 1/(2m) of MSE, or its derivative)."
    if np.isclose(r, -1):
        return ". The sign is flipped."
    k = r if abs(r) >= 1 else 1 / r
    if np.isclose(k, round(k)):
        if abs(r) > 1:
            return f". Off by a whole-number factor{factor}: a sum where a mean belongs (a missing 1/m)?"
        return (
            f". Too small by a whole-number factor{factor}: divided by m once too often, or a mean where a sum belongs?"
        )
    return (
        f". Proportional to the expected result but scaled by a factor{factor}: "
        "check constant factors such as the learning rate or 1/m."
    )


def _bound(kind, actual, bound, show):
    if type(actual) is np.ndarray and actual.ndim > 0:
        return Verdict(False, f"expected a single number, got an array of shape {actual.shape}")
    if not _scalar_like(actual):
        return Verdict(False, f"expected a number, got {_describe(actual, show)}")
    a, b = float(actual), float(bound)
    ok = a >= b if kind == "at_least" else a <= b
    if ok and not math.isnan(a):
        return Verdict(True)
    word = "at least" if kind == "at_least" else "at most"
    got = f", got {a:.4g}" if show else ""
    return Verdict(False, f"should be {word} {b:.4g}{got}")


def _accuracy(predicted, labels, min_accuracy, show):
    labels = np.asarray(labels).ravel()
    if type(predicted) is not np.ndarray:
        return Verdict(False, f"expected an array of predicted labels, got {_describe(predicted, show)}")
    if predicted.dtype.kind not in "biuf":
        return Verdict(False, f"expected numeric labels, got an array of {_dtype(predicted, show)}")
    if predicted.ndim == 2 and predicted.shape[1] > 1:
        if predicted.shape[0] == 1 and predicted.size == labels.size:
            return Verdict(False, "expected one label per example, got a (1, m) row: flatten it with .ravel()")
        return Verdict(False, "expected one label per example, got a 2-D array: take argmax over axis=1")
    if predicted.size != labels.size:
        return Verdict(
            False, f"expected {labels.size} predictions (one per example), got an array of shape {predicted.shape}"
        )
    acc = float(np.mean(predicted.ravel() == labels))
    if acc >= float(min_accuracy):
        return Verdict(True)
    got = f"{acc:.1%}" if show else f"{math.floor(acc * 20) * 5}%-{math.floor(acc * 20) * 5 + 5}%"
    return Verdict(False, f"accuracy {got} is below the target {float(min_accuracy):.0%}")


# ----- the checks used in notebooks --------------------------------------
# While the grader's reference run (the instructor's solution) executes a
# check, this holds (cell, index, hidden) and every check reports what it
# compares; see grading/verdict/notebook.py. Student sessions never set it.
_reference_context = None


def _run(kind, name, actual, expected, options):
    __tracebackhide__ = True  # IPython and pytest hide this frame: the message says it all
    expected = np.asarray(expected) if kind == "accuracy" else _as_expected(expected)
    options = {k: v for k, v in options.items() if v is not None}
    if "mistakes" in options:
        options["mistakes"] = {str(k): _as_expected(v) for k, v in options["mistakes"].items()}
    if _reference_context is not None:
        from ._wire import reference

        reference(*_reference_context[:2], kind, name, actual, expected, options, _reference_context[2])
    else:
        _own_work_warnings()
    verdict = compare(kind, actual, expected, show_values=True, **options)
    if not verdict.ok:
        hint = options.get("hint")
        raise CheckFailed(f"✘ {name}: {verdict.message}" + (f"\n  Hint: {hint}" if hint else ""))
    print(f"✔ {name}")


def _own_work_warnings():
    """Say, before grading does, when the tested function hands its work to course_lib or a helper."""
    import sys

    from .ownwork import warn_for_test_cell

    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back  # up to the test cell that called check_*
    if frame is None:
        return
    try:
        warn_for_test_cell(frame)
    except Exception:  # noqa: BLE001 - a warning must never break a check
        pass


def check_close(name, actual, expected, *, rtol=1e-6, atol=1e-8, mistakes=None, hint=None, labels=None):
    """Pass if ``actual`` has the type and shape of ``expected`` and equal values
    within |a − e| ≤ atol + rtol·|e|. ``mistakes`` maps a description of a common
    mistake ("forgot the bias b") to the wrong result that mistake produces, so
    the message can name it. ``labels`` names the parts of a tuple result.
    """
    __tracebackhide__ = True
    _run("close", name, actual, expected, dict(rtol=rtol, atol=atol, mistakes=mistakes, hint=hint, labels=labels))


def check_equal(name, actual, expected, *, mistakes=None, hint=None, labels=None):
    """Pass if ``actual`` equals ``expected`` exactly (integers, labels, shapes, text)."""
    __tracebackhide__ = True
    _run("equal", name, actual, expected, dict(mistakes=mistakes, hint=hint, labels=labels))


def check_accuracy(name, predicted, labels, *, min_accuracy, hint=None):
    """Pass if the fraction of ``predicted`` labels equal to ``labels`` is ≥ min_accuracy."""
    __tracebackhide__ = True
    _run("accuracy", name, predicted, labels, dict(min_accuracy=min_accuracy, hint=hint))


def check_at_least(name, actual, bound, *, hint=None):
    """Pass if the number ``actual`` ≥ bound."""
    __tracebackhide__ = True
    _run("at_least", name, actual, float(bound), dict(hint=hint))


def check_at_most(name, actual, bound, *, hint=None):
    """Pass if the number ``actual`` ≤ bound."""
    __tracebackhide__ = True
    _run("at_most", name, actual, float(bound), dict(hint=hint))


CHECKS = {
    "check_close": "close",
    "check_equal": "equal",
    "check_accuracy": "accuracy",
    "check_at_least": "at_least",
    "check_at_most": "at_most",
}


def reference_check(cell, index, hidden, check, *args, **kwargs):
    """Run one check of the instructor's solution and report it (grader use only)."""
    global _reference_context
    _reference_context = (cell, index, hidden)
    try:
        check(*args, **kwargs)
    finally:
        _reference_context = None


def _as_expected(e):
    """Expected values may be written as nested lists in a notebook; arrays are what we compare."""
    if type(e) is list and e and all(type(v) in (list, int, float) for v in e):
        return np.asarray(e, dtype=np.float64)
    if type(e) is list:  # e.g. a network's parameters, [(W1, b1), (W2, b2)]
        return [_as_expected(v) for v in e]
    if type(e) is tuple:
        return tuple(_as_expected(v) for v in e)
    if type(e) is dict:
        return {k: _as_expected(v) for k, v in e.items()}
    return e


def no_overflow(f, *args, **kwargs):
    """Call ``f(*args, **kwargs)`` with numpy overflow and 0/0 turned into errors.

    A tool for exploring your own code: ``no_overflow(sigmoid, z)`` raises
    FloatingPointError where a naive ``np.exp(-z)`` would only print a
    RuntimeWarning (easy to miss, and shown once per session), even when the
    numbers happen to come out right.

    Graded checks never use it: the function under test can switch numpy's
    error state back off (``np.errstate(all="ignore")``), so a verdict that
    relied on it could be defeated. Stability tests judge the returned values
    instead, on inputs where unstable formulas give inf, nan or 0 instead of
    a tiny number, with a relative tolerance and no absolute one
    (``check_close(..., rtol=1e-6, atol=0.0)``).
    """
    __tracebackhide__ = True
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        return f(*args, **kwargs)
