"""Mutation testing of the exercises: plant single-point bugs, require every one to lose points.

    python -m tests.mutation source/week2_logistic_regression/week2_logistic_regression.ipynb

For each solution cell, each operator below changes one place in a
solution region (a dropped ``.T``, a dropped term, a flipped sign or ``+=``,
sum for mean, a wrong or dropped axis, a wrong constant, swapped matmul
operands, a dropped division or power, max for min, a reversed comparison,
an in-place update of the caller's array ...). The mutant is run with the exercise's test cells, in-process
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
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
PROBE = "__mutation_probe__"


@dataclass(frozen=True)
class Mutant:
    cell: str  # grade_id of the solution cell
    operator: str
    line: int  # line within the cell
    before: str
    after: str
    # For an in-place mutant: the unmutated cell with a call __mutation_probe__(P) just before
    # the statement, which tells whether P held a mutable array (else the mutant is equivalent).
    probe: str = field(default="", compare=False, repr=False)


# ----- operators ----------------------------------------------------------------
def _numeric(node):
    return isinstance(node, ast.Constant) and type(node.value) in (int, float) and not isinstance(node.value, bool)


class _Mutator(ast.NodeTransformer):
    """Applies the ``target``-th mutation site (counting in visiting order) and records it."""

    def __init__(self, target, params=(), probe=False):
        self.target, self.count, self.applied = target, 0, None
        self.probe = probe  # put the probe call at an in-place site instead of the mutation
        self.params = [frozenset(params)]  # parameters of the enclosing function(s)

    def _site(self, name, node, replacement):
        hit = self.count == self.target
        self.count += 1
        if hit:
            after = (
                "; ".join(map(ast.unparse, replacement)) if isinstance(replacement, list) else ast.unparse(replacement)
            )
            self.applied = (name, getattr(node, "lineno", 0), ast.unparse(node), after)
            return replacement
        return None

    def visit_Attribute(self, node):
        self.generic_visit(node)
        if node.attr == "T":
            return self._site("drop .T", node, node.value) or node
        if node.attr in ("mean", "sum"):
            other = "sum" if node.attr == "mean" else "mean"
            return self._site(f"{node.attr} -> {other}", node, ast.Attribute(node.value, other, node.ctx)) or node
        if node.attr in _MAX_MIN:
            other = _MAX_MIN[node.attr]
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
        elif isinstance(node.op, ast.Pow):
            out = self._site("drop **", node, node.left)
        return out or node

    def visit_AugAssign(self, node):
        self.generic_visit(node)
        if isinstance(node.op, (ast.Add, ast.Sub)):
            op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
            return self._site("flip += / -=", node, ast.AugAssign(node.target, op, node.value)) or node
        return node

    def visit_FunctionDef(self, node):
        self.params.append(_parameters(node))
        self.generic_visit(node)
        self.params.pop()
        return node

    visit_Lambda = visit_FunctionDef

    # In-place versions: `T = P - E` becomes `P -= E; T = P` when P is a parameter, so the
    # function changes its caller's array (the bug a later call in the same cell hides).
    def visit_Assign(self, node):
        self.generic_visit(node)
        out = self._in_place(node) or node
        self._rebound(node)
        return out

    def visit_AnnAssign(self, node):
        self.generic_visit(node)
        self._rebound(node)
        return node

    def visit_For(self, node):
        self._rebound(node)  # the loop variable is rebound before the body runs
        self.generic_visit(node)
        return node

    def _rebound(self, stmt):
        """After ``P = P - E`` (or ``P = P.copy()``, ``for P in ...``) P names a new object, not the
        caller's: an in-place mutant on it later would change no caller, so P is no longer a target."""
        self.params[-1] = self.params[-1] - _rebound_names(stmt)

    def visit_Return(self, node):
        self.generic_visit(node)
        return self._in_place(node) or node

    def _in_place(self, stmt):
        params = self.params[-1]
        for k, binop in enumerate(_in_place_candidates(stmt, params)):
            new = copy.deepcopy(stmt)
            target = list(_in_place_candidates(new, params))[k]
            aug = ast.AugAssign(_store(binop.left), type(binop.op)(), target.right)
            rebind = isinstance(new, ast.Assign) and len(new.targets) == 1
            if rebind and ast.dump(new.targets[0]) == ast.dump(_store(binop.left)) and new.value is target:
                replacement = [aug]  # A = A - B  ->  A -= B
            else:
                _replace(new, target, copy.deepcopy(target.left))
                replacement = [aug, new]
            if self.probe and self.count == self.target:
                call = ast.Call(ast.Name(PROBE, ast.Load()), [copy.deepcopy(binop.left)], [])
                replacement = [ast.Expr(call), stmt]
            hit = self._site("in-place on a parameter", stmt, replacement)
            if hit:
                return hit
        return None

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.USub):
            return self._site("drop unary minus", node, node.operand) or node
        return node

    def visit_Compare(self, node):
        self.generic_visit(node)
        swaps = {ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Lt: ast.LtE, ast.LtE: ast.Lt}
        reverse = {ast.Gt: ast.Lt, ast.Lt: ast.Gt, ast.GtE: ast.LtE, ast.LtE: ast.GtE}
        if len(node.ops) == 1 and type(node.ops[0]) in swaps:
            op = type(node.ops[0])
            new = ast.Compare(node.left, [swaps[op]()], node.comparators)
            flipped = ast.Compare(node.left, [reverse[op]()], node.comparators)
            return (
                self._site("boundary of a comparison", node, new)
                or self._site("reversed comparison", node, flipped)
                or node
            )
        return node

    def visit_keyword(self, node):
        if node.arg == "axis" and _numeric(node.value):  # "wrong axis", not also "wrong constant"
            v = node.value.value
            new = ast.keyword("axis", ast.Constant(1 if v in (0, -2) else 0))
            return self._site("wrong axis", node, new) or node
        self.generic_visit(node)  # axis=(2, 3): each index is a constant that can be wrong
        if node.arg == "keepdims":
            return self._site("drop keepdims", node, ast.keyword("keepdims", ast.Constant(False))) or node
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        f = node.func  # np.sum <-> np.mean is visit_Attribute's mutant, like A.sum <-> A.mean
        if isinstance(f, ast.Name) and f.id in ("max", "min"):
            other = "min" if f.id == "max" else "max"
            new = ast.Call(ast.Name(other, ast.Load()), node.args, node.keywords)
            return self._site(f"{f.id} -> {other}", node, new) or node
        for i, kw in enumerate(node.keywords):
            if kw.arg == "axis":
                new = ast.Call(node.func, node.args, node.keywords[:i] + node.keywords[i + 1 :])
                return self._site("drop axis=", node, new) or node
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


