"""Grade a source notebook against itself with the trusted grader (an authoring aid).

    python -m grading.authoring.selfcheck source/week2_logistic_regression/week2_logistic_regression.ipynb \
        [--submission other.ipynb ...]

Runs the reference (the solution with expected values recorded), then grades
the solution itself (it must earn every autograded point) and any given
submissions, printing each test cell's verdict and messages.
"""

import argparse
import sys
import time
from pathlib import Path

import nbformat

from ..sandbox.execute import run_notebook
from ..sandbox.kernels import KernelFactory
from ..sandbox.layers import Limits
from ..verdict.grade import _copy_source_files
from ..verdict.judge import collect_reference, decode_reference, judge
from ..verdict.notebook import merge, prepare_for_run, read_spec


def _week_files(source_dir):
    """The week's data files (next to the source notebook), as grading stages them."""
    return None if source_dir is None else (lambda stage_dir: _copy_source_files(source_dir, stage_dir))


def reference_for(spec, source_nb, factory, source_dir=None):
    nb = prepare_for_run(source_nb, spec, "reference")
    kernel = factory.fresh_kernel(stage=_week_files(source_dir))
    try:
        run = run_notebook(nb, kernel, factory.limits)
    finally:
        factory.recycle()
    if not run.ok:
        raise SystemExit(f"reference run failed: {run.status}: {run.detail}")
    return collect_reference(run.nb, spec), run.seconds


def grade_one(spec, nb, reference, factory, release_cells=None, source_dir=None):
    merged = merge(spec, nb, release_cells)
    kernel = factory.fresh_kernel(stage=_week_files(source_dir))
    try:
        run = run_notebook(prepare_for_run(merged.nb, spec, "probe"), kernel, factory.limits)
    finally:
        factory.recycle()
    return judge(spec, run, reference), run, merged


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source")
    ap.add_argument("--submission", action="append", default=[])
    args = ap.parse_args(argv)
    source_nb = nbformat.read(args.source, 4)
    spec = read_spec(args.source)
    with KernelFactory(Limits()) as factory:
        t = time.monotonic()
        source_dir = Path(args.source).resolve().parent
        reference, secs = reference_for(spec, source_nb, factory, source_dir)
        print(f"reference run: {secs:.1f} s of cells, {time.monotonic() - t:.1f} s in all")
        decoded = decode_reference(reference)
        worst = 0
        for label, path in [("solution", args.source), *[(p, p) for p in args.submission]]:
            verdicts, run, merged = grade_one(spec, nbformat.read(path, 4), decoded, factory, source_dir=source_dir)
            got = sum(v.points for v in verdicts)
            total = sum(v.max_points for v in verdicts)
            print(f"\n{label}: {got:g}/{total:g} autograded points ({run.status}, {run.seconds:.1f} s)")
            for note in merged.notes:
                print(f"  note: {note}")
            for v in verdicts:
                mark = "PASS" if v.passed else "FAIL"
                print(f"  {mark} {v.grade_id} ({v.points:g}/{v.max_points:g})")
                for m in v.messages():
                    print(f"      {m}")
            if label == "solution" and got < total:
                worst = 1
        return worst


if __name__ == "__main__":
    sys.exit(main())
