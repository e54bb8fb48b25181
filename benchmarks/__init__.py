"""Speed benchmarks, reported as ratios against baselines measured in the same run.

make bench                        # everything
python -m benchmarks nn           # course_lib training step
python -m benchmarks grading      # course grade vs nbgrader autograde
"""
