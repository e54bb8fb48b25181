"""Students never lose work: work/<week>/ is filled once and never overwritten; updates arrive beside it.

Covers the fill step itself, `make lab` in the instructor repository (grading/edition/lab.py
student mode) across `course release`, and a student's clone of the published
edition across `git pull` of an updated edition.
"""

import os
import re
import shutil
import subprocess
import sys

import nbformat
import pytest

from grading.authoring.release import release
from grading.edition.lab import prepare
from grading.edition.publish import publish
from grading.edition.workcopy import fill
from tests.fixtures import toy

UPDATED = re.compile(r"^(?P<stem>.+)\.updated-\d{4}-\d{2}-\d{2}(-\d+)?(?P<suffix>\.\w+)$")


def _week(tmp_path, files):
    week = tmp_path / "release" / "week1_x"
    week.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (week / name).write_text(text)
    return tmp_path / "release"


def _updates(folder):
    return sorted(p.name for p in folder.iterdir() if UPDATED.match(p.name))


def test_fill_copies_a_week_once_and_never_writes_over_the_students_file(tmp_path):
    rel, work = _week(tmp_path, {"week1_x.ipynb": "v1", "points.csv": "1,2"}), tmp_path / "work"
    (rel / "notes").mkdir()  # not a week folder
    assert fill(rel, work) == []
    assert (work / "week1_x" / "week1_x.ipynb").read_text() == "v1"
    assert (work / "week1_x" / "points.csv").read_text() == "1,2"
    assert not (work / "notes").exists()
    (work / "week1_x" / "week1_x.ipynb").write_text("mine")
    assert fill(rel, work) == []  # same release: nothing to say, nothing written
    assert (work / "week1_x" / "week1_x.ipynb").read_text() == "mine"
    assert _updates(work / "week1_x") == []


def test_a_new_release_arrives_beside_the_students_file_once(tmp_path):
    rel, work = _week(tmp_path, {"week1_x.ipynb": "v1"}), tmp_path / "work"
    fill(rel, work, today="2026-03-01")
    (work / "week1_x" / "week1_x.ipynb").write_text("mine")
    _week(tmp_path, {"week1_x.ipynb": "v2"})
    notices = fill(rel, work, today="2026-03-02")
    assert (work / "week1_x" / "week1_x.ipynb").read_text() == "mine"
    assert _updates(work / "week1_x") == ["week1_x.updated-2026-03-02.ipynb"]
    assert (work / "week1_x" / "week1_x.updated-2026-03-02.ipynb").read_text() == "v2"
    assert len(notices) == 1 and "week1_x.updated-2026-03-02.ipynb" in notices[0]
    assert fill(rel, work, today="2026-03-02") == []  # told once
    _week(tmp_path, {"week1_x.ipynb": "v3"})  # a second update the same day
    assert len(fill(rel, work, today="2026-03-02")) == 1
    assert (work / "week1_x" / "week1_x.updated-2026-03-02.ipynb").read_text() == "v2"
    assert (work / "week1_x" / "week1_x.updated-2026-03-02-2.ipynb").read_text() == "v3"
    assert (work / "week1_x" / "week1_x.ipynb").read_text() == "mine"


def test_an_unrecorded_copy_that_differs_gets_the_release_beside_it(tmp_path):
    """A work/ folder from before records were kept (or a file the student made) is never replaced."""
    rel, work = _week(tmp_path, {"week1_x.ipynb": "v1"}), tmp_path / "work"
    (work / "week1_x").mkdir(parents=True)
    (work / "week1_x" / "week1_x.ipynb").write_text("mine")
    assert len(fill(rel, work)) == 1
    assert (work / "week1_x" / "week1_x.ipynb").read_text() == "mine"
    assert len(_updates(work / "week1_x")) == 1


def test_fill_never_writes_through_a_link(tmp_path):
    rel, work = _week(tmp_path, {"week1_x.ipynb": "v1"}), tmp_path / "work"
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    (work / "week1_x").mkdir(parents=True)
    (work / "week1_x" / "week1_x.ipynb").symlink_to(outside)
    dangling = work / "week1_x" / "week1_x.updated-2026-03-02.ipynb"
    dangling.symlink_to(tmp_path / "created-through-link")
    fill(rel, work, today="2026-03-02")
    assert outside.read_text() == "precious"
    assert not (tmp_path / "created-through-link").exists()
    assert (work / "week1_x" / "week1_x.updated-2026-03-02-2.ipynb").read_text() == "v1"


