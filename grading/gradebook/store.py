"""Results into nbgrader's gradebook (SQLite or PostgreSQL), and scores out of it.

nbgrader stays the source of truth: we write the same rows its own
autograde writes (student, submission with timestamp, auto_score and
needs_manual_grade per grade cell, "No response." comments), so formgrader
and ``nbgrader export`` work on our results unchanged.
"""

import contextlib
import contextvars
import time
import warnings
from dataclasses import dataclass, field

from nbgrader.api import MissingEntry
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, SAWarning

from ..course import CourseError

# nbgrader 0.9 triggers SQLAlchemy 2 autoflush warnings inside its own API; they are harmless.
warnings.filterwarnings("ignore", category=SAWarning, module=r"nbgrader\..*")


def open_gradebook(db_url, course_id):
    """nbgrader's Gradebook on ``db_url``; a database that cannot be used is one CourseError line.

    The message names the file (SQLite) or the server (PostgreSQL, never the password) and
    what to do. A locked SQLite database is raised as it is: ``_retrying`` waits for it.
    """
    from nbgrader.api import Gradebook

    try:
        return Gradebook(_with_connect_timeout(db_url), course_id)
    except DBAPIError as e:
        if "locked" in str(e.orig).lower():
            raise
        raise CourseError(gradebook_problem(db_url, e)) from e


def _with_connect_timeout(db_url, seconds=10):
    """PostgreSQL URLs get a connect timeout: an unreachable host fails in seconds, not minutes."""
    url = make_url(db_url)
    if url.get_backend_name() != "postgresql" or "connect_timeout" in url.query:
        return db_url
    return url.update_query_dict({"connect_timeout": str(seconds)})


def safe_url(db_url):
    """The gradebook's URL for a person to read: never its password."""
    return make_url(db_url)._replace(password=None).render_as_string(hide_password=False)  # set() keeps it on None


def gradebook_problem(db_url, error):
    """One line for a gradebook that cannot be opened: which one, why, and what to do."""
    url = make_url(db_url)
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0] if str(error).strip() else ""
    if url.get_backend_name() == "sqlite":
        where = url.database or "the in-memory gradebook"
        low = reason.lower()
        if "not a database" in low or "malformed" in low or "encrypted" in low:
            return (
                f"{where} is not a SQLite database ({reason}): restore it from a backup "
                "or move it away to start a new one"
            )
        return f"cannot open the gradebook {where} ({reason}): check that its folder exists and is writable"
    if url.password:
        reason = reason.replace(url.password, "***")
    return (
        f"cannot connect to the gradebook at {safe_url(db_url)} ({reason}): check that the server is running and "
        "the URL (--db, $COURSE_DB_URL or nbgrader_config.py)"
    )


# A grading session's writes share one open gradebook: opening one per result repeats nbgrader's
# schema checks and throws away SQLAlchemy's compiled statements, which live with the engine.
_SESSION = contextvars.ContextVar("gradebook_session", default=None)


@contextlib.contextmanager
def writing_session(course):
    """Within this block, ``record`` and ``record_error`` for ``course`` reuse one open gradebook."""
    held = {"course": course, "gb": None}
    token = _SESSION.set(held)
    try:
        yield
    finally:
        _SESSION.reset(token)
        if held["gb"] is not None:
            held["gb"].close()


@contextlib.contextmanager
def _writer(course):
    """The session's gradebook (left open; a failed write is rolled back), else one of its own."""
    held = _SESSION.get()
    if held is None or held["course"] is not course:
        with course.gradebook() as gb:
            yield gb
        return
    if held["gb"] is None:
        held["gb"] = course.gradebook()
    try:
        yield held["gb"]
    except BaseException:
        held["gb"].db.rollback()  # a locked database or a failed row: the next write starts clean
        raise


