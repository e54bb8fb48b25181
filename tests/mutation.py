"""Mutation testing of the exercises: plant single-point bugs, require every one to lose points.

    python -m tests.mutation source/week2_logistic_regression/week2_logistic_regression.ipynb

For each solution cell, each operator below changes one place in the
solution region (a dropped ``.T``, a dropped term, a flipped sign, sum for
mean, a wrong axis, a wrong constant, swapped matmul operands, a dropped
division ...). The mutant is run with the exercise's test cells, in-process
from a snapshot of the notebook state just before the solution cell. It is
*killed* when a check fails, anything raises, a warning is emitted in a
test cell (nbgrader fails a test cell that writes to stderr) or it runs out
of time. Surviving mutants are bugs the tests would let through.
"""

import ast
import contextlib
import copy
import io
import signal
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


@dataclass(frozen=True)
class Mutant:
    cell: str  # grade_id of the solution cell
    operator: str
    line: int  # line within the cell
    before: str
    after: str


# ----- operators ----------------------------------------------------------------
def _numeric(node):
    return isinstance(node, ast.Constant) and type(node.value) in (int, float) and not isinstance(node.value, bool)


class _Mutator(ast.NodeTransformer):
    """Applies the ``target``-th mutation site (counting in visiting order) and records it."""

    def __init__(self, target):
        self.target, self.count, self.applied = target, 0, None

    def _site(self, name, node, replacement):
        hit = self.count == self.target
        self.count += 1
        if hit:
            self.applied = (name, getattr(node, "lineno", 0), ast.unparse(node), ast.unparse(replacement))
            return replacement
        return None

    def visit_Attribute(self, node):
        self.generic_visit(node)
        if node.attr == "T":
            return self._site("drop .T", node, node.value) or node
        if node.attr in ("mean", "sum"):
            other = "sum" if node.attr == "mean" else "mean"
            return self._site(f"{node.attr} -> {other}", node, ast.Attribute(node.value, other, node.ctx)) or node
        return node

    def visit_BinOp(self, node):
        self.generic_visit(node)
        out = None
        if isinstance(node.op, (ast.Add, ast.Sub)):
            flipped = ast.BinOp(node.left, ast.Sub() if isinstance(node.op, ast.Add) else ast.Add(), node.right)
            out = (
                self._site("flip + / -", node, flipped)
                or self._site("drop right term", node, node.left)
                or self._site(
                    "drop left term",
                    node,
                    node.right if isinstance(node.op, ast.Add) else ast.UnaryOp(ast.USub(), node.right),
                )
            )
        elif isinstance(node.op, ast.MatMult):
            out = self._site("swap @ operands", node, ast.BinOp(node.right, ast.MatMult(), node.left))
        elif isinstance(node.op, (ast.Div, ast.Mult)):
            out = self._site("drop / or * factor", node, node.left)
        return out or node

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.USub):
            return self._site("drop unary minus", node, node.operand) or node
        return node

    def visit_Compare(self, node):
        self.generic_visit(node)
        swaps = {ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Lt: ast.LtE, ast.LtE: ast.Lt}
        if len(node.ops) == 1 and type(node.ops[0]) in swaps:
            new = ast.Compare(node.left, [swaps[type(node.ops[0])]()], node.comparators)
            return self._site("boundary of a comparison", node, new) or node
        return node

    def visit_keyword(self, node):
        self.generic_visit(node)
        if node.arg == "axis" and _numeric(node.value):
            v = node.value.value
            new = ast.keyword("axis", ast.Constant(1 if v in (0, -2) else 0))
            return self._site("wrong axis", node, new) or node
        if node.arg == "keepdims":
            return self._site("drop keepdims", node, ast.keyword("keepdims", ast.Constant(False))) or node
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        f = node.func
        if (
            isinstance(f, ast.Attribute)
            and f.attr in ("mean", "sum")
            and isinstance(f.value, ast.Name)
            and f.value.id == "np"
        ):
            other = "sum" if f.attr == "mean" else "mean"
            new = ast.Call(ast.Attribute(f.value, other, f.ctx), node.args, node.keywords)
            return self._site(f"np.{f.attr} -> np.{other}", node, new) or node
        return node

    def visit_Constant(self, node):
        if _numeric(node) and node.value not in (0,):
            v = node.value
            alt = 2 * v if v not in (1, -1) else (0 if isinstance(v, int) else 2.0 * v)
            return self._site("wrong constant", node, ast.Constant(type(v)(alt))) or node
        return node

    def visit_Subscript(self, node):
        # Indices select things (columns, layers); changing them is not a "constant" bug.
        node.value = self.visit(node.value)
        return node


