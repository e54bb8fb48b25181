"""Grading on a Dask Gateway cluster (`course grade --gateway URL [--cluster NAME]`).

A Gateway cluster is reached through the gateway's proxy with per-cluster TLS
credentials that only dask-gateway's client can fetch, so a plain scheduler
address is not enough: this module asks the gateway (its HTTP(S) address) for
the cluster and hands the pipeline an ordinary ``distributed.Client``.

* ``--cluster NAME``: an existing cluster of the gateway, used as it is and left
  running afterwards (it is not ours to stop).
* no ``--cluster``: a new cluster with ``workers`` workers, shut down afterwards,
  also when grading fails or is interrupted.

Authentication is dask-gateway's own configuration (``~/.config/dask/gateway.yaml``
or ``DASK_GATEWAY__AUTH__TYPE=basic`` with ``DASK_GATEWAY__AUTH__KWARGS__PASSWORD``,
``jupyterhub`` with ``JUPYTERHUB_API_TOKEN``, ...); a separate scheduler proxy address
is ``DASK_GATEWAY__PROXY_ADDRESS``. No message shows a password or a token: only the
gateway's address (without any user:password@ in it), the auth type and the cluster's name.
"""

import asyncio
import contextlib
import socket
import sys
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from .course import CourseError
from .text import for_terminal

START_SECONDS = 300  # a new cluster's scheduler and workers (pods, on Kubernetes) must be up by then
ASK_SECONDS = 10  # one question to the gateway's API
EXAMPLE = "https://gateway.example.edu or http://HOST:8000"


@dataclass(frozen=True)
class GatewayTarget:
    """Where to grade: the gateway's address, and an existing cluster's name or None (a new one)."""

    address: str
    cluster: str | None = None
    workers: int = 2  # of a new cluster

    @property
    def shown(self):
        """The address for a message: never its user:password@, escaped for a terminal."""
        parts = urlsplit(self.address)
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port:
            netloc += f":{parts.port}"
        return for_terminal(f"{parts.scheme}://{netloc}{parts.path}".rstrip("/"), 200)

    def describe(self):
        what = (
            f"cluster {for_terminal(self.cluster, 100)}" if self.cluster else f"a new cluster of {self.workers} workers"
        )
        return f"Dask Gateway {self.shown}, {what}"


def parse_target(address, cluster=None, workers=None):
    """A GatewayTarget from the command line's --gateway, --cluster and --workers; else one CourseError line."""
    if address.startswith("gateway://"):
        raise CourseError(
            f"--gateway takes the gateway's own address ({EXAMPLE}), not a cluster's gateway:// address: "
            "give the cluster's name with --cluster"
        )
    if not _is_http_url(address):
        raise CourseError(f"--gateway expects the gateway's address like {EXAMPLE}, got {for_terminal(address, 200)}")
    if cluster is not None:
        if not cluster or "/" in cluster or cluster != cluster.strip():
            raise CourseError(f"--cluster expects a Gateway cluster's name, got {for_terminal(repr(cluster), 120)}")
        if workers is not None:
            raise CourseError("--workers sizes a new Gateway cluster: an existing one (--cluster) keeps its own size")
    if workers is not None and workers < 1:
        raise CourseError(f"--workers must be a positive number for a new Gateway cluster, got {workers}")
    return GatewayTarget(address.rstrip("/"), cluster, workers or 2)


def _is_http_url(address):
    try:
        parts = urlsplit(address)
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query and not parts.fragment


def _gateway_module():
    try:
        import dask_gateway
    except ImportError as e:
        raise CourseError(
            f"--gateway needs the dask-gateway client, which is not installed here ({e}): "
            "pip install dask-gateway (or `make install`)"
        ) from None
    return dask_gateway


def _auth(target):
    """dask-gateway's auth from its own configuration; a misconfiguration is one line (its type only)."""
    import dask.config
    from dask_gateway.auth import get_auth

    kind = dask.config.get("gateway.auth.type", None)
    try:
        return get_auth()
    except Exception as e:  # noqa: BLE001 - ImportError, ValueError, TypeError from the configured class
        # The type's name and the error's class only: the error may quote the configured credentials.
        why = "no JupyterHub API token (set JUPYTERHUB_API_TOKEN)" if "JUPYTERHUB_API_TOKEN" in str(e) else ""
        raise CourseError(
            f"cannot authenticate to the Dask Gateway {target.shown}: auth type {for_terminal(repr(kind), 60)} "
            f"({why or type(e).__name__}); set DASK_GATEWAY__AUTH__TYPE to basic, jupyterhub or kerberos "
            "(docs/cluster.md)"
        ) from None


def _reach(target, timeout):
    """A TCP connection first: an unreachable gateway fails in seconds, not after aiohttp's 5 minutes."""
    parts = urlsplit(target.address)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as e:
        why = "no answer" if isinstance(e, TimeoutError) else (e.strerror or type(e).__name__)
        raise CourseError(f"cannot reach the Dask Gateway at {target.shown} ({why}): check the address") from None


