"""The `course` command's promise: one clear line per error, fast failure, honest exit codes.

Each test runs the installed `course` command in a subprocess on a copy of the toy course,
as an instructor would, and reads its stderr, exit status and (for the fast-fail cases)
how long it took. Bounds on time are generous: they tell seconds from half a minute.
"""

import importlib.metadata
import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from grading.cli import build_parser
from tests.conftest import release_nb, submit
from tests.fixtures import toy

W = toy.WEEK
COURSE = Path(sys.executable).with_name("course")  # the console script pyproject.toml installs


def course_cmd(*args, cwd=None, env=None, timeout=300):
    """(exit status, stdout, stderr, seconds) of a real `course` run."""
    environ = {k: v for k, v in os.environ.items() if k != "COURSE_DEBUG"}
    environ.update(env or {})
    t0 = time.monotonic()
    r = subprocess.run([str(COURSE), *args], capture_output=True, text=True, env=environ, cwd=cwd, timeout=timeout)
    return r.returncode, r.stdout, r.stderr, time.monotonic() - t0


def one_line(stderr):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    return lines[0]


def closed_port():
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _zip(path, entries):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 3, 12, 0, 0)), data)
    return path


# ----- gradebook ------------------------------------------------------------------------
def test_a_corrupt_gradebook_is_one_line_naming_the_file_and_what_to_do(toy_course):
    (toy_course.root / "gradebook.db").write_bytes(os.urandom(8192))
    for args in (["export", "--to", "g.csv"], ["grade", W, "--workers", "0", "--quiet"]):
        code, out, err, _ = course_cmd("--course", str(toy_course.root), *args)
        line = one_line(err)
        assert code == 2, (args, err)
        assert "gradebook.db is not a SQLite database" in line and "backup" in line, line
        assert "sqlalchemy" not in line.lower() and "Traceback" not in err


def test_an_unreachable_postgresql_gradebook_is_one_line_without_the_password(toy_course):
    secret = "s3cret" + "PW"  # built at run time: the repository scan refuses URLs with passwords
    url = "postgresql://grader:" + secret + f"@127.0.0.1:{closed_port()}/gradebook"
    code, _, err, seconds = course_cmd("--course", str(toy_course.root), "--db", url, "export")
    line = one_line(err)
    assert code == 2 and seconds < 30
    assert secret not in err and "127.0.0.1" in line and "grader@" in line
    assert "cannot connect to the gradebook" in line


# ----- fast failure on bad options ----------------------------------------------------------
def test_a_negative_worker_count_is_an_immediate_usage_error(toy_course):
    submit(toy_course, "alice", toy.solved(release_nb(toy_course)))
    # --unconfined: should the check ever be lost, nothing stops before Dask (the toy solution is trusted)
    code, out, err, seconds = course_cmd(
        "--course", str(toy_course.root), "grade", W, "--workers", "-3", "--unconfined"
    )
    line = one_line(err)
    assert code == 2 and seconds < 10, (seconds, err)
    assert "--workers" in line and "0" in line and "-3" in line
    assert not toy_course.autograded("alice", W).exists()


def test_the_library_refuses_a_negative_worker_count_too(toy_course):
    from grading.course import CourseError
    from grading.pipeline import grade_week

    with pytest.raises(CourseError, match="--workers"):
        grade_week(toy_course, W, workers=-3, progress=False, unconfined=True)


def test_an_unreachable_scheduler_fails_fast_before_any_progress_bar(toy_course):
    submit(toy_course, "alice", toy.solved(release_nb(toy_course)))
    address = f"tcp://127.0.0.1:{closed_port()}"
    code, out, err, seconds = course_cmd(
        "--course", str(toy_course.root), "grade", W, "--scheduler", address, "--unconfined"
    )
    line = one_line(err)  # no progress bar, no Dask log
    assert code == 2 and seconds < 10, (seconds, err)
    assert "cannot reach the Dask scheduler" in line and address in line
    assert not toy_course.autograded("alice", W).exists()


# ----- exit codes and option placement --------------------------------------------------
@pytest.mark.slow
def test_grade_exits_nonzero_when_a_submission_failed(toy_course):
    submit(toy_course, "alice", toy.solved(release_nb(toy_course)))
    code, out, err, _ = course_cmd("--course", str(toy_course.root), "grade", W, "--workers", "0", "--quiet")
    assert code == 0, err
    assert "1 graded, 0 failed" in out

    submit(toy_course, "bob", b"this is not a notebook")
    code, out, err, _ = course_cmd("--course", str(toy_course.root), "grade", W, "--workers", "0", "--quiet")
    assert code == 1, (out, err)
    assert "FAILED" in out and "bob" in out and "1 failed" in out

    # global options also after the subcommand, among its own options
    code, out, err, _ = course_cmd("grade", W, "--workers", "0", "--course", str(toy_course.root), "--quiet")
    assert code == 1 and "bob" in out, err


