"""Plain nbgrader commands and `course` commands agree on this course, and both are safe.

Each test runs the real nbgrader command (a subprocess, as an instructor would) next to ours:
generate_assignment builds the committed release; generate_feedback never shows hidden tests and
gives the page `course feedback` gives; release_feedback / fetch_feedback deliver our page through
a real exchange after `course grade`; a late submission gets the same penalty from `course grade`
as from `nbgrader autograde`, for every late plugin setting.
"""

import os
import shutil
import subprocess
import sys

import nbformat
import pytest
from nbgrader.plugins import LateSubmissionPlugin
from nbgrader.utils import parse_utc

from grading.authoring.release import release
from grading.course import Course
from grading.outputs.feedback import write_feedback
from grading.outputs.report import write_report
from grading.pipeline import grade_week
from grading.verdict.notebook import cell_role
from tests.conftest import REPO, release_nb, submit
from tests.fixtures import toy

pytestmark = pytest.mark.slow
W = toy.WEEK
DUE = "2026-01-05 09:00:00.000000 UTC"
LATE = "2026-01-05 11:30:00.000000 UTC"  # 2 h 30 min after DUE
HIDDEN_LINES = [  # code inside the toy's ### BEGIN/END HIDDEN TESTS regions
    "Z_big = np.array([[-1000.0, 1000.0], [3.0, -0.5]])",
    "rng = np.random.default_rng(7)",
    'check_close("sigmoid for |z| = 1000 and a 2x2 batch", sigmoid(Z_big),',
]
# Passes the visible sigmoid check (a vector) and fails the hidden one (a 2x2 batch): the hidden
# check raises, so nbgrader's traceback would quote the hidden line.
SIGMOID_VECTOR_ONLY = """def sigmoid(z):
    z = np.asarray(z, dtype=float)
    return 1 / (1 + np.exp(-z)) if z.ndim == 1 else np.zeros(3)"""


class HalfPenalty(LateSubmissionPlugin):
    """An instructor's own late policy: half the notebook's score (as a custom plugin would be set)."""

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        return score / 2


