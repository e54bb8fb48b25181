"""One mistake costs points once: a test cell grades its own exercise, not an earlier one.

A submission whose only mistake is in one exercise, graded by the course grader (which
tests/test_weeks.py holds equal to real nbgrader cell by cell), loses points in that
exercise's test cells only. In week 4, the value_backward checks used to build their graphs
with the student's value_add/value_mul, and the mlp_backward checks their caches with the
student's forward_with_caches, so one wrong line there cost points twice.
"""

import shutil
from pathlib import Path

import nbformat
import pytest

from grading.authoring.release import release
from grading.course import Course
from grading.demo import load_mistakes, one_per_cell, student_notebook
from grading.pipeline import grade_week
from grading.verdict.notebook import read_spec
from tests.fixtures.scores import cell_scores

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# The exercises whose functions later exercises call: their first catalogued mistake, alone.
UPSTREAM = {"week4_backpropagation": ["w4_value_add", "w4_value_mul", "w4_forward_with_caches"]}
CASES = [(week, cell) for week, cells in UPSTREAM.items() for cell in cells]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """{(week, solution cell): (cells that lost points, the mistake applied)}, graded by our grader."""
    out = {}
    for week, cells in UPSTREAM.items():
        root = tmp_path_factory.mktemp(week) / "course"
        (root / "source").mkdir(parents=True)
        shutil.copytree(REPO / "source" / week, root / "source" / week)
        shutil.copy(REPO / "nbgrader_config.py", root)
        course = Course.load(root)
        release(course, week)
        chosen = {m["solution_cell"]: m for m in one_per_cell(load_mistakes(week)) if m["solution_cell"] in cells}
        for cell, m in chosen.items():
            d = course.submitted(cell, week)
            d.mkdir(parents=True)
            nbformat.write(student_notebook(course, week, week, mistakes=[m]), d / f"{week}.ipynb")
            (d / "timestamp.txt").write_text("2026-03-01 09:00:00.000000 UTC")
        summary = grade_week(course, week, workers=2, progress=False)
        assert not summary.failed and not summary.errors, (summary.failed, summary.errors)
        full = {c.grade_id: c.points for c in read_spec(course.source(week) / f"{week}.ipynb").test_cells}
        for cell, scores in cell_scores(course, week).items():
            assert set(scores) == set(full), cell
            out[(week, cell)] = ({g for g, pts in scores.items() if pts < full[g]}, chosen[cell])
    return out


@pytest.mark.parametrize(("week", "cell"), CASES, ids=[c for _, c in CASES])
def test_a_mistake_in_one_exercise_loses_only_that_exercises_points(graded, week, cell):
    lost, mistake = graded[(week, cell)]
    assert lost == {mistake["fails"]}, f"{mistake['description']}: lost points in {sorted(lost)}"
    assert not mistake.get("also_fails"), "the catalogue still expects this mistake to fail another exercise"
