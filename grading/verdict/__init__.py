"""Stage 3, verdict: trusted notebooks in, trusted scores out.

notebook.py   trusted notebook specs, test-cell rewrite, merging a submission into the skeleton
grade.py      grading one submission: the unit of work a worker runs
judge.py      trusted verdicts from the kernel's probe reports and the reference run
ownwork.py    own-work rules: calls to course_lib that would do the exercise for the student
inert.py      graded notebooks made inert: no student HTML, scripts or links reach a browser
"""
