"""Grade every submission of a week, in parallel, resumably, into the gradebook.

    summary = grade_week(course, "week2_logistic_regression", workers=2)

Workers are Dask processes (a local cluster sized to the machine, an
existing cluster via ``scheduler="tcp://host:8786"``, or a Dask Gateway's
cluster via ``gateway=GatewayTarget(...)``, grading/gateway.py). Each worker keeps one
sandbox with a warm kernel fork server, so a notebook costs its own cells
plus a few milliseconds. Workers only compute, from bytes: this process
reads each submission (grade.pack) and sends it with the task, the week's
Assignment goes to each worker once, and a worker needs no course folder.
This process writes every result (files and gradebook rows), one at a time,
so SQLite is safe and the outcome does not depend on the number of workers
or their timing.
"""

import contextlib
import functools
import json
import logging
import os
import re
import sys
import time
import traceback
from dataclasses import dataclass, field

from .collect.cache import ResultCache, Twins
from .course import CourseError, check_workers
from .gateway import GatewayTarget, check_gateway, gateway_client
from .gradebook.store import describe_lateness, ensure_assignment, record, record_error, writing_session
from .sandbox.kernels import LazyFactory
from .sandbox.layers import Limits, detect
from .sandbox.worker import (
    WarmSandbox,
    WeekBundles,
    close_worker_factory,
    environment,
    error_result,
    grade_held_task,
    grade_task,
)
from .text import for_terminal
from .verdict.grade import Job, build_assignment, error_reason, pack, submission_hash
from .verdict.notebook import NotebookError

try:  # raised by KernelFactory when it cannot confine student code (fail closed)
    from .sandbox.kernels import SandboxUnavailable
except ImportError:  # pragma: no cover - older kernels.py
    SandboxUnavailable = CourseError

SIDE_CAR = "grading.json"
SECRET = "submission_secret.txt"  # written by `nbgrader submit`; names the feedback released to the student


@dataclass
class Summary:
    week: str
    graded: list = field(default_factory=list)  # (student, score, max, seconds)
    failed: list = field(default_factory=list)  # (student, reason): the submission cannot be graded
    errors: list = field(default_factory=list)  # (student, reason): the grader failed; regraded next run
    skipped: list = field(default_factory=list)  # (student, why)
    notes: dict = field(default_factory=dict)  # student -> [remarks]
    seconds: float = 0.0
    workers: int = 0
    unconfined: bool = False  # student code ran without the sandbox (--unconfined)
    # Where the session's time went (benchmarks/grading.py), in seconds since it started:
    startup: float = 0.0  # until the workers were ready and the first submission could go
    busy: list = field(default_factory=list)  # (start, end) of each submission graded by a worker

    def table(self):
        """The summary for a terminal; every student-controlled string is escaped (for_terminal)."""
        t = for_terminal
        rows = [("student", "status", "score", "time", "reason / notes")]
        for s, score, mx, secs in self.graded:
            rows.append(
                (t(s, 70), "graded", f"{score:g}/{mx:g}", f"{secs:.1f}s", t("; ".join(self.notes.get(s, [])), 240))
            )
        for s, reason in self.failed:
            rows.append((t(s, 70), "FAILED", "", "", t(reason, 120)))
        for s, reason in self.errors:
            rows.append((t(s, 70), "ERROR", "", "", t(reason, 120)))
        for s, why in self.skipped:
            rows.append((t(s, 70), "skipped", "", "", t(why, 120)))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows]
        lines.insert(1, "-" * (sum(widths) + 8 + 20))
        errors = f", {len(self.errors)} grading error(s) (regraded on the next run)" if self.errors else ""
        lines.append(
            f"\n{len(self.graded)} graded, {len(self.failed)} failed{errors}, {len(self.skipped)} skipped "
            f"(grading session: {self.seconds:.1f} s, {self.workers} worker(s))"
        )
        if self.unconfined:
            lines.append("UNCONFINED: student code ran WITHOUT the sandbox (--unconfined); trust these results only")
        return "\n".join(lines)


