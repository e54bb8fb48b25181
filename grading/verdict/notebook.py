"""Trusted notebook handling: what an assignment contains, and how it is run.

An assignment notebook (the instructor version in source/) is read into a
``NotebookSpec``: its cells in order, with nbgrader's roles (solution,
tests, manually graded answer, read-only) and, for every test cell, its
checks. The grader never trusts the submitted notebook for any of this.

Test cells follow a small, checked convention (``lint``): every top-level
statement is an import, an assignment, or a call
``check_*("name", actual, expected, **options)`` from ``course_lib.checks``.
That lets the grader rewrite them (``rewrite``):

* probe mode (student runs): ``check_close("n", f(X), [..])`` becomes
  ``__course_probe__("cell", i, f(X))``. The expected value never reaches the
  student's kernel; the kernel only reports ``f(X)`` and the verdict is made
  outside it (grading/verdict/judge.py).
* reference mode (the instructor's solution, trusted): each check also
  reports its expected value and options, which become the reference.
"""

import ast
import functools
import re
from dataclasses import dataclass, field

import nbformat

HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_END = "### END HIDDEN TESTS"
CHECK_KINDS = {
    "check_close": "close",
    "check_equal": "equal",
    "check_accuracy": "accuracy",
    "check_at_least": "at_least",
    "check_at_most": "at_most",
}
PROBE_IMPORT = "from course_lib._wire import probe as __course_probe__"
REF_IMPORT = "from course_lib.checks import reference_check as __course_ref__"
GRADE_ID = re.compile(r"^w\d+_[a-z0-9_]+$")


class NotebookError(ValueError):
    """The instructor notebook breaks a convention the grader relies on."""


@dataclass(frozen=True)
class Check:
    index: int  # position among the cell's checks (static order = run order)
    name: str
    kind: str
    hidden: bool
    lineno: int


@dataclass(frozen=True)
class CellSpec:
    position: int
    cell_type: str
    source: str
    metadata: dict
    grade_id: str | None = None
    role: str = "plain"  # plain | readonly | solution | tests | manual | task
    points: float = 0.0
    checks: tuple = ()

    @property
    def autograded(self):
        return self.role == "tests"


@dataclass
class NotebookSpec:
    name: str  # notebook file name without .ipynb
    cells: list
    nbformat_minor: int = 5
    metadata: dict = field(default_factory=dict)

    def by_grade_id(self):
        return {c.grade_id: c for c in self.cells if c.grade_id}

    @property
    def test_cells(self):
        return [c for c in self.cells if c.role == "tests"]

    @property
    def max_autograded(self):
        return sum(c.points for c in self.test_cells)

    @property
    def max_manual(self):
        return sum(c.points for c in self.cells if c.role in ("manual", "task"))


def cell_role(cell):
    """nbgrader's role of a cell, from its metadata."""
    nb = cell.get("metadata", {}).get("nbgrader") or {}
    if nb.get("task"):
        return "task"
    if nb.get("solution") and nb.get("grade"):
        return "manual" if cell.get("cell_type") == "markdown" else "autograded_answer"
    if nb.get("solution"):
        return "solution"
    if nb.get("grade"):
        return "tests"
    if nb.get("locked"):
        return "readonly"
    return "plain"


def read_spec(path_or_nb, name=None):
    """Parse an instructor notebook into a NotebookSpec, enforcing the conventions."""
    nb = path_or_nb if isinstance(path_or_nb, nbformat.NotebookNode) else nbformat.read(str(path_or_nb), 4)
    if name is None:
        name = re.sub(r"\.ipynb$", "", str(path_or_nb).rsplit("/", 1)[-1])
    cells = []
    seen = set()
    for i, cell in enumerate(nb.cells):
        meta = dict(cell.get("metadata", {}))
        nbmeta = meta.get("nbgrader") or {}
        role = cell_role(cell)
        grade_id = nbmeta.get("grade_id") if nbmeta else None
        if role == "autograded_answer":
            raise NotebookError(f"cell {grade_id}: autograded answer cells are not used; split solution and tests")
        if grade_id:
            if grade_id in seen:
                raise NotebookError(f"duplicate grade_id {grade_id!r}")
            seen.add(grade_id)
        checks = ()
        if role == "tests":
            checks = tuple(parse_checks(cell.source, grade_id))
        cells.append(
            CellSpec(
                position=i,
                cell_type=cell.cell_type,
                source=cell.source,
                metadata=meta,
                grade_id=grade_id,
                role=role,
                points=float(nbmeta.get("points", 0) or 0),
                checks=checks,
            )
        )
    return NotebookSpec(name=name, cells=cells, nbformat_minor=nb.nbformat_minor, metadata=dict(nb.metadata))