def ensure_assignment(course, week):
    """Make sure the gradebook knows ``week`` (a fresh PostgreSQL gradebook may not)."""
    with course.gradebook() as gb:
        try:
            assignment = gb.find_assignment(week)
            if {nb.name for nb in assignment.notebooks} == set(course.notebooks(week)):
                return False
        except MissingEntry:
            pass
    from ..authoring.release import release

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
    with _writer(course) as gb:
        gb.update_or_create_student(result["student"])
        submission = _update_submission(gb, result)
        for nb in submission.notebooks:
            nb.late_submission_penalty = None  # no score, so nothing to take a penalty from
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
    held = _SESSION.get()
    if held is not None and held["course"] is course:  # the course's config is read once per session
        penalties = held["penalties"] = held.get("penalties") or late_penalties(course)
    else:
        penalties = late_penalties(course)  # before any write: a broken plugin setting stores nothing
    with _writer(course) as gb:
        gb.update_or_create_student(student)
        _update_submission(gb, result)
        for name, nb in result["notebooks"].items():
            # One query for the notebook's rows, not one per cell: the client writes every result.
            submitted = gb.find_submission_notebook(name, week, student)
            grades = {g.name: g for g in submitted.grades}
            comments = {c.name: c for c in submitted.comments}
            for cell in nb["cells"]:
                grade = grades.get(cell["grade_id"])
                if grade is None:
                    raise MissingEntry(f"no grade {cell['grade_id']} of {name} in the gradebook")
                grade.auto_score = float(cell["points"])
                grade.needs_manual_grade = grade.manual_score is not None
            for gid, manual in nb["manual"].items():
                grade = grades.get(gid)
                if grade is None:
                    continue
                answered = nb["status"] == "graded" and manual["answered"]
                grade.auto_score = None if answered else 0.0
                grade.needs_manual_grade = answered
                if gid in comments:
                    comments[gid].auto_comment = None if answered else "No response."
        # One transaction with the penalties: a plugin that fails leaves no score without its penalty.
        gb.db.flush()
        gb.db.expire_all()  # the notebooks' scores, which the penalty is computed from, read afresh
        graded = {name for name, nb in result["notebooks"].items() if nb["status"] == "graded"}
        return _assign_late_penalties(gb, penalties, week, student, graded)


def late_penalties(course):
    """nbgrader's AssignLatePenalties, configured by the course's nbgrader_config.py.

    Its ``plugin_class`` (nbgrader's LateSubmissionPlugin by default, whose
    ``penalty_method`` is "none" or "zero", or an instructor's own class) decides the
    penalty, exactly as in ``nbgrader autograde``.
    """
    from nbgrader.preprocessors import AssignLatePenalties
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course.root)).load_config()
    penalties = AssignLatePenalties(config=config)
    penalties.init_plugin()
    return penalties


def _assign_late_penalties(gb, penalties, week, student, graded):
    """Each graded notebook's late_submission_penalty, as nbgrader's autograde sets it.

    Returns {"seconds_late", "penalty"} for the submission. Notebooks that were not
    graded (missing, unreadable) get no penalty, as nbgrader only processes the
    notebooks it autogrades.
    """
    submission = gb.find_submission(week, student)
    seconds = submission.total_seconds_late
    for nb in submission.notebooks:
        nb.late_submission_penalty = None
        if seconds > 0 and nb.name in graded:
            penalty = penalties.plugin_inst.late_submission_penalty(student, nb.score, seconds)
            if penalty is not None:  # nbgrader's own clamp to [0, the notebook's score]
                nb.late_submission_penalty = penalties._check_late_penalty(nb, penalty)
    gb.db.commit()
    penalty = sum(nb.late_submission_penalty or 0.0 for nb in submission.notebooks)
    return {"seconds_late": seconds, "penalty": penalty}


