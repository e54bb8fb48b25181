"""Red-team findings: attacks that cost the grader before any of its limits applied.

* A notebook is parsed, merged into the trusted skeleton and written back on the
  grading worker, outside the kernel's time and memory limits: a small file with very many
  cells or JSON values held a worker for minutes and gigabytes (1 MB of empty cells: 108 s
  and 1.2 GB, past a 60 s notebook limit; a 100 MB one: hours).
* ``course collect FOLDER`` had none of a zip's limits: one student's sparse file was copied
  onto the course's disk at its full size, and read whole into memory by the next collect.

Graded with the real pipeline, sandbox on, on week 1 (the fastest week).
"""

import json

import nbformat
import pytest

from grading.collect.submissions import MAX_MEMBERS, MAX_UNZIPPED, collect
from grading.collect.validate import MAX_CELLS, MAX_JSON_VALUES
from grading.demo import student_notebook
from grading.pipeline import collect_results, grade_week
from grading.sandbox.layers import Limits
from tests.conftest import released_course, submit
from tests.fixtures.scores import cell_scores
from tests.test_adversarial import require_sandbox

pytestmark = pytest.mark.slow
WEEK = "week1_linear_regression"
LIMITS = Limits(cell_seconds=20, notebook_seconds=60, memory_mb=768, cpu_seconds=60, max_processes=64, max_output_mb=5)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    require_sandbox()
    return released_course(tmp_path_factory.mktemp("redteam") / "course", WEEK)


def test_notebooks_of_many_cells_or_values_are_refused_before_they_cost_the_grader(course):
    honest = student_notebook(course, WEEK, WEEK)
    doc = json.loads(nbformat.writes(honest))
    cells = dict(doc, cells=doc["cells"] + [{}] * 30_000)  # 150 kB: every cell is a full solution otherwise
    values = dict(doc, metadata={"pad": [{}] * (MAX_JSON_VALUES + 1)})  # 3 MB of "{},"
    submit(course, "many_cells", json.dumps(cells).encode(), WEEK)
    submit(course, "many_values", json.dumps(values).encode(), WEEK)
    submit(course, "honest", nbformat.writes(honest).encode(), WEEK)
    summary = grade_week(course, WEEK, workers=0, progress=False, limits=LIMITS)
    results = collect_results(course, WEEK)
    for student, word in (("many_cells", f"limit of {MAX_CELLS}"), ("many_values", f"{MAX_JSON_VALUES} allowed")):
        r = results[student]
        assert r["status"] == "failed", f"{student}: {r['status']} (a notebook this size must not be graded)"
        assert word in r["reason"], r["reason"]
        assert student in dict(summary.failed)
    scores = cell_scores(course, WEEK)
    assert sum(scores["honest"].values()) > 0 and results["honest"]["status"] == "graded"


def test_collecting_a_folder_has_the_limits_of_a_zip(course, tmp_path):
    honest = nbformat.writes(student_notebook(course, WEEK, WEEK)).encode()
    folder = tmp_path / "class"
    for student in ("huge", "numerous", "fine"):
        (folder / student / WEEK).mkdir(parents=True)
        (folder / student / WEEK / f"{WEEK}.ipynb").write_bytes(honest)
    with open(folder / "huge" / WEEK / "data.bin", "wb") as f:
        f.truncate(MAX_UNZIPPED + 1)  # sparse: nothing on this disk, a gigabyte on the course's
    for i in range(MAX_MEMBERS + 1):
        (folder / "numerous" / WEEK / f"f{i}").touch()
    rows = {s: (status, why) for s, _, status, why in collect(course, folder).rows}
    assert rows["fine"][0] == "collected", rows["fine"]
    for student in ("huge", "numerous"):
        assert rows[student][0] == "rejected" and "limits" in rows[student][1], rows[student]
        assert not course.submitted(student).exists(), f"{student}'s files were copied into submitted/"