# ----- test cells ---------------------------------------------------------
def _hidden_lines(source):
    hidden, inside = set(), False
    for n, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith(HIDDEN_BEGIN):
            inside = True
        elif stripped.startswith(HIDDEN_END):
            inside = False
        elif inside:
            hidden.add(n)
    return hidden


def _check_call(stmt):
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        func = stmt.value.func
        if isinstance(func, ast.Name) and func.id in CHECK_KINDS:
            return stmt.value
    return None


def _names(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def parse_checks(source, grade_id="cell"):
    """The checks of a test cell, after verifying the test-cell convention."""
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise NotebookError(f"{grade_id}: test cell does not parse: {e}") from None
    hidden = _hidden_lines(source)
    checks, names = [], set()
    assigned, used_as_input, used_in_expected = set(), set(), set()
    for stmt in tree.body:
        call = _check_call(stmt)
        if call is None:
            if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.Pass)):
                continue
            if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for t in targets:
                    assigned |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
                if stmt.value is not None:
                    used_as_input |= _names(stmt.value)
                continue
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                continue  # a docstring-like string
            raise NotebookError(
                f"{grade_id}, line {stmt.lineno}: test cells may only contain imports, assignments "
                f"and check_*(...) calls at top level (found {type(stmt).__name__})"
            )
        fname = call.func.id
        if len(call.args) != 3 or any(isinstance(a, ast.Starred) for a in call.args):
            raise NotebookError(
                f"{grade_id}, line {stmt.lineno}: {fname} needs exactly 3 positional "
                'arguments: ("name", actual, expected)'
            )
        if any(k.arg is None for k in call.keywords):
            raise NotebookError(f"{grade_id}, line {stmt.lineno}: no **kwargs in checks")
        name_node = call.args[0]
        if not (isinstance(name_node, ast.Constant) and isinstance(name_node.value, str)):
            raise NotebookError(f"{grade_id}, line {stmt.lineno}: the check name must be a string literal")
        if name_node.value in names:
            raise NotebookError(f"{grade_id}: two checks are named {name_node.value!r}")
        names.add(name_node.value)
        used_as_input |= _names(call.args[1])
        used_in_expected |= _names(call.args[2])
        for k in call.keywords:
            used_in_expected |= _names(k.value)
        checks.append(Check(len(checks), name_node.value, CHECK_KINDS[fname], stmt.lineno in hidden, stmt.lineno))
    leaked = sorted((assigned & used_in_expected) - used_as_input)
    if leaked:
        raise NotebookError(
            f"{grade_id}: {', '.join(leaked)} {'is' if len(leaked) == 1 else 'are'} assigned in the test "
            "cell but only used as expected values; write expected values inline in the check call, "
            "so they never run in the student's kernel"
        )
    if not checks:
        raise NotebookError(f"{grade_id}: a test cell needs at least one check_*(...) call")
    return checks


