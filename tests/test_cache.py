"""Byte-identical submissions are graded once per session (grading/collect/cache.py), and only those."""

import dataclasses
import json

import pytest

import grading.verdict.grade
from grading.cli import build_parser
from grading.collect.cache import ResultCache, Twins, cache_key, reusable
from grading.course import Course
from grading.pipeline import collect_results, grade_week
from grading.sandbox.layers import Limits
from grading.sandbox.worker import environment, error_result
from grading.verdict.grade import Job, pack
from tests.conftest import release_nb, submit
from tests.fixtures import toy
from tests.fixtures.scores import cell_scores

pytestmark = pytest.mark.slow
W = toy.WEEK
T_ALICE, T_BOB = "2026-01-05 10:00:00.000000 UTC", "2026-01-06 11:00:00.000000 UTC"


@pytest.fixture
def kernel_runs(monkeypatch):
    """The number of notebooks run in a kernel (one per graded notebook), in this process."""
    runs = []
    real = grading.verdict.grade._grade_notebook

    def counted(*args, **kwargs):
        runs.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(grading.verdict.grade, "_grade_notebook", counted)
    return runs


def blank_pair_and_one_solved(course):
    rel = release_nb(course)
    submit(course, "alice", rel, timestamp=T_ALICE)
    submit(course, "bob", rel, timestamp=T_BOB)  # the same bytes, handed in a day later
    submit(course, "carol", toy.solved(rel))


def test_identical_submissions_are_run_once_with_the_same_scores_as_uncached(toy_course, kernel_runs):
    blank_pair_and_one_solved(toy_course)
    grade_week(toy_course, W, workers=0, progress=False)
    assert len(kernel_runs) == 2  # alice's and carol's; bob's is alice's, reused
    cached_scores, cached = cell_scores(toy_course, W), collect_results(toy_course, W)
    kernel_runs.clear()
    grade_week(toy_course, W, workers=0, force=True, progress=False, reuse=False)  # --no-cache
    assert len(kernel_runs) == 3
    assert cell_scores(toy_course, W) == cached_scores
    fresh = collect_results(toy_course, W)
    for student in ("alice", "bob", "carol"):
        assert fresh[student]["notebooks"][W]["cells"] == cached[student]["notebooks"][W]["cells"]
    # The student's own fields are bob's, never alice's.
    bob = cached["bob"]
    assert bob["student"] == "bob" and bob["timestamp"] == T_BOB and bob.get("reused_from_identical")
    assert bob["submission_hash"] != cached["alice"]["submission_hash"]  # the timestamps differ
    assert (toy_course.autograded("bob", W) / "timestamp.txt").read_text() == T_BOB
    assert not cached["alice"].get("reused_from_identical")


def test_one_differing_byte_is_graded_on_its_own(toy_course, kernel_runs):
    rel = release_nb(toy_course)
    submit(toy_course, "alice", rel)
    submit(toy_course, "bob", rel)
    path = toy_course.submitted("bob", W) / f"{W}.ipynb"
    path.write_bytes(path.read_bytes() + b"\n")  # the same notebook, one byte longer
    grade_week(toy_course, W, workers=0, progress=False)
    assert len(kernel_runs) == 2


def test_nbgrader_exchange_secrets_do_not_defeat_reuse(toy_course, kernel_runs):
    """Submissions through nbgrader's exchange each carry their own submission_secret.txt."""
    rel = release_nb(toy_course)
    for student in ("alice", "bob"):
        submit(toy_course, student, rel)
        (toy_course.submitted(student, W) / "submission_secret.txt").write_text(student.encode().hex() * 8)
    grade_week(toy_course, W, workers=0, progress=False)
    assert len(kernel_runs) == 1  # the secret is bookkeeping, not part of what is graded
    assert (toy_course.autograded("bob", W) / "submission_secret.txt").read_text() == b"bob".hex() * 8


def test_an_extra_file_is_part_of_the_submission(toy_course, kernel_runs):
    rel = release_nb(toy_course)
    submit(toy_course, "alice", rel)
    submit(toy_course, "bob", rel)
    (toy_course.submitted("bob", W) / "helper.py").write_text("x = 1\n")  # staged into bob's kernel only
    grade_week(toy_course, W, workers=0, progress=False)
    assert len(kernel_runs) == 2


def test_identical_submissions_in_parallel_are_graded_once_with_equal_scores(toy_course):
    rel = release_nb(toy_course)
    for student in ("ann", "ben", "cid"):
        submit(toy_course, student, rel)
    submit(toy_course, "dee", toy.solved(rel))
    summary = grade_week(toy_course, W, workers=2, progress=False)
    assert len(summary.graded) == 4
    results = collect_results(toy_course, W)
    reused = sorted(s for s, r in results.items() if r.get("reused_from_identical"))
    assert len(reused) == 2 and "dee" not in reused  # one of the three blanks ran, the other two reused it
    cells = {s: results[s]["notebooks"][W]["cells"] for s in ("ann", "ben", "cid")}
    assert cells["ann"] == cells["ben"] == cells["cid"]
    assert {s: r["student"] for s, r in results.items()} == {s: s for s in results}


