"""Tools for notebook authors: ``python -m grading.authoring lint|outputs NOTEBOOK...``.

lint     check a source notebook against the conventions the grader relies on and the
         course's one style (docs/authoring.md): exercise and written-answer headers,
         their numbering and points, the model answers, the opening sections, and no
         function name defined in two weeks with different signatures
outputs  execute a source notebook and store outputs only for cells marked
         ``# NBVAL_CHECK_OUTPUT`` (what nbval compares); other outputs are dropped
         so that the committed notebook stays small and free of volatile output.
"""

import argparse
import ast
import itertools
import re
import sys
from pathlib import Path

import nbformat

from ..course import Course, CourseError
from ..verdict.notebook import NotebookError, cell_role, lint, read_spec

NBVAL_MARK = "# NBVAL_CHECK_OUTPUT"

# ----- the course's one style (docs/authoring.md) ---------------------------------
EXERCISE = re.compile(r"^### ✏️ Exercise (\d+): (\S.*) \((\d+(?: \+ \d+)*) (points?)\)$")
WRITTEN = re.compile(r"^### ✍️ Written answer (\d+): (\S.*) \((\d+) (points?)\)$")


def _attempt(emoji, words):
    """Headers that mean to be an exercise (or written-answer) header, however they are spelled: they start
    with the emoji, or with the words (after a section number, if any) and then a number, a colon or nothing.
    A header that only mentions the words ("Why this exercise matters") is prose."""
    number = r"(?:\d+(?:\.\d+)*\.?\s+)?"
    return re.compile(rf"^#+\s*(?:{emoji}|{number}{words}(?:\s*\d|\s*[:.(—–-]|\s*$))", re.IGNORECASE)


EXERCISE_LIKE = _attempt("✏", "exercise")
WRITTEN_LIKE = _attempt("✍", "written answer")
MODEL_ANSWER = "**Model answer.**"
OPENING = ("### Learning goals", "### Time budget", "### How this notebook works")
# What "How this notebook works" says in every week (style.md): (how it is said, what to say). Whole
# words, so that a "hidden layer", "invalidate" or "network/" does not stand in for a missing point.
HOW_IT_WORKS = [
    (r"\btop to bottom\b", "run the cells from top to bottom"),
    (r"✏\ufe0f?\W*exercises?\b", "✏️ marks an exercise"),
    (r"\bYOUR CODE HERE\b", "where your code goes (YOUR CODE HERE)"),
    (r"\bvalidate\b", "click Validate before handing in"),
    (r"\bhidden tests?\b", "hidden tests grade more than the visible checks"),
    (r"✍\ufe0f?\W*written answers?\b", "✍️ marks a written answer graded by hand"),
    (r"(?<![\w/.-])work/", "your work is in work/ and is never overwritten"),
]
EXAMPLE_EXERCISE = "### ✏️ Exercise N: short title (P points)"
EXAMPLE_WRITTEN = "### ✍️ Written answer N: short title (P points)"


def _header_lines(lines):
    """(line index, header) of the markdown headers among ``lines``; a ``#`` line in a fenced code block is code."""
    fenced = False
    for k, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif line.startswith("#") and not fenced:
            yield k, line.strip()


def _headers(nb):
    """(cell index, header line) of every markdown header, in order."""
    return [
        (i, line)
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "markdown"
        for _k, line in _header_lines(cell.source.splitlines())
    ]


def _points(text):
    return sum(int(t) for t in text.split(" + "))


def _fmt(x):
    return f"{x:g}"


def _nbgrader_points(cell):
    return float((cell.metadata.get("nbgrader") or {}).get("points", 0) or 0)


def style_problems(nb):
    """One line per violation of the course's style in a source notebook, each naming its cell."""
    headers = _headers(nb)
    problems = _opening_problems(nb, headers)
    problems += _exercise_problems(nb, headers)
    problems += _written_answer_problems(nb, headers)
    problems += _marker_problems(nb)
    return problems


# nbgrader takes these words anywhere in any cell, prose included, for region markers: a markdown
# cell that mentions one breaks `generate_assignment` ("no end solution statement found").
NBGRADER_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def _marker_problems(nb):
    return [
        f"cell {i}: markdown that says '{marker}' is read by nbgrader as a region marker; "
        "say 'YOUR CODE HERE' (what students see) instead"
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "markdown"
        for marker in NBGRADER_MARKERS
        if marker in cell.source
    ]