def describe_lateness(seconds_late, penalty):
    """'submitted 2 h 5 min late: late penalty 3 points' (None when on time)."""
    if not seconds_late or seconds_late <= 0:
        return None
    minutes = int(seconds_late // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes or not parts else []
    late = f"submitted {' '.join(parts) if seconds_late >= 60 else f'{seconds_late:.0f} s'} late"
    return f"{late}: late penalty {penalty:g} point(s)" if penalty else f"{late} (no late penalty)"


def export_csv(course, path):
    """Grades as CSV in the columns of ``nbgrader export`` (grading/gradebook/export.py, formula-safe)."""
    from .export import export

    return export(course, "nbgrader", path)[0]


# ----- grades out of the gradebook: the one source of truth for feedback, report, export, summary -----
def display_name(student, first_name, last_name):
    """'Last, First' when the gradebook has names, else the student id."""
    return ", ".join(n for n in (last_name, first_name) if n) or student


@dataclass(frozen=True)
class CellGrade:
    """One grade cell of one submission, as the gradebook holds it (formgrader's edits included)."""

    notebook: str
    name: str
    written: bool  # a written answer (markdown, graded by hand); else an autograded code cell
    auto: float | None
    manual: float | None  # formgrader's score: wins over ``auto``, as in nbgrader's Grade.score
    extra_credit: float | None
    max_score: float
    pending: bool  # needs_manual_grade: nobody has given it its score yet
    comment: str | None  # the instructor's comment, else the automatic one ("No response.")

    @property
    def score(self):
        """The score the student has: nbgrader's Grade.score; None while pending."""
        return None if self.pending else self.nbgrader_score

    @property
    def nbgrader_score(self):
        """nbgrader's Grade.score: manual over auto, plus extra credit, 0 when neither is set."""
        base = self.manual if self.manual is not None else self.auto
        return 0.0 if base is None else base + (self.extra_credit or 0.0)

    @property
    def overridden(self):
        """An autograded cell whose score an instructor set by hand."""
        return not self.written and self.manual is not None


@dataclass
class SubmissionGrades:
    """A student's submission of one week: autograded + manual - late penalty = final."""

    student: str
    first_name: str | None
    last_name: str | None
    email: str | None
    timestamp: object  # datetime or None
    seconds_late: float
    late_penalty: float
    cells: list = field(default_factory=list)

    def _part(self, written):
        cells = [c for c in self.cells if c.written == written]
        return sum(c.score or 0.0 for c in cells), sum(c.max_score for c in cells), sum(c.pending for c in cells)

    @property
    def autograded(self):
        """(score, max, pending cells) of the code cells, instructor overrides included."""
        return self._part(False)

    @property
    def manual(self):
        """(score, max, pending answers) of the written answers."""
        return self._part(True)

    @property
    def max_score(self):
        return sum(c.max_score for c in self.cells)

    @property
    def pending(self):
        return sum(c.pending for c in self.cells)

    @property
    def so_far(self):
        """The total of the cells graded so far, less the late penalty (nbgrader's clamp at 0)."""
        return max(0.0, self.autograded[0] + self.manual[0] - self.late_penalty)

    @property
    def final(self):
        """The final score, or None while any cell awaits manual grading."""
        return None if self.pending else self.so_far


@dataclass
class WeekGrades:
    """Every submission of one week in the gradebook (empty when the gradebook does not know the week)."""

    week: str
    known: bool = False  # the gradebook has this week (it was released or graded)
    duedate: object = None
    max_score: float = 0.0
    submissions: dict = field(default_factory=dict)  # student -> SubmissionGrades


@dataclass
class ClassGrades:
    """The whole gradebook: every student (with names and emails) and the weeks asked for."""

    students: dict = field(default_factory=dict)  # id -> (first name, last name, email)
    weeks: dict = field(default_factory=dict)  # week -> WeekGrades


def read_grades(course, week):
    """WeekGrades of ``week``; an unreadable gradebook is one CourseError line naming it."""
    return read_class(course, [week]).weeks[week]


def read_class(course, weeks):
    """ClassGrades for ``weeks``, read in one session (a consistent snapshot)."""
    try:
        with course.gradebook() as gb:
            out = ClassGrades()
            for student in gb.students:
                out.students[student.id] = (student.first_name, student.last_name, student.email)
            for week in weeks:
                out.weeks[week] = _week_grades(gb, week)
            return out
    except DBAPIError as e:  # a file that opened but is not a gradebook fails on the first query
        raise CourseError(gradebook_problem(course.db_url, e)) from e


def _week_grades(gb, week):
    try:
        assignment = gb.find_assignment(week)
    except MissingEntry:
        return WeekGrades(week)
    out = WeekGrades(week, True, assignment.duedate, float(assignment.max_score or 0.0))
    for sub in assignment.submissions:
        student = sub.student
        grades = SubmissionGrades(
            student.id,
            student.first_name,
            student.last_name,
            student.email,
            sub.timestamp,
            float(sub.total_seconds_late or 0.0),
            float(sub.late_submission_penalty or 0.0),
        )
        for nb in sub.notebooks:
            comments = {c.name: c.comment for c in nb.comments}
            for g in nb.grades:
                grades.cells.append(
                    CellGrade(
                        nb.name,
                        g.name,
                        g.cell.cell_type == "markdown",
                        g.auto_score,
                        g.manual_score,
                        g.extra_credit,
                        float(g.max_score or 0.0),
                        bool(g.needs_manual_grade),
                        comments.get(g.name) or comments.get(g.name.removesuffix("_tests")),
                    )
                )
        out.submissions[student.id] = grades
    return out
