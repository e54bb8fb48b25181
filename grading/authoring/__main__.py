"""``python -m grading.authoring lint|outputs NOTEBOOK...`` (grading/authoring/lint.py)."""

import sys

from .lint import main

sys.exit(main())