def nbgrader(course_root, *args, cwd=None):
    """Run the real ``nbgrader`` CLI; returns its output. Fails the test on a non-zero exit."""
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"], PYTHONPATH=str(REPO))
    exe = os.path.join(os.path.dirname(sys.executable), "nbgrader")
    run = subprocess.run([exe, *args], cwd=cwd or course_root, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{run.stdout[-3000:]}{run.stderr[-3000:]}"
    return run.stdout + run.stderr


def configure(course, *lines):
    with open(course.root / "nbgrader_config.py", "a") as fh:
        fh.write("\n" + "\n".join(lines) + "\n")


# ----- generate_assignment ------------------------------------------------------------
WEEKS = sorted(p.name for p in (REPO / "source").iterdir() if p.name.startswith("week"))


def _nbgrader_release(tmp_path, week):
    """Plain ``nbgrader generate_assignment`` on a copy of the repository's source/ for ``week``."""
    shutil.copytree(REPO / "source" / week, tmp_path / "source" / week)
    shutil.copy(REPO / "nbgrader_config.py", tmp_path)
    nbgrader(tmp_path, "generate_assignment", week, "--create", "--force")
    return tmp_path / "release" / week


@pytest.mark.parametrize("week", WEEKS)
def test_plain_nbgrader_generate_assignment_builds_the_committed_release(tmp_path, week):
    made = _nbgrader_release(tmp_path, week)
    committed = sorted(p.name for p in (REPO / "release" / week).iterdir())
    assert sorted(p.name for p in made.iterdir()) == committed
    for name in committed:
        assert (made / name).read_bytes() == (REPO / "release" / week / name).read_bytes(), (
            f"release/{week}/{name} is not what nbgrader generate_assignment makes: run `course release {week}`"
        )
    nb = nbformat.read(made / f"{week}.ipynb", 4)
    exercises = [c for c in nb.cells if c.cell_type == "code" and cell_role(c) in ("solution", "tests")]
    assert exercises and all("raises-exception" in c.metadata.get("tags", []) for c in exercises)


def test_course_release_is_plain_nbgrader(tmp_path):
    """`course release` adds nothing to nbgrader's output (on the same source, whatever it holds now)."""
    week = "week1_linear_regression"
    made = _nbgrader_release(tmp_path / "nbgrader", week)
    ours = tmp_path / "ours"
    shutil.copytree(REPO / "source" / week, ours / "source" / week)
    shutil.copy(REPO / "nbgrader_config.py", ours)
    release(Course.load(ours), week)
    assert (ours / "release" / week / f"{week}.ipynb").read_bytes() == (made / f"{week}.ipynb").read_bytes()


# ----- generate_feedback ----------------------------------------------------------------
def test_nbgrader_generate_feedback_shows_no_hidden_tests_and_gives_our_page(toy_course, tmp_path):
    rel = release_nb(toy_course)
    submit(toy_course, "hana", toy.solved(rel, sigmoid=SIGMOID_VECTOR_ONLY))
    stock = Course.load(shutil.copytree(toy_course.root, tmp_path / "stock"))

    # graded by `course grade`: nbgrader's Generate Feedback writes exactly our page
    grade_week(toy_course, W, workers=0, progress=False)
    ours = {p: p.read_bytes() for p in write_feedback(toy_course, W)}
    nbgrader(toy_course.root, "generate_feedback", W, "--force")
    assert ours and {p: p.read_bytes() for p in ours} == ours
    # graded by `nbgrader autograde`: nbgrader's own page, without hidden tests or their outputs
    nbgrader(stock.root, "autograde", W, "--force")
    graded = nbformat.read(stock.autograded("hana", W) / f"{W}.ipynb", 4)
    assert "Z_big" in nbformat.writes(graded)  # the hidden check ran and its traceback quotes it
    nbgrader(stock.root, "generate_feedback", W, "--force")
    page = (stock.feedback("hana", W) / f"{W}.html").read_text()
    assert "Hidden checks ran in this cell" in page
    for text in HIDDEN_LINES + ["BEGIN HIDDEN TESTS", "Z_big", "default_rng(7)"]:
        assert text not in page and text not in ours[next(iter(ours))].decode()


# ----- release_feedback / fetch_feedback through a real exchange --------------------------
def test_release_and_fetch_feedback_after_course_grade(toy_course, tmp_path):
    exchange, home, cache = tmp_path / "exchange", tmp_path / "student", tmp_path / "cache"
    for d in (exchange, home, cache):
        d.mkdir()
    exchange.chmod(0o777)
    opts = [f"--Exchange.root={exchange}", f"--Exchange.cache={cache}", "--CourseDirectory.course_id=nn-course"]
    nbgrader(toy_course.root, "release_assignment", W, *opts)
    nbgrader(home, "fetch_assignment", W, *opts)
    path = home / W / f"{W}.ipynb"
    nbformat.write(toy.solved(nbformat.read(path, 4), affine=toy.AFFINE_SOLUTION.replace("X @ W + b", "X @ W")), path)
    nbgrader(home, "submit", W, *opts)
    nbgrader(toy_course.root, "collect", W, *opts)
    (student,) = toy_course.students(W)  # the unix user who submitted

    grade_week(toy_course, W, workers=0, progress=False)
    for name in ("timestamp.txt", "submission_secret.txt"):
        assert (toy_course.autograded(student, W) / name).read_bytes() == (
            toy_course.submitted(student, W) / name
        ).read_bytes()
    (page,) = write_feedback(toy_course, W)
    nbgrader(toy_course.root, "release_feedback", W, *opts)
    nbgrader(home, "fetch_feedback", W, *opts)
    (fetched,) = (home / W / "feedback").glob(f"*/{W}.html")
    assert fetched.read_bytes() == page.read_bytes()
    assert "forgot to add the bias b" in fetched.read_text()


# ----- late penalties -------------------------------------------------------------------
@pytest.mark.parametrize(
    "setting, expected",
    [
        ('c.LateSubmissionPlugin.penalty_method = "zero"', 3.0),
        ('c.LateSubmissionPlugin.penalty_method = "none"', 0.0),
        (f'c.AssignLatePenalties.plugin_class = "{__name__}.HalfPenalty"', 1.5),
    ],
)
def test_course_grade_gives_the_late_penalty_nbgrader_autograde_gives(toy_course, tmp_path, setting, expected):
    configure(toy_course, setting)
    with toy_course.gradebook() as gb:
        gb.update_or_create_assignment(W, duedate=parse_utc(DUE))
    submit(toy_course, "kim", toy.solved(release_nb(toy_course)), timestamp=LATE)
    submit(toy_course, "lee", toy.solved(release_nb(toy_course)), timestamp="2026-01-05 08:00:00.000000 UTC")
    stock = Course.load(shutil.copytree(toy_course.root, tmp_path / "stock"))

    nbgrader(stock.root, "autograde", W, "--force")
    grade_week(toy_course, W, workers=0, progress=False)

    def state(course):
        with course.gradebook() as gb:
            out = {}
            for student in ("kim", "lee"):
                sub = gb.find_submission(W, student)
                notebooks = {nb.name: (nb.score, nb.late_submission_penalty or 0.0) for nb in sub.notebooks}
                out[student] = (sub.score, sub.late_submission_penalty, sub.total_seconds_late, notebooks)
            return out

    theirs, ours = state(stock), state(toy_course)
    assert theirs == ours
    assert ours["kim"][1] == expected and ours["kim"][2] == 9000 and ours["lee"][1:3] == (0.0, 0)

    kim = next(p for p in write_feedback(toy_course, W) if p.parent.parent.name == "kim").read_text()
    lee = (toy_course.feedback("lee", W) / f"{W}.html").read_text()
    assert "Late submission" in kim and "2 h 30 min late" in kim and "Late submission" not in lee
    assert (f"late penalty {expected:g} point" in kim) == bool(expected)
    report = write_report(toy_course, W).read_text()
    assert "Late submissions (1)" in report and "2 h 30 min late" in report


def test_grade_summary_names_the_late_penalty(toy_course):
    configure(toy_course, 'c.LateSubmissionPlugin.penalty_method = "zero"')
    with toy_course.gradebook() as gb:
        gb.update_or_create_assignment(W, duedate=parse_utc(DUE))
    submit(toy_course, "kim", toy.solved(release_nb(toy_course)), timestamp=LATE)
    summary = grade_week(toy_course, W, workers=0, progress=False)
    assert "submitted 2 h 30 min late: late penalty 3 point(s)" in summary.table()


def test_late_plugin_that_cannot_be_loaded_stores_nothing(toy_course):
    configure(toy_course, 'c.AssignLatePenalties.plugin_class = "no_such_module.Policy"')
    submit(toy_course, "kim", toy.solved(release_nb(toy_course)), timestamp=LATE)
    summary = grade_week(toy_course, W, workers=0, progress=False)
    assert [s for s, _ in summary.errors] == ["kim"] and "no_such_module" in summary.errors[0][1]
    assert not (toy_course.autograded("kim", W) / "grading.json").exists()
