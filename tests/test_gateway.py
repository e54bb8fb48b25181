"""`course grade --gateway` and `course doctor --gateway` against a real Dask Gateway on loopback.

The gateway is dask-gateway-server with its UnsafeLocalBackend: schedulers and workers
are local processes of the test's own user (root here), with no per-user accounts. The
LocalBackend proper would switch to the requesting user's unix account, which the test
would have to create; what is tested here (the CLI's connection through the gateway's
proxy with TLS, simple auth, cluster lifetime, the worker check) is the same either way.
"""

import contextlib
import importlib.metadata
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dask.config
import pytest

from grading import doctor
from grading.cli import main
from grading.gateway import parse_target
from grading.sandbox import worker
from tests import test_distributed as dist
from tests.fixtures import toy
from tests.fixtures.scores import cell_scores
from tests.test_cli import closed_port, course_cmd, one_line

pytest.importorskip("dask_gateway_server", reason="the dev extra installs dask-gateway-server")
pytestmark = pytest.mark.slow
W = toy.WEEK
BINDIR = Path(sys.executable).parent
serial_scores = dist.serial_scores  # the toy class of test_distributed, graded in this process

CONFIG = """
from dask_gateway_server.options import Bool, Options

c.DaskGateway.address = "127.0.0.1:{api}"  # the gateway's private API (the proxy forwards to it)
c.Proxy.address = "127.0.0.1:{port}"  # the one public port: HTTP API and the clusters' TLS
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.LocalBackend.clusters_directory = {clusters!r}
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.SimpleAuthenticator.password = {password!r}
c.ClusterConfig.scheduler_cmd = [{dask!r}, "scheduler"]
c.ClusterConfig.worker_cmd = [{dask!r}, "worker", "--no-nanny"]  # starts in half the time
c.ClusterConfig.worker_threads = 1

def options(o):  # a cluster whose workers have another numpy (tests.test_distributed.PRELOAD)
    return {{"worker_cmd": [{dask!r}, "worker", "--no-nanny", "--preload", {preload!r}]}} if o.other_numpy else {{}}

c.Backend.cluster_options = Options(Bool("other_numpy", default=False), handler=options)
"""


def spawned_by(port):
    """Pids of the schedulers and workers the gateway on ``port`` started (they carry its API's URL)."""
    mark = f"DASK_GATEWAY_API_URL=http://127.0.0.1:{port}/api".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and mark in (proc / "environ").read_bytes().split(b"\0"):
                pids.append(int(proc.name))
    return pids


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """A running dask-gateway-server: (address, environment for `course` with the right password, password)."""
    workdir = tmp_path_factory.mktemp("gateway")
    (workdir / "other_numpy.py").write_text(dist.PRELOAD)
    (workdir / "clusters").mkdir()
    api, port, password = closed_port(), closed_port(), secrets.token_urlsafe(16)
    fields = {"api": api, "port": port, "password": password, "clusters": str(workdir / "clusters")}
    config = CONFIG.format(**fields, dask=str(BINDIR / "dask"), preload=str(workdir / "other_numpy.py"))
    (workdir / "config.py").write_text(config)
    env = dict(os.environ, PATH=f"{BINDIR}{os.pathsep}{os.environ['PATH']}")
    log = open(workdir / "gateway.log", "w")
    server = subprocess.Popen(
        [str(BINDIR / "dask-gateway-server"), "-f", str(workdir / "config.py")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=workdir,
    )
    address = f"http://127.0.0.1:{port}"
    auth = {"DASK_GATEWAY__AUTH__TYPE": "basic", "DASK_GATEWAY__AUTH__KWARGS__PASSWORD": password}
    try:
        _wait_for(lambda: _answers(port), what="the gateway", log=workdir / "gateway.log")
        yield address, auth, password
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the gateway stops its clusters as it shuts down
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        for pid in spawned_by(port):  # their own sessions: not in the gateway's process group
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        log.close()
        assert not spawned_by(port), "processes of the gateway survived it"


def _answers(port):
    """The gateway's API answers through its proxy (the proxy alone says 404 until it has its routes)."""
    with contextlib.suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
        return r.status == 200
    return False


def _wait_for(ready, what, log, seconds=30):
    deadline = time.monotonic() + seconds
    while not ready():
        assert time.monotonic() < deadline, f"{what} did not start: {Path(log).read_text()[-2000:]}"
        time.sleep(0.1)


def _gateway_client(address, password):
    """dask-gateway's own client, as a user would have it. Never closed here: its __del__ does it,
    and fails when it was closed before (dask-gateway 2026.3), as GatewayCluster.close() would."""
    from dask_gateway import BasicAuth, Gateway

    return Gateway(address, auth=BasicAuth(password=password))


@contextlib.contextmanager
def other_numpy_cluster(g, workers=1):
    """A running cluster of the gateway, started as a user would, whose workers have another numpy."""
    from dask.distributed import Client

    name = g.submit(other_numpy=True)
    try:
        _wait_for(lambda: g.get_cluster(name).status.name == "RUNNING", what="the cluster", log=os.devnull)
        g.scale_cluster(name, workers)
        report = g.get_cluster(name)
        with Client(report.scheduler_address, security=report.security, timeout="30s") as c:
            c.wait_for_workers(workers, timeout=60)
        yield name
    finally:
        g.stop_cluster(name)


def _course_files(course):
    """Every file of the course with its size and time: 'nothing written' means this is unchanged."""
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in course.root.rglob("*") if p.is_file()}


