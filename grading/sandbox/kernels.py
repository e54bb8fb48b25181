"""Fresh kernels on demand: one sandbox + fork server per grading worker.

    with KernelFactory(limits) as factory:
        kernel = factory.fresh_kernel(stage=write_files)   # write_files(host_dir) puts the
        ... run cells through kernel.client ...            # notebook's files in a fresh folder
        factory.recycle()                     # kill everything, delete the per-notebook folders

This is the one replaceable piece that decides *where* student code runs:
grading/sandbox/execute.py only needs ``fresh_kernel()`` and the Kernel it returns.

Isolation is required: without it the factory refuses (SandboxUnavailable),
unless the caller opts out explicitly with ``unconfined=True``. A sandbox
that cannot be proven intact is thrown away and built again (SandboxDamaged).
"""

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time

import zmq
from jupyter_client import BlockingKernelClient
from jupyter_client.connect import channel_socket_types

from .execute import MAX_FRAME, frame_limit
from .isolation import machine
from .layers import (
    CGroup,
    Limits,
    SandboxUnavailable,
    bwrap_argv,
    detect,
    private_dir,
    remove_tree,
    require_isolation,
)

__all__ = ["KernelFactory", "LazyFactory", "SandboxDamaged", "SandboxError", "SandboxUnavailable"]


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the student's code)."""


class SandboxDamaged(SandboxError):
    """The sandbox can no longer be trusted or used; a new one must be built."""


class Kernel:
    """A running kernel: its client, its working directory (as the kernel sees it) and how it ended."""

    def __init__(self, factory, pid, client, workdir):
        self.factory, self.pid, self.client, self.workdir = factory, pid, client, workdir

    def exit_info(self):
        """None while alive, else {"signal": s, "code": c}."""
        return self.factory._status(self.pid)

    def alive(self):
        return self.exit_info() is None

    def death_reason(self):
        """Why the kernel is gone, in words an instructor can act on (composed here, from fixed words)."""
        try:
            return self._death_reason()
        except Exception:  # noqa: BLE001 - a dead kernel's state is the kernel's doing, never the grader's error
            return "kernel_died", "the kernel died"

    def _death_reason(self):
        info = self.exit_info() or {}
        sig = info.get("signal")
        if info.get("sandbox") == "gone":
            return "sandbox_lost", "the grading sandbox stopped (not the notebook's doing)"
        if self.factory.oom_kills() > self.factory._oom_baseline:
            return "memory_limit", f"memory limit exceeded ({self.factory.limits.memory_mb} MB)"
        if sig == signal.SIGXCPU:
            return "cpu_limit", f"CPU time limit exceeded ({self.factory.limits.cpu_seconds} s)"
        if sig == signal.SIGKILL:
            return "killed", "the kernel was killed (out of memory or CPU time)"
        if sig:
            return "kernel_died", f"the kernel died from {_signal_name(sig)}"
        code = info.get("code")
        code = code if type(code) is int else None
        return "kernel_died", f"the kernel exited (exit code {code}), e.g. sys.exit or os._exit"


def _signal_name(sig):
    """SIGSEGV, or "signal 40" for a number Python has no name for (the real-time signals)."""
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {int(sig)}"


