"""A one-page HTML class report: where did the class struggle?

* the distribution of autograded scores,
* the mean score per exercise, hardest first,
* the most common failure messages (each names a check and a mistake),
* the time each submission took to grade, and every submission that failed,
* similar submissions: near-identical solutions, near-copies of the reference (grading/similarity.py).
Plots are PNGs embedded in the page, so the report is a single file.
"""

import base64
import html
import io
from collections import Counter

from .feedback import exercise_name
from .pipeline import collect_results
from .verdict import NOT_DONE


def _png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "<img alt='' src='data:image/png;base64," + base64.b64encode(buf.getvalue()).decode() + "'>"


def summarize(results):
    """Plain numbers behind the report (also used by tests)."""
    graded = {s: r for s, r in results.items() if r["status"] == "graded"}
    per_cell, failures, not_done, times, totals = {}, Counter(), Counter(), {}, {}
    for student, r in results.items():
        cells = [c for nb in r["notebooks"].values() for c in nb["cells"]]
        totals[student] = (sum(c["points"] for c in cells), sum(c["max_points"] for c in cells))
        times[student] = r.get("seconds", 0.0)
        if student not in graded:
            continue
        for c in cells:
            per_cell.setdefault(c["grade_id"], []).append(c["points"] / c["max_points"] if c["max_points"] else 0.0)
            for check in c.get("checks", []):
                if not check["passed"] and not check["message"].startswith("not reached"):
                    failures[f"{exercise_name(c['grade_id'])} – {check['name']}: {check['message']}"] += 1
            for msg in c["messages"]:
                if NOT_DONE in msg:
                    not_done[exercise_name(c["grade_id"])] += 1  # not attempted: not a struggle
                elif msg.startswith("the cell raised") or "stderr" in msg:
                    failures[f"{exercise_name(c['grade_id'])}: {msg}"] += 1
    means = sorted(((sum(v) / len(v), gid) for gid, v in per_cell.items()))
    failed = {s: r.get("reason") for s, r in results.items() if r["status"] != "graded"}
    return {
        "totals": totals,
        "exercise_means": means,
        "failures": failures.most_common(),
        "not_done": not_done.most_common(),
        "times": times,
        "failed": failed,
    }


def write_report(course, week):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = collect_results(course, week)
    s = summarize(results)
    e = html.escape
    parts = [
        "<!doctype html><meta charset='utf-8'>",
        f"<title>Class report – {e(week)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1f2328}"
        "table{border-collapse:collapse;width:100%}"
        "td,th{border-bottom:1px solid #d1d9e0;padding:.35rem .5rem;text-align:left}"
        "th{background:#f6f8fa}img{max-width:100%}</style>",
        f"<h1>Class report: {e(week)}</h1>",
        f"<p>{len(results)} submissions: {len(results) - len(s['failed'])} graded, "
        f"{len(s['failed'])} could not be graded.</p>",
    ]
    if not results:
        parts.append("<p>No graded submissions yet: run <code>course grade</code> first.</p>")
    else:
        scores = [t[0] for t in s["totals"].values()]
        top = max(t[1] for t in s["totals"].values()) or 1
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.hist(scores, bins=min(20, max(5, len(set(scores)))), range=(0, top), color="#0969da", edgecolor="white")
        ax.set(xlabel=f"autograded score (out of {top:g})", ylabel="submissions", title="Score distribution")
        parts += ["<h2>Score distribution</h2>", _png(fig)]

        means = s["exercise_means"]
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(means) + 1))
        labels = [exercise_name(g) for _, g in means]
        ax.barh(labels[::-1], [100 * m for m, _ in means][::-1], color="#bf3989")
        ax.set(xlim=(0, 100), xlabel="mean score (% of the exercise's points)", title="Exercises, hardest at the top")
        parts += ["<h2>Where the class struggled</h2>", _png(fig)]

        rows = "".join(f"<tr><td>{n}</td><td>{e(msg)}</td></tr>" for msg, n in s["failures"][:15])
        parts += [
            "<h2>Most common failures</h2>",
            "<table><tr><th>count</th><th>check and message</th></tr>"
            f"{rows or '<tr><td colspan=2>none</td></tr>'}</table>",
        ]
        if s["not_done"]:
            undone = ", ".join(f"{name} ({n})" for name, n in s["not_done"])
            parts.append(f"<p>Not attempted (stub left in place), by exercise: {e(undone)}.</p>")

        times = sorted(s["times"].items(), key=lambda kv: kv[1])
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.bar(range(len(times)), [t for _, t in times], color="#1a7f37")
        ax.set(xlabel="submissions (sorted)", ylabel="seconds", title="Time to grade each submission")
        parts += [
            "<h2>Grading time</h2>",
            _png(fig),
            f"<p>median {sorted(t for _, t in times)[len(times) // 2]:.2f} s, max {times[-1][1]:.2f} s</p>",
        ]
        if s["failed"]:
            rows = "".join(
                f"<tr><td>{e(st)}</td><td>{e(str(reason))}</td></tr>" for st, reason in sorted(s["failed"].items())
            )
            parts += [
                "<h2>Submissions that could not be graded</h2>",
                f"<table><tr><th>student</th><th>reason</th></tr>{rows}</table>",
            ]
        parts += late_section(course, week)
    from .similarity import find_similar

    parts += find_similar(course, week).html_section()  # escaped there
    course.reports.mkdir(parents=True, exist_ok=True)
    path = course.reports / f"{week}.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def late_section(course, week):
    """Late submissions from the gradebook: due date, how late, and the penalty nbgrader's late plugin gave."""
    from nbgrader.api import MissingEntry

    from .gradebook import describe_lateness, lateness

    try:
        late = {s: v for s, v in lateness(course, week).items() if v[0] > 0}
    except MissingEntry:
        return []
    if not late:
        return []
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(st)}</td><td>{'' if due is None else f'{due:%Y-%m-%d %H:%M} UTC'}</td>"
        f"<td>{e(describe_lateness(seconds, penalty))}</td><td>{penalty:g}</td></tr>"
        for st, (seconds, penalty, due) in sorted(late.items())
    )
    return [
        f"<h2>Late submissions ({len(late)})</h2>",
        f"<table><tr><th>student</th><th>due</th><th>lateness</th><th>penalty (points)</th></tr>{rows}</table>",
    ]
