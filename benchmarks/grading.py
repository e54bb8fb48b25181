"""`course grade` against serial `nbgrader autograde`, on the real week notebooks.

Every configuration grades the same synthetic submissions (correct, blank,
partial, typical mistakes, for every week) in its own copy of the course,
in the same run:

* nbgrader: `nbgrader autograde WEEK --force` for each week (serial, stock);
* ours: `course grade WEEK` with 2 workers, 1 worker, and 2 workers without
  the sandbox (to price the sandbox).

Reported: throughput ratio, scaling from 1 to 2 workers, and per-notebook
overhead = grading time per notebook minus the notebook's own execution
time (the time its cells take in an already running kernel).
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _course_copy(tmp, name):
    root = Path(tmp) / name
    root.mkdir()
    for part in ("source", "release"):
        shutil.copytree(REPO / part, root / part)
    shutil.copy(REPO / "nbgrader_config.py", root)
    return root


def _env():
    bindir = os.path.dirname(sys.executable)
    return dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"])


def _prepare(root, per_week):
    from grading.course import Course
    from grading.demo import write_class
    from grading.release import release

    course = Course.load(root)
    for week in course.weeks():
        release(course, week)
    write_class(course, root / "submitted", course.weeks(), per_week)
    # Drop the deliberately broken file: nbgrader would crash on it and time nothing useful.
    for p in (root / "submitted").glob("demo_broken"):
        shutil.rmtree(p)
    return course


def _count(root):
    return sum(1 for _ in (root / "submitted").glob("*/*/*.ipynb"))


def time_nbgrader(root):
    t = time.perf_counter()
    for week in sorted(p.name for p in (root / "source").iterdir()):
        subprocess.run(
            [str(Path(sys.executable).parent / "nbgrader"), "autograde", week, "--force"],
            cwd=root,
            env=_env(),
            check=True,
            capture_output=True,
        )
    return time.perf_counter() - t


def time_course(root, workers, sandbox=True):
    from grading.course import Course
    from grading.pipeline import collect_results, grade_week
    from grading.sandbox import Limits

    course = Course.load(root)
    # Build the reference runs first, as an instructor's first `course grade` would; they are
    # cached and not part of grading throughput.
    from grading.grade import build_assignment
    from grading.kernels import KernelFactory

    with KernelFactory(Limits(), sandbox=sandbox) as f:
        for week in course.weeks():
            build_assignment(course, week, f, log=lambda m: None)
    t = time.perf_counter()
    for week in course.weeks():
        grade_week(course, week, workers=workers, force=True, progress=False, sandbox=sandbox, log=lambda m: None)
    wall = time.perf_counter() - t
    results = [r for week in course.weeks() for r in collect_results(course, week).values() if r["status"] == "graded"]
    execs = [r["exec_seconds"] for r in results]
    worker_overhead = [r["seconds"] - r["exec_seconds"] for r in results]
    return wall, execs, worker_overhead


def run(per_week=6):
    rows, data = [], {}
    with tempfile.TemporaryDirectory(prefix="nnbench-") as tmp:
        base = _course_copy(tmp, "base")
        _prepare(base, per_week)
        n = _count(base)
        copies = {k: Path(tmp) / k for k in ("nbgrader", "w2", "w1", "nosandbox")}
        for p in copies.values():
            shutil.copytree(base, p)
        t_nb = time_nbgrader(copies["nbgrader"])
        t2, execs, over2 = time_course(copies["w2"], 2)
        t1, _, _ = time_course(copies["w1"], 1)
        t2n, _, over_ns = time_course(copies["nosandbox"], 2, sandbox=False)
    mean_exec = statistics.mean(execs)
    data = {
        "notebooks": n,
        "nbgrader_s": t_nb,
        "course_2w_s": t2,
        "course_1w_s": t1,
        "course_2w_nosandbox_s": t2n,
        "mean_exec_s": mean_exec,
        "worker_overhead_s": statistics.mean(over2),
        "worker_overhead_nosandbox_s": statistics.mean(over_ns),
    }
    rows.append(
        (
            f"throughput, course grade (2 workers) / nbgrader autograde, {n} notebooks",
            f"{t_nb / t2:.2f}x",
            "goal >= 2.5",
        )
    )
    rows.append(("scaling, 1 -> 2 workers", f"{t1 / t2:.2f}x", "goal >= 1.8"))
    rows.append(
        (
            "per-notebook overhead, course grade (worker side: merge, fork, verdict)",
            f"{statistics.mean(over2):.3f} s",
            "goal <= 0.5 s",
        )
    )
    rows.append(
        (
            "per-notebook overhead, course grade end to end (1 worker: wall/N - exec)",
            f"{t1 / n - mean_exec:.3f} s",
            "goal <= 0.5 s",
        )
    )
    rows.append(("per-notebook overhead, nbgrader autograde (wall/N - exec)", f"{t_nb / n - mean_exec:.3f} s", ""))
    rows.append(
        (
            "sandbox cost per notebook (worker side, with - without)",
            f"{statistics.mean(over2) - statistics.mean(over_ns):+.3f} s",
            "",
        )
    )
    rows.append(("end-to-end, with / without sandbox (2 workers)", f"{t2 / t2n:.2f}x", ""))
    rows.append(("mean notebook execution time (cells only)", f"{mean_exec:.2f} s", ""))
    return rows, data
