"""A one-page HTML class report: how the class did, and where it struggled.

Scores come from the gradebook only (formgrader's overrides, manual grades and late penalties
included; grading/gradebook/store.py read_grades); the grader's result files add what they alone
know: the per-check failure messages, grading times, and which submissions could not be graded.

* one row per student: autograded, written answers, late penalty, final, and a link to the
  feedback page; "pending" while manual grading is not done (never 0),
* the distribution of final scores, and per exercise a distribution with mean and median,
* manual-grading progress (n of N written answers graded),
* the most common failure messages (each names a check and a mistake),
* submissions that could not be graded, listed apart (never drawn as 0),
* late submissions, grading time, and similar submissions (grading/outputs/similarity.py).
The page is rendered from grading/outputs/templates/report.html.j2 (autoescaped); plots are PNGs
embedded in it, so the report is a single file.
"""

import base64
import io
import statistics
from collections import Counter
from urllib.parse import quote

from markupsafe import Markup

from ..gradebook.store import describe_lateness, read_grades
from ..pipeline import collect_results
from ..verdict.judge import NOT_DONE
from .feedback import exercise_name, render_template

BINS = 5  # per-exercise distribution: fifths of the exercise's points


def _png(fig):
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def summarize(results, grades):
    """Plain numbers behind the report (also used by tests).

    ``results``: the grader's result files by student (collect_results); ``grades``: the
    week's WeekGrades from the gradebook, the only source of scores.
    """
    failed = {s: r.get("reason") or r["status"] for s, r in results.items() if r["status"] != "graded"}
    graded = {s: sub for s, sub in grades.submissions.items() if s not in failed}
    failures, not_done = _messages(results, failed)
    exercises = _exercises(graded)
    written = [c for sub in graded.values() for c in sub.cells if c.written]
    return {
        "students": sorted(set(grades.submissions) | set(results)),
        "graded": graded,
        "failed": failed,
        "totals": {s: (sub.final, sub.so_far, sub.max_score) for s, sub in graded.items()},
        "exercises": exercises,
        "exercise_means": sorted(  # the autograded exercises, for "where the class struggled"
            (e["mean"] / e["max"], e["grade_id"]) for e in exercises if e["n"] and e["max"] and not e["written"]
        ),
        "manual_progress": (sum(not c.pending for c in written), len(written)),
        "pending_code": sum(c.pending for sub in graded.values() for c in sub.cells if not c.written),
        "overrides": sum(c.overridden for sub in graded.values() for c in sub.cells),
        "failures": failures.most_common(),
        "not_done": not_done.most_common(),
        "times": {s: r.get("seconds", 0.0) for s, r in results.items()},
        "late": {s: (g.seconds_late, g.late_penalty) for s, g in grades.submissions.items() if g.seconds_late > 0},
    }


def _messages(results, failed):
    """Failure messages and not-attempted exercises of the graded submissions (the grader's words)."""
    failures, not_done = Counter(), Counter()
    for student, r in results.items():
        if student in failed:
            continue
        for c in (c for nb in r["notebooks"].values() for c in nb["cells"]):
            for check in c.get("checks", []):
                if not check["passed"] and not check["message"].startswith("not reached"):
                    failures[f"{exercise_name(c['grade_id'])} – {check['name']}: {check['message']}"] += 1
            for msg in c["messages"]:
                if NOT_DONE in msg:
                    not_done[exercise_name(c["grade_id"])] += 1  # not attempted: not a struggle
                elif msg.startswith("the cell raised") or "stderr" in msg:
                    failures[f"{exercise_name(c['grade_id'])}: {msg}"] += 1
    return failures, not_done


def _exercises(graded):
    """Per grade cell: the scores given so far (pending ones apart), mean, median, a histogram."""
    by_cell = {}
    for sub in graded.values():
        for c in sub.cells:
            by_cell.setdefault((c.notebook, c.name), []).append(c)
    out = []
    for (notebook, gid), cells in sorted(by_cell.items()):
        top = max(c.max_score for c in cells)
        scores = [c.score for c in cells if not c.pending]
        counts = [0] * BINS
        for s in scores:
            counts[min(BINS - 1, int(BINS * s / top)) if top else 0] += 1
        out.append(
            {
                "notebook": notebook,
                "grade_id": gid,
                "name": exercise_name(gid) + (" (written answer)" if cells[0].written else ""),
                "written": cells[0].written,
                "max": top,
                "n": len(scores),
                "pending": len(cells) - len(scores),
                "mean": statistics.fmean(scores) if scores else None,
                "median": statistics.median(scores) if scores else None,
                "bins": [(n, round(100 * n / max(counts)) if any(counts) else 0) for n in counts],
            }
        )
    return out


