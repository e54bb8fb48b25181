"""The grading pipeline on a tiny course: parallel = serial, resumable, bad input, outputs, CLI."""

import csv
import hashlib
import io
import os
import zipfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import nbformat
import pytest

from grading.cli import build_parser, main
from grading.collect.submissions import collect
from grading.gradebook.store import export_csv, read_grades
from grading.outputs.feedback import write_feedback
from grading.outputs.report import summarize, write_report
from grading.pipeline import collect_results, grade_week
from tests.conftest import release_nb, submit
from tests.fixtures import toy
from tests.fixtures.scores import cell_scores, totals

pytestmark = pytest.mark.slow
W = toy.WEEK


def tree_digest(root):
    h = hashlib.sha256()
    for p in sorted(Path(root).rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_symlink():
            h.update(os.readlink(p).encode())
        elif p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def class_of_students(course):
    rel = release_nb(course)
    submit(course, "alice", toy.solved(rel))
    submit(course, "bob", rel)
    submit(course, "carol", toy.solved(rel, affine=toy.AFFINE_SOLUTION.replace("X @ W + b", "X @ W")))
    submit(
        course, "dave", toy.solved(rel, sigmoid=toy.SIGMOID_SOLUTION.replace("np.exp(-np.abs(z))", "np.exp(np.abs(z))"))
    )
    return {"alice": 3, "bob": 0, "carol": 2, "dave": 1}


def test_parallel_grading_equals_serial_grading(toy_course, tmp_path):
    expected = class_of_students(toy_course)
    serial = grade_week(toy_course, W, workers=0, progress=False)
    serial_scores = cell_scores(toy_course, W)
    serial_msgs = {
        s: [c["messages"] for c in r["notebooks"][W]["cells"]] for s, r in collect_results(toy_course, W).items()
    }
    parallel = grade_week(toy_course, W, workers=2, force=True, progress=False)
    assert parallel.workers == 2 and len(parallel.graded) == len(serial.graded) == 4
    # The sessions' timelines (benchmarks/grading.py): each submission graded once, after the start-up.
    for session in (serial, parallel):
        assert len(session.busy) == 4
        assert all(session.startup <= start < end <= session.seconds for start, end in session.busy)
    assert cell_scores(toy_course, W) == serial_scores
    assert {
        s: [c["messages"] for c in r["notebooks"][W]["cells"]] for s, r in collect_results(toy_course, W).items()
    } == serial_msgs
    assert {s: t[0] for s, t in totals(toy_course, W).items()} == expected
    carol = collect_results(toy_course, W)["carol"]["notebooks"][W]["cells"][1]
    assert carol["messages"] == [
        "Z for 2 examples, 3 inputs, 2 units: It looks like you forgot to add the bias b.",
        "Z for a 5x4 batch and 3 units: It looks like you forgot to add the bias b.",
    ]


def test_local_workers_fork_from_a_server_take_one_task_each_and_see_this_environment(monkeypatch, tmp_path):
    """What shortens a local session's serial part (benchmarks/grading.py measures it), kept safe.

    The workers fork from a server that imported Dask once, instead of each being spawned
    by this process (and importing it again); a worker holds only the task it runs, so the
    next submission goes to the first free worker. The server outlives a session, so each
    worker must still see the sandbox switches as this process has them now, set or unset.
    """
    from dask.distributed import Client

    from grading.pipeline import _local_cluster

    seen = []
    for value in (str(tmp_path), None):
        if value:
            monkeypatch.setenv("COURSE_SANDBOX_TMP", value)
        else:
            monkeypatch.delenv("COURSE_SANDBOX_TMP")
        with _local_cluster(1) as cluster, Client(cluster) as client:
            assert list(client.run(os.getppid).values()) != [os.getpid()]
            assert client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.WORKER_SATURATION) == 1.0

            # Dask's background work, which takes CPU from the kernels, is off (DASK_SETTINGS).
            # Each assertion names only what that server would have: a worker's profiler, the scheduler's stealing.
            def worker_timers(dask_worker):
                return "profile" in dask_worker.periodic_callbacks, dask_worker.periodic_callbacks["tick"].callback_time

            def scheduler_timers(dask_scheduler):
                return "stealing" in dask_scheduler.extensions, dask_scheduler.periodic_callbacks["tick"].callback_time

            assert list(client.run(worker_timers).values()) == [(False, 1000)]
            assert client.run_on_scheduler(scheduler_timers) == (False, 1000)
            seen += client.run(lambda: os.environ.get("COURSE_SANDBOX_TMP") or None).values()
    assert seen == [str(tmp_path), None]


