"""Grades out of the gradebook for an LMS: Canvas, Moodle, or nbgrader's own CSV.

    course export --format canvas --to canvas.csv            # every week: one column each
    course export --format moodle --week week1_... --to w1.csv
    course export --format canvas --canvas-id week1_linear_regression=4711 --to canvas.csv

Every score is the gradebook's final score: autograded + manual (formgrader's overrides win)
- late penalty. A submission still awaiting manual grading, or one that could not be graded,
is left blank (an LMS import then changes nothing), never written as 0; a student with no
submission gets 0, as in ``nbgrader export``.

Formats (as the LMS imports them):
- canvas: Canvas's gradebook CSV: Student ("Last, First"), ID, SIS User ID, SIS Login ID,
  Section, then one column per assignment, and a "Points Possible" row under the header.
  Canvas's own numeric IDs are not known to nbgrader: ID is left empty and SIS User ID holds
  the nbgrader student id, which Canvas matches on. A column whose name carries no Canvas
  assignment id ("name (12345)") becomes a new assignment on the first import; give the ids of
  assignments that already exist in Canvas with ``--canvas-id WEEK=ID`` and the import
  updates them instead.
- moodle: Moodle's grade import CSV: ID number, First name, Last name, Email address, then one
  column per grade item; on import, map "ID number" or "Email address" to the user field.
- nbgrader: the columns of ``nbgrader export`` (one row per week and student).
Every text cell that a spreadsheet would run as a formula (= + - @, tab, CR) gets a leading '.
"""

import csv
import io
import os

from ..course import CourseError
from ..pipeline import collect_results
from .store import display_name, read_class

FORMATS = ("canvas", "moodle", "nbgrader")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """A CSV cell a spreadsheet shows as text: a leading ' on text that would start a formula."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def parse_canvas_ids(course, pairs):
    """``["week1_linear_regression=4711", ...]`` -> {week: "4711"}; a malformed pair is a CourseError."""
    ids = {}
    for pair in pairs or ():
        week, sep, number = pair.partition("=")
        if not sep or not number.isdecimal() or not number.isascii():
            raise CourseError(f"--canvas-id wants WEEK=NUMBER (Canvas's assignment id), not {pair!r}")
        ids[course.check_week(week)] = number
    return ids


def export(course, fmt, path, week=None, canvas_ids=None):
    """Write ``fmt`` grades of ``week`` (else every week in source/) to ``path``; returns (path, blanks).

    ``blanks`` lists (student, week, why) for the scores left blank. ``canvas_ids`` maps a week to
    its existing Canvas assignment id (canvas format only). The file is written whole or not at
    all: a failure leaves an earlier export in place.
    """
    if fmt not in FORMATS:
        raise CourseError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    if canvas_ids and fmt != "canvas":
        raise CourseError("--canvas-id applies to --format canvas only")
    weeks = [course.check_week(week)] if week else course.weeks()
    grades = read_class(course, weeks)
    weeks = [w for w in weeks if grades.weeks[w].known]
    if not weeks:
        raise CourseError(f"nothing to export: the gradebook has no grades for {week or 'any week'} yet")
    failed = {w: {s for s, r in collect_results(course, w).items() if r["status"] != "graded"} for w in weeks}
    rows, blanks = _ROWS[fmt](grades, weeks, failed)
    if canvas_ids:  # Canvas matches a column to an existing assignment by "name (id)"
        rows[0] = [f"{c} ({canvas_ids[c]})" if c in canvas_ids else c for c in rows[0]]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([[safe_cell(v) for v in row] for row in rows])
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path, blanks


def _final(grades, week, student, failed, blanks):
    """The LMS cell for one student and week: the final score, 0 without a submission, else blank."""
    sub = grades.weeks[week].submissions.get(student)
    if sub is None:
        return 0.0
    if student in failed[week]:
        blanks.append((student, week, "could not be graded"))
        return None
    if sub.final is None:
        blanks.append((student, week, f"{sub.pending} cell(s) await manual grading"))
        return None
    return sub.final


def _canvas(grades, weeks, failed):
    blanks = []
    rows = [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *weeks],
        ["    Points Possible", "", "", "", "", *(grades.weeks[w].max_score for w in weeks)],
    ]
    for student, (first, last, _email) in sorted(grades.students.items()):
        name = display_name(student, first, last)
        rows.append([name, "", student, "", "", *(_final(grades, w, student, failed, blanks) for w in weeks)])
    return rows, blanks


def _moodle(grades, weeks, failed):
    blanks = []
    rows = [["ID number", "First name", "Last name", "Email address", *weeks]]
    for student, (first, last, email) in sorted(grades.students.items()):
        rows.append([student, first, last, email, *(_final(grades, w, student, failed, blanks) for w in weeks)])
    return rows, blanks


def _nbgrader(grades, weeks, failed):
    """nbgrader export's columns and values (raw score, penalty, score = max(0, raw - penalty))."""
    rows = [
        [
            "assignment",
            "duedate",
            "timestamp",
            "student_id",
            "last_name",
            "first_name",
            "email",
            "raw_score",
            "late_submission_penalty",
            "score",
            "max_score",
        ]
    ]
    for week in weeks:
        wk = grades.weeks[week]
        for student, (first, last, email) in sorted(grades.students.items()):
            sub = wk.submissions.get(student)
            if sub is None:
                when, raw, penalty = None, 0.0, 0.0
            else:
                when, penalty = sub.timestamp, sub.late_penalty
                raw = sum(c.nbgrader_score for c in sub.cells)
            due = "" if wk.duedate is None else str(wk.duedate)
            score = max(0.0, raw - penalty)
            rows.append(
                [week, due, "" if when is None else str(when), student, last, first, email]
                + [raw, penalty, score, wk.max_score]
            )
    return rows, []


_ROWS = {"canvas": _canvas, "moodle": _moodle, "nbgrader": _nbgrader}
