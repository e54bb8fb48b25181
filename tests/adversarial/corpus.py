"""The adversarial corpus: one synthetic submission per attack or fault, with what must happen.

Every case starts from a fully correct week-2 submission and replaces the
target exercise (``sigmoid``) with an attack, or breaks the file itself. An
attack must earn 0 for the target exercise and never more than the
honest baseline (the same submission with the target exercise not done);
a broken file gets a clear status. ``build(ctx)`` returns the files of the
submission: {relative path: notebook | bytes | ("symlink", target)}.
"""

from dataclasses import dataclass

import nbformat

WEEK = "week2_logistic_regression"
CELL = "w2_sigmoid"
TESTS = {"w2_sigmoid_tests", "w2_sigmoid_stable_tests"}
VISIBLE = [0.119202922, 0.3775406688, 0.5, 0.7310585786, 0.9525741268]  # printed in the release


@dataclass
class Case:
    name: str
    threat: str  # the line of the threat model it exercises
    build: object  # ctx -> {path: content}
    status: str = "graded"  # or "failed" (the submission cannot be graded)
    keeps_full: bool = False  # an odd but honest submission: must keep every point
    reason: str = ""  # substring of the failure reason / run detail / notes
    run_status: str | None = "ok"
    marker: str | None = None  # text the sandbox must print in the run (proves an attempt failed)


class Context:
    """Builds submissions from the release notebook and the instructor's solutions."""

    def __init__(self, release_nb, solutions):
        self.release, self.solutions = release_nb, solutions

    def notebook(self, overrides=None, extra_cells=(), edit=None):
        nb = nbformat.from_dict(self.release)
        for cell in nb.cells:
            gid = (cell.metadata.get("nbgrader") or {}).get("grade_id")
            if gid in self.solutions:
                src = self.solutions[gid]
                if cell.cell_type == "markdown":
                    src = "An honest written answer."
                cell.source = "\n".join(ln for ln in src.splitlines() if "### " not in ln)
            if overrides and gid in overrides:
                cell.source = overrides[gid]
        for where, source in extra_cells:
            new = nbformat.v4.new_code_cell(source)
            if where == "end":
                nb.cells.append(new)
            else:
                idx = next(
                    i for i, c in enumerate(nb.cells) if (c.metadata.get("nbgrader") or {}).get("grade_id") == where
                )
                nb.cells.insert(idx + 1, new)
        if edit:
            edit(nb)
        return nb

    def attack(self, body, **kw):
        """A submission whose sigmoid cell is ``body`` (a full cell source)."""
        return {f"{WEEK}.ipynb": self.notebook({CELL: body}, **kw)}


def _cells_by_id(nb):
    return {(c.metadata.get("nbgrader") or {}).get("grade_id"): c for c in nb.cells}


# ----- attacks on the verdict ---------------------------------------------------
EQ_OBJECT = """def sigmoid(z):
    class Liar:
        shape = property(lambda self: np.shape(z))
        dtype = np.float64
        def __eq__(self, other): return True
        def __ne__(self, other): return False
        def __bool__(self): return True
        def __array__(self, dtype=None, copy=None): return np.full(np.shape(z), 0.5)
        def __float__(self): return 0.5
        def __getattr__(self, name): return lambda *a, **k: True
    return Liar()"""

NDARRAY_SUBCLASS = """class Always(np.ndarray):
    def __eq__(self, other): return np.ones(self.shape, dtype=bool)
    def __ne__(self, other): return np.zeros(self.shape, dtype=bool)
    def __array_finalize__(self, obj): pass

def sigmoid(z):
    return np.zeros(np.shape(z)).view(Always)"""

PATCH_NUMPY = """np.allclose = lambda *a, **k: True
np.isclose = lambda a, b, *x, **k: np.ones(np.shape(a), dtype=bool)
np.array_equal = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
np.abs = lambda x: np.zeros(np.shape(x))

def sigmoid(z):
    return np.zeros(np.shape(z))"""

PATCH_CHECKS = """import course_lib.checks as _c
_c.compare = lambda *a, **k: _c.Verdict(True)
for _name in ("check_close", "check_equal", "check_accuracy", "check_at_least", "check_at_most"):
    setattr(_c, _name, lambda *a, **k: print("✔ passed"))
    globals()[_name] = getattr(_c, _name)
import course_lib._wire as _w
_w.encode = lambda x, _depth=0: {"t": "float", "v": (0.5).hex()}

def sigmoid(z):
    return 0.0"""

