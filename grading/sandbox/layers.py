"""Operating-system isolation for grading kernels.

Layers, each used when the machine offers it (``detect`` says which):

* bubblewrap (Linux namespaces): a private filesystem view that holds only
  the Python install, the virtualenv and course_lib, read-only; no network.
  Inside it, every kernel gets fresh namespaces and one fresh size-capped
  tmpfs (working copy, TMPDIR, /dev/shm), runs as uid 65534 without
  capabilities and under a seccomp filter (grading/sandbox/zygote.py, isolation.py).
* cgroups (memory, pids): a hard memory cap for the whole sandbox (the
  kernel is killed and reported as "memory limit exceeded", the machine
  does not swap) and a cap on the number of processes (no fork bombs).
* resource limits (always): CPU seconds, address space, file size.
* wall-clock limits per cell and per notebook (always; grading/sandbox/execute.py).

Without bubblewrap (or with COURSE_NO_BWRAP set) sandboxed grading refuses to
start (SandboxUnavailable, with the fix in one line); running unconfined takes
an explicit opt-out. A missing cgroup stays a warning: the rlimits still cap
each kernel's memory, CPU and file sizes, but not its number of processes.
"""

import errno
import functools
import os
import platform
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Limits:
    cell_seconds: float = 60.0
    notebook_seconds: float = 300.0
    cpu_seconds: int = 300
    memory_mb: int = 2048
    file_mb: int = 64
    max_processes: int = 64
    max_output_mb: float = 20.0  # everything a notebook prints while being graded
    max_outputs: int = 10_000  # messages a notebook's kernel may send while being graded
    open_files: int = 1024
    workdir_mb: int = 256  # working copy + TMPDIR + /dev/shm of one kernel, together
    workdir_files: int = 20000  # inodes in that space


class SandboxUnavailable(RuntimeError):
    """This machine cannot isolate student code; the message says why and how to fix it, in one line."""


@dataclass
class Capabilities:
    bubblewrap: bool
    cgroup: str | None  # "v1", "v2" or None
    warnings: list = field(default_factory=list)
    unavailable: str = ""  # why there is no isolation, and the fix (one line); "" when bubblewrap works

    def describe(self):
        fs = "private filesystem + no network (bubblewrap)" if self.bubblewrap else "NO filesystem/network isolation"
        cg = f"memory and process caps (cgroup {self.cgroup})" if self.cgroup else "rlimit memory cap only"
        return f"sandbox: {fs}; {cg}; CPU, file-size and wall-clock limits"


# New namespaces for everything (user, mount, PID, IPC, UTS, network, cgroup). In that user
# namespace the zygote is uid 0 (bubblewrap would switch to another uid through a nested user
# namespace, whose copied mounts are locked: no fresh /proc per kernel) and keeps two capabilities:
# CAP_SYS_ADMIN to build each kernel's namespaces, CAP_SETFCAP so that a kernel may map itself to
# uid 65534 in a user namespace of its own. Kernels drop every capability before any student code.
ISOLATION = ["--unshare-all", "--unshare-user", "--uid", "0", "--gid", "0", "--cap-drop", "ALL"]
ISOLATION += ["--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETFCAP"]
USERNS_FIX = (
    "unprivileged user namespaces are disabled: "
    "sysctl -w kernel.unprivileged_userns_clone=1 (Debian) or kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu)"
)


