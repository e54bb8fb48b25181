"""Grades that add up: feedback, class report, LMS export and the grade summary all read the gradebook.

A toy class is graded by the real pipeline (`course grade`), then graded further as an
instructor does in formgrader, through nbgrader's Gradebook API: an override of a code cell
(Grade.manual_score), a written answer graded, one left pending; one student is late (nbgrader's
late plugin, "zero"), one submission cannot be graded. Expected values are worked out by hand
from those scores (toy course: sigmoid 2 points, affine 1, written answer 1; 4 in all).
"""

import csv
import os
import re
import shutil

import pytest
from nbgrader.utils import parse_utc

from grading.course import Course
from grading.gradebook.store import read_grades
from grading.outputs.feedback import write_feedback
from grading.outputs.report import summarize, write_report
from grading.pipeline import collect_results
from tests.conftest import copy_course, release_nb, submit
from tests.fixtures import toy
from tests.test_pipeline import run_cli

pytestmark = pytest.mark.slow

W = toy.WEEK
DUE = "2026-01-05 09:00:00.000000 UTC"
ON_TIME = "2026-01-05 08:00:00.000000 UTC"
LATE = "2026-01-05 11:30:00.000000 UTC"
FORMULA_FIRST, FORMULA_LAST = "@SUM(1+1)", '=HYPERLINK("http://evil.example","x")'


def text(html):
    """The page's text, tags removed and spaces collapsed, for reading it as a student does."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


@pytest.fixture(scope="module")
def graded(toy_template, tmp_path_factory):
    """The graded class, its `course grade` output, and the instructor's formgrader work done."""
    course = Course.load(copy_course(toy_template, tmp_path_factory.mktemp("grades") / "course"))
    with open(course.root / "nbgrader_config.py", "a") as fh:
        fh.write('\nc.LateSubmissionPlugin.penalty_method = "zero"\n')
    with course.gradebook() as gb:
        gb.update_or_create_assignment(W, duedate=parse_utc(DUE))
        gb.update_or_create_student("alice", first_name="Alice", last_name="Smith", email="alice@uni.example")
        gb.update_or_create_student("bob", first_name=FORMULA_FIRST, last_name=FORMULA_LAST, email="-bob@x")
    rel = release_nb(course)
    submit(course, "alice", toy.solved(rel), timestamp=ON_TIME)
    submit(course, "bob", rel, timestamp=ON_TIME)  # nothing done: 0, written answer empty
    submit(course, "carol", toy.solved(rel), timestamp=LATE)  # 2 h 30 min late: penalty = her score then
    submit(course, "dave", toy.solved(rel), timestamp=ON_TIME)  # written answer left pending
    submit(course, "broken", b'{"cells": [', timestamp=ON_TIME)  # cannot be graded
    code, out, err = run_cli("--course", str(course.root), "grade", W, "--workers", "0", "--quiet")
    assert code == 1, err  # "broken" FAILED
    with course.gradebook() as gb:  # formgrader's work, through the same API its handlers use
        override = gb.find_grade("w9_affine_tests", W, W, "alice")
        override.manual_score, override.needs_manual_grade = 0.5, False
        for student in ("alice", "carol"):
            answer = gb.find_grade("w9_why_bias", W, W, student)
            answer.manual_score, answer.needs_manual_grade = 1.0, False
        gb.find_comment("w9_why_bias", W, W, "alice").manual_comment = "Right: the bias shifts the boundary."
        gb.db.commit()
    return course, out


# ----- the CLI summary ---------------------------------------------------------------
def test_grade_summary_totals_come_from_the_gradebook(graded):
    _, out = graded
    rows = {line.split()[0]: line for line in out.splitlines() if line.split() and line.split()[0] in "alice carol"}
    # carol: 3 autograded, late penalty 3 ("zero") -> 0 so far; her written answer was not graded yet.
    assert " 0/4 " in rows["carol"] and "final pending" in rows["carol"]
    assert " 3/4 " in rows["alice"] and "final pending: 1 cell(s)" in rows["alice"]


