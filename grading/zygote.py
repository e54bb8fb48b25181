"""The kernel fork server ("zygote") that runs inside each grading sandbox.

Starting a Jupyter kernel costs about a second: Python, IPython, numpy and
matplotlib must be imported every time. The zygote imports them once, then
forks a kernel per notebook. A fork is a fresh process that shares nothing
writable with its siblings, so no state passes between students, yet it is
ready in about 50 ms with numpy already in memory.

The zygote never runs student code itself. Between notebooks ``reset``
kills every other process of the sandbox and empties the working
directory, so nothing a student leaves behind survives into the next one.

Protocol: one JSON object per line on stdin, one reply per line on stdout.
    {"op": "spawn", "connection": {...}, "connection_file": path, "env": {...}}
                                      -> {"ok": true, "pid": n}
    {"op": "status", "pid": n}        -> {"ok": true, "alive": b, "exit": {...} | null}
    {"op": "reset"}                   -> {"ok": true, "killed": k}
    {"op": "ping"} / {"op": "exit"}
"""

import ctypes
import json
import os
import resource
import shutil
import signal
import sys

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36

# What every course notebook imports; a forked kernel finds them loaded.
PRELOAD = [
    "numpy",
    "matplotlib",
    "matplotlib.pyplot",
    "matplotlib_inline.backend_inline",
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.debugger",
    "IPython.core.completerlib",
    "IPython.extensions.storemagic",
    "ipywidgets",
    "course_lib",
    "course_lib.nn",
    "course_lib.checks",
    "course_lib._wire",
    "course_lib.data",
    "course_lib.plots",
    "course_lib.widgets",
    "tqdm.auto",
]


def _prctl(option, value):
    try:
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class Zygote:
    def __init__(self, config):
        self.workdir = config["workdir"]
        self.tmpdir = config.get("tmpdir")
        self.limits = config.get("limits", {})
        self.own_pid_namespace = config.get("own_pid_namespace", False)
        self.children = {}  # pid -> exit info (None while running)

    # ----- setup ----------------------------------------------------------
    def preload(self):
        import importlib

        import matplotlib

        matplotlib.use("agg")  # a kernel switches to the inline backend itself
        for name in PRELOAD:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - a missing optional module only costs speed
                pass
        import threading

        if threading.active_count() != 1:  # forking a threaded process is unsafe
            raise RuntimeError("a preloaded module started a thread")

    # ----- operations ------------------------------------------------------
    def spawn(self, msg):
        with open(msg["connection_file"], "w") as f:
            json.dump(msg["connection"], f)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                self._become_kernel(msg)
            finally:
                os._exit(70)
        self.children[pid] = None
        return {"ok": True, "pid": pid}

    def _become_kernel(self, msg):
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        log = os.open(msg.get("log", os.devnull), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(null, 0)
        os.dup2(log, 1)  # fd-level output must never reach the protocol pipe
        os.dup2(log, 2)
        os.closerange(3, 65536)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _prctl(PR_SET_DUMPABLE, 1)
        os.chdir(self.workdir)
        os.environ.clear()
        os.environ.update(msg.get("env", {}))
        self._apply_limits()
        from ipykernel.kernelapp import IPKernelApp

        app = IPKernelApp.instance()
        app.initialize(
            [
                "-f",
                msg["connection_file"],
                "--HistoryManager.enabled=False",
                "--IPKernelApp.parent_handle=0",
                "--InlineBackend.figure_formats=" + _traitlet_set(msg.get("figure_formats", ["png"])),
            ]
        )
        _inline_figures(app.shell)
        app.start()

    def _apply_limits(self):
        lim = self.limits
        pairs = [
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_CPU, lim.get("cpu_seconds")),
            (resource.RLIMIT_AS, lim.get("memory_bytes")),
            (resource.RLIMIT_FSIZE, lim.get("file_bytes")),
            (resource.RLIMIT_NOFILE, lim.get("open_files")),
        ]
        if lim.get("memory_bytes"):
            # Address space counts every mapping inherited from the zygote (libraries,
            # numpy's arenas), so the cap is "what we already have + the allowance".
            pairs[2] = (resource.RLIMIT_AS, _vm_size() + lim["memory_bytes"])
        for which, value in pairs:
            if value:
                hard = value + 5 if which == resource.RLIMIT_CPU else value  # SIGXCPU, then SIGKILL
                resource.setrlimit(which, (int(value), int(hard)))

    def status(self, msg):
        pid = int(msg["pid"])
        self._reap()
        if pid not in self.children:
            return {"ok": False, "error": "unknown pid"}
        info = self.children[pid]
        return {"ok": True, "alive": info is None, "exit": info}

    def _reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.children:
                if os.WIFSIGNALED(status):
                    self.children[pid] = {"signal": os.WTERMSIG(status), "code": None}
                else:
                    self.children[pid] = {"signal": None, "code": os.WEXITSTATUS(status)}

    def reset(self, msg):
        killed = self._kill_everything_else()
        self._reap()
        self.children = {}
        for d in (self.workdir, self.tmpdir):
            if d:
                _empty(d)
        return {"ok": True, "killed": killed}

    def _kill_everything_else(self):
        me = os.getpid()
        killed = 0
        for _ in range(50):  # loop: a process may fork while we kill
            victims = (
                [p for p in _descendants(me) if p != me]
                if not self.own_pid_namespace
                else [p for p in _all_pids() if p not in (1, me)]
            )
            if not victims:
                break
            for p in victims:
                try:
                    os.kill(p, signal.SIGKILL)
                    killed += 1
                except (ProcessLookupError, PermissionError):
                    pass
            self._reap_all_blocking(victims)
        return killed

    def _reap_all_blocking(self, pids):
        for p in pids:
            try:
                os.waitpid(p, 0)
            except ChildProcessError:
                pass