# ----- the instructor repository: `make lab` (student mode) across `course release` ---------
def _edit_answer(path, grade_id, source):
    """Change a solution cell as a student does in JupyterLab (nbformat round trip)."""
    nb = nbformat.read(path, 4)
    cell = next(c for c in nb.cells if (c.metadata.get("nbgrader") or {}).get("grade_id") == grade_id)
    cell.source = source
    nbformat.write(nb, path)


def _answer(path, grade_id):
    nb = nbformat.read(path, 4)
    return next(c.source for c in nb.cells if (c.metadata.get("nbgrader") or {}).get("grade_id") == grade_id)


def _change_intro(course, text):
    path = course.source(toy.WEEK) / f"{toy.WEEK}.ipynb"
    nb = nbformat.read(path, 4)
    nb.cells[0].source = text
    nbformat.write(nb, path)


MINE = "def affine(X, W, b):\n    # my own way\n    return np.dot(X, W) + b\n"


def test_student_work_survives_course_release_in_the_instructor_repo(toy_course, capsys):
    _, root = prepare(toy_course)  # `make lab` / `course lab`, student mode
    assert root == toy_course.root / "work"
    mine = root / toy.WEEK / f"{toy.WEEK}.ipynb"
    assert mine.read_bytes() == (toy_course.release(toy.WEEK) / f"{toy.WEEK}.ipynb").read_bytes()
    _edit_answer(mine, "w9_affine", MINE)

    release(toy_course, toy.WEEK)  # the same course, rebuilt
    prepare(toy_course)
    assert _answer(mine, "w9_affine") == MINE
    assert _updates(mine.parent) == []

    _change_intro(toy_course, "# Toy week\nNow with a better introduction.")
    release(toy_course, toy.WEEK)  # the course changed
    capsys.readouterr()
    prepare(toy_course)
    assert _answer(mine, "w9_affine") == MINE
    (update,) = _updates(mine.parent)
    assert nbformat.read(mine.parent / update, 4).cells[0].source.endswith("a better introduction.")
    assert f"NOTICE: New version of {toy.WEEK}/{toy.WEEK}.ipynb" in capsys.readouterr().out


def test_the_repository_ignores_work():
    from tests.conftest import REPO

    assert "work/" in (REPO / ".gitignore").read_text().splitlines()


# ----- the student edition: a clone across `git pull` -------------------------------------------
def _git(cwd, *args, env):
    out = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert out.returncode == 0, f"git {' '.join(args)}: {out.stderr}"
    return out.stdout


def test_student_work_survives_git_pull_of_an_updated_edition(toy_course, tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    env = dict(
        os.environ,
        HOME=str(tmp_path),  # no global git configuration
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Instructor",
        GIT_AUTHOR_EMAIL="i@example.org",
        GIT_COMMITTER_NAME="Instructor",
        GIT_COMMITTER_EMAIL="i@example.org",
    )
    edition = tmp_path / "edition"
    publish(toy_course, edition)
    _git(edition, "init", "-q", env=env)
    _git(edition, "add", "-A", env=env)
    _git(edition, "commit", "-q", "-m", "week 9", env=env)
    student = tmp_path / "student"
    _git(tmp_path, "clone", "-q", str(edition), str(student), env=env)

    def make_work():  # what `make lab` does before starting JupyterLab
        out = subprocess.run(
            [sys.executable, "tools/lab.py", "--fill-only"], cwd=student, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    make_work()
    mine = student / "work" / toy.WEEK / f"{toy.WEEK}.ipynb"
    _edit_answer(mine, "w9_affine", MINE)

    _change_intro(toy_course, "# Toy week\nNow with a better introduction.")
    release(toy_course, toy.WEEK)
    publish(toy_course, edition)  # the same folder: an update of the edition
    assert (edition / ".git").is_dir()
    _git(edition, "commit", "-q", "-am", "better introduction", env=env)
    _git(student, "pull", "-q", env=env)

    shipped = student / "notebooks" / toy.WEEK / f"{toy.WEEK}.ipynb"
    assert nbformat.read(shipped, 4).cells[0].source.endswith("a better introduction.")  # the pull arrived
    assert _answer(mine, "w9_affine") == MINE
    out = make_work()
    assert _answer(mine, "w9_affine") == MINE
    (update,) = _updates(mine.parent)
    assert (mine.parent / update).read_bytes() == shipped.read_bytes()
    assert "NOTICE: New version of" in out and update in out
    assert _git(student, "status", "--porcelain", env=env) == ""  # work/ is the student's, not git's
