"""Grade one submission: the unit of work a grading worker runs.

    assignment = build_assignment(course, week)      # once, on the client
    job = pack(assignment, job)                      # per student, on the client: the files as bytes
    result = grade_submission(assignment, job, factory)   # per student, on a worker

``build_assignment`` gathers everything trusted (specs from source/, stubs
from release/, the reference run of the solution) into one picklable
bundle, so workers never read source/ and every worker grades against the
same reference. ``pack`` reads the submission on the client, so a worker
opens no path of the course. ``grade_submission`` never raises for a bad submission: it
returns a result whose status and reason say what happened.
"""

import builtins
import errno
import hashlib
import json
import os
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path

import nbformat

from course_lib._wire import OWNWORK_MIME, PROBE_MIME, REFERENCE_MIME

from ..collect.validate import Submission, parse_notebooks, read_submission
from ..sandbox.execute import run_notebook
from ..sandbox.kernels import SandboxDamaged, SandboxError
from ..sandbox.layers import stage_file
from .inert import inert_markdown, inert_output, inert_raw
from .judge import collect_reference, decode_reference, exception_name, judge
from .notebook import cell_role, merge, prepare_for_run, read_spec
from .ownwork import forfeit, runtime_findings, static_findings

_OUR_MIMES = (PROBE_MIME, REFERENCE_MIME, OWNWORK_MIME)
_INFRASTRUCTURE = SandboxError  # SandboxDamaged too: the worker rebuilds the sandbox and retries


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
class Parcel:
    """A submission as the client read it (``pack``): all a worker needs to grade it, as bytes."""

    submission_hash: str | None = None
    timestamp: str | None = None
    submission: Submission | None = None  # notebooks and extra files as bytes (validate.read_submission)
    error: tuple | None = None  # (reason, traceback): reading it failed; recorded as a grading error


@dataclass
class Job:
    student: str
    week: str
    folder: str  # submitted/<student>/<week>, on the client's machine: a worker never opens it
    parcel: Parcel | None = None  # the submission's files, read by the client (pack)


def fingerprint(course, week):
    """Changes whenever what grading depends on changes: source, release, course_lib, grader."""
    h = hashlib.sha256()
    roots = [course.source(week), course.release(week)]
    import course_lib

    roots += [Path(course_lib.__file__).parent, Path(__file__).resolve().parents[1]]  # all of grading/
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
            from ..course import CourseError

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
    nb = prepare_for_run(source_nb, spec, "reference")
    run = _run_fresh(factory, nb, lambda stage_dir: _copy_source_files(source_dir, stage_dir))
    if not run.ok:
        from .notebook import NotebookError

        raise NotebookError(f"the solution notebook {spec.name} did not run: {run.status}: {run.detail}")
    return {"records": collect_reference(run.nb, spec), "seconds": run.seconds}


def _copy_source_files(source_dir, dest):
    """The week's own files (trusted, from source/) into ``dest``, a folder the factory has just made."""
    for p in sorted(Path(source_dir).rglob("*")):
        if p.is_file() and p.suffix != ".ipynb":
            stage_file(dest, p.relative_to(source_dir).as_posix(), p.read_bytes(), replace=True)


def _run_fresh(factory, nb, stage):
    """Run ``nb`` in a fresh kernel holding what ``stage(dir)`` wrote; a lost sandbox raises, never scores."""
    kernel = factory.fresh_kernel(stage=stage)
    try:
        run = run_notebook(nb, kernel, factory.limits)
    finally:
        factory.recycle()
    if run.status == "sandbox_lost":  # the worker rebuilds the sandbox and grades this again
        raise SandboxDamaged(run.detail)
    return run


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


def pack(assignment, job):
    """``job`` with its submission read here, on the client, as bytes; never raises.

    The same no-follow rules and limits as ever (validate.inspect); a failure to read
    travels with the job and becomes this student's grading error on the worker.
    """
    parcel = Parcel()
    try:
        parcel.submission_hash = submission_hash(job.folder)
        parcel.timestamp = _timestamp(job.folder)
        parcel.submission = read_submission(job.folder, job.student, job.week, sorted(assignment.notebooks))
    except Exception as e:  # noqa: BLE001 - this student's grading error, as if the worker had read it
        parcel.error = (error_reason(e), _traceback())
    return replace(job, parcel=parcel)