def test_every_worker_is_given_the_weeks_once_even_one_that_joins_later_and_they_leave_with_the_plugin():
    """Tasks name their week by digest (no Dask data dependency, so any free worker takes the next one)."""
    from types import SimpleNamespace

    from dask.distributed import Client

    import grading.sandbox.worker as worker
    from grading.collect.cache import assignment_digest
    from grading.pipeline import _local_cluster
    from grading.sandbox.worker import WeekBundles, grade_held_task
    from grading.verdict.grade import Job

    week1 = SimpleNamespace(week="week1", fingerprint="f1", notebooks={"week1": "spec 1"}, source_files={"d": b"1"})
    week2 = SimpleNamespace(week="week2", fingerprint="f2", notebooks={"week2": "spec 2"}, source_files={})
    d1, d2 = assignment_digest(week1), assignment_digest(week2)
    # Every result records its week's fingerprint: a week whose release changed is another week here.
    assert assignment_digest(SimpleNamespace(**{**vars(week1), "fingerprint": "f1 edited"})) != d1
    both, second = WeekBundles([week1, week2]), WeekBundles([week2])  # two sessions on one cluster
    assert both.digest == {"week1": d1, "week2": d2} and both.name != second.name
    third = WeekBundles([week2])  # a third session grading the same week as the second, at the same time
    assert third.name not in (both.name, second.name)

    def held():
        return sorted((d, h[0].week, h[1]) for d, h in worker._WEEKS.items())

    with _local_cluster(1) as cluster, Client(cluster) as client:
        for plugin in (both, second, third):
            client.register_plugin(plugin)
        cluster.scale(2)
        client.wait_for_workers(2)
        want = sorted([(d1, "week1", 1), (d2, "week2", 3)])
        assert list(client.run(held).values()) == [want, want]  # the late worker too
        client.unregister_worker_plugin(both.name)
        assert list(client.run(held).values()) == [[(d2, "week2", 2)]] * 2  # still held by the other sessions
        client.unregister_worker_plugin(second.name)
        assert list(client.run(held).values()) == [[(d2, "week2", 1)]] * 2
        client.unregister_worker_plugin(third.name)
        assert list(client.run(held).values()) == [[], []]
    lost = grade_held_task("0" * 64, Job("ann", "week1", "submitted/ann/week1"), None, True, environment={})
    assert (lost["student"], lost["status"]) == ("ann", "error") and "was not given the week" in lost["reason"]


def test_the_warm_sandbox_is_closed_only_when_the_last_session_on_a_worker_leaves():
    """Two sessions on one cluster: the first to end must not close the sandbox under the other's task."""
    import grading.sandbox.worker as worker
    from grading.sandbox.layers import Limits
    from grading.sandbox.worker import WarmSandbox

    first, second = (WarmSandbox(Limits(), False, unconfined=True) for _ in range(2))
    assert first.name != second.name  # else registering the second would tear the first down
    try:
        first.setup()
        second.setup()
        factory = worker._FACTORY
        assert factory is not None
        first.teardown()
        assert worker._FACTORY is factory  # the other session still grades here
        second.teardown()
        assert worker._FACTORY is None
    finally:
        worker.close_worker_factory()
        worker._WARM = 0


