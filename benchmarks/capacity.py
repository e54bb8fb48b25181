"""The capacity model of `course grade` (docs/capacity.md), with its numbers measured here.

    .venv/bin/python -m benchmarks.capacity [--runs 3] [--postgres URL] [--simulate 500]

Measures, on this machine:

* seconds per notebook by week: each week's correct demo submission graded on a
  worker's warm sandbox (in this process), ``--runs`` times, median;
* per-task overhead of the pipeline: near-empty notebooks (the toy week of the
  tests) through `grade_weeks` on a loopback Dask cluster with one worker; the
  slope of wall time against the number of submissions, minus their cells' time;
* the client's costs per result: reading a submission (``pack``) and writing a
  result (autograded files + gradebook rows), in SQLite (and PostgreSQL with
  ``--postgres``).

From these it prints how long 1,000 students x 6 weeks take on 1, 8 and 64
workers and what bounds each. Then it checks the model: ``--simulate`` distinct
synthetic submissions (spread over the weeks) on a loopback cluster with 1 and
2 workers, where each worker replaces the notebook's kernel time by a sleep
calibrated from the measured seconds per week (scaled to ``--task-seconds`` on
average). Everything else is real: packing, the scheduler, results travelling
back, the client's writes into a real gradebook. Prints predicted against
measured wall time and the error.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `make bench`: one BLAS thread per kernel
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import nbformat  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CLASS, WORKERS = 1000, (1, 8, 64)
STUDENT = "cap_correct"


# ----- courses and submissions ------------------------------------------------------------
def course_copy(tmp, name="course"):
    """A copy of the repository's course (source, release, config), released into its own gradebook."""
    from grading.authoring.release import release
    from grading.course import Course

    root = Path(tmp) / name
    root.mkdir()
    for part in ("source", "release"):
        shutil.copytree(REPO / part, root / part)
    shutil.copy(REPO / "nbgrader_config.py", root)
    course = Course.load(root)
    for week in course.weeks():
        release(course, week)
    return course


def toy_copy(tmp):
    from grading.authoring.release import release
    from grading.course import Course
    from tests.fixtures import toy

    course = Course.load(toy.make_course(Path(tmp) / "toy"))
    release(course, toy.WEEK)
    return course


def write_correct(course, student, week, tag=""):
    """The demo's correct submission of ``week`` for ``student``; ``tag`` makes its bytes unique."""
    from grading.demo import student_notebook
    from grading.verdict.notebook import cell_role

    folder = course.submitted(student, week)
    folder.mkdir(parents=True, exist_ok=True)
    for name in course.notebooks(week):
        nb = student_notebook(course, week, name)
        if tag:  # a comment in the first solution cell: a different submission, the same grade
            cell = next(c for c in nb.cells if c.cell_type == "code" and cell_role(c) == "solution")
            cell.source += f"\n# {tag}"
        nbformat.write(nb, folder / f"{name}.ipynb")
    (folder / "timestamp.txt").write_text("2026-01-10 10:00:00.000000 UTC")
    return folder


def write_toy(course, n, offset=0):
    """``n`` distinct correct toy submissions (near-empty notebooks); returns their ids."""
    from tests.conftest import release_nb, submit
    from tests.fixtures import toy

    rel = release_nb(course)
    ids = [f"toy{offset + i:04d}" for i in range(n)]
    for i, student in enumerate(ids):
        submit(course, student, toy.solved(rel, answer=f"Because of the origin ({offset + i})."))
    return ids


# ----- measurements -----------------------------------------------------------------------
def assignments(course, weeks):
    """The weeks' trusted bundles (reference runs of the solutions, cached in the course copy)."""
    from grading.sandbox.kernels import KernelFactory
    from grading.sandbox.layers import Limits
    from grading.verdict.grade import build_assignment

    with KernelFactory(Limits(), sandbox=True, figures=False) as factory:
        return {w: build_assignment(course, w, factory, log=lambda m: None) for w in weeks}