def test_identical_timeouts_are_each_graded_on_their_own_in_parallel(toy_course):
    """A timeout depends on the machine, not the bytes: no twin inherits it, and none waits for another."""
    slow = toy.solved(release_nb(toy_course), sigmoid="import time\ntime.sleep(60)")
    for student in ("ann", "ben", "cid"):
        submit(toy_course, student, slow)
    summary = grade_week(toy_course, W, workers=2, progress=False, limits=Limits(cell_seconds=2))
    assert len(summary.graded) == 3
    results = collect_results(toy_course, W)
    assert sorted(results) == ["ann", "ben", "cid"]
    assert not any(r.get("reused_from_identical") for r in results.values())
    assert {r["notebooks"][W]["run_status"] for r in results.values()} == {"timeout"}
    assert all(r["seconds"] >= 2 for r in results.values())  # each one ran into the limit itself
    first, (b0, b1), (c0, c1) = sorted(summary.busy)
    assert b0 < c1 and c0 < b1  # the two twins ran side by side, once the first was back


# ----- the key and what is kept ------------------------------------------------------
@pytest.fixture
def packed_blank(toy_course):
    """(assignment, packed job) for a blank submission; the reference run is done once here."""
    from grading.sandbox.kernels import KernelFactory
    from grading.verdict.grade import build_assignment

    submit(toy_course, "alice", release_nb(toy_course))
    with KernelFactory(Limits(), sandbox=False, unconfined=True) as factory:
        assignment = build_assignment(toy_course, W, factory, log=lambda m: None)
    job = Job("alice", W, str(toy_course.submitted("alice", W)))
    return assignment, pack(assignment, job)


CONFIG = (Limits(), True, False)


def test_the_key_changes_with_everything_that_decides_the_grade(packed_blank):
    assignment, job = packed_blank
    env = environment()
    key = cache_key(assignment, job, CONFIG, env)
    assert key == cache_key(assignment, job, CONFIG, env)  # deterministic
    name = next(iter(assignment.notebooks))
    bundle = assignment.notebooks[name]
    gid = next(iter(bundle.release_cells))
    skeleton = {**bundle.release_cells, gid: {"source": bundle.release_cells[gid]["source"] + "\n# changed"}}
    changed_skeleton = dataclasses.replace(
        assignment, notebooks={name: dataclasses.replace(bundle, release_cells=skeleton)}
    )
    others = [
        cache_key(changed_skeleton, job, CONFIG, env),
        cache_key(dataclasses.replace(assignment, fingerprint="0" * 16), job, CONFIG, env),
        cache_key(dataclasses.replace(assignment, source_files=[("data.csv", b"1,2\n")]), job, CONFIG, env),
        cache_key(assignment, job, (Limits(cell_seconds=5.0), True, False), env),
        cache_key(assignment, job, (Limits(), False, False), env),  # unconfined
        cache_key(assignment, job, (Limits(), True, True), env),  # figures drawn
        cache_key(assignment, job, CONFIG, {**env, "numpy": "0.0"}),
        cache_key(assignment, job, CONFIG, {**env, "grading code": "other"}),
    ]
    assert key not in others and len(set(others)) == len(others)


def test_an_unreadable_submission_has_no_key(packed_blank):
    assignment, job = packed_blank
    broken = dataclasses.replace(job, parcel=dataclasses.replace(job.parcel, error=("cannot read", "tb")))
    assert cache_key(assignment, broken, CONFIG, environment()) is None


def graded_result(job, **notebook):
    nb = {"status": "graded", "run_status": "ok", "cells": [{"grade_id": "t", "points": 1.0}], **notebook}
    return {"student": job.student, "week": job.week, "status": "graded", "notebooks": {W: nb}, "late": {"x": 1}}


def test_errors_and_machine_dependent_runs_are_never_reused(packed_blank):
    _, job = packed_blank
    cache = ResultCache()
    assert not cache.put("k1", error_result(job, "grading error (ValueError)"))
    assert not cache.put("k2", graded_result(job, run_status="timeout"))
    assert not cache.put("k3", {**graded_result(job), "infrastructure_error": True})
    assert cache.get("k1", job) is None and cache.get("k2", job) is None and cache.get("k3", job) is None
    assert reusable(graded_result(job)) and cache.put("k4", graded_result(job))
    off = ResultCache(enabled=False)
    assert not off.put("k4", graded_result(job)) and off.get("k4", job) is None