# ----- client side ------------------------------------------------------------------
def sandbox_refusal():
    """None when grading can confine student code, else the one line that says why not and what to do."""
    caps = detect()
    if caps.bubblewrap:
        return None
    why = getattr(caps, "unavailable", "") or (
        "bubblewrap is turned off by COURSE_NO_BWRAP: unset it"
        if os.environ.get("COURSE_NO_BWRAP")
        else "bubblewrap is not installed or not usable: apt-get install bubblewrap"
    )
    return f"refusing to run student code without the sandbox: {why} (or pass --unconfined, for trusted code only)"


def plan(course, week, force=False, students=None):
    """(jobs, skipped, invalid) for the submissions of ``week``; a bad id or folder rejects only its student."""
    jobs, skipped, invalid = [], [], []
    reserved = course.reserved_names()
    # Read once per week, and only if some result is on disk: about 10 ms a student otherwise.
    known = _Known(course, week)
    for student in students or course.students(week):
        try:
            problem = course.student_problem(student, reserved) or _folder_problem(course, student, week)
        except OSError as e:
            problem = f"cannot read the submission folder ({e.strerror})"
        if problem:
            invalid.append((student, f"{problem}: not graded"))
            continue
        folder = course.submitted(student, week)
        if not force and _up_to_date(course, student, week, folder, known):
            skipped.append((student, "already graded (use --force to regrade)"))
            continue
        jobs.append(Job(student, week, str(folder)))
    return jobs, skipped, invalid


def _folder_problem(course, student, week):
    """Symbolic links are never followed out of submitted/: not for the student's folder, not for the week's."""
    for path in (course.submitted(student), course.submitted(student, week)):
        if path.is_symlink():
            return f"{path.relative_to(course.root)} is a symbolic link"
        if not path.is_dir():
            return f"no submission folder {path.relative_to(course.root)}"
    return None


def _up_to_date(course, student, week, folder, known):
    """Graded before, from the same files and the same grader: only a clean "graded" result counts."""
    side = course.autograded(student, week) / SIDE_CAR
    try:
        done = json.loads(side.read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(done, dict)
        and done.get("status") == "graded"
        and not done.get("infrastructure_error")
        and done.get("submission_hash") == submission_hash(folder)
        and done.get("fingerprint") == known.fingerprint
        and student in known.in_gradebook
    )


class _Known:
    """What deciding a week's regrades needs beyond each student's files, each read once, when first needed."""

    def __init__(self, course, week):
        self.course, self.week = course, week

    @functools.cached_property
    def fingerprint(self):
        from .verdict.grade import fingerprint

        return fingerprint(self.course, self.week)

    @functools.cached_property
    def in_gradebook(self):
        """The students with a submission of the week in the gradebook."""
        from nbgrader.api import MissingEntry

        with self.course.gradebook() as gb:
            try:
                return {s.student_id for s in gb.find_assignment(self.week).submissions}
            except MissingEntry:
                return set()


def write_result(course, result):
    """Store one result: autograded files, the gradebook rows, then the sidecar (the 'done' mark).

    An "error" result (the grader failed) stores no score: its stale graded notebooks
    are removed, the gradebook marks the submission as not autograded, and the
    sidecar keeps the reason, so the result is visible and the next run regrades it.
    """
    student, week = result["student"], result["week"]
    out = course.autograded(student, week)
    out.mkdir(parents=True, exist_ok=True)
    if result["status"] == "error":
        for old in out.glob("*.ipynb"):
            old.unlink()
        record_error(course, result)
    else:
        for name, nb in result["notebooks"].items():
            if nb.get("notebook_json"):
                (out / f"{name}.ipynb").write_text(nb["notebook_json"])
        result["late"] = record(course, result)  # {"seconds_late", "penalty"}, as nbgrader's autograde sets them
    # nbgrader's autograde keeps these two next to the graded notebooks; release_feedback needs them.
    if result.get("timestamp"):
        (out / "timestamp.txt").write_text(result["timestamp"])
    secret = submission_secret(course.submitted(student, week))
    if secret:
        (out / SECRET).write_text(secret)
    else:
        (out / SECRET).unlink(missing_ok=True)
    side = {k: v for k, v in result.items() if k != "notebooks"}
    side["notebooks"] = {
        n: {k: v for k, v in nb.items() if k != "notebook_json"} for n, nb in result["notebooks"].items()
    }
    tmp = out / (SIDE_CAR + ".tmp")
    tmp.write_text(json.dumps(side, indent=1))
    tmp.replace(out / SIDE_CAR)


