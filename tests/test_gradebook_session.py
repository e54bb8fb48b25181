"""A grading session keeps one gradebook open for its writes; a failed or blocked write leaves it usable."""

import copy
import sqlite3
import threading
import time

import pytest
from nbgrader.api import MissingEntry

from grading.gradebook.store import record, writing_session
from grading.pipeline import collect_results, grade_week
from tests.conftest import release_nb, submit
from tests.fixtures import toy
from tests.fixtures.scores import cell_scores

pytestmark = pytest.mark.slow
W = toy.WEEK


@pytest.fixture
def graded_result(toy_course):
    submit(toy_course, "alice", toy.solved(release_nb(toy_course)))
    grade_week(toy_course, W, workers=0, progress=False)
    return collect_results(toy_course, W)["alice"]


def as_student(result, student):
    r = copy.deepcopy(result)
    r["student"] = student
    return r


def test_a_failed_write_is_rolled_back_and_the_next_one_lands(toy_course, graded_result):
    bad = as_student(graded_result, "bob")
    cells = bad["notebooks"][W]["cells"]
    assert len(cells) > 1
    cells[-1]["grade_id"] = "no_such_cell"  # the cells before it are already changed in the session
    with writing_session(toy_course):
        with pytest.raises(MissingEntry):
            record(toy_course, bad)
        record(toy_course, as_student(graded_result, "carol"))
    scores = cell_scores(toy_course, W)
    assert scores["carol"] == scores["alice"]
    assert not any(scores.get("bob", {}).values())  # nothing of bob's half-write reached the gradebook


def test_a_write_waits_for_another_process_holding_the_lock(toy_course, graded_result):
    db = toy_course.root / "gradebook.db"
    other = sqlite3.connect(db, isolation_level=None, check_same_thread=False)  # formgrader, saving
    other.execute("BEGIN EXCLUSIVE")
    released = threading.Timer(1.0, lambda: other.execute("COMMIT"))
    with writing_session(toy_course):
        released.start()
        t = time.monotonic()
        record(toy_course, as_student(graded_result, "dave"))
        waited = time.monotonic() - t
        record(toy_course, as_student(graded_result, "erin"))  # the session's gradebook still works
    released.join()
    other.close()
    scores = cell_scores(toy_course, W)
    assert waited >= 0.9 and scores["dave"] == scores["erin"] == scores["alice"]


def test_a_late_plugin_that_fails_leaves_no_score_without_its_penalty(toy_course, graded_result, monkeypatch):
    import grading.gradebook.store as gradebook

    def broken(*args, **kwargs):
        raise RuntimeError("the instructor's late plugin broke")

    monkeypatch.setattr(gradebook, "_assign_late_penalties", broken)
    with pytest.raises(RuntimeError):
        record(toy_course, as_student(graded_result, "frank"))
    assert not any(cell_scores(toy_course, W).get("frank", {}).values())  # scores and penalty: both or neither