class KernelFactory:
    """Owns one sandbox (bubblewrap + cgroup) and its zygote.

    ``unconfined=True`` is the explicit opt-out: no namespaces, no seccomp (rlimits and
    cgroups still apply). ``sandbox=False`` alone is refused, so nothing downgrades silently.
    """

    def __init__(self, limits=None, sandbox=True, name=None, figures=True, unconfined=False):
        self.limits = limits or Limits()
        # figures=False: plots are built but never rasterized to PNG. Grading needs the tests'
        # results, not pictures, and drawing is about half of a week notebook's run time.
        self.figures = figures
        self.name = name
        self.unconfined = bool(unconfined)
        if not sandbox and not self.unconfined:
            raise SandboxUnavailable("grading without the sandbox needs the explicit opt-out (--unconfined)")
        caps = detect() if self.unconfined else require_isolation()
        self.use_bwrap = not self.unconfined
        self.cgroup_flavour = caps.cgroup
        self._lock = threading.Lock()
        self.proc = None
        self._start()

    # ----- the sandbox ------------------------------------------------------
    def _start(self):
        self.root = private_dir("nncg-")
        self.run_root = os.path.join(self.root, "run")  # one folder per notebook: its sockets
        self.stage_root = os.path.join(self.root, "stage")  # one folder per notebook: its files
        self.tmp_root = os.path.join(self.root, "tmp")  # unconfined only: TMPDIR per notebook
        for d in (self.run_root, self.stage_root, self.tmp_root):
            os.mkdir(d, 0o700)
        self.cgroup = None
        if self.cgroup_flavour:
            slack = 256 * 2**20  # the zygote's own preloaded modules live in the same cgroup
            self.cgroup = CGroup(
                self.cgroup_flavour,
                f"{self.name or 'k'}-{os.path.basename(self.root)}",
                (self.limits.memory_mb + self.limits.workdir_mb) * 2**20 + slack,
                self.limits.max_processes,
            )
        self._oom_baseline = 0
        self._counter = 0
        self._kernel = None
        self._dirs = []  # the current notebook's host folders
        self._damaged = False
        self._start_zygote()

    def rebuild(self):
        """Throw this sandbox away and build a new one."""
        self._stop()
        self._start()

    def kernel_env(self, workdir="/w", tmpdir="/t"):
        venv_bin = os.path.dirname(sys.executable)
        return {
            "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": tmpdir,  # not the working copy: start-up must not read the student's files
            "TMPDIR": tmpdir,
            "LANG": "C.UTF-8",
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "MPLCONFIGDIR": tmpdir,
            "XDG_CACHE_HOME": tmpdir,
            "XDG_CONFIG_HOME": tmpdir,
            "IPYTHONDIR": os.path.join(tmpdir, "ipython"),
            "JUPYTER_CONFIG_DIR": os.path.join(tmpdir, "jupyter"),
            "JUPYTER_DATA_DIR": os.path.join(tmpdir, "jupyter"),
            "JUPYTER_RUNTIME_DIR": os.path.join(tmpdir, "jupyter"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "OPENBLAS_NUM_THREADS": "1",  # one core per worker: workers scale, threads would fight
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONHASHSEED": "0",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            "NBGRADER_EXECUTION": "autograde",
        }

    def _start_zygote(self):
        env = self.kernel_env()
        cmd = [sys.executable, "-m", "grading.sandbox.zygote"]
        if self.use_bwrap:
            cmd = bwrap_argv(self.run_root, self.stage_root, env) + cmd
        cgroup = self.cgroup
        log = os.path.join(self.root, "zygote.log")
        with open(log, "wb") as stderr:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env if not self.use_bwrap else {"PATH": env["PATH"]},
                cwd=self.tmp_root,
                preexec_fn=(cgroup.join_self if cgroup else None),
                start_new_session=True,
            )
        config = {
            "isolated": self.use_bwrap,
            "arch": machine(),
            "quota": {"bytes": self.limits.workdir_mb * 2**20, "inodes": self.limits.workdir_files},
            "limits": {
                "cpu_seconds": self.limits.cpu_seconds,
                "memory_bytes": self.limits.memory_mb * 2**20,
                "file_bytes": self.limits.file_mb * 2**20,
                "open_files": self.limits.open_files,
            },
        }
        reply = self._call(config, timeout=120)
        if not reply.get("ready"):
            raise SandboxError(f"the kernel sandbox did not start: {reply.get('error') or _tail(log)}")

    def _call(self, msg, timeout=30):
        with self._lock:
            if self.proc.poll() is not None:
                raise SandboxDamaged(f"the sandbox exited ({self.proc.returncode}); see {self.root}/zygote.log")
            try:
                self.proc.stdin.write((json.dumps(msg) + "\n").encode())
                self.proc.stdin.flush()
            except OSError as e:
                raise SandboxDamaged(f"the sandbox does not listen ({e})") from None
            line = _readline(self.proc.stdout, timeout)
            if not line:
                raise SandboxDamaged(f"no answer from the sandbox; see {self.root}/zygote.log")
            return json.loads(line)

    def _status(self, pid):
        try:
            reply = self._call({"op": "status", "pid": pid})
        except SandboxError:
            return {"signal": None, "code": None, "sandbox": "gone"}
        return reply.get("exit") if reply.get("ok") else {"signal": None, "code": None}

    def oom_kills(self):
        return self.cgroup.oom_kills() if self.cgroup else 0

    # ----- kernels --------------------------------------------------------
    def fresh_kernel(self, stage=None, ready_timeout=30):
        """A new kernel in a fresh, empty working copy holding what ``stage(dir)`` wrote into ``dir``.

        ``dir`` is a host folder the factory has just created. If the sandbox turns out to be
        damaged, it is rebuilt and the kernel started once more; a second failure raises.
        """
        if self._kernel is not None:
            self.recycle()
        for attempt in (1, 2):
            try:
                if self._damaged:
                    self.rebuild()
                return self._spawn(stage, ready_timeout)
            except SandboxDamaged:
                self._damaged = True
                self.recycle()
                if attempt == 2:
                    raise

    def _spawn(self, stage, ready_timeout):
        if self._call({"op": "ping"}).get("ok") is not True:
            raise SandboxDamaged("the fork server does not answer")
        if os.listdir(self.run_root) or os.listdir(self.stage_root) or os.listdir(self.tmp_root):
            raise SandboxDamaged("the sandbox's host folders hold leftovers")
        self._counter += 1
        n = str(self._counter)
        run, staged, tmp = (os.path.join(d, n) for d in (self.run_root, self.stage_root, self.tmp_root))
        self._dirs = [run, staged, tmp]
        for d in self._dirs:
            os.mkdir(d, 0o700)  # fails if it exists: never a folder someone else made
        if stage is not None:
            stage(staged)
        connection = {
            "transport": "ipc",
            "ip": "/k/kernel" if self.use_bwrap else os.path.join(run, "kernel"),
            "key": secrets.token_hex(16),
            "signature_scheme": "hmac-sha256",
            "shell_port": 1,
            "iopub_port": 2,
            "stdin_port": 3,
            "control_port": 4,
            "hb_port": 5,
            "kernel_name": "python3",
        }
        workdir, tmpdir = ("/w", "/t") if self.use_bwrap else (staged, tmp)
        msg = {
            "op": "spawn",
            "n": self._counter,
            "connection": connection,
            "env": self.kernel_env(workdir, tmpdir),
            "figure_formats": ["png"] if self.figures else [],
            "paths": {"workdir": workdir, "tmpdir": tmpdir},
        }
        reply = self._call(msg, timeout=90)
        if not reply.get("ok"):
            log = _tail(os.path.join(self.root, "zygote.log"))
            raise SandboxDamaged(f"could not start a kernel: {reply.get('error')} (log: {log})")
        client = BoundedKernelClient(context=_client_context())
        client.max_frame = frame_limit(self.limits)
        client.load_connection_info(dict(connection, ip=os.path.join(run, "kernel")))
        client.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=False)
        kernel = Kernel(self, reply["pid"], client, workdir)
        self._kernel = kernel
        self._oom_baseline = self.oom_kills()
        try:
            _wait_ready(kernel, ready_timeout)
        except SandboxError as e:  # no student code has run yet: this is the sandbox's failure
            raise SandboxDamaged(str(e)) from None
        return kernel

    def recycle(self):
        """Kill the current kernel and everything it started; delete its host folders."""
        if self._kernel is not None:
            try:
                self._kernel.client.stop_channels()
            except Exception:  # noqa: BLE001 - channels of a dead kernel may already be closed
                pass
            self._kernel = None
        reply = None
        try:
            reply = self._call({"op": "reset"}, timeout=60)
        except SandboxError:
            self._damaged = True
        for d in self._dirs:
            try:
                remove_tree(d)
            except OSError:
                self._damaged = True
        self._dirs = []
        return reply

    def _stop(self):
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.stdin.write(b'{"op": "exit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            pass
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout) if self.proc is not None else ():
            try:
                stream.close()
            except OSError:
                pass
        if self.cgroup:
            self.cgroup.remove()
        try:
            remove_tree(self.root)
        except OSError:
            pass

    def close(self):
        self._kernel = None
        self._stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _tail(path):
    try:
        with open(path, "rb") as f:
            lines = f.read()[-2000:].decode(errors="replace").strip().splitlines()
        return " | ".join(lines[-3:]) if lines else f"see {path}"
    except OSError:
        return f"see {path}"