def _http_problem(target, e):
    """One line for an error the gateway's API answered with (never its text: it may quote a header)."""
    status = getattr(e, "status", None)
    if status in (401, 403):
        import dask.config

        kind = for_terminal(repr(dask.config.get("gateway.auth.type", None)), 60)
        return (
            f"the Dask Gateway at {target.shown} refused the credentials (HTTP {status}, auth type {kind}): "
            "check DASK_GATEWAY__AUTH__TYPE and its password or token (docs/cluster.md)"
        )
    if isinstance(e, (TimeoutError, asyncio.TimeoutError)):
        return f"the Dask Gateway at {target.shown} did not answer within {ASK_SECONDS} s"
    # dask-gateway raises ValueError for the API's 404 and 422: no API at this path.
    what = f"HTTP {status}" if status else "not found" if isinstance(e, ValueError) else type(e).__name__
    return f"{target.shown} does not answer as a Dask Gateway ({what}): check the address"


async def _clusters(target, auth, timeout):
    """The user's active clusters (pending or running): also shows that the credentials work."""
    from dask_gateway import Gateway

    async with Gateway(target.address, auth=auth, asynchronous=True) as gateway:
        return await asyncio.wait_for(gateway.list_clusters(), timeout)


def check_gateway(target, timeout=ASK_SECONDS):
    """``target`` when its gateway answers, accepts the credentials and (with --cluster) runs that cluster.

    Every problem is one CourseError line, before anything is graded or written.
    """
    _gateway_module()
    auth = _auth(target)
    _reach(target, min(timeout, 5))
    try:
        clusters = asyncio.run(_clusters(target, auth, timeout))
    except Exception as e:  # noqa: BLE001 - aiohttp's errors, the API's 404, a timeout, a page that is not JSON
        raise CourseError(_http_problem(target, e)) from None
    if target.cluster is None:
        return target
    status = {c.name: c.status.name.lower() for c in clusters}
    if status.get(target.cluster) != "running":
        running = ", ".join(sorted(for_terminal(n, 60) for n, st in status.items() if st == "running")) or "none"
        why = f"is {status[target.cluster]}" if target.cluster in status else "is not one of your clusters"
        raise CourseError(
            f"the Dask Gateway at {target.shown} has no running cluster named {for_terminal(target.cluster, 100)} "
            f"(it {why}; running: {running}); leave out --cluster for a new one"
        )
    return target


@contextlib.contextmanager
def gateway_client(target, log=None):
    """A ``distributed.Client`` of the target's cluster; a cluster started here is shut down on exit.

    ``log`` (default: stderr) gets the warnings: a cluster that could not be shut down is never silent.
    """
    from dask.distributed import Client
    from dask_gateway import Gateway

    log = log or (lambda msg: print(msg, file=sys.stderr))
    gateway = Gateway(target.address, auth=_auth(target))
    name, ours = target.cluster, target.cluster is None
    try:
        if ours:
            name = gateway.submit()  # named at once: from here on it is shut down whatever happens
            report = _wait_running(gateway, name)
            gateway.scale_cluster(name, target.workers)
        else:
            report = gateway.get_cluster(name)
        with _connect(Client, report, target) as client:
            if ours:
                _wait_for_workers(client, target, log)
            yield client
    finally:
        if ours and name is not None:
            _stop(gateway, name, log)
        # No gateway.close(): its __del__ closes it again and fails once the loop is stopped (dask-gateway 2026.3).


def _connect(Client, report, target):
    """A Client of the cluster through the gateway's proxy, with the cluster's own TLS credentials."""
    try:
        return Client(report.scheduler_address, security=report.security, timeout="30s")
    except OSError as e:  # distributed's connect timeout is an OSError too
        raise CourseError(
            f"cannot connect to the {target.describe()} through the gateway's proxy "
            f"{for_terminal(report.scheduler_address, 200)} ({type(e).__name__}): if the proxy has a port of its "
            "own, set DASK_GATEWAY__PROXY_ADDRESS"
        ) from None


def _stop(gateway, name, log):
    try:
        gateway.stop_cluster(name)
    except Exception as e:  # noqa: BLE001 - say so, but never hide what happened while grading
        shown = for_terminal(name, 100)  # the gateway's text
        log(f"WARNING: could not shut down the Gateway cluster {shown} ({type(e).__name__}): stop it by hand")


def _wait_running(gateway, name):
    """The report of the new cluster ``name`` once its scheduler runs; else one CourseError line."""
    deadline = time.monotonic() + START_SECONDS
    while (report := gateway.get_cluster(name)).status.name == "PENDING":
        if time.monotonic() > deadline:
            raise CourseError(f"the new Gateway cluster {name} did not start in {START_SECONDS} s")
        time.sleep(0.5)
    if report.status.name != "RUNNING":
        status = report.status.name.lower()
        raise CourseError(f"the new Gateway cluster {name} did not start ({status}): see the gateway's log")
    return report


def _wait_for_workers(client, target, log):
    """All of a new cluster's workers, or at least one after START_SECONDS (with a warning)."""
    try:
        client.wait_for_workers(target.workers, timeout=START_SECONDS)
    except TimeoutError:
        n = len(client.scheduler_info()["workers"])
        if not n:
            raise CourseError(f"the {target.describe()} started no worker in {START_SECONDS} s") from None
        log(f"WARNING: only {n} of {target.workers} Gateway workers started in {START_SECONDS} s")
