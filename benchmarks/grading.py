"""`course grade` against nbgrader run two students at a time, on one week's real notebooks.

The class: ``BENCH_STUDENTS`` (default 20) submissions of one week that all differ,
as in a real class: the demo's synthetic students (correct, blank, partial, typical
mistakes) with each student's own comments, notes and extra output. Each
configuration grades the same class in its own copy of the course, in the same run:

* baseline: ``ls submitted | xargs -P 2 nbgrader autograde WEEK --student ID``, stock
  nbgrader two students at a time, every plot drawn into the graded notebook;
* ``course grade --figures`` (the same work, plots drawn), 2 workers;
* ``course grade`` (plots built, not drawn), 2 workers and 1 worker (scaling);
* scaling from 1 to 2 workers, with each session's serial part (start-up, the time
  fewer workers than started are grading, the end) from its Summary's timeline;
* identical scores: every student's per-cell scores in nbgrader's gradebook must equal
  ours, or the bench stops (AssertionError);
* reuse: a class where 20% hand in the blank release unchanged, with and without the
  cache of identical submissions (grading/collect/cache.py);
* a profile of one `course grade` session graded in this process (workers=0), so the
  client and the worker side show in one cProfile: where the time goes.

``BENCH_QUICK=1`` grades 6 students, once each (a quick check, not a measurement);
``python -m benchmarks scaling`` runs only the scaling part (1 and 2 workers);
``BENCH_STUDENTS``, ``BENCH_WEEK`` and ``BENCH_COURSE`` (another copy of the course) change the class.
"""

import cProfile
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
# Where source/ and release/ come from: this checkout, or (BENCH_COURSE) another copy of the course,
# e.g. `git archive HEAD source release nbgrader_config.py` while notebooks are being edited here.
COURSE = Path(os.environ.get("BENCH_COURSE", REPO))
WEEK = os.environ.get("BENCH_WEEK", "week2_logistic_regression")
QUICK = bool(os.environ.get("BENCH_QUICK"))
STUDENTS = int(os.environ.get("BENCH_STUDENTS", 6 if QUICK else 20))
ROUNDS = 1 if QUICK else 2
BLANK_SHARE = 0.2


def _course_copy(tmp, name):
    root = Path(tmp) / name
    root.mkdir()
    for part in ("source", "release"):
        shutil.copytree(COURSE / part / WEEK, root / part / WEEK)
    shutil.copy(COURSE / "nbgrader_config.py", root)
    return root


def _env():
    bindir = os.path.dirname(sys.executable)
    return dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"])


# ----- the class ----------------------------------------------------------------------
def _personal(nb, i):
    """Student ``i``'s own touches: a comment in their first answer, and for some a note or extra output."""
    nb = nbformat.from_dict(nb)
    answers = [c for c in nb.cells if c.cell_type == "code" and (c.metadata.get("nbgrader") or {}).get("solution")]
    if answers:
        answers[0].source += f"\n# student {i}: checked the shapes by hand"
    if i % 3 == 0:
        nb.cells.append(nbformat.v4.new_code_cell(f'print("student {i} is done:", {i} * 2)'))
    if i % 4 == 1:
        nb.cells.insert(1, nbformat.v4.new_markdown_cell(f"My notes (student {i}): re-read the lecture first."))
    return nb


def _variants(course):
    """The demo's synthetic students of WEEK: correct, blank, half done, each catalogued mistake alone."""
    from grading.demo import load_mistakes, student_notebook

    names = course.notebooks(WEEK)
    src = nbformat.read(course.source(WEEK) / f"{names[0]}.ipynb", 4)
    ids = [(c.metadata.get("nbgrader") or {}).get("grade_id") for c in src.cells if c.cell_type == "code"]
    ids = [i for i in ids if i]
    variants = [{}, {"solved": set()}, {"solved": set(ids[::2])}]
    variants += [{"mistakes": [m]} for m in load_mistakes(WEEK)]
    out = []
    for kwargs in variants:
        try:
            out.append({n: student_notebook(course, WEEK, n, **kwargs) for n in names})
        except ValueError:  # a mistake the catalogue and the notebook disagree on (being edited): skip it
            continue
    return out


