"""Fresh kernels on demand: one sandbox + fork server per grading worker.

    with KernelFactory(limits) as factory:
        kernel = factory.fresh_kernel()       # empty private working directory
        copy files into kernel.workdir ...
        ... run cells through kernel.client ...
        factory.recycle()                     # kill everything, wipe, ready again

This is the one replaceable piece that decides *where* student code runs:
grading/execute.py only needs ``fresh_kernel()`` and the Kernel it returns.
"""

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from jupyter_client import BlockingKernelClient

from .sandbox import CGroup, Limits, bwrap_argv, detect, private_dir


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the student's code)."""


class Kernel:
    """A running kernel: its client, its working directory and how it ended."""

    def __init__(self, factory, pid, client, workdir):
        self.factory, self.pid, self.client, self.workdir = factory, pid, client, workdir

    def exit_info(self):
        """None while alive, else {"signal": s, "code": c}."""
        return self.factory._status(self.pid)

    def alive(self):
        return self.exit_info() is None

    def death_reason(self):
        """Why the kernel is gone, in words an instructor can act on."""
        info = self.exit_info() or {}
        sig = info.get("signal")
        if self.factory.oom_kills() > self.factory._oom_baseline:
            return "memory_limit", f"memory limit exceeded ({self.factory.limits.memory_mb} MB)"
        if sig == signal.SIGXCPU:
            return "cpu_limit", f"CPU time limit exceeded ({self.factory.limits.cpu_seconds} s)"
        if sig == signal.SIGKILL:
            return "killed", "the kernel was killed (out of memory or CPU time)"
        if sig:
            return "kernel_died", f"the kernel died from signal {signal.Signals(sig).name}"
        return "kernel_died", f"the kernel exited (exit code {info.get('code')}), e.g. sys.exit or os._exit"


