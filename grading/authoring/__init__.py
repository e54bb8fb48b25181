"""Tools for writing a week: lint, stored outputs, release, a self-check of the grader.

lint.py        `python -m grading.authoring lint|outputs NOTEBOOK...`: the one style, nbval outputs
release.py     `course release`: student notebooks from source/, checked for leaks
selfcheck.py   `python -m grading.authoring.selfcheck NOTEBOOK`: the solution graded against itself
"""
