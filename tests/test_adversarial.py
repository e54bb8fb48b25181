"""Hostile submissions, graded in one parallel batch with honest ones (tests/adversarial/corpus.py).

Shows: no attack scores above its honest baseline, every attacked exercise
scores 0, the batch never crashes, every reason is clear, the submitted
files are untouched, and the honest submissions in the same batch get
exactly their serial-grading scores.

Then the hostile class (tests/adversarial/hostile.py), graded on one worker
in a fixed order with honest victims after every attacker: nothing survives
from one notebook to the next, no student can stop or starve the grader,
nothing is written on the host through student paths, nothing student-chosen
reaches feedback, reports, the browser or the terminal, budgets count every
byte and output, and collect/ids/timestamps resist hostile archives.
Hostile code only ever runs in the sandbox: without bubblewrap these tests fail.
"""

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import nbformat
import pytest

from grading.demo import load_mistakes, student_notebook, typical_mistakes
from grading.outputs.feedback import write_feedback
from grading.outputs.report import write_report
from grading.pipeline import collect_results, grade_week, plan
from grading.sandbox.layers import Limits, detect
from grading.verdict.notebook import cell_role
from tests.adversarial.corpus import TESTS, WEEK, Context, cases
from tests.adversarial.hostile import ordered_class
from tests.conftest import released_course
from tests.fixtures.scores import cell_scores
from tests.test_pipeline import tree_digest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
LIMITS = Limits(cell_seconds=20, notebook_seconds=150, memory_mb=768, cpu_seconds=60, max_processes=64, max_output_mb=5)


def make_course(root):
    return released_course(root, WEEK)


def solutions(course):
    nb = nbformat.read(course.source(WEEK) / f"{WEEK}.ipynb", 4)
    return {
        (c.metadata.get("nbgrader") or {}).get("grade_id"): c.source
        for c in nb.cells
        if cell_role(c) in ("solution", "manual")
    }


def write(course, student, files):
    d = course.submitted(student, WEEK)
    d.mkdir(parents=True)
    for rel, content in files.items():
        path = d / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, tuple) and content[0] == "symlink":
            target = course.source(WEEK) / f"{WEEK}.ipynb" if content[1] == "SOURCE" else content[1]
            path.symlink_to(target)
        elif isinstance(content, tuple) and content[0] == "sparse":
            with open(path, "wb") as f:
                f.truncate(content[1])
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            nbformat.write(content, path)
    (d / "timestamp.txt").write_text("2026-02-01 12:00:00.000000 UTC")


