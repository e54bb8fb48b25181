"""`course doctor`: one ok/FAIL line per check with the fix, exit 1 on any FAIL, and a cluster's workers."""

import importlib.metadata
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from grading import doctor
from grading.cli import main
from grading.sandbox import worker
from tests.test_distributed import PRELOAD, loopback_cluster

BINDIR = Path(sys.executable).parent


def course_doctor(*args, cwd, path=None):
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_DEBUG", "COURSE_NO_BWRAP")}
    if path is not None:
        env["PATH"] = path
    r = subprocess.run(
        [sys.executable, "-m", "grading.cli", "doctor", *args], capture_output=True, text=True, cwd=cwd, env=env
    )
    return r.returncode, r.stdout, r.stderr


def lines_by_check(out):
    """{check name: (status, rest of the line)} of doctor's output."""
    found = {}
    for line in out.splitlines():
        status, _, rest = line.partition("  ")
        name, _, detail = rest.strip().partition(": ")
        found[name] = (status.strip(), detail)
    return found


def test_doctor_reports_ok_on_this_machine_without_a_course(tmp_path):
    code, out, err = course_doctor(cwd=tmp_path)  # a worker machine: no course directory
    checks = lines_by_check(out)
    assert code == 0, out + err
    for name in ("python", "packages", "architecture", "bubblewrap", "user namespaces", "seccomp", "sandbox"):
        assert checks[name][0] == "ok", (name, out)
    assert {status for status, _ in checks.values()} <= {"ok", "warn"}, out
    # The versions are the ones the worker check compares, read independently here.
    assert f"numpy {importlib.metadata.version('numpy')}" in checks["packages"][1]
    assert f"nbgrader {importlib.metadata.version('nbgrader')}" in checks["packages"][1]
    assert "{}.{}".format(*sys.version_info[:2]) in checks["python"][1]
    assert "no course directory here" in checks["course"][1]


def test_without_bubblewrap_doctor_fails_with_the_fix(tmp_path):
    code, out, err = course_doctor(cwd=tmp_path, path=str(BINDIR))  # PATH without /usr/bin: no bwrap
    checks = lines_by_check(out)
    assert code == 1, out + err
    status, detail = checks["bubblewrap"]
    assert status == "FAIL" and "not found" in detail and "fix: apt-get install bubblewrap" in detail
    assert checks["sandbox"][0] == "FAIL" and checks["course grade"][0] == "FAIL"
    assert "refusing to run student code" in checks["course grade"][1]
    assert checks["seccomp"][0] == "ok"  # the other checks still ran


def test_a_pod_that_forbids_user_namespaces_gets_the_pod_settings_as_fix(tmp_path):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    (tmp_path / "proc/1").mkdir(parents=True)
    (tmp_path / "proc/1/cgroup").write_text("0::/kubepods/burstable/pod1234/abcd\n")
    hints = doctor.container_hints(tmp_path, {"KUBERNETES_SERVICE_HOST": "10.0.0.1"})
    assert hints[0].startswith("kubernetes") and any("kubepods" in h for h in hints)
    check = doctor.check_user_namespaces(hints, which=lambda _: str(fake))
    assert check.failed and "No permissions to create new namespace" in check.detail
    for setting in ("hostUsers: false", "seccompProfile Unconfined", "procMount Unmasked", "privileged: true"):
        assert setting in check.line()
    plain = doctor.check_user_namespaces(doctor.container_hints(tmp_path / "nothing", {}), which=lambda _: str(fake))
    assert plain.failed and "sysctl" in plain.line() and "hostUsers" not in plain.line()


def test_container_hints_on_a_plain_machine_are_empty(tmp_path):
    (tmp_path / "proc/1").mkdir(parents=True)
    (tmp_path / "proc/1/cgroup").write_text("0::/init.scope\n")
    assert doctor.container_hints(tmp_path, {}) == []
    (tmp_path / ".dockerenv").touch()
    assert doctor.container_hints(tmp_path, {}) == ["docker (/.dockerenv)"]


def test_pins_are_the_versions_the_worker_check_compares(capsys):
    assert main(["doctor", "--pins"]) == 0
    pins = dict(line.split("==") for line in capsys.readouterr().out.splitlines() if "==" in line)
    assert set(pins) == {*worker.PACKAGES, "dask", "distributed"}
    assert all(pins[name] == importlib.metadata.version(name) for name in pins)


@pytest.mark.slow
def test_the_scheduler_check_finds_the_worker_with_other_versions(tmp_path, capsys):
    """Two real workers, one of which has another numpy: doctor names that one and fails."""
    (tmp_path / "other_numpy.py").write_text(PRELOAD)
    with loopback_cluster(tmp_path, n_workers=1) as address:
        dask = str(BINDIR / "dask")
        odd = subprocess.Popen(
            [dask, "worker", address, *"--nthreads 1 --no-dashboard --memory-limit 0 --preload".split()]
            + [str(tmp_path / "other_numpy.py")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            from dask.distributed import Client

            with Client(address, timeout="60s") as c:
                c.wait_for_workers(2, timeout=120)
            worker.environment.cache_clear()  # the client's code as of now, as the workers just hashed theirs
            t = time.monotonic()
            checks = doctor.check_scheduler(address)
            assert time.monotonic() - t < 60
        finally:
            os.killpg(odd.pid, 15)
            odd.wait(timeout=20)
    by_status = {}
    for check in checks:
        by_status.setdefault(check.status, []).append(check)
    assert [c.name for c in by_status["ok"]][0] == "scheduler" and "2 worker(s)" in by_status["ok"][0].detail
    assert len(by_status["FAIL"]) == 1 and len(by_status["ok"]) == 2, [c.line() for c in checks]
    bad = by_status["FAIL"][0]
    assert f"numpy 0.0.1 vs {importlib.metadata.version('numpy')}" in bad.detail and "nbformat" not in bad.detail
    assert bad.name.startswith("worker tcp://127.0.0.1:") and "fix:" in bad.line()
    assert by_status["ok"][1].detail == "same environment, sandbox usable"


def test_an_unreachable_scheduler_is_one_failed_check():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends
    checks = doctor.check_scheduler(f"tcp://127.0.0.1:{port}")
    assert len(checks) == 1 and checks[0].failed and "cannot reach the Dask scheduler" in checks[0].detail


def test_the_gradebook_password_is_never_printed():
    # The URL is written in pieces: test_packaging refuses a committed URL with a password.
    course = SimpleNamespace(
        root=Path("/srv/course"), db_url="postgresql://grader:" + "s3cret-pw@db-host/gradebook", weeks=lambda: ["w1"]
    )
    text = "\n".join(str(c) for c in doctor.course_checks(course))
    assert "db-host" in text and "s3cret-pw" not in text