_CONTEXT = None
SHELL_HWM = 4  # messages ZeroMQ may queue for the grader on a socket it does not read while a cell runs
IOPUB_HWM = 16  # the kernel's side queues 1000 more (in its own memory): honest output is not dropped


def _client_context():
    # The client connects before the new kernel has bound its sockets; retry
    # every 5 ms instead of ZeroMQ's default 100 ms.
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = zmq.Context()
        _CONTEXT.setsockopt(zmq.RECONNECT_IVL, 5)
        # Defaults for any socket made here (BoundedKernelClient sets its own before connecting).
        _CONTEXT.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME)
        _CONTEXT.setsockopt(zmq.RCVHWM, SHELL_HWM)
    return _CONTEXT


class BoundedKernelClient(BlockingKernelClient):
    """A client whose sockets bound what a kernel can make the grader's process hold.

    ZeroMQ's I/O thread receives into the grader's memory whether or not anyone reads:
    by default up to 1000 messages of any size per socket. Each socket here refuses a
    frame over ``max_frame`` (the peer is disconnected, which grading/sandbox/execute.py reports)
    and queues only a few messages. Only shell and IOPub are connected: stdin, control
    and heartbeat are never read, so they are never opened.
    """

    max_frame = MAX_FRAME

    def _create_connected_socket(self, channel, identity=None):
        sock = self.context.socket(channel_socket_types[channel])
        sock.setsockopt(zmq.MAXMSGSIZE, self.max_frame)  # before connect: options apply to new connections
        sock.setsockopt(zmq.RCVHWM, IOPUB_HWM if channel == "iopub" else SHELL_HWM)
        sock.linger = 0
        if identity:
            sock.identity = identity
        sock.connect(self._make_url(channel))
        return sock

    def stop_channels(self):
        # The base class would open the channels never started just to close them.
        for channel in (self._shell_channel, self._iopub_channel, self._stdin_channel, self._control_channel):
            if channel is not None:
                channel.close()
        if self._hb_channel is not None:
            self._hb_channel.stop()


