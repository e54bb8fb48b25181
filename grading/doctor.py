"""`course doctor`: can this machine grade, or serve as a grading worker? One line per check.

Each check prints ``ok``, ``warn`` or ``FAIL`` with what it found and, when it
fails, the fix. The checks are the ones grading itself relies on: the
environment a worker must share with the client (grading/sandbox/worker.py's
``environment``, the very dictionary every task compares), bubblewrap and the
user namespaces it needs, the seccomp filter and the architecture it knows,
and, inside a container, the pod settings that make all of that possible.
``--scheduler`` runs the environment and sandbox checks on every worker of a
Dask cluster; ``--gateway URL [--cluster NAME]`` on a Dask Gateway's cluster (a new one of
one worker, shut down afterwards, without ``--cluster``). Any FAIL makes the exit status 1: grading there would refuse.
"""

import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .gradebook.store import safe_url
from .text import for_terminal

MIN_PYTHON = (3, 11)
DASK = ("dask", "distributed")
K8S_FIX = (
    "run the pod with user namespaces: spec.hostUsers: false (Kubernetes >= 1.33, Linux >= 6.3, "
    "containerd >= 2.0 or CRI-O >= 1.25) and in the container's securityContext seccompProfile Unconfined, "
    "appArmorProfile Unconfined, procMount Unmasked (deploy/kubernetes/daskcluster.yaml); "
    "without user-namespaced pods only privileged: true works; otherwise grading refuses (docs/cluster.md)"
)
CONTAINER_FIX = (
    "start the container with --security-opt seccomp=unconfined --security-opt apparmor=unconfined "
    "--security-opt systempaths=unconfined (podman: --security-opt unmask=ALL), or --privileged; "
    "otherwise grading refuses (docs/cluster.md)"
)


@dataclass
class Check:
    name: str
    status: str  # "ok", "warn" or "FAIL"
    detail: str
    fix: str = ""

    @property
    def failed(self):
        return self.status == "FAIL"

    def line(self):
        fix = f" -> fix: {self.fix}" if self.fix and self.status != "ok" else ""
        return for_terminal(f"{self.status:<4}  {self.name}: {self.detail}{fix}", 2000)


def ok(name, detail):
    return Check(name, "ok", detail)


# ----- the environment a worker shares with the client -------------------------------------
def check_python():
    version = "{}.{}.{}".format(*sys.version_info[:3])
    if sys.version_info[:2] < MIN_PYTHON:
        return Check("python", "FAIL", version, "install Python 3.11 or newer")
    return ok("python", f"{version} (workers must run {version.rsplit('.', 1)[0]} too)")


def check_packages(env=None):
    """The packages a grade depends on (worker.PACKAGES), each within the range nn-course requires."""
    from .sandbox import worker

    env = env or worker.environment()
    wanted = _requirements()
    found, problems = [], []
    for name in worker.PACKAGES:
        version = env.get(name, "not installed")
        found.append(f"{name} {version}")
        spec = wanted.get(name)
        if version == "not installed":
            problems.append(f"{name} is not installed")
        elif spec is not None and not spec.contains(version, prereleases=True):
            problems.append(f"{name} {version} is outside {spec}")
    if problems:
        return Check("packages", "FAIL", "; ".join(problems), 'pip install -e . (or pip install ".[dev]")')
    return ok("packages", ", ".join(found))


def _requirements():
    """{package: SpecifierSet} that the installed nn-course declares; {} when it is not installed."""
    from packaging.requirements import Requirement

    try:
        reqs = importlib.metadata.requires("nn-course") or []
    except importlib.metadata.PackageNotFoundError:
        return {}
    parsed = [Requirement(r) for r in reqs]
    return {r.name.lower(): r.specifier for r in parsed if r.marker is None}


def check_code(env=None):
    from .sandbox import worker

    env = env or worker.environment()
    hashes = ", ".join(f"{k.removesuffix(' code')} {v}" for k, v in env.items() if k.endswith(" code"))
    return ok("grading code", f"{hashes} (a worker grades only with the same code)")


# ----- the sandbox -------------------------------------------------------------------------
def check_architecture():
    from .sandbox.isolation import machine

    arch = machine()
    if arch is None:
        return Check(
            "architecture", "FAIL", f"{platform.machine()} has no seccomp filter here", "grade on x86_64 or aarch64"
        )
    return ok("architecture", arch)


def check_bubblewrap(which=shutil.which):
    exe = which("bwrap")
    if not exe:
        return Check("bubblewrap", "FAIL", "not found on PATH", "apt-get install bubblewrap (dnf install bubblewrap)")
    return ok("bubblewrap", exe)


