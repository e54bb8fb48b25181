"""Hostile submissions, graded in one parallel batch with honest ones (tests/adversarial/corpus.py).

Shows: no attack scores above its honest baseline, every attacked exercise
scores 0, the batch never crashes, every reason is clear, the submitted
files are untouched, and the honest submissions in the same batch get
exactly their serial-grading scores.
"""

import os
import shutil
import socket
import subprocess
import sys

import nbformat
import pytest

from grading.course import Course
from grading.demo import load_mistakes, student_notebook, typical_mistakes
from grading.gradebook import cell_scores
from grading.notebook import cell_role
from grading.pipeline import collect_results, grade_week
from grading.sandbox import Limits, detect
from tests.adversarial.corpus import TESTS, WEEK, Context, cases
from tests.test_pipeline import tree_digest

pytestmark = pytest.mark.slow
REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
LIMITS = Limits(cell_seconds=20, notebook_seconds=150, memory_mb=768, cpu_seconds=60, max_processes=64, max_output_mb=5)


def make_course(root):
    from grading.release import release

    root.mkdir(parents=True)
    shutil.copytree(REPO / "source" / WEEK, root / "source" / WEEK)
    shutil.copy(REPO / "nbgrader_config.py", root)
    course = Course.load(root)
    release(course, WEEK)
    return course


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


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("adv") / "course")
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
    caps = detect()
    for case in corpus:
        if not case.marker:
            continue
        if not caps.bubblewrap and case.name in ("network", "read_secrets", "write_outside"):
            continue  # those protections are off without bubblewrap (and `course grade` warns)
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

    from grading.collect import collect
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
