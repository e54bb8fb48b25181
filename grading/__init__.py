"""Instructor tooling for the course: the `course` command and hardened grading.

cli.py        the `course` command (release, collect, grade, feedback, export, report, demo, lab)
course.py     where things live in the course directory
notebook.py   trusted notebook specs, test-cell rewrite, merging a submission
sandbox.py    OS isolation (bubblewrap, cgroups, rlimits)
kernels.py    fresh kernels from a fork server inside the sandbox
execute.py    running cells with time/output limits
verdict.py    trusted verdicts from probe reports
grade.py      grading one submission
worker.py     what runs in each Dask worker: a warm sandbox per process
pipeline.py   grading many in parallel (Dask), resumable, into the gradebook
"""

import sys

# jsonschema (imported by nbformat) compiles a grammar for the "iri" string format
# when it is imported: about a second in every grading process. Notebook schemas
# never use that format, so jsonschema is told the optional module is absent.
sys.modules.setdefault("rfc3987_syntax", None)
