"""Test-cell conventions, the probe/reference rewrite, and merging a submission into the trusted skeleton."""

import nbformat
import pytest

from grading.verdict.notebook import NotebookError, lint, merge, parse_checks, prepare_for_run, read_spec, rewrite
from tests.fixtures import toy


def test_checks_are_found_with_their_hidden_flag():
    checks = parse_checks(toy.SIGMOID_TESTS, "w9_sigmoid_tests")
    assert [(c.name, c.kind, c.hidden) for c in checks] == [
        ("sigmoid at 0 and 2", "close", False),
        ("sigmoid for |z| = 1000 and a 2x2 batch", "close", True),
    ]


@pytest.mark.parametrize(
    "source, message",
    [
        ("for z in [1, 2]:\n    check_close('a', f(z), 1.0)", "only contain imports"),
        ("print(1)\ncheck_close('a', f(1), 1.0)", "only contain imports"),
        ("check_close(name, f(1), 1.0)", "string literal"),
        ("check_close('a', f(1))", "exactly 3 positional"),
        ("check_close('a', f(1), 1.0, **opts)", "no \\*\\*kwargs"),
        ("check_close('a', f(1), 1.0)\ncheck_close('a', f(2), 2.0)", "two checks are named"),
        ("expected = 2.0\ncheck_close('a', f(1), expected)", "inline"),
        ("x = 1", "at least one check"),
        ("check_close('a', f(1), 1.0", "does not parse"),
    ],
)
def test_test_cell_rules(source, message):
    with pytest.raises(NotebookError, match=message):
        parse_checks(source, "w9_x_tests")


def test_inputs_used_by_actual_and_expected_are_allowed():
    parse_checks("X = np.ones((2, 3))\ncheck_close('a', f(X), X @ np.ones(3))", "w9_x_tests")


def test_probe_rewrite_removes_expected_values_and_options():
    out = rewrite(toy.AFFINE_TESTS, "w9_affine_tests", "probe")
    assert "[[2.25, 7.0]" not in out and "mistakes" not in out and "X2 @ W2 + b2" not in out
    assert "__course_probe__('w9_affine_tests', 0, (affine(X, W, b)))" in out
    assert "__course_probe__('w9_affine_tests', 1, (affine(X2, W2, b2)))" in out
    compile(out, "cell", "exec")


def test_reference_rewrite_keeps_the_call_and_marks_hidden_checks():
    out = rewrite(toy.SIGMOID_TESTS, "w9_sigmoid_tests", "reference")
    assert "__course_ref__('w9_sigmoid_tests', 0, False, check_close, \"sigmoid at 0 and 2\"" in out
    assert "__course_ref__('w9_sigmoid_tests', 1, True, check_close," in out
    compile(out, "cell", "exec")


def test_rewrite_handles_unicode_and_multiline_calls():
    src = "z = 1  # σ(z) → ½\ncheck_close('σ(½)',\n    f(z),\n    0.5)\n"
    out = rewrite(src, "w9_x_tests", "probe")
    assert "__course_probe__('w9_x_tests', 0, (f(z)))" in out
    compile(out, "cell", "exec")
    # the actual value spans lines and has non-ASCII text before it on its line (columns are UTF-8 bytes)
    src = "check_close('ß', g('é',\n      z), 1.0)\n"
    assert "__course_probe__('w9_y_tests', 0, (g('é',\n      z)))" in rewrite(src, "w9_y_tests", "probe")


def test_lint_accepts_the_toy_and_rejects_expected_values_from_student_code():
    spec = read_spec(toy.source_notebook(), "toy")
    assert lint(spec) == []
    nb = toy.source_notebook()
    nb.cells[5].source = "X = np.ones((2, 3))\ncheck_close('a', affine(X, X.T, 0), affine(X, X.T, 0))"
    assert any("student's affine" in p for p in lint(read_spec(nb, "toy")))