def _opening_problems(nb, headers):
    """Learning goals, then Time budget ("About N hours: ..."), then How this notebook works (with
    the points every week makes), all before the first exercise."""
    first = {}
    for i, line in headers:
        if line in OPENING:
            first.setdefault(line, i)
    goals = OPENING[0]
    if goals not in first:
        return [f"cell 0: add a '{goals}' section near the top"]
    first_exercise = next((i for i, line in headers if EXERCISE_LIKE.match(line)), len(nb.cells))
    problems = []
    previous = goals
    for name in OPENING[1:]:
        if name not in first:
            problems.append(f"cell {first[goals]}: add a '{name}' section after '{previous}'")
            continue
        if first[name] < first[previous] or first[name] > first_exercise:
            problems.append(f"cell {first[name]}: move '{name}' after '{previous}' and before the first exercise")
        previous = name
    if OPENING[1] in first:
        body = _section_text(nb, first[OPENING[1]], OPENING[1])
        if not re.match(r"About \S+ hours?\b", body):
            problems.append(f"cell {first[OPENING[1]]}: start '{OPENING[1]}' with \"About N hours: ...\"")
    if OPENING[2] in first:
        body = _section_text(nb, first[OPENING[2]], OPENING[2])
        missing = [say for said, say in HOW_IT_WORKS if not re.search(said, body, re.IGNORECASE)]
        if missing:
            problems.append(
                f"cell {first[OPENING[2]]}: '{OPENING[2]}' should say (as week 1 does): {'; '.join(missing)}"
            )
    return problems


def _section_text(nb, i, header):
    """The text of the markdown section ``header`` starts in cell ``i``: up to the next header, through
    the markdown cells that follow (a section may be split over cells) but not past a code cell."""
    lines = nb.cells[i].source.splitlines()
    lines = lines[next(k for k, line in _header_lines(lines) if line == header) + 1 :]
    for cell in itertools.takewhile(lambda c: c.cell_type == "markdown", nb.cells[i + 1 :]):
        lines += cell.source.splitlines()
    end = next((k for k, _line in _header_lines(lines)), len(lines))
    return "\n".join(lines[:end]).strip()


def _numbered(headers, like, pattern, example, kind, problems):
    """(cell index, match) of each well-formed ``kind`` header, in notebook order.

    Reports (into ``problems``) a header that ``like`` finds but ``pattern`` rejects, a number
    out of notebook order, and "point" against "points"."""
    found = []
    for expected_n, (i, line) in enumerate([(i, line) for i, line in headers if like.match(line)], start=1):
        m = pattern.match(line)
        if not m:
            problems.append(f"cell {i}: {kind.replace(' ', '-')} header {line!r} should read {example!r}")
            continue
        if int(m[1]) != expected_n:
            problems.append(f"cell {i}: this is {kind} {expected_n} in notebook order, not {m[1]}: renumber it")
        word = "point" if _points(m[3]) == 1 else "points"
        if m[4] != word:
            problems.append(f"cell {i}: write '({m[3]} {word})'")
        found.append((i, m))
    return found


def _exercise_problems(nb, headers):
    """Header format and numbering, and the header's points against its test cells'."""
    problems = []
    bounds = [i for i, line in headers if EXERCISE_LIKE.match(line) or WRITTEN_LIKE.match(line)]
    for i, m in _numbered(headers, EXERCISE_LIKE, EXERCISE, EXAMPLE_EXERCISE, "exercise", problems):
        n, points = int(m[1]), _points(m[3])
        end = next((b for b in bounds if b > i), len(nb.cells))
        block = [(k, nb.cells[k]) for k in range(i + 1, end)]
        tests = [(k, c) for k, c in block if c.cell_type == "code" and cell_role(c) == "tests"]
        if not any(c.cell_type == "code" and cell_role(c) == "solution" for _, c in block):
            problems.append(f"cell {i}: exercise {n} has no solution cell before the next exercise")
        if not tests:
            problems.append(f"cell {i}: exercise {n} has no test cell before the next exercise")
            continue
        total = sum(_nbgrader_points(c) for _, c in tests)
        if total != points:
            cells = ", ".join(f"cell {k}: {_fmt(_nbgrader_points(c))}" for k, c in tests)
            problems.append(
                f"cell {i}: exercise {n} says {m[3]} points but its test cells give {_fmt(total)} ({cells}): "
                "make them agree"
            )
    problems += _orphan_tests(nb, headers)
    return problems


def _orphan_tests(nb, headers):
    """Test cells that no exercise header announces (before the first one, or after a written answer)."""
    owner = {}
    current = None
    marks = {i: line for i, line in headers if EXERCISE_LIKE.match(line) or WRITTEN_LIKE.match(line)}
    for k, cell in enumerate(nb.cells):
        if k in marks:  # the last such header of a cell counts
            current = "exercise" if EXERCISE_LIKE.match(marks[k]) else "written"
        if cell.cell_type == "code" and cell_role(cell) == "tests":
            owner[k] = current
    return [
        f"cell {k}: test cell {(nb.cells[k].metadata.get('nbgrader') or {}).get('grade_id')} is not under an "
        f"exercise header: add {EXAMPLE_EXERCISE!r} above its solution cell"
        for k, who in owner.items()
        if who != "exercise"
    ]


