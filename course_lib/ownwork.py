"""Own work only: does an exercise hand its work to course_lib, a notebook helper or a shortcut?

Each exercise's solution cell declares, in its metadata, what it must not
delegate to (``{"course": {"not_delegate": ["course_lib.nn.activations.sigmoid", ...]}}``).
This module finds such delegation by reading code, never by running it:

* a reference to a declared target, however it is reached: ``from ... import``,
  a module alias (``import course_lib.nn.activations as A; A.sigmoid``), a parent
  module (``from course_lib import nn; nn.sigmoid``), a re-export, or a name some
  other cell bound to it (``from course_lib.nn.activations import sigmoid as s``);
* a call to the notebook's ``reference_*`` / ``library_*`` helpers;
* tools that hide what code calls (``importlib``, ``__import__``, ``getattr``,
  ``globals()``, ``__dict__``, ``sys.modules``, ``eval`` ...), which no exercise needs.

It follows names into the functions (and lambdas, classes, assignments) they
are bound to, wherever those are defined, so a helper written in another cell
is checked too. Two users share this code: the trusted grader (grading/verdict/ownwork.py)
analyses the submitted cells in its own process, and the student's visible
checks (``course_lib.checks``) warn about the live functions, so nobody is
surprised at grading time.

A finding carries only trusted text: a declared target or a word from INDIRECT.
"""

import ast
import functools
import importlib
import inspect
import textwrap
import types
import weakref
from dataclasses import dataclass

HELPER_PREFIXES = ("reference_", "library_")

# Names and attributes that reach objects without naming them: a fixed vocabulary.
INDIRECT_NAMES = {
    "getattr": "getattr",
    "vars": "vars()",
    "globals": "globals()",
    "locals": "locals()",
    "eval": "eval",
    "exec": "exec",
    "compile": "compile",
    "__import__": "__import__",
    "importlib": "importlib",
    "__builtins__": "__builtins__",
    "builtins": "builtins",
    "get_ipython": "get_ipython",
    "sys": "sys.modules",  # only flagged when .modules is read, see _attribute
}
INDIRECT_ATTRS = {
    "__dict__": "__dict__",
    "__builtins__": "__builtins__",
    "__globals__": "__globals__",
    "__getattribute__": "__getattribute__",
    "__import__": "__import__",
    "__subclasses__": "__subclasses__",
    "__closure__": "__closure__",
    "__code__": "__code__",
    "__wrapped__": "__wrapped__",
    "f_globals": "f_globals",
    "f_back": "f_back",
}
INDIRECT_MODULES = {"importlib": "importlib", "builtins": "builtins"}


@dataclass(frozen=True)
class Finding:
    """kind: "delegates" (target is a declared dotted name), "helper" or "indirect" (target from INDIRECT)."""

    kind: str
    target: str


def short_name(target):
    """course_lib.nn.activations.sigmoid -> sigmoid."""
    return target.rsplit(".", 1)[-1]


def sentence(finding):
    """The grader's one plain sentence for a finding (trusted words only)."""
    if finding.kind == "delegates":
        if finding.target.startswith("course_lib."):
            what = f"calls course_lib's own {short_name(finding.target)}"
        else:
            what = f"uses {finding.target}, the shortcut this exercise asks you to replace"
        return f"This exercise {what} instead of your implementation, so it earns no points."
    if finding.kind == "helper":
        return (
            "This exercise calls one of the notebook's reference helpers instead of your implementation, "
            "so it earns no points."
        )
    return (
        f"This exercise uses {finding.target}, which hides what the code calls, so it earns no points; "
        "write it without that."
    )


def warning(function_name, finding):
    """The student's visible warning (their own function's name is theirs to see)."""
    if finding.kind == "delegates":
        if finding.target.startswith("course_lib."):
            what = f"uses course_lib's own {short_name(finding.target)}"
        else:
            what = f"uses {finding.target}"
    elif finding.kind == "helper":
        what = "calls one of the notebook's reference helpers"
    else:
        what = f"uses {finding.target}, which hides what it calls"
    return f"✘ {function_name} {what}: write your own to earn the points"


