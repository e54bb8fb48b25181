"""`course demo`: the whole instructor pipeline on synthetic students.

1. release every week (nbgrader generate_assignment),
2. write synthetic submissions (correct, blank, typical mistakes, partially
   done, and one broken file) and collect them like real ones,
3. grade each week in parallel into the gradebook (SQLite by default),
4. write per-student feedback, a class report per week and grades.csv.

The synthetic students are built from the release notebook plus the
solutions of source/ and the typical-mistakes catalogue in
grading/mistakes/<week>.json, so they are always in step with the course.
"""

import json
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from .verdict.notebook import cell_role

MISTAKES_DIR = Path(__file__).parent / "mistakes"


def load_mistakes(week):
    path = MISTAKES_DIR / f"{week}.json"
    return json.loads(path.read_text()) if path.exists() else []


def one_per_cell(mistakes):
    """The first catalogue mistake of each solution cell: they can all be applied together."""
    seen, out = set(), []
    for m in mistakes:
        if m["solution_cell"] not in seen:
            seen.add(m["solution_cell"])
            out.append(m)
    return out


def typical_mistakes(mistakes):
    """The mistakes of the synthetic "typical mistakes" student: every other exercise has one,
    so the submission earns partial points, as a real student's would."""
    return one_per_cell(mistakes)[::2]


def _solutions(source_nb):
    return {
        (c.metadata.get("nbgrader") or {}).get("grade_id"): c.source
        for c in source_nb.cells
        if cell_role(c) in ("solution", "manual")
    }


def student_notebook(course, week, name, solved=None, mistakes=()):
    """A release notebook with the solutions of ``solved`` grade ids filled in and ``mistakes`` applied.

    solved=None solves every exercise. Each mistake is a catalogue entry
    {"solution_cell", "replace", "with", ...} applied to that cell's solution.
    """
    release_nb = nbformat.read(course.release(week) / f"{name}.ipynb", 4)
    solutions = _solutions(nbformat.read(course.source(week) / f"{name}.ipynb", 4))
    for m in mistakes:
        cell = m["solution_cell"]
        if m["replace"] not in solutions.get(cell, ""):
            raise ValueError(f"mistake {m.get('description')!r}: {m['replace']!r} not found in {cell}")
        solutions[cell] = solutions[cell].replace(m["replace"], m["with"], 1)
    for cell in release_nb.cells:
        gid = (cell.metadata.get("nbgrader") or {}).get("grade_id")
        if gid in solutions and (solved is None or gid in solved):
            src = solutions[gid]
            if cell.cell_type == "markdown":
                src = "My answer: " + src.split("\n\n")[0]  # a plausible student answer, not the rubric
            cell.source = _strip_markers(src)
    return release_nb


def _strip_markers(src):
    return "\n".join(ln for ln in src.splitlines() if ln.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))


def synthetic_class(course, week, n_students=8):
    """{student_id: {notebook_name: notebook | bytes}} for one week."""
    names = course.notebooks(week)
    mistakes = load_mistakes(week)
    solution_ids = []
    for name in names:
        src = nbformat.read(course.source(week) / f"{name}.ipynb", 4)
        solution_ids += [
            (c.metadata.get("nbgrader") or {}).get("grade_id") for c in src.cells if cell_role(c) == "solution"
        ]
    half = set(solution_ids[: len(solution_ids) // 2])
    students = {
        "demo_correct": {n: student_notebook(course, week, n) for n in names},
        "demo_blank": {n: student_notebook(course, week, n, solved=set()) for n in names},
        "demo_partial": {n: student_notebook(course, week, n, solved=half) for n in names},
        "demo_broken": {n: b'{"cells": [ this is not json' for n in names},
    }
    if mistakes:
        students["demo_mistakes"] = {
            n: student_notebook(course, week, n, mistakes=typical_mistakes(mistakes)) for n in names
        }
    for i, m in enumerate(mistakes):
        if len(students) >= n_students:
            break
        students[f"demo_mistake{i + 1}"] = {n: student_notebook(course, week, n, mistakes=[m]) for n in names}
    return dict(list(students.items())[: max(n_students, 4)])


def write_class(course, folder, weeks, n_students):
    """Write synthetic submissions as an instructor would receive them: <student>/<week>/..."""
    for w_index, week in enumerate(weeks):
        for s_index, (student, notebooks) in enumerate(synthetic_class(course, week, n_students).items()):
            d = Path(folder) / student / week
            d.mkdir(parents=True, exist_ok=True)
            for name, nb in notebooks.items():
                path = d / f"{name}.ipynb"
                if isinstance(nb, bytes):
                    path.write_bytes(nb)
                else:
                    nbformat.write(nb, path)
            # Fixed, fake submission times: the demo is reproducible.
            (d / "timestamp.txt").write_text(f"2026-0{1 + w_index}-1{s_index % 10} 10:00:00.000000 UTC")


def run_demo(course, workers=None, n_students=8, log=None):
    from .authoring.release import release
    from .collect.submissions import collect
    from .gradebook.store import export_csv
    from .outputs.feedback import write_feedback
    from .outputs.report import write_report
    from .pipeline import grade_weeks

    log = log or (lambda m: print(m, flush=True))
    t0 = time.monotonic()
    weeks = course.weeks()
    if not weeks:
        from .course import CourseError

        raise CourseError("no weeks in source/")
    log(f"1/4 releasing {len(weeks)} week(s) with nbgrader ...")
    for week in weeks:
        release(course, week)
    log("2/4 writing synthetic submissions and collecting them ...")
    with tempfile.TemporaryDirectory(prefix="nndemo-") as tmp:
        write_class(course, tmp, weeks, n_students)
        report = collect(course, tmp)
    log(report.table())
    log("3/4 grading every week in one parallel session ...")
    by_week = grade_weeks(course, weeks, workers=workers, progress=sys.stderr.isatty())
    for week, summary in by_week.items():
        log(f"\n== {week} ==\n{summary.table()}")
    summaries = list(by_week.values())
    log("4/4 feedback, reports and grades.csv ...")
    for week in weeks:
        write_feedback(course, week)
        write_report(course, week)
    csv = export_csv(course, course.root / "reports" / "grades.csv")
    rows = [(f"reports/{week}.html", "class report: where the class struggled") for week in weeks]
    rows += [
        ("feedback/<student>/<week>/*.html", "per-student feedback"),
        (str(csv.relative_to(course.root)), "grades, in nbgrader's export format"),
        ("autograded/<student>/<week>/", "graded notebooks (formgrader: make instructor)"),
    ]
    width = max(len(r[0]) for r in rows)
    log(f"\nDone in {time.monotonic() - t0:.0f} s. Open:")
    for path, what in rows:
        log(f"  {path.ljust(width)}  {what}")
    bad = [f for s in summaries for f in s.failed + s.errors if not f[0].startswith("demo_broken")]
    return 1 if bad else 0
