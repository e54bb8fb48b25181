"""Trusted verdicts: compare what the student's kernel reported with the reference.

This runs in the grader's own process. The student's kernel contributed only
probe reports (``course_lib._wire``): plain data, decoded strictly here. The
expected values come from the reference run of the instructor's solution.
A test cell earns its points when every one of its checks was reported
exactly once and passes ``course_lib.checks.compare``, and the cell raised no
error and wrote nothing to stderr (nbgrader's own rule for test cells).

Messages are built here, from trusted data only: they name the check and
the kind of mistake, never echo text the student's code produced, and show
no values of hidden checks, so feedback cannot leak hidden tests.
"""

import builtins
import json
import re
from dataclasses import dataclass, field

from course_lib._wire import PROBE_MIME, REFERENCE_MIME, WireError, decode
from course_lib.checks import compare

from .notebook import NotebookError

# Exception and warning names the grader may quote: Python's own, and the checks'. Any other
# name was chosen by student code (it can be built at run time from the hidden tests or a
# classmate's code), so it becomes "an exception" / "text": a fixed vocabulary, never an echo.
_KNOWN_EXCEPTIONS = frozenset(
    name for name, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)
) | {"CheckFailed"}
_KNOWN_WARNINGS = frozenset(n for n in _KNOWN_EXCEPTIONS if n.endswith("Warning"))
_WARNING = re.compile(r"\b([A-Z][A-Za-z]{0,40}Warning)\b")


@dataclass
class CheckResult:
    name: str
    hidden: bool
    passed: bool
    message: str = ""


@dataclass
class CellVerdict:
    grade_id: str
    max_points: float
    passed: bool
    checks: list = field(default_factory=list)
    problems: list = field(default_factory=list)  # cell-level reasons (errors, stderr, limits)

    @property
    def points(self):
        return self.max_points if self.passed else 0.0

    def messages(self):
        """Cell problems first, then each failed check (unreached ones are implied by the problem)."""
        out = list(self.problems)
        implied = bool(self.problems)
        out += [
            f"{c.name}: {c.message}"
            for c in self.checks
            if not c.passed and not (implied and c.message.startswith("not reached"))
        ]
        return out


# ----- reference ----------------------------------------------------------
def collect_reference(executed_nb, spec):
    """Reference records {grade_id: [record, ...]} from a run of the solution.

    Raises NotebookError if the solution does not pass its own checks or a
    check did not report, because grading against that would be wrong.
    """
    records = {c.grade_id: {} for c in spec.test_cells}
    by_id = {c.grade_id: c for c in spec.test_cells}
    for cell in executed_nb.cells:
        gid = (cell.get("metadata", {}).get("nbgrader") or {}).get("grade_id")
        if gid not in by_id:
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors:
            e = errors[0]
            raise NotebookError(f"the solution fails its own test cell {gid}: {e.get('ename')}: {e.get('evalue')}")
        for out in cell.get("outputs", []):
            payload = (out.get("data") or {}).get(REFERENCE_MIME)
            if payload is not None:
                payload = _plain(payload)
                records[gid][payload["index"]] = payload
    for gid, recs in records.items():
        want = len(by_id[gid].checks)
        if sorted(recs) != list(range(want)):
            raise NotebookError(f"{gid}: the reference run reported checks {sorted(recs)}, expected 0..{want - 1}")
    return {gid: [recs[i] for i in range(len(recs))] for gid, recs in records.items()}


def _decode_record(rec):
    return {
        "kind": rec["kind"],
        "name": rec["name"],
        "hidden": rec["hidden"],
        "expected": decode(rec["expected"]),
        "options": {k: decode(v) for k, v in rec["options"].items()},
        "mistakes": {k: decode(v) for k, v in rec["mistakes"].items()},
    }


def decode_reference(reference):
    """Decode JSON reference records once per assignment (they are reused per student)."""
    return {gid: [_decode_record(r) for r in recs] for gid, recs in reference.items()}


