"""The worker side of grading: what runs inside each Dask worker process.

One sandbox with a warm kernel fork server per worker process, created when
the worker starts (WarmSandbox) and reused for every task. This module keeps
its imports to what grading a notebook needs (no gradebook, no database), so
a worker is ready sooner.
"""

import atexit
import os
import sys
import traceback

from distributed.diagnostics.plugin import WorkerPlugin

from .grade import error_reason, grade_submission
from .kernels import KernelFactory, SandboxError, SandboxUnavailable

_FACTORY = None
_FACTORY_KEY = None


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


def grade_task(assignment, job, limits, sandbox, figures=False, unconfined=False):
    """Dask task: grade one submission, never raising for the student's sake.

    A sandbox that failed under a submission (SandboxError) is thrown away and the
    submission graded once more in a new one; a second failure is an "error" result
    (never a score, regraded by the next run).
    """
    if not os.path.isdir(job.folder):
        return error_result(job, f"this worker cannot see {job.folder}: workers need the shared course directory")
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
    """Start each worker's sandbox as soon as the worker starts, before any task arrives."""

    name = "nn-course-sandbox"

    def __init__(self, limits, sandbox, figures=False, unconfined=False):
        self.limits, self.sandbox, self.figures, self.unconfined = limits, sandbox, figures, unconfined

    def setup(self, worker):
        try:
            worker_factory(self.limits, self.sandbox, self.figures, self.unconfined)
        except Exception as e:  # noqa: BLE001 - dask would refuse to start the worker with no clear reason
            # Each task retries and reports the reason in the summary (see grade_task).
            print(f"could not warm the sandbox: {type(e).__name__}: {e}", file=sys.stderr)

    def teardown(self, worker):
        close_worker_factory()
