"""The `course` command: instructor tooling around nbgrader.

Every subcommand has --help. Global options (--course, --db, --debug) may come
before or after the subcommand. An error is one line on stderr (exit status 2);
--debug or COURSE_DEBUG=1 shows the traceback too. `course grade` and `course
collect` exit 1 when a submission could not be graded or imported.
"""

import argparse
import os
import sys
import traceback
from pathlib import Path

from .course import WORKERS, Course, CourseError, check_workers
from .text import for_terminal


def _course(args):
    course = Course.load(args.course, db_url=args.db)
    args.db_url = course.db_url  # for a gradebook error raised deep inside nbgrader
    return course


def cmd_release(args):
    from .authoring.release import release

    course = _course(args)
    weeks = course.weeks() if args.all else [args.week]
    if not weeks or weeks == [None]:
        raise CourseError("name a week (e.g. week1_linear_regression) or use --all")
    for week in weeks:
        path = release(course, week)
        print(f"released {week} -> {path.relative_to(course.root)}/")
    return 0


def cmd_collect(args):
    from .collect.submissions import collect

    course = _course(args)
    report = collect(course, Path(args.path), week=args.week)
    print(report.table())
    return 0 if not report.rejected else 1


def cmd_grade(args):
    from .pipeline import grade_weeks
    from .sandbox.layers import Limits

    gateway = _gateway(args, workers=args.workers)  # a malformed address fails before the course is opened
    course = _course(args)
    weeks = course.weeks() if args.all else args.weeks
    if not weeks:
        raise CourseError("name one or more weeks (e.g. week2_logistic_regression) or use --all")
    limits = Limits(
        cell_seconds=args.cell_timeout,
        notebook_seconds=args.notebook_timeout,
        memory_mb=args.memory_mb,
        cpu_seconds=args.cpu_seconds,
    )
    summaries = grade_weeks(
        course,
        weeks,
        workers=None if gateway else args.workers,  # with --gateway: the new cluster's size
        scheduler=args.scheduler,  # checked (and tried) before anything is graded
        gateway=gateway,  # the same: address, credentials, cluster
        force=args.force,
        students=args.students.split(",") if args.students else None,
        progress=not args.quiet,
        limits=limits,
        figures=args.figures,
        unconfined=args.unconfined,
        reuse=not args.no_cache,
    )
    _gradebook_totals(course, summaries)
    for week, summary in summaries.items():
        print(f"== {week} ==\n{summary.table()}\n" if len(summaries) > 1 else summary.table())
    # A FAILED submission or a grading error (rerun to regrade it) must stop a script: exit 1.
    return 1 if any(s.failed or s.errors for s in summaries.values()) else 0


def _gradebook_totals(course, summaries):
    """The summary's scores as the gradebook has them: manual grades, overrides, late penalty.

    A submission with cells still awaiting manual grading shows its score so far, with a note.
    """
    from .gradebook.store import read_class

    if not any(s.graded for s in summaries.values()):
        return
    grades = read_class(course, list(summaries))
    for week, summary in summaries.items():
        subs = grades.weeks[week].submissions
        for i, (student, _score, _mx, secs) in enumerate(summary.graded):
            sub = subs.get(student)
            if sub is None:
                continue
            summary.graded[i] = (student, sub.so_far, sub.max_score, secs)
            if sub.pending:
                note = f"final pending: {sub.pending} cell(s) to grade by hand (score so far)"
                summary.notes.setdefault(student, []).insert(0, note)


def cmd_feedback(args):
    from .outputs.feedback import write_feedback

    course = _course(args)
    paths = write_feedback(course, course.check_week(args.week))
    print(f"wrote {len(paths)} feedback file(s) under {course.root / 'feedback'}/")
    return 0


def cmd_export(args):
    from .gradebook.export import export, parse_canvas_ids

    course = _course(args)
    ids = parse_canvas_ids(course, args.canvas_id)
    path, blanks = export(course, args.format, Path(args.to).resolve(), week=args.week, canvas_ids=ids)
    print(f"{args.format} grades written to {for_terminal(path)}")
    for student, week, why in blanks:  # blank, never 0: the LMS keeps what it had
        print(f"left blank: {for_terminal(student, 70)} {week}: {why}")
    return 0


def cmd_report(args):
    from .outputs.report import write_report

    course = _course(args)
    path = write_report(course, course.check_week(args.week))
    print(f"report: {path}")
    return 0


def cmd_similarity(args):
    from .outputs.similarity import find_similar

    course = _course(args)
    print(find_similar(course, course.check_week(args.week)).table())
    return 0  # a flag asks the instructor for a look; it is not an error


def cmd_demo(args):
    from .demo import run_demo

    return run_demo(_course(args), workers=args.workers, n_students=args.students)


def cmd_lab(args):
    from .edition.lab import run_lab

    return run_lab(_course(args), instructor=args.instructor, port=args.port, no_browser=args.no_browser)


def cmd_publish(args):
    from .edition.publish import publish

    dest, written, removed = publish(_course(args), args.dir)
    print(f"student edition: {for_terminal(dest)} ({len(written)} file(s) written, {len(removed)} removed)")
    if not (dest / ".git").exists():
        print("next: cd there, `git init && git add -A && git commit`, and push it where students clone from")
    return 0