def measure_weeks(course, runs):
    """{week: {"seconds", "exec", "result"}}: the correct submission graded on a warm worker sandbox."""
    from grading.sandbox.layers import Limits
    from grading.sandbox.worker import close_worker_factory, environment, grade_task
    from grading.verdict.grade import Job, pack

    weeks = course.weeks()
    bundles = assignments(course, weeks)
    out = {}
    try:
        for week in weeks:
            job = Job(STUDENT, week, str(write_correct(course, STUDENT, week)))
            packed = pack(bundles[week], job)
            results = [
                grade_task(bundles[week], packed, Limits(), True, environment=environment()) for _ in range(runs)
            ]
            bad = [r for r in results if r["status"] != "graded" or _score(r)[0] != _score(r)[1]]
            if bad:
                raise SystemExit(f"{week}: the correct submission did not get full marks: {bad[0].get('reason')}")
            out[week] = {
                "seconds": statistics.median(r["seconds"] for r in results),
                "exec": statistics.median(r["exec_seconds"] for r in results),
                "result": results[-1],
            }
    finally:
        close_worker_factory()
    return out, bundles


def _score(result):
    cells = [c for nb in result["notebooks"].values() for c in nb["cells"]]
    return sum(c["points"] for c in cells), sum(c["max_points"] for c in cells)


def measure_client(course, weeks, measured, bundles, n=30):
    """{week: {"pack", "write"}}: seconds the client spends reading one submission and storing one result."""
    from grading.gradebook.store import ensure_assignment
    from grading.pipeline import write_result
    from grading.verdict.grade import Job, pack

    out = {}
    for week in weeks:
        ensure_assignment(course, week)
        job = Job(STUDENT, week, str(course.submitted(STUDENT, week)))
        t = time.perf_counter()
        for _ in range(n):
            pack(bundles[week], job)
        t_pack = (time.perf_counter() - t) / n
        template = measured[week]["result"]
        results = []
        for i in range(n):
            r = copy.deepcopy(template)
            r["student"] = f"w{i:04d}"
            results.append(r)
        t = time.perf_counter()
        for r in results:
            write_result(course, r)
        out[week] = {"pack": t_pack, "write": (time.perf_counter() - t) / n}
    return out


def measure_overhead(tmp, sizes=(8, 32)):
    """Per-task overhead of the pipeline on a loopback cluster with one worker, from near-empty notebooks.

    Returns {"slope": wall seconds per extra task, "start": the intercept (session start),
    "exec": the cells' seconds, "worker": grade_submission's seconds, per task}.
    """
    from grading.pipeline import collect_results, grade_weeks
    from tests.fixtures import toy
    from tests.test_distributed import loopback_cluster

    course = toy_copy(tmp)
    walls, seconds, execs, offset = [], [], [], 0
    workdir = Path(tmp) / "dask-toy"
    workdir.mkdir()
    with loopback_cluster(workdir, n_workers=1) as address:
        fresh_environment()  # the workers hash their code as they warm up: the client too, now
        warm = write_toy(course, 2, 9000)
        grade_weeks(course, [toy.WEEK], scheduler=address, students=warm, progress=False, log=lambda m: None)
        for n in sizes:
            ids = write_toy(course, n, offset)
            offset += n
            fresh_environment()
            t = time.perf_counter()
            s = grade_weeks(course, [toy.WEEK], scheduler=address, students=ids, progress=False, log=lambda m: None)
            walls.append(time.perf_counter() - t)
            assert len(s[toy.WEEK].graded) == n, s[toy.WEEK].table()
            done = collect_results(course, toy.WEEK)
            seconds += [done[i]["seconds"] for i in ids]
            execs += [done[i]["exec_seconds"] for i in ids]
    slope = (walls[1] - walls[0]) / (sizes[1] - sizes[0])
    return {
        "slope": slope,
        "start": walls[0] - slope * sizes[0],
        "exec": statistics.median(execs),
        "worker": statistics.median(seconds),
    }


def fresh_environment():
    """The client's code hash as of now, as a worker starting now computes it.

    environment() is computed once per process; in a checkout that is being edited,
    a hash from minutes ago would make every freshly started worker refuse the tasks.
    """
    from grading.sandbox.worker import environment

    environment.cache_clear()


def say(msg):
    print(f"[capacity] {msg}", file=sys.stderr, flush=True)


# ----- the model --------------------------------------------------------------------------
def predict(tasks, workers, overhead, start):
    """Wall seconds for ``tasks`` [(worker seconds, client seconds)]: the slower of the two pipelines.

    Workers run in parallel, each task costing its worker seconds plus the pipeline's
    per-task overhead; the single client reads and stores every result one after another.
    """
    work = sum(t + overhead for t, _ in tasks) / workers
    client = sum(c for _, c in tasks)
    return start + max(work, client), ("workers" if work >= client else "client")


