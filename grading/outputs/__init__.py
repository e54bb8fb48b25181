"""Stage 5, outputs: what students and the instructor read.

feedback.py     per-student HTML feedback pages
report.py       the class report: distributions, hardest exercises, common failures, grading time
similarity.py   `course similarity`: submissions that share too much code, with each other or the solution
templates/      the jinja2 pages (autoescaped)
"""