def cmd_doctor(args):
    from .doctor import pins, run

    if args.pins:
        print(pins())
        return 0
    # A worker machine has no course: the current directory may be none. A named one must be one.
    course = _course(args) if args.course != "." or Path("nbgrader_config.py").exists() else None
    gateway = _gateway(args, workers=None if args.cluster else 1)  # a new cluster: one worker shows the image
    return run(course, scheduler=args.scheduler, gateway=gateway)


def _gateway(args, workers=None):
    """The GatewayTarget of --gateway and --cluster, or None without --gateway; malformed: one error line."""
    if args.gateway is None:
        if args.cluster is not None:
            raise CourseError("--cluster names a cluster of the Dask Gateway given with --gateway URL")
        return None
    from .gateway import parse_target

    return parse_target(args.gateway, args.cluster, workers)


def _add_cluster_options(p, scheduler_help):
    """--scheduler ADDRESS or --gateway URL [--cluster NAME]: the Dask cluster to use (grade, doctor)."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", help=scheduler_help)
    where.add_argument(
        "--gateway",
        metavar="URL",
        help="a Dask Gateway's address, e.g. https://gateway.example.edu: a new cluster, shut down afterwards, "
        "or with --cluster an existing one, left running (auth: dask-gateway's config, DASK_GATEWAY__AUTH__TYPE)",
    )
    p.add_argument("--cluster", metavar="NAME", help="with --gateway: the name of a running cluster to use")


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, like every other error of the CLI."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {for_terminal(message, 500)} (see {self.prog} --help)\n")


def _version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nn-course")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _worker_count(text):
    """--workers, checked by the library's own rule (check_workers): a usage error before anything starts."""
    try:
        return check_workers(int(text))
    except (ValueError, CourseError):
        raise argparse.ArgumentTypeError(f"expected {WORKERS} of workers, got {text!r}") from None


def _global_options(parser, defaults=True):
    """The options every command takes, before or after its name.

    On a subcommand they default to SUPPRESS, so an option given before the
    subcommand is not reset by the subcommand's own default.
    """

    def default(value):
        return value if defaults else argparse.SUPPRESS

    if not defaults:
        parser = parser.add_argument_group("global options (also accepted before the command)")
    parser.add_argument("--course", default=default("."), help="course directory (default: current directory)")
    parser.add_argument(
        "--db",
        default=default(None),
        help="gradebook URL, e.g. postgresql://user@host/db (default: $COURSE_DB_URL, else nbgrader_config.py)",
    )
    parser.add_argument(
        "--debug", action="store_true", default=default(False), help="show tracebacks (as COURSE_DEBUG=1 does)"
    )
    parser.add_argument("--version", action="version", version=f"course {_version()}", help="print the version")


COLLECT_HELP = """Import a folder or .zip of submissions into submitted/<student>/<week>/.

Layouts:
  <student>/<week>/<notebook>.ipynb      one folder per student and week
  <student>/<notebook>.ipynb             with --week
  Canvas's "Download Submissions" zip: files at the top level, no folders, named
  <name>_[LATE_]<user id>_<attachment id>_<file>, e.g.
  smithjohn_12345_67890_week1_linear_regression.ipynb. The student id is <name>
  (Canvas's lastnamefirstname); the week is --week, else the notebook's own name
  (Canvas's "-1", "-2" for a re-uploaded file is dropped). Two Canvas users with
  one <name> are both rejected: rename one file by hand.

A newer submission replaces the current one (kept in submitted/.history/);
a fault in one student's files rejects that student alone, with the reason.
Exit status 1 when any student was rejected."""