def _inline_figures(shell):
    """Show figures inline, as a freshly started kernel does.

    A normal kernel imports matplotlib after setting MPLBACKEND, and matplotlib_inline
    hooks itself into the shell on import. Here matplotlib was imported by the zygote
    (with the Agg backend, before any shell existed), so do that wiring now.
    """
    from IPython.core.pylabtools import activate_matplotlib
    from matplotlib_inline.backend_inline import configure_inline_support

    backend = "module://matplotlib_inline.backend_inline"
    activate_matplotlib(backend)  # interactive mode, so figures are flushed after each cell
    configure_inline_support(shell, backend)


def _traitlet_set(items):
    return "set()" if not items else "{" + ",".join(repr(i) for i in items) + "}"


def _vm_size():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _descendants(root):
    """Every process below ``root`` (orphans come back to us: we are a subreaper)."""
    parent = {}
    for pid in _all_pids():
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
            parent[pid] = int(stat.rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = set(), {root}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier and p not in found}
        found |= frontier
    return found


def _empty(path):
    for entry in os.scandir(path):
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def main():
    config = json.loads(sys.stdin.readline())
    out = sys.stdout
    # Our stdout is the protocol; anything a library prints must go elsewhere.
    sys.stdout = sys.stderr
    z = Zygote(config)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_DUMPABLE, 0)  # kernels (same uid) cannot ptrace or read our memory
    z.preload()
    out.write(json.dumps({"ok": True, "ready": True, "pid": os.getpid()}) + "\n")
    out.flush()
    ops = {"spawn": z.spawn, "status": z.status, "reset": z.reset, "ping": lambda m: {"ok": True}}
    for line in sys.stdin:
        try:
            msg = json.loads(line)
            if msg.get("op") == "exit":
                z.reset(msg)
                break
            reply = ops[msg["op"]](msg)
        except Exception as e:  # noqa: BLE001 - report, never die on a bad request
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