def write_varied_class(course, n, blank_share=0.0):
    """``n`` submissions of WEEK that all differ, except a ``blank_share`` handing in the release unchanged."""
    variants = _variants(course)
    n_blank = round(n * blank_share)
    for i in range(n):
        d = course.root / "submitted" / f"s{i:03d}" / WEEK
        d.mkdir(parents=True)
        for name in course.notebooks(WEEK):
            if i < n_blank:  # the release, byte for byte
                shutil.copy(course.release(WEEK) / f"{name}.ipynb", d / f"{name}.ipynb")
            else:
                nbformat.write(_personal(variants[i % len(variants)][name], i), d / f"{name}.ipynb")
        (d / "timestamp.txt").write_text(f"2026-01-{10 + i % 18:02d} 10:{i % 60:02d}:00.000000 UTC")


def _prepare(root, n, blank_share=0.0):
    from grading.authoring.release import release
    from grading.course import Course

    course = Course.load(root)
    release(course, WEEK)
    write_varied_class(course, n, blank_share)
    return course


# ----- the configurations --------------------------------------------------------------
def time_nbgrader_parallel(root, parallel=2):
    """``xargs -P 2 nbgrader autograde WEEK --student ID``: wall seconds."""
    students = "\n".join(sorted(p.name for p in (root / "submitted").iterdir())) + "\n"
    nbgrader = str(Path(sys.executable).parent / "nbgrader")
    cmd = ["xargs", "-P", str(parallel), "-I{}", nbgrader, "autograde", WEEK, "--student", "{}", "--force"]
    t = time.perf_counter()
    run = subprocess.run(cmd, cwd=root, env=_env(), input=students, text=True, capture_output=True)
    wall = time.perf_counter() - t
    if run.returncode:
        raise AssertionError(f"nbgrader autograde failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
    return wall


def _fresh_environment():
    """The client hashes its code now, as the workers it starts now will (the checkout may be edited)."""
    from grading.sandbox.worker import environment

    environment.cache_clear()


def build_reference(root, figures):
    """The reference run, cached per version of the course as after an instructor's first `course grade`."""
    from grading.course import Course
    from grading.sandbox.kernels import KernelFactory
    from grading.sandbox.layers import Limits
    from grading.verdict.grade import build_assignment

    with KernelFactory(Limits(), sandbox=True, figures=figures) as f:
        build_assignment(Course.load(root), WEEK, f, log=lambda m: None)


def time_course(root, workers, sandbox=True, figures=False, reuse=True):
    """One `course grade WEEK --force` session: (wall seconds, graded results, session_phases)."""
    from grading.course import Course
    from grading.pipeline import collect_results, grade_weeks

    course = Course.load(root)
    build_reference(root, figures)
    _fresh_environment()
    t = time.perf_counter()
    summary = grade_weeks(
        course,
        [WEEK],
        workers=workers,
        force=True,
        progress=False,
        unconfined=not sandbox,
        figures=figures,
        log=lambda m: None,
        reuse=reuse,
    )[WEEK]
    wall = time.perf_counter() - t
    if summary.failed or summary.errors:
        raise AssertionError(f"course grade did not grade everything: {summary.failed + summary.errors}")
    results = [r for r in collect_results(course, WEEK).values() if r["status"] == "graded"]
    return wall, results, session_phases(summary, wall, workers)


def session_phases(summary, wall, workers):
    """Where one session's wall time went, from its Summary's timeline (seconds).

    start-up (until the workers are ready), every worker grading, fewer grading (the
    last task running alone, gaps between tasks), the end (last writes, workers
    closing). The serial fraction is the share of the wall time not all workers grade.
    """
    start, busy = summary.startup, summary.busy
    edges = sorted([(max(s, start), 1) for s, _ in busy] + [(e, -1) for _, e in busy])
    level, prev, full = 0, start, 0.0
    for t, step in edges:
        if level >= workers:
            full += t - prev
        level, prev = level + step, t
    last = max((e for _, e in busy), default=start)
    tasks = [e - s for s, e in busy]
    return {
        "startup_s": start,
        "all_busy_s": full,
        "fewer_busy_s": last - start - full,
        "end_s": wall - last,
        "serial_fraction": (wall - full) / wall,
        "task_mean_s": statistics.mean(tasks) if tasks else 0.0,
        "work_s": sum(tasks),
    }


def scaling_rows(t1, p1, t2, p2):
    """The 1 -> 2 workers ratio, and each session's phases, so the ratio can be explained."""

    def phases(t, p, label):
        return (
            f"  {label}, {t:.1f} s: start-up {p['startup_s']:.1f} s, all grading {p['all_busy_s']:.1f} s, "
            f"fewer {p['fewer_busy_s']:.1f} s, end {p['end_s']:.1f} s",
            f"{p['serial_fraction']:.0%}",
            "serial fraction",
        )

    return [
        ("scaling, 1 -> 2 workers (wall)", f"{t1 / t2:.2f}x", "goal >= 1.8"),
        phases(t2, p2, "2 workers"),
        phases(t1, p1, "1 worker"),
        (
            "  mean task on a worker, 1 / 2 workers (two tasks and the client share the cores)",
            f"{p1['task_mean_s']:.2f} / {p2['task_mean_s']:.2f} s",
            "",
        ),
        (
            "  scaling of the grading alone (1 worker's task time / 2 workers' per worker)",
            f"{p1['work_s'] / (p2['work_s'] / 2):.2f}x",
            "no serial part: the bound",
        ),
    ]


def run_scaling(n=STUDENTS, rounds=ROUNDS):
    """Only the scaling part: 1 and 2 workers on the same class, best of ``rounds`` each."""
    with tempfile.TemporaryDirectory(prefix="nnbench-") as tmp:
        base = _course_copy(tmp, "base")
        _prepare(base, n)
        copies = {w: Path(tmp) / f"w{w}" for w in (2, 1)}
        for p in copies.values():
            shutil.copytree(base, p)
        runs = {w: [] for w in copies}
        # The first session of this process also starts Dask's fork server (as every `course grade`
        # does): 2 workers go first, so that cost counts against the scaling, not for it.
        for _ in range(rounds):
            for w, root in copies.items():
                runs[w].append(time_course(root, w))
    (t2, _, p2), (t1, _, p1) = _best(runs[2]), _best(runs[1])
    data = {"week": WEEK, "notebooks": n, "course_2w_s": t2, "course_1w_s": t1, "phases_2w": p2, "phases_1w": p1}
    return scaling_rows(t1, p1, t2, p2), data


def check_same_scores(ours, theirs, what):
    """Per student and cell, the scores of two gradebooks are equal; else AssertionError (the bench stops)."""
    from grading.course import Course
    from tests.fixtures.scores import cell_scores

    a, b = cell_scores(Course.load(ours), WEEK), cell_scores(Course.load(theirs), WEEK)
    if a != b or not a:
        diff = {s: (a.get(s), b.get(s)) for s in sorted(set(a) | set(b)) if a.get(s) != b.get(s)}
        raise AssertionError(f"scores differ ({what}), student: (ours, theirs): {diff or 'no students'}")
    return len(a)


def kernel_cycle(unconfined, n=20, rounds=3):
    """Seconds per notebook for a fresh kernel, one cell and the clean-up (best of ``rounds``).

    Sandboxed, this is the whole per-notebook isolation: new namespaces, a fresh
    size-capped tmpfs, the checks that prove it empty, capabilities dropped, seccomp.
    """
    from grading.sandbox.execute import run_notebook
    from grading.sandbox.kernels import KernelFactory
    from grading.sandbox.layers import Limits

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1 + 1")])
    best = float("inf")
    with KernelFactory(Limits(), sandbox=not unconfined, figures=False, unconfined=unconfined) as f:
        for _ in range(rounds):
            t = time.perf_counter()
            for _ in range(n):
                kernel = f.fresh_kernel()
                try:
                    run_notebook(nb, kernel, f.limits)
                finally:
                    f.recycle()
            best = min(best, (time.perf_counter() - t) / n)
    return best


# ----- where the time goes ------------------------------------------------------------
# (label, functions whose cumulative time it is): the first match of each top-level stage.
STAGES = [
    ("notebook cells (the kernel running them; figures drawn there)", ("execute.py:run_notebook",)),
    ("kernel start + clean-up (fork, sandbox checks)", ("fresh_kernel", "kernels.py:recycle")),
    ("reading submissions (client: pack)", ("grade.py:pack",)),
    ("merge with the trusted skeleton", ("notebook.py:merge",)),
    ("verdicts (judge, own-work checks)", ("verdict/judge.py:judge", "ownwork.py:static_findings", "runtime_findings")),
    ("graded notebook built (inert outputs)", ("_autograded_notebook",)),
    ("notebook serialization (nbformat.writes)", ("nbformat/__init__.py:writes",)),
    ("client writes: files + gradebook rows", ("pipeline.py:write_result",)),
]


def profile_session(root, figures=False):
    """cProfile of one in-process session (client and worker side): [(stage, seconds per notebook)], top functions."""
    from grading.course import Course
    from grading.pipeline import grade_weeks

    course = Course.load(root)
    build_reference(root, figures)
    n = sum(1 for _ in (root / "submitted").glob(f"*/{WEEK}"))
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    grade_weeks(course, [WEEK], workers=0, force=True, progress=False, figures=figures, log=lambda m: None)
    prof.disable()
    wall = time.perf_counter() - t
    stats = pstats.Stats(prof)
    cumulative = {}
    for (file, _line, fn), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
        cumulative[f"{file}:{fn}"] = max(cumulative.get(f"{file}:{fn}", 0.0), ct)
    stages = []
    for label, needles in STAGES:
        secs = sum(max((v for k, v in cumulative.items() if needle in k), default=0.0) for needle in needles)
        stages.append((label, secs / n))
    accounted = sum(s for _, s in stages)
    stages.append(("everything else (Python in the client/worker)", wall / n - accounted))
    top = sorted(
        ((tt, f"{Path(file).name}:{fn}") for (file, _l, fn), (_cc, _nc, tt, _ct, _c) in stats.stats.items()),
        reverse=True,
    )[:8]
    return wall / n, sorted(stages, key=lambda s: -s[1]), top


def _mean(results, key):
    return statistics.mean(r[key] for r in results)


def _best(runs):
    return min(runs, key=lambda x: x[0])


def run(n=STUDENTS, rounds=ROUNDS):
    with tempfile.TemporaryDirectory(prefix="nnbench-") as tmp:
        base = _course_copy(tmp, "base")
        _prepare(base, n)
        blanks = _course_copy(tmp, "blanks")  # the same class size, 20% blank releases
        _prepare(blanks, n, BLANK_SHARE)
        copies = {k: Path(tmp) / k for k in ("nbgrader", "figures2", "w2", "w1", "profile")}
        for p in copies.values():
            shutil.copytree(base, p)
        cached, uncached = Path(tmp) / "cached", Path(tmp) / "uncached"
        shutil.copytree(blanks, cached)
        shutil.copytree(blanks, uncached)
        # Every configuration runs `rounds` times in turn and keeps its fastest run: the
        # machine is shared and noisy, and a neighbour's burst only ever makes a run slower.
        configs = {  # name: (workers, figures)
            "figures2": (2, True),  # all nbgrader does: every plot rasterized into the graded notebook
            "w2": (2, False),
            "w1": (1, False),
        }
        runs, nbgrader_runs, reuse_runs = {k: [] for k in configs}, [], {"cached": [], "uncached": []}
        for _ in range(rounds):
            nbgrader_runs.append(time_nbgrader_parallel(copies["nbgrader"]))
            for k, (workers, figures) in configs.items():
                runs[k].append(time_course(copies[k], workers, figures=figures))
            reuse_runs["cached"].append(time_course(cached, 2, reuse=True))
            reuse_runs["uncached"].append(time_course(uncached, 2, reuse=False))
        checked = check_same_scores(copies["figures2"], copies["nbgrader"], "course grade --figures vs nbgrader")
        check_same_scores(copies["w2"], copies["nbgrader"], "course grade vs nbgrader")
        check_same_scores(cached, uncached, "with vs without reusing identical submissions")
        t_nb = min(nbgrader_runs)
        (t2f, rf, _), (t2, r2, p2), (t1, r1, p1) = (_best(runs[k]) for k in configs)
        t_cached, t_uncached = _best(reuse_runs["cached"])[0], _best(reuse_runs["uncached"])[0]
        per_nb, stages, top = profile_session(copies["profile"])
        cycle_sandboxed, cycle_unconfined = kernel_cycle(unconfined=False), kernel_cycle(unconfined=True)
    exec_plain, exec_drawn = _mean(r1, "exec_seconds"), _mean(rf, "exec_seconds")
    over_worker = statistics.mean(r["seconds"] - r["exec_seconds"] for r in r2)
    data = {
        "week": WEEK,
        "notebooks": n,
        "rounds": rounds,
        "nbgrader_parallel2_s": t_nb,
        "nbgrader_parallel2_runs_s": nbgrader_runs,
        "course_2w_figures_s": t2f,
        "course_2w_s": t2,
        "course_1w_s": t1,
        "runs_s": {k: [r[0] for r in v] for k, v in runs.items()},
        "phases_2w": p2,
        "phases_1w": p1,
        "blank_share": BLANK_SHARE,
        "reuse_2w_s": t_cached,
        "no_reuse_2w_s": t_uncached,
        "exec_s": exec_plain,
        "exec_with_figures_s": exec_drawn,
        "worker_overhead_s": over_worker,
        "kernel_cycle_sandboxed_s": cycle_sandboxed,
        "kernel_cycle_unconfined_s": cycle_unconfined,
        "profile_in_process_s_per_nb": per_nb,
        "profile_stages_s_per_nb": stages,
        "profile_top_tottime": top,
    }
    rows = [
        (
            f"course grade --figures (2 workers) / nbgrader autograde x2 in parallel, {n} differing {WEEK}",
            f"{t_nb / t2f:.2f}x",
            "goal >= 2",
        ),
        ("  course grade (plots built, not drawn) / the same baseline", f"{t_nb / t2:.2f}x", ""),
        (
            f"  wall: nbgrader x2 {t_nb:.1f} s, --figures {t2f:.1f} s, default {t2:.1f} s, 1 worker {t1:.1f} s",
            "",
            "",
        ),
        (f"  identical per-cell scores, nbgrader's gradebook vs ours ({checked} students)", "yes", "checked"),
        *scaling_rows(t1, p1, t2, p2),
        (
            f"reuse of identical submissions ({BLANK_SHARE:.0%} blank releases): without / with",
            f"{t_uncached / t_cached:.2f}x",
            f"{t_uncached:.1f} s / {t_cached:.1f} s, same scores",
        ),
        (
            "per-notebook overhead, course grade (1 worker: wall/N - exec)",
            f"{t1 / n - exec_plain:.3f} s",
            "goal <= 0.5 s",
        ),
        (
            "per-notebook overhead, course grade (worker side: merge, fork, verdict)",
            f"{over_worker:.3f} s",
            "goal <= 0.5 s",
        ),
        (
            "fresh, checked kernel state per notebook (sandboxed - unconfined cycle)",
            f"{cycle_sandboxed - cycle_unconfined:+.3f} s",
            "budget <= +0.3 s",
        ),
        (
            "mean notebook execution: cells only / with figures drawn",
            f"{exec_plain:.2f} / {exec_drawn:.2f} s",
            f"rasterizing: {exec_drawn - exec_plain:+.2f} s",
        ),
        (f"profile of one course grade session in one process: {per_nb:.2f} s per notebook", "", "top stages:"),
    ]
    rows += [(f"  {label}", f"{secs:.3f} s", f"{secs / per_nb:.0%}") for label, secs in stages[:6]]
    rows.append(("  top functions by own time", "", ""))
    rows += [(f"    {name}", f"{tt / n:.3f} s", "per notebook") for tt, name in top[:5]]
    return rows, data
