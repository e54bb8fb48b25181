"""The `course` command: instructor tooling around nbgrader.

Every subcommand has --help. Errors are printed as one clear message (exit
status 2); --debug shows the traceback too.
"""

import argparse
import sys
import traceback
from pathlib import Path

from .course import Course, CourseError
from .text import for_terminal


def _course(args):
    return Course.load(args.course, db_url=args.db)


def cmd_release(args):
    from .release import release

    course = _course(args)
    weeks = course.weeks() if args.all else [args.week]
    if not weeks or weeks == [None]:
        raise CourseError("name a week (e.g. week1_linear_regression) or use --all")
    for week in weeks:
        path = release(course, week)
        print(f"released {week} -> {path.relative_to(course.root)}/")
    return 0


def cmd_collect(args):
    from .collect import collect

    course = _course(args)
    report = collect(course, Path(args.path), week=args.week)
    print(report.table())
    return 0 if not report.rejected else 1


def cmd_grade(args):
    from .pipeline import check_scheduler_address, grade_weeks
    from .sandbox import Limits

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
        workers=args.workers,
        scheduler=check_scheduler_address(args.scheduler) if args.scheduler else None,
        force=args.force,
        students=args.students.split(",") if args.students else None,
        progress=not args.quiet,
        limits=limits,
        figures=args.figures,
        unconfined=args.unconfined,
    )
    for week, summary in summaries.items():
        print(f"== {week} ==\n{summary.table()}\n" if len(summaries) > 1 else summary.table())
    return 1 if any(s.errors for s in summaries.values()) else 0  # grading errors: rerun to regrade them


def cmd_feedback(args):
    from .feedback import write_feedback

    course = _course(args)
    paths = write_feedback(course, course.check_week(args.week))
    print(f"wrote {len(paths)} feedback file(s) under {course.root / 'feedback'}/")
    return 0


def cmd_export(args):
    from .gradebook import export_csv

    course = _course(args)
    path = export_csv(course, Path(args.to).resolve())
    print(f"grades written to {path}")
    return 0


def cmd_report(args):
    from .report import write_report

    course = _course(args)
    path = write_report(course, course.check_week(args.week))
    print(f"report: {path}")
    return 0


def cmd_demo(args):
    from .demo import run_demo

    return run_demo(_course(args), workers=args.workers, n_students=args.students)


def cmd_lab(args):
    from .lab import run_lab

    return run_lab(_course(args), instructor=args.instructor, port=args.port, no_browser=args.no_browser)


def cmd_doctor(args):
    from .pipeline import sandbox_refusal
    from .sandbox import detect

    caps = detect()
    print(caps.describe())
    for w in caps.warnings:
        print(f"WARNING: {w}")
    refusal = sandbox_refusal()
    print(f"course grade: {refusal}" if refusal else "course grade: runs student code in the sandbox")
    course = _course(args)
    print(f"course directory: {for_terminal(course.root)}")
    print(f"gradebook: {course.db_url}")
    print(f"weeks: {', '.join(course.weeks()) or 'none'}")
    return 0


def build_parser():
    ap = argparse.ArgumentParser(
        prog="course", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--course", default=".", help="course directory (default: current directory)")
    ap.add_argument(
        "--db", default=None, help="gradebook URL, e.g. postgresql://user@host/db (default: nbgrader_config.py, sqlite)"
    )
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("release", help="generate the student version of a week into release/ (nbgrader)")
    p.add_argument("week", nargs="?")
    p.add_argument("--all", action="store_true", help="every week in source/")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("collect", help="import a folder or .zip of submissions into submitted/<student>/<week>/")
    p.add_argument(
        "path",
        help="a folder or zip with <student>/<week>/<notebook>.ipynb (or <student>/<notebook>.ipynb with --week)",
    )
    p.add_argument("--week", help="the week, when the archive has no week folders")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser(
        "grade", help="autograde every submission of a week in parallel into autograded/ and the gradebook"
    )
    p.add_argument("weeks", nargs="*", metavar="WEEK", help="one or more weeks")
    p.add_argument("--all", action="store_true", help="every week in source/, in one grading session")
    p.add_argument(
        "--workers", type=int, default=None, help="local worker processes (default: one per CPU; 0 = in this process)"
    )
    p.add_argument("--scheduler", help="use an existing dask.distributed cluster, e.g. tcp://host:8786")
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
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("feedback", help="per-student HTML feedback (scores and failed checks; never hidden test code)")
    p.add_argument("week")
    p.set_defaults(func=cmd_feedback)

    p = sub.add_parser("export", help="grades CSV, as nbgrader export writes it")
    p.add_argument("--to", default="grades.csv", help="output file (default grades.csv)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "report", help="HTML class report: score distribution, hardest exercises, common failures, grading time"
    )
    p.add_argument("week")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="release all weeks, grade synthetic submissions, write feedback and reports")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--students", type=int, default=8, help="synthetic students per week (default 8)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("lab", help="JupyterLab on the course (student mode; --instructor for nbgrader's tools)")
    p.add_argument("--instructor", action="store_true")
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--no-browser", action="store_true")
    p.set_defaults(func=cmd_lab)

    p = sub.add_parser("doctor", help="which sandbox protections this machine supports, and the course setup")
    p.set_defaults(func=cmd_doctor)
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("course: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the CLI's one place that turns errors into messages
        if args.debug:
            traceback.print_exc()
        from .notebook import NotebookError

        known = (CourseError, NotebookError, FileNotFoundError, PermissionError)
        msg = str(e) if isinstance(e, known) else f"{type(e).__name__}: {e}"
        print(f"course: error: {for_terminal(msg, 2000)}", file=sys.stderr)
        if not isinstance(e, known) and not args.debug:
            print("course: rerun with --debug for the full traceback", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