def submission_secret(folder):
    """The exchange's submission_secret.txt of a submission (``nbgrader submit`` writes 128 hex digits), or None.

    The student's client wrote it, so only a plain file holding a hex string is taken: release_feedback
    names the released page after a hash of it.
    """
    path = folder / SECRET
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 1024:
            return None
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if re.fullmatch(r"[0-9a-fA-F]{32,512}", text) else None


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
    gateway=None,
    force=False,
    students=None,
    progress=True,
    limits=None,
    figures=False,
    log=None,
    unconfined=False,
    reuse=True,
):
    """Grade the submissions of several weeks in one session; returns {week: Summary}.

    All submissions of all weeks go into one queue, so every worker stays busy
    until the very end. ``figures=False`` builds plots without rasterizing
    them: grading needs the tests, not the pictures (see KernelFactory).
    Byte-identical submissions are graded once and the verdicts reused
    (grading/collect/cache.py); ``reuse=False`` (--no-cache) grades every one.

    ``scheduler`` (an address) or ``gateway`` (a GatewayTarget) grades on that cluster
    instead of a local one; either is tried before anything is written.

    Fails closed: without a usable sandbox nothing runs (CourseError, one line),
    unless ``unconfined=True``, the explicit opt-out for trusted code; such a run is
    marked in every result and summary.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    t0 = time.monotonic()
    check_workers(workers)
    if scheduler and gateway:
        raise CourseError("--scheduler and --gateway name two clusters: give one")
    if scheduler:
        check_scheduler_address(scheduler)  # unreachable: one line now, not a 30 s wait behind the bar
    if gateway:
        scheduler = check_gateway(gateway)  # its address, credentials and cluster, each one line if wrong
    limits = limits or Limits()
    if not unconfined and (refusal := sandbox_refusal()):
        raise CourseError(refusal)  # before anything starts: no Dask, no kernel, nothing written
    warnings = ["--unconfined: student code runs WITHOUT the sandbox"] if unconfined else detect().warnings
    for w in warnings:
        log(f"WARNING: {w}")
    weeks = list(dict.fromkeys(weeks))  # a week named twice is graded once
    for week in weeks:  # every name checked before anything is written
        course.check_week(week)
    summaries, jobs, assignments = {}, [], {}
    try:
        options = {"sandbox": not unconfined, "figures": figures, "unconfined": unconfined}
        with LazyFactory(limits, name=f"ref{os.getpid()}", **options) as factory:
            for week in weeks:
                summary = summaries[week] = Summary(week, unconfined=unconfined)
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
                    log(f"WARNING: {week} is not graded: {for_terminal(e)}")
                    summary.failed.append(("(every student)", f"not graded: {e}"))
                    continue
                jobs += week_jobs
    except SandboxUnavailable as e:
        raise CourseError(f"refusing to run student code: {e}") from e
    timeline = Timeline(t0)
    if jobs:
        config = (limits, not unconfined, figures)
        n_workers = 0
        cache = ResultCache(enabled=reuse)
        with writing_session(course):
            runs = _run(assignments, jobs, workers, scheduler, config, progress, unconfined, cache, timeline, log)
            for result, n in runs:
                n_workers = max(n_workers, n)
                result["unconfined"] = unconfined
                _account(course, summaries[result["week"]], result)
        for summary in summaries.values():
            summary.workers = n_workers
    elapsed = time.monotonic() - t0
    for summary in summaries.values():
        summary.seconds = elapsed
        summary.startup, summary.busy = timeline.startup, timeline.busy
    return summaries


def _account(course, summary, result):
    """File one result in the summary and store it; a failure to store rejects only this student."""
    student = result["student"]
    summary.notes[student] = list(result.get("notes", []))
    for name, nb in result["notebooks"].items():
        summary.notes[student] += nb.get("notes", [])
        if nb.get("run_status") not in (None, "ok"):
            summary.notes[student].append(f"{name}: {nb['run_detail']}")
    try:
        write_result(course, result)
    except Exception as e:  # noqa: BLE001 - one result must never abort the run
        # Storing fails for the instructor's reasons (the gradebook, the late-plugin setting): say which.
        summary.errors.append((student, f"the result could not be stored ({type(e).__name__}: {e})"))
        return
    if late := describe_lateness(**result.get("late", {"seconds_late": 0, "penalty": 0})):
        summary.notes[student].insert(0, late)  # from the gradebook's due date and nbgrader's late plugin
    if result["status"] == "error":
        summary.errors.append((student, result["reason"] + " (recorded; regraded on the next run)"))
    elif result["status"] == "failed":
        summary.failed.append((student, result["reason"]))
    else:
        score, mx = _score(result)
        summary.graded.append((student, score, mx, result.get("seconds", 0.0)))


class Timeline:
    """When the workers were ready, and when each submission was graded, in seconds since ``t0``."""

    def __init__(self, t0):
        self.t0, self.startup, self.busy = t0, 0.0, []

    def ready(self):
        self.startup = time.monotonic() - self.t0

    def done(self, result, at=None):
        """``result`` came back ``at`` (default: now), after ``seconds`` on its worker (a reused one ran nowhere)."""
        if result.get("seconds") and not result.get("reused_from_identical"):
            end = (at or time.monotonic()) - self.t0
            self.busy.append((end - result["seconds"], end))


def _run(
    assignments, jobs, workers, scheduler, config, progress, unconfined=False, cache=None, timeline=None, log=None
):
    """Yield (result, number of workers) as results complete (in this process when workers == 0).

    ``scheduler``: None (a local cluster), a scheduler's address or a GatewayTarget.

    A submission byte-identical to one graded (or being graded) in this session
    waits for that one's result and gets a copy of its verdicts (``cache``).
    """
    from tqdm.auto import tqdm

    log = log or (lambda msg: print(msg, file=sys.stderr))
    cache = cache or ResultCache(enabled=False)
    timeline = timeline or Timeline(time.monotonic())

    opts = {"unconfined": unconfined}  # the explicit opt-out, down to every worker's KernelFactory
    env = environment()  # every worker must match it (code and package versions), or grades nothing

    label = ", ".join(assignments) if len(assignments) == 1 else f"{len(assignments)} weeks"

    def new_bar():
        return tqdm(total=len(jobs), desc=f"grading {label}", unit="nb", disable=not progress, file=sys.stderr)

    if workers == 0 and not scheduler:
        bar = new_bar()
        timeline.ready()
        try:
            for job in jobs:
                packed = pack(assignments[job.week], job)
                key = cache.key(assignments[job.week], packed, config, env)
                result = cache.get(key, packed)
                if result is None:
                    result = _in_process(assignments[job.week], packed, config, opts, env)
                    timeline.done(result)
                    cache.put(key, result)
                bar.update(1)
                yield result, 0
        finally:
            close_worker_factory()
            bar.close()
        return
    from dask.distributed import Client, as_completed

    weeks = WeekBundles(assignments.values())  # every worker is given the weeks once, as it joins
    plugins = (WarmSandbox(*config, **opts), weeks)  # this session's: removed from a remote cluster at its end
    cluster, gateway = None, contextlib.ExitStack()
    if isinstance(scheduler, GatewayTarget):  # a cluster started here is shut down when grading ends
        client = gateway.enter_context(gateway_client(scheduler))
    elif scheduler:  # reachable a moment ago (check_scheduler_address); a silent peer still must not hang
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as e:
            raise CourseError(f"cannot connect to the Dask scheduler at {for_terminal(scheduler, 200)} ({e})") from None
    else:
        cluster = _local_cluster(workers or os.cpu_count() or 1, *plugins)
        client = Client(cluster)
    bar = new_bar()  # only once the workers are there: a failure to connect is not drawn as progress
    try:
        if scheduler:
            for plugin in plugins:
                client.register_plugin(plugin)
        n_workers = _worker_count(client)
        if not n_workers:  # an existing cluster may start workers only once tasks wait (an adaptive one)
            log(_no_worker_yet(scheduler))
        counted = time.monotonic()
        timeline.ready()
        # Longest first (by the solution's run time): no long notebook is left alone at the end.
        ordered = sorted(jobs, key=lambda j: -assignments[j.week].expected_seconds)
        todo = list(enumerate(ordered))[::-1]  # popped from the end: longest first
        by_future, running = {}, as_completed()
        back_at = {}  # future key -> when it finished (this process may be busy writing another result then)
        twins, ready = Twins(cache), []  # submissions identical to one in flight; results to yield

        def submit_next():
            """Read the next submission here (the client) and send it, as bytes, with its task."""
            rank, job = todo.pop()
            packed = pack(assignments[job.week], job)
            key = cache.key(assignments[job.week], packed, config, env)
            if (hit := cache.get(key, packed)) is not None:
                ready.append(hit)
            elif not twins.wait(key, packed):  # a twin waits, without its bytes, for the one in flight
                options = {**opts, "environment": env, "pure": False, "retries": 1, "priority": -rank}
                future = client.submit(grade_held_task, weeks.digest[packed.week], packed, *config, **options)
                by_future[future] = (packed, key)
                future.add_done_callback(lambda f: back_at.setdefault(f.key, time.monotonic()))
                running.add(future)

        def held():
            return len(by_future) + len(ready)

        while True:
            # A few tasks per worker in flight, not the whole class: the submissions' bytes wait here, on disk.
            while todo and held() < 2 * max(n_workers, 1) + 4:
                submit_next()
            if ready:
                result = ready.pop(0)
            elif by_future:
                future = next(running)
                packed, key = by_future.pop(future)
                try:
                    result = future.result()
                except Exception as e:  # noqa: BLE001 - a worker died (killed, out of memory)
                    result = error_result(packed, f"the grading worker was lost ({type(e).__name__})")
                timeline.done(result, back_at.pop(future.key, None))
                if scheduler and (not n_workers or time.monotonic() - counted > 5):  # workers join, clusters grow
                    n_workers, counted = max(n_workers, _worker_count(client)), time.monotonic()
                reused, again = twins.back(key, result)
                ready += reused
                todo.extend((0, job) for job in reversed(again))  # next, before the rest
            else:
                break
            bar.update(1)
            yield result, n_workers
    finally:
        bar.close()
        if scheduler and client.status == "running":  # the weeks and the warm sandbox leave with this session
            for plugin in plugins:
                with contextlib.suppress(Exception):  # a cluster that is gone took them along
                    client.unregister_worker_plugin(plugin.name)
        client.close()
        if cluster is not None:
            cluster.close()
        gateway.close()


def _worker_count(client):
    """How many workers the cluster has now (one round trip; the workers' details are not fetched)."""
    return client.scheduler_info(n_workers=0)["n_workers"]


def _no_worker_yet(scheduler):
    """The warning for an existing cluster with no worker: tasks wait, and the instructor knows why."""
    if isinstance(scheduler, GatewayTarget):
        where, how = "the cluster", ""
    else:
        shown = for_terminal(scheduler, 200)
        where, how = f"the cluster at {shown}", f"start `dask worker {shown}`; "
    wait = f"the submissions wait for one ({how}Ctrl-C stops, and nothing graded so far is lost)"
    return f"WARNING: {where} has no worker yet: {wait}"


# What grading wants from every Dask cluster it runs on: set here for a local one; the image
# (deploy/Containerfile) and the lab recipe (docs/cluster.md) set the same for remote ones.
DASK_SETTINGS = {
    # A worker holds only the task it runs, once more tasks wait than the workers have threads
    # twice over (Dask queues only then): the next goes to the first worker that is free.
    "distributed.scheduler.worker-saturation": 1.0,
    # Dask's background work, which takes CPU from the kernels when every core grades: an
    # event-loop check 50 times a second in every process, a statistical profiler sampling
    # each worker 100 times a second, and work stealing, which has little to move then.
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.profile.enabled": False,
    "distributed.scheduler.work-stealing": False,
}

# Sandbox switches a worker reads from its environment (grading/sandbox/layers.py): "" is unset.
_SANDBOX_SWITCHES = ("COURSE_NO_BWRAP", "COURSE_NO_CGROUP", "COURSE_SANDBOX_TMP")


def _local_cluster(n_workers, *plugins):
    """``n_workers`` worker processes on this machine, each running ``plugins`` as it starts (WarmSandbox, WeekBundles).

    The workers fork from a server that imported Dask once ("forkserver"), instead of each
    starting an interpreter that imports it again: on two cores they no longer compete for
    the CPU at the start, and they exit sooner at the end. The server lives as long as this
    process, so each worker is given this process's environment now.

    DASK_SETTINGS: a worker holds only the task it runs, so the next submission (longest
    first) never waits behind a busy worker while another idles; and Dask's background
    work is turned down, which with a worker on every core slowed each task by 6-10%.
    """
    import dask
    from dask.distributed import LocalCluster

    env = {**{k: "" for k in _SANDBOX_SWITCHES}, **os.environ}
    settings = {"distributed.worker.multiprocessing-method": "forkserver", **DASK_SETTINGS}
    with dask.config.set(settings):
        return LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            memory_limit=0,
            silence_logs=logging.ERROR,
            plugins=set(plugins),
            env=env,
        )