def _spec_and_release():
    spec = read_spec(toy.source_notebook(), "toy")
    release = {
        "w9_sigmoid": {"source": "def sigmoid(z):\n    raise NotImplementedError()"},
        "w9_affine": {"source": "def affine(X, W, b):\n    raise NotImplementedError()"},
        "w9_why_bias": {"source": "YOUR ANSWER HERE"},
    }
    return spec, release


def _ids(nb):
    return [(c.metadata.get("nbgrader") or {}).get("grade_id") for c in nb.cells]


def test_merge_restores_edited_deleted_and_reordered_cells():
    spec, release = _spec_and_release()
    sub = toy.source_notebook()
    sub.cells[3].source = "pass  # the student emptied the test cell"
    sub.cells[3].metadata["nbgrader"]["points"] = 100
    del sub.cells[5]  # deleted the affine tests
    sub.cells.insert(2, sub.cells.pop(3))  # moved the sigmoid tests above the solution
    merged = merge(spec, sub, release)
    by_id = {g: c for g, c in zip(_ids(merged.nb), merged.nb.cells)}
    assert by_id["w9_sigmoid_tests"].source == toy.SIGMOID_TESTS
    assert by_id["w9_sigmoid_tests"].metadata["nbgrader"]["points"] == 2
    assert by_id["w9_affine_tests"].source == toy.AFFINE_TESTS
    ids = [g for g in _ids(merged.nb) if g]
    assert ids.index("w9_sigmoid") < ids.index("w9_sigmoid_tests") < ids.index("w9_affine_tests")
    assert any("deleted" in n for n in merged.notes)


def test_merge_runs_student_cells_after_their_anchor_and_strips_their_metadata():
    spec, release = _spec_and_release()
    sub = toy.source_notebook()
    extra = nbformat.v4.new_code_cell("helper = 1")
    extra.metadata["nbgrader"] = {"grade": True, "grade_id": "w9_fake_tests", "points": 50}
    sub.cells.insert(3, extra)  # right after the sigmoid solution
    merged = merge(spec, sub, release)
    sources = [c.source for c in merged.nb.cells]
    i = sources.index("helper = 1")
    assert _ids(merged.nb)[i - 1] == "w9_sigmoid" and "nbgrader" not in merged.nb.cells[i].metadata
    assert any("unknown cell id 'w9_fake_tests'" in n for n in merged.notes)


def test_merge_uses_the_stub_for_a_missing_solution_and_detects_unanswered_cells():
    spec, release = _spec_and_release()
    sub = toy.source_notebook()
    del sub.cells[2]  # the sigmoid solution cell is gone
    sub.cells[-1].source = "YOUR ANSWER HERE"
    merged = merge(spec, sub, release)
    by_id = dict(zip(_ids(merged.nb), merged.nb.cells))
    assert "NotImplementedError" in by_id["w9_sigmoid"].source
    assert merged.answered == {"w9_sigmoid": False, "w9_affine": True, "w9_why_bias": False}


def test_duplicate_grade_ids_grade_only_the_first():
    spec, release = _spec_and_release()
    sub = toy.source_notebook()
    dup = nbformat.from_dict(sub.cells[2])
    dup.source = "def sigmoid(z):\n    return 0"
    sub.cells.append(dup)
    merged = merge(spec, sub, release)
    assert any("more than once" in n for n in merged.notes)
    assert "nbgrader" not in merged.nb.cells[-1].metadata  # runs, but as ordinary code


def test_prepare_for_run_rewrites_only_trusted_test_cells():
    spec, release = _spec_and_release()
    merged = merge(spec, toy.source_notebook(), release)
    run_nb = prepare_for_run(merged.nb, spec, "probe")
    text = "\n".join(c.source for c in run_nb.cells)
    assert "check_close(" not in text.split("import numpy as np")[1].split("def sigmoid")[1]
    assert text.count("__course_probe__(") == 4