def honest_class(course):
    ids = [gid for gid in solutions(course) if not gid.endswith(("_question", "answer")) and "why" not in gid]
    return {
        "honest_correct": student_notebook(course, WEEK, WEEK),
        "honest_blank": student_notebook(course, WEEK, WEEK, solved=set()),
        "honest_partial": student_notebook(course, WEEK, WEEK, solved=set(ids[: len(ids) // 2])),
        "honest_mistakes": student_notebook(course, WEEK, WEEK, mistakes=typical_mistakes(load_mistakes(WEEK))),
    }


def require_sandbox():
    """Hostile code never runs unconfined: without bubblewrap these tests fail, saying why."""
    if not detect().bubblewrap:
        pytest.fail(
            "bubblewrap is not usable here, and hostile submissions are never run without it: install the "
            "Debian package 'bubblewrap' (on ubuntu-24.04 also: sysctl kernel.apparmor_restrict_unprivileged_userns=0)"
        )


@pytest.fixture(scope="module")
def adv_course(tmp_path_factory):
    """One released course for the module: the corpus batch, then the hostile class (file order)."""
    require_sandbox()
    return make_course(tmp_path_factory.mktemp("adv") / "course")


@pytest.fixture(scope="module")
def graded(adv_course):
    course = adv_course
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    ctx = Context(nbformat.read(course.release(WEEK) / f"{WEEK}.ipynb", 4), solutions(course))
    corpus = cases(listener.getsockname()[1])
    for case in corpus:
        write(course, f"adv_{case.name}", case.build(ctx))
    for student, nb in honest_class(course).items():
        write(course, student, {f"{WEEK}.ipynb": nb})
    before = tree_digest(course.submitted())
    summary = grade_week(course, WEEK, workers=2, progress=False, limits=LIMITS)
    after = tree_digest(course.submitted())
    listener.close()
    return course, corpus, summary, before, after


def test_the_batch_finishes_and_leaves_submissions_untouched(graded):
    course, corpus, summary, before, after = graded
    assert before == after
    assert len(summary.graded) + len(summary.failed) == len(corpus) + 4
    assert not [f for f in summary.failed if "grading error" in f[1] or "not recorded" in f[1]]


def _scores(course):
    return cell_scores(course, WEEK)


def test_every_attack_scores_zero_on_what_it_attacks_and_never_above_its_baseline(graded):
    course, corpus, summary, _, _ = graded
    scores = _scores(course)
    correct = scores["honest_correct"]
    full = sum(correct.values())
    baseline = full - sum(correct[t] for t in TESTS)  # the same submission without the exercise done
    assert all(correct[t] > 0 for t in TESTS) and baseline < full
    problems = []
    for case in corpus:
        got = scores.get(f"adv_{case.name}", {})
        total = sum(got.values())
        if case.keeps_full:
            if total != full:
                problems.append(f"{case.name}: an honest-but-odd submission should keep {full}, got {total}")
            continue
        if total > baseline:
            problems.append(f"{case.name}: {total} > honest baseline {baseline}")
        for t in TESTS:
            if got.get(t, 0) != 0:
                problems.append(f"{case.name}: {t} scored {got.get(t)}")
    assert not problems, "\n".join(problems)


def test_every_case_gets_its_status_and_a_clear_reason(graded):
    course, corpus, summary, _, _ = graded
    results = collect_results(course, WEEK)
    failed = dict(summary.failed)
    problems = []
    for case in corpus:
        student = f"adv_{case.name}"
        r = results.get(student)
        if r is None:
            problems.append(f"{case.name}: no result")
            continue
        if r["status"] != case.status:
            problems.append(f"{case.name}: status {r['status']} != {case.status} ({r.get('reason')})")
            continue
        nb = r["notebooks"][WEEK]
        if case.run_status and nb.get("run_status") != case.run_status and case.status == "graded":
            problems.append(
                f"{case.name}: run status {nb.get('run_status')} != {case.run_status} ({nb.get('run_detail')})"
            )
        text = " ".join([r.get("reason") or "", nb.get("run_detail") or "", *r.get("notes", []), *nb.get("notes", [])])
        if case.reason and case.reason not in text:
            problems.append(f"{case.name}: reason {case.reason!r} not in {text!r}")
        if case.status == "failed" and (student not in failed or not failed[student] or "Traceback" in failed[student]):
            problems.append(f"{case.name}: unclear failure {failed.get(student)!r}")
        for cell in nb["cells"]:
            if not cell["passed"] and not cell["messages"]:
                problems.append(f"{case.name}: {cell['grade_id']} failed without a message")
    assert not problems, "\n".join(problems)


def test_attempts_to_escape_the_sandbox_fail_visibly(graded):
    course, corpus, _, _, _ = graded
    for case in corpus:
        if not case.marker:
            continue
        nb = nbformat.read(course.autograded(f"adv_{case.name}", WEEK) / f"{WEEK}.ipynb", 4)
        printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
        assert case.marker in printed, f"{case.name}: expected {case.marker!r} in the run's output"
        assert "WROTE" not in printed and "CONNECTED" not in printed, case.name


def test_fork_bombs_hit_the_process_cap(graded):
    course, _, _, _, _ = graded
    if not detect().cgroup:
        pytest.skip("no cgroup pids controller on this machine (a warning says so when grading)")
    nb = nbformat.read(course.autograded("adv_fork_bomb", WEEK) / f"{WEEK}.ipynb", 4)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    # The bomb prints how many children it got when fork() starts failing: the cap stopped it
    # (without the cap it would run into the time or memory limit and print nothing).
    assert "FORKED" in printed, "the fork bomb never hit the process cap"
    assert int(printed.split("FORKED")[1].split()[0]) < LIMITS.max_processes


def test_honest_submissions_in_the_hostile_batch_get_their_serial_scores(graded, tmp_path):
    course, _, _, _, _ = graded
    serial = make_course(tmp_path / "serial")
    for student, nb in honest_class(serial).items():
        write(serial, student, {f"{WEEK}.ipynb": nb})
    grade_week(serial, WEEK, workers=0, progress=False, limits=LIMITS)
    in_batch = {s: v for s, v in _scores(course).items() if s.startswith("honest_")}
    assert in_batch == _scores(serial)
    assert sum(in_batch["honest_blank"].values()) == 0
    assert 0 < sum(in_batch["honest_mistakes"].values()) < sum(in_batch["honest_correct"].values())


def test_stock_nbgrader_is_fooled_where_we_are_not(graded, tmp_path):
    """Patching the check functions inside the kernel fools stock nbgrader (which runs the tests
    in the student's kernel and trusts it); our verdict is made outside the kernel."""
    course, corpus, _, _, _ = graded
    stock = make_course(tmp_path / "stock")
    case = next(c for c in corpus if c.name == "patch_checks")
    ctx = Context(nbformat.read(stock.release(WEEK) / f"{WEEK}.ipynb", 4), solutions(stock))
    write(stock, "attacker", case.build(ctx))
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    nbgrader = os.path.join(os.path.dirname(sys.executable), "nbgrader")
    subprocess.run(
        [nbgrader, "generate_assignment", WEEK, "--force"], cwd=stock.root, env=env, check=True, capture_output=True
    )
    subprocess.run([nbgrader, "autograde", WEEK, "--force"], cwd=stock.root, env=env, check=True, capture_output=True)
    stock_scores = cell_scores(stock, WEEK)["attacker"]
    ours = _scores(course)["adv_patch_checks"]
    assert sum(stock_scores.values()) > sum(ours.values())
    assert all(ours[t] == 0 for t in TESTS)
    assert any(stock_scores[t] > 0 for t in TESTS), stock_scores


def test_collect_faults_odd_names_duplicates_and_zip_bombs(graded, tmp_path):
    import zipfile

    from grading.collect.submissions import collect
    from grading.course import CourseError

    course = graded[0]
    honest = (course.submitted("honest_correct", WEEK) / f"{WEEK}.ipynb").read_bytes()
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"bomber/{WEEK}/{WEEK}.ipynb", b"\0" * (400 * 2**20))
    before = tree_digest(course.submitted())
    with pytest.raises(CourseError, match="zip bomb"):
        collect(course, bomb)
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for student in ["ünïcode", "with space", "honest_correct", "HONEST_blank", "newcomer"]:
            zf.writestr(f"{student}/{WEEK}/{WEEK}.ipynb", honest)
            zf.writestr(f"{student}/{WEEK}/timestamp.txt", "2026-02-01 12:00:00.000000 UTC")
    rows = {s: (status, why) for s, _, status, why in collect(course, archive).rows}
    assert rows["ünïcode"][0] == rows["with space"][0] == "rejected" and "invalid student id" in rows["ünïcode"][1]
    assert rows["honest_correct"] == ("unchanged", "identical to the current submission (duplicate)")
    assert rows["HONEST_blank"][0] == "rejected" and "case" in rows["HONEST_blank"][1]
    assert rows["newcomer"][0] == "collected"
    after = tree_digest(course.submitted())
    assert before != after  # only the newcomer was added ...
    shutil.rmtree(course.submitted("newcomer"))
    assert tree_digest(course.submitted()) == before  # ... and nothing else changed


# ===== the hostile class: attacks on everything around the verdict (tests/adversarial/hostile.py) =====
# Graded on ONE worker in a fixed order, so every honest victim runs after its attacker in the
# sandbox that attacker used (or the one the grader rebuilt). Small limits keep the batch short.
HOSTILE_LIMITS = Limits(
    cell_seconds=15, notebook_seconds=60, memory_mb=768, cpu_seconds=60, max_processes=64, max_output_mb=5
)
CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]")  # no C0 (but \t \n) or C1 control, ESC included
# What makes HTML or markdown run code in a browser: a raw tag that is a script container or carries
# an event handler / script URL / srcdoc, and markdown links to script URLs. Escaped text (&lt;) is inert.
TAG = re.compile(r"</?([a-z][\w:-]*)([^<>]*)", re.I)
DANGEROUS_TAGS = {
    "script",
    "iframe",
    "object",
    "embed",
    "base",
    "form",
    "meta",
    "link",
    "style",
    "frame",
    "svg",
    "math",
}
DANGEROUS_ATTR = re.compile(r"\bon[a-z]+\s*=|(?:java|vb)script\s*:|srcdoc|data\s*:\s*text/html", re.I)
SCRIPT_LINK = re.compile(r"\]\(\s*<?\s*(?:java|vb)script\s*:|^\s*\[[^\]]+\]:\s*<?\s*(?:java|vb)script\s*:", re.I | re.M)


def script_capable(text):
    """The script-capable constructs in HTML or markdown ``text`` (empty when it is inert)."""
    found = [m.group(0)[:60] for m in SCRIPT_LINK.finditer(text)]
    for m in TAG.finditer(text):
        name, attrs = m.group(1).lower(), m.group(2)
        if name in DANGEROUS_TAGS or name.startswith(("javascript:", "vbscript:")) or DANGEROUS_ATTR.search(attrs):
            found.append(m.group(0)[:60])
    return found


@dataclass
class Hostile:
    course: object
    members: list
    canaries: dict
    baseline: dict  # victim kind -> serial cell scores
    summary: object
    crash: str | None
    disk_growth_mb: float
    escaped: list  # files the attackers got written outside the sandbox (already removed)
    pages: dict  # student -> feedback HTML (all notebooks), "(report)" -> class report


class DiskWatcher:
    """Samples the used bytes of the host filesystems the grader could spill into, in a thread."""

    def __init__(self, paths):
        self.paths = {os.stat(p).st_dev: p for p in paths}.values()
        self.start_used = {p: shutil.disk_usage(p).used for p in self.paths}
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(0.1):
            grown = sum(shutil.disk_usage(p).used - self.start_used[p] for p in self.paths)
            self.peak = max(self.peak, grown)

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.peak / 2**20


def _victim(course, kind, secret):
    """An honest student (grading/demo.py), with a line of their own that a thief would carry off."""
    mistakes = typical_mistakes(load_mistakes(WEEK)) if kind == "mistakes" else ()
    nb = student_notebook(course, WEEK, WEEK, mistakes=mistakes)
    cell = next(c for c in nb.cells if (c.metadata.get("nbgrader") or {}).get("grade_id") == "w2_sigmoid")
    cell.source += f"\n# my own note: {secret}-{kind}"
    return nb


def _escaped_files(canary, course):
    places = [Path(sysconfig.get_paths()["purelib"]), Path("/tmp"), Path(tempfile.gettempdir()), course.root.parent]
    return sorted({p for place in places for p in place.glob(f"*{canary}*")})


@pytest.fixture(scope="module")
def hostile(adv_course):
    course = adv_course
    canaries = {k: f"{k.lower()}{secrets.token_hex(6)}" for k in ("PLANTCANARY", "VICTIMSECRET", "EXFILCANARY")}
    canaries["ESCAPECANARY"] = f"escape{secrets.token_hex(6)}"
    ctx = Context(nbformat.read(course.release(WEEK) / f"{WEEK}.ipynb", 4), solutions(course))
    victims = {kind: _victim(course, kind, canaries["VICTIMSECRET"]) for kind in ("correct", "mistakes")}
    # The serial baseline: the same notebooks, graded one by one before any attacker ran.
    for kind, nb in victims.items():
        write(course, f"baseline_{kind}", {f"{WEEK}.ipynb": nb})
    grade_week(
        course,
        WEEK,
        workers=0,
        students=["baseline_correct", "baseline_mistakes"],
        progress=False,
        limits=HOSTILE_LIMITS,
    )
    scores = cell_scores(course, WEEK)
    baseline = {kind: scores[f"baseline_{kind}"] for kind in victims}
    members = ordered_class(ctx, victims, canaries, course.root.parent)
    for m in members:
        write(course, m.name, m.files)
    watcher = DiskWatcher(["/tmp", tempfile.gettempdir(), str(course.root)])
    summary, crash = None, None
    try:
        # reuse=False: the victims hand in identical bytes, and each must really run after its attacker.
        summary = grade_week(
            course,
            WEEK,
            workers=1,
            students=[m.name for m in members],
            progress=False,
            limits=HOSTILE_LIMITS,
            reuse=False,
        )
    except Exception as e:  # noqa: BLE001 - the tests report it: one student must never abort a run
        crash = f"{type(e).__name__}: {e}"
    finally:
        growth = watcher.stop()
        escaped = _escaped_files(canaries["ESCAPECANARY"], course)
        for p in escaped:
            p.unlink()
    pages = {}
    try:
        write_feedback(course, WEEK)
        pages["(report)"] = write_report(course, WEEK).read_text()
    except Exception as e:  # noqa: BLE001
        pages["(crash)"] = f"{type(e).__name__}: {e}"
    for m in members:
        folder = course.feedback(m.name, WEEK)
        pages[m.name] = "".join(p.read_text() for p in sorted(folder.glob("*.html"))) if folder.is_dir() else ""
    yield Hostile(course, members, canaries, baseline, summary, crash, growth, escaped, pages)
    for p in _escaped_files(canaries["ESCAPECANARY"], course):  # in case a late writer got through
        p.unlink()


def _member(h, name):
    return next(m for m in h.members if m.name.endswith("_" + name) and m.role == "attack")


def _sidecar(h, student):
    side = h.course.autograded(student, WEEK) / "grading.json"
    return side.read_text() if side.exists() else ""


def _graded_nb(h, student):
    path = h.course.autograded(student, WEEK) / f"{WEEK}.ipynb"
    return json.loads(path.read_text()) if path.exists() else None


def _printed(nb):
    """Everything a notebook's code cells output (text and every mime bundle), as one string."""
    if nb is None:
        return ""
    return json.dumps([c.get("outputs", []) for c in nb["cells"] if c["cell_type"] == "code"])


def test_hostile_batch_records_every_student_with_a_reason(hostile):
    h = hostile
    assert h.crash is None, f"the batch aborted: {h.crash}"
    seen = [s for s, *_ in h.summary.graded] + [s for s, _ in h.summary.failed]
    problems = [f"{m.name}: in the summary {seen.count(m.name)} times" for m in h.members if seen.count(m.name) != 1]
    results = collect_results(h.course, WEEK)
    for m in h.members:
        r = results.get(m.name)
        if r is None or r["status"] not in ("graded", "failed"):
            problems.append(f"{m.name}: no recorded result ({dict(h.summary.failed).get(m.name)!r})")
        elif r["status"] == "failed" and not r.get("reason"):
            problems.append(f"{m.name}: failed without a reason")
    problems += [f"{s}: {why}" for s, why in h.summary.failed if "Traceback" in why]
    # An attack that could not reach its target says so: it never silently did nothing.
    for m in h.members:
        if m.role == "attack" and "GUARD:" in _printed(_graded_nb(h, m.name)):
            problems.append(f"{m.name}: the kernel could see the grader's processes (no private PID namespace)")
    assert not problems, "\n".join(problems)


def test_victims_graded_after_each_attacker_keep_their_serial_scores(hostile):
    """State survival and sabotage: whatever an attacker did, the next students get their own scores."""
    h = hostile
    assert h.crash is None, f"the batch aborted: {h.crash}"
    scores = cell_scores(h.course, WEEK)
    side = {m.name: h.course.autograded(m.name, WEEK) / "grading.json" for m in h.members}
    problems = []
    for m in h.members:
        if not m.role.startswith("victim"):
            continue
        want = h.baseline[m.role.removeprefix("victim_")]
        got = scores.get(m.name)
        if got != want:
            diff = {g: f"{(got or {}).get(g)} (serial {want[g]})" for g in want if (got or {}).get(g) != want[g]}
            problems.append(f"{m.name} (after {m.after}): {diff or 'no scores'}")
        if side[m.name].exists() and side[m.after].exists():
            assert side[m.name].stat().st_mtime_ns > side[m.after].stat().st_mtime_ns, (
                f"{m.name} was graded before its attacker {m.after}: the queue order is not what the test needs"
            )
    assert not problems, "victims lost or gained points:\n" + "\n".join(problems)


def test_nothing_of_an_earlier_notebook_reaches_a_later_one(hostile):
    """The colluder reads every place it can; nothing the planter or the victims left may be there."""
    h = hostile
    planter, colluder = _member(h, "planter").name, _member(h, "colluder").name
    assert "PLANTED" in _printed(_graded_nb(h, planter)), "the planter did not run"
    out = _printed(_graded_nb(h, colluder))
    assert "LOOT" in out, "the colluder did not run"
    secrets_ = (h.canaries["PLANTCANARY"], h.canaries["VICTIMSECRET"])
    for where, text in [("outputs", out), ("result", _sidecar(h, colluder)), ("feedback", h.pages[colluder])]:
        leaked = [s for s in secrets_ if s in text]
        assert not leaked, f"the colluder's {where} holds what earlier notebooks left: {leaked}"
    assert re.findall(r"LOOT (\d+)", out) == ["0"], "the colluder found files left by earlier notebooks"


def test_no_file_is_written_outside_the_sandbox_through_planted_links(hostile):
    h = hostile
    assert "LINKS" in _printed(_graded_nb(h, _member(h, "symlinker").name)), "the symlink planter did not run"
    assert not h.escaped, f"the grader wrote through a student's symlink onto the host: {h.escaped}"


def _hidden_inputs(course):
    """Fragments of the hidden tests' inputs that the released notebook does not show."""
    release = (course.release(WEEK) / f"{WEEK}.ipynb").read_text()
    found = set()
    for cell in nbformat.read(course.source(WEEK) / f"{WEEK}.ipynb", 4).cells:
        if "### BEGIN HIDDEN TESTS" in cell.source:
            hidden = cell.source.split("### BEGIN HIDDEN TESTS", 1)[1].split("### END HIDDEN TESTS", 1)[0]
            found |= set(re.findall(r"default_rng\(\d+\)\.\w+\([^\n]*?\)|np\.array\(\[[^\n]*?\]", hidden))
    return sorted(f for f in found if len(f) > 12 and f not in release)


def test_feedback_reports_and_terminal_carry_nothing_student_controlled(hostile):
    """Exfiltration: type, exception and warning names, reprs; nothing of it comes back to the student."""
    h = hostile
    assert h.crash is None, f"the batch aborted: {h.crash}"
    hidden = _hidden_inputs(h.course)
    assert hidden, "no hidden-test inputs found to look for"
    secrets_ = [h.canaries[k] for k in ("EXFILCANARY", "PLANTCANARY", "VICTIMSECRET")]
    channels = {
        "summary table (the instructor's terminal)": h.summary.table(),
        "class report": h.pages.get("(report)", ""),
    }
    for m in h.members:
        channels[f"{m.name} result"] = _sidecar(h, m.name)
        channels[f"{m.name} feedback"] = h.pages[m.name]
    problems = [f"{where}: {s}" for where, text in channels.items() for s in secrets_ + hidden if s in text]
    assert "(crash)" not in h.pages, h.pages.get("(crash)")
    assert not problems, "student-controlled text reached a person:\n" + "\n".join(problems[:20])


def test_a_forged_or_invalid_message_stops_the_run_and_quotes_nothing(hostile):
    """Decoding what a kernel sends never raises into the grader: a fixed status, scored, no grading error."""
    h = hostile
    for name in ("bad_signature", "bad_output"):
        student = _member(h, name).name
        result = json.loads(_sidecar(h, student))
        nb = result["notebooks"][WEEK]
        assert result["status"] == "graded" and "traceback" not in result, result.get("reason")
        assert (nb["run_status"], nb["run_detail"]) == ("malformed_message", "the kernel sent a malformed message")
        assert any("malformed message" in line for line in h.summary.table().splitlines() if student in line)


def test_graded_notebooks_hold_no_script_capable_content(hostile):
    """What formgrader shows of a student's outputs and markdown is inert."""
    h = hostile
    nb = _graded_nb(h, _member(h, "browser").name)
    assert nb is not None, "the browser attacker has no graded notebook"
    problems = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "markdown":
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            problems += [f"markdown cell {i}: {m!r}" for m in script_capable(source)]
        for out in cell.get("outputs", []):
            for mime, value in (out.get("data") or {}).items():
                text = "".join(value) if isinstance(value, list) else json.dumps(value)
                if "javascript" in mime or mime in ("text/html", "image/svg+xml"):
                    problems.append(f"cell {i}: a {mime} output")
                problems += [f"cell {i} {mime}: {m!r}" for m in script_capable(text)]
    assert not problems, "script-capable content in the graded notebook:\n" + "\n".join(problems)


def test_output_budgets_count_every_byte_and_every_output(hostile):
    h = hostile
    results = collect_results(h.course, WEEK)
    budget = HOSTILE_LIMITS.max_output_mb * 2**20
    problems = []
    for name in ("outputs_count", "outputs_meta"):
        student = _member(h, name).name
        nb = results.get(student, {}).get("notebooks", {}).get(WEEK, {})
        if nb.get("run_status") != "output_limit":
            problems.append(f"{name}: run status {nb.get('run_status')!r} ({nb.get('run_detail')})")
        path = h.course.autograded(student, WEEK) / f"{WEEK}.ipynb"
        size = path.stat().st_size if path.exists() else 0
        if size > budget + 2**20:
            problems.append(f"{name}: the graded notebook is {size / 2**20:.0f} MB")
    assert not problems, "\n".join(problems)


def test_the_working_copy_has_a_quota_and_the_host_disk_is_untouched(hostile):
    h = hostile
    out = _printed(_graded_nb(h, _member(h, "quota").name))
    written = [int(n) for n in re.findall(r"QUOTA_MB (\d+)", out)]
    assert written or "QUOTA_STOPPED" in out, "the quota attacker did not run"
    problems = []
    if max(written, default=0) >= 500:
        problems.append(f"the kernel wrote {max(written)} MB into its working copy")
    if h.disk_growth_mb >= 300:
        problems.append(f"the host disk grew by {h.disk_growth_mb:.0f} MB while grading")
    assert not problems, "\n".join(problems)


def test_stability_verdicts_do_not_depend_on_the_kernels_error_state(hostile):
    """A naive sigmoid earns no stability point, however it silences numpy inside the kernel."""
    h = hostile
    scores = cell_scores(h.course, WEEK)
    correct = h.baseline["correct"]
    problems = []
    for name in ("errstate_inside", "errstate_global"):
        got = scores.get(_member(h, name).name)
        if got is None:
            problems.append(f"{name}: not graded")
            continue
        if got["w2_sigmoid_stable_tests"] != 0:
            problems.append(f"{name}: the naive sigmoid earned the stability point")
        # Everything else is the instructor's solution (and the sigmoid's values are right): full marks.
        others = {g: v for g, v in got.items() if g != "w2_sigmoid_stable_tests"}
        want = {g: v for g, v in correct.items() if g != "w2_sigmoid_stable_tests"}
        if others != want:
            problems.append(f"{name}: {[(g, v, want[g]) for g, v in others.items() if v != want[g]]}")
    assert not problems, "\n".join(problems)


def test_an_infrastructure_error_is_never_a_score_and_is_regraded(hostile):
    h = hostile
    results = collect_results(h.course, WEEK)
    scores = cell_scores(h.course, WEEK)
    jobs, skipped, _ = plan(h.course, WEEK)
    queued = {j.student for j in jobs}
    problems = []
    for m in h.members:
        r = results.get(m.name)
        if r and (r.get("status") == "error" or "infrastructure" in json.dumps(r)):
            if m.name in scores:
                problems.append(f"{m.name}: an infrastructure error was recorded as a score {scores[m.name]}")
            if m.name not in queued:
                problems.append(f"{m.name}: an infrastructure error is skipped by a rerun")
    assert not problems, "\n".join(problems)


def test_a_student_id_that_names_a_course_file_is_rejected_and_the_run_goes_on(hostile):
    h = hostile
    course = h.course
    readme = course.root / "autograded" / "README.md"
    readme.parent.mkdir(exist_ok=True)
    if not readme.exists():
        readme.write_text((REPO / "autograded" / "README.md").read_text())
    before = readme.read_bytes()
    write(course, "README.md", {f"{WEEK}.ipynb": student_notebook(course, WEEK, WEEK)})
    try:
        for attempt in ("first run", "rerun"):
            try:
                summary = grade_week(
                    course,
                    WEEK,
                    workers=0,
                    students=["README.md", "baseline_correct"],
                    force=True,
                    progress=False,
                    limits=HOSTILE_LIMITS,
                )
            except Exception as e:  # noqa: BLE001
                pytest.fail(f"{attempt}: the student id README.md aborted the whole run: {type(e).__name__}: {e}")
            failed = dict(summary.failed)
            assert failed.get("README.md"), f"{attempt}: README.md was not rejected with a reason"
            assert [s for s, *_ in summary.graded] == ["baseline_correct"], f"{attempt}: {summary.table()}"
            assert readme.read_bytes() == before, "autograded/README.md was changed"
    finally:
        shutil.rmtree(course.submitted("README.md"))


ESCAPES = ["esc\x1b]0;pwned title\x07", "cls\x1b[2J\x1b[H", "clip\x1b]52;c;cHduZWQ=\x07", "csi\x9b2J"]


def _cli(course, *args):
    return subprocess.run(
        [sys.executable, "-m", "grading.cli", "--course", str(course.root), *args],
        capture_output=True,
        timeout=600,
    )


def test_names_and_link_targets_never_reach_the_terminal_raw(hostile, tmp_path):
    """`course collect` and `course grade` escape every student-chosen string they print."""
    import zipfile

    h = hostile
    course = h.course
    honest = (course.submitted("baseline_correct", WEEK) / f"{WEEK}.ipynb").read_bytes()
    names = tmp_path / "names.zip"
    with zipfile.ZipFile(names, "w") as zf:
        for n in ESCAPES:
            zf.writestr(f"{n}/{WEEK}/{WEEK}.ipynb", honest)
        zf.writestr(f"escfiles/{WEEK}/{WEEK}.ipynb", honest)
        zf.writestr(f"escfiles/{WEEK}/{ESCAPES[0]}.txt", b"x")
    links = tmp_path / "links.zip"
    with zipfile.ZipFile(links, "w") as zf:
        info = zipfile.ZipInfo(f"lnk{ESCAPES[2]}/{WEEK}/data")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, ESCAPES[0])
    folder = tmp_path / "folder"
    (folder / "esclink" / WEEK).mkdir(parents=True)
    (folder / "esclink" / WEEK / f"{WEEK}.ipynb").write_bytes(honest)
    for i, target in enumerate(ESCAPES):
        (folder / "esclink" / WEEK / f"data{i}").symlink_to(target)
    graded_dir = course.submitted("escgrade", WEEK)
    graded_dir.mkdir(parents=True)
    (graded_dir / f"{WEEK}.ipynb").write_bytes(honest)
    for i, target in enumerate(ESCAPES):
        (graded_dir / f"data{i}").symlink_to(target)
    runs = {
        "collect names.zip": _cli(course, "collect", str(names)),
        "collect links.zip": _cli(course, "collect", str(links)),
        "collect folder": _cli(course, "collect", str(folder)),
        "grade": _cli(
            course,
            "grade",
            WEEK,
            "--workers",
            "0",
            "--quiet",
            "--force",
            "--students",
            f"escgrade,{_member(h, 'exfiltrate').name}",
        ),
    }
    problems = []
    for what, r in runs.items():
        for stream, data in (("stdout", r.stdout), ("stderr", r.stderr)):
            if CONTROL.search(data):
                problems.append(f"{what} {stream}: {CONTROL.findall(data)[:5]} in {data[-300:]!r}")
            if b"Traceback" in data:
                problems.append(f"{what} {stream}: a traceback")
            if h.canaries["EXFILCANARY"].encode() in data:
                problems.append(f"{what} {stream}: the exfiltration canary")
    assert runs["grade"].returncode == 0, runs["grade"].stderr[-500:]
    assert not problems, "\n".join(problems)


