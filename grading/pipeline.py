"""Grade every submission of a week, in parallel, resumably, into the gradebook.

    summary = grade_week(course, "week2_logistic_regression", workers=2)

Workers are Dask processes (a local cluster sized to the machine, or an
existing cluster via ``scheduler="tcp://host:8786"``). Each worker keeps one
sandbox with a warm kernel fork server, so a notebook costs its own cells
plus a few milliseconds. Workers only compute; this process writes every
result (files and gradebook rows), one at a time, so SQLite is safe and the
outcome does not depend on the number of workers or their timing.
"""

import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field

from .course import STUDENT_ID, CourseError
from .grade import Job, build_assignment, submission_hash
from .gradebook import ensure_assignment, record
from .kernels import LazyFactory
from .notebook import NotebookError
from .sandbox import Limits, detect
from .worker import WarmSandbox, close_worker_factory, error_result, grade_task

SIDE_CAR = "grading.json"


@dataclass
class Summary:
    week: str
    graded: list = field(default_factory=list)  # (student, score, max, seconds)
    failed: list = field(default_factory=list)  # (student, reason)
    skipped: list = field(default_factory=list)  # (student, why)
    notes: dict = field(default_factory=dict)  # student -> [remarks]
    seconds: float = 0.0
    workers: int = 0

    def table(self):
        rows = [("student", "status", "score", "time", "reason / notes")]
        for s, score, mx, secs in self.graded:
            rows.append((s, "graded", f"{score:g}/{mx:g}", f"{secs:.1f}s", "; ".join(self.notes.get(s, []))[:90]))
        for s, reason in self.failed:
            rows.append((s, "FAILED", "", "", reason[:120]))
        for s, why in self.skipped:
            rows.append((s, "skipped", "", "", why))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows]
        lines.insert(1, "-" * (sum(widths) + 8 + 20))
        lines.append(
            f"\n{len(self.graded)} graded, {len(self.failed)} failed, {len(self.skipped)} skipped "
            f"(grading session: {self.seconds:.1f} s, {self.workers} worker(s))"
        )
        return "\n".join(lines)


# ----- client side ------------------------------------------------------------------
def plan(course, week, force=False, students=None):
    """(jobs, skipped, invalid) for the submissions of ``week``."""
    jobs, skipped, invalid = [], [], []
    for student in students or course.students(week):
        folder = course.submitted(student, week)
        if not STUDENT_ID.match(student) or ".." in student:
            invalid.append((student, "invalid student id (use ASCII letters, digits, _ . -): not graded"))
            continue
        if not folder.is_dir():
            invalid.append((student, f"no submission folder {folder}"))
            continue
        if folder.is_symlink():
            invalid.append((student, "the submission folder is a symbolic link: not graded"))
            continue
        if not force and _up_to_date(course, student, week, folder):
            skipped.append((student, "already graded (use --force to regrade)"))
            continue
        jobs.append(Job(student, week, str(folder)))
    return jobs, skipped, invalid


def _up_to_date(course, student, week, folder):
    side = course.autograded(student, week) / SIDE_CAR
    try:
        done = json.loads(side.read_text())
    except (OSError, ValueError):
        return False
    from .grade import fingerprint

    return (
        done.get("status") in ("graded", "failed")
        and done.get("submission_hash") == submission_hash(folder)
        and done.get("fingerprint") == fingerprint(course, week)
        and _in_gradebook(course, student, week)
    )


def _in_gradebook(course, student, week):
    from nbgrader.api import MissingEntry

    with course.gradebook() as gb:
        try:
            gb.find_submission(week, student)
            return True
        except MissingEntry:
            return False


def write_result(course, result):
    """Store one result: autograded files, the gradebook rows, then the sidecar (the 'done' mark)."""
    student, week = result["student"], result["week"]
    out = course.autograded(student, week)
    out.mkdir(parents=True, exist_ok=True)
    for name, nb in result["notebooks"].items():
        if nb.get("notebook_json"):
            (out / f"{name}.ipynb").write_text(nb["notebook_json"])
    if result.get("timestamp"):
        (out / "timestamp.txt").write_text(result["timestamp"])
    record(course, result)
    side = {k: v for k, v in result.items() if k != "notebooks"}
    side["notebooks"] = {
        n: {k: v for k, v in nb.items() if k != "notebook_json"} for n, nb in result["notebooks"].items()
    }
    tmp = out / (SIDE_CAR + ".tmp")
    tmp.write_text(json.dumps(side, indent=1))
    tmp.replace(out / SIDE_CAR)


def _score(result):
    cells = [c for nb in result["notebooks"].values() for c in nb["cells"]]
    return sum(c["points"] for c in cells), sum(c["max_points"] for c in cells)


def grade_week(course, week, **options):
    """Grade ``week``'s submissions; returns its Summary. Options as for ``grade_weeks``."""
    return grade_weeks(course, [week], **options)[week]