_MAX_MIN = {"max": "min", "min": "max", "maximum": "minimum", "minimum": "maximum"}
_MAX_MIN.update({"argmax": "argmin", "argmin": "argmax", "amax": "amin", "amin": "amax"})
_SCOPES = (ast.FunctionDef, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_IN_PLACE_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div)


def _parameters(fn):
    """Names of fn's parameters that may hold arrays: one with a constant default
    (lr=0.01, training=True, eps=None) is a scalar or flag, and rebinding it changes no caller."""
    a = fn.args
    positional = a.posonlyargs + a.args
    defaults = dict(zip([p.arg for p in positional][len(positional) - len(a.defaults) :], a.defaults))
    defaults.update((p.arg, d) for p, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None)
    return frozenset(p.arg for p in positional + a.kwonlyargs if not isinstance(defaults.get(p.arg), ast.Constant))


def _rebound_names(stmt):
    """Names a statement binds to a new object (its own nested scopes aside). Not a view or alias
    of the name itself (``P = P.T``, ``P = P[0]``, ``P = np.asarray(P)``): that is still the caller's."""
    if isinstance(stmt, ast.Assign):
        targets, value = stmt.targets, stmt.value
    elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        targets, value = [stmt.target], stmt.value
    elif isinstance(stmt, (ast.For, ast.AsyncFor)):
        targets, value = [stmt.target], None
    else:
        return frozenset()
    names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return frozenset(n for n in names if not _aliases(value, n))


_VIEWS = ("T", "reshape", "ravel", "view", "squeeze", "transpose")


def _aliases(value, name):
    """Whether ``value`` may be the object ``name`` holds, or a view of it."""
    if isinstance(value, ast.Name):
        return value.id == name
    if isinstance(value, ast.Subscript):
        return _aliases(value.value, name)
    if isinstance(value, ast.Attribute) and value.attr in _VIEWS:
        return _aliases(value.value, name)
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
        f = value.func
        if f.attr in _VIEWS:
            return _aliases(f.value, name)
        if f.attr in ("asarray", "asanyarray") and value.args:
            return _aliases(value.args[0], name)
    return False


