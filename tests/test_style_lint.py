"""The style lint (grading/authoring/lint.py, docs/authoring.md): each rule fires on a small bad notebook,
a notebook that follows the style passes, and every week's source notebook is clean."""

from pathlib import Path

import nbformat
import pytest

from grading.authoring.lint import lint_problems, main, style_problems

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(REPO.glob("source/*/*.ipynb"))

OPENING = """# Week 9 — A toy

### Learning goals
1. write `f`.

### Time budget
About 1 hour: everything.

### How this notebook works
- Run the cells from top to bottom.
- ✏️ Exercise cells: replace `# YOUR CODE HERE` with your code.
- Click **Validate** before you hand in. Hidden tests grade more than the visible checks.
- ✍️ Written answers are graded by a person.
- Your work is in `work/`, never overwritten.
"""


def _md(source, **nbgrader):
    cell = nbformat.v4.new_markdown_cell(source)
    if nbgrader:
        cell.metadata["nbgrader"] = {"schema_version": 3, **nbgrader}
    return cell


def _code(source, **nbgrader):
    cell = nbformat.v4.new_code_cell(source)
    if nbgrader:
        cell.metadata["nbgrader"] = {"schema_version": 3, **nbgrader}
    return cell


def _solution(gid, name="f", args="x"):
    src = f"def {name}({args}):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n"
    return _code(src, grade_id=gid, solution=True, grade=False, locked=False)


def _tests(gid, points, call="f(1.0)"):
    return _code(
        f"check_close('{gid} at 1', {call}, 1.0)", grade_id=gid, solution=False, grade=True, locked=True, points=points
    )