def grade_submission(assignment, job, factory):
    """Grade ``job`` (packed: see ``pack``); returns a result dict with status "graded", "failed" or "error".

    "failed": no notebook could be graded (the submission's fault; scored 0, with the
    reason). "error": the grader itself raised; the reason is kept, no score is
    recorded and the next run regrades it. A sandbox failure (SandboxError) is not
    caught here: the worker rebuilds its sandbox and retries (grading/sandbox/worker.py).
    """
    t0 = time.monotonic()
    result = {
        "student": job.student,
        "week": job.week,
        "status": "graded",
        "reason": None,
        "notes": [],
        "notebooks": {},
        "exec_seconds": 0.0,
        "submission_hash": None,
        "timestamp": None,
        "fingerprint": assignment.fingerprint,
    }
    try:
        _grade_into(result, assignment, job, factory)
    except _INFRASTRUCTURE:
        raise
    except Exception as e:  # noqa: BLE001 - recorded as this student's grading error; the batch goes on
        result.update(status="error", reason=error_reason(e), notebooks={}, traceback=_traceback())
    result["seconds"] = time.monotonic() - t0
    return result


def _grade_into(result, assignment, job, factory):
    parcel = job.parcel
    if parcel is None:  # a bug on the client: never read a path here, and never score nothing
        raise ValueError("the job carries no submission (grading.verdict.grade.pack)")
    result["submission_hash"] = parcel.submission_hash
    result["timestamp"] = parcel.timestamp
    if parcel.error:
        reason, tb = parcel.error
        result.update(status="error", reason=reason, notebooks={}, traceback=tb)
        return
    sub = parse_notebooks(parcel.submission)
    result["notes"] += sub.notes
    errors = []
    for name, nf in sub.notebooks.items():
        bundle = assignment.notebooks[name]
        if nf.nb is None:
            result["notebooks"][name] = _failed_notebook(bundle, nf.problem)
            continue
        try:
            result["notebooks"][name] = _grade_notebook(assignment, bundle, nf.nb, sub, factory)
        except _INFRASTRUCTURE:
            raise
        except Exception as e:  # noqa: BLE001 - the grader's fault, not a score (see grade_submission)
            errors.append(f"{name}.ipynb: {error_reason(e)}")
            result.setdefault("traceback", _traceback())  # for the instructor (grading.json), not the student
            continue
        result["exec_seconds"] += result["notebooks"][name].get("exec_seconds", 0.0)
    if errors:  # no partial score: a half-graded submission is not a grade
        result.update(status="error", reason="; ".join(errors), notebooks={})
        return
    failed = [n for n in result["notebooks"].values() if n["status"] != "graded"]
    if failed and len(failed) == len(result["notebooks"]):
        result["status"] = "failed"
        result["reason"] = "; ".join(n["reason"] for n in failed)


def _traceback():
    return traceback.format_exc(limit=-20)[-20000:]  # the innermost frames: a deep recursion is long


def error_reason(e):
    """Why grading failed, for the summary, feedback and report: fixed words and a known name, no text.

    An exception's text can quote whatever the grader was reading (a kernel's message, a
    hidden test, a log the kernel wrote to), so only its type's name is kept, and only a
    name of Python's or the grader's own. The text stays in the traceback, which is kept
    for the instructor in grading.json and rendered nowhere.
    """
    if isinstance(e, RecursionError):
        return "grading error: the notebook is nested too deeply to process (RecursionError)"
    return f"grading error ({_known_name(type(e))})"


