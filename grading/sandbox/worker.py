"""The worker side of grading: what runs inside each Dask worker process.

One sandbox with a warm kernel fork server per worker process, created when
the worker starts (WarmSandbox) and reused for every task. This module keeps
its imports to what grading a notebook needs (no gradebook, no database), so
a worker is ready sooner.

A task carries everything it grades as bytes: the submission, packed by the
client, and the digest of its week, whose Assignment every worker is given
once, as it joins (WeekBundles). A worker needs only the environment: the same
grading code and package versions as the client, checked for every task
(``environment``).
"""

import atexit
import functools
import hashlib
import importlib.metadata
import os
import sys
import traceback
import uuid
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin

from ..collect.cache import assignment_digest
from ..verdict.grade import error_reason, grade_submission
from .kernels import KernelFactory, SandboxError, SandboxUnavailable

_FACTORY = None
_FACTORY_KEY = None
_WEEKS = {}  # assignment digest -> [Assignment, how many WeekBundles hold it] (WeekBundles)
_WARM = 0  # how many sessions' WarmSandbox plugins this worker holds
# What a grade depends on besides the task's own bytes: these packages' versions, and the code below.
PACKAGES = ("numpy", "nbformat", "ipykernel", "nbgrader")
_CODE = {"grading": ("*.py",), "course_lib": ("*.py", "data/*")}  # as installed (pyproject's package data)