# ----- trusted objects ----------------------------------------------------------
def resolve_path(dotted, roots):
    """The object a dotted name denotes, importing only packages whose top name is in ``roots``."""
    parts = dotted.split(".")
    if parts[0] not in roots:
        return None
    obj = None
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = member(obj, attr, roots)
            if obj is None:
                return None
        return obj
    return None


def member(obj, attr, roots):
    """obj.attr for modules and classes of the trusted packages, looked up without running code."""
    if isinstance(obj, types.ModuleType):
        if attr in vars(obj):
            return vars(obj)[attr]
        name = f"{obj.__name__}.{attr}"
        if name.split(".")[0] in roots:
            try:
                return importlib.import_module(name)
            except ImportError:
                return None
        return None
    if isinstance(obj, type):
        return inspect.getattr_static(obj, attr, None)
    return None


def forbidden_objects(targets):
    """{id(object): declared name} for the declared targets that exist."""
    roots = {t.split(".")[0] for t in targets}
    out = {}
    for t in targets:
        obj = resolve_path(t, roots)
        if obj is not None:
            out.setdefault(id(obj), t)
    return out, roots


# A worker grades many submissions: the course's own cells are a few KB, and a longer text is
# a student's own, worked on each time and never kept for the next submission.
_CACHED_CHARS = 64 * 1024


def _memo_short(fn):
    """``fn(source)``, remembered for the 512 latest texts of at most _CACHED_CHARS characters."""
    cached = functools.lru_cache(maxsize=512)(fn)

    @functools.wraps(fn)
    def call(source):
        return cached(source) if len(source) <= _CACHED_CHARS else fn(source)

    call.cache_clear = cached.cache_clear
    return call


# ----- the walk -------------------------------------------------------------------
class Environment:
    """What a global name may be bound to: objects, and code (AST nodes) that produce it."""

    def __init__(self, roots):
        self.roots = roots
        self.bindings = {}  # name -> list of ("obj", object) | ("node", ast node)

    def bind(self, name, kind, value, trusted=False):
        self.bindings.setdefault(name, []).append((kind, value, trusted))

    def lookup(self, name):
        """[(kind, value, trusted)] for a global name."""
        return self.bindings.get(name, [])

    def add_source(self, source, trusted=False):
        """Bind the top-level names of a cell (imports, defs, classes, assignments). Bad syntax: ignored."""
        found = cell_bindings(source)
        if found is None:
            return None
        imports, statements = found
        for name, dotted in imports:
            obj = resolve_path(dotted, self.roots)
            self.bind(name, "obj" if obj is not None else "unknown", obj, trusted)
            self.bind(name, "import", dotted, trusted)  # where the name came from
        for name, node in statements:
            self.bind(name, "node", node, trusted)
        return parse_once(source)


@_memo_short
def cell_bindings(source):
    """What a cell binds, or None for bad syntax: ([(name, dotted import)], [(name, AST node)]).

    Walked once per text: the grader builds one environment per exercise from the same cells.
    Imports count anywhere, even inside functions (an over-approximation).
    """
    tree = parse_once(source)
    if tree is None:
        return None
    imports = [
        pair for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for pair in import_bindings(n)
    ]
    statements = []
    for stmt in tree.body:
        _statement_bindings(stmt, statements)
    return imports, statements


