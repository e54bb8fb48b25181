"""The wire format between a grading kernel and the trusted grader.

At grading time the test cells no longer contain expected values: each
``check_*(name, actual, expected, ...)`` is rewritten into
``probe(cell, index, actual)``, which only *reports* the student's value.
The grader decodes the report in its own process and decides the verdict
there (see grading/verdict/judge.py), so nothing the kernel does can change it.

``encode`` runs in the (untrusted) kernel; ``decode`` runs in the grader and
trusts nothing: it accepts only plain data of bounded size, so a hostile
object cannot survive the trip and a lying encoder can only claim a value.
"""

import base64

import numpy as np

PROBE_MIME = "application/vnd.nn-course.probe+json"
REFERENCE_MIME = "application/vnd.nn-course.reference+json"

MAX_ELEMENTS = 2_000_000  # per value; a week's largest checked array is far smaller
MAX_ITEMS = 1000  # entries of a list/tuple/dict
MAX_DEPTH = 6
MAX_STR = 10_000
_DTYPES = {"|b1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "<f2", "<f4", "<f8"}

# Exact numpy scalar types: a subclass (which could override __eq__) is not a number.
NUMPY_INT_TYPES = frozenset(
    t
    for t in set(np.sctypeDict.values())
    if isinstance(t, type) and issubclass(t, np.integer) and not issubclass(t, np.timedelta64)
)
NUMPY_FLOAT_TYPES = frozenset(
    t for t in set(np.sctypeDict.values()) if isinstance(t, type) and issubclass(t, np.floating)
)


class WireError(ValueError):
    """A report that is not well-formed plain data."""


# Why a value could not be sent, from a closed list the grader can quote (a lying kernel can
# only pick another word from it).
OPAQUE_KINDS = ("ndarray", "list", "tuple", "dict", "deep")


class Opaque:
    """Stands in for a value of a type the checks do not accept.

    It carries nothing from the kernel: a type's name is chosen by student code
    (even built at run time from the hidden tests), so it must never reach a message.
    """

    __slots__ = ("kind",)

    def __init__(self, kind=None):
        self.kind = kind if kind in OPAQUE_KINDS else None

    def __repr__(self):
        return f"<opaque {self.kind or 'value'}>"


def type_name(x):
    t = type(x)
    mod = getattr(t, "__module__", "") or ""
    qual = getattr(t, "__qualname__", t.__name__)
    return qual if mod in ("builtins", "") else f"{mod}.{qual}"


def encode(x, _depth=0):
    """Turn a value into JSON-able plain data (runs inside the kernel)."""
    t = type(x)
    if _depth > MAX_DEPTH:
        return {"t": "other", "kind": "deep"}
    if x is None:
        return {"t": "none"}
    if t is bool or t is np.bool_:
        return {"t": "bool", "v": bool(x)}
    if t is int or t in NUMPY_INT_TYPES:
        return {"t": "int", "v": str(int(x))}
    if t is float or t in NUMPY_FLOAT_TYPES:
        return {"t": "float", "v": float(x).hex()}
    if t is str:
        return {"t": "str", "v": x[:MAX_STR]}
    if t is np.ndarray:
        if x.dtype.kind not in "biuf" or x.size > MAX_ELEMENTS:
            return {"t": "other", "kind": "ndarray"}
        a = np.asarray(x, dtype=x.dtype.newbyteorder("<"), order="C")  # keeps 0-d arrays 0-d
        return {
            "t": "nd",
            "dtype": a.dtype.str,
            "shape": list(a.shape),
            "b64": base64.b64encode(a.tobytes()).decode("ascii"),
        }
    if t in (list, tuple):
        if len(x) > MAX_ITEMS:
            return {"t": "other", "kind": t.__name__}
        return {"t": t.__name__, "items": [encode(v, _depth + 1) for v in x]}
    if t is dict:
        if len(x) > MAX_ITEMS or not all(type(k) is str for k in x):
            return {"t": "other", "kind": "dict"}
        return {"t": "dict", "items": {k: encode(v, _depth + 1) for k, v in x.items()}}
    return {"t": "other"}


def decode(obj, _depth=0):
    """Rebuild a value from ``encode``'s output, rejecting anything malformed."""
    if _depth > MAX_DEPTH or type(obj) is not dict:
        raise WireError("malformed value")
    t = obj.get("t")
    if t == "none":
        return None
    if t == "bool":
        if type(obj.get("v")) is not bool:
            raise WireError("malformed bool")
        return obj["v"]
    if t == "int":
        v = obj.get("v")
        if type(v) is not str or len(v) > 100:
            raise WireError("malformed int")
        return int(v)
    if t == "float":
        v = obj.get("v")
        if type(v) is not str or len(v) > 40:
            raise WireError("malformed float")
        return float.fromhex(v)
    if t == "str":
        v = obj.get("v")
        if type(v) is not str or len(v) > MAX_STR:
            raise WireError("malformed str")
        return v
    if t == "nd":
        return _decode_array(obj)
    if t in ("list", "tuple"):
        items = obj.get("items")
        if type(items) is not list or len(items) > MAX_ITEMS:
            raise WireError("malformed sequence")
        out = [decode(v, _depth + 1) for v in items]
        return out if t == "list" else tuple(out)
    if t == "dict":
        items = obj.get("items")
        if type(items) is not dict or len(items) > MAX_ITEMS:
            raise WireError("malformed dict")
        return {str(k)[:200]: decode(v, _depth + 1) for k, v in items.items()}
    if t == "other":
        kind = obj.get("kind")
        return Opaque(kind if kind in OPAQUE_KINDS else None)  # anything else it claims is ignored
    raise WireError(f"unknown value tag {str(t)[:20]!r}")


def _decode_array(obj):
    dtype, shape, b64 = obj.get("dtype"), obj.get("shape"), obj.get("b64")
    if dtype not in _DTYPES:
        raise WireError("array dtype not allowed")
    if type(shape) is not list or len(shape) > 8:
        raise WireError("malformed array shape")
    if not all(type(d) is int and 0 <= d <= MAX_ELEMENTS for d in shape):
        raise WireError("malformed array shape")
    size = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if size > MAX_ELEMENTS or type(b64) is not str:
        raise WireError("array too large")
    try:
        raw = base64.b64decode(b64.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise WireError("array data is not base64") from None
    dt = np.dtype(dtype)
    if len(raw) != size * dt.itemsize:
        raise WireError("array data does not match its shape")
    return np.frombuffer(raw, dtype=dt).reshape(tuple(shape)).astype(dt.newbyteorder("="))


def _publish(mime, payload):
    from IPython.display import publish_display_data

    publish_display_data({mime: payload})


def probe(cell, index, actual):
    """Report the value of check number ``index`` of test cell ``cell`` (grading kernel)."""
    _publish(PROBE_MIME, {"cell": str(cell), "index": int(index), "value": encode(actual)})


def reference(cell, index, kind, name, actual, expected, options, hidden):
    """Report a check of the instructor's solution run: what the grader compares against."""
    opts = dict(options)
    mistakes = opts.pop("mistakes", None) or {}
    payload = {
        "cell": str(cell),
        "index": int(index),
        "kind": kind,
        "name": name,
        "hidden": bool(hidden),
        "actual": encode(actual),
        "expected": encode(expected),
        "options": {k: encode(v) for k, v in opts.items()},
        "mistakes": {str(k): encode(v) for k, v in mistakes.items()},
    }
    _publish(REFERENCE_MIME, payload)


# ----- own work: runtime tripwires (grading kernel) ------------------------------
# While a test cell's probes run, the exercise's forbidden course_lib functions are
# wrapped; a call made while the exercise's own function is running (directly or through
# any helper) is reported once per target, by its index in the trusted declaration (the
# grader maps it back to a name). Calls the test cell or the notebook's demo code make on
# their own do not count. This can only take points away: a kernel that skips it is
# still checked statically.
OWNWORK_MIME = "application/vnd.nn-course.ownwork+json"
_ARMED = []  # (namespace dict, key, original)


def arm(cell, targets, names=()):
    """Wrap the course_lib ``targets`` until ``disarm``; ``names`` are the exercise's own names."""
    import importlib
    import sys
    import types

    disarm()
    user_ns = sys._getframe(1).f_globals
    codes = {user_ns[n].__code__ for n in names if isinstance(user_ns.get(n), types.FunctionType)}
    wrappers, reported = {}, set()

    def report(i):
        if i not in reported:
            reported.add(i)
            _publish(OWNWORK_MIME, {"cell": str(cell), "tripped": i})

    def wrap(i, fn):
        def tripwire(*args, **kwargs):
            if _inside(sys._getframe(1), codes):
                report(i)
            return fn(*args, **kwargs)

        return tripwire

    for i, target in enumerate(targets):
        module, _, attr = target.rpartition(".")
        if not module.startswith("course_lib"):
            continue
        try:
            fn = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue
        if isinstance(fn, types.FunctionType) and id(fn) not in wrappers:  # classes stay as they are
            wrappers[id(fn)] = (fn, wrap(i, fn), i)
    spaces = [vars(m) for name, m in list(sys.modules.items()) if name.split(".")[0] == "course_lib"]
    for ns in spaces + [user_ns]:
        for key, value in list(ns.items()):
            if id(value) in wrappers and wrappers[id(value)][0] is value:
                _ARMED.append((ns, key, value))
                ns[key] = wrappers[id(value)][1]
    for name in names:  # the exercise's own name bound to course_lib's function
        value = user_ns.get(name)
        for fn, wrapper, i in wrappers.values():
            if value is fn or value is wrapper:
                report(i)


def _inside(frame, codes):
    """True when one of the exercise's functions (code objects ``codes``) is on the stack."""
    while frame is not None:
        if frame.f_code in codes:
            return True
        frame = frame.f_back
    return False


def disarm():
    """Put every wrapped function back."""
    while _ARMED:
        ns, key, original = _ARMED.pop()
        ns[key] = original
