"""PostgreSQL gradebooks and a real dask.distributed cluster give exactly the serial grades."""

import contextlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grading.course import Course
from grading.pipeline import collect_results, grade_week
from grading.sandbox import worker
from tests.conftest import release_nb, submit
from tests.fixtures import toy
from tests.fixtures.scores import cell_scores

pytestmark = pytest.mark.slow
W = toy.WEEK


def class_of(course, n=6):
    rel = release_nb(course)
    variants = [
        toy.solved(rel),
        rel,
        toy.solved(rel, affine=toy.AFFINE_SOLUTION.replace("X @ W + b", "X @ W")),
        toy.solved(rel, sigmoid=toy.SIGMOID_SOLUTION.replace("-np.abs(z)", "np.abs(z)")),
        toy.solved(rel, sigmoid=None),
        toy.solved(rel, affine=toy.AFFINE_SOLUTION.replace("X @ W + b", "X @ W.T + b")),
    ]
    for i in range(n):
        submit(course, f"s{i:02d}", variants[i % len(variants)])


@pytest.fixture
def serial_scores(toy_course):
    class_of(toy_course)
    grade_week(toy_course, W, workers=0, progress=False)
    return cell_scores(toy_course, W)


@pytest.mark.postgres
def test_parallel_grading_into_postgresql_equals_serial_sqlite(toy_course, serial_scores, postgres_url):
    pg = Course.load(toy_course.root, db_url=postgres_url)
    summary = grade_week(pg, W, workers=2, force=True, progress=False)
    assert len(summary.graded) == 6 and not summary.failed and not summary.errors
    assert cell_scores(pg, W) == serial_scores
    assert pg.db_url.startswith("postgresql://") and "sqlite" not in pg.db_url


@pytest.mark.postgres
def test_concurrent_graders_share_one_postgresql_gradebook(toy_course, serial_scores, postgres_url):
    """Two `course grade` processes at once (half the class each), as two TAs would run them."""
    env = dict(os.environ, COURSE_DB_URL=postgres_url)
    halves = [",".join(f"s{i:02d}" for i in range(0, 3)), ",".join(f"s{i:02d}" for i in range(3, 6))]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "grading.cli",
                "--course",
                str(toy_course.root),
                "grade",
                W,
                "--workers",
                "1",
                "--force",
                "--quiet",
                "--students",
                h,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for h in halves
    ]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    pg = Course.load(toy_course.root, db_url=postgres_url)
    assert cell_scores(pg, W) == serial_scores


def _start(cmd, env, log):
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _hidden(cmd, folder):
    """``cmd`` in a private mount namespace where ``folder`` is an empty tmpfs (nothing is mounted on the host)."""
    script = 'mount -t tmpfs none "$1" && shift && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(folder), *cmd]


@contextlib.contextmanager
def loopback_cluster(workdir, n_workers=2, hide=None, preload=None, late=None):
    """A real `dask scheduler` and ``n_workers`` `dask worker` processes on loopback; yields the address.

    ``hide``: a folder none of them can see (each runs in its own mount namespace, a tmpfs over it).
    ``late``: a path; one more worker starts once a file is there (not waited for).
    """
    bindir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}")
    sched_file = workdir / "scheduler.json"
    log = open(workdir / "dask.log", "w")

    def start(cmd):
        procs.append(_start(_hidden(cmd, hide) if hide else cmd, env, log))

    procs = []
    try:
        dask = str(bindir / "dask")
        start(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"]
            + ["--scheduler-file", str(sched_file)]
        )
        for _ in range(300):
            if sched_file.exists() and sched_file.stat().st_size:
                break
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        worker = [dask, "worker", address, *"--nthreads 1 --nworkers 1 --no-dashboard --memory-limit 0".split()]
        for _ in range(n_workers):
            start(worker + (["--preload", str(preload)] if preload else []))
        from dask.distributed import Client

        with Client(address, timeout="60s") as c:
            if n_workers:
                c.wait_for_workers(n_workers, timeout=120)
        if late:
            start(["sh", "-c", 'while [ ! -e "$0" ]; do sleep 0.1; done; exec "$@"', str(late), *worker])
        yield address
    finally:
        for p in procs[::-1]:
            try:
                os.killpg(p.pid, 15)
                p.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(p.pid, 9)
        log.close()