def test_a_reused_result_is_the_new_students_own(packed_blank):
    _, job = packed_blank
    cache = ResultCache()
    first = graded_result(job)
    cache.put("k", first)
    first["notebooks"][W]["cells"][0]["points"] = 99.0  # the stored copy does not change with the original
    bob_parcel = dataclasses.replace(job.parcel, timestamp=T_BOB, submission_hash="b" * 64)
    bob = cache.get("k", dataclasses.replace(job, student="bob", parcel=bob_parcel))
    assert (bob["student"], bob["timestamp"], bob["submission_hash"]) == ("bob", T_BOB, "b" * 64)
    assert "late" not in bob  # computed for bob when his result is stored
    assert bob["notebooks"][W]["cells"][0]["points"] == 1.0
    bob["notebooks"][W]["cells"][0]["points"] = 42.0  # nor does the store change with a copy handed out
    assert cache.get("k", job)["notebooks"][W]["cells"][0]["points"] == 1.0
    assert json.dumps(bob)  # stored as JSON by the pipeline


def twin_of(job, student):
    """``job`` handed in by ``student``: the same bytes, their own hash and time."""
    parcel = dataclasses.replace(job.parcel, timestamp=f"2026-01-0{len(student)} 09:00:00.000000 UTC")
    return dataclasses.replace(job, student=student, folder=f"submitted/{student}/{W}", parcel=parcel)


def test_twins_wait_without_their_bytes_and_each_gets_its_own_copy(packed_blank):
    """Seven blank releases behind the one in flight cost no place among the tasks and hold no files."""
    assignment, job = packed_blank
    cache = ResultCache()
    twins = Twins(cache)
    key = cache.key(assignment, job, CONFIG, environment())
    assert twins.wait(key, job) is False  # the first is graded
    names = [f"s{i}" for i in range(7)]
    assert all(twins.wait(key, twin_of(job, s)) for s in names)
    assert job.parcel.submission is not None  # the one in flight still has its bytes
    held = twins._waiting[key]
    assert [t.student for t in held] == names and all(t.parcel.submission is None for t in held)
    assert twins.wait(None, twin_of(job, "nokey")) is False  # no key (--no-cache, unreadable): graded
    reused, again = twins.back(key, graded_result(job))
    assert again == [] and [r["student"] for r in reused] == names
    assert [r["timestamp"] for r in reused] == [t.parcel.timestamp for t in held]
    assert all(r["reused_from_identical"] for r in reused)
    assert twins.wait(key, twin_of(job, "late")) is False  # nothing in flight now: the cache answers


def test_twins_of_a_result_that_cannot_be_reused_are_all_graded_on_their_own(packed_blank):
    """A timeout depends on the machine: every twin runs again, in parallel, none waiting for another."""
    assignment, job = packed_blank
    cache = ResultCache()
    twins = Twins(cache)
    key = cache.key(assignment, job, CONFIG, environment())
    twins.wait(key, job)
    for s in ("ann", "ben", "cid"):
        twins.wait(key, twin_of(job, s))
    reused, again = twins.back(key, graded_result(job, run_status="timeout"))
    assert reused == [] and [j.student for j in again] == ["ann", "ben", "cid"]
    assert all(j.parcel is None and j.folder.endswith(j.student + "/" + W) for j in again)  # read again
    repacked = [twin_of(job, j.student) for j in again]
    assert [twins.wait(key, j) for j in repacked] == [False, False, False]  # all three go out at once
    assert twins.back(key, graded_result(job)) == ([], [])


def test_no_cache_flag_reaches_the_pipeline():
    assert build_parser().parse_args(["grade", W, "--no-cache"]).no_cache
    assert not build_parser().parse_args(["grade", W]).no_cache


def test_late_penalty_is_each_students_own(toy_template, tmp_path):
    """Two identical, fully solved notebooks: one on time, one late under the "zero" late plugin."""
    from nbgrader.utils import parse_utc

    from tests.conftest import copy_course
    from tests.fixtures.scores import totals

    course = Course.load(copy_course(toy_template, tmp_path / "course"))
    with open(course.root / "nbgrader_config.py", "a") as fh:
        fh.write('\nc.LateSubmissionPlugin.penalty_method = "zero"\n')
    with course.gradebook() as gb:
        gb.update_or_create_assignment(W, duedate=parse_utc("2026-01-05 12:00:00.000000 UTC"))
    solved = toy.solved(release_nb(course))
    submit(course, "alice", solved, timestamp=T_ALICE)  # on time
    submit(course, "bob", solved, timestamp=T_BOB)  # a day late: score zeroed
    grade_week(course, W, workers=0, progress=False)
    results = collect_results(course, W)
    assert results["bob"].get("reused_from_identical")
    assert results["alice"]["late"]["penalty"] == 0 and results["bob"]["late"]["penalty"] == 3  # all 3 points
    assert results["bob"]["late"]["seconds_late"] > 0 == results["alice"]["late"]["seconds_late"]
    scores = totals(course, W)  # the raw scores, before the penalty
    assert scores["alice"][0] == scores["bob"][0] == 3
