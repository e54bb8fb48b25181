"""Build the student version of a week with nbgrader, and prove nothing secret leaked."""

import re

import nbformat

from ..course import CourseError
from ..verdict.notebook import HIDDEN_BEGIN, HIDDEN_END, cell_role

_REGIONS = [
    ("### BEGIN SOLUTION", "### END SOLUTION"),
    (HIDDEN_BEGIN, HIDDEN_END),
    ("### BEGIN MARK SCHEME", "### END MARK SCHEME"),
]


def release(course, week):
    """nbgrader generate_assignment for ``week`` into release/, then check it for leaks.

    The release is exactly what plain ``nbgrader generate_assignment`` (formgrader's
    Generate button) writes: nothing is changed afterwards. What the student version
    needs beyond nbgrader's own steps lives in source/ (the ``raises-exception`` tags
    that let JupyterLab's Run All go past an unfinished exercise); nbgrader clears the
    outputs. A release that would leak, or that carries stored outputs or widget state,
    is refused.
    """
    course.check_week(week)
    result = course.nbgrader_api().generate_assignment(week, force=True, create=True)
    if not result.get("success"):
        log = (result.get("log") or "") + (result.get("error") or "")
        raise CourseError(f"nbgrader generate_assignment {week} failed:\n{log[-2000:]}")
    for name in course.notebooks(week):
        path = course.release(week) / f"{name}.ipynb"
        problems = leaks(course.source(week) / f"{name}.ipynb", path)
        if problems:
            raise CourseError(f"{path} would leak instructor content:\n  " + "\n  ".join(problems))
    return course.release(week)


def split_lines(source_nb):
    """(secret, public): the stripped lines of a source notebook that only the instructor's
    version holds (solutions, hidden tests, model answers and rubrics), and all the others."""
    secrets, public = set(), set()
    for cell in source_nb.cells:
        lines = cell.source.splitlines()
        if cell_role(cell) == "manual":  # the whole model answer and rubric
            secrets |= {ln.strip() for ln in lines}
            continue
        inside = False
        for line in lines:
            s = line.strip()
            if any(s.startswith(b) for b, _ in _REGIONS):
                inside = True
            elif any(s.startswith(e) for _, e in _REGIONS):
                inside = False
            else:
                (secrets if inside else public).add(s)
    return secrets, public


def secret_lines(source_nb):
    """Lines of the source notebook that must never appear in the student version."""
    secrets, public = split_lines(source_nb)
    # Lines that are also public (a setup line repeated in a hidden test) are not secret;
    # short or generic lines ("return W", "```") also occur in honest text.
    return {s for s in secrets - public if len(s) >= 24 and re.search(r"[A-Za-z]", s)}


def leaks(source_path, release_path):
    """Problems found in a release notebook: markers, solution lines, hidden tests, rubrics."""
    src = nbformat.read(source_path, 4)
    rel = nbformat.read(release_path, 4)
    problems = []
    rel_text = "\n".join(c.source for c in rel.cells)
    for begin, end in _REGIONS:
        for marker in (begin, end):
            if marker in rel_text:
                problems.append(f"marker {marker!r} is present")
    rel_lines = {ln.strip() for ln in rel_text.splitlines()}
    for secret in sorted(secret_lines(src)):
        if secret in rel_lines:
            problems.append(f"instructor line present: {secret[:80]!r}")
    for cell in rel.cells:
        if cell.cell_type == "code" and cell.get("outputs"):
            problems.append("a code cell has stored outputs")
            break
    if "widgets" in rel.metadata:  # widget state of the solution's run: clear it in source/
        problems.append("the notebook metadata holds widget state (run `python -m grading.authoring outputs`)")
    return problems