def _written_answer_problems(nb, headers):
    """Header format and numbering; the next cell is the manually graded answer, with matching points,
    starting with **Model answer.**; and no manually graded cell without such a header."""
    problems = []
    announced = {i + 1 for i, line in headers if WRITTEN_LIKE.match(line)}
    for i, m in _numbered(headers, WRITTEN_LIKE, WRITTEN, EXAMPLE_WRITTEN, "written answer", problems):
        n, points = int(m[1]), int(m[3])
        answer = nb.cells[i + 1] if i + 1 < len(nb.cells) else None
        if answer is None or answer.cell_type != "markdown" or cell_role(answer) != "manual":
            problems.append(f"cell {i}: put the manually graded answer cell right after written answer {n}")
            continue
        if _nbgrader_points(answer) != points:
            problems.append(
                f"cell {i + 1}: the answer cell gives {_fmt(_nbgrader_points(answer))} points but its header "
                f"says {points}: make them agree"
            )
        if not answer.source.lstrip().startswith(MODEL_ANSWER):
            problems.append(f"cell {i + 1}: start the model answer with '{MODEL_ANSWER}'")
    for k, cell in enumerate(nb.cells):
        if cell_role(cell) == "manual" and k not in announced:
            problems.append(
                f"cell {k}: a manually graded cell needs a {EXAMPLE_WRITTEN!r} header in the cell before it"
            )
    return problems


# ----- one signature per function name across the weeks ----------------------------
def defined_functions(nb):
    """{name: (signature, cell index)} of the top-level functions of the solution and given code cells."""
    out = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or cell_role(cell) == "tests":
            continue
        src = "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in cell.source.splitlines())
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue  # the grader's lint reports it
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.setdefault(node.name, (f"{node.name}({ast.unparse(node.args)})", i))
    return out


def cross_week_problems(path, others):
    """A function of ``path``'s notebook defined in another week's notebook with another signature."""
    mine = defined_functions(nbformat.read(str(path), 4))
    problems = []
    for other in others:
        if Path(other).resolve() == Path(path).resolve():
            continue
        theirs = defined_functions(nbformat.read(str(other), 4))
        for name in sorted(mine.keys() & theirs.keys()):
            (sig, i), (other_sig, k) = mine[name], theirs[name]
            if sig != other_sig:
                problems.append(
                    f"cell {i}: {sig} is also defined in {Path(other).parent.name} (cell {k}) as {other_sig}: "
                    "give one of them a week-specific name"
                )
    return problems


def _sibling_weeks(path):
    """Every week's source notebooks in the course ``path`` belongs to, as the course lays them out.

    CourseError when ``path`` is not a notebook of a week in a course's source/.
    """
    path = Path(path).resolve()
    week, source = path.parent, path.parent.parent
    try:
        course = Course.load(source.parent)
    except CourseError:  # no nbgrader_config.py: not a course directory
        course = None
    if course is None or source != course.root / "source" or week.name not in course.weeks():
        raise CourseError(
            f"cannot compare with the other weeks: {path.name} is not in source/<week>/ of a course directory "
            "(week folders named like week1_linear_regression, nbgrader_config.py beside source/)"
        )
    return [course.source(w) / f"{name}.ipynb" for w in course.weeks() for name in course.notebooks(w)]


def lint_problems(path):
    """Every lint problem of a source notebook: the grader's conventions, the style, the other weeks."""
    try:
        problems = lint(read_spec(path))
        siblings = _sibling_weeks(path)
    except (NotebookError, CourseError) as e:
        return [str(e)]
    nb = nbformat.read(str(path), 4)
    return problems + style_problems(nb) + cross_week_problems(path, siblings)


def lint_paths(paths):
    failed = False
    for path in paths:
        problems = lint_problems(path)
        for p in problems:
            print(f"{path}: {p}")
        failed |= bool(problems)
        if not problems:
            print(f"{path}: ok")
    return 1 if failed else 0


def refresh_outputs(path, timeout=120):
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, 4)
    NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)  # nbclient's wall-clock timings: churn in every diff
        if NBVAL_MARK not in cell.source:
            cell.outputs = []
            cell.execution_count = None
        else:
            for out in cell.outputs:
                out.pop("execution_count", None) if out.get("output_type") != "execute_result" else None
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    print(f"{path}: outputs refreshed")


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python -m grading.authoring", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("command", choices=["lint", "outputs"])
    ap.add_argument("notebooks", nargs="+")
    args = ap.parse_args(argv)
    if args.command == "lint":
        return lint_paths(args.notebooks)
    for p in args.notebooks:
        refresh_outputs(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
