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

import html
import shutil
from pathlib import Path

import nbformat
from nbgrader.api import MissingEntry
from nbgrader.preprocessors import ClearHiddenTests
from traitlets import Bool

from .gradebook import describe_lateness, lateness
from .pipeline import SECRET, SIDE_CAR, collect_results

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:52rem;margin:2rem auto;
  padding:0 1rem;color:#1f2328;line-height:1.5}
h1{font-size:1.5rem;margin-bottom:.2rem} .sub{color:#59636e;margin-top:0}
.total{font-size:1.2rem;font-weight:600;margin:1rem 0}
table{border-collapse:collapse;width:100%;margin:1rem 0}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #d1d9e0;vertical-align:top}
th{background:#f6f8fa} .pass{color:#1a7f37;font-weight:600} .fail{color:#cf222e;font-weight:600}
.wait{color:#9a6700;font-weight:600} ul{margin:.2rem 0 .2rem 1.1rem;padding:0} li{margin:.15rem 0}
.note{background:#fff8c5;border:1px solid #d4a72c;padding:.6rem .8rem;border-radius:6px;margin:1rem 0}
.hidden{color:#59636e;font-size:.85em}
"""


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


def _manual(course, week, student):
    """{grade_id: (score, max, comment)} of manually graded cells from the gradebook."""
    out = {}
    try:
        with course.gradebook() as gb:
            sub = gb.find_submission(week, student)
            for nb in sub.notebooks:
                for grade in nb.grades:
                    if grade.cell.cell_type == "markdown":
                        comment = next((c for c in nb.comments if c.name == grade.name), None)
                        text = comment.comment if comment is not None else None
                        out[grade.name] = (
                            grade.score if grade.manual_score is not None else None,
                            grade.max_score,
                            text,
                        )
    except MissingEntry:
        pass
    return out


def render(result, manual, late=None):
    """The feedback page; ``late`` is (seconds late, penalty, due date) from the gradebook, or None."""
    e = html.escape
    student, week = result["student"], result["week"]
    parts = [
        f"<!doctype html><meta charset='utf-8'><title>Feedback {e(week)} – {e(student)}</title>",
        f"<style>{CSS}</style>",
        f"<h1>{e(week_title(week))}</h1>",
        f"<p class=sub>Feedback for <b>{e(student)}</b></p>",
    ]
    auto = sum(c["points"] for nb in result["notebooks"].values() for c in nb["cells"])
    auto_max = sum(c["max_points"] for nb in result["notebooks"].values() for c in nb["cells"])
    parts.append(f"<p class=total>Autograded: {auto:g} / {auto_max:g} points</p>")
    parts += _late_note(late)
    if result["status"] != "graded":
        parts.append(
            f"<div class=note><b>Your submission could not be graded:</b> {e(result.get('reason') or '')}</div>"
        )
    notes = list(result.get("notes", []))
    for nb in result["notebooks"].values():
        notes += nb.get("notes", [])
        if nb.get("run_status") not in (None, "ok"):
            notes.append(f"Running your notebook stopped early: {nb.get('run_detail')}.")
    if notes:
        parts.append("<div class=note><b>Notes</b><ul>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul></div>")
    for name, nb in result["notebooks"].items():
        parts.append(f"<h2>{e(name)}.ipynb</h2><table><tr><th>Exercise</th><th>Points</th><th>Result</th></tr>")
        for cell in nb["cells"]:
            ok = cell["passed"]
            detail = ""
            if not ok:
                items = []
                for msg in cell["messages"]:
                    items.append(f"<li>{e(msg)}</li>")
                detail = "<ul>" + "".join(items) + "</ul>"
            hidden = sum(1 for c in cell.get("checks", []) if c.get("hidden"))
            shown = len(cell.get("checks", [])) - hidden
            counts = (
                f"<div class=hidden>{shown} visible and {hidden} hidden check(s)</div>" if cell.get("checks") else ""
            )
            parts.append(
                f"<tr><td>{e(exercise_name(cell['grade_id']))}{counts}</td>"
                f"<td>{cell['points']:g} / {cell['max_points']:g}</td>"
                f"<td><span class={'pass' if ok else 'fail'}>{'passed' if ok else 'not passed'}</span>"
                f"{detail}</td></tr>"
            )
        for gid, info in nb.get("manual", {}).items():
            score, mx, comment = manual.get(gid, (None, info["max_points"], None))
            if score is None:
                state = (
                    "<span class=wait>awaiting grading</span>"
                    if info["answered"]
                    else "<span class=fail>no answer</span>"
                )
                pts = f"– / {mx:g}" if info["answered"] else f"0 / {mx:g}"
            else:
                state, pts = "<span class=pass>graded</span>", f"{score:g} / {mx:g}"
            if comment:
                state += f"<div>{e(comment)}</div>"
            parts.append(f"<tr><td>{e(exercise_name(gid))} (written answer)</td><td>{pts}</td><td>{state}</td></tr>")
        parts.append("</table>")
    parts.append(
        "<p class=sub>Hidden checks use inputs you have not seen; their messages describe the mistake "
        "without showing the test. Rerun the notebook's visible checks to try ideas.</p>"
    )
    return "\n".join(parts)


def _late_note(late):
    """The lateness paragraph: when it was due, how late, and the penalty nbgrader's late plugin gave."""
    seconds, penalty, due = late or (0, 0.0, None)
    text = describe_lateness(seconds, penalty)
    if not text:
        return []
    due_text = f" (due {due:%Y-%m-%d %H:%M} UTC)" if due is not None else ""
    return [f"<div class=note><b>Late submission:</b> {html.escape(text[0].upper() + text[1:] + due_text)}.</div>"]


def write_feedback(course, week, students=None):
    """Write feedback for every graded or failed submission of ``week``; returns the paths.

    Next to the pages go the submission's timestamp.txt and submission_secret.txt (from
    autograded/, as nbgrader's generate_feedback copies them): ``nbgrader release_feedback``
    reads both to publish each page where only its student's ``fetch_feedback`` finds it.
    """
    paths = []
    try:
        late = lateness(course, week)
    except MissingEntry:  # the gradebook does not know the week (nothing was graded into it)
        late = {}
    for student, result in collect_results(course, week).items():
        if students is not None and student not in students:
            continue
        manual = _manual(course, week, student)
        page = render(result, manual, late.get(student))
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
    from .course import Course

    paths = [Path(nb).resolve() for nb in notebooks]
    if not paths:
        return []
    folder = paths[0].parent
    root, student, week = folder.parents[2], folder.parent.name, folder.name
    course = Course.load(root)
    if course.autograded(student, week) != folder or not (folder / SIDE_CAR).is_file():
        return []
    return write_feedback(course, week, students={student})