def good_notebook():
    """Cells: 0 opening, 1 exercise header, 2 solution, 3-4 tests (1 + 2), 5 written header, 6 answer."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        _md(OPENING),
        _md("## 1. A section\n\n### ✏️ Exercise 1: `f` (1 + 2 points)\nWrite f."),
        _solution("w9_f"),
        _tests("w9_f_tests", 1),
        _tests("w9_f_more_tests", 2),
        _md(
            "### ✍️ Written answer 1: why f (2 points)\n\nWhy?",
            grade_id="w9_why",
            solution=False,
            grade=False,
            locked=True,
        ),
        _md("**Model answer.** Because.", grade_id="w9_why_answer", solution=True, grade=True, locked=False, points=2),
    ]
    return nb


def test_a_notebook_in_the_style_passes():
    assert style_problems(good_notebook()) == []


def _replace(nb, k, old, new):
    assert old in nb.cells[k].source
    nb.cells[k].source = nb.cells[k].source.replace(old, new)


# (cell, text in it, replacement, the exact line the lint must print)
RULES = [
    (
        1,
        "### ✏️ Exercise 1:",
        "### Exercise 1:",
        "cell 1: exercise header '### Exercise 1: `f` (1 + 2 points)' should read "
        "'### ✏️ Exercise N: short title (P points)'",
    ),
    (
        1,
        "Exercise 1: `f`",
        "Exercise 1 — `f`",
        "cell 1: exercise header '### ✏️ Exercise 1 — `f` (1 + 2 points)' should read "
        "'### ✏️ Exercise N: short title (P points)'",
    ),
    (1, "Exercise 1:", "Exercise 2:", "cell 1: this is exercise 1 in notebook order, not 2: renumber it"),
    (
        1,
        "(1 + 2 points)",
        "(1 + 1 points)",
        "cell 1: exercise 1 says 1 + 1 points but its test cells give 3 (cell 3: 1, cell 4: 2): make them agree",
    ),
    (1, "(1 + 2 points)", "(3 point)", "cell 1: write '(3 points)'"),
    (
        5,
        "### ✍️ Written answer 1: why f (2 points)",
        "### ✍️ Written answer (2 points)",
        "cell 5: written-answer header '### ✍️ Written answer (2 points)' should read "
        "'### ✍️ Written answer N: short title (P points)'",
    ),
    (
        5,
        "Written answer 1:",
        "Written answer 3:",
        "cell 5: this is written answer 1 in notebook order, not 3: renumber it",
    ),
    (5, "(2 points)", "(3 points)", "cell 6: the answer cell gives 2 points but its header says 3: make them agree"),
    (6, "**Model answer.** ", "", "cell 6: start the model answer with '**Model answer.**'"),
    (
        0,
        "### Time budget\nAbout 1 hour: everything.\n",
        "",
        "cell 0: add a '### Time budget' section after '### Learning goals'",
    ),
    (0, "About 1 hour", "One hour", "cell 0: start '### Time budget' with \"About N hours: ...\""),
    (
        0,
        "### How this notebook works",
        "### How to work",
        "cell 0: add a '### How this notebook works' section after '### Time budget'",
    ),
    (
        0,
        "Click **Validate** before you hand in. ",
        "",
        "cell 0: '### How this notebook works' should say (as week 1 does): click Validate before handing in",
    ),
    (
        0,
        "`work/`",
        "your folder",
        "cell 0: '### How this notebook works' should say (as week 1 does): "
        "your work is in work/ and is never overwritten",
    ),
    (
        0,
        "Click **Validate**",
        "Write between BEGIN SOLUTION and END SOLUTION. Click **Validate**",
        "cell 0: markdown that says 'BEGIN SOLUTION' is read by nbgrader as a region marker; "
        "say 'YOUR CODE HERE' (what students see) instead",
    ),
]


@pytest.mark.parametrize("cell, old, new, message", RULES, ids=[r[3][:60] for r in RULES])
def test_each_rule_fires_with_its_cell_and_fix(cell, old, new, message):
    nb = good_notebook()
    _replace(nb, cell, old, new)
    assert message in style_problems(nb)


def test_sections_out_of_order_or_after_the_first_exercise():
    nb = good_notebook()
    _replace(nb, 0, "### Time budget\nAbout 1 hour: everything.\n", "")
    _replace(nb, 1, "## 1. A section", "### Time budget\nAbout 1 hour: everything.\n\n## 1. A section")
    nb.cells.insert(1, _md("### ✏️ Exercise 0: nothing yet"))
    problems = style_problems(nb)
    assert "cell 2: move '### Time budget' after '### Learning goals' and before the first exercise" in problems


def test_a_test_cell_outside_an_exercise_and_a_manual_cell_without_header():
    nb = good_notebook()
    nb.cells.insert(1, _tests("w9_stray_tests", 1))
    nb.cells.append(_md("**Model answer.** Extra.", grade_id="w9_extra", solution=True, grade=True, points=1))
    problems = style_problems(nb)
    assert (
        "cell 1: test cell w9_stray_tests is not under an exercise header: add "
        "'### ✏️ Exercise N: short title (P points)' above its solution cell"
    ) in problems
    assert (
        "cell 8: a manually graded cell needs a '### ✍️ Written answer N: short title (P points)' "
        "header in the cell before it"
    ) in problems


def test_an_exercise_without_tests_is_reported():
    nb = good_notebook()
    del nb.cells[3:5]
    assert "cell 1: exercise 1 has no test cell before the next exercise" in style_problems(nb)


def _write_week(root, week, nb):
    """A notebook in ``root``'s source/<week>/, ``root`` made a course directory."""
    (root / "nbgrader_config.py").touch()
    path = root / "source" / week / f"{week}.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, str(path))
    return path


def _other_signature():
    """good_notebook() with f(x, y=0) instead of f(x)."""
    nb = good_notebook()
    nb.cells[2] = _solution("w9_f", args="x, y=0")
    nb.cells[3] = _tests("w9_f_tests", 1, call="f(1.0, 0)")
    nb.cells[4] = _tests("w9_f_more_tests", 2, call="f(1.0, 1)")
    return nb


def test_one_function_name_with_two_signatures_across_weeks(tmp_path):
    pa = _write_week(tmp_path, "week8_a", good_notebook())
    pb = _write_week(tmp_path, "week9_b", _other_signature())
    assert lint_problems(pa) == [
        "cell 2: f(x) is also defined in week9_b (cell 2) as f(x, y=0): give one of them a week-specific name"
    ]
    assert lint_problems(pb) == [
        "cell 2: f(x, y=0) is also defined in week8_a (cell 2) as f(x): give one of them a week-specific name"
    ]


def test_the_same_signature_in_two_weeks_is_fine(tmp_path):
    pa = _write_week(tmp_path, "week8_a", good_notebook())
    _write_week(tmp_path, "week9_b", good_notebook())
    assert lint_problems(pa) == []


