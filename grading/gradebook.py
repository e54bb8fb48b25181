"""Results into nbgrader's gradebook (SQLite or PostgreSQL), and scores out of it.

nbgrader stays the source of truth: we write the same rows its own
autograde writes (student, submission with timestamp, auto_score and
needs_manual_grade per grade cell, "No response." comments), so formgrader
and ``nbgrader export`` work on our results unchanged.
"""

import time
import warnings

from nbgrader.api import MissingEntry
from sqlalchemy.exc import OperationalError, SAWarning

# nbgrader 0.9 triggers SQLAlchemy 2 autoflush warnings inside its own API; they are harmless.
warnings.filterwarnings("ignore", category=SAWarning, module=r"nbgrader\..*")


def ensure_assignment(course, week):
    """Make sure the gradebook knows ``week`` (a fresh PostgreSQL gradebook may not)."""
    with course.gradebook() as gb:
        try:
            assignment = gb.find_assignment(week)
            if {nb.name for nb in assignment.notebooks} == set(course.notebooks(week)):
                return False
        except MissingEntry:
            pass
    from .release import release

    release(course, week)
    return True


def record(course, result, retries=20):
    """Write one grading result; retries while another process holds an SQLite lock."""
    return _retrying(_record, course, result, retries)


def record_error(course, result, retries=20):
    """Mark a submission the grader failed on: no autograded score, every grade needs a look.

    An older score must not stay as if it were this submission's: every grade of the
    submission loses its auto_score and needs_manual_grade is set, nbgrader's own
    state for "not graded yet" (manual scores a person gave are kept).
    """
    return _retrying(_record_error, course, result, retries)


def _retrying(write, course, result, retries):
    for attempt in range(retries):
        try:
            return write(course, result)
        except OperationalError as e:
            if "locked" not in str(e).lower() or attempt == retries - 1:
                raise
            time.sleep(0.1 * (attempt + 1))


def _record_error(course, result):
    with course.gradebook() as gb:
        gb.update_or_create_student(result["student"])
        submission = _update_submission(gb, result)
        for nb in submission.notebooks:
            for grade in nb.grades:
                grade.auto_score = None
                grade.needs_manual_grade = True
            for comment in nb.comments:
                comment.auto_comment = None
        gb.db.commit()


def _update_submission(gb, result):
    """The submission row, with the collector's timestamp when the result has a valid one."""
    from nbgrader.utils import parse_utc

    ts = result.get("timestamp")
    try:
        when = parse_utc(ts) if ts else None
    except (ValueError, OverflowError):
        when = None
    extra = {"timestamp": when} if when is not None else {}
    return gb.update_or_create_submission(result["week"], result["student"], **extra)


def _record(course, result):
    week, student = result["week"], result["student"]
    with course.gradebook() as gb:
        gb.update_or_create_student(student)
        _update_submission(gb, result)
        for name, nb in result["notebooks"].items():
            for cell in nb["cells"]:
                grade = gb.find_grade(cell["grade_id"], name, week, student)
                grade.auto_score = float(cell["points"])
                grade.needs_manual_grade = grade.manual_score is not None
            for gid, manual in nb["manual"].items():
                try:
                    grade = gb.find_grade(gid, name, week, student)
                except MissingEntry:
                    continue
                answered = nb["status"] == "graded" and manual["answered"]
                grade.auto_score = None if answered else 0.0
                grade.needs_manual_grade = answered
                try:
                    comment = gb.find_comment(gid, name, week, student)
                    comment.auto_comment = None if answered else "No response."
                except MissingEntry:
                    pass
        gb.db.commit()


def cell_scores(course, week):
    """{student: {grade_id: score}} for every autograded cell of ``week`` in the gradebook."""
    out = {}
    with course.gradebook() as gb:
        assignment = gb.find_assignment(week)
        for sub in assignment.submissions:
            scores = {}
            for nb in sub.notebooks:
                for grade in nb.grades:
                    if grade.cell.cell_type == "code":
                        scores[grade.name] = grade.score
            out[sub.student.id] = scores
    return out


def totals(course, week):
    """{student: (score, max_score, needs_manual_grade)} from the gradebook."""
    out = {}
    with course.gradebook() as gb:
        assignment = gb.find_assignment(week)
        for sub in assignment.submissions:
            out[sub.student.id] = (sub.score, sub.max_score, sub.needs_manual_grade)
    return out


def export_csv(course, path):
    """Grades as CSV, with nbgrader's own exporter (the columns of ``nbgrader export``)."""
    from nbgrader.plugins import CsvExportPlugin

    plugin = CsvExportPlugin()
    plugin.to = str(path)
    with course.gradebook() as gb:
        plugin.export(gb)
    return path