PATCH_BUILTINS = """import builtins, types
_real_import = builtins.__import__
def _fake_import(name, globals=None, locals=None, fromlist=(), level=0):
    if name == "course_lib._wire":
        fake = types.ModuleType("course_lib._wire")
        from IPython.display import publish_display_data
        def probe(cell, index, actual):
            publish_display_data({"application/vnd.nn-course.probe+json":
                {"cell": cell, "index": index, "value": {"t": "float", "v": (0.5).hex()}}})
        fake.probe = probe
        return fake
    return _real_import(name, globals, locals, fromlist, level)
builtins.__import__ = _fake_import
builtins.isinstance = lambda *a: True

def sigmoid(z):
    return np.zeros(np.shape(z))"""

SILENCE_TRACEBACKS = """import sys
ip = get_ipython()
ip.showtraceback = lambda *a, **k: None
ip._showtraceback = lambda *a, **k: None
sys.excepthook = lambda *a: None
sys.stderr = open("/dev/null", "w")

def sigmoid(z):
    raise ValueError("not done, but nobody will see this")"""

IPYTHON_HOOKS = """ip = get_ipython()
ip.set_custom_exc((BaseException,), lambda shell, etype, evalue, tb, tb_offset=None: None)
_real_publish = ip.display_pub.publish
def _publish(data, metadata=None, **kw):
    if not any("probe" in key for key in data):
        _real_publish(data, metadata, **kw)
ip.display_pub.publish = _publish

def sigmoid(z):
    return np.zeros(np.shape(z))"""

FORGED_PROBES = """def _correct(z):
    z = np.asarray(z, dtype=float)
    return np.exp(np.minimum(z, 0)) / (1 + np.exp(-np.abs(z)))
def _forge(info):
    # Before each cell runs, run the grader's own rewritten test cell with a correct sigmoid:
    # every report it publishes carries exactly the right value, hidden checks included.
    # Only the grader's rule that a check reported twice fails can stop this.
    if "__course_probe__" in info.raw_cell:
        try:
            exec(info.raw_cell, {**globals(), "sigmoid": _correct})
        except Exception:
            pass
get_ipython().events.register("pre_run_cell", _forge)

def sigmoid(z):
    return np.zeros(np.shape(z))"""

INPUT_TRANSFORMER = """get_ipython().input_transformers_post.append(
    lambda lines: ["pass\\n"] if any("probe" in ln or "check_" in ln for ln in lines) else lines)

def sigmoid(z):
    return np.zeros(np.shape(z))"""

PASS_MESSAGES = """print("✔ σ(0) is ½\\n✔ σ at five points\\nAll tests passed! score: 2 / 2")
get_ipython().events.register("post_run_cell", lambda result: print("✔ passed"))

def sigmoid(z):
    return np.zeros(np.shape(z))"""

READ_SECRETS = """import os
found, seen = [], 0
for top in ["/", "..", "../.."]:
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev", "usr", "lib", "lib64")]
        for name in files:
            seen += 1
            path = os.path.join(root, name)
            if name.endswith((".ipynb", ".db", ".json")) and "site-packages" not in path:
                try:
                    text = open(path, errors="ignore").read(10**6)
                except OSError:
                    continue
                if ("BEGIN HIDDEN TESTS" in text and "check_close" in text) or name == "gradebook.db" \\
                        or "nn-course.reference" in text or "BEGIN SOLUTION" in text or '"solution_cell"' in text:
                    found.append(path)
        if seen > 200000:
            break
secret_env = sorted(k for k in os.environ if "DB" in k or "SECRET" in k or "PASS" in k or "COURSE" in k)
print("FOUND:", found, "ENV:", secret_env)

def sigmoid(z):
    return np.zeros(np.shape(z))"""

# ----- attacks on the kernel and the machine ---------------------------------------
SYS_EXIT = """import sys
def sigmoid(z):
    sys.exit(0)"""

OS_EXIT = """import os
def sigmoid(z):
    os._exit(0)"""

KILL_KERNEL = """import os, signal
def sigmoid(z):
    os.kill(os.getpid(), signal.SIGKILL)"""

