"""Demo cells that use your functions only once they work.

A demo that needs one of your exercises first checks it on the small example
from the exercise's visible check::

    if demo.works(predict, X_ex, W_ex, b_ex, expect=y_ex, exercise="Exercise 1"):
        ...the demo...

``works`` calls your function on copies of the arguments. It returns True if
the function returns the expected values and leaves its inputs alone;
otherwise it prints one friendly line and the demo is skipped:

    (This demo needs Exercise 1, `predict`: it will appear here once your
    function passes its checks. Right now it is not implemented yet.)

The notebook holds no reference version of any exercise, so a demo never runs
on someone else's answer, and a function that is wrong (or edits its input in
place) can no longer quietly spoil the demos that come after it. ``works``
never raises because of your function: Run All always reaches the end.
"""

import copy
import sys

import numpy as np

from .checks import _as_expected, compare

_MAX_NAME = 60
_DATA_TYPES = (bool, int, float, complex, str, bytes, type(None))


def works(fn, *args, expect, exercise, rtol=1e-6, atol=1e-8):
    """True if ``fn(*args)`` gives ``expect`` and leaves ``args`` unchanged.

    fn: your exercise function. args: a small example (the visible check's).
    expect: the expected result (array, number, or a tuple/list/dict of them),
    compared within |a − e| ≤ atol + rtol·|e| after a type and shape check.
    exercise: what the text calls the exercise, e.g. "Exercise 3"; the message
    adds the function's name: "Exercise 3, `mse_gradient`".
    Otherwise prints why the demo is skipped and returns False.
    """
    expect = _as_expected(expect)
    originals = copy.deepcopy(args)  # the author's example: copying it is not the student's business
    reason = _try(fn, copy.deepcopy(args), originals, expect, rtol, atol)
    if reason is None:
        return True
    print(
        f"(This demo needs {_label(exercise, fn)}: it will appear here once your function passes its checks. "
        f"Right now it {reason}.)"
    )
    return False


def needs(*names):
    """True if every named variable of the notebook is defined and not None.

    For a cell that uses results of earlier demos (which are skipped while
    their exercises are unfinished): set the variable to None before the
    earlier demo, then write ``if demo.needs("W_fit", "losses"):``.
    """
    namespace = sys._getframe(1).f_globals
    missing = [n for n in names if namespace.get(n) is None]
    if not missing:
        return True
    listed = ", ".join(f"`{n}`" for n in missing)
    print(
        f"(This demo uses {listed} from a demo above, which is still waiting for your exercises: "
        "it will appear here once they pass their checks.)"
    )
    return False


def _try(fn, args, originals, expect, rtol, atol):
    """None if fn works on args, else a few words saying why not."""
    try:
        result = fn(*args)
    except NotImplementedError:
        return "is not implemented yet"
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001 - a student's function may raise anything, even SystemExit
        return "raises an error"
    try:
        if not _unchanged(args, originals):
            return "changes its input (work on a copy, e.g. X = X - mu instead of X -= mu)"
        if not compare("close", result, expect, show_values=False, rtol=rtol, atol=atol).ok:
            return "gives different values than its check expects"
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001 - whatever the result does, the demo only skips
        return "gives a result the demo cannot use"
    return None


def _unchanged(now, before):
    """Whether the (possibly edited) arguments still equal the author's originals.

    Compares by exact type and plain numpy data, never through the objects'
    own ``==``: the function may have swapped in an object that lies.
    """
    if type(now) is not type(before):
        return False
    if type(now) is np.ndarray:
        return (
            now.shape == before.shape
            and now.dtype == before.dtype
            and bool(np.array_equal(now, before, equal_nan=now.dtype.kind in "fc"))
        )
    if type(now) in (list, tuple):
        return len(now) == len(before) and all(_unchanged(a, b) for a, b in zip(now, before))
    if type(now) is dict:
        same_keys = all(type(k) in _DATA_TYPES for k in now) and list(now) == list(before)
        return same_keys and all(_unchanged(now[k], before[k]) for k in before)
    if type(now) in _DATA_TYPES or isinstance(now, np.generic):  # an exact type of the author's, so == is honest
        return bool(now == before or (now != now and before != before))  # nan equals nan here
    return True  # a function or other object argument: nothing the demo compares


def _label(exercise, fn):
    """ "Exercise 3, `mse_gradient`" (the name only if it is a plain identifier)."""
    try:
        name = getattr(fn, "__name__", None)
    except Exception:  # noqa: BLE001 - a hostile object's attribute may raise
        name = None
    if type(name) is str and name.isidentifier() and len(name) <= _MAX_NAME:
        return f"{exercise}, `{name}`"
    return str(exercise)
