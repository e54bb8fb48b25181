"""Intake and robustness: ids, collect, timestamps, grader exceptions, terminal escapes, fail closed.

Real nbgrader, the real pipeline and the real `course` CLI on the toy course.
"""

import json
import os
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pytest

from grading.collect.submissions import collect
from grading.pipeline import grade_week
from tests.conftest import release_nb, submit
from tests.fixtures import toy
from tests.fixtures.scores import totals
from tests.test_pipeline import _zip as make_zip
from tests.test_pipeline import run_cli

pytestmark = pytest.mark.slow
W = toy.WEEK
REPO = Path(__file__).resolve().parents[1]


def _zip(path, entries, when=(2026, 1, 3, 12, 0, 0)):
    """A zip whose entries carry the date ``when`` (a student-made archive)."""
    return make_zip(path, entries, when)


def _good(course):
    return toy.solved(release_nb(course))


def _nested_output_notebook(course, depth):
    """A solved notebook with one JSON output nested ``depth`` levels deep (as bytes)."""
    nb = _good(course)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("execute_result", data={"application/json": "DEEP"}, execution_count=1)]
    raw = nbformat.writes(nb)
    assert raw.count('"DEEP"') == 1
    return raw.replace('"DEEP"', "[" * depth + "]" * depth).encode()


def _sidecar(course, student):
    return json.loads((course.autograded(student, W) / "grading.json").read_text())


# ----- ids ---------------------------------------------------------------------------
def test_an_id_that_names_a_course_file_is_rejected_alone_and_reruns_work(toy_course, tmp_path):
    (toy_course.root / "autograded").mkdir(exist_ok=True)
    (toy_course.root / "autograded" / "README.md").write_text("# autograded/\n")
    (toy_course.root / "feedback").mkdir()
    (toy_course.root / "feedback" / "index.html").write_text("<p>the instructor's page</p>")
    good = _good(toy_course)
    for student in ("alice", "README.md", "index.html", "bob"):
        submit(toy_course, student, good)
    for run in range(2):  # the rerun must not crash either
        summary = grade_week(toy_course, W, workers=0, progress=False)
        failed = dict(summary.failed)
        assert "invalid student id" in failed["README.md"]
        assert "invalid student id" in failed["index.html"] and "feedback/index.html" in failed["index.html"]
        done = {g[0] for g in summary.graded} | {s for s, _ in summary.skipped}
        assert done == {"alice", "bob"}, (run, summary.table())
    assert (toy_course.root / "autograded" / "README.md").read_text() == "# autograded/\n"
    assert (toy_course.root / "feedback" / "index.html").read_text() == "<p>the instructor's page</p>"
    # collect refuses the same id, and only that student
    rows = {
        s: (st, why)
        for s, _, st, why in collect(
            toy_course,
            _zip(
                tmp_path / "r.zip",
                {
                    f"readme.MD/{W}/{W}.ipynb": nbformat.writes(good),
                    f"carol/{W}/{W}.ipynb": nbformat.writes(good),
                },
            ),
        ).rows
    }
    assert rows["readme.MD"][0] == "rejected" and "invalid student id" in rows["readme.MD"][1]
    assert rows["carol"][0] == "collected"


# ----- grader exceptions ---------------------------------------------------------------
def test_a_deeply_nested_notebook_is_a_recorded_failure_and_is_not_skipped_on_rerun(toy_course):
    submit(toy_course, "alice", _good(toy_course))
    submit(toy_course, "bob", _good(toy_course))
    first = grade_week(toy_course, W, workers=0, progress=False)
    assert {g[0]: g[1] for g in first.graded} == {"alice": 3, "bob": 3}
    submit(toy_course, "alice", _nested_output_notebook(toy_course, 600))  # alice resubmits

    summary = grade_week(toy_course, W, workers=0, progress=False)
    failed = dict(summary.failed)
    assert "nested" in failed["alice"] and "alice" not in {g[0] for g in summary.graded}
    side = _sidecar(toy_course, "alice")
    assert side["status"] == "failed" and "nested" in side["reason"]
    assert totals(toy_course, W)["alice"][0] == 0  # the older 3 points did not silently stay
    assert totals(toy_course, W)["bob"][0] == 3

    again = grade_week(toy_course, W, workers=0, progress=False)
    assert "alice" not in {s for s, _ in again.skipped} and "nested" in dict(again.failed)["alice"]
    assert [s for s, _ in again.skipped] == ["bob"]


