"""PostgreSQL gradebooks and a real dask.distributed cluster give exactly the serial grades."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grading.course import Course
from grading.gradebook import cell_scores
from grading.pipeline import grade_week
from tests.conftest import release_nb, submit
from tests.fixtures import toy

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


def test_grading_through_an_existing_dask_scheduler_with_two_workers(toy_course, serial_scores, tmp_path):
    """A real `dask scheduler` and two `dask worker` processes on loopback, as on several machines."""
    bindir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}")
    sched_file = tmp_path / "scheduler.json"
    log = open(tmp_path / "dask.log", "w")
    procs = [
        _start(
            [
                str(bindir / "dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(sched_file),
            ],
            env,
            log,
        )
    ]
    try:
        for _ in range(300):
            if sched_file.exists() and sched_file.stat().st_size:
                break
            time.sleep(0.1)
        import json

        address = json.loads(sched_file.read_text())["address"]
        for _ in range(2):
            procs.append(
                _start(
                    [
                        str(bindir / "dask"),
                        "worker",
                        address,
                        "--nthreads",
                        "1",
                        "--nworkers",
                        "1",
                        "--no-dashboard",
                        "--memory-limit",
                        "0",
                    ],
                    env,
                    log,
                )
            )
        from dask.distributed import Client

        with Client(address, timeout="60s") as c:
            c.wait_for_workers(2, timeout=120)
        summary = grade_week(toy_course, W, scheduler=address, force=True, progress=False)
        assert summary.workers == 2 and len(summary.graded) == 6
        assert cell_scores(toy_course, W) == serial_scores
    finally:
        for p in procs[::-1]:
            try:
                os.killpg(p.pid, 15)
                p.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(p.pid, 9)
        log.close()