def class_table(weeks, measured, client, overhead, start):
    """[(workers, seconds, bound)] for CLASS students, each handing in every week of the course."""
    tasks = [(measured[w]["seconds"], client[w]["pack"] + client[w]["write"]) for w in weeks for _ in range(CLASS)]
    return [(w, *predict(tasks, w, overhead, start)) for w in WORKERS]


def _fmt_time(s):
    return f"{s / 3600:.1f} h" if s >= 5400 else (f"{s / 60:.1f} min" if s >= 90 else f"{s:.0f} s")


# ----- the simulation ---------------------------------------------------------------------
PRELOAD = """
import sys
sys.path.insert(0, {repo!r})
from benchmarks.capacity import simulate_on_worker
simulate_on_worker({config!r})
"""


def simulate_on_worker(config):
    """Worker preload: grade_submission becomes a calibrated sleep returning the week's real result."""
    import grading.sandbox.worker as w

    with open(config, "rb") as f:
        weeks = pickle.load(f)

    def simulated(assignment, job, factory):
        t0 = time.monotonic()
        sleep, template = weeks[job.week]
        time.sleep(sleep)
        result = copy.deepcopy(template)
        result.update(student=job.student, submission_hash=job.parcel.submission_hash)
        result.update(timestamp=job.parcel.timestamp, fingerprint=assignment.fingerprint)
        result["seconds"] = time.monotonic() - t0
        return result

    w.grade_submission = simulated


def simulate(course, tmp, measured, client, overhead, n, task_seconds, worker_counts=(1, 2)):
    """Grade ``n`` distinct submissions with sleeps for kernels; [(workers, predicted, measured)]."""
    from grading.pipeline import grade_weeks
    from tests.test_distributed import loopback_cluster

    weeks = course.weeks()
    scale = task_seconds / statistics.mean(measured[w]["seconds"] for w in weeks)
    sleeps = {w: measured[w]["seconds"] * scale for w in weeks}
    config = Path(tmp) / "simulation.pkl"
    config.write_bytes(pickle.dumps({w: (sleeps[w], measured[w]["result"]) for w in weeks}))
    preload = Path(tmp) / "simulate_preload.py"
    preload.write_text(PRELOAD.format(repo=str(REPO), config=str(config)))
    plan = [(f"sim{i:04d}", weeks[i % len(weeks)]) for i in range(n)]
    small = plan[: 2 * len(weeks)]
    for student, week in plan:
        write_correct(course, student, week, tag=f"simulated submission {student}")
    rows = []
    for workers in worker_counts:
        say(f"simulation: {n} submissions, {workers} worker(s) ...")
        workdir = Path(tmp) / f"dask-sim{workers}"
        workdir.mkdir()
        with loopback_cluster(workdir, n_workers=workers, preload=preload) as address:

            def run(subs):
                assignments(course, weeks)  # a reference run redone (an edited checkout) is not grading time
                fresh_environment()
                t = time.perf_counter()
                ids = [s for s, _ in subs]
                out = grade_weeks(
                    course, weeks, scheduler=address, students=ids, force=True, progress=False, log=lambda m: None
                )
                graded = sum(len(s.graded) for s in out.values())
                # A student id names one week's submission only: the others are "no submission folder".
                assert graded == len(subs), [s.table() for s in out.values()]
                return time.perf_counter() - t

            # The session's fixed cost (six weeks' references, given to the workers) from a small run first.
            t_small = run(small)
            tasks_small = [(sleeps[w], client[w]["pack"] + client[w]["write"]) for _, w in small]
            start = t_small - predict(tasks_small, workers, overhead, 0.0)[0]
            wall = run(plan)
        tasks = [(sleeps[w], client[w]["pack"] + client[w]["write"]) for _, w in plan]
        predicted, bound = predict(tasks, workers, overhead, start)
        rows.append((workers, predicted, wall, bound, start))
    return rows, scale