def _in_process(assignment, job, config, opts, env):
    """grade_task in this process; even an exception that escapes it becomes this student's error."""
    try:
        return grade_task(assignment, job, *config, **opts, environment=env)
    except Exception as e:  # noqa: BLE001 - one result must never abort the run
        return error_result(job, error_reason(e), traceback.format_exc())  # the text: instructor-only


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


def check_scheduler_address(address, timeout=5.0):
    """``address`` when it names a Dask scheduler that accepts connections; else one CourseError line.

    A TCP connection is tried first (a few seconds at most), so an unreachable cluster
    fails before anything is graded instead of after Dask's long connect timeout.
    """
    import socket
    from urllib.parse import urlsplit

    shown = for_terminal(address, 200)
    if address.startswith("gateway://"):  # needs the gateway's TLS credentials, which only its API gives
        raise CourseError(f"--scheduler {shown} is a Dask Gateway cluster: use --gateway URL --cluster NAME")
    if not address.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
        raise CourseError(f"--scheduler expects an address like tcp://host:8786, got {shown}")
    if not address.startswith(("tcp://", "tls://")):
        return address
    try:
        parts = urlsplit(address)
        host, port = parts.hostname, parts.port or 8786
    except ValueError as e:
        raise CourseError(f"--scheduler {shown}: {e}") from None
    if not host:
        raise CourseError(f"--scheduler expects an address like tcp://host:8786, got {shown}")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        why = "no answer" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise CourseError(
            f"cannot reach the Dask scheduler at {shown} ({why}): start it with `dask scheduler` or check the address"
        ) from None
    return address