class KernelFactory:
    """Owns one sandbox (bubblewrap + cgroup when available) and its zygote."""

    def __init__(self, limits=None, sandbox=True, name=None, figures=True):
        self.limits = limits or Limits()
        # figures=False: plots are built but never rasterized to PNG. Grading needs the tests'
        # results, not pictures, and drawing is about half of a week notebook's run time.
        self.figures = figures
        caps = detect()
        self.use_bwrap = sandbox and caps.bubblewrap
        self.use_cgroup = sandbox and caps.cgroup
        self.root = private_dir("nncg-")
        self.rundir = os.path.join(self.root, "r")
        self.workdir = os.path.join(self.root, "w")
        self.tmpdir = os.path.join(self.root, "t")
        for d in (self.rundir, self.workdir, self.tmpdir):
            os.mkdir(d, 0o700)
        self.cgroup = None
        if self.use_cgroup:
            slack = 256 * 2**20  # the zygote's own preloaded modules live in the same cgroup
            self.cgroup = CGroup(
                caps.cgroup,
                name or os.path.basename(self.root),
                self.limits.memory_mb * 2**20 + slack,
                self.limits.max_processes,
            )
        self._oom_baseline = 0
        self._lock = threading.Lock()
        self._counter = 0
        self._kernel = None
        self._start_zygote()

    # ----- the zygote -----------------------------------------------------
    def kernel_env(self):
        venv_bin = os.path.dirname(sys.executable)
        return {
            "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": self.workdir,
            "TMPDIR": self.tmpdir,
            "LANG": "C.UTF-8",
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "MPLCONFIGDIR": self.tmpdir,
            "XDG_CACHE_HOME": self.tmpdir,
            "IPYTHONDIR": os.path.join(self.tmpdir, "ipython"),
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
        cmd = [sys.executable, "-m", "grading.zygote"]
        if self.use_bwrap:
            cmd = bwrap_argv([self.rundir, self.workdir, self.tmpdir], self.workdir, env) + ["--remount-ro", "/", *cmd]
        cgroup = self.cgroup
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(os.path.join(self.rundir, "zygote.log"), "wb"),
            env=env if not self.use_bwrap else {"PATH": env["PATH"]},
            cwd=self.workdir,
            preexec_fn=(cgroup.join_self if cgroup else None),
            start_new_session=True,
        )
        config = {
            "workdir": self.workdir,
            "tmpdir": self.tmpdir,
            "own_pid_namespace": self.use_bwrap,
            "limits": {
                "cpu_seconds": self.limits.cpu_seconds,
                "memory_bytes": self.limits.memory_mb * 2**20,
                "file_bytes": self.limits.file_mb * 2**20,
                "open_files": self.limits.open_files,
            },
        }
        reply = self._call(config, timeout=120)
        if not reply.get("ready"):
            raise SandboxError(f"the kernel sandbox did not start: {reply}")

    def _call(self, msg, timeout=30):
        with self._lock:
            if self.proc.poll() is not None:
                raise SandboxError(f"the sandbox exited ({self.proc.returncode}); see {self.rundir}/zygote.log")
            self.proc.stdin.write((json.dumps(msg) + "\n").encode())
            self.proc.stdin.flush()
            line = _readline(self.proc.stdout, timeout)
            if not line:
                raise SandboxError(f"no answer from the sandbox; see {self.rundir}/zygote.log")
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
    def fresh_kernel(self, ready_timeout=30):
        """Fork a new kernel in the (empty) working directory and wait until it answers."""
        if self._kernel is not None:
            self.recycle()
        self._counter += 1
        ipc = os.path.join(self.rundir, f"k{self._counter}")
        connection = {
            "transport": "ipc",
            "ip": ipc,
            "key": secrets.token_hex(16),
            "signature_scheme": "hmac-sha256",
            "shell_port": 1,
            "iopub_port": 2,
            "stdin_port": 3,
            "control_port": 4,
            "hb_port": 5,
            "kernel_name": "python3",
        }
        cf = os.path.join(self.rundir, f"k{self._counter}.json")
        reply = self._call(
            {
                "op": "spawn",
                "connection": connection,
                "connection_file": cf,
                "env": self.kernel_env(),
                "log": os.path.join(self.rundir, f"k{self._counter}.log"),
                "figure_formats": ["png"] if self.figures else [],
            }
        )
        if not reply.get("ok"):
            raise SandboxError(f"could not start a kernel: {reply.get('error')}")
        client = BlockingKernelClient(context=_client_context())
        client.load_connection_info(connection)
        client.start_channels()
        kernel = Kernel(self, reply["pid"], client, self.workdir)
        self._kernel = kernel
        self._oom_baseline = self.oom_kills()
        _wait_ready(kernel, ready_timeout)
        return kernel

    def recycle(self):
        """Kill the current kernel and everything it started; empty the working directory."""
        if self._kernel is not None:
            try:
                self._kernel.client.stop_channels()
            except Exception:  # noqa: BLE001 - channels of a dead kernel may already be closed
                pass
            self._kernel = None
        reply = self._call({"op": "reset"}, timeout=60)
        for entry in Path(self.rundir).iterdir():
            if entry.name.startswith("k"):
                entry.unlink(missing_ok=True)
        return reply

    def close(self):
        try:
            if self.proc.poll() is None:
                self.proc.stdin.write(b'{"op": "exit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.cgroup:
            self.cgroup.remove()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_CONTEXT = None


def _client_context():
    # The client connects before the new kernel has bound its sockets; retry
    # every 5 ms instead of ZeroMQ's default 100 ms.
    global _CONTEXT
    if _CONTEXT is None:
        import zmq

        _CONTEXT = zmq.Context()
        _CONTEXT.setsockopt(zmq.RECONNECT_IVL, 5)
        # A hostile kernel must not make the grader buffer a gigantic message.
        _CONTEXT.setsockopt(zmq.MAXMSGSIZE, 64 * 2**20)
    return _CONTEXT


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
