"""Per-student HTML feedback: scores per exercise and why each failed check failed.

Built only from trusted data: the grader's verdict messages (which never
echo student output and never show hidden values) and the gradebook's
manual scores and comments. No cell source is included, so hidden test code
cannot leak (unlike nbgrader's own feedback, issues #917 and #1363).
Files go to feedback/<student>/<week>/<notebook>.html, where nbgrader's
``release_feedback`` expects them.
"""

import html
from pathlib import Path

from .pipeline import collect_results

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
    from nbgrader.api import MissingEntry

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


def render(result, manual):
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


def write_feedback(course, week):
    """Write feedback for every graded or failed submission of ``week``; returns the paths."""
    paths = []
    for student, result in collect_results(course, week).items():
        manual = _manual(course, week, student)
        page = render(result, manual)
        out = course.feedback(student, week)
        out.mkdir(parents=True, exist_ok=True)
        for name in result["notebooks"] or [week]:
            path = Path(out) / f"{name}.html"
            path.write_text(page, encoding="utf-8")
            paths.append(path)
    return paths