def build_parser():
    ap = _Parser(prog="course", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _global_options(ap)
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("release", help="generate the student version of a week into release/ (nbgrader)")
    p.add_argument("week", nargs="?", help="the week to release, e.g. week1_linear_regression")
    p.add_argument("--all", action="store_true", help="every week in source/")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser(
        "collect",
        help="import a folder or .zip of submissions into submitted/<student>/<week>/",
        description=COLLECT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "path",
        help="a folder or zip with <student>/<week>/<notebook>.ipynb (or <student>/<notebook>.ipynb with --week), "
        "or Canvas's flat download (see above)",
    )
    p.add_argument("--week", help="the week, when the archive has no week folders")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser(
        "grade", help="autograde every submission of a week in parallel into autograded/ and the gradebook"
    )
    p.add_argument("weeks", nargs="*", metavar="WEEK", help="one or more weeks")
    p.add_argument("--all", action="store_true", help="every week in source/, in one grading session")
    p.add_argument(
        "--workers",
        type=_worker_count,
        default=None,
        help="local worker processes (default: one per CPU; 0 = serial, in this process); "
        "with --gateway: the new cluster's workers (default 2)",
    )
    _add_cluster_options(p, "use an existing dask.distributed cluster, e.g. tcp://host:8786 (tried first, for 5 s)")
    p.add_argument("--force", action="store_true", help="regrade submissions that are already graded")
    p.add_argument("--students", help="comma-separated student ids (default: all)")
    p.add_argument("--cell-timeout", type=float, default=60.0, help="seconds per cell (default 60)")
    p.add_argument("--notebook-timeout", type=float, default=300.0, help="seconds per notebook (default 300)")
    p.add_argument("--memory-mb", type=int, default=2048, help="memory cap per notebook (default 2048)")
    p.add_argument("--cpu-seconds", type=int, default=300, help="CPU-time cap per notebook (default 300)")
    p.add_argument(
        "--unconfined",
        action="store_true",
        help="run student code WITHOUT the sandbox: only for trusted code (recorded in every result)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--figures",
        action="store_true",
        help="render plots into the graded notebooks (slower; off: plots are built, not drawn)",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="grade every submission, even byte-identical ones (default: graded once, the verdicts reused)",
    )
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("feedback", help="per-student HTML feedback (scores and failed checks; never hidden test code)")
    p.add_argument("week", help="the graded week, e.g. week1_linear_regression")
    p.set_defaults(func=cmd_feedback)

    p = sub.add_parser(
        "export",
        help="final grades from the gradebook as a CSV for Canvas, Moodle or nbgrader",
        description="Final grades (autograded + manual - late penalty) from the gradebook. Scores still "
        "awaiting manual grading, and submissions that could not be graded, are left blank.",
    )
    p.add_argument(
        "--format",
        choices=("canvas", "moodle", "nbgrader"),
        default="nbgrader",
        help="canvas: Canvas gradebook import; moodle: Moodle grade import; nbgrader: nbgrader export's "
        "columns (default)",
    )
    p.add_argument("--week", help="one week only (default: every week, one column each)")
    p.add_argument("--to", default="grades.csv", help="output file (default grades.csv)")
    p.add_argument(
        "--canvas-id",
        action="append",
        metavar="WEEK=ID",
        help="Canvas's id of the assignment that already exists for WEEK (repeatable); without it, "
        "Canvas creates a new assignment on import",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "report", help="HTML class report: score distribution, hardest exercises, common failures, grading time"
    )
    p.add_argument("week", help="the graded week, e.g. week1_linear_regression")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "similarity", help="pairs of near-identical solutions, and near-copies of the reference or course_lib"
    )
    p.add_argument("week", help="the week whose submissions are compared, e.g. week1_linear_regression")
    p.set_defaults(func=cmd_similarity)

    p = sub.add_parser("demo", help="release all weeks, grade synthetic submissions, write feedback and reports")
    p.add_argument(
        "--workers",
        type=_worker_count,
        default=None,
        help="local worker processes (default: one per CPU; 0 = serial, in this process)",
    )
    p.add_argument("--students", type=int, default=8, help="synthetic students per week (default 8)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("lab", help="JupyterLab on the course (student mode; --instructor for nbgrader's tools)")
    p.add_argument("--instructor", action="store_true", help="instructor mode: nbgrader's formgrader and tools")
    p.add_argument(
        "--port", type=int, default=None, help="port to serve on (default: JupyterLab's, 8888 or the next free one)"
    )
    p.add_argument("--no-browser", action="store_true", help="do not open a browser (open the URL it prints)")
    p.set_defaults(func=cmd_lab)

    p = sub.add_parser("publish", help="write the student edition (no solutions) into DIR, or update it there")
    p.add_argument("dir", metavar="DIR", help="a new folder, or a previous edition (its .git and work/ are kept)")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser(
        "doctor",
        help="check this machine (or a cluster's workers) for grading: versions, sandbox, container; exit 1 on FAIL",
    )
    _add_cluster_options(p, "also check every worker of this Dask cluster, e.g. tcp://host:8786")
    p.add_argument("--pins", action="store_true", help="print the package pins a worker image needs, and exit")
    p.set_defaults(func=cmd_doctor)
    for command in sub.choices.values():  # every command, also one added later
        _global_options(command, defaults=False)
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("COURSE_DEBUG", "") not in ("", "0")
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("course: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the CLI's one place that turns errors into messages
        if debug:  # escaped too: exception text and paths in it may come from students
            for line in traceback.format_exc().splitlines():
                print(for_terminal(line, 5000), file=sys.stderr)
        print(f"course: error: {_one_line(e, args, debug)}", file=sys.stderr)
        return 2


def _one_line(error, args, debug):
    """The error as one escaped line: the message of a known error, else its type and message."""
    from sqlalchemy.exc import DBAPIError

    from .gradebook.store import gradebook_problem
    from .verdict.notebook import NotebookError

    if isinstance(error, DBAPIError) and getattr(args, "db_url", None):  # raised inside nbgrader's own code
        return for_terminal(gradebook_problem(args.db_url, error), 2000)
    if isinstance(error, (CourseError, NotebookError, FileNotFoundError, PermissionError)):
        return for_terminal(error, 2000)
    hint = "" if debug else " (run with COURSE_DEBUG=1 for the traceback)"
    return for_terminal(f"{type(error).__name__}: {error}", 2000) + hint


if __name__ == "__main__":
    sys.exit(main())