@functools.cache
def environment():
    """{what: version} for everything a grade depends on besides the task: compared client <-> worker.

    Computed once per process, near when its code was imported: files edited later on disk
    are not the code this process runs.
    """
    import course_lib

    env = {"python": "{}.{}".format(*sys.version_info[:2])}
    for name in PACKAGES:
        try:
            env[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            env[name] = "not installed"
    roots = {"grading": Path(__file__).resolve().parents[1], "course_lib": Path(course_lib.__file__).parent}
    for package, patterns in _CODE.items():
        env[f"{package} code"] = _code_hash(roots[package], patterns)
    return env


def _code_hash(root, patterns):
    """A hash of ``root``'s files matching ``patterns`` (recursively for "*.py"), names and contents."""
    h = hashlib.sha256()
    files = {p for pattern in patterns for p in (root.rglob(pattern) if pattern == "*.py" else root.glob(pattern))}
    for p in sorted(files):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(p.relative_to(root).as_posix().encode() + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()[:12]


def worker_environment():
    """This worker's environment() (its own name, so a test can pretend another worker)."""
    return environment()


def environment_mismatch(expected):
    """None when this worker's environment is ``expected`` (the client's), else the one-line reason."""
    mine = worker_environment()
    diffs = [f"{k} {mine.get(k, 'missing')} vs {v}" for k, v in expected.items() if mine.get(k, "missing") != v]
    if not diffs:
        return None
    return f"worker environment differs{_worker_address()}: {', '.join(diffs)} (worker vs client)"


def _worker_address():
    from distributed import get_worker

    try:
        return f" ({get_worker().address})"
    except ValueError:  # not in a Dask worker: grading in the client's own process
        return ""


def worker_factory(limits, sandbox, figures=False, unconfined=False):
    """This process's sandbox + fork server, created once and reused for every task.

    ``unconfined=True`` is the instructor's explicit opt-out of isolation (--unconfined);
    without it a machine that cannot sandbox raises SandboxUnavailable.
    """
    global _FACTORY, _FACTORY_KEY
    key = (limits, sandbox, figures, unconfined)
    if _FACTORY is not None and _FACTORY_KEY != key:
        _FACTORY.close()
        _FACTORY = None
    if _FACTORY is None:
        _FACTORY = KernelFactory(
            limits, sandbox=sandbox, name=f"w{os.getpid()}", figures=figures, unconfined=unconfined
        )
        _FACTORY_KEY = key
        atexit.register(close_worker_factory)
    return _FACTORY


def close_worker_factory():
    global _FACTORY
    if _FACTORY is not None:
        _FACTORY.close()
        _FACTORY = None


def grade_task(assignment, job, limits, sandbox, figures=False, unconfined=False, environment=None):
    """Dask task: grade one packed submission (grade.pack), never raising for the student's sake.

    ``environment`` is the client's ``environment()``: a worker whose code or packages
    differ returns an "error" result saying what differs (never a score). A sandbox that
    failed under a submission (SandboxError) is thrown away and the submission graded
    once more in a new one; a second failure is an "error" result (regraded by the next run).
    """
    if environment is None:
        return error_result(job, "not graded: the task carries no environment to check this worker against")
    if mismatch := environment_mismatch(environment):
        return error_result(job, f"not graded: {mismatch}")
    try:
        try:
            return grade_submission(assignment, job, worker_factory(limits, sandbox, figures, unconfined))
        except SandboxError:
            close_worker_factory()
            return grade_submission(assignment, job, worker_factory(limits, sandbox, figures, unconfined))
    except SandboxUnavailable as e:
        return error_result(job, f"not graded: {e}")
    except Exception as e:  # noqa: BLE001 - the grader's fault, reported, batch goes on
        close_worker_factory()  # start from a clean sandbox for the next task
        return error_result(job, error_reason(e), traceback.format_exc())  # the text: instructor-only


def grade_held_task(digest, job, limits, sandbox, figures=False, unconfined=False, environment=None):
    """Dask task: ``grade_task`` against the week this worker was given under ``digest`` (WeekBundles)."""
    held = _WEEKS.get(digest)
    if held is None:
        return error_result(job, "not graded: this worker was not given the week (its plugin failed: see its log)")
    return grade_task(held[0], job, limits, sandbox, figures, unconfined, environment)


def error_result(job, reason, tb=None):
    return {
        "student": job.student,
        "week": job.week,
        "status": "error",
        "reason": reason,
        "traceback": tb,
        "notes": [],
        "notebooks": {},
        "seconds": 0.0,
    }


class WarmSandbox(WorkerPlugin):
    """Start each worker's sandbox as soon as the worker starts, before any task arrives.

    One per session: sessions sharing a cluster each register their own, and the sandbox
    is closed only when the last of them leaves (never under another session's task).
    """

    def __init__(self, limits, sandbox, figures=False, unconfined=False):
        self.limits, self.sandbox, self.figures, self.unconfined = limits, sandbox, figures, unconfined
        self.name = f"nn-course-sandbox-{uuid.uuid4().hex}"

    def setup(self, worker=None):
        global _WARM
        _WARM += 1
        environment()  # hashed now, close to when this worker imported its code
        try:
            worker_factory(self.limits, self.sandbox, self.figures, self.unconfined)
        except Exception as e:  # noqa: BLE001 - dask would refuse to start the worker with no clear reason
            # Each task retries and reports the reason in the summary (see grade_task).
            print(f"could not warm the sandbox: {type(e).__name__}: {e}", file=sys.stderr)

    def teardown(self, worker=None):
        global _WARM
        _WARM -= 1
        if _WARM <= 0:
            close_worker_factory()


class WeekBundles(WorkerPlugin):
    """The weeks of one session (each an Assignment: specs, skeleton, reference run, data files),
    given to every worker once, as it joins; a task names its week by digest (grade_held_task).

    Tasks then depend on no data Dask tracks, so the scheduler sends each to whichever worker
    is free; data a task depended on would pull every task to the workers holding it (Dask's
    memory manager keeps one copy once a worker idles). A worker that joins later gets the
    weeks as it registers. Sessions may share a cluster (say, a class split with --students):
    a week stays on a worker while any session's plugin holds it.
    """

    def __init__(self, assignments):
        self.weeks = {assignment_digest(a): a for a in assignments}
        self.digest = {a.week: d for d, a in self.weeks.items()}
        # One name per session: sessions grading the same weeks at once each hold them, and each removes its own.
        self.name = f"nn-course-weeks-{uuid.uuid4().hex}"

    def setup(self, worker=None):
        for digest, assignment in self.weeks.items():
            _WEEKS.setdefault(digest, [assignment, 0])[1] += 1

    def teardown(self, worker=None):
        for digest in self.weeks:
            held = _WEEKS.get(digest)
            if held is not None:
                held[1] -= 1
                if held[1] <= 0:
                    del _WEEKS[digest]