def test_resume_skips_graded_and_regrades_changed_or_forced(toy_course):
    class_of_students(toy_course)
    grade_week(toy_course, W, workers=0, progress=False)
    again = grade_week(toy_course, W, workers=0, progress=False)
    assert not again.graded and len(again.skipped) == 4
    submit(toy_course, "bob", toy.solved(release_nb(toy_course)))  # bob resubmits
    third = grade_week(toy_course, W, workers=0, progress=False)
    assert [g[0] for g in third.graded] == ["bob"] and totals(toy_course, W)["bob"][0] == 3
    forced = grade_week(toy_course, W, workers=0, force=True, progress=False)
    assert len(forced.graded) == 4


def test_resume_regrades_a_result_whose_gradebook_rows_are_gone(toy_course):
    """The sidecar says graded, but the gradebook lost the submission (a restored backup): graded again."""
    class_of_students(toy_course)
    grade_week(toy_course, W, workers=0, progress=False)
    with toy_course.gradebook() as gb:
        gb.remove_submission(W, "alice")
    again = grade_week(toy_course, W, workers=0, progress=False)
    assert [g[0] for g in again.graded] == ["alice"] and len(again.skipped) == 3
    assert totals(toy_course, W)["alice"][0] == 3


def test_bad_submissions_get_clear_reasons_and_are_never_modified(toy_course, tmp_path):
    rel = release_nb(toy_course)
    good = toy.solved(rel)
    submit(toy_course, "ok_student", good)
    submit(toy_course, "malformed", b'{"cells": [')
    submit(toy_course, "empty", b"")
    submit(toy_course, "binary", bytes(range(256)) * 10)
    # an nbformat 3 file, written by hand:
    submit(toy_course, "old_format", b'{"nbformat": 3, "nbformat_minor": 0, "worksheets": [], "cells": []}')
    d = submit(toy_course, "renamed", good, name="my_homework")
    d = submit(toy_course, "extra", good)
    nbformat.write(good, d / "scratch.ipynb")
    d = toy_course.submitted("missing", W)
    d.mkdir(parents=True)
    (d / "notes.txt").write_text("forgot the notebook")
    d = submit(toy_course, "link_outside", good)
    (d / "passwd").symlink_to("/etc/passwd")
    d = toy_course.submitted("link_notebook", W)
    d.mkdir(parents=True)
    (d / f"{W}.ipynb").symlink_to(toy_course.source(W) / f"{W}.ipynb")  # the solution!
    d = submit(toy_course, "huge", b"")
    with open(d / f"{W}.ipynb", "wb") as f:
        f.truncate(101 * 2**20)
    for odd in ["ünïcode", "with space", "..", ".hidden"]:
        (toy_course.submitted() / odd / W).mkdir(parents=True, exist_ok=True)
        nbformat.write(good, toy_course.submitted() / odd / W / f"{W}.ipynb") if odd != ".." else None
    before = tree_digest(toy_course.submitted())

    summary = grade_week(toy_course, W, workers=2, progress=False)

    assert tree_digest(toy_course.submitted()) == before
    failed = dict(summary.failed)
    graded = {g[0]: g[1] for g in summary.graded}
    assert graded["ok_student"] == 3 and graded["renamed"] == 3 and graded["extra"] == 3
    assert graded["link_outside"] == 3
    assert "invalid JSON" in failed["malformed"]
    assert "empty" in failed["empty"]
    assert "not UTF-8" in failed["binary"]
    assert "nbformat 3" in failed["old_format"]
    assert "missing" in failed["missing"]
    assert "symbolic link" in failed["link_notebook"]
    assert "100 MB" in failed["huge"]
    assert "invalid student id" in failed["ünïcode"] and "invalid student id" in failed["with space"]
    assert ".hidden" not in failed and ".hidden" not in graded
    notes = summary.notes
    assert any("renamed" in n for n in notes["renamed"])
    assert any("extra notebook scratch.ipynb" in n for n in notes["extra"])
    assert any("/etc/passwd" in n and "outside" in n for n in notes["link_outside"])
    table = summary.table()
    assert "malformed" in table and "FAILED" in table