def _statement_bindings(stmt, out):
    """Append (name, node) for what a top-level statement binds, looking into if/try/with/for/while."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        out.append((stmt.name, stmt))
    elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and stmt.value is not None:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        for t in targets:
            for n in ast.walk(t):
                if isinstance(n, ast.Name):
                    out.append((n.id, stmt.value))
    elif isinstance(stmt, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
        for child in ast.iter_child_nodes(stmt):
            if isinstance(child, ast.stmt):
                _statement_bindings(child, out)
            elif isinstance(child, ast.ExceptHandler):
                for s in child.body:
                    _statement_bindings(s, out)


def import_bindings(node):
    """(bound name, dotted path) pairs of an import statement."""
    out = []
    if isinstance(node, ast.Import):
        for a in node.names:
            out.append((a.asname, a.name) if a.asname else (a.name.split(".")[0], a.name.split(".")[0]))
    elif node.module and not node.level:
        for a in node.names:
            if a.name != "*":
                out.append((a.asname or a.name, f"{node.module}.{a.name}"))
    return out


def _local_names(fn):
    """Parameters and names a function (or lambda) assigns: these shadow globals."""
    args = fn.args
    names = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
    names |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    body = fn.body if isinstance(fn.body, list) else [fn.body]
    for stmt in body:
        for n in ast.walk(stmt):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
                names.add(n.id)
            elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n is not fn:
                names.add(n.name)
    return names - set(_imported_names(body))


def _imported_names(body):
    """Names bound by imports inside a function: checked through the environment, not shadowing."""
    return [
        name
        for stmt in body
        for n in ast.walk(stmt)
        if isinstance(n, (ast.Import, ast.ImportFrom))
        for name, _ in import_bindings(n)
    ]


class Analysis:
    """Walk code from some roots, following global names through ``env``, collecting findings."""

    def __init__(self, forbidden, env, judged_elsewhere=()):
        self.forbidden = forbidden  # id(obj) -> declared name
        self.env = env
        self.judged_elsewhere = set(judged_elsewhere)  # other exercises' names: their helpers are theirs
        self.findings = []
        self._seen = set()
        self._strict = True

    def add(self, kind, target):
        f = Finding(kind, target)
        if f not in self.findings and (self._strict or kind == "delegates"):
            self.findings.append(f)

    def run(self, roots):
        """Walk ``roots``; code reached only through another exercise is checked for declared targets only
        (a helper or indirect tool there costs that exercise, not this one)."""
        todo = [(r, frozenset(), True) for r in roots]
        while todo:
            node, local, strict = todo.pop()
            if (id(node), strict) in self._seen or (id(node), True) in self._seen:
                continue
            self._seen.add((id(node), strict))
            self._strict, self._elsewhere = strict, []
            found = self._visit(node, local)
            todo += [(n, sc, strict and n not in self._elsewhere) for n, sc in found]
        self._strict = True
        return self.findings

    def _visit(self, root, local):
        follow = []
        stack = [(root, local)]
        while stack:
            node, scope = stack.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and node is not root:
                follow.append((node, scope))  # walked with its own locals
                continue
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                scope = scope | _local_names(node)
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                self._import(node)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                if self._attribute(node, scope, follow):
                    continue
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                self._name(node.id, scope, follow)
            stack += [(child, scope) for child in ast.iter_child_nodes(node)]
        return follow

    def _import(self, node):
        for _name, dotted in import_bindings(node):
            self._imported(dotted)
            obj = resolve_path(dotted, self.env.roots)
            if obj is not None and id(obj) in self.forbidden:
                self.add("delegates", self.forbidden[id(obj)])

    def _imported(self, dotted):
        """An import (or a name bound by one) of a tool that reaches objects without naming them."""
        top = dotted.split(".")[0]
        if top in INDIRECT_MODULES:
            self.add("indirect", INDIRECT_MODULES[top])
        if dotted in ("operator.attrgetter", "operator.methodcaller"):
            self.add("indirect", "operator.attrgetter")
        if dotted == "sys.modules":
            self.add("indirect", "sys.modules")

    def _name(self, name, scope, follow):
        if name in scope:
            return
        if name.startswith(HELPER_PREFIXES):
            self.add("helper", "reference helper")  # and what it is bound to is checked below
        if name in INDIRECT_NAMES and name != "sys":
            self.add("indirect", INDIRECT_NAMES[name])
            return
        for kind, value, _trusted in self.env.lookup(name):
            if kind == "import":
                self._imported(value)
            elif kind == "obj" and id(value) in self.forbidden:
                self.add("delegates", self.forbidden[id(value)])
            elif kind == "node":
                follow.append((value, frozenset()))
                if name in self.judged_elsewhere:
                    self._elsewhere.append(value)

    def _attribute(self, node, scope, follow):
        """Check a.b.c chains; True when the whole chain was handled."""
        attrs = []
        base = node
        while isinstance(base, ast.Attribute):
            attrs.append(base.attr)
            base = base.value
        attrs.reverse()
        for a in attrs:
            if a in INDIRECT_ATTRS:
                self.add("indirect", INDIRECT_ATTRS[a])
            if a in ("attrgetter", "methodcaller"):
                self.add("indirect", "operator.attrgetter")
        if not isinstance(base, ast.Name):
            return False
        if base.id == "sys" and attrs[:1] == ["modules"] and base.id not in scope:
            self.add("indirect", "sys.modules")
        if base.id == "importlib" and base.id not in scope:
            self.add("indirect", "importlib")
        if base.id in scope or base.id.startswith(HELPER_PREFIXES):
            return False
        for kind, value, _trusted in self.env.lookup(base.id):
            if kind != "obj":
                continue
            obj = value
            for a in attrs:
                if id(obj) in self.forbidden:
                    break
                obj = member(obj, a, self.env.roots)
                if obj is None:
                    break
            if obj is not None and id(obj) in self.forbidden:
                self.add("delegates", self.forbidden[id(obj)])
        return False


@_memo_short
def parse_once(source):
    """A cell's syntax tree, or None for bad syntax. The grader checks every exercise against every
    cell, so each text is parsed once; the trees are only read, never changed."""
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


# ----- entry points ---------------------------------------------------------------
def analyze_cells(
    solution_source, targets, trusted_sources=(), student_sources=(), exercise_names=(), other_exercises=()
):
    """Findings for one exercise, from source text only (the grader's static check).

    solution_source: the submitted solution cell; targets: its declared not_delegate list;
    trusted_sources: the notebook's trusted cells (setup), whose bindings are followed;
    student_sources: every other cell the student submitted (other exercises, own cells);
    exercise_names: the names the exercise defines (from the trusted solution), so a
    rebinding of them in another cell is checked as part of the exercise;
    other_exercises: names the other exercises define (the student's own earlier functions).
    """
    forbidden, roots = forbidden_objects(targets)
    env = Environment(roots)  # only the declared targets' packages are ever imported
    for src in trusted_sources:
        env.add_source(src, trusted=True)
    extra = [s for s in student_sources if env.add_source(s) is not None]
    tree = env.add_source(solution_source)
    if tree is None:
        return []  # it cannot run either: the probes fail on their own
    analysis = Analysis(forbidden, env, set(other_exercises) - set(exercise_names))
    start = [tree]
    for name in exercise_names:  # the student may rebind the exercise's name in another cell
        for kind, value, trusted in env.lookup(name):
            if kind == "node" and not trusted:
                start.append(value)
            elif kind == "obj" and not trusted and id(value) in forbidden:
                analysis.add("delegates", forbidden[id(value)])
    analysis.run(start)
    for src in extra:  # indirect tools in a cell's top-level code can rebind anything
        for f in top_level_indirect(src):
            analysis.add(f.kind, f.target)
    return analysis.findings


@_memo_short
def top_level_indirect(source):
    """Indirect-tool findings in a cell's top-level code (function bodies are not looked into).

    Imports alone are left out: a name bound to importlib is caught where it is used.
    """
    tree = parse_once(source)
    if tree is None:
        return ()
    probe = Analysis({}, Environment(set()))
    body = [s for s in tree.body if not isinstance(s, (ast.Import, ast.ImportFrom))]
    probe._visit(ast.Module(body=body, type_ignores=[]), frozenset())  # nested functions are not followed
    return tuple(f for f in probe.findings if f.kind == "indirect")


class _LiveEnvironment(Environment):
    """Bindings read from a live namespace (the student's kernel), code found with inspect."""

    def __init__(self, namespace, roots):
        super().__init__(roots)
        self.namespace = namespace

    def lookup(self, name):
        if name not in self.namespace:
            return []
        value = self.namespace[name]
        node = _source_node(value)
        return [("obj", value, False)] + ([("node", node, False)] if node is not None else [])


def _source_node(value):
    """The parsed source of a function or class defined in the notebook, else None."""
    if not isinstance(value, (types.FunctionType, type)) or getattr(value, "__module__", None) != "__main__":
        return None
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(value)))
    except (OSError, TypeError, SyntaxError, ValueError):
        return None
    return tree


def analyze_function(func, targets):
    """Findings for a live function (the student's visible check); [] when its source is unavailable."""
    forbidden, roots = forbidden_objects(targets)
    if id(func) in forbidden:
        return [Finding("delegates", forbidden[id(func)])]
    node = _source_node(func) if isinstance(func, (types.FunctionType, type)) else None
    if node is None:
        return []
    env = _LiveEnvironment(getattr(func, "__globals__", {}), roots)
    return Analysis(forbidden, env).run([node])


# ----- the student's visible checks -------------------------------------------------
_DECLARED = {}  # notebook path -> (mtime, {function name: targets})
_WARNED = [None, set()]  # (the test cell run, see _cell_run; names already warned about in it)


def _declarations(folder):
    """{function name: not_delegate targets} from the notebooks' solution cells in ``folder``."""
    import json
    from pathlib import Path

    out = {}
    for path in sorted(Path(folder).glob("*.ipynb"))[:20]:
        try:
            mtime = path.stat().st_mtime
            if _DECLARED.get(path, (None,))[0] != mtime:
                nb = json.loads(path.read_text(encoding="utf-8"))
                found = {}
                for cell in nb.get("cells", []):
                    meta = cell.get("metadata") or {}
                    targets = (meta.get("course") or {}).get("not_delegate")
                    if cell.get("cell_type") != "code" or not (meta.get("nbgrader") or {}).get("solution"):
                        continue
                    if isinstance(targets, list):
                        tree = parse_once("".join(cell.get("source", "")))
                        for node in tree.body if tree is not None else []:
                            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                                found[node.name] = [t for t in targets if isinstance(t, str)]
                _DECLARED[path] = (mtime, found)
            out.update(_DECLARED[path][1])
        except (OSError, ValueError, AttributeError, TypeError):
            continue
    return out


def _cell_run(frame):
    """What tells the run of the test cell ``frame`` belongs to from every other run.

    In IPython (the student's notebook), its execution count: one run keeps it, though IPython
    may compile a cell into several code objects, and no later run repeats it. Elsewhere, a weak
    reference to the module-level code object running, which dies with its run (``id(frame)``,
    by contrast, a later frame may take over).
    """
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        return ("execution", shell.execution_count)
    f = frame
    while f is not None and f.f_code.co_name != "<module>":
        f = f.f_back
    return weakref.ref((f or frame).f_code)


def warn_for_test_cell(frame, print_fn=print):
    """Warn about delegating functions a notebook test cell (running ``frame``) calls.

    Student-side only, and never an error: the grader decides with its own copy of
    the declarations. Each function is warned about once per run of the cell.
    """
    import linecache
    import os

    run = _cell_run(frame)
    if _WARNED[0] != run:  # a dead weak reference equals no other
        _WARNED[0], _WARNED[1] = run, set()
    source = "".join(linecache.getlines(frame.f_code.co_filename))
    tree = parse_once(source) if source else None
    if tree is None:
        return
    declared = _declarations(os.getcwd())
    called = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    for name in sorted(called & set(declared) - _WARNED[1]):
        func = frame.f_globals.get(name)
        if func is None:
            continue
        _WARNED[1].add(name)
        for finding in analyze_function(func, declared[name]):
            print_fn(warning(name, finding))
