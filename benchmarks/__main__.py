"""Run the benchmarks and print a table of ratios; JSON goes to benchmarks/results/."""

import os

# One BLAS thread: on a shared machine multi-threaded timings swing wildly, and the
# ratios we report (step vs its own GEMMs) are about our code, not about threading.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


def _print(title, rows):
    print(f"\n{title}")
    w = max(len(r[0]) for r in rows)
    for name, value, goal in rows:
        print(f"  {name.ljust(w)}  {value:>12}  {goal}")


def main(argv):
    which = argv or ["nn", "conv", "grading"]
    out = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.platform(), "cpus": os.cpu_count()}
    if "nn" in which:
        from . import nn_step

        rows = nn_step.run()
        _print("course_lib training step", rows)
        out["nn"] = rows
    if "conv" in which:
        from . import conv_step

        rows = conv_step.run()
        _print("course_lib conv net training step", rows)
        out["conv"] = rows
    if "grading" in which:
        from . import grading

        rows, data = grading.run()
        _print("grading", rows)
        out["grading"] = {"rows": rows, "raw": data}
    if "scaling" in which and "grading" not in which:  # the scaling part of "grading" alone
        from . import grading

        rows, data = grading.run_scaling()
        _print("grading: scaling from 1 to 2 workers", rows)
        out["scaling"] = {"rows": rows, "raw": data}
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "latest.json").write_text(json.dumps(out, indent=1))
    print(f"\nresults: {results / 'latest.json'}")


if __name__ == "__main__":
    main(sys.argv[1:])