INFINITE_LOOP = """def sigmoid(z):
    while True:
        pass"""

MEMORY_HOG = """def sigmoid(z):
    hog = []
    while True:
        hog.append(np.ones(50 * 2**20 // 8))"""

FORK_BOMB = """import os
def sigmoid(z):
    n = 0
    for _ in range(10000):
        try:
            if os.fork() == 0:
                import time
                time.sleep(600)
                os._exit(0)
            n += 1
        except OSError:
            break
    print("FORKED", n)
    return np.zeros(np.shape(z))"""

NETWORK = """import socket
def sigmoid(z):
    for host in [("127.0.0.1", {port}), ("pypi.org", 443)]:
        try:
            socket.create_connection(host, timeout=3)
            print("NET: CONNECTED", host)
        except OSError as e:
            print("NET: blocked", host[0], type(e).__name__)
    return np.zeros(np.shape(z))"""

HUGE_OUTPUT = """def sigmoid(z):
    for _ in range(10**6):
        print("spam" * 250)"""

WRITE_OUTSIDE = """import os
def sigmoid(z):
    for path in ["/tmp/owned.txt", "../../gradebook.db", "/work/evil.txt", os.path.expanduser("~/../evil.txt")]:
        try:
            open(path, "a").write("owned")
            print("WROTE", path)
        except OSError as e:
            print("no write", type(e).__name__)
    return np.zeros(np.shape(z))"""


def _edit_tests(nb):
    cells = _cells_by_id(nb)
    t = cells["w2_sigmoid_tests"]
    t.source = "pass  # tests? what tests?"
    t.metadata["nbgrader"]["points"] = 1000
    s = cells["w2_sigmoid_stable_tests"]
    s.metadata["nbgrader"]["grade_id"] = "w2_renamed_tests"
    s.metadata["nbgrader"]["grade"] = False


def _delete_tests(nb):
    nb.cells = [c for c in nb.cells if (c.metadata.get("nbgrader") or {}).get("grade_id") not in TESTS]


def _move_tests_last(nb):
    tests = [c for c in nb.cells if (c.metadata.get("nbgrader") or {}).get("grade_id") in TESTS]
    nb.cells = [c for c in nb.cells if c not in tests] + tests


STUB = "def sigmoid(z):\n    raise NotImplementedError()"
CORRECT_LATE = (
    "end",
    "def sigmoid(z):\n    z = np.asarray(z, dtype=float)\n"
    "    return np.exp(np.minimum(z, 0)) / (1 + np.exp(-np.abs(z)))",
)


def _redefine_in_test_cell(nb):
    cells = _cells_by_id(nb)
    cells["w2_sigmoid_tests"].source = CORRECT_LATE[1] + "\n" + cells["w2_sigmoid_tests"].source


def rejected(name, threat, content, reason, filename=f"{WEEK}.ipynb"):
    """A submission that cannot be graded at all: status "failed" with ``reason``."""
    return Case(name, threat, lambda c: {filename: content}, status="failed", reason=reason)


