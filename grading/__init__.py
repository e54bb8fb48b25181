"""Instructor tooling for the course: the `course` command and hardened grading.

The pipeline's stages are sub-packages, each listing its modules in its docstring:

cli.py         the `course` command (release, collect, grade, feedback, export, report, demo, lab, ...)
course.py      where things live in the course directory
text.py        text for the terminal: control and bidi characters escaped
pipeline.py    grading many in parallel (Dask), resumable, into the gradebook
doctor.py      `course doctor`: can this machine (or a cluster's workers) grade?
demo.py        `course demo`: a whole term on typical mistakes (mistakes/<week>.json)
collect/       submissions into submitted/: intake, validation, the session's result cache
sandbox/       OS isolation, the kernel fork server, running cells, the Dask worker side
verdict/       trusted notebook specs, grading one submission, verdicts, own-work rules, inert output
gradebook/     results into nbgrader's gradebook and grades out of it (export)
outputs/       feedback pages, the class report, similarity, their templates
authoring/     lint and stored outputs, release, the grader's self-check
edition/       the student edition (publish) and JupyterLab in student mode
mistakes/      typical mistakes per week, as data (instructor only: never in the sandbox or edition)

The package's __init__ files hold no imports of grading code: the sandbox binds only this
file, sandbox/__init__.py, sandbox/zygote.py and sandbox/isolation.py.
"""

import sys

# jsonschema (imported by nbformat) compiles a grammar for the "iri" string format
# when it is imported: about a second in every grading process. Notebook schemas
# never use that format, so jsonschema is told the optional module is absent.
sys.modules.setdefault("rfc3987_syntax", None)