# ----- verdicts -----------------------------------------------------------
def judge(spec, run, reference):
    """CellVerdicts for every test cell of ``spec``, given a RunResult and decoded reference."""
    executed = {}
    for i, cell in enumerate(run.nb.cells):
        gid = (cell.get("metadata", {}).get("nbgrader") or {}).get("grade_id")
        if gid and gid not in executed:
            executed[gid] = (i, cell)
    verdicts = []
    for spec_cell in spec.test_cells:
        gid = spec_cell.grade_id
        refs = reference[gid]
        position, cell = executed.get(gid, (None, None))
        v = CellVerdict(gid, spec_cell.points, False)
        verdicts.append(v)
        if cell is None:
            v.problems.append("this test cell was not run")
            v.checks = [CheckResult(r["name"], r["hidden"], False, "not run") for r in refs]
            continue
        not_reached = _not_reached_reason(cell, position, run)
        probes, malformed = _probes(cell, gid)
        for index, ref in enumerate(refs):
            reported = probes.get(index)
            if reported is None:
                v.checks.append(CheckResult(ref["name"], ref["hidden"], False, not_reached))
            elif len(reported) > 1:
                v.checks.append(CheckResult(ref["name"], ref["hidden"], False, "reported more than once"))
            else:
                v.checks.append(_check(ref, reported[0]))
        if malformed:
            v.problems.append(f"{malformed} malformed check report(s) were ignored")
        v.problems += _cell_problems(cell)
        v.passed = all(c.passed for c in v.checks) and not v.problems
    return verdicts


def _check(ref, raw_value):
    try:
        actual = decode(raw_value)
    except (WireError, ValueError, TypeError, OverflowError):
        return CheckResult(ref["name"], ref["hidden"], False, "the reported value was malformed")
    options = dict(ref["options"])
    hint = options.pop("hint", None)
    verdict = compare(ref["kind"], actual, ref["expected"], show_values=False, mistakes=ref["mistakes"], **options)
    message = verdict.message
    if not verdict.ok and hint:
        message += f" Hint: {hint}"
    return CheckResult(ref["name"], ref["hidden"], verdict.ok, message)


def _probes(cell, gid):
    probes, malformed = {}, 0
    for out in cell.get("outputs", []):
        payload = (out.get("data") or {}).get(PROBE_MIME) if isinstance(out.get("data"), dict) else None
        if payload is None:
            continue
        payload = _plain(payload)
        if not isinstance(payload, dict) or payload.get("cell") != gid or type(payload.get("index")) is not int:
            malformed += 1
            continue
        probes.setdefault(payload["index"], []).append(payload.get("value"))
    return probes, malformed


def _plain(payload):
    """Plain JSON types only (outputs arrive as NotebookNode, a dict subclass)."""
    try:
        return json.loads(json.dumps(payload))
    except (TypeError, ValueError):
        return None


def _cell_problems(cell):
    problems = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            ename = exception_name(out)
            problems.append(f"the cell raised {ename}" + _error_hint(ename))
            break
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            text = out.get("text") if isinstance(out.get("text"), str) else ""
            known = [w for w in _WARNING.findall(text) if w in _KNOWN_WARNINGS]
            what = f"a {known[0]}" if known else "text"
            problems.append(f"the cell wrote {what} to stderr; test cells must run without warnings")
            break
    return problems


def exception_name(error_output):
    """The error's class name if it is one of Python's own (or CheckFailed), else "an exception"."""
    ename = error_output.get("ename")
    return ename if type(ename) is str and ename in _KNOWN_EXCEPTIONS else "an exception"


NOT_DONE = "the exercise is not done yet"  # report.py counts these apart from real failures


def _error_hint(ename):
    return {
        "NotImplementedError": f" ({NOT_DONE})",
        "NameError": " (a name used by the tests is not defined: did you run and keep the solution cell?)",
        "FloatingPointError": " (a numpy overflow or 0/0, e.g. np.exp of a large number: see the stability hint)",
        "CheckFailed": "",
    }.get(ename, "")


def _not_reached_reason(cell, position, run):
    if run.stopped_at is not None and position is not None and position >= run.stopped_at:
        return f"not reached: {run.detail}" if position > run.stopped_at else f"stopped: {run.detail}"
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            ename = exception_name(out)
            return f"not reached: the cell stopped with {ename}{_error_hint(ename)}"
    return "no result was reported (the test was skipped or its report removed)"