# ----- feedback ----------------------------------------------------------------------
def test_feedback_shows_the_override_manual_grade_penalty_and_final_total(graded):
    course, _ = graded
    write_feedback(course, W)
    alice = text((course.feedback("alice", W) / f"{W}.html").read_text())
    assert "affine 1 visible and 1 hidden check(s) 0.5 / 1 passed Score set by your instructor" in alice
    assert "Autograded exercises 2.5 / 3" in alice and "Written answers 1 / 1" in alice
    assert "Final total 3.5 / 4" in alice and "Right: the bias shifts the boundary." in alice
    assert "Late penalty" not in alice

    carol = text((course.feedback("carol", W) / f"{W}.html").read_text())
    assert "Autograded exercises 3 / 3" in carol and "Late penalty −3" in carol and "Final total 1 / 4" in carol
    assert "2 h 30 min late" in carol

    dave = text((course.feedback("dave", W) / f"{W}.html").read_text())
    assert "why bias (written answer) pending / 1 awaiting grading" in dave
    assert "Final total pending / 4" in dave and "3 points so far" in dave

    bob = text((course.feedback("bob", W) / f"{W}.html").read_text())
    assert "Final total 0 / 4" in bob and "no answer" in bob and "not done yet" in bob


def test_feedback_is_escaped_by_its_template(graded, tmp_path):
    course, _ = graded
    from grading.outputs.feedback import render

    result = dict(collect_results(course, W)["alice"], student="<script>x</script>")
    page = render(result, read_grades(course, W).submissions["alice"])
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page


# ----- the class report --------------------------------------------------------------
def test_report_final_totals_distributions_pending_and_failed_apart(graded):
    course, _ = graded
    write_feedback(course, W)
    s = summarize(collect_results(course, W), read_grades(course, W))
    assert set(s["failed"]) == {"broken"}
    assert {st: t[0] for st, t in s["totals"].items()} == {"alice": 3.5, "bob": 0.0, "carol": 1.0, "dave": None}
    assert s["totals"]["dave"][1] == 3.0  # so far, shown as pending
    ex = {e["grade_id"]: e for e in s["exercises"]}
    assert ex["w9_affine_tests"]["n"] == 4  # "broken" is not drawn as 0
    assert ex["w9_affine_tests"]["median"] == 0.75 and ex["w9_sigmoid_tests"]["mean"] == 1.5
    assert (ex["w9_why_bias"]["n"], ex["w9_why_bias"]["pending"]) == (3, 1)
    assert s["manual_progress"] == (3, 4)

    page = write_report(course, W).read_text()
    t = text(page)
    assert "alice Smith, Alice graded 2.5 / 3 1 / 1 3.5 / 4 feedback" in t
    assert "carol graded 3 / 3 1 / 1 −3 1 / 4 feedback" in t
    assert "dave pending manual grading 3 / 3 pending / 1 pending / 4" in t
    assert "3 of 4 written answers graded (1 pending)" in t and "1 autograded score(s) were changed by hand" in t
    assert "Submissions that could not be graded (1) " in t and "broken not a notebook" in t
    assert "Late submissions (1)" in t and "2 h 30 min late" in t and "Similar submissions" in t
    for student in ("alice", "bob", "carol", "dave"):
        link = f'href="../feedback/{student}/{W}/{W}.html"'
        assert link in page and (course.reports / ".." / "feedback" / student / W / f"{W}.html").is_file()
    assert "&#34;http://evil.example&#34;" in page or "&quot;http://evil.example&quot;" in page  # bob's name


# ----- export ------------------------------------------------------------------------
def rows_of(path):
    return list(csv.reader(path.open(newline="")))


