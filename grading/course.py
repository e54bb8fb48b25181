"""Where things live in a course directory, and the nbgrader configuration.

The repository root is the course directory (nbgrader's convention):
source/ and release/ per week, submitted/, autograded/ and feedback/ per
student and week, the gradebook (SQLite by default), reports/ and a private
cache in .course/.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # use fullmatch: "$" would accept "id\n"
WEEK_ID = re.compile(r"^week\d+_[a-z0-9_]+$")
# Names that are, or may become, course files rather than students: nbgrader's and our own
# files inside submitted/ autograded/ feedback/, the gradebook, and names Windows reserves
# (a course directory may live on a shared drive). Compared case-insensitively.
RESERVED_IDS = {
    "readme",
    "readme.md",
    "readme.txt",
    "timestamp.txt",
    "grading.json",
    "gradebook.db",
    "gradebook.db-journal",
    "gradebook.db-wal",
    "gradebook.db-shm",
    "nbgrader_config.py",
    "source",
    "release",
    "submitted",
    "autograded",
    "feedback",
    "reports",
    "con",
    "prn",
    "aux",
    "nul",
    *(f"{dev}{n}" for dev in ("com", "lpt") for n in range(1, 10)),
}


class CourseError(Exception):
    """A problem the instructor can fix; the CLI prints it without a traceback."""


def student_id_problem(student):
    """Why ``student`` cannot be a student id by its grammar alone (None if it can)."""
    if not isinstance(student, str) or not STUDENT_ID.fullmatch(student) or ".." in student:
        return "invalid student id: use 1-64 ASCII letters, digits, '_', '.' or '-', starting with a letter or digit"
    if student.lower() in RESERVED_IDS:
        return f"invalid student id: {student} is a reserved name in the course directory"
    return None


def check_student_id(student):
    """Student ids become directory names and database keys: letters, digits, _ . - only."""
    problem = student_id_problem(student)
    if problem:
        raise CourseError(f"{problem} (got {student!r})")
    return student


WORKERS = "0 (grade in this process, one at a time) or a positive number"  # what --workers takes


def check_workers(workers):
    """``workers`` is None (one per CPU), 0 (serial, in this process) or a positive count.

    Here, not in the pipeline, so that the command line checks --workers without importing it.
    """
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise CourseError(f"--workers must be {WORKERS}, got {workers!r}")
    return workers


def _venv_on_path():
    # nbgrader runs `alembic` from PATH when it creates a gradebook; our entry points may run
    # from a virtualenv that was never activated.
    import sys

    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


@dataclass
class Course:
    root: Path
    db_url: str
    course_id: str = "nn-course"

    @classmethod
    def load(cls, root=".", db_url=None):
        """Read nbgrader_config.py in ``root``; ``db_url`` (or $COURSE_DB_URL) overrides the gradebook."""
        _venv_on_path()
        root = Path(root).resolve()
        cfg_path = root / "nbgrader_config.py"
        if not cfg_path.exists():
            raise CourseError(f"{root} is not a course directory: nbgrader_config.py is missing")
        from traitlets.config.loader import PyFileConfigLoader

        cfg = PyFileConfigLoader(cfg_path.name, path=str(root)).load_config()
        course_db = cfg.CourseDirectory.get("db_url", "sqlite:///gradebook.db")
        db_url = db_url or os.environ.get("COURSE_DB_URL") or course_db
        if db_url.startswith("sqlite:///") and not db_url.startswith("sqlite:////"):
            db_url = "sqlite:///" + str(root / db_url[len("sqlite:///") :])
        return cls(root, db_url, cfg.CourseDirectory.get("course_id", "nn-course"))

    # ----- paths ------------------------------------------------------------
    def source(self, week):
        return self.root / "source" / week

    def release(self, week):
        return self.root / "release" / week

    def submitted(self, student=None, week=None):
        p = self.root / "submitted"
        return p if student is None else (p / student if week is None else p / student / week)

    def autograded(self, student, week):
        return self.root / "autograded" / student / week

    def feedback(self, student, week):
        return self.root / "feedback" / student / week

    @property
    def reports(self):
        return self.root / "reports"

    @property
    def cache(self):
        return self.root / ".course"

    def weeks(self):
        src = self.root / "source"
        return sorted(p.name for p in src.iterdir() if p.is_dir() and WEEK_ID.fullmatch(p.name)) if src.exists() else []

    def check_week(self, week):
        if week not in self.weeks():
            known = ", ".join(self.weeks()) or "none"
            raise CourseError(f"unknown week {week!r}; weeks in source/: {known}")
        return week

    def reserved_names(self):
        """{lower-case name: why} of the names an id must not take in this course directory.

        Ids become folder names next to course files: an id must not name a week,
        anything in source/ or release/, or anything in submitted/, autograded/ or
        feedback/ that is not a real folder (README.md, a symbolic link).
        """
        out = {}
        for top in ("source", "release"):
            base = self.root / top
            for p in base.iterdir() if base.is_dir() else ():
                out[p.name.lower()] = f"{p.name} is in {top}/"
        for top in ("submitted", "autograded", "feedback"):
            base = self.root / top
            for p in base.iterdir() if base.is_dir() else ():
                if p.is_symlink() or not p.is_dir():
                    what = "a symbolic link" if p.is_symlink() else "a file"
                    out[p.name.lower()] = f"{top}/{p.name} is {what}, not a student folder"
        return out

    def student_problem(self, student, reserved=None):
        """Why ``student`` cannot be graded or collected here (None if it can).

        ``reserved``: this course's ``reserved_names()``, computed once for a whole class.
        """
        problem = student_id_problem(student)
        if problem:
            return problem
        why = (self.reserved_names() if reserved is None else reserved).get(student.lower())
        return f"invalid student id: {why}" if why else None

    def notebooks(self, week):
        """Notebook names (without .ipynb) of a week, from source/."""
        return sorted(p.stem for p in self.source(week).glob("*.ipynb"))

    def students(self, week):
        """Students with a submission folder for ``week`` (invalid names are reported, not skipped)."""
        base = self.submitted()
        if not base.exists():
            return []
        return sorted(p.name for p in base.iterdir() if not p.name.startswith(".") and (p / week).is_dir())

    # ----- nbgrader ---------------------------------------------------------
    def nbgrader_api(self):
        from nbgrader.apps.api import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory
        from traitlets.config import Config
        from traitlets.config.loader import PyFileConfigLoader

        cfg = Config()
        cfg.merge(PyFileConfigLoader("nbgrader_config.py", path=str(self.root)).load_config())
        cfg.CourseDirectory.root = str(self.root)
        cfg.CourseDirectory.db_url = self.db_url
        if "root" not in cfg.Exchange:  # nbgrader's API checks an exchange even when it does not use one
            exchange = self.cache / "exchange"
            exchange.mkdir(parents=True, exist_ok=True)
            cfg.Exchange.root = str(exchange)
        coursedir = CourseDirectory(config=cfg)
        return NbGraderAPI(coursedir, config=cfg)

    def gradebook(self):
        """nbgrader's Gradebook; a corrupt or unreachable database is a one-line CourseError."""
        from .gradebook.store import open_gradebook

        return open_gradebook(self.db_url, self.course_id)