def test_a_grader_exception_is_recorded_as_an_error_and_regraded_next_run(toy_course, monkeypatch):
    import grading.verdict.grade as grade

    for student in ("alice", "bob", "carol"):
        submit(toy_course, student, _good(toy_course))
    grade_week(toy_course, W, workers=0, progress=False)
    assert totals(toy_course, W)["bob"][0] == 3

    real = grade._grade_notebook

    def explode_for_bob(assignment, bundle, nb, sub, factory):
        if sub.student == "bob":
            raise KeyError("a grader bug")
        return real(assignment, bundle, nb, sub, factory)

    monkeypatch.setattr(grade, "_grade_notebook", explode_for_bob)
    # The three hand in the same bytes: without reuse=False, bob would get alice's verdicts.
    summary = grade_week(toy_course, W, workers=0, force=True, progress=False, reuse=False)
    errors = dict(summary.errors)
    # Fixed words and the exception's name only: its text may quote what the grader was reading.
    assert "grading error (KeyError)" in errors["bob"] and "a grader bug" not in errors["bob"]
    assert sorted(g[0] for g in summary.graded) == ["alice", "carol"]  # the run went on
    assert "ERROR" in summary.table() and "bob" in summary.table()
    side = _sidecar(toy_course, "bob")
    assert side["status"] == "error" and "a grader bug" not in side["reason"] and not side["notebooks"]
    assert "a grader bug" in side["traceback"]  # kept for the instructor, rendered nowhere
    assert not (toy_course.autograded("bob", W) / f"{W}.ipynb").exists()  # no stale graded notebook
    with toy_course.gradebook() as gb:  # no score: nbgrader's "not graded yet" state
        grades = [g for nb in gb.find_submission(W, "bob").notebooks for g in nb.grades]
        assert grades and all(g.auto_score is None and g.needs_manual_grade for g in grades)

    monkeypatch.setattr(grade, "_grade_notebook", real)
    rerun = grade_week(toy_course, W, workers=0, progress=False)
    assert [g[0] for g in rerun.graded] == ["bob"] and sorted(s for s, _ in rerun.skipped) == ["alice", "carol"]
    assert totals(toy_course, W)["bob"][0] == 3


def test_a_sandbox_failure_is_an_error_that_is_never_already_graded(toy_course, monkeypatch):
    """The sandbox breaking under a student (SandboxError) is recorded, never scored, regraded next run."""
    import grading.verdict.grade as grade
    from grading.sandbox.kernels import SandboxError

    submit(toy_course, "alice", _good(toy_course))

    def broken_sandbox(*args):
        raise SandboxError("no answer from the sandbox")

    monkeypatch.setattr(grade, "_grade_notebook", broken_sandbox)
    summary = grade_week(toy_course, W, workers=0, progress=False)
    assert dict(summary.errors)["alice"].startswith("grading error (SandboxError)") and not summary.graded
    side = _sidecar(toy_course, "alice")
    assert side["status"] == "error" and not side["notebooks"]
    monkeypatch.undo()
    rerun = grade_week(toy_course, W, workers=0, progress=False)
    assert [g[0] for g in rerun.graded] == ["alice"] and not rerun.skipped
    assert totals(toy_course, W)["alice"][0] == 3


# ----- collect -------------------------------------------------------------------------
def test_symbolic_links_are_never_followed_out_of_a_submission(toy_course, tmp_path):
    good = _good(toy_course)
    inbox = tmp_path / "inbox"
    (inbox / "alice").mkdir(parents=True)
    (inbox / "alice" / W).symlink_to(toy_course.source(W))  # the instructor's solution
    (tmp_path / "elsewhere" / W).mkdir(parents=True)
    nbformat.write(good, tmp_path / "elsewhere" / W / f"{W}.ipynb")
    (inbox / "carol").symlink_to(tmp_path / "elsewhere")
    (inbox / "bob" / W).mkdir(parents=True)
    nbformat.write(good, inbox / "bob" / W / f"{W}.ipynb")

    rows = {s: (st, why) for s, _, st, why in collect(toy_course, inbox).rows}
    assert rows["alice"][0] == "rejected" and "symbolic link" in rows["alice"][1]
    assert rows["carol"][0] == "rejected" and "symbolic link" in rows["carol"][1]
    assert rows["bob"][0] == "collected"
    assert not toy_course.submitted("alice").exists() and not toy_course.submitted("carol").exists()

    # the same at grading: a student folder in submitted/ that is a link is not graded
    (toy_course.submitted() / "dave").symlink_to(tmp_path / "elsewhere")
    summary = grade_week(toy_course, W, workers=0, progress=False)
    assert "symbolic link" in dict(summary.failed)["dave"]
    assert [g[0] for g in summary.graded] == ["bob"]