def _student_rows(course, week, s, results, grades):
    rows = []
    for student in s["students"]:
        sub = grades.submissions.get(student)
        result = results.get(student)
        notebooks = list(result["notebooks"]) if result and result["notebooks"] else course.notebooks(week) or [week]
        page = course.feedback(student, week) / f"{notebooks[0]}.html"
        row = {
            "student": student,
            "name": "" if sub is None else ", ".join(n for n in (sub.last_name, sub.first_name) if n),
            "link": f"../feedback/{quote(student)}/{quote(week)}/{quote(notebooks[0])}.html",
            "written": page.is_file(),
        }
        if student in s["failed"]:
            row["status"] = "could not be graded"
        elif sub is None:
            row["status"] = "not in the gradebook"
        else:
            auto, auto_max, auto_pending = sub.autograded
            manual, manual_max, manual_pending = sub.manual
            row.update(
                status="pending manual grading" if sub.pending else "graded",
                auto=_points(None if auto_pending else auto, auto_max),
                manual=_points(None if manual_pending else manual, manual_max),
                penalty=f"−{sub.late_penalty:g}" if sub.late_penalty else "",
                final=_points(sub.final, sub.max_score),
            )
        rows.append(row)
    return rows


def _points(score, max_score):
    return f"{'pending' if score is None else f'{score:g}'} / {max_score:g}"


def _figures(s):
    """The three plots: final scores, exercises hardest first, grading time (data: URLs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = {}
    totals = s["totals"].values()
    if totals:
        top = max(t[2] for t in totals) or 1
        final = [t[0] for t in totals if t[0] is not None]
        so_far = [t[1] for t in totals if t[0] is None]
        fig, ax = plt.subplots(figsize=(7, 3))
        bins = min(20, max(5, len({*final, *so_far})))
        ax.hist(
            [final, so_far],
            bins=bins,
            range=(0, top),
            stacked=True,
            color=["#0969da", "#d4a72c"],
            edgecolor="white",
            label=["final", "manual grading pending (score so far)"],
        )
        ax.legend(loc="upper left", fontsize="small")
        ax.set(xlabel=f"score (out of {top:g})", ylabel="submissions", title="Score distribution")
        figures["scores"] = _png(fig)
    means = s["exercise_means"]
    if means:
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(means) + 1))
        labels = [exercise_name(g) for _, g in means]
        ax.barh(labels[::-1], [100 * m for m, _ in means][::-1], color="#bf3989")
        ax.set(xlim=(0, 100), xlabel="mean score (% of the exercise's points)", title="Exercises, hardest at the top")
        figures["means"] = _png(fig)
    times = sorted(s["times"].values())
    if times:
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.bar(range(len(times)), times, color="#1a7f37")
        ax.set(xlabel="submissions (sorted)", ylabel="seconds", title="Time to grade each submission")
        figures["times"] = _png(fig)
    return figures, times


def write_report(course, week):
    """reports/<week>.html; an unreadable gradebook is one CourseError line, and nothing is written."""
    from .similarity import find_similar

    grades = read_grades(course, week)
    results = collect_results(course, week)
    s = summarize(results, grades)
    figures, times = _figures(s)
    done, total = s["manual_progress"]
    late = [
        {
            "student": st,
            "due": "" if grades.duedate is None else f"{grades.duedate:%Y-%m-%d %H:%M} UTC",
            "lateness": describe_lateness(seconds, penalty),
            "penalty": f"{penalty:g}",
        }
        for st, (seconds, penalty) in sorted(s["late"].items())
    ]
    page = render_template(
        "report.html.j2",
        week=week,
        n_submissions=len(s["students"]),
        n_graded=len(s["graded"]),
        n_failed=len(s["failed"]),
        students=_student_rows(course, week, s, results, grades),
        figures=figures,
        median_time=times[len(times) // 2] if times else None,
        max_time=times[-1] if times else None,
        exercises=s["exercises"],
        manual_done=done,
        manual_total=total,
        pending_code=s["pending_code"],
        overrides=s["overrides"],
        failures=s["failures"][:15],
        not_done=", ".join(f"{name} ({n})" for name, n in s["not_done"]),
        failed=sorted(s["failed"].items()),
        late=late,
        similarity=Markup("\n".join(find_similar(course, week).html_section())),  # escaped there
    )
    course.reports.mkdir(parents=True, exist_ok=True)
    path = course.reports / f"{week}.html"
    path.write_text(page, encoding="utf-8")
    return path
