"""Operating-system isolation for grading kernels.

Layers, each used when the machine offers it (``detect`` says which):

* bubblewrap (Linux namespaces): a private filesystem view that holds only
  the Python install, the virtualenv, course_lib and one empty working
  directory; no network; its own PID namespace; no capabilities.
* cgroups (memory, pids): a hard memory cap for the whole sandbox (the
  kernel is killed and reported as "memory limit exceeded", the machine
  does not swap) and a cap on the number of processes (no fork bombs).
* resource limits (always): CPU seconds, address space, file size.
* wall-clock limits per cell and per notebook (always; grading/execute.py).

What is missing is printed as a warning naming the protections that are
off; grading never pretends to be safer than it is.
"""

import functools
import os
import shutil
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
    open_files: int = 1024


@dataclass
class Capabilities:
    bubblewrap: bool
    cgroup: str | None  # "v1", "v2" or None
    warnings: list = field(default_factory=list)

    def describe(self):
        fs = "private filesystem + no network (bubblewrap)" if self.bubblewrap else "NO filesystem/network isolation"
        cg = f"memory and process caps (cgroup {self.cgroup})" if self.cgroup else "rlimit memory cap only"
        return f"sandbox: {fs}; {cg}; CPU, file-size and wall-clock limits"


# New namespaces for everything (user, mount, PID, IPC, UTS, network, cgroup), running as
# "nobody" inside: no capabilities, and no way to tell the grader's files from anyone else's.
ISOLATION = ["--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534"]


def _bwrap_works():
    exe = shutil.which("bwrap")
    if not exe:
        return False
    try:
        r = subprocess.run(
            [exe, *ISOLATION, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"],
            capture_output=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


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
        return Capabilities(
            False,
            None,
            [f"{sys.platform}: no namespaces or cgroups; student code runs with only resource and time limits"],
        )
    want_bwrap = not os.environ.get("COURSE_NO_BWRAP")
    bw = want_bwrap and _bwrap_works()
    cg = _cgroup_flavour()
    warnings = []
    if not bw:
        why = "disabled by COURSE_NO_BWRAP" if not want_bwrap else "bubblewrap is not installed or not usable"
        warnings.append(
            f"{why}: student code can read files the grader can read and can use the network "
            "(install the Debian package 'bubblewrap')"
        )
    if not cg:
        warnings.append(
            "no writable cgroup: the memory cap is a per-process rlimit and there is no cap on the number of processes"
        )
    return Capabilities(bw, cg, warnings)


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
    """The two files of grading/ the zygote runs from; nothing else of the instructor's tooling.

    The rest of grading/ (e.g. mistakes/*.json, made from solution lines) must stay invisible.
    """
    here = Path(__file__).resolve().parent
    return [str(here / "__init__.py"), str(here / "zygote.py")]


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


def bwrap_argv(rw_dirs, workdir, env):
    """The bubblewrap command line for a sandbox with ``rw_dirs`` writable and all else hidden."""
    argv = [
        "bwrap",
        *ISOLATION,
        "--die-with-parent",
        "--cap-drop",
        "ALL",
        "--hostname",
        "grader",
    ]
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
    argv += ["--proc", "/proc", "--dev", "/dev"]
    for d in rw_dirs:
        argv += ["--bind", d, d]
    argv += ["--chdir", workdir, "--clearenv"]
    for k, v in env.items():
        argv += ["--setenv", k, v]
    return argv


def private_dir(prefix):
    """A fresh 0700 directory; short path because unix socket paths are limited to 107 bytes."""
    base = os.environ.get("COURSE_SANDBOX_TMP") or ("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir())
    return tempfile.mkdtemp(prefix=prefix, dir=base)
