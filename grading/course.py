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

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
WEEK_ID = re.compile(r"^week\d+_[a-z0-9_]+$")


class CourseError(Exception):
    """A problem the instructor can fix; the CLI prints it without a traceback."""


def check_student_id(student):
    """Student ids become directory names and database keys: letters, digits, _ . - only."""
    if not isinstance(student, str) or not STUDENT_ID.match(student) or ".." in student:
        raise CourseError(
            f"invalid student id {student!r}: use 1-64 ASCII letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return student


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
        return sorted(p.name for p in src.iterdir() if p.is_dir() and WEEK_ID.match(p.name)) if src.exists() else []

    def check_week(self, week):
        if week not in self.weeks():
            known = ", ".join(self.weeks()) or "none"
            raise CourseError(f"unknown week {week!r}; weeks in source/: {known}")
        return week

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
        from nbgrader.api import Gradebook

        return Gradebook(self.db_url, self.course_id)