def _bwrap_problem():
    """Why bubblewrap cannot build our sandbox here (one line with the fix), or "" when it can."""
    exe = shutil.which("bwrap")
    if not exe:
        return "bubblewrap is not installed: apt-get install bubblewrap"
    try:
        r = subprocess.run(
            [exe, *ISOLATION, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"],
            capture_output=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bubblewrap does not run ({type(e).__name__}): {USERNS_FIX}"
    if r.returncode != 0:
        said = " ".join(r.stderr.decode(errors="replace").split())[:200]
        return f"bubblewrap failed ({said.encode('ascii', 'backslashreplace').decode()}): {USERNS_FIX}"
    return ""


def _cgroup_flavour():
    if os.environ.get("COURSE_NO_CGROUP"):
        return None
    v1 = Path("/sys/fs/cgroup/memory")
    if (v1 / "memory.limit_in_bytes").exists() or (v1 / "cgroup.procs").exists():
        probe = v1 / f"nn-course-probe-{os.getpid()}"
        try:
            probe.mkdir()
            probe.rmdir()
            return "v1" if Path("/sys/fs/cgroup/pids").exists() else None
        except OSError:
            return None
    v2 = Path("/sys/fs/cgroup")
    if (v2 / "cgroup.controllers").exists():
        try:
            mine = Path("/proc/self/cgroup").read_text().strip().split("::", 1)[1]
            base = v2 / mine.lstrip("/")
            probe = base / f"nn-course-probe-{os.getpid()}"
            probe.mkdir()
            probe.rmdir()
            ctrl = (base / "cgroup.subtree_control").read_text()
            return "v2" if "memory" in ctrl and "pids" in ctrl else None
        except (OSError, IndexError):
            return None
    return None


@functools.lru_cache(maxsize=1)
def detect():
    """What isolation this machine supports (cached per process)."""
    if sys.platform != "linux":
        why = f"{sys.platform} has no Linux namespaces: grade on Linux with bubblewrap"
        return Capabilities(False, None, [why], why)
    if os.environ.get("COURSE_NO_BWRAP"):
        problem = "bubblewrap is turned off by COURSE_NO_BWRAP: unset it to grade in the sandbox"
    elif not _seccomp_arch():
        problem = f"no seccomp filter for {platform.machine()}: grade on x86_64 or aarch64"
    else:
        problem = _bwrap_problem()
    cg = _cgroup_flavour()
    warnings = []
    if problem:
        warnings.append(f"{problem} (without it student code could read the grader's files and use the network)")
    if not cg:
        warnings.append(
            "no writable cgroup: the memory cap is a per-process rlimit and there is no cap on the number of processes"
        )
    return Capabilities(not problem, cg, warnings, problem)


def require_isolation():
    """Raise SandboxUnavailable (one line: why, and the fix) unless student code can be isolated here."""
    caps = detect()
    if not caps.bubblewrap:
        raise SandboxUnavailable(caps.unavailable or "no isolation available")
    return caps


def _seccomp_arch():
    from .isolation import machine

    return machine()


class CGroup:
    """A memory + pids cgroup for one sandbox (v1 or v2)."""

    def __init__(self, flavour, name, memory_bytes, max_pids):
        self.flavour = flavour
        if flavour == "v1":
            self.dirs = [Path("/sys/fs/cgroup/memory/nn-course") / name, Path("/sys/fs/cgroup/pids/nn-course") / name]
        else:
            mine = Path("/proc/self/cgroup").read_text().strip().split("::", 1)[1]
            self.dirs = [Path("/sys/fs/cgroup") / mine.lstrip("/") / f"nn-course-{name}"]
        for d in self.dirs:
            d.mkdir(parents=True, exist_ok=True)
        if flavour == "v1":
            mem, pids = self.dirs
            (mem / "memory.limit_in_bytes").write_text(str(memory_bytes))
            try:  # no swap either, where the kernel accounts it
                (mem / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
            except OSError:
                pass
            (pids / "pids.max").write_text(str(max_pids))
        else:
            (self.dirs[0] / "memory.max").write_text(str(memory_bytes))
            (self.dirs[0] / "memory.swap.max").write_text("0")
            (self.dirs[0] / "pids.max").write_text(str(max_pids))

    def join_self(self):
        """Move the calling process into the cgroup (used in the sandbox's preexec)."""
        for d in self.dirs:
            with open(d / "cgroup.procs", "w") as f:
                f.write(str(os.getpid()))

    def oom_kills(self):
        path = self.dirs[0] / ("memory.oom_control" if self.flavour == "v1" else "memory.events")
        try:
            for line in path.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        if self.flavour == "v1":
            try:
                return int((self.dirs[0] / "memory.failcnt").read_text())
            except (OSError, ValueError):
                return 0
        return 0

    def remove(self):
        for d in self.dirs:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except OSError:
                    procs = (d / "cgroup.procs").read_text().split() if (d / "cgroup.procs").exists() else []
                    for p in procs:
                        try:
                            os.kill(int(p), 9)
                        except (ProcessLookupError, ValueError, PermissionError):
                            pass
                    import time

                    time.sleep(0.05)


def readonly_roots():
    """Directories a kernel must read: the Python install, the venv and the project's packages."""
    roots = {sys.base_prefix, sys.prefix}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p:
            roots.add(p)
    import course_lib

    roots.add(str(Path(course_lib.__file__).resolve().parent))
    # Nested roots are covered by their parent.
    roots = sorted({str(Path(r).resolve()) for r in roots})
    return [r for r in roots if not any(r != o and r.startswith(o + os.sep) for o in roots)]


def readonly_grading_files():
    """The files of grading/ the zygote runs from; nothing else of the instructor's tooling.

    The rest of grading/ (e.g. mistakes/*.json, made from solution lines) must stay invisible.
    Python imports the packages' __init__ files too: they hold no imports of grading code.
    """
    here = Path(__file__).resolve().parent  # grading/sandbox/
    return [str(here.parent / "__init__.py")] + [
        str(here / name) for name in ("__init__.py", "zygote.py", "isolation.py")
    ]


# Only harmless parts of /etc: the dynamic linker cache, fonts, time zone and passwd names.
ETC_FILES = [
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "fonts",
    "passwd",
    "group",
    "nsswitch.conf",
    "mime.types",
    "alternatives",
]
SYSTEM_DIRS = ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin"]


def bwrap_argv(run_dir, stage_dir, env):
    """The bubblewrap command line of one worker's sandbox; see grading/sandbox/zygote.py for what is inside.

    ``run_dir`` and ``stage_dir`` are the host directories of per-notebook folders (sockets,
    staged files), bound read-only; the zygote exposes one folder of each to one kernel.
    """
    argv = ["bwrap", *ISOLATION, "--die-with-parent", "--hostname", "grader"]
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            argv += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            argv += ["--ro-bind", d, d]
    for name in ETC_FILES:
        path = os.path.join("/etc", name)
        if os.path.exists(path):
            argv += ["--ro-bind", path, path]
    for root in readonly_roots():
        argv += ["--ro-bind", root, root]
    for path in readonly_grading_files():
        argv += ["--ro-bind", path, path]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/t"]
    argv += [
        "--dir",
        "/w",
        "--dir",
        "/k",
        "--dir",
        "/s",
        "--ro-bind",
        run_dir,
        "/g/run",
        "--ro-bind",
        stage_dir,
        "/g/stage",
    ]
    argv += ["--remount-ro", "/", "--chdir", "/w", "--clearenv"]
    for k, v in env.items():
        argv += ["--setenv", k, v]
    return argv


def private_dir(prefix):
    """A fresh 0700 directory; short path because unix socket paths are limited to 107 bytes."""
    base = os.environ.get("COURSE_SANDBOX_TMP") or ("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir())
    return tempfile.mkdtemp(prefix=prefix, dir=base)


# ----- host-side files: never through a path that student code could have shaped ------
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_tree(path):
    """Delete ``path`` and all in it: no symlink followed, folders a kernel made unreadable included."""
    parent, name = os.path.split(os.path.abspath(path))
    pfd = os.open(parent, _DIR)
    try:
        _remove_at(pfd, name)
    except FileNotFoundError:
        pass
    finally:
        os.close(pfd)


def _remove_at(dir_fd, name):
    try:
        os.unlink(name, dir_fd=dir_fd)  # files, sockets and symlinks (never followed)
        return
    except IsADirectoryError:
        pass
    # O_PATH needs no permission on the folder itself; chmod through /proc/self/fd reaches
    # exactly that inode, so a chmod 000/555 folder becomes ours to empty again.
    pfd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        os.chmod(f"/proc/self/fd/{pfd}", 0o700)
        fd = os.open(name, _DIR, dir_fd=dir_fd)
    finally:
        os.close(pfd)
    try:
        for entry in list(os.scandir(fd)):
            _remove_at(fd, entry.name)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


def _parts(rel):
    parts = rel.split("/")
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") or "\0" in p for p in parts):
        raise ValueError(f"not a plain relative path: {rel!r}")
    return parts


def stage_file(root, rel, data, replace=False):
    """Write ``data`` at ``root``/``rel``, a tree the grader has just made, refusing any symlink on the way.

    Each folder is opened relative to its parent with O_NOFOLLOW and the file is created with
    O_EXCL, so nothing outside ``root`` can be reached. ``replace``: an existing entry is removed first.
    """
    parts = _parts(rel)
    fd = os.open(root, _DIR)
    try:
        for part in parts[:-1]:
            try:
                os.mkdir(part, 0o700, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                sub = os.open(part, _DIR, dir_fd=fd)  # O_NOFOLLOW: fails on a symlink
            except NotADirectoryError:
                if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                    raise OSError(errno.ELOOP, "a symlink on the way", rel) from None
                if not replace:
                    raise
                os.unlink(part, dir_fd=fd)  # a file: the trusted file on top wins over the student's
                os.mkdir(part, 0o700, dir_fd=fd)
                sub = os.open(part, _DIR, dir_fd=fd)
            os.close(fd)
            fd = sub
        if replace:
            try:
                _remove_at(fd, parts[-1])
            except FileNotFoundError:
                pass
        out = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=fd)
        with os.fdopen(out, "wb") as f:
            f.write(data)
    finally:
        os.close(fd)


def read_regular(path):
    """The bytes of ``path`` if it is a regular file (not a symlink, FIFO or device), else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        return f.read()