def test_feedback_report_and_export(toy_course, tmp_path):
    expected = class_of_students(toy_course)
    grade_week(toy_course, W, workers=0, progress=False)
    paths = write_feedback(toy_course, W)
    assert len(paths) == 4
    hidden_lines = [
        ln.strip()
        for ln in toy.SIGMOID_TESTS.splitlines() + toy.AFFINE_TESTS.splitlines()
        if ln.strip() and not ln.startswith("###")
    ]
    for p in paths:
        page = p.read_text()
        for line in hidden_lines:
            assert line not in page, f"test code leaked into {p}: {line}"
    carol = (toy_course.feedback("carol", W) / f"{W}.html").read_text()
    assert "forgot to add the bias b" in carol and "2 / 3" in carol and "Week 9: toy" in carol
    bob = (toy_course.feedback("bob", W) / f"{W}.html").read_text()
    assert "not done yet" in bob and "no answer" in bob

    report = write_report(toy_course, W).read_text()
    assert report.count("<img") == 3 and "Most common failures" in report
    s = summarize(collect_results(toy_course, W), read_grades(toy_course, W))
    assert s["exercise_means"][0][1] in ("w9_sigmoid_tests", "w9_affine_tests")
    assert any("forgot to add the bias b" in msg for msg, _ in s["failures"])

    out = export_csv(toy_course, tmp_path / "grades.csv")
    rows = {r["student_id"]: r for r in csv.DictReader(out.open())}
    assert {s: float(r["raw_score"]) for s, r in rows.items()} == {s: float(v) for s, v in expected.items()}