def test_a_fault_in_one_students_zip_entries_rejects_only_that_student(toy_course, tmp_path):
    good = nbformat.writes(_good(toy_course))
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"alice/{W}/{W}.ipynb", good)
        zf.writestr(f"bob/{W}/{W}.ipynb", good)
        zf.writestr(f"bob/{W}/data", "a file ...")
        zf.writestr(f"bob/{W}/data/x.csv", "... and a folder with the same name")
        link = zipfile.ZipInfo(f"carol/{W}/{W}.ipynb")
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "/etc/passwd")
        zf.writestr(f"dave/{W}/{W}.ipynb", good)
    rows = {s: (st, why) for s, _, st, why in collect(toy_course, archive).rows}
    assert rows["bob"][0] == "rejected" and "same name" in rows["bob"][1]
    assert rows["carol"][0] == "rejected" and "symbolic link" in rows["carol"][1]
    assert rows["alice"][0] == rows["dave"][0] == "collected"
    assert not toy_course.submitted("bob").exists() and not toy_course.submitted("carol").exists()


def test_a_timestamp_file_written_by_the_student_does_not_backdate(toy_course, tmp_path):
    blank = nbformat.writes(release_nb(toy_course))
    good = nbformat.writes(_good(toy_course))
    forged = "2000-01-01 00:00:00 UTC"
    z1 = _zip(
        tmp_path / "1.zip", {f"alice/{W}/{W}.ipynb": blank, f"alice/{W}/timestamp.txt": forged}, (2026, 1, 3, 12, 0, 0)
    )
    row = collect(toy_course, z1).rows[0]
    assert row[2] == "collected" and "zip entries" in row[3] and "timestamp.txt was ignored" in row[3]
    stamp = (toy_course.submitted("alice", W) / "timestamp.txt").read_text()
    local = datetime(2026, 1, 3, 12, 0, 0).astimezone(UTC)  # zip dates are local times
    assert stamp.startswith(local.strftime("%Y-%m-%d %H:%M")), stamp

    # later work with a forged early date is still the newer submission
    z2 = _zip(
        tmp_path / "2.zip", {f"alice/{W}/{W}.ipynb": good, f"alice/{W}/timestamp.txt": forged}, (2026, 1, 4, 12, 0, 0)
    )
    assert collect(toy_course, z2).rows[0][2] == "updated"
    assert (toy_course.submitted("alice", W) / f"{W}.ipynb").read_text() == good
    grade_week(toy_course, W, workers=0, progress=False)
    with toy_course.gradebook() as gb:
        when = gb.find_submission(W, "alice").timestamp
    assert when.year == 2026 and (when.month, when.day) == (1, 4)


# ----- terminal escapes ---------------------------------------------------------------
def test_escape_sequences_from_students_never_reach_the_terminal_raw(toy_course, tmp_path):
    good = nbformat.writes(_good(toy_course))
    osc52 = "\x1b]52;c;SGVsbG8=\x07"
    archive = _zip(
        tmp_path / "esc.zip",
        {
            f"\x1b[2J\x1b]0;pwned\x07eve/{W}/{W}.ipynb": good,
            f"mallory\u202egpj.exe/{W}/{W}.ipynb": good,
            f"alice/{W}/{W}.ipynb": good,
        },
    )
    code, out, err = run_cli("--course", str(toy_course.root), "collect", str(archive))
    assert code == 1 and "\x1b" not in out + err and "\u202e" not in out + err
    assert "\\x1b[2J" in out and "\\u202e" in out and "collected" in out

    (toy_course.submitted("alice", W) / "notes").symlink_to(osc52 + "\x1b[2J")
    code, out, err = run_cli("--course", str(toy_course.root), "grade", W, "--workers", "0", "--quiet")
    assert code == 0 and "alice" in out
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "\\x1b]52;c;SGVsbG8=\\x07" in out  # shown, but inert


# ----- fail closed -------------------------------------------------------------------
def _course_cli(course, *args):
    env = dict(os.environ, COURSE_NO_BWRAP="1")
    return subprocess.run(
        [sys.executable, "-m", "grading.cli", "--course", str(course.root), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
    )


def test_grade_refuses_without_a_sandbox_and_unconfined_is_explicit_and_recorded(toy_course):
    submit(toy_course, "alice", _good(toy_course))
    r = _course_cli(toy_course, "grade", W, "--workers", "0", "--quiet")
    assert r.returncode != 0 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "refusing" in lines[0] and "COURSE_NO_BWRAP" in lines[0] and "--unconfined" in lines[0]
    assert not toy_course.autograded("alice", W).exists()  # nothing ran, nothing written

    doctor = _course_cli(toy_course, "doctor")
    assert doctor.returncode == 1 and "FAIL  course grade: refusing" in doctor.stdout  # no sandbox: a FAIL

    r = _course_cli(toy_course, "grade", W, "--workers", "0", "--quiet", "--unconfined")
    assert r.returncode == 0, r.stderr
    assert "UNCONFINED" in r.stdout and "alice" in r.stdout and "1 graded" in r.stdout
    assert _sidecar(toy_course, "alice")["unconfined"] is True
    assert totals(toy_course, W)["alice"][0] == 3