def _known_name(cls):
    """The name of ``cls`` or of its nearest ancestor that is a builtin or the grader's own."""
    for klass in cls.__mro__:
        if getattr(builtins, klass.__name__, None) is klass or klass.__module__.startswith("grading."):
            return klass.__name__
    return "Exception"


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
    run = _run_fresh(factory, runnable, lambda d: _stage_files(d, sub.extra_files, assignment.source_files))
    verdicts = judge(spec, run, _decoded(assignment, bundle.name))
    forfeit(verdicts, static_findings(spec, merged.nb), runtime_findings(spec, run.nb))  # own work only
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


def _stage_files(stage_dir, extra_files, source_files):
    """The student's own files first, then the week's files from source/ on top (as nbgrader does).

    ``stage_dir`` is a folder the factory has just made; ``extra_files`` are (relative path, bytes),
    read by the client (only regular files). Nothing is written through a symlink
    (sandbox.layers.stage_file); finding a link or a file we did not write there means the
    sandbox's host folders were tampered with.
    """
    try:
        for rel, data in extra_files:
            stage_file(stage_dir, rel, data)
        for rel, data in source_files:
            stage_file(stage_dir, rel, data, replace=True)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EEXIST):
            reason = f"refusing to stage a file through a path the grader did not make ({e.strerror})"
            raise SandboxDamaged(reason) from None
        raise


def _autograded_notebook(merged_nb, run, verdicts, spec):
    """The merged notebook with the run's outputs; test cells show the trusted verdicts.

    formgrader shows this notebook in the instructor's browser, so everything the
    student wrote or printed is made inert (grading/verdict/inert.py): plain text and
    images only, markdown without HTML. Test cells show the grader's verdict; an
    error there is named only from Python's own exceptions, since its name, text
    and traceback are the student's code's to choose (and may quote hidden tests).
    """
    nb = nbformat.from_dict(merged_nb)
    by_id = {v.grade_id: v for v in verdicts}
    for cell, ran in zip(nb.cells, run.nb.cells):
        gid = (cell.metadata.get("nbgrader") or {}).get("grade_id")
        if cell.cell_type != "code":
            if cell_role(cell) not in ("tests", "readonly", "task"):  # trusted cells come from the spec
                _make_text_inert(cell)
            continue
        outputs = [o for o in ran.get("outputs", []) if not _ours(o)]
        if gid in by_id:
            v = by_id[gid]
            lines = [f"{'✔' if c.passed else '✘'} {c.name}" + ("" if c.passed else f": {c.message}") for c in v.checks]
            lines += [f"✘ {p}" for p in v.problems]
            lines.append(f"score: {v.points:g} / {v.max_points:g} (decided by the grader, outside the notebook)")
            errors = [o for o in outputs if o.get("output_type") == "error"][:1]
            outputs = [nbformat.v4.new_output("stream", name="stdout", text="\n".join(lines) + "\n")]
            outputs += [_named_error(o) for o in errors]
        else:
            outputs = [safe for safe in map(inert_output, outputs) if safe is not None]
        cell.outputs = outputs
        count = ran.get("execution_count")
        cell.execution_count = count if type(count) is int else None
        cell.metadata = _safe_cell_metadata(cell.metadata)
    if run.stopped_at is not None:
        note = nbformat.v4.new_markdown_cell(f"**Grading stopped here: {run.detail}.**")
        nb.cells.insert(run.stopped_at + 1, note)
    return nb


def _make_text_inert(cell):
    cell.source = inert_raw(cell.source) if cell.cell_type == "raw" else inert_markdown(cell.source)
    cell.pop("attachments", None)
    cell.metadata = _safe_cell_metadata(cell.metadata)


def _safe_cell_metadata(meta):
    """nbgrader's (trusted, from the spec) and layout flags; no raw_mimetype or other keys."""
    keep = {k: meta[k] for k in ("nbgrader", "deletable", "editable") if k in meta}
    keep.update({k: meta[k] for k in ("collapsed", "scrolled") if type(meta.get(k)) is bool})
    return nbformat.from_dict(keep)


def _named_error(output):
    """A test cell's error, named from a fixed vocabulary only."""
    name = exception_name(output)
    return nbformat.v4.new_output(
        "error", ename=name, evalue="", traceback=[f"{name} (details withheld: see the grader's verdict above)"]
    )


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