def mutants_of(source, grade_id):
    """Yield (Mutant, new cell source) for every mutation site inside the solution region."""
    lines = source.splitlines()
    try:
        b = next(i for i, ln in enumerate(lines) if ln.strip() == BEGIN)
        e = next(i for i, ln in enumerate(lines) if ln.strip() == END)
    except StopIteration:
        return
    region = lines[b + 1 : e]
    indent = min((len(ln) - len(ln.lstrip()) for ln in region if ln.strip()), default=0)
    body = "\n".join(ln[indent:] for ln in region)
    target = 0
    while True:
        tree = ast.parse(body)
        m = _Mutator(target)
        new_tree = ast.fix_missing_locations(m.visit(tree))
        if m.applied is None:
            return
        target += 1
        name, line, before, after = m.applied
        new_body = ast.unparse(new_tree)
        new_region = [(" " * indent + ln) if ln else ln for ln in new_body.splitlines()]
        new_source = "\n".join(lines[: b + 1] + new_region + lines[e:])
        yield Mutant(grade_id, name, b + 1 + line, before, after), new_source


# ----- running ------------------------------------------------------------------
class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def _strip_magics(src):
    return "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in src.splitlines())


def _snapshot(ns):
    snap = {}
    for k, v in ns.items():
        try:
            snap[k] = copy.deepcopy(v)
        except Exception:  # noqa: BLE001 - modules, widgets, generators: share them
            snap[k] = v
    return snap


def _run(code, ns, seconds, fail_on_warning):
    """Execute ``code`` in ``ns``; None if it ran cleanly, else a short reason."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("always")
            exec(compile(code, "<cell>", "exec"), ns)
        if fail_on_warning and caught:
            return f"{caught[0].category.__name__}: {caught[0].message}"
        return None
    except _Timeout:
        return "timeout"
    except Exception as e:  # noqa: BLE001 - any failure kills the mutant
        return f"{type(e).__name__}: {e}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _exercises(path):
    """Yield (solution grade_id, solution source, namespace snapshot before it, block of the
    following cells up to its last test cell as [(role, grade_id, source)]), running the notebook."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from grading.notebook import cell_role

    nb = nbformat.read(path, 4)
    cells = [
        (cell_role(c), (c.metadata.get("nbgrader") or {}).get("grade_id"), _strip_magics(c.source))
        for c in nb.cells
        if c.cell_type == "code"
    ]
    ns = {"__name__": "__main__"}
    for k, (role, gid, src) in enumerate(cells):
        if role == "solution":
            block = []
            for cell in cells[k + 1 :]:
                if cell[0] == "solution":
                    break
                block.append(cell)
            last_test = max((i for i, c in enumerate(block) if c[0] == "tests"), default=-1)
            yield gid, src, _snapshot(ns), block[: last_test + 1]
        failure = _run(src, ns, 120, role == "tests")
        plt.close("all")
        if failure:
            raise RuntimeError(f"the unmutated notebook fails at cell {gid or k}: {failure}")


def trial(snap, source, block, seconds=20.0):
    """Run a (changed) solution cell and its block from a snapshot: {test grade_id: reason or None}.

    Like the grader, every cell runs even after an earlier one failed: a mutant is only
    killed by a test cell that fails, never by a demo cell that happens to crash.
    """
    import matplotlib.pyplot as plt

    ns = _snapshot(snap)
    outcome = {}
    failure = _run(source, ns, seconds, False)
    for role, gid, src in block:
        if role == "tests":
            outcome[gid] = _run(src, ns, seconds, True)
        else:
            _run(src, ns, seconds, False)
    plt.close("all")
    return outcome if outcome else {"(no tests)": failure}


def analyse(path, seconds=20.0):
    """(killed, survivors) for every mutant of every solution cell of a source notebook."""
    killed, survivors = [], []
    for gid, src, snap, block in _exercises(path):
        for mutant, mutated in mutants_of(src, gid):
            outcome = trial(snap, mutated, block, seconds)
            (survivors if all(v is None for v in outcome.values()) else killed).append(mutant)
    return killed, survivors


def mistake_outcomes(path, mistakes, seconds=20.0):
    """[(mistake, {test grade_id: reason or None})] for catalogue entries applied one at a time."""
    by_cell = {}
    for m in mistakes:
        by_cell.setdefault(m["solution_cell"], []).append(m)
    out = []
    for gid, src, snap, block in _exercises(path):
        for m in by_cell.get(gid, []):
            if m["replace"] not in src:
                out.append((m, {"(catalogue)": f"{m['replace']!r} is not in {gid}"}))
                continue
            out.append((m, trial(snap, src.replace(m["replace"], m["with"], 1), block, seconds)))
    return out


def main(argv=None):
    paths = (argv if argv is not None else sys.argv[1:]) or sorted(str(p) for p in Path("source").glob("*/*.ipynb"))
    status = 0
    for p in paths:
        killed, survivors = analyse(p)
        print(f"{p}: {len(killed)} mutants killed, {len(survivors)} survived")
        for m in survivors:
            print(f"  SURVIVED {m.cell} line {m.line}: {m.operator}: {m.before!r} -> {m.after!r}")
        status |= bool(survivors)
    return status


if __name__ == "__main__":
    sys.exit(main())
