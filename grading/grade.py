"""Grade one submission: the unit of work a grading worker runs.

    assignment = build_assignment(course, week)      # once, on the client
    result = grade_submission(assignment, job, factory)   # per student, on a worker

``build_assignment`` gathers everything trusted (specs from source/, stubs
from release/, the reference run of the solution) into one picklable
bundle, so workers never read source/ and every worker grades against the
same reference. ``grade_submission`` never raises for a bad submission: it
returns a result whose status and reason say what happened.
"""

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from course_lib._wire import PROBE_MIME, REFERENCE_MIME

from .execute import run_notebook
from .kernels import SandboxError
from .notebook import cell_role, merge, prepare_for_run, read_spec
from .validate import inspect
from .verdict import collect_reference, decode_reference, judge

_OUR_MIMES = (PROBE_MIME, REFERENCE_MIME)


@dataclass
class NotebookBundle:
    name: str
    spec: object
    release_cells: dict  # grade_id -> {"source": ...}
    reference: dict  # grade_id -> [raw reference records]
    seconds: float = 0.0  # how long the solution's cells took: a guess of a submission's cost


@dataclass
class Assignment:
    week: str
    notebooks: dict
    source_files: list = field(default_factory=list)  # (relative path, bytes): data files of the week
    fingerprint: str = ""

    @property
    def expected_seconds(self):
        return sum(nb.seconds for nb in self.notebooks.values())


@dataclass
class Job:
    student: str
    week: str
    folder: str  # submitted/<student>/<week>


def fingerprint(course, week):
    """Changes whenever what grading depends on changes: source, release, course_lib, grader."""
    h = hashlib.sha256()
    roots = [course.source(week), course.release(week)]
    import course_lib

    roots += [Path(course_lib.__file__).parent, Path(__file__).parent]
    for root in roots:
        for p in sorted(root.rglob("*")):
            if (
                p.is_file()
                and "__pycache__" not in p.parts
                and p.suffix in (".ipynb", ".py", ".csv", ".gz", ".txt", ".npz", ".json", "")
            ):
                h.update(str(p.relative_to(root)).encode())
                h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _read_cache(path):
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):  # none yet, or damaged: recompute
        return {}


def build_assignment(course, week, factory, log=print):
    """The trusted bundle for ``week``; the reference run is cached in .course/."""
    course.check_week(week)
    fp = fingerprint(course, week)
    cache = course.cache / "reference" / f"{week}-{fp}.json"
    cached = _read_cache(cache)
    computed = False
    notebooks = {}
    for name in course.notebooks(week):
        src_path = course.source(week) / f"{name}.ipynb"
        rel_path = course.release(week) / f"{name}.ipynb"
        if not rel_path.exists():
            from .course import CourseError

            raise CourseError(f"{rel_path} does not exist: run `course release {week}` first")
        spec = read_spec(src_path)
        release_nb = nbformat.read(rel_path, 4)
        release_cells = {}
        for cell in release_nb.cells:
            gid = (cell.metadata.get("nbgrader") or {}).get("grade_id")
            if gid and cell_role(cell) in ("solution", "manual"):
                release_cells[gid] = {"source": cell.source}
        if name not in cached:
            log(f"reference run of {week}/{name}.ipynb (the solution, once per change) ...")
            cached[name] = _reference_run(spec, nbformat.read(src_path, 4), course.source(week), factory)
            computed = True
        ref = cached[name]
        notebooks[name] = NotebookBundle(name, spec, release_cells, ref["records"], ref["seconds"])
    if computed:
        # Atomic: another grader on the same (shared) course directory may be reading it.
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cached))
        os.replace(tmp, cache)
    files = []
    for p in sorted(course.source(week).rglob("*")):
        rel = p.relative_to(course.source(week)).as_posix()
        if p.is_file() and p.suffix != ".ipynb" and ".ipynb_checkpoints" not in rel and "__pycache__" not in rel:
            files.append((rel, p.read_bytes()))
    return Assignment(week, notebooks, files, fp)


def _reference_run(spec, source_nb, source_dir, factory):
    kernel = factory.fresh_kernel()
    try:
        _copy_source_files(source_dir, kernel.workdir)
        run = run_notebook(prepare_for_run(source_nb, spec, "reference"), kernel, factory.limits)
    finally:
        factory.recycle()
    if not run.ok:
        from .notebook import NotebookError

        raise NotebookError(f"the solution notebook {spec.name} did not run: {run.status}: {run.detail}")
    return {"records": collect_reference(run.nb, spec), "seconds": run.seconds}


def _copy_source_files(source_dir, dest):
    for p in Path(source_dir).rglob("*"):
        if p.is_file() and p.suffix != ".ipynb":
            target = Path(dest) / p.relative_to(source_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, target)


# ----- per submission ---------------------------------------------------------
_DECODED = {}


def _decoded(assignment, name):
    key = (assignment.fingerprint, name)
    if key not in _DECODED:
        _DECODED[key] = decode_reference(assignment.notebooks[name].reference)
    return _DECODED[key]


