"""Shared fixtures: course copies in temporary directories, so tests never touch the repo's data."""

import os
import shutil
import sys
from pathlib import Path

import nbformat
import pytest

from tests.fixtures import toy

REPO = Path(__file__).resolve().parents[1]

# nbgrader runs `alembic` from PATH: make the venv's scripts visible even when pytest is
# started as .venv/bin/pytest without activating the venv.
_bindir = os.path.dirname(sys.executable)
if _bindir not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _bindir + os.pathsep + os.environ.get("PATH", "")


def copy_course(src, dst):
    shutil.copytree(src, dst, symlinks=True)
    return dst


@pytest.fixture(scope="session")
def toy_template(tmp_path_factory):
    from grading.course import Course
    from grading.release import release

    root = toy.make_course(tmp_path_factory.mktemp("toy") / "course")
    release(Course.load(root), toy.WEEK)
    return root


@pytest.fixture
def toy_course(toy_template, tmp_path):
    from grading.course import Course

    return Course.load(copy_course(toy_template, tmp_path / "course"))


def submit(course, student, nb_or_bytes, week=toy.WEEK, name=None, timestamp="2026-01-05 10:00:00.000000 UTC"):
    """Place a submission in submitted/<student>/<week>/ (as `course collect` would)."""
    name = name or week
    d = course.submitted(student, week)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.ipynb"
    if isinstance(nb_or_bytes, (bytes, bytearray)):
        path.write_bytes(nb_or_bytes)
    else:
        nbformat.write(nb_or_bytes, path)
    if timestamp:
        (d / "timestamp.txt").write_text(timestamp)
    return d


def release_nb(course, week=toy.WEEK):
    return nbformat.read(course.release(week) / f"{week}.ipynb", 4)