def _base_name(node):
    """``P`` for ``P``, ``P[i]``, ``P[i][0]``; None otherwise."""
    while isinstance(node, ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _store(node):
    new = copy.deepcopy(node)
    new.ctx = ast.Store()
    return new


def _in_place_candidates(stmt, params):
    """BinOps ``P op E`` of a statement (not inside a nested scope) whose left side is a
    parameter P (or an item of one, in ``P[k] = P[k] op E``), in a fixed order."""
    is_rebind = isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
    todo = [stmt.value] if stmt.value is not None else []
    while todo:
        node = todo.pop(0)
        if isinstance(node, _SCOPES):
            continue
        if isinstance(node, ast.BinOp) and isinstance(node.op, _IN_PLACE_OPS):
            left = node.left
            if isinstance(left, ast.Name) and left.id in params:
                yield node
            elif (
                is_rebind
                and node is stmt.value
                and _base_name(left) in params
                and ast.dump(_store(left)) == ast.dump(stmt.targets[0])
            ):
                yield node
        todo.extend(ast.iter_child_nodes(node))


def _replace(tree, old, new):
    """Put ``new`` where the node ``old`` is inside ``tree``."""
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, name, new)
                return
            if isinstance(value, list) and any(v is old for v in value):
                value[[i for i, v in enumerate(value) if v is old][0]] = new
                return


def _regions(lines):
    """(begin, end) line indices of every BEGIN/END SOLUTION pair of a cell."""
    begins = [i for i, ln in enumerate(lines) if ln.strip() == BEGIN]
    ends = [i for i, ln in enumerate(lines) if ln.strip() == END]
    return list(zip(begins, ends))


def _enclosing_parameters(source, line):
    """Parameters of the innermost function of ``source`` around 0-based ``line`` that still
    name the caller's objects there (not rebound by a statement above the line)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return frozenset()
    inside = [
        fn
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef) and fn.lineno <= line + 1 <= (fn.end_lineno or fn.lineno)
    ]
    if not inside:
        return frozenset()
    fn = max(inside, key=lambda fn: fn.lineno)
    params, todo = _parameters(fn), list(fn.body)
    while todo:
        stmt = todo.pop(0)
        if stmt.lineno > line or isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        params -= _rebound_names(stmt)
        todo.extend(s for s in ast.iter_child_nodes(stmt) if isinstance(s, ast.stmt))
    return params


def mutants_of(source, grade_id):
    """Yield (Mutant, new cell source) for every mutation site inside each solution region,
    each changed cell once (``c * x * x`` loses the same factor two ways)."""
    lines, seen = source.splitlines(), set()
    for b, e in _regions(lines):
        for mutant, new in _region_mutants(lines, b, e, grade_id, _enclosing_parameters(source, b)):
            if new not in seen:
                seen.add(new)
                yield mutant, new


def _region_mutants(lines, b, e, grade_id, params):
    region = lines[b + 1 : e]
    indent = min((len(ln) - len(ln.lstrip()) for ln in region if ln.strip()), default=0)
    body = "\n".join(ln[indent:] for ln in region)
    target = 0
    while True:
        tree = ast.parse(body)
        m = _Mutator(target, params)
        new_tree = ast.fix_missing_locations(m.visit(tree))
        if m.applied is None:
            return
        target += 1
        name, line, before, after = m.applied
        probe = ""
        if name == "in-place on a parameter":
            probe_tree = ast.fix_missing_locations(_Mutator(target - 1, params, probe=True).visit(ast.parse(body)))
            probe = _splice(lines, b, e, indent, probe_tree)
        yield Mutant(grade_id, name, b + 1 + line, before, after, probe), _splice(lines, b, e, indent, new_tree)


def _splice(lines, b, e, indent, tree):
    """The cell's source with lines b+1 .. e-1 replaced by ``tree``, indented back."""
    new_region = [(" " * indent + ln) if ln else ln for ln in ast.unparse(tree).splitlines()]
    return "\n".join(lines[: b + 1] + new_region + lines[e:])


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

    from grading.verdict.notebook import cell_role

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
    """(killed, survivors) for every mutant of every solution cell of a source notebook.

    An in-place mutant that survives although its parameter never held a mutable array
    (``n -= k`` on an int only rebinds a local name) is equivalent and left out of both.
    """
    killed, survivors = [], []
    for gid, src, snap, block in _exercises(path):
        for mutant, mutated in mutants_of(src, gid):
            outcome = trial(snap, mutated, block, seconds)
            if any(v is not None for v in outcome.values()):
                killed.append(mutant)
            elif not mutant.probe or _mutable_at_probe(snap, mutant.probe, block, seconds):
                survivors.append(mutant)
    return killed, survivors


# What `P -= E` only rebinds: numpy's scalars too (np.float32(1) -= 1 makes a new scalar).
_IMMUTABLE = (int, float, complex, bool, str, bytes, tuple, frozenset, type(None), np.generic)


def _mutable_at_probe(snap, probe_source, block, seconds):
    """Whether the probed name ever held something an in-place operator changes (an array)."""
    seen = []
    probe_snap = dict(snap)
    probe_snap[PROBE] = lambda value: seen.append(not isinstance(value, _IMMUTABLE))
    trial(probe_snap, probe_source, block, seconds)
    return any(seen)


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
