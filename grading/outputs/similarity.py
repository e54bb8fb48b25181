"""`course similarity WEEK`: which submissions share suspiciously much code.

For the instructor to review; it flags and never changes a grade. Two kinds
of findings, each exercise (solution cell, by grade_id) compared on its own
so that the notebook's shared skeleton never counts:

* two students whose solution cells are near-identical once the starter code
  (the release notebook's version of the cell) is removed;
* a student whose solution is a near-copy of the reference solution (the
  source cell between ### BEGIN SOLUTION and ### END SOLUTION) or of the
  course_lib function of the same name.

The fingerprints are copydetect's (MOSS's winnowing over pygments tokens):
names become ``V``/``F``, comments and whitespace vanish, so renamed
variables, added comments and blank lines change nothing, and reordered
lines only break the few k-grams that span them.

Thresholds. copydetect's "tokens" are characters of the filtered code
(``m = X.shape[0]`` becomes ``V=V.V[0]``, 8 tokens), so a one-line ``relu``
(``return np.maximum(0, z)``) is 16 tokens and a 10-line loop about 150.

* ``K = 15`` (noise threshold): shorter common runs, such as ``returnV,V``
  or ``V=V.V(V=0)``, are ignored. ``WINDOW = 4``: every common run of
  ``K + WINDOW - 1 = 18`` tokens or more is guaranteed to be seen.
* ``MIN_SHARED = 40``: an exercise counts as a match only when the two codes
  share at least 40 tokens (about three lines), and at least
  ``MIN_SIMILARITY = 0.7`` of each student's code (against a reference: of
  the student's code only, as course_lib adds input checks). Every one- or two-line
  exercise of the course (predict, relu, sigmoid, layer_forward,
  collapse_linear: 11 to 35 tokens) stays below it, however many honest
  students write it the same way. Honest solutions of a longer exercise that
  follow the same recipe share about 50-70% (the filtered code keeps little
  but the structure); planted copies with renamed variables, moved lines and
  comments keep 80-95%.
* ``FLAG_SHARED = 80``: a pair (or a student and the reference) is flagged
  when its matching exercises share at least 80 tokens in all: one long
  exercise copied, or several medium ones; one short exercise written the
  natural way never is. Pairs are ranked by that amount.
"""

import ast
import html
import importlib.util
import io
import re
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from ..text import for_terminal
from ..verdict.notebook import read_spec

K = 15
WINDOW = 4
MIN_SHARED = 40
MIN_SIMILARITY = 0.7
FLAG_SHARED = 80
MAX_CELL_CHARS = 100_000  # a longer solution cell is cut: fingerprints of a page of code are plenty
REFERENCE = "reference solution"
KINDS = {"reference": REFERENCE, "course_lib": "course_lib"}  # what a reference finding is "similar to"
_SOLUTION = re.compile(r"^[ \t]*### BEGIN SOLUTION[^\n]*\n(.*?)^[ \t]*### END SOLUTION", re.M | re.S)


@dataclass(frozen=True)
class Match:
    """One exercise where two codes share ``shared`` tokens, ``similarity`` of the student's code."""

    exercise: str
    shared: int
    similarity: float
    against: str = ""  # the course_lib function compared with, if any

    def __str__(self):
        return f"{self.exercise}{' ~ ' + self.against if self.against else ''} ({self.similarity:.0%})"


@dataclass(frozen=True)
class Finding:
    """A flagged pair: two students, or a student and a reference (``other`` names it)."""

    student: str
    other: str
    kind: str  # "pair" | "reference" | "course_lib"
    matches: tuple

    @property
    def shared(self):
        return sum(m.shared for m in self.matches)


