"""The kernel fork server ("zygote") that runs inside each grading sandbox.

Starting a Jupyter kernel costs about a second: Python, IPython, numpy and
matplotlib must be imported every time. The zygote imports them once, then
forks a kernel per notebook, ready in tens of milliseconds.

Every kernel starts from a state no earlier notebook could touch (see
``spawn``): its own mount, PID and IPC namespaces, one fresh size-capped tmpfs
for its working directory, TMPDIR and /dev/shm, a fresh /proc, and a fresh
host directory (bound on /k) for its sockets, sealed read-only before any
student code runs. That state is checked, not assumed, before the kernel
starts. The kernel itself runs as uid 65534 in a user namespace of its own,
with no capabilities and a seccomp filter, in a PID namespace where it cannot
see or signal the zygote. The zygote never runs student code.

Per kernel: zygote -> C (new namespaces, mounts, checks, seals /k) -> K (pid 1
of the new PID namespace: fresh /proc, reaps, reports the kernel's exit) ->
P (the kernel). When K ends, the kernel ends with every process it started.

Protocol: one JSON object per line on stdin, one reply per line on stdout.
    {"op": "spawn", "n": n, "connection": {...}, "env": {...}}
                                      -> {"ok": true, "pid": n} | {"ok": false, "error": ...}
    {"op": "status", "pid": n}        -> {"ok": true, "alive": b, "exit": {...} | null}
    {"op": "reset"}                   -> {"ok": true, "killed": k}
    {"op": "ping"} / {"op": "exit"}
"""

import json
import os
import resource
import select
import shutil
import signal
import stat
import sys
import time
import traceback

from . import isolation as iso

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36

# Fixed paths inside the sandbox (empty directories made by bubblewrap).
WORK, TMP, IPC, SCRATCH, HOST = "/w", "/t", "/k", "/s", "/g"
SOCKETS = [f"{IPC}/kernel-{port}" for port in range(1, 6)]  # the connection's five ports

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


class Damaged(Exception):
    """The fresh state could not be proven; the host throws this sandbox away."""


def _prctl(option, value):
    try:
        iso.prctl(option, value)
    except OSError:
        pass