def _zip(path, entries, when=(2026, 1, 1, 10, 0, 0)):
    """A zip whose entries are dated ``when``: the date collect uses (never a timestamp.txt)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, date_time=when)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return path


def test_collect_folder_and_zip_keeps_history(toy_course, tmp_path):
    good = nbformat.writes(toy.solved(release_nb(toy_course)))
    blank = nbformat.writes(release_nb(toy_course))
    z1 = _zip(tmp_path / "a.zip", {f"alice/{W}/{W}.ipynb": blank, f"bob/{W}.ipynb": blank})
    r = collect(toy_course, z1, week=W)
    assert {(s, st) for s, _, st, _ in r.rows} == {("alice", "collected"), ("bob", "collected")}
    z2 = _zip(tmp_path / "b.zip", {f"alice/{W}/{W}.ipynb": good}, when=(2026, 1, 2, 10, 0, 0))
    r = collect(toy_course, z2)
    assert r.rows[0][2] == "updated"
    assert (toy_course.submitted("alice", W) / f"{W}.ipynb").read_text() == good
    history = list((toy_course.submitted() / ".history" / "alice" / W).iterdir())
    assert len(history) == 1 and (history[0] / f"{W}.ipynb").read_text() == blank
    z3 = _zip(tmp_path / "c.zip", {f"alice/{W}/{W}.ipynb": blank + " "}, when=(2025, 12, 1, 10, 0, 0))
    assert collect(toy_course, z3).rows[0][2] == "older"
    assert (toy_course.submitted("alice", W) / f"{W}.ipynb").read_text() == good  # newest kept
    assert collect(toy_course, z2).rows[0][2] == "unchanged"
    z4 = _zip(tmp_path / "d.zip", {f"Alice/{W}/{W}.ipynb": good, f"evil name/{W}/{W}.ipynb": good})
    rows = {s: (st, why) for s, _, st, why in collect(toy_course, z4).rows}
    assert rows["Alice"][0] == "rejected" and "case" in rows["Alice"][1]
    assert rows["evil name"][0] == "rejected"


@pytest.mark.parametrize(
    "entries, message",
    [
        ({"../../etc/evil.ipynb": "x"}, "unsafe path"),
        ({"/abs/evil.ipynb": "x"}, "unsafe path"),
        ({"bomb/week9_toy/big.bin": "0" * (300 * 2**20)}, "zip bomb"),
    ],
)
def test_collect_refuses_dangerous_archives(toy_course, tmp_path, entries, message):
    from grading.course import CourseError

    archive = _zip(tmp_path / "x.zip", entries)
    with pytest.raises(CourseError, match=message):
        collect(toy_course, archive)
    assert not toy_course.submitted().exists() or not any(toy_course.submitted().iterdir())


def test_collect_refuses_symlinks_inside_zips(toy_course, tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo(f"alice/{W}/{W}.ipynb")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
        zf.writestr(f"bob/{W}/{W}.ipynb", nbformat.writes(release_nb(toy_course)))
    rows = {s: (st, why) for s, _, st, why in collect(toy_course, archive).rows}
    assert rows["alice"][0] == "rejected" and "symbolic link" in rows["alice"][1]
    assert rows["bob"][0] == "collected"
    assert not toy_course.submitted("alice").exists()


def run_cli(*args):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def test_every_command_has_help():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in sub.choices:
        code, out, _ = run_cli(name, "--help")
        assert code == 0 and "usage: course" in out


def test_cli_errors_are_one_clear_line(toy_course, tmp_path):
    code, _, err = run_cli("--course", str(toy_course.root), "grade", "week99_nope")
    assert code == 2 and "unknown week 'week99_nope'" in err and "Traceback" not in err
    code, _, err = run_cli("--course", str(tmp_path / "nowhere"), "doctor")
    assert code == 2 and "not a course directory" in err
    code, _, err = run_cli("--course", str(toy_course.root), "collect", str(tmp_path / "missing.zip"))
    assert code == 2 and "does not exist" in err
    code, _, err = run_cli("--course", str(toy_course.root), "grade", W, "--scheduler", "localhost:8786")
    assert code == 2 and "tcp://" in err


def _has_png(course, student):
    nb = nbformat.read(course.autograded(student, W) / f"{W}.ipynb", 4)
    return any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_figures_are_built_but_not_drawn_unless_asked(toy_course):
    class_of_students(toy_course)
    code, out, _ = run_cli("--course", str(toy_course.root), "grade", "--all", "--workers", "0", "--quiet")
    assert code == 0 and "alice" in out and not _has_png(toy_course, "alice")
    code, out, _ = run_cli(
        "--course", str(toy_course.root), "grade", W, "--workers", "0", "--quiet", "--force", "--figures"
    )
    assert code == 0 and _has_png(toy_course, "alice")
    assert cell_scores(toy_course, W)["alice"] == {"w9_sigmoid_tests": 2.0, "w9_affine_tests": 1.0}


def test_one_broken_week_does_not_stop_the_others_and_a_week_named_twice_is_graded_once(toy_course):
    from grading.pipeline import grade_weeks

    class_of_students(toy_course)
    broken = "week9_broken"  # its instructor notebook is not even JSON: nbgrader cannot release it
    toy_course.source(broken).mkdir(parents=True)
    (toy_course.source(broken) / f"{broken}.ipynb").write_text("{ not json")
    submit(toy_course, "alice", release_nb(toy_course), week=broken)
    logged = []
    out = grade_weeks(toy_course, [W, broken, W], workers=0, progress=False, log=logged.append)
    assert sorted(out) == sorted([W, broken])
    assert sorted(s for s, *_ in out[W].graded) == ["alice", "bob", "carol", "dave"]  # each once
    assert not out[broken].graded and len(out[broken].failed) == 1
    assert out[broken].failed[0][1].startswith("not graded: nbgrader generate_assignment")
    assert any(broken in m and "not graded" in m for m in logged)
    with pytest.raises(Exception, match="generate_assignment"):  # alone, it is an error as before
        grade_weeks(toy_course, [broken], workers=0, progress=False, log=logged.append)
