"""Stage 4, gradebook: results into nbgrader's gradebook, scores out of it.

store.py    writing results and reading grades (SQLite or PostgreSQL), late penalties
export.py   `course export`: grades for Canvas, Moodle or nbgrader's CSV, formula-safe
"""