def test_global_options_are_accepted_before_or_after_the_subcommand(toy_course, tmp_path):
    code, out, err, _ = course_cmd("doctor", "--course", str(toy_course.root), cwd=tmp_path)
    assert code == 0 and str(toy_course.root) in out, err
    code, _, err, _ = course_cmd("export", "--to", "g.csv", "--course", str(toy_course.root), cwd=tmp_path)
    assert code == 0 and (tmp_path / "g.csv").exists(), err
    # given before the subcommand, an option is not reset by the subcommand's own default
    code, _, err, _ = course_cmd("--course", str(toy_course.root), "export", "--to", "h.csv", cwd=tmp_path)
    assert code == 0 and (tmp_path / "h.csv").exists(), err
    code, _, err, _ = course_cmd("--course", str(tmp_path / "nowhere"), "export", "--db", "sqlite:///x.db")
    assert code == 2 and "nowhere is not a course directory" in err


# ----- Canvas's flat download ---------------------------------------------------------------
def test_a_canvas_flat_zip_is_collected_by_student_name(toy_course, tmp_path):
    good = nbformat.writes(toy.solved(release_nb(toy_course)))
    archive = _zip(
        tmp_path / "submissions.zip",
        {
            f"alice_12345_67890_{W}.ipynb": good,
            f"bob_LATE_222_333_{W}-1.ipynb": good,  # late, and re-uploaded: Canvas's "-1"
            "carol_444_555_answers.txt": "no notebook: the week cannot be told",
        },
    )
    code, out, err, _ = course_cmd("--course", str(toy_course.root), "collect", str(archive))
    assert code == 1, (out, err)  # carol rejected
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "collected" in rows["alice"] and "collected" in rows["bob"] and "LATE" in rows["bob"]
    assert "rejected" in rows["carol"] and "--week" in rows["carol"]
    assert (toy_course.submitted("alice", W) / f"{W}.ipynb").read_text() == good
    assert (toy_course.submitted("bob", W) / f"{W}.ipynb").read_text() == good
    assert not toy_course.submitted("carol").exists()

    # with --week, carol's file goes to that week under its own name
    code, out, err, _ = course_cmd("--course", str(toy_course.root), "collect", str(archive), "--week", W)
    assert (toy_course.submitted("carol", W) / "answers.txt").exists(), out + err


def test_two_canvas_users_with_one_name_are_both_rejected(toy_course, tmp_path):
    good = nbformat.writes(toy.solved(release_nb(toy_course)))
    archive = _zip(tmp_path / "s.zip", {f"smithjo_1_10_{W}.ipynb": good, f"smithjo_2_20_{W}.ipynb": good})
    code, out, _, _ = course_cmd("--course", str(toy_course.root), "collect", str(archive))
    assert code == 1 and "share this name" in out
    assert not toy_course.submitted("smithjo").exists()


def test_an_unrecognised_zip_is_named_and_no_temporary_folder_is(toy_course, tmp_path):
    archive = _zip(tmp_path / "odd.zip", {"notes/readme.md": "hello"})
    code, _, err, _ = course_cmd("--course", str(toy_course.root), "collect", str(archive))
    line = one_line(err)
    assert code == 2 and "odd.zip" in line
    assert "nncollect" not in line and "/tmp/" not in line.replace(str(tmp_path), "")


def test_collect_help_documents_the_canvas_rule():
    code, out, _, _ = course_cmd("collect", "--help")
    assert code == 0 and "Canvas" in out and "lastnamefirstname" in out


# ----- version, help, usage errors ------------------------------------------------------
def test_version_is_the_installed_package_version():
    expected = importlib.metadata.version("nn-course")
    for args in (["--version"], ["grade", "--version"]):
        code, out, _, _ = course_cmd(*args)
        assert code == 0 and out.strip() == f"course {expected}", out


def test_every_argument_of_every_command_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    missing = [
        f"{name} {action.option_strings or action.dest}"
        for name, p in [("course", parser), *sub.choices.items()]
        for action in p._actions
        if action.dest != "command" and not (action.help and action.help.strip())
    ]
    assert not missing, missing


def test_a_usage_error_is_one_line():
    code, _, err, _ = course_cmd("grade", "--no-such-option")
    line = one_line(err)
    assert code == 2 and "--no-such-option" in line and "--help" in line


# ----- any other error ------------------------------------------------------------------
def test_an_unexpected_exception_is_one_escaped_line_and_debug_shows_the_traceback(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text('raise ValueError("boom\\x1b[2J\\nsecond line")\n')
    code, out, err, _ = course_cmd("--course", str(tmp_path), "export")
    line = one_line(err)
    assert code == 2 and "\x1b" not in err
    assert line.startswith("course: error: ValueError: boom\\x1b[2J") and "COURSE_DEBUG=1" in line

    code, _, err, _ = course_cmd("--course", str(tmp_path), "export", env={"COURSE_DEBUG": "1"})
    assert code == 2 and "Traceback" in err and "\x1b" not in err