def grade_weeks(
    course,
    weeks,
    workers=None,
    scheduler=None,
    force=False,
    students=None,
    progress=True,
    limits=None,
    sandbox=True,
    figures=False,
    log=None,
):
    """Grade the submissions of several weeks in one session; returns {week: Summary}.

    All submissions of all weeks go into one queue, so every worker stays busy
    until the very end. ``figures=False`` builds plots without rasterizing
    them: grading needs the tests, not the pictures (see KernelFactory).
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    t0 = time.monotonic()
    limits = limits or Limits()
    for w in detect().warnings if sandbox else ["sandbox disabled (--no-sandbox): student code runs unconfined"]:
        log(f"WARNING: {w}")
    weeks = list(dict.fromkeys(weeks))  # a week named twice is graded once
    for week in weeks:  # every name checked before anything is written
        course.check_week(week)
    summaries, jobs, assignments = {}, [], {}
    with LazyFactory(limits, sandbox=sandbox, name=f"ref{os.getpid()}", figures=figures) as factory:
        for week in weeks:
            summary = summaries[week] = Summary(week)
            try:
                ensure_assignment(course, week)
                week_jobs, summary.skipped, invalid = plan(course, week, force, students)
                summary.failed += invalid
                if week_jobs:
                    assignments[week] = build_assignment(course, week, factory, log=log)
            except (CourseError, NotebookError) as e:
                if len(weeks) == 1:
                    raise
                # One broken week (say, a solution that no longer runs) must not stop the others.
                log(f"WARNING: {week} is not graded: {e}")
                summary.failed.append(("(every student)", f"not graded: {e}"))
                continue
            jobs += week_jobs
    if jobs:
        config = (limits, sandbox, figures)
        n_workers = 0
        for result, n in _run(assignments, jobs, workers, scheduler, config, progress):
            n_workers = max(n_workers, n)
            _account(course, summaries[result["week"]], result)
        for summary in summaries.values():
            summary.workers = n_workers
    elapsed = time.monotonic() - t0
    for summary in summaries.values():
        summary.seconds = elapsed
    return summaries


def _account(course, summary, result):
    student = result["student"]
    summary.notes[student] = list(result.get("notes", []))
    for name, nb in result["notebooks"].items():
        summary.notes[student] += nb.get("notes", [])
        if nb.get("run_status") not in (None, "ok"):
            summary.notes[student].append(f"{name}: {nb['run_detail']}")
    if result["status"] == "error":
        summary.failed.append((student, result["reason"] + " (not recorded; rerun to retry)"))
        return
    write_result(course, result)
    if result["status"] == "failed":
        summary.failed.append((student, result["reason"]))
    else:
        score, mx = _score(result)
        summary.graded.append((student, score, mx, result.get("seconds", 0.0)))


def _run(assignments, jobs, workers, scheduler, config, progress):
    """Yield (result, number of workers) as results complete (in this process when workers == 0)."""
    from tqdm.auto import tqdm

    label = ", ".join(assignments) if len(assignments) == 1 else f"{len(assignments)} weeks"
    bar = tqdm(total=len(jobs), desc=f"grading {label}", unit="nb", disable=not progress, file=sys.stderr)
    if workers == 0 and not scheduler:
        try:
            for job in jobs:
                result = grade_task(assignments[job.week], job, *config)
                bar.update(1)
                yield result, 0
        finally:
            close_worker_factory()
            bar.close()
        return
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        client = Client(scheduler, timeout="30s")
    else:
        n = workers or os.cpu_count() or 1
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            memory_limit=0,
            silence_logs=logging.ERROR,
            plugins={WarmSandbox(*config)},  # each worker warms its sandbox while it starts
        )
        client = Client(cluster)
    try:
        if scheduler:
            client.register_plugin(WarmSandbox(*config))
        n_workers = len(client.scheduler_info()["workers"])
        shared = {w: client.scatter(a, broadcast=True) for w, a in assignments.items()}
        # Longest first (by the solution's run time): no long notebook is left alone at the end.
        ordered = sorted(jobs, key=lambda j: -assignments[j.week].expected_seconds)
        futures = [
            client.submit(grade_task, shared[job.week], job, *config, pure=False, retries=1, priority=-rank)
            for rank, job in enumerate(ordered)
        ]
        by_future = dict(zip(futures, ordered))
        for future in as_completed(futures):
            job = by_future[future]
            try:
                result = future.result()
            except Exception as e:  # noqa: BLE001 - a worker died (killed, out of memory)
                result = error_result(job, f"the grading worker was lost ({type(e).__name__})")
            bar.update(1)
            yield result, n_workers
    finally:
        bar.close()
        client.close()
        if cluster is not None:
            cluster.close()


def collect_results(course, week):
    """Every stored result of ``week`` (the sidecars in autograded/), by student."""
    out = {}
    base = course.root / "autograded"
    if not base.exists():
        return out
    for side in sorted(base.glob(f"*/{week}/{SIDE_CAR}")):
        try:
            out[side.parent.parent.name] = json.loads(side.read_text())
        except (OSError, ValueError):
            continue
    return out


def check_scheduler_address(address):
    if not address.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
        raise CourseError(f"--scheduler expects an address like tcp://host:8786, got {address!r}")
    return address