@functools.lru_cache(maxsize=1024)
def rewrite(source, grade_id, mode):
    """Rewrite a test cell's check calls for a probe (student) or reference (solution) run.

    Test cells are trusted and the same in every submission: each is rewritten once per process.
    """
    if mode not in ("probe", "reference"):
        raise ValueError(mode)
    checks = parse_checks(source, grade_id)
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def pos(lineno, col):  # ast columns are UTF-8 byte offsets
        line = lines[lineno - 1]
        return offsets[lineno - 1] + len(line.encode("utf-8")[:col].decode("utf-8"))

    edits = []
    calls = [c for c in (_check_call(s) for s in tree.body) if c is not None]
    for check, call in zip(checks, calls):
        start, end = pos(call.lineno, call.col_offset), pos(call.end_lineno, call.end_col_offset)
        if mode == "probe":
            arg = call.args[1]  # sliced here: ast.get_source_segment splits the whole cell per call
            actual = source[pos(arg.lineno, arg.col_offset) : pos(arg.end_lineno, arg.end_col_offset)]
            new = f"__course_probe__({grade_id!r}, {check.index}, ({actual}))"
        else:
            after_func = pos(call.func.end_lineno, call.func.end_col_offset)
            args = source[after_func:end]  # "(name, actual, expected, ...)"
            new = f"__course_ref__({grade_id!r}, {check.index}, {check.hidden}, {call.func.id}, {args[1:]}"
        edits.append((start, end, new))
    out = source
    for start, end, new in reversed(edits):
        out = out[:start] + new + out[end:]
    prelude = PROBE_IMPORT if mode == "probe" else REF_IMPORT
    return prelude + "\n" + out


# ----- conventions of a whole notebook -------------------------------------
def lint(spec):
    """Problems (strings) with an instructor notebook; empty when it follows the conventions."""
    problems = []
    solution_names = set()
    for c in spec.cells:
        if c.grade_id and not GRADE_ID.match(c.grade_id):
            problems.append(f"grade_id {c.grade_id!r} should look like w2_sigmoid or w2_sigmoid_tests")
        if c.role == "solution" and c.cell_type == "code":
            if "### BEGIN SOLUTION" not in c.source:
                problems.append(f"{c.grade_id}: solution cell without ### BEGIN SOLUTION")
            problems += _own_work_problems(c)
            try:
                for node in ast.parse(c.source).body:
                    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                        solution_names.add(node.name)
            except SyntaxError as e:
                problems.append(f"{c.grade_id}: does not parse: {e}")
        if c.role == "tests":
            if c.points <= 0:
                problems.append(f"{c.grade_id}: test cell without points")
            if not c.grade_id.endswith("tests"):
                problems.append(f"{c.grade_id}: test cell ids end in _tests")
        if c.role == "manual" and c.points <= 0:
            problems.append(f"{c.grade_id}: manually graded answer without points")
    for c in spec.test_cells:
        tree = ast.parse(c.source)
        for stmt in tree.body:
            call = _check_call(stmt)
            if call is None:
                continue
            expected_names = _names(call.args[2]).union(*(_names(k.value) for k in call.keywords))
            bad = sorted(expected_names & solution_names)
            if bad:
                problems.append(
                    f"{c.grade_id}, line {stmt.lineno}: expected values call the student's "
                    f"{', '.join(bad)}; the grader would compute them from the solution instead"
                )
    return problems


def _own_work_problems(cell):
    """Each declared not_delegate target exists (tests/test_ownwork.py requires a declaration per exercise)."""
    from course_lib.ownwork import resolve_path

    from .ownwork import declared

    targets = declared(cell.metadata) or []
    roots = {t.split(".")[0] for t in targets}
    return [
        f"{cell.grade_id}: not_delegate target {t!r} does not exist" for t in targets if resolve_path(t, roots) is None
    ]


# ----- merging a submission into the trusted skeleton ----------------------
@dataclass
class Merged:
    """The notebook to run for one submission, and what the merge noticed."""

    nb: nbformat.NotebookNode
    notes: list  # human-readable remarks (missing cells, duplicates, ...)
    answered: dict  # grade_id -> False when a solution/answer cell is unchanged from the release


def _grade_id_of(cell):
    meta = cell.get("metadata")
    nbmeta = meta.get("nbgrader") if isinstance(meta, dict) else None
    gid = nbmeta.get("grade_id") if isinstance(nbmeta, dict) else None
    return gid if isinstance(gid, str) else None


