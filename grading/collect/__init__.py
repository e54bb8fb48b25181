"""Stage 1, collect: submissions into submitted/, checked and read before any grading.

submissions.py   `course collect`: a folder or zip (Canvas too) into submitted/<student>/<week>/, history kept
validate.py      reading a submission folder without trusting it: each problem a per-submission reason
cache.py         byte-identical submissions graded once per session
"""