def test_a_new_gateway_cluster_grades_exactly_like_local_and_is_shut_down(toy_course, serial_scores, gateway):
    address, auth, password = gateway
    serial = dist.results_without_timings(toy_course)
    t = time.monotonic()
    code, out, err, _ = course_cmd(
        "--course", str(toy_course.root), "grade", W, "--gateway", address, "--workers", "2", "--force", "--quiet",
        env=auth,
    )  # fmt: skip
    assert code == 0, (out, err)
    assert "2 worker(s)" in out and "6 graded" in out, out
    assert cell_scores(toy_course, W) == serial_scores
    assert dist.results_without_timings(toy_course) == serial
    assert password not in out + err
    assert _gateway_client(address, password).list_clusters() == []  # we created it: it is gone
    print(f"graded through the gateway in {time.monotonic() - t:.1f} s")


def test_gateway_workers_with_other_versions_grade_nothing_and_the_cluster_is_left_running(toy_course, gateway):
    """A cluster started by someone else (here: the test) whose workers have another numpy."""
    address, auth, password = gateway
    dist.class_of(toy_course, n=2)
    numpy = f"numpy 0.0.1 vs {importlib.metadata.version('numpy')}"
    g = _gateway_client(address, password)
    with other_numpy_cluster(g) as name:
        args = ("--course", str(toy_course.root), "grade", W, "--gateway", address, "--cluster", name)
        code, out, err, _ = course_cmd(*args, "--quiet", env=auth)
        assert code == 1, (out, err)
        assert "0 graded" in out and "2 grading error(s)" in out and out.count(numpy) == 2, out
        assert not any(s for scores in cell_scores(toy_course, W).values() for s in scores.values())

        checks = _doctor(parse_target(address, name), password)
        assert [c.status for c in checks] == ["ok", "FAIL"], [c.line() for c in checks]
        assert checks[1].name.startswith("worker tls://") and numpy in checks[1].detail
        assert [c.name for c in g.list_clusters()] == [name]  # not ours: left running


def test_doctor_checks_the_workers_of_a_new_gateway_cluster_and_shuts_it_down(gateway):
    address, _, password = gateway
    checks = _doctor(parse_target(address, workers=1), password)
    assert [(c.name, c.status) for c in checks][:1] == [("gateway", "ok")], [c.line() for c in checks]
    assert "1 worker(s)" in checks[0].detail and checks[1].detail == "same environment, sandbox usable"
    assert _gateway_client(address, password).list_clusters() == []


def _doctor(target, password):
    """`course doctor --gateway`'s cluster checks, in this process (dask-gateway's config set as by env)."""
    worker.environment.cache_clear()  # the client's code as of now, as the workers just hashed theirs
    with dask.config.set({"gateway.auth.type": "basic", "gateway.auth.kwargs.password": password}):
        return doctor.check_gateway_cluster(target)


def _refused(course, capsys, *args, password=None):
    """The one stderr line of a `course grade` that refuses at once, having written nothing (run in this process)."""
    before = _course_files(course)
    config = {"gateway.auth.type": "basic", "gateway.auth.kwargs.password": password} if password else {}
    with dask.config.set(config):
        try:
            code = main(["--course", str(course.root), "grade", W, "--quiet", *args])
        except SystemExit as e:  # argparse's usage errors
            code = e.code
    out, err = capsys.readouterr()
    assert code == 2 and not out, (code, out, err)
    assert _course_files(course) == before and not (course.root / "autograded").exists()
    return one_line(err)


