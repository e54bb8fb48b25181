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
# One BLAS thread in every kernel the tests start (nbval, nbgrader): threads fighting over
# tiny matrices on a shared 2-core machine make notebooks several times slower.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

_bindir = os.path.dirname(sys.executable)
if _bindir not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _bindir + os.pathsep + os.environ.get("PATH", "")


def copy_course(src, dst):
    shutil.copytree(src, dst, symlinks=True)
    return dst


def released_course(root, week):
    """A course folder at ``root`` holding one real week of this repository, released by nbgrader."""
    from grading.authoring.release import release
    from grading.course import Course

    root.mkdir(parents=True)
    shutil.copytree(REPO / "source" / week, root / "source" / week)
    shutil.copy(REPO / "nbgrader_config.py", root)
    course = Course.load(root)
    release(course, week)
    return course


@pytest.fixture(scope="session")
def toy_template(tmp_path_factory):
    from grading.authoring.release import release
    from grading.course import Course

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


# ----- PostgreSQL ---------------------------------------------------------------
def _pg_bindir():
    import glob

    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    if dirs:
        return dirs[-1]
    found = shutil.which("pg_ctl")
    return os.path.dirname(found) if found else None


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server on a free loopback port, for this test session only.

    PostgreSQL refuses to run as root, so as root the server runs as the
    `postgres` user; otherwise as the current user.
    """
    import socket
    import subprocess
    import tempfile
    import time

    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries are not installed (apt-get install postgresql)")
    base = tempfile.mkdtemp(prefix="nnpg-", dir="/tmp")
    os.chmod(base, 0o755)
    data = os.path.join(base, "data")
    as_user = []
    if os.geteuid() == 0:
        import pwd

        pw = pwd.getpwnam("postgres")
        os.mkdir(data, 0o700)
        os.chown(data, pw.pw_uid, pw.pw_gid)
        os.chown(base, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(
        as_user + [f"{bindir}/initdb", "-D", data, "-U", "grader", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    log = os.path.join(base, "server.log")
    subprocess.run(
        as_user
        + [
            f"{bindir}/pg_ctl",
            "-D",
            data,
            "-l",
            log,
            "-w",
            "-o",
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=100",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        for _ in range(100):
            r = subprocess.run([f"{bindir}/pg_isready", "-h", "127.0.0.1", "-p", str(port)], capture_output=True)
            if r.returncode == 0:
                break
            time.sleep(0.1)
        subprocess.run(
            as_user + [f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "grader", "gradebook"],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://grader@127.0.0.1:{port}/gradebook"
    finally:
        subprocess.run(as_user + [f"{bindir}/pg_ctl", "-D", data, "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