class LazyFactory:
    """A KernelFactory that is only started if a kernel is actually needed.

    Reference runs are cached, so most grading sessions never need one: this
    saves starting a sandbox (about a second) for nothing.
    """

    def __init__(self, *args, **kwargs):
        self._args, self._kwargs, self._factory = args, kwargs, None

    def __getattr__(self, name):
        if self._factory is None:
            self._factory = KernelFactory(*self._args, **self._kwargs)
        return getattr(self._factory, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._factory is not None:
            self._factory.close()


def _readline(stream, timeout):
    import select

    deadline = time.monotonic() + timeout
    buf = b""
    fd = stream.fileno()
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            return buf
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return buf
        chunk = os.read(fd, 65536)
        if not chunk:
            return buf
        buf += chunk
    return buf


def _wait_ready(kernel, timeout):
    """Ask kernel_info until it replies (the first request can arrive before the kernel listens)."""
    # Ready means both: shell answers, and our IOPub subscription has reached the
    # kernel (its XPUB socket then sends iopub_welcome). Outputs published before
    # that would be lost.
    deadline = time.monotonic() + timeout
    client = kernel.client
    shell_ok = iopub_ok = False
    while time.monotonic() < deadline:
        if not shell_ok:
            msg_id = client.kernel_info()
        end = min(deadline, time.monotonic() + 0.25)
        while time.monotonic() < end and not (shell_ok and iopub_ok):
            if not iopub_ok:
                try:
                    client.get_iopub_msg(timeout=0.01)
                    iopub_ok = True
                except Exception:  # noqa: BLE001 - queue.Empty
                    pass
            if not shell_ok:
                try:
                    reply = client.get_shell_msg(timeout=0.01)
                    shell_ok = reply["parent_header"].get("msg_id") == msg_id
                except Exception:  # noqa: BLE001 - queue.Empty
                    pass
        if shell_ok and iopub_ok:
            _drain(client)
            return
        if not kernel.alive():
            raise SandboxError(f"the kernel died while starting: {kernel.death_reason()[1]}")
    raise SandboxError(f"the kernel did not answer within {timeout} s")


def _drain(client):
    while True:
        try:
            client.get_iopub_msg(timeout=0.005)
        except Exception:  # noqa: BLE001 - queue.Empty ends the drain
            return