def test_a_wrong_password_is_one_line_without_the_password_and_nothing_is_written(toy_course, gateway, capsys):
    address, _, password = gateway
    dist.class_of(toy_course, n=1)
    wrong = secrets.token_urlsafe(16)
    line = _refused(toy_course, capsys, "--gateway", address, password=wrong)
    assert "refused the credentials (HTTP 401" in line and address in line
    assert wrong not in line and password not in line
    with dask.config.set({"gateway.auth.type": "no.such.Auth", "gateway.auth.kwargs.password": wrong}):
        line = _refused(toy_course, capsys, "--gateway", address)
    assert "cannot authenticate" in line and "no.such.Auth" in line and wrong not in line


def test_bad_gateway_addresses_and_clusters_are_one_line_and_nothing_is_written(toy_course, gateway, capsys):
    address, _, password = gateway
    dist.class_of(toy_course, n=1)
    for bad in ("gateway.example.edu", "ftp://127.0.0.1:8000", "http://127.0.0.1:notaport", "http://", f"{address}?a"):
        line = _refused(toy_course, capsys, "--gateway", bad, password=password)
        assert "--gateway expects the gateway's address like" in line
    proxy = address.replace("http://", "gateway://") + "/somecluster"
    assert "give the cluster's name with --cluster" in _refused(toy_course, capsys, "--gateway", proxy)
    assert "--gateway URL --cluster NAME" in _refused(toy_course, capsys, "--scheduler", proxy)
    unreachable = f"http://127.0.0.1:{closed_port()}"
    line = _refused(toy_course, capsys, "--gateway", unreachable, password=password)
    assert f"cannot reach the Dask Gateway at {unreachable}" in line
    line = _refused(toy_course, capsys, "--gateway", address, "--cluster", "nosuchcluster", password=password)
    assert "has no running cluster named nosuchcluster" in line
    line = _refused(toy_course, capsys, "--gateway", f"{address}/not-the-api", password=password)
    assert "does not answer as a Dask Gateway (not found)" in line
    line = _refused(toy_course, capsys, "--gateway", address, "--cluster", "c1", "--workers", "3")
    assert "--workers sizes a new Gateway cluster" in line
    assert "not allowed with argument" in _refused(toy_course, capsys, "--scheduler", "tcp://h:1", "--gateway", address)
    assert "--cluster names" in _refused(toy_course, capsys, "--cluster", "abc")


def test_without_dask_gateway_installed_the_gateway_option_is_one_line(toy_course, gateway, capsys, monkeypatch):
    address, _, password = gateway
    dist.class_of(toy_course, n=1)
    monkeypatch.setitem(sys.modules, "dask_gateway", None)  # `import dask_gateway` raises ImportError
    line = _refused(toy_course, capsys, "--gateway", address, password=password)
    assert "needs the dask-gateway client" in line and "pip install dask-gateway" in line


def test_a_new_cluster_that_cannot_be_shut_down_is_a_warning_even_without_a_log(monkeypatch, capsys):
    """grade and doctor pass no log: the warning still reaches stderr, its cluster name escaped."""
    import dask.distributed
    import dask_gateway

    from grading import gateway as gw

    class Report:
        status = type("S", (), {"name": "RUNNING"})()
        scheduler_address, security = "gateway://x", None

    class FakeGateway:
        def __init__(self, *args, **kwargs):
            pass

        def submit(self):
            return "evil\x1b]0;owned\x07name"

        def get_cluster(self, name):
            return Report()

        def scale_cluster(self, name, n):
            pass

        def stop_cluster(self, name):
            raise RuntimeError("the gateway went away")

    class FakeClient:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def wait_for_workers(self, n, timeout):
            pass

    monkeypatch.setattr(gw, "_auth", lambda target: None)
    monkeypatch.setattr(dask_gateway, "Gateway", FakeGateway)
    monkeypatch.setattr(dask.distributed, "Client", FakeClient)
    with gw.gateway_client(parse_target("http://127.0.0.1:1")):
        pass
    err = capsys.readouterr().err
    assert "WARNING: could not shut down the Gateway cluster" in err and "stop it by hand" in err
    assert "\x1b" not in err and "\x07" not in err