class Zygote:
    def __init__(self, config):
        self.isolated = config.get("isolated", True)
        self.limits = config.get("limits", {})
        self.quota = config.get("quota", {"bytes": 256 * 2**20, "inodes": 20000})
        self.arch = config.get("arch")
        self.children = {}  # pid of C -> {"pipe": fd, "exit": None while running}

    # ----- setup ----------------------------------------------------------
    def setup(self):
        """Make what all kernels share unchangeable: every mount under /dev read-only."""
        if not self.isolated:
            return
        if iso.in_initial_user_namespace():  # never remount the host's /dev, whoever started us
            raise Damaged("the fork server is not inside its sandbox (initial user namespace)")
        for point, (_fs, _dev, opts) in iso.mounts().items():
            if point == "/dev" or point.startswith("/dev/"):
                iso.remount(point, iso.MS_RDONLY | _flags(opts))
        writable = {p for p, (_f, _d, o) in iso.mounts().items() if "ro" not in o and not p.startswith("/proc")}
        if writable != {TMP}:
            raise Damaged(f"unexpected writable mounts in the sandbox: {sorted(writable)}")

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
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            os.close(r)
            _keep_only(w)
            try:
                if self.isolated:
                    self._fresh_namespaces(msg, w)
                else:
                    self._unconfined(msg, w)
            except Damaged as e:
                _send(w, "damaged", str(e))
            except BaseException as e:  # noqa: BLE001 - reported to the host, never raised in a fork
                _send(w, "error", f"{type(e).__name__}: {e}")
            finally:
                os._exit(70)
        os.close(w)
        self.children[pid] = {"pipe": r, "exit": None}
        kind, text = _read_line(r, timeout=60)
        if kind == "ready":
            return {"ok": True, "pid": pid}
        if kind == "exit":
            text = f"the kernel exited while starting: {text}"
        return {"ok": False, "damaged": kind != "error", "error": text or f"the kernel did not start ({kind})"}

    def _unconfined(self, msg, w):
        """No isolation (the instructor's explicit opt-out): the kernel runs in host directories."""
        paths = msg["paths"]
        with open(os.path.join(paths["tmpdir"], "kernel.json"), "x") as f:
            json.dump(msg["connection"], f)
        _send(w, "ready", "")
        os.close(w)
        self._become_kernel(msg, paths["workdir"], paths["tmpdir"], confine=False)

    def _fresh_namespaces(self, msg, w):
        """C: new mount/PID/IPC namespaces holding only fresh, empty, writable places; then K and the seal."""
        n = int(msg["n"])
        run, stage = f"{HOST}/run/{n}", f"{HOST}/stage/{n}"
        iso.unshare(iso.CLONE_NEWNS | iso.CLONE_NEWPID | iso.CLONE_NEWIPC)
        iso.mount(None, "/", None, iso.MS_REC | iso.MS_PRIVATE)
        # One tmpfs for the working copy, TMPDIR and /dev/shm: one quota for all the kernel can write.
        quota = f"size={self.quota['bytes']},nr_inodes={self.quota['inodes']},mode=0755"
        iso.mount("tmpfs", SCRATCH, "tmpfs", iso.MS_NOSUID | iso.MS_NODEV, quota)
        for sub, target in (("w", WORK), ("t", TMP), ("shm", "/dev/shm")):
            os.mkdir(f"{SCRATCH}/{sub}", 0o700)
            iso.bind(f"{SCRATCH}/{sub}", target, iso.MS_NOSUID | iso.MS_NODEV)
        iso.umount(SCRATCH)
        staged = sorted(os.listdir(stage))
        _copy_tree(stage, WORK)
        iso.bind(run, IPC, iso.MS_NOSUID | iso.MS_NODEV | iso.MS_NOEXEC)
        fd = os.open(f"{TMP}/kernel.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(msg["connection"], f)
        # Hide every other notebook's directories (and this one's staging copy).
        iso.mount("tmpfs", HOST, "tmpfs", iso.MS_RDONLY | iso.MS_NOSUID | iso.MS_NODEV | iso.MS_NOEXEC, "size=4k")
        self._check_fresh(staged)
        kid = os.fork()
        if kid == 0:
            try:
                self._init(msg, w)
            except BaseException as e:  # noqa: BLE001
                _send(w, "damaged", f"{type(e).__name__}: {e}")
            finally:
                os._exit(70)
        self._seal(kid, w)
        os.waitpid(kid, 0)
        os._exit(0)

    def _check_fresh(self, staged):
        """Prove the property instead of assuming it: the expected mounts, all of them new and empty."""
        m = iso.mounts()
        fresh = [m.get(p) for p in (WORK, TMP, "/dev/shm")]
        problems = []
        if not all(f and f[0] == "tmpfs" and "rw" in f[2] for f in fresh) or len({f[1] for f in fresh}) != 1:
            problems.append("the working copy, TMPDIR and /dev/shm are not one fresh tmpfs")
        elif m.get(IPC, (None, fresh[0][1]))[1] == fresh[0][1]:
            problems.append("the socket directory is not the host's fresh directory")
        if m.get(HOST, ("",))[0] != "tmpfs" or "ro" not in m[HOST][2] or os.listdir(HOST):
            problems.append("other notebooks' directories are not hidden")
        st = os.statvfs(WORK)
        if st.f_blocks * st.f_frsize != -(-self.quota["bytes"] // st.f_frsize) * st.f_frsize:
            problems.append("the working copy has no size quota")
        contents = {
            WORK: sorted(os.listdir(WORK)) == staged,
            TMP: os.listdir(TMP) == ["kernel.json"],
            "/dev/shm": os.listdir("/dev/shm") == [],
            IPC: os.listdir(IPC) == [],
        }
        problems += [f"{p} is not empty" for p, ok in contents.items() if not ok]
        writable = {p for p, (_f, _d, o) in m.items() if "ro" not in o and not p.startswith("/proc")}
        if writable != {WORK, TMP, "/dev/shm", IPC}:
            problems.append(f"unexpected writable mounts {sorted(writable - {WORK, TMP, '/dev/shm', IPC})}")
        if problems:
            raise Damaged("; ".join(problems))

    def _init(self, msg, w):
        """K, pid 1 of the kernel's PID namespace: a fresh /proc, then start the kernel and reap."""
        for sig in signal.valid_signals():  # as init, every signal from inside is then ignored
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
        iso.mount("proc", "/proc", "proc", iso.MS_NOSUID | iso.MS_NODEV | iso.MS_NOEXEC)
        for name in os.listdir("/proc"):  # the system-wide parts (sysctls, sysrq, ...) read-only
            path = f"/proc/{name}"
            if name.isdigit() or name in ("self", "thread-self") or os.path.islink(path):
                continue
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode) or mode & 0o222:
                iso.bind(path, path, iso.MS_RDONLY | iso.MS_NOSUID | iso.MS_NODEV | iso.MS_NOEXEC)
        if [p for p in os.listdir("/proc") if p.isdigit()] != ["1"]:
            raise Damaged("the kernel's PID namespace is not new")
        kernel = os.fork()
        if kernel == 0:
            os.close(w)  # the kernel must not be able to write the zygote's reports
            try:
                self._become_kernel(msg, WORK, TMP, confine=True)
            except BaseException:  # noqa: BLE001 - shown in the zygote's or the kernel's log
                traceback.print_exc()
            finally:
                os._exit(70)
        _to_null(2)  # the kernel has its own copy; init keeps nothing but its report pipe
        while True:  # orphans of the kernel come to us; the kernel's own end ends the namespace
            pid, status = os.wait()
            if pid == kernel:
                _send(w, "exit", json.dumps(_exit_info(status)))
                os._exit(0)

    def _seal(self, kid, w):
        """C: once the kernel has bound its sockets, /k becomes read-only; only then is it "ready"."""
        deadline = time.monotonic() + 30
        while not all(os.path.exists(p) for p in SOCKETS):
            if os.waitpid(kid, os.WNOHANG)[0] or time.monotonic() > deadline:
                _send(w, "error", "the kernel exited or hung while starting" + _log_tail(f"{TMP}/kernel.log"))
                os._exit(0)
            time.sleep(0.002)
        iso.remount(IPC, iso.MS_RDONLY | iso.MS_NOSUID | iso.MS_NODEV | iso.MS_NOEXEC)
        names = sorted(os.listdir(IPC))
        # (C is outside the kernel's PID namespace: the new /proc has no /proc/self for it.)
        if names != sorted(os.path.basename(p) for p in SOCKETS) or not os.statvfs(IPC).f_flag & os.ST_RDONLY:
            raise Damaged(f"the socket directory holds {names}")
        if not all(stat.S_ISSOCK(os.lstat(p).st_mode) for p in SOCKETS):
            raise Damaged("the socket directory holds something other than sockets")
        _send(w, "ready", "")

    def _become_kernel(self, msg, workdir, tmpdir, confine):
        """P: confine this process for good, then become the IPython kernel."""
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _prctl(PR_SET_DUMPABLE, 1)  # its own /proc files must belong to it (uid_map below)
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")  # under memory pressure the kernel goes first, not the zygote
        except OSError:
            pass
        if confine:
            iso.become_nobody()
            iso.drop_capabilities()
            iso.install_seccomp(self.arch)
        null = os.open(os.devnull, os.O_RDWR)
        log = os.open(os.path.join(tmpdir, "kernel.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(null, 0)
        os.dup2(log, 1)  # fd-level output must never reach the protocol pipe
        os.dup2(log, 2)
        os.closerange(3, 65536)
        # Start-up reads configuration from the current directory: the student's files are not there.
        os.chdir(tmpdir)
        os.environ.clear()
        os.environ.update(msg.get("env", {}))
        self._apply_limits()
        from ipykernel.kernelapp import IPKernelApp

        app = IPKernelApp.instance()
        app.initialize(
            [
                "-f",
                os.path.join(tmpdir, "kernel.json"),
                "--HistoryManager.enabled=False",
                "--IPKernelApp.parent_handle=0",
                "--InlineBackend.figure_formats=" + _traitlet_set(msg.get("figure_formats", ["png"])),
            ]
        )
        _inline_figures(app.shell)
        os.chdir(workdir)
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
        info = self.children[pid]["exit"]
        return {"ok": True, "alive": info is None, "exit": info}

    def _reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.get(pid)
            if child is not None and child["exit"] is None:
                # K reports how the kernel ended; without a report (unconfined), C's own status is it.
                child["exit"] = _reported_exit(child["pipe"]) or _exit_info(status)

    def reset(self, msg):
        killed = self._kill_everything_else()
        self._reap()
        for child in self.children.values():
            os.close(child["pipe"])
        self.children = {}
        return {"ok": True, "killed": killed}

    def _kill_everything_else(self):
        me = os.getpid()
        killed = 0
        for _ in range(50):  # loop: a process may fork while we kill
            victims = (
                [p for p in _descendants(me) if p != me]
                if not self.isolated
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
                _, status = os.waitpid(p, 0)
            except ChildProcessError:
                continue
            child = self.children.get(p)
            if child is not None and child["exit"] is None:
                child["exit"] = _exit_info(status)


def _flags(opts):
    """Mount flags to keep when remounting a mount with options ``opts``."""
    names = {"nosuid": iso.MS_NOSUID, "nodev": iso.MS_NODEV, "noexec": iso.MS_NOEXEC}
    return sum(flag for name, flag in names.items() if name in opts)


def _copy_tree(src, dst):
    """Copy the host's staging directory (made by the grader: only directories and regular files)."""
    for entry in os.scandir(src):
        target = os.path.join(dst, entry.name)
        if entry.is_dir(follow_symlinks=False):
            os.mkdir(target, 0o755)
            _copy_tree(entry.path, target)
        elif entry.is_file(follow_symlinks=False):
            shutil.copyfile(entry.path, target, follow_symlinks=False)
        else:
            raise Damaged("the staging directory holds something other than files and folders")


def _keep_only(w):
    """In a freshly forked child: the protocol pipes (fds 0 and 1) and every other inherited fd let go.

    The kernel's init (pid 1 of its namespace) inherits these fds, and anything in that
    namespace can open /proc/1/fd/N: it must hold no pipe of the fork server's protocol
    (nor another kernel's report pipe). Only ``w``, its own report pipe, and stderr (the
    fork server's log, for a failure while starting) stay.
    """
    _to_null(0)
    _to_null(1)
    os.closerange(3, w)
    os.closerange(w + 1, 65536)


def _to_null(fd):
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, fd)
    os.close(null)


def _send(fd, kind, text):
    line = (kind + " " + " ".join(str(text).split()))[:4000] + "\n"
    try:
        os.write(fd, line.encode())
    except OSError:
        pass


def _read_line(fd, timeout):
    """(kind, text) of the first report on ``fd``; ("eof", "") when the writer ended without one."""
    deadline = time.monotonic() + timeout
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return "timeout", "the kernel did not start in time"
        chunk = os.read(fd, 1)  # one byte at a time: what follows (the exit report) stays in the pipe
        if not chunk:
            return "eof", ""
        buf += chunk
    kind, _, text = buf.decode(errors="replace").strip().partition(" ")
    return kind, text


def _reported_exit(fd):
    os.set_blocking(fd, False)
    try:
        data = os.read(fd, 65536).decode(errors="replace")
    except OSError:
        return None
    for line in data.splitlines():
        kind, _, text = line.partition(" ")
        if kind == "exit":
            try:
                return json.loads(text)
            except ValueError:
                return None
    return None


def _exit_info(status):
    if os.WIFSIGNALED(status):
        return {"signal": os.WTERMSIG(status), "code": None}
    return {"signal": None, "code": os.WEXITSTATUS(status)}


def _log_tail(path):
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 600))
            return ": " + f.read().decode(errors="replace")
    except OSError:
        return ""


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
                line = f.read()
            parent[pid] = int(line.rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = set(), {root}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier and p not in found}
        found |= frontier
    return found


def main():
    config = json.loads(sys.stdin.readline())
    out = sys.stdout
    # Our stdout is the protocol; anything a library prints must go elsewhere.
    sys.stdout = sys.stderr
    z = Zygote(config)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_DUMPABLE, 0)  # kernels (same uid) cannot ptrace or read our memory
    # `python -m` put the start directory first on sys.path; imports must not look there.
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    try:
        z.setup()
    except (Damaged, OSError) as e:
        out.write(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}) + "\n")
        out.flush()
        return
    z.preload()
    out.write(json.dumps({"ok": True, "ready": True, "pid": os.getpid()}) + "\n")
    out.flush()
    ops = {"spawn": z.spawn, "status": z.status, "reset": z.reset, "ping": lambda m: {"ok": True}}
    for line in sys.stdin:
        try:
            msg = json.loads(line)
            if msg.get("op") == "exit":
                z.reset(msg)
                out.flush()
                # No interpreter finalization (numpy and IPython are preloaded): it cost each worker
                # about 0.5 s at shutdown and does nothing the host needs; the host removes the sandbox.
                os._exit(0)
            reply = ops[msg["op"]](msg)
        except Exception as e:  # noqa: BLE001 - report, never die on a bad request
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