def test_collect_never_follows_links_isolates_faults_and_ignores_student_timestamps(hostile, tmp_path):
    import zipfile

    from nbgrader.utils import parse_utc

    from grading.collect.submissions import collect

    course = hostile.course
    honest = (course.submitted("baseline_correct", WEEK) / f"{WEEK}.ipynb").read_bytes()
    solution = (course.source(WEEK) / f"{WEEK}.ipynb").read_bytes()
    folder = tmp_path / "folder"
    (folder / "sneaky").mkdir(parents=True)
    (folder / "sneaky" / WEEK).symlink_to(course.source(WEEK))
    (folder / "alongside" / WEEK).mkdir(parents=True)
    (folder / "alongside" / WEEK / f"{WEEK}.ipynb").write_bytes(honest)
    rows = {s: (status, why) for s, _, status, why in collect(course, folder).rows}
    assert rows.get("sneaky", ("missing",))[0] == "rejected" and rows["sneaky"][1], rows
    copied = [p for p in course.submitted("sneaky").rglob("*") if p.is_file() and p.read_bytes() == solution]
    assert not copied, f"the instructor's solution was imported as a submission: {copied}"
    assert rows["alongside"][0] == "collected", rows

    archive = tmp_path / "class.zip"
    when = (2026, 3, 1, 12, 0, 0)
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"clash/{WEEK}/{WEEK}.ipynb", honest)
        zf.writestr(f"clash/{WEEK}/data", b"a file ...")
        zf.writestr(f"clash/{WEEK}/data/inner.csv", b"... and a folder of the same name")
        zf.writestr(zipfile.ZipInfo(f"late/{WEEK}/{WEEK}.ipynb", date_time=when), honest)
        zf.writestr(zipfile.ZipInfo(f"late/{WEEK}/timestamp.txt", date_time=when), "2020-01-01 00:00:00.000000 UTC")
        zf.writestr(f"README.md/{WEEK}/{WEEK}.ipynb", honest)
        zf.writestr(f"fine/{WEEK}/{WEEK}.ipynb", honest)
    try:
        report = collect(course, archive)
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"one student's archive fault aborted the whole import: {type(e).__name__}: {e}")
    rows = {s: (status, why) for s, _, status, why in report.rows}
    assert rows.get("clash", ("missing",))[0] == "rejected" and rows["clash"][1], rows
    assert rows.get("README.md", ("missing",))[0] == "rejected", rows
    assert rows["fine"][0] == "collected" and rows["late"][0] == "collected", rows
    stamp = parse_utc((course.submitted("late", WEEK) / "timestamp.txt").read_text().strip())
    assert stamp >= datetime(2026, 2, 28), f"a timestamp.txt the student wrote backdated the submission to {stamp}"
