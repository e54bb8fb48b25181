"""Stability points are earned by the values a function returns, never by numpy's error state.

A student's function runs in the student's kernel and can set the error state
itself (``np.errstate(all="ignore")``, ``np.seterr``), so a check that relied on
overflows raising there could be defeated. The stability tests of weeks 2 and 3
instead probe inputs where unstable formulas return inf, nan or 0 instead of a
tiny number, and the trusted grader compares the returned values with the
reference run's (for the sigmoid with a relative tolerance and no absolute one).

These tests grade real submissions (release notebook + one variant of the
exercise) with the real grader, in one batch per week.
"""

import nbformat
import pytest

from grading.demo import student_notebook
from grading.pipeline import collect_results, grade_week
from grading.verdict.notebook import read_spec
from tests.conftest import REPO, copy_course, submit
from tests.fixtures.scores import cell_scores

W2, W3 = "week2_logistic_regression", "week3_multilayer_perceptron"
SIGMOID_LINE = "return np.exp(np.minimum(z, 0.0)) / (1.0 + np.exp(-np.abs(z)))"
SOFTPLUS_LINE = "return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))"
QUIET = 'with np.errstate(all="ignore"):\n        '  # inside the def: the return moves one level in

# name -> (the solution line replaced by, points the stability cell must get)
SIGMOIDS = {
    "naive_errstate": (QUIET + "return 1.0 / (1.0 + np.exp(-z))", 0),
    "naive_seterr": ('np.seterr(all="ignore")\n    return 1.0 / (1.0 + np.exp(-z))', 0),
    "exp_ratio_errstate": (QUIET + "return np.exp(z) / (1.0 + np.exp(z))", 0),
    "tanh": ("return 0.5 * (1.0 + np.tanh(z / 2.0))", 0),
    "clipped": ("return 1.0 / (1.0 + np.exp(-np.clip(z, -500.0, 500.0)))", 0),
    "one_minus_errstate": (
        QUIET + "return np.where(z >= 0, 1.0 / (1.0 + np.exp(-z)), 1.0 - 1.0 / (1.0 + np.exp(z)))",
        0,
    ),
    "two_branch_where": (
        "e = np.exp(-np.abs(z))\n    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))",
        1,
    ),
    "logaddexp": ("return np.exp(-np.logaddexp(0.0, -z))", 1),
}
SOFTPLUSES = {
    "naive_errstate": (QUIET + "return np.log(1.0 + np.exp(z))", 0),
    "log1p_errstate": (QUIET + "return np.log1p(np.exp(z))", 0),
    "log_not_log1p": ("return np.maximum(z, 0.0) + np.log(1.0 + np.exp(-np.abs(z)))", 1),  # taught, not required
    "clipped": ("return np.log1p(np.exp(np.clip(z, -500.0, 500.0)))", 0),
    "logaddexp": ("return np.logaddexp(0.0, z)", 1),
    "where_relu_part": ("return np.where(z > 0, z, 0.0) + np.log1p(np.exp(-np.abs(z)))", 1),
}
CASES = {
    W2: ("w2_sigmoid", SIGMOID_LINE, "w2_sigmoid_stable_tests", SIGMOIDS),
    W3: ("w3_softplus", SOFTPLUS_LINE, "w3_softplus_stable_tests", SOFTPLUSES),
}


def _test_cells():
    for path in sorted(REPO.glob("source/*/*.ipynb")):
        for cell in read_spec(path).test_cells:
            yield path.parent.name, cell


def test_no_test_cell_depends_on_the_kernels_error_state_or_warning_filters():
    """A check computed under the kernel's error state or warning filters is the student's to switch off."""
    bad = [
        f"{week} {cell.grade_id}: {word}"
        for week, cell in _test_cells()
        for word in ("no_overflow", "errstate", "seterr", "warnings")
        if word in cell.source
    ]
    assert not bad, bad


def test_every_sigmoid_stability_check_is_relative_with_no_absolute_slack():
    """atol=0.0: with the default atol, 0 would pass for σ(-720) ≈ 2e-313, the naive formula's answer."""
    for _, cell in _test_cells():
        if cell.grade_id == "w2_sigmoid_stable_tests":
            calls = cell.source.count("check_close(")
            assert calls >= 2 and cell.source.count("atol=0.0") == calls, cell.grade_id


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """{week: (course, {student: expected stability points})}, each week graded in one batch."""
    from grading.authoring.release import release
    from grading.course import Course

    out = {}
    for week, (cell, line, _, variants) in CASES.items():
        root = tmp_path_factory.mktemp(week) / "course"
        (root / "source").mkdir(parents=True)
        copy_course(REPO / "source" / week, root / "source" / week)
        (root / "nbgrader_config.py").write_bytes((REPO / "nbgrader_config.py").read_bytes())
        course = Course.load(root)
        release(course, week)
        expected = {"reference": 1, "blank": 0}
        submit(course, "reference", student_notebook(course, week, week), week=week)
        submit(course, "blank", student_notebook(course, week, week, solved=set()), week=week)
        for name, (new, points) in variants.items():
            nb = student_notebook(course, week, week, mistakes=[{"solution_cell": cell, "replace": line, "with": new}])
            submit(course, name, nb, week=week)
            expected[name] = points
        summary = grade_week(course, week, workers=2, progress=False)
        assert not summary.failed, summary.failed
        out[week] = (course, expected)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("week", list(CASES))
def test_stability_points_follow_the_returned_values(graded, week):
    course, expected = graded[week]
    stable = CASES[week][2]
    scores = cell_scores(course, week)
    got = {student: scores[student][stable] for student in expected}
    assert got == expected


@pytest.mark.slow
@pytest.mark.parametrize("week", list(CASES))
def test_the_reference_gets_full_marks_and_the_blank_release_none(graded, week):
    course, _ = graded[week]
    scores = cell_scores(course, week)
    spec = read_spec(course.source(week) / f"{week}.ipynb")
    assert scores["reference"] == {c.grade_id: c.points for c in spec.test_cells}
    assert not any(scores["blank"].values())


@pytest.mark.slow
@pytest.mark.parametrize("week", list(CASES))
def test_a_silenced_overflow_loses_only_the_stability_point_and_is_told_why(graded, week):
    course, _ = graded[week]
    scores = cell_scores(course, week)
    stable = CASES[week][2]
    lost = {gid for gid, pts in scores["naive_errstate"].items() if pts != scores["reference"][gid]}
    assert lost == {stable}
    cells = {c["grade_id"]: c for c in collect_results(course, week)["naive_errstate"]["notebooks"][week]["cells"]}
    assert "overflow" in " ".join(cells[stable]["messages"]).lower()


def test_the_release_shows_students_the_values_they_must_hit():
    """The visible sigmoid check names the tiny value, so a student can reproduce the failure."""
    nb = nbformat.read(REPO / "release" / W2 / f"{W2}.ipynb", 4)
    (cell,) = [c for c in nb.cells if (c.metadata.get("nbgrader") or {}).get("grade_id") == CASES[W2][2]]
    assert "2.0e-313" in cell.source and "atol=0.0" in cell.source