@dataclass
class SimilarityReport:
    week: str
    students: list
    exercises: list
    findings: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # (student, reason)

    def rows(self):
        """(student, similar to, shared tokens, exercises) for each finding, most shared first."""
        return [
            (
                f.student,
                f"student {f.other}" if f.kind == "pair" else f.other,  # a student may be called course_lib
                f.shared,
                ", ".join(map(str, f.matches)),
            )
            for f in self.findings
        ]

    def table(self):
        """The findings as plain text for a terminal; every student-controlled name escaped."""
        head = (
            f"similar submissions in {self.week}: {len(self.students)} student(s), "
            f"{len(self.exercises)} exercise(s) compared, starter code removed"
        )
        rows = [(for_terminal(s, 40), for_terminal(o, 60), str(n), for_terminal(x, 400)) for s, o, n, x in self.rows()]
        lines = [head]
        if rows:
            header = ("student", "similar to", "shared", "exercises (similarity)")
            widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
            for r in [header, *rows]:
                lines.append("  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3])
        else:
            lines.append("no similar submissions found")
        lines += [f"not compared: {for_terminal(s, 40)}: {for_terminal(why)}" for s, why in self.skipped]
        lines.append("(a flag asks for a look; it changes no grade; code both copied from a reference is listed there)")
        return "\n".join(lines)

    def html_section(self):
        """The "Similar submissions" section of the class report (HTML, everything escaped).

        Names are made visible first (``for_terminal``): a bidi override in a
        student id would reorder the browser's table as it reorders a terminal's.
        """

        def e(text, limit=400):
            return html.escape(for_terminal(text, limit))

        rows = "".join(
            f"<tr><td>{e(s)}</td><td>{e(o)}</td><td>{n}</td><td>{e(ex)}</td></tr>" for s, o, n, ex in self.rows()
        )
        parts = [
            "<h2>Similar submissions</h2>",
            f"<p>{len(self.students)} submissions, {len(self.exercises)} exercises compared one by one, "
            "starter code removed (copydetect fingerprints). A flag asks for a look; it changes no grade. "
            "Code that two students both took from the reference is listed under the reference.</p>",
            "<table><tr><th>student</th><th>similar to</th><th>shared tokens</th>"
            "<th>exercises (similarity)</th></tr>"
            f"{rows or '<tr><td colspan=4>none</td></tr>'}</table>",
        ]
        if self.skipped:
            items = "".join(f"<li>{e(s)}: {e(why)}</li>" for s, why in self.skipped)
            parts.append(f"<p>Not compared:</p><ul>{items}</ul>")
        return parts


# ----- code to compare ---------------------------------------------------------
def _fingerprint(code, name="cell.py", boilerplate=None):
    """copydetect's fingerprint of Python ``code`` (None when it is too short to ever match)."""
    from copydetect import CodeFingerprint

    fp = CodeFingerprint(name, K, WINDOW, boilerplate=boilerplate, language="python", fp=io.StringIO(code))
    return fp if fp.token_coverage >= MIN_SHARED else None


def without_starter(code, starter):
    """``code`` minus the lines it keeps verbatim from the release ``starter`` (signature, docstring, stub)."""
    kept = {ln.strip() for ln in starter.splitlines() if ln.strip()}
    return "\n".join(ln for ln in code[:MAX_CELL_CHARS].splitlines() if ln.strip() not in kept)


def reference_code(source):
    """The reference solution: the lines between ### BEGIN SOLUTION and ### END SOLUTION."""
    return "".join(m.group(1) for m in _SOLUTION.finditer(source))


def _defined_functions(code):
    try:
        return [n.name for n in ast.parse(code).body if isinstance(n, ast.FunctionDef)]
    except SyntaxError:
        return []


def course_lib_functions(root=None):
    """{name: (qualified name, body source)} of the public module-level functions of course_lib."""
    base = Path(root) / "course_lib" if root is not None else None
    if base is None or not base.is_dir():
        base = Path(importlib.util.find_spec("course_lib").origin).parent
    out = {}
    for path in sorted(base.rglob("*.py")):
        module = ".".join(path.relative_to(base.parent).with_suffix("").parts)
        source = path.read_text(encoding="utf-8")
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                body = node.body[1:] if ast.get_docstring(node) is not None else node.body
                if body:
                    lines = source.splitlines()[body[0].lineno - 1 : body[-1].end_lineno]
                    out.setdefault(node.name, (f"{module}.{node.name}", "\n".join(lines)))
    return out


def _exercises(course, week):
    """[(notebook, grade_id, starter, {reference label: code})] for every code solution cell of ``week``."""
    import nbformat

    library = course_lib_functions(course.root)
    out = []
    for name in course.notebooks(week):
        release = course.release(week) / f"{name}.ipynb"
        cells = nbformat.read(release, 4).cells if release.exists() else []
        starters = {(c.metadata.get("nbgrader") or {}).get("grade_id"): c.source for c in cells}
        for cell in read_spec(course.source(week) / f"{name}.ipynb").cells:
            if cell.role != "solution" or cell.cell_type != "code":
                continue
            references = {REFERENCE: reference_code(cell.source)}
            for fn in _defined_functions(cell.source):
                if fn in library:
                    qualified, body = library[fn]
                    references[qualified] = body
            # Not released yet: the starter is what nbgrader keeps, the cell without its solution.
            starter = starters.get(cell.grade_id, _SOLUTION.sub("", cell.source))
            out.append((name, cell.grade_id, starter, references))
    return out


def _submitted_cells(course, week, names):
    """({student: {grade_id: source}}, [(student, reason)]) read without trusting anything."""
    from ..collect.validate import inspect
    from ..verdict.notebook import _grade_id_of, _source_text

    cells, skipped = {}, []
    for student in course.students(week):
        if course.submitted(student).is_symlink():
            skipped.append((student, "the student folder is a symbolic link"))
            continue
        sub = inspect(course.submitted(student, week), student, week, names)
        found = {}
        for nf in sub.notebooks.values():
            for cell in (nf.nb or {}).get("cells", []):
                gid = _grade_id_of(cell)
                if gid and gid not in found:  # the first copy, as the grader takes it
                    found[gid] = _source_text(cell)
        if found:
            cells[student] = found
        else:
            skipped.append((student, next((nf.problem for nf in sub.notebooks.values() if nf.problem), "no cells")))
    return cells, skipped


# ----- comparison ---------------------------------------------------------------
def compare(a, b, both=True):
    """(shared tokens, similarity) of ``a``'s code with ``b``'s, or None below the thresholds.

    ``both``: the similarity is the smaller of the two sides' (two students);
    otherwise it is ``a``'s side alone (a student against a longer reference).
    """
    from copydetect import compare_files

    if a is None or b is None or not (a.hashes & b.hashes):
        return None
    shared, (sim_a, sim_b), _ = compare_files(a, b)
    similarity = float(min(sim_a, sim_b) if both else sim_a)
    if shared < MIN_SHARED or similarity < MIN_SIMILARITY:
        return None
    return int(shared), similarity


def find_similar(course, week):
    """The similarity report of ``week``: flagged pairs and near-copies of the reference, most shared first.

    Two students who both copied the reference (or course_lib) in an exercise
    share that code too; the exercise is then listed once per student, under
    the reference, and not for every pair (a leaked solution would otherwise
    fill the table with n² rows).
    """
    exercises = _exercises(course, week)
    names = course.notebooks(week)
    cells, skipped = _submitted_cells(course, week, names)
    students = sorted(cells)
    pair_matches, ref_matches = {}, {}
    for _, gid, starter, references in exercises:
        boilerplate = _boilerplate(starter)
        prints = {
            s: _fingerprint(without_starter(cells[s][gid], starter), f"{gid}.py", boilerplate)
            for s in students
            if gid in cells[s]
        }
        explained = set()  # students whose code of this exercise is a reference's
        for label, code in references.items():
            ref = _fingerprint(code, f"{gid}.py")
            kind = "reference" if label == REFERENCE else "course_lib"
            for s, fp in prints.items():
                m = compare(fp, ref, both=False)
                if m:
                    explained.add(s)
                    against = "" if kind == "reference" else label
                    ref_matches.setdefault((s, kind), []).append(Match(gid, *m, against=against))
        for a, b in combinations(sorted(prints), 2):
            m = compare(prints[a], prints[b]) if not {a, b} <= explained else None
            if m:
                pair_matches.setdefault((a, b), []).append(Match(gid, *m))
    findings = [Finding(a, b, "pair", tuple(ms)) for (a, b), ms in pair_matches.items()]
    findings += [Finding(s, KINDS[kind], kind, tuple(ms)) for (s, kind), ms in ref_matches.items()]
    flagged = [f for f in findings if f.shared >= FLAG_SHARED]
    flagged.sort(key=lambda f: (-f.shared, f.student, f.other))
    return SimilarityReport(week, students, [gid for _, gid, _, _ in exercises], flagged, skipped)


def _boilerplate(starter):
    """Every k-gram hash of the starter code, for copydetect to discard (not just the winnowed ones)."""
    import numpy as np
    from copydetect import CodeFingerprint

    fp = CodeFingerprint("starter.py", K, 1, language="python", fp=io.StringIO(starter))
    return np.array(sorted(fp.hashes), dtype=np.int64)
