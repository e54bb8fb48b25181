"""Per-student HTML feedback: scores per exercise and why each failed check failed.

Built only from trusted data: the grader's verdict messages (which never
echo student output and never show hidden values) and the gradebook's
manual scores and comments. No cell source is included, so hidden test code
cannot leak (unlike nbgrader's own feedback, issues #917 and #1363).
Files go to feedback/<student>/<week>/<notebook>.html, with the submission's
timestamp.txt and submission_secret.txt, where nbgrader's ``release_feedback``
expects them. A late submission's page shows the penalty the gradebook holds.

nbgrader's own ``generate_feedback`` (formgrader's button) is configured in
nbgrader_config.py to use ClearHiddenTestOutputs and nbgrader_feedback_hook
below: it never shows hidden tests, and for a submission `course grade` graded
it writes this same page.
"""

import functools
import shutil
from pathlib import Path

import nbformat
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from nbgrader.preprocessors import ClearHiddenTests
from traitlets import Bool

from ..gradebook.store import describe_lateness, read_grades
from ..pipeline import SECRET, SIDE_CAR, collect_results

TEMPLATES = Path(__file__).resolve().parent / "templates"


@functools.cache
def _environment():
    # autoescape for every template: all text on these pages is escaped unless marked safe.
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_template(name, **context):
    """A page from grading/outputs/templates/ (jinja2, autoescaped)."""
    return _environment().get_template(name).render(**context)


def week_title(week):
    """week2_logistic_regression -> 'Week 2: logistic regression'."""
    head, _, topic = week.partition("_")
    number = head.removeprefix("week")
    return f"Week {number}: {topic.replace('_', ' ')}" if number.isdigit() else week


def exercise_name(grade_id):
    """w2_sigmoid_tests -> 'sigmoid'; w2_sigmoid_stable_tests -> 'sigmoid stable'."""
    core = grade_id.split("_", 1)[1] if "_" in grade_id else grade_id
    core = core[: -len("_tests")] if core.endswith("_tests") else core
    return core.replace("_", " ")


def points(score, max_score):
    """'1.5 / 2', or 'pending / 2' while a score awaits manual grading (never shown as 0)."""
    return f"{'pending' if score is None else f'{score:g}'} / {max_score:g}"


def render(result, sub, duedate=None):
    """The feedback page of one submission.

    Scores come from the gradebook (``sub``, a SubmissionGrades, or None when the gradebook
    has none): an instructor's formgrader override is what the student sees. The grader's
    verdicts in ``result`` give the per-check messages only.
    """
    cells = {} if sub is None else {(c.notebook, c.name): c for c in sub.cells}
    notebooks = [
        {"name": name, "rows": _code_rows(name, nb, cells) + _written_rows(name, nb, cells)}
        for name, nb in result["notebooks"].items()
    ]
    return render_template(
        "feedback.html.j2",
        week=result["week"],
        student=result["student"],
        title=week_title(result["week"]),
        t=_totals(result, sub),
        late=_late_text(sub, duedate),
        failed=(result.get("reason") or "") if result["status"] != "graded" else None,
        missing=sub is None,
        notes=_notes(result),
        notebooks=notebooks,
    )


def _totals(result, sub):
    """The header: autograded + written answers - late penalty = final, each from the gradebook."""
    if sub is None:
        auto_max = sum(c["max_points"] for nb in result["notebooks"].values() for c in nb["cells"])
        manual_max = sum(m["max_points"] for nb in result["notebooks"].values() for m in nb.get("manual", {}).values())
        return {
            "auto": points(None, auto_max),
            "auto_note": "",
            "manual": points(None, manual_max),
            "manual_note": "",
            "penalty": None,
            "final": points(None, auto_max + manual_max),
            "final_note": "",
        }
    auto, auto_max, auto_pending = sub.autograded
    manual, manual_max, manual_pending = sub.manual
    overrides = sum(c.overridden for c in sub.cells)
    parts = ((auto_pending, "exercise(s)"), (manual_pending, "answer(s)"))
    waiting = [f"{n} {what} awaiting grading" for n, what in parts if n]
    return {
        "auto": points(None if auto_pending else auto, auto_max),
        "auto_note": f"includes {overrides} score(s) set by your instructor" if overrides else "",
        "manual": points(None if manual_pending else manual, manual_max),
        "manual_note": ", ".join(f"{n} awaiting grading" for n in [manual_pending] if n),
        "penalty": f"−{sub.late_penalty:g}" if sub.late_penalty else None,
        "final": points(sub.final, sub.max_score),
        "final_note": f"{'; '.join(waiting)} ({sub.so_far:g} points so far)" if waiting else "",
    }


def _code_rows(name, nb, cells):
    rows = []
    for cell in nb["cells"]:
        grade = cells.get((name, cell["grade_id"]))
        ok = cell["passed"]
        checks = cell.get("checks", [])
        hidden = sum(1 for c in checks if c.get("hidden"))
        override = None
        if grade is not None and grade.overridden:
            auto = "no score" if grade.auto is None else f"{grade.auto:g}"
            override = f"Score set by your instructor (the autograder gave {auto})."
        rows.append(
            {
                "exercise": exercise_name(cell["grade_id"]),
                "checks": f"{len(checks) - hidden} visible and {hidden} hidden check(s)" if checks else "",
                "points": points(None if grade is None else grade.score, cell["max_points"]),
                "css": "pass" if ok else "fail",
                "state": "passed" if ok else "not passed",
                "messages": [] if ok else list(cell["messages"]),
                "override": override,
                "comment": None if grade is None else _instructor_comment(grade),
            }
        )
    return rows