def results_without_timings(course):
    """Every stored result of the week, minus what depends on timing or on who graded it."""
    timings = ("seconds", "exec_seconds")
    out = {}
    for student, r in collect_results(course, W).items():
        r = {k: v for k, v in r.items() if k not in timings}
        r["notebooks"] = {n: {k: v for k, v in nb.items() if k not in timings} for n, nb in r["notebooks"].items()}
        out[student] = r
    return out


needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"), reason="hiding the course folder needs root and unshare"
)


@needs_root
def test_workers_that_cannot_see_the_course_folder_grade_exactly_like_serial(
    toy_course, serial_scores, tmp_path_factory
):
    """Scheduler and two workers in mount namespaces where the course's parent folder is an empty tmpfs."""
    serial = results_without_timings(toy_course)
    hidden = toy_course.root.parent
    with loopback_cluster(tmp_path_factory.mktemp("dask"), hide=hidden) as address:
        from dask.distributed import Client

        with Client(address, timeout="60s") as c:  # the test means something only if they really cannot see it
            assert set(c.run(os.path.exists, str(toy_course.root)).values()) == {False}
            assert all(v == [] for v in c.run(os.listdir, str(hidden)).values())  # an empty tmpfs
        summary = grade_week(toy_course, W, scheduler=address, force=True, progress=False)

        def weeks_held():  # defined here: it travels by value to workers that cannot import tests/
            from grading.sandbox import worker

            return len(worker._WEEKS)

        with Client(address, timeout="60s") as c:  # the week left the workers with the session
            assert list(c.run(weeks_held).values()) == [0, 0]
    assert toy_course.root.is_dir() and str(hidden) not in Path("/proc/self/mountinfo").read_text()  # host untouched
    assert summary.workers == 2 and len(summary.graded) == 6 and not summary.errors and not summary.failed
    assert cell_scores(toy_course, W) == serial_scores
    assert results_without_timings(toy_course) == serial


def test_a_cluster_with_no_worker_yet_is_said_and_its_first_worker_grades_everything(
    toy_course, serial_scores, tmp_path
):
    """An existing cluster may start workers only when tasks wait (an adaptive one): tasks go, with a warning."""
    said, flag = [], tmp_path / "start a worker"

    def log(message):  # the worker starts only once the warning is said
        said.append(message)
        flag.touch()

    with loopback_cluster(tmp_path, n_workers=0, late=flag) as address:
        summary = grade_week(toy_course, W, scheduler=address, force=True, progress=False, log=log)
    assert [m for m in said if "no worker" in m] == [
        f"WARNING: the cluster at {address} has no worker yet: the submissions wait for one "
        f"(start `dask worker {address}`; Ctrl-C stops, and nothing graded so far is lost)"
    ]
    assert summary.workers == 1 and len(summary.graded) == 6 and not summary.errors
    assert cell_scores(toy_course, W) == serial_scores


PRELOAD = """
import grading.sandbox.worker as w

mine = dict(w.environment(), numpy="0.0.1")
w.worker_environment = lambda: mine
"""


def test_a_worker_with_other_package_versions_grades_nothing(toy_course, tmp_path_factory):
    """A real worker whose numpy differs from the client's: every task is an error naming it, never a score."""
    class_of(toy_course)
    workdir = tmp_path_factory.mktemp("dask")
    (workdir / "other_numpy.py").write_text(PRELOAD)
    with loopback_cluster(workdir, n_workers=1, preload=workdir / "other_numpy.py") as address:
        summary = grade_week(toy_course, W, scheduler=address, force=True, progress=False)
    assert not summary.graded and not summary.failed and len(summary.errors) == 6
    numpy = importlib.metadata.version("numpy")
    for _, reason in summary.errors:
        assert "worker environment differs" in reason and f"numpy 0.0.1 vs {numpy}" in reason
        assert "nbformat" not in reason  # only what differs
    assert not any(score for scores in cell_scores(toy_course, W).values() for score in scores.values())
    assert all(r["status"] == "error" for r in collect_results(toy_course, W).values())


def test_the_version_check_also_guards_grading_in_this_process(toy_course, monkeypatch):
    class_of(toy_course, n=2)
    mine = dict(worker.environment(), nbgrader="0.0.1")
    monkeypatch.setattr(worker, "worker_environment", lambda: mine)
    summary = grade_week(toy_course, W, workers=0, progress=False)
    assert not summary.graded and len(summary.errors) == 2
    assert all("worker environment differs: nbgrader 0.0.1 vs " in reason for _, reason in summary.errors)