def check_user_namespaces(container_hints, which=shutil.which):
    """Really start `bwrap --unshare-user` (the first thing the sandbox needs) and say why it failed."""
    exe = which("bwrap")
    if not exe:
        return Check("user namespaces", "FAIL", "not tried: bubblewrap is missing", "install bubblewrap first")
    r = _run([exe, "--unshare-user", "--ro-bind", "/", "/", "true"])
    if r is not None and r.returncode == 0:
        return ok("user namespaces", "bwrap --unshare-user works")
    said = _said(r)
    return Check(
        "user namespaces", "FAIL", f"bwrap --unshare-user failed ({said}){_sysctl_hint()}", _fix(container_hints)
    )


def check_sandbox(container_hints):
    """The whole sandbox as grading builds it (sandbox.layers.detect: namespaces, a fresh /proc, capabilities)."""
    from .sandbox.layers import detect

    caps = detect()
    if caps.bubblewrap:
        return ok("sandbox", caps.describe().removeprefix("sandbox: "))
    why = caps.unavailable or "no isolation"
    if container_hints and "COURSE_NO_BWRAP" not in why:  # the pod's settings, not the host's sysctl, are the fix
        from .sandbox.layers import USERNS_FIX

        return Check("sandbox", "FAIL", why.replace(f": {USERNS_FIX}", ""), _fix(container_hints))
    return Check("sandbox", "FAIL", why)


def check_cgroup():
    from .sandbox.layers import detect

    caps = detect()
    if caps.cgroup:
        return ok("cgroup", f"{caps.cgroup}: hard memory and process caps per sandbox")
    return Check(
        "cgroup",
        "warn",
        "no writable cgroup: memory is capped per process (rlimit), the number of processes is not",
        "run the worker as root on the host, or give its container a writable cgroup (delegation)",
    )


def check_seccomp():
    """Load the kernels' seccomp filter in a child process and see it refuse a new user namespace."""
    from .sandbox.isolation import machine

    arch = machine()
    if arch is None:
        return Check("seccomp", "FAIL", "no filter for this architecture", "grade on x86_64 or aarch64")
    probe = (
        "import errno, sys\n"
        "from grading.sandbox import isolation as i\n"
        f"i.install_seccomp({arch!r})\n"
        "try:\n    i.unshare(i.CLONE_NEWUSER)\nexcept OSError as e:\n    sys.exit(0 if e.errno == errno.EPERM else 3)\n"
        "sys.exit(4)\n"
    )
    r = _run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parents[1])
    if r is not None and r.returncode == 0:
        return ok("seccomp", f"filter for {arch} loads and refuses unshare")
    return Check(
        "seccomp",
        "FAIL",
        f"the filter did not load or did not hold ({_said(r)})",
        "a Linux kernel with CONFIG_SECCOMP_FILTER; in a container, a seccomp profile that allows seccomp(2)",
    )


# ----- containers --------------------------------------------------------------------------
def container_hints(root="/", environ=None):
    """What says this process runs in a container: [] on a plain machine."""
    environ = os.environ if environ is None else environ
    root = Path(root)
    hints = []
    if environ.get("KUBERNETES_SERVICE_HOST"):
        hints.append("kubernetes (KUBERNETES_SERVICE_HOST)")
    if (root / ".dockerenv").exists():
        hints.append("docker (/.dockerenv)")
    if (root / "run/.containerenv").exists():
        hints.append("podman (/run/.containerenv)")
    if environ.get("container"):
        hints.append(f"{environ['container']} ($container)")
    try:
        cgroup = (root / "proc/1/cgroup").read_text()
    except OSError:
        cgroup = ""
    for word in ("kubepods", "docker", "containerd", "libpod", "lxc"):
        if word in cgroup:
            hints.append(f"{word} (/proc/1/cgroup)")
            break
    return hints


def check_container(hints):
    if not hints:
        return ok("container", "none detected (a plain machine: bubblewrap needs only user namespaces)")
    pod = "pod" if any(h.startswith("kubernetes") for h in hints) else "container"
    return ok(
        "container",
        f"{', '.join(hints)}; kernel {platform.release()}. In a {pod}, bubblewrap also needs the {pod} to allow "
        "user namespaces, mounts and a fresh /proc: the lines below say whether it does",
    )


def _fix(hints):
    if any(h.startswith("kubernetes") for h in hints):
        return K8S_FIX
    if hints:
        return CONTAINER_FIX
    from .sandbox.layers import USERNS_FIX

    return USERNS_FIX.split(": ", 1)[1]


def _sysctl_hint():
    """The kernel switches that turn unprivileged user namespaces off, when one of them is off."""
    found = []
    for path, off in (
        ("/proc/sys/user/max_user_namespaces", "0"),
        ("/proc/sys/kernel/unprivileged_userns_clone", "0"),
        ("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1"),
    ):
        try:
            if Path(path).read_text().strip() == off:
                found.append(f"{path.removeprefix('/proc/sys/').replace('/', '.')}={off}")
        except OSError:
            pass
    return f"; {', '.join(found)}" if found else ""