def _source_text(cell):
    src = cell.get("source", "")
    if isinstance(src, list):
        src = "".join(s for s in src if isinstance(s, str))
    return src if isinstance(src, str) else ""


def merge(spec, submitted, release_cells=None):
    """Rebuild the notebook to grade from the trusted ``spec`` and a submission.

    * Test, read-only and task cells come from the spec (edits are ignored,
      deleted ones come back), in the spec's order, with trusted metadata.
    * Solution and answer cells come from the submission, matched by
      grade_id; a missing one is replaced by its release stub.
    * Every other submitted cell (the release's plain cells, the student's
      own cells) runs where the student put it: right after the graded cell it
      followed. So moving a test cell below later code changes nothing.
    ``release_cells`` maps grade_id -> the release version of the cell (its
    stub, used for missing cells and to detect unanswered cells).
    """
    release_cells = release_cells or {}
    trusted = spec.by_grade_id()
    notes, answered = [], {}
    chosen, attached = {}, {None: []}
    anchor = None
    for cell in submitted.get("cells", []):
        if not isinstance(cell, dict):
            continue
        gid = _grade_id_of(cell)
        if gid in trusted and gid not in chosen:
            chosen[gid] = cell
            anchor = gid
            attached.setdefault(gid, [])
            continue
        if gid in trusted:
            notes.append(f"cell {gid!r} appears more than once; the first copy was graded")
        elif gid:
            notes.append(f"unknown cell id {gid!r} was run as ordinary code")
        attached.setdefault(anchor, []).append(cell)

    out = [_plain(c) for c in attached[None]]
    for c in spec.cells:
        if not c.grade_id:
            continue
        sub = chosen.get(c.grade_id)
        if c.role in ("solution", "manual"):
            rel = release_cells.get(c.grade_id)
            if sub is None:
                notes.append(f"cell {c.grade_id!r} was missing; its empty stub was run instead")
                source = rel["source"] if rel else ""
            else:
                source = _source_text(sub)
            if rel is not None:
                answered[c.grade_id] = source.strip() != rel["source"].strip()
            out.append(_cell(c.cell_type, source, c.metadata))
        else:
            if sub is None:
                notes.append(f"cell {c.grade_id!r} was deleted; the original was restored")
            out.append(_cell(c.cell_type, c.source, c.metadata))
        out.extend(_plain(x) for x in attached.get(c.grade_id, []))
    nb = nbformat.v4.new_notebook(cells=out)
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    return Merged(nb, notes, answered)


def _cell(cell_type, source, metadata):
    if cell_type == "code":
        cell = nbformat.v4.new_code_cell(source)
    elif cell_type == "raw":
        cell = nbformat.v4.new_raw_cell(source)
    else:
        cell = nbformat.v4.new_markdown_cell(source)
    cell.metadata = nbformat.from_dict(metadata)
    return cell


def _plain(cell):
    """A student-side cell without any nbgrader role."""
    meta = cell.get("metadata") if isinstance(cell.get("metadata"), dict) else {}
    meta = {k: v for k, v in meta.items() if k in ("tags", "collapsed", "scrolled", "jupyter")}
    ctype = cell.get("cell_type") if cell.get("cell_type") in ("code", "markdown", "raw") else "raw"
    return _cell(ctype, _source_text(cell), meta)


def prepare_for_run(merged_nb, spec, mode="probe"):
    """Copy of the merged notebook with every test cell rewritten for ``mode``."""
    from .ownwork import tripwire_lines  # ownwork imports this module

    nb = nbformat.from_dict(merged_nb)
    tests = {c.grade_id for c in spec.test_cells}
    wires = tripwire_lines(spec) if mode == "probe" else {}
    for cell in nb.cells:
        gid = _grade_id_of(cell)
        if gid in tests:
            cell.source = rewrite(cell.source, gid, mode)
            if gid in wires:  # own-work tripwires around this exercise's probes
                cell.source = wires[gid][0] + cell.source + wires[gid][1]
    return nb