def submission_hash(folder):
    """A content hash of a submission folder (regular files only), to know when to regrade."""
    h = hashlib.sha256()
    folder = Path(folder)
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for f in sorted(files):
            p = Path(root) / f
            if p.is_symlink() or not p.is_file():
                h.update(f"link:{p.relative_to(folder)}".encode())
                continue
            h.update(str(p.relative_to(folder)).encode())
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def grade_submission(assignment, job, factory):
    """Grade ``job``; always returns a result dict (status "graded" or "failed")."""
    t0 = time.monotonic()
    result = {
        "student": job.student,
        "week": job.week,
        "status": "graded",
        "reason": None,
        "notes": [],
        "notebooks": {},
        "exec_seconds": 0.0,
        "submission_hash": submission_hash(job.folder),
        "timestamp": _timestamp(job.folder),
        "fingerprint": assignment.fingerprint,
    }
    sub = inspect(job.folder, job.student, job.week, sorted(assignment.notebooks))
    result["notes"] += sub.notes
    for name, nf in sub.notebooks.items():
        bundle = assignment.notebooks[name]
        if nf.nb is None:
            result["notebooks"][name] = _failed_notebook(bundle, nf.problem)
            continue
        try:
            result["notebooks"][name] = _grade_notebook(assignment, bundle, nf.nb, sub, factory)
        except SandboxError as e:
            result["notebooks"][name] = _failed_notebook(bundle, f"grading infrastructure error: {e}")
            result["infrastructure_error"] = True
        result["exec_seconds"] += result["notebooks"][name].get("exec_seconds", 0.0)
    failed = [n for n in result["notebooks"].values() if n["status"] != "graded"]
    if failed and len(failed) == len(result["notebooks"]):
        result["status"] = "failed"
        result["reason"] = "; ".join(n["reason"] for n in failed)
    result["seconds"] = time.monotonic() - t0
    return result


def _failed_notebook(bundle, reason):
    spec = bundle.spec
    return {
        "status": "failed",
        "reason": reason,
        "notebook_json": None,
        "exec_seconds": 0.0,
        "run_status": None,
        "run_detail": None,
        "notes": [],
        "cells": [
            {
                "grade_id": c.grade_id,
                "points": 0.0,
                "max_points": c.points,
                "passed": False,
                "messages": [reason],
                "checks": [],
            }
            for c in spec.test_cells
        ],
        "manual": {
            c.grade_id: {"answered": False, "max_points": c.points} for c in spec.cells if c.role in ("manual", "task")
        },
    }


def _grade_notebook(assignment, bundle, submitted_nb, sub, factory):
    spec = bundle.spec
    merged = merge(spec, submitted_nb, bundle.release_cells)
    runnable = prepare_for_run(merged.nb, spec, "probe")
    kernel = factory.fresh_kernel()
    try:
        _stage_files(kernel.workdir, sub.extra_files, assignment.source_files)
        run = run_notebook(runnable, kernel, factory.limits)
    finally:
        factory.recycle()
    verdicts = judge(spec, run, _decoded(assignment, bundle.name))
    graded_nb = _autograded_notebook(merged.nb, run, verdicts, spec)
    return {
        "status": "graded",
        "reason": None,
        "notes": merged.notes,
        "run_status": run.status,
        "run_detail": run.detail,
        "exec_seconds": run.seconds,
        "cells": [
            {
                "grade_id": v.grade_id,
                "points": v.points,
                "max_points": v.max_points,
                "passed": v.passed,
                "messages": v.messages(),
                "checks": [
                    {"name": c.name, "hidden": c.hidden, "passed": c.passed, "message": c.message} for c in v.checks
                ],
            }
            for v in verdicts
        ],
        "manual": {
            c.grade_id: {"answered": merged.answered.get(c.grade_id, True), "max_points": c.points}
            for c in spec.cells
            if c.role in ("manual", "task")
        },
        "notebook_json": nbformat.writes(graded_nb),
    }


def _stage_files(workdir, extra_files, source_files):
    """The student's own files first, then the week's files from source/ on top (as nbgrader does)."""
    for rel, full in extra_files:
        target = Path(workdir) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(full, target, follow_symlinks=False)
    for rel, data in source_files:
        target = Path(workdir) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _autograded_notebook(merged_nb, run, verdicts, spec):
    """The merged notebook with the run's outputs; test cells show the trusted verdicts."""
    nb = nbformat.from_dict(merged_nb)
    by_id = {v.grade_id: v for v in verdicts}
    for cell, ran in zip(nb.cells, run.nb.cells):
        if cell.cell_type != "code":
            continue
        gid = (cell.metadata.get("nbgrader") or {}).get("grade_id")
        outputs = [o for o in ran.get("outputs", []) if not _ours(o)]
        if gid in by_id:
            v = by_id[gid]
            lines = [f"{'✔' if c.passed else '✘'} {c.name}" + ("" if c.passed else f": {c.message}") for c in v.checks]
            lines += [f"✘ {p}" for p in v.problems]
            lines.append(f"score: {v.points:g} / {v.max_points:g} (decided by the grader, outside the notebook)")
            outputs = [o for o in outputs if o.get("output_type") == "error"]
            outputs.insert(0, nbformat.v4.new_output("stream", name="stdout", text="\n".join(lines) + "\n"))
        cell.outputs = outputs
        cell.execution_count = ran.get("execution_count")
    if run.stopped_at is not None:
        note = nbformat.v4.new_markdown_cell(f"**Grading stopped here: {run.detail}.**")
        nb.cells.insert(run.stopped_at + 1, note)
    return nb


def _ours(output):
    data = output.get("data") or {}
    return any(m in data for m in _OUR_MIMES)


def _timestamp(folder):
    p = Path(folder) / "timestamp.txt"
    try:
        if p.is_file() and not p.is_symlink() and p.stat().st_size < 200:
            return p.read_text().strip() or None
    except (OSError, UnicodeDecodeError):
        pass
    return None
