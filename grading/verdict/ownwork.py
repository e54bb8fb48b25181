"""Own work only, enforced by the trusted grader.

Each exercise's solution cell declares (source metadata, trusted) what it must not
delegate to: ``{"course": {"not_delegate": [dotted names]}}``. The grader then

1. reads the submitted cells in its own process (``course_lib.ownwork``, an AST
   analysis: no student code runs here) and scores 0 every test cell of an exercise
   that reaches a declared target, a ``reference_*``/``library_*`` helper, or a tool
   that hides what it calls;
2. arms runtime tripwires around the test cells' probes (``course_lib._wire.arm``):
   a forbidden course_lib function called by the student's code during an exercise's
   probes scores that exercise 0 too. A kernel can skip this, so it only ever takes
   points away.

Feedback is one sentence from a fixed vocabulary (``course_lib.ownwork.sentence``):
it names the declared target, never student text.
"""

import ast

from course_lib._wire import OWNWORK_MIME
from course_lib.ownwork import Finding, analyze_cells, sentence

from .notebook import _grade_id_of, _source_text

KEY = "course"
FIELD = "not_delegate"
ARM_IMPORT = "from course_lib._wire import arm as __course_arm__, disarm as __course_disarm__"


def declared(cell_metadata):
    """The not_delegate list of a solution cell, or None when it declares nothing."""
    block = cell_metadata.get(KEY) if isinstance(cell_metadata, dict) else None
    targets = block.get(FIELD) if isinstance(block, dict) else None
    if isinstance(targets, list) and all(isinstance(t, str) for t in targets):
        return list(targets)
    return None


def defined_names(source):
    """Top-level functions and classes of a (trusted) solution cell."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return []
    return [n.name for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


def exercises(spec):
    """{solution grade_id: (targets, names, [test grade_ids])}; a test cell belongs to the
    nearest solution code cell above it (w2_sigmoid_stable_tests -> w2_sigmoid)."""
    out, current = {}, None
    for c in spec.cells:
        if c.role == "solution" and c.cell_type == "code":
            targets = declared(c.metadata)
            current = c.grade_id if targets is not None else None
            if current:
                out[current] = (targets, defined_names(c.source), [])
        elif c.role == "tests" and current:
            out[current][2].append(c.grade_id)
    return out


def tripwire_lines(spec):
    """{test grade_id: (code to put before, code to put after)} for the probe run."""
    out = {}
    for targets, names, tests in exercises(spec).values():
        lib = [t for t in targets if t.startswith("course_lib.")]
        if not lib:
            continue
        for gid in tests:
            before = f"{ARM_IMPORT}\n__course_arm__({gid!r}, {targets!r}, {names!r})\n"
            out[gid] = (before, "\n__course_disarm__()\n")
    return out


def static_findings(spec, merged_nb):
    """{test grade_id: [Finding]} from the submitted cells, decided in the grader's process."""
    trusted = [c.source for c in spec.cells if c.cell_type == "code" and c.role == "readonly"]
    roles = {c.grade_id: c.role for c in spec.cells if c.grade_id}
    submitted = {}  # solution grade_id -> source
    student = []  # (grade_id or None, source) of every cell the student controls
    for cell in merged_nb.cells:
        if cell.get("cell_type") != "code":
            continue
        gid = _grade_id_of(cell)
        if gid is not None and roles.get(gid) in ("tests", "readonly"):
            continue  # trusted copies from the spec
        src = _source_text(cell)
        if gid is not None and roles.get(gid) == "solution":
            submitted[gid] = src
        student.append((gid, src))
    out = {}
    declared_ = exercises(spec)
    all_names = {n for _t, names, _tests in declared_.values() for n in names}
    for gid, (targets, names, tests) in declared_.items():
        others = [src for g, src in student if g != gid]
        findings = analyze_cells(submitted.get(gid, ""), targets, trusted, others, names, all_names)
        for test in tests:
            out[test] = findings
    return out


def runtime_findings(spec, executed_nb):
    """{test grade_id: [Finding]} from tripwire reports in the test cells' own outputs."""
    targets_of = {t: targets for targets, _names, tests in exercises(spec).values() for t in tests}
    out = {}
    for cell in executed_nb.cells:
        gid = _grade_id_of(cell)
        if gid not in targets_of:
            continue
        for o in cell.get("outputs", []):
            data = o.get("data") if isinstance(o.get("data"), dict) else {}
            payload = data.get(OWNWORK_MIME)
            if not isinstance(payload, dict) or payload.get("cell") != gid:
                continue
            i = payload.get("tripped")
            if type(i) is int and 0 <= i < len(targets_of[gid]):
                f = Finding("delegates", targets_of[gid][i])
                out.setdefault(gid, [])
                if f not in out[gid]:
                    out[gid].append(f)
    return out


def forfeit(verdicts, *findings_maps):
    """Score 0 every verdict with a finding, saying why first."""
    for v in verdicts:
        found = []
        for m in findings_maps:
            found += [f for f in m.get(v.grade_id, []) if f not in found]
        if found:
            v.passed = False
            v.problems[:0] = [sentence(f) for f in found]