def _written_rows(name, nb, cells):
    rows = []
    for gid, info in nb.get("manual", {}).items():
        grade = cells.get((name, gid))
        mx = info["max_points"] if grade is None else grade.max_score
        if grade is None or grade.pending:
            css, state, score = ("wait", "awaiting grading", None)
        elif grade.manual is None and not info["answered"]:
            css, state, score = ("fail", "no answer", grade.score)
        else:
            css, state, score = ("pass", "graded", grade.score)
        rows.append(
            {
                "exercise": f"{exercise_name(gid)} (written answer)",
                "checks": "",
                "points": points(score, mx),
                "css": css,
                "state": state,
                "messages": [],
                "override": None,
                "comment": None if grade is None else grade.comment,
            }
        )
    return rows


def _instructor_comment(grade):
    """A code cell's comment, unless it is nbgrader's automatic "No response." (the verdict says more)."""
    return grade.comment if grade.comment and grade.comment != "No response." else None


def _notes(result):
    notes = list(result.get("notes", []))
    for nb in result["notebooks"].values():
        notes += nb.get("notes", [])
        if nb.get("run_status") not in (None, "ok"):
            notes.append(f"Running your notebook stopped early: {nb.get('run_detail')}.")
    return notes


def _late_text(sub, duedate):
    """When it was due, how late, and the penalty nbgrader's late plugin gave (None when on time)."""
    text = None if sub is None else describe_lateness(sub.seconds_late, sub.late_penalty)
    if not text:
        return None
    due_text = f" (due {duedate:%Y-%m-%d %H:%M} UTC)" if duedate is not None else ""
    return text[0].upper() + text[1:] + due_text


def write_feedback(course, week, students=None):
    """Write feedback for every graded or failed submission of ``week``; returns the paths.

    Scores come from the gradebook (an unreadable one is one CourseError line, and nothing
    is written); the grader's result files give the per-check messages. Next to the pages
    go the submission's timestamp.txt and submission_secret.txt (from autograded/, as
    nbgrader's generate_feedback copies them): ``nbgrader release_feedback`` reads both to
    publish each page where only its student's ``fetch_feedback`` finds it.
    """
    grades = read_grades(course, week)
    paths = []
    for student, result in collect_results(course, week).items():
        if students is not None and student not in students:
            continue
        page = render(result, grades.submissions.get(student), grades.duedate)
        out = course.feedback(student, week)
        out.mkdir(parents=True, exist_ok=True)
        for name in result["notebooks"] or [week]:
            path = Path(out) / f"{name}.html"
            path.write_text(page, encoding="utf-8")
            paths.append(path)
        _copy_exchange_files(course.autograded(student, week), out)
    return paths


def _copy_exchange_files(autograded, out):
    """timestamp.txt and submission_secret.txt as they are in autograded/ (a stale copy is removed)."""
    for name in ("timestamp.txt", SECRET):
        src, dest = autograded / name, out / name
        if src.is_file() and not src.is_symlink():
            shutil.copyfile(src, dest)
        else:
            dest.unlink(missing_ok=True)


# ----- nbgrader's own generate_feedback (formgrader's button), configured in nbgrader_config.py -----
class ClearHiddenTestOutputs(ClearHiddenTests):
    """nbgrader's ClearHiddenTests for feedback pages: hidden tests go, and so do the outputs they made.

    The outputs of a cell that ran hidden tests (a traceback quoting the failing hidden line, values
    printed from hidden inputs) are replaced by one fixed line. Hidden regions are removed from every
    cell (``enforce_metadata`` off), so text a student pasted cannot stop the page being made.
    """

    enforce_metadata = Bool(False).tag(config=True)

    def preprocess_cell(self, cell, resources, cell_index):
        hidden = self.begin_test_delimeter in cell.source
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if hidden and cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=HIDDEN_OUTPUT)]
        return cell, resources


HIDDEN_OUTPUT = "Hidden checks ran in this cell; your feedback page lists what they found.\n"


def nbgrader_feedback_hook(notebooks=(), **_):
    """GenerateFeedback.post_convert_hook: nbgrader's page becomes the page `course feedback` writes.

    nbgrader calls this after writing feedback/<student>/<week>/ from autograded/<student>/<week>/.
    When `course grade` graded that submission (its grading.json is there), the pages are rewritten
    from the grader's verdicts and the gradebook, so both commands give the student the same page.
    A submission graded by ``nbgrader autograde`` keeps nbgrader's page, cleaned by
    ClearHiddenTestOutputs.
    """
    from ..course import Course

    paths = [Path(nb).resolve() for nb in notebooks]
    if not paths:
        return []
    folder = paths[0].parent
    root, student, week = folder.parents[2], folder.parent.name, folder.name
    course = Course.load(root)
    if course.autograded(student, week) != folder or not (folder / SIDE_CAR).is_file():
        return []
    return write_feedback(course, week, students={student})