def test_export_canvas_moodle_nbgrader(graded, tmp_path):
    course, _ = graded
    root = str(course.root)
    code, out, err = run_cli("--course", root, "export", "--format", "canvas", "--to", str(tmp_path / "c.csv"))
    assert code == 0, err
    assert "left blank: broken" in out and "left blank: dave" in out
    canvas = rows_of(tmp_path / "c.csv")
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", W]
    assert canvas[1] == ["    Points Possible", "", "", "", "", "4"]
    by_id = {r[2]: r for r in canvas[2:]}
    assert by_id["alice"] == ["Smith, Alice", "", "alice", "", "", "3.5"]
    assert by_id["carol"][5] == "1" and by_id["dave"][5] == "" and by_id["broken"][5] == ""
    assert by_id["bob"][0] == "'" + FORMULA_LAST + ", " + FORMULA_FIRST and by_id["bob"][5] == "0"

    code, _, err = run_cli(
        "--course", root, "export", "--format", "moodle", "--week", W, "--to", str(tmp_path / "m.csv")
    )
    assert code == 0, err
    moodle = rows_of(tmp_path / "m.csv")
    assert moodle[0] == ["ID number", "First name", "Last name", "Email address", W]
    by_id = {r[0]: r for r in moodle[1:]}
    assert by_id["alice"] == ["alice", "Alice", "Smith", "alice@uni.example", "3.5"]
    assert by_id["bob"][1:4] == ["'" + FORMULA_FIRST, "'" + FORMULA_LAST, "'-bob@x"]

    code, _, err = run_cli("--course", root, "export", "--to", str(tmp_path / "n.csv"))
    assert code == 0, err
    nb = {r["student_id"]: r for r in csv.DictReader((tmp_path / "n.csv").open(newline=""))}
    assert (nb["alice"]["raw_score"], nb["alice"]["score"], nb["alice"]["email"]) == ("3.5", "3.5", "alice@uni.example")
    assert (nb["carol"]["raw_score"], nb["carol"]["late_submission_penalty"], nb["carol"]["score"]) == ("4", "3", "1")
    assert nb["bob"]["first_name"] == "'" + FORMULA_FIRST


def test_canvas_ids_name_existing_assignments(graded, tmp_path):
    course, _ = graded
    root, out_csv = str(course.root), str(tmp_path / "c.csv")
    code, _, err = run_cli(
        "--course", root, "export", "--format", "canvas", "--canvas-id", f"{W}=4711", "--to", out_csv
    )
    assert code == 0, err
    header = rows_of(tmp_path / "c.csv")[0]
    assert header[5] == f"{W} (4711)"  # how Canvas matches a column to an existing assignment
    for bad in (f"{W}=12a", f"{W}", "week9_nope=1"):
        code, out, err = run_cli("--course", root, "export", "--format", "canvas", "--canvas-id", bad, "--to", out_csv)
        assert code == 2 and len(err.strip().splitlines()) == 1, (bad, err)
    code, _, err = run_cli("--course", root, "export", "--format", "moodle", "--canvas-id", f"{W}=1", "--to", out_csv)
    assert code == 2 and "canvas only" in err


def test_no_cell_starts_a_formula(graded, tmp_path):
    course, _ = graded
    for fmt in ("canvas", "moodle", "nbgrader"):
        code, _, err = run_cli("--course", str(course.root), "export", "--format", fmt, "--to", str(tmp_path / fmt))
        assert code == 0, err
        for row in rows_of(tmp_path / fmt):
            assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row), row


# ----- a gradebook that is not one ---------------------------------------------------
def test_corrupt_gradebook_is_one_line_naming_it_everywhere(graded, tmp_path):
    course, _ = graded
    root = shutil.copytree(course.root, tmp_path / "course")
    shutil.rmtree(root / "reports", ignore_errors=True)
    db = root / "gradebook.db"
    db.write_bytes(os.urandom(db.stat().st_size or 8192))
    for args in (["report", W], ["feedback", W], ["export", "--format", "canvas", "--to", str(tmp_path / "x.csv")]):
        code, out, err = run_cli("--course", str(root), *args)
        assert code == 2 and not out, (args, out)
        assert len(err.strip().splitlines()) == 1 and str(db) in err and "not a SQLite database" in err, err
    assert not (root / "reports" / f"{W}.html").exists() and not (tmp_path / "x.csv").exists()