def test_only_the_courses_weeks_are_compared(tmp_path):
    pa = _write_week(tmp_path, "week8_a", good_notebook())
    _write_week(tmp_path, "drafts", _other_signature())  # in source/, but not a week of the course
    assert lint_problems(pa) == []


def test_a_notebook_outside_a_courses_weeks_says_so_in_one_line(tmp_path):
    loose = tmp_path / "loose" / "toy.ipynb"
    loose.parent.mkdir()
    nbformat.write(good_notebook(), str(loose))
    week = tmp_path / "no_config" / "source" / "week8_a" / "week8_a.ipynb"  # no nbgrader_config.py
    week.parent.mkdir(parents=True)
    nbformat.write(good_notebook(), str(week))
    for path in (loose, week):
        assert lint_problems(path) == [
            f"cannot compare with the other weeks: {path.name} is not in source/<week>/ of a course directory "
            "(week folders named like week1_linear_regression, nbgrader_config.py beside source/)"
        ]


def test_the_cli_prints_one_line_per_problem_and_fails(tmp_path, capsys):
    nb = good_notebook()
    _replace(nb, 6, "**Model answer.** ", "")
    path = _write_week(tmp_path, "week8_a", nb)
    assert main(["lint", str(path)]) == 1
    assert capsys.readouterr().out == f"{path}: cell 6: start the model answer with '**Model answer.**'\n"


# ----- what counts as an exercise header, and the opening section ------------------------
@pytest.mark.parametrize(
    "header",
    ["## Exercise 1: `f` (1 + 2 points)", "### ✏️ Exercise: `f` (1 + 2 points)", "### 1.2 Exercise 1 `f` (3 points)"],
)
def test_a_near_miss_exercise_header_is_still_flagged(header):
    nb = good_notebook()
    _replace(nb, 1, "### ✏️ Exercise 1: `f` (1 + 2 points)", header)
    assert f"cell 1: exercise header {header!r} should read '### ✏️ Exercise N: short title (P points)'" in (
        style_problems(nb)
    )


@pytest.mark.parametrize("header", ["### Why this exercise matters", "## Exercises in week 9", "### After exercise 1"])
def test_a_prose_header_that_mentions_an_exercise_is_not_an_exercise_header(header):
    nb = good_notebook()
    nb.cells.insert(5, _md(f"{header}\n\nSome prose."))
    assert style_problems(nb) == []


def test_a_prose_header_that_mentions_a_written_answer_is_not_one():
    nb = good_notebook()
    nb.cells.insert(2, _md("### How the written answer is graded\n\nBy a person."))
    assert style_problems(nb) == []


def test_a_comment_in_a_fenced_code_block_is_not_a_header():
    nb = good_notebook()
    _replace(nb, 1, "Write f.", "Write f.\n\n```python\n# exercise 1: a comment, not a header\n```")
    assert style_problems(nb) == []


def _how_it_works(nb):
    return [p for p in style_problems(nb) if "'### How this notebook works' should say" in p]


def test_a_point_of_how_this_notebook_works_is_matched_as_words_not_as_a_substring():
    nb = good_notebook()
    _replace(nb, 0, "Hidden tests grade more than the visible checks.", "The hidden layer has two units.")
    _replace(nb, 0, "`work/`", "`homework/`")
    assert _how_it_works(nb) == [
        "cell 0: '### How this notebook works' should say (as week 1 does): "
        "hidden tests grade more than the visible checks; your work is in work/ and is never overwritten"
    ]


def test_how_this_notebook_works_is_read_from_its_own_section_only():
    nb = good_notebook()
    # the section split over two cells is still one section
    _replace(nb, 0, "### How this notebook works\n", "### How this notebook works\n\nRead this:")
    head, bullets = nb.cells[0].source.split("Read this:")
    nb.cells[0].source = head + "Read this:"
    nb.cells.insert(1, _md(bullets))
    assert _how_it_works(nb) == []
    # a point said only under the next header is missing from the section
    _replace(nb, 1, "- Click **Validate** before you hand in. ", "")
    _replace(nb, 1, "never overwritten.", "never overwritten.\n\n### Notation\nClick **Validate** before you hand in.")
    assert _how_it_works(nb) == [
        "cell 0: '### How this notebook works' should say (as week 1 does): click Validate before handing in"
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.parent.name for p in NOTEBOOKS])
def test_every_week_follows_the_style(path):
    problems = lint_problems(path)
    assert not problems, "\n".join(problems)