def cases(port):
    """All corpus cases. ``port``: a loopback port with a listener on the host (network test)."""
    C = Case
    out = [
        C("eq_object", "objects that override __eq__, __bool__ or __array__", lambda c: c.attack(EQ_OBJECT)),
        C("ndarray_subclass", "ndarray subclasses", lambda c: c.attack(NDARRAY_SUBCLASS)),
        C("patch_numpy", "replacing numpy.testing / np.allclose", lambda c: c.attack(PATCH_NUMPY)),
        C("patch_checks", "replacing course_lib.checks functions", lambda c: c.attack(PATCH_CHECKS)),
        C("patch_builtins", "replacing builtins", lambda c: c.attack(PATCH_BUILTINS), run_status=None),
        C("silence_tracebacks", "silencing tracebacks", lambda c: c.attack(SILENCE_TRACEBACKS)),
        C("ipython_hooks", "patching IPython's display and exception hooks", lambda c: c.attack(IPYTHON_HOOKS)),
        # On a correct solution: the trusted test cells and points must come back, no more and no less.
        C(
            "edit_tests",
            "editing test cells, metadata, grade_ids and points",
            lambda c: {f"{WEEK}.ipynb": c.notebook(edit=_edit_tests)},
            keeps_full=True,
        ),
        C(
            "delete_tests",
            "deleting test cells",
            lambda c: {f"{WEEK}.ipynb": c.notebook(edit=_delete_tests)},
            keeps_full=True,
            reason="restored",
        ),
        C(
            "define_late",
            "defining the tested names late",
            lambda c: {f"{WEEK}.ipynb": c.notebook({CELL: STUB}, extra_cells=[CORRECT_LATE], edit=_move_tests_last)},
        ),
        C(
            "redefine_in_test",
            "redefining the tested names inside a test cell",
            lambda c: {f"{WEEK}.ipynb": c.notebook({CELL: STUB}, edit=_redefine_in_test_cell)},
        ),
        C(
            "read_secrets",
            "reading the reference or hidden tests from disk or the environment",
            lambda c: c.attack(READ_SECRETS),
            marker="FOUND: [] ENV: []",
        ),
        C("pass_messages", "printing text that imitates a pass message", lambda c: c.attack(PASS_MESSAGES)),
        C("forged_probes", "forging the grader's own reports", lambda c: c.attack(FORGED_PROBES)),
        C("input_transformer", "rewriting test cells as they run", lambda c: c.attack(INPUT_TRANSFORMER)),
        C("sys_exit", "calling sys.exit in the middle of the tests", lambda c: c.attack(SYS_EXIT)),
        C(
            "os_exit",
            "calling os._exit in the middle of the tests",
            lambda c: c.attack(OS_EXIT),
            run_status="kernel_died",
            reason="exit",
        ),
        C(
            "kill_kernel",
            "os.kill on the kernel",
            lambda c: c.attack(KILL_KERNEL),
            run_status="killed",
            reason="killed",
        ),
        C(
            "infinite_loop",
            "looping forever (wall-clock limit)",
            lambda c: c.attack(INFINITE_LOOP),
            run_status="timeout",
            reason="ran past",
        ),
        C("memory_hog", "exhausting memory (memory cap)", lambda c: c.attack(MEMORY_HOG), run_status=None, reason=""),
        C("fork_bomb", "a fork bomb (process cap)", lambda c: c.attack(FORK_BOMB), run_status=None),
        C(
            "network",
            "opening the network",
            lambda c: c.attack(NETWORK.replace("{port}", str(port))),
            marker="NET: blocked 127.0.0.1",
        ),
        C(
            "write_outside",
            "writing outside the private working copy",
            lambda c: c.attack(WRITE_OUTSIDE),
            marker="no write",
        ),
        C(
            "huge_output",
            "printing gigabytes",
            lambda c: c.attack(HUGE_OUTPUT),
            run_status="output_limit",
            reason="more output",
        ),
        # ----- broken files -----
        rejected("malformed_json", "malformed JSON", b'{"cells": [ {"cell_type": ', "invalid JSON"),
        rejected("empty_file", "an empty file", b"", "empty"),
        rejected("binary_junk", "binary junk", bytes(range(256)) * 64, "not UTF-8"),
        rejected(
            "nbformat3",
            "the wrong nbformat",
            b'{"nbformat": 3, "nbformat_minor": 0, "worksheets": []}',
            "nbformat 3",
        ),
        rejected("missing_notebook", "a missing notebook", b"I lost it", "missing", filename="answers.txt"),
        C(
            "renamed_notebook",
            "a renamed notebook",
            lambda c: {"my_week2.ipynb": c.notebook()},
            keeps_full=True,
            reason="renamed",
        ),
        C(
            "extra_notebook",
            "an extra notebook",
            lambda c: {f"{WEEK}.ipynb": c.notebook(), "scratch.ipynb": c.notebook()},
            keeps_full=True,
            reason="extra notebook",
        ),
        rejected("huge_file", "a notebook over 100 MB", ("sparse", 101 * 2**20), "100 MB"),
        C(
            "symlink_out",
            "symlinks that point outside the submission",
            lambda c: {f"{WEEK}.ipynb": c.notebook(), "secrets": ("symlink", "/etc")},
            keeps_full=True,
            reason="outside",
        ),
        rejected(
            "symlink_notebook", "a notebook that is a symlink (to the solution)", ("symlink", "SOURCE"), "symbolic link"
        ),
    ]
    return out


HONEST = ["correct", "blank", "partial", "mistakes"]