def _run(argv, cwd=None):
    try:
        return subprocess.run(argv, capture_output=True, timeout=30, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _said(r):
    if r is None:
        return "did not run"
    text = " ".join(r.stderr.decode(errors="replace").split())[-200:]
    return text or f"exit status {r.returncode}"


# ----- a Dask cluster ----------------------------------------------------------------------
def _worker_report(expected):
    """Runs on each worker: (environment mismatch or None, sandbox refusal or None)."""
    from .pipeline import sandbox_refusal
    from .sandbox.worker import environment_mismatch

    return environment_mismatch(expected), sandbox_refusal()


def check_scheduler(address, timeout=10):
    """Every worker of the cluster at ``address``: the client's environment, and a usable sandbox."""
    from .course import CourseError
    from .pipeline import check_scheduler_address
    from .sandbox.worker import environment

    try:
        check_scheduler_address(address)
    except CourseError as e:
        return [Check("scheduler", "FAIL", str(e), "start it with `dask scheduler`, or check the address")]
    from dask.distributed import Client

    try:
        with Client(address, timeout=f"{timeout}s") as client:
            reports = client.run(_worker_report, environment())
    except OSError as e:
        return [Check("scheduler", "FAIL", f"cannot connect to {address} ({e})", "check the address and firewall")]
    if not reports:
        return [Check("scheduler", "FAIL", f"{address} has no workers", "start `dask worker " + address + "`")]
    return [ok("scheduler", f"{address}: {len(reports)} worker(s)")] + _worker_checks(reports)


def check_gateway_cluster(target):
    """The same checks on the workers of a Dask Gateway's cluster (grading/gateway.py's GatewayTarget)."""
    from .course import CourseError
    from .gateway import check_gateway, gateway_client
    from .sandbox.worker import environment

    try:
        check_gateway(target)
        with gateway_client(target) as client:
            reports = client.run(_worker_report, environment())
    except CourseError as e:
        return [
            Check("gateway", "FAIL", str(e), "check the address, the credentials and the cluster (docs/cluster.md)")
        ]
    if not reports:
        return [Check("gateway", "FAIL", f"{target.describe()} has no workers", "scale it: cluster.scale(N)")]
    return [ok("gateway", f"{target.describe()}: {len(reports)} worker(s)")] + _worker_checks(reports)


def _worker_checks(reports):
    """One check per worker, from its _worker_report."""
    checks = []
    for worker, (mismatch, refusal) in sorted(reports.items()):
        if mismatch:
            rebuild = "install the client's versions there (deploy/Containerfile; course doctor --pins)"
            checks.append(Check(f"worker {worker}", "FAIL", mismatch, rebuild))
        elif refusal:
            checks.append(Check(f"worker {worker}", "FAIL", refusal, "run `course doctor` on that worker"))
        else:
            checks.append(ok(f"worker {worker}", "same environment, sandbox usable"))
    return checks


# ----- the whole report --------------------------------------------------------------------
def machine_checks():
    hints = container_hints()
    return [
        check_python(),
        check_packages(),
        check_code(),
        check_architecture(),
        check_bubblewrap(),
        check_container(hints),
        check_user_namespaces(hints),
        check_seccomp(),
        check_sandbox(hints),
        check_cgroup(),
    ]


def pins():
    """The worker's pins: what `pip install -c` must give a worker image (deploy/Containerfile)."""
    from .sandbox import worker

    env = worker.environment()
    lines = [f"# python {env['python']} (the worker image's base: deploy/Containerfile, --build-arg PYTHON)"]
    lines += [f"{name}=={env[name]}" for name in worker.PACKAGES if env[name] != "not installed"]
    # Not part of a grade, but client, scheduler and workers must speak the same Dask.
    lines += [f"{name}=={importlib.metadata.version(name)}" for name in DASK]
    return "\n".join(lines)


def course_checks(course):
    """What `course grade` would do here, and the course it would grade (None: no course here)."""
    from .pipeline import sandbox_refusal

    refusal = sandbox_refusal()
    grade = (
        Check("course grade", "FAIL", refusal) if refusal else ok("course grade", "runs student code in the sandbox")
    )
    if course is None:
        return [grade, ok("course", "no course directory here (fine on a worker: it needs none)")]
    weeks = ", ".join(course.weeks()) or "none"
    return [grade, ok("course", f"{course.root}; gradebook {safe_url(course.db_url)}; weeks: {weeks}")]


def run(course=None, scheduler=None, gateway=None, out=print):
    """Print every check; returns the exit status (1 when any check failed)."""
    checks = machine_checks() + course_checks(course)
    if scheduler:
        checks += check_scheduler(scheduler)
    if gateway:
        checks += check_gateway_cluster(gateway)
    for check in checks:
        out(check.line())
    return 1 if any(c.failed for c in checks) else 0
