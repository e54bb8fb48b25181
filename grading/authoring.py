"""Tools for notebook authors: ``python -m grading.authoring lint|outputs NOTEBOOK...``.

lint     check a source notebook against the conventions the grader relies on
outputs  execute a source notebook and store outputs only for cells marked
         ``# NBVAL_CHECK_OUTPUT`` (what nbval compares); other outputs are dropped
         so that the committed notebook stays small and free of volatile output.
"""

import argparse
import sys
from pathlib import Path

import nbformat

from .notebook import NotebookError, lint, read_spec

NBVAL_MARK = "# NBVAL_CHECK_OUTPUT"


def lint_paths(paths):
    failed = False
    for path in paths:
        try:
            problems = lint(read_spec(path))
        except NotebookError as e:
            problems = [str(e)]
        for p in problems:
            print(f"{path}: {p}")
        failed |= bool(problems)
        if not problems:
            print(f"{path}: ok")
    return 1 if failed else 0


def refresh_outputs(path, timeout=120):
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, 4)
    NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)  # nbclient's wall-clock timings: churn in every diff
        if NBVAL_MARK not in cell.source:
            cell.outputs = []
            cell.execution_count = None
        else:
            for out in cell.outputs:
                out.pop("execution_count", None) if out.get("output_type") != "execute_result" else None
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    print(f"{path}: outputs refreshed")


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python -m grading.authoring", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("command", choices=["lint", "outputs"])
    ap.add_argument("notebooks", nargs="+")
    args = ap.parse_args(argv)
    if args.command == "lint":
        return lint_paths(args.notebooks)
    for p in args.notebooks:
        refresh_outputs(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