# ----- main -------------------------------------------------------------------------------
def run(runs=3, postgres=None, simulate_n=500, task_seconds=0.15):
    from grading.course import Course

    data = {}
    with tempfile.TemporaryDirectory(prefix="nncap-") as tmp:
        course = course_copy(tmp)
        weeks = course.weeks()
        say(f"grading each week's correct submission {runs} time(s) ...")
        measured, bundles = measure_weeks(course, runs)
        say("the client's reads and writes ...")
        client = measure_client(course, weeks, measured, bundles)
        if postgres:
            pg = Course.load(course.root, db_url=postgres)
            data["postgres"] = measure_client(pg, weeks, measured, bundles)
        say("per-task overhead: near-empty notebooks on a loopback cluster ...")
        over = measure_overhead(tmp)
        per_task = over["slope"] - over["exec"]  # what a near-empty notebook costs beyond its cells
        dask_overhead = over["slope"] - over["worker"]  # beyond the worker's grade_submission
        table = class_table(weeks, measured, client, dask_overhead, over["start"])
        sim, scale = (
            simulate(course, tmp, measured, client, dask_overhead, simulate_n, task_seconds) if simulate_n else ([], 0)
        )
    data.update(
        weeks={w: {k: v for k, v in m.items() if k != "result"} for w, m in measured.items()},
        client=client,
        overhead=over,
        per_task_overhead=per_task,
        dask_overhead=dask_overhead,
        model=[{"workers": w, "seconds": s, "bound": b} for w, s, b in table],
        simulation={"scale": scale, "rows": sim},
    )
    report(data, weeks)
    return data


def report(data, weeks):
    print("\nseconds per notebook by week (correct submission, warm worker sandbox, median)")
    print(
        f"  {'week':32} {'grade':>8} {'cells':>8} {'pack':>8} {'write':>8}"
        + ("  write(pg)" if "postgres" in data else "")
    )
    for w in weeks:
        m, c = data["weeks"][w], data["client"][w]
        pg = f"  {data['postgres'][w]['write'] * 1000:7.1f} ms" if "postgres" in data else ""
        print(
            f"  {w:32} {m['seconds']:7.2f}s {m['exec']:7.2f}s {c['pack'] * 1000:6.1f}ms {c['write'] * 1000:6.1f}ms{pg}"
        )
    o = data["overhead"]
    client_s = statistics.mean(c["pack"] + c["write"] for c in data["client"].values())
    print(
        f"\nper-task overhead (near-empty notebook, 1 worker): {data['per_task_overhead']:.3f} s "
        f"(wall slope {o['slope']:.3f} s/task, cells {o['exec']:.3f} s, worker {o['worker']:.3f} s; "
        f"pipeline beyond the worker {data['dask_overhead']:.3f} s; session start {o['start']:.1f} s)"
    )
    print(f"client: {1 / client_s:.1f} results/s (read + store, SQLite)")
    if "postgres" in data:
        pg = statistics.mean(c["pack"] + c["write"] for c in data["postgres"].values())
        print(f"client: {1 / pg:.1f} results/s (read + store, PostgreSQL)")
    print(f"\n{CLASS} students x {len(weeks)} weeks ({CLASS * len(weeks)} submissions)")
    for row in data["model"]:
        print(f"  {row['workers']:3d} worker(s): {_fmt_time(row['seconds']):>9}  bound by the {row['bound']}")
    sim = data["simulation"]
    if sim["rows"]:
        print(f"\nsimulation: kernels replaced by sleeps ({sim['scale']:.3f} x the measured seconds per week)")
        for workers, predicted, wall, bound, start in sim["rows"]:
            err = 100 * (wall - predicted) / predicted
            print(
                f"  {workers} worker(s): predicted {predicted:6.1f} s ({bound}-bound, start {start:.1f} s), "
                f"measured {wall:6.1f} s, error {err:+.1f}%"
            )
        if len(sim["rows"]) == 2:
            (_, p1, m1, *_), (_, p2, m2, *_) = sim["rows"]
            print(f"  scaling 1 -> 2 workers: predicted {p1 / p2:.2f}x, measured {m1 / m2:.2f}x")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.capacity", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="gradings per week for the median (default 3)")
    ap.add_argument("--postgres", help="also measure the client's writes into this PostgreSQL gradebook")
    ap.add_argument("--simulate", type=int, default=500, help="synthetic submissions in the simulation (0: none)")
    ap.add_argument("--task-seconds", type=float, default=0.15, help="mean simulated seconds per notebook")
    ap.add_argument("--json", help="write the measurements to this file")
    args = ap.parse_args(argv)
    data = run(args.runs, args.postgres, args.simulate, args.task_seconds)
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=1, default=str))


if __name__ == "__main__":
    sys.exit(main())
