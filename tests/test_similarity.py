"""The similarity report on synthetic classes built from the real weeks, with planted copies.

Planted copies (renamed variables, reordered independent lines, added comments and
blank lines) of a classmate, of the reference solution and of course_lib are found;
honest look-alikes (the same one-line relu in every submission, untouched starter
code, different solutions of a longer exercise) are not.
"""

import ast
import io
import shutil
import textwrap
import tokenize
from contextlib import redirect_stdout

import nbformat
import pytest

from grading.cli import main
from grading.course import Course
from grading.demo import student_notebook
from grading.outputs import similarity
from grading.outputs.report import write_report
from tests.conftest import REPO, copy_course, submit

W1, W2, W3, W4 = (
    "week1_linear_regression",
    "week2_logistic_regression",
    "week3_multilayer_perceptron",
    "week4_backpropagation",
)
STUB = "    # YOUR CODE HERE\n    raise NotImplementedError()"
ESCAPE_ID = "evil\x1b]52;c;aGk=\x07\x1b[2J"
HTML_ID = "<img src=x onerror=alert(1)>"

# Three students' own, different, correct gradient descents (w1_gradient_descent).
GD_OWN = [
    """
    W = np.zeros((X.shape[1], y.shape[1]))
    b = np.zeros(y.shape[1])
    losses = []
    for _ in range(n_steps):
        losses.append(mse_loss(predict(X, W, b), y))
        dW, db = mse_gradient(X, y, W, b)
        W -= alpha * dW
        b -= alpha * db
    return W, b, np.array(losses)
    """,
    """
    n, k = X.shape[1], y.shape[1]
    W, b = np.zeros((n, k)), np.zeros(k)
    losses = np.empty(n_steps)
    for i in range(n_steps):
        r = predict(X, W, b) - y
        losses[i] = 0.5 * np.mean(np.sum(r * r, axis=1))
        W = W - alpha * X.T.dot(r) / len(X)
        b = b - alpha * r.sum(axis=0) / len(X)
    return W, b, losses
    """,
    """
    m, n = X.shape
    k = y.shape[1]
    W = np.zeros((n, k))
    b = np.zeros(k)
    losses = np.zeros(n_steps)
    for t in range(n_steps):
        y_hat = X @ W + b
        losses[t] = ((y_hat - y) ** 2).sum() / (2 * m)
        grad_W = X.T @ (y_hat - y) / m
        grad_b = (y_hat - y).sum(axis=0) / m
        W -= alpha * grad_W
        b -= alpha * grad_b
    return W, b, losses
    """,
]
# Different, correct forward passes (w3_mlp_forward) and numerical gradients (w4_numerical_gradient).
MLP_OWN = [
    """
    out = X
    for i, (W, b) in enumerate(params):
        act = g_out if i == len(params) - 1 else g_hidden
        out = act(out @ W + b)
    return out
    """,
    """
    A = X
    for W, b in params[:-1]:
        A = g_hidden(A @ W + b)
    W, b = params[-1]
    return g_out(A @ W + b)
    """,
    """
    A = X
    for l in range(len(params)):
        W, b = params[l]
        Z = A @ W + b
        if l < len(params) - 1:
            A = g_hidden(Z)
        else:
            A = g_out(Z)
    return A
    """,
]
NUMGRAD_OWN = [
    """
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        idx = it.multi_index
        saved = x[idx]
        x[idx] = saved + h
        up = f(x)
        x[idx] = saved - h
        down = f(x)
        x[idx] = saved
        g[idx] = (up - down) / (2 * h)
    return g
    """,
    """
    grad = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = h
        e = e.reshape(x.shape)
        grad.flat[i] = (f(x + e) - f(x - e)) / (2 * h)
    return grad
    """,
]
# What many honest students write for the short exercises, all in the same way.
SHORT = {
    W1: {"w1_predict": "return X @ W + b"},
    W2: {"w2_sigmoid": "return 1 / (1 + np.exp(-z))", "w2_predict_labels": "return (X @ w + b > 0).astype(int)"},
    W3: {
        "w3_relu": "return np.maximum(0, z)",
        "w3_layer_forward": "return g(X @ W + b)",
        "w3_collapse_linear": "return W1 @ W2, b1 @ W2 + b2",
        "w3_softplus": "return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))",
    },
}


# ----- building synthetic classes ---------------------------------------------------
@pytest.fixture(scope="module")
def course_template(tmp_path_factory):
    root = tmp_path_factory.mktemp("similarity") / "course"
    root.mkdir()
    for d in ("source", "release"):
        shutil.copytree(REPO / d, root / d)
    shutil.copy(REPO / "nbgrader_config.py", root)
    return root


@pytest.fixture
def course(course_template, tmp_path):
    return Course.load(copy_course(course_template, tmp_path / "course"))


def hand_in(course, week, student, answers):
    """Submit the week's release notebook with ``answers`` {grade_id: function body} in place of the stubs."""
    nb = student_notebook(course, week, week, solved=set())
    for cell in nb.cells:
        gid = (cell.metadata.get("nbgrader") or {}).get("grade_id")
        if gid in answers:
            assert STUB in cell.source, gid
            body = textwrap.indent(textwrap.dedent(answers[gid]).strip("\n"), "    ")
            cell.source = cell.source.replace(STUB, body)
    submit(course, student, nb, week=week)


def reference(week, gid):
    """The reference solution of ``gid``: the source lines between the solution markers, dedented."""
    nb = nbformat.read(REPO / "source" / week / f"{week}.ipynb", 4)
    (cell,) = [c for c in nb.cells if (c.metadata.get("nbgrader") or {}).get("grade_id") == gid]
    body = cell.source.split("### BEGIN SOLUTION\n")[1].split("### END SOLUTION")[0]
    return textwrap.dedent(body.rsplit("\n", 1)[0])


def library_body(name):
    """The body of course_lib's function ``name`` (without its docstring)."""
    import course_lib

    for path in sorted((REPO / "course_lib").rglob("*.py")):
        source = path.read_text()
        for node in ast.parse(source).body:
            if isinstance(node, ast.FunctionDef) and node.name == name:
                first = node.body[1] if ast.get_docstring(node) else node.body[0]
                return textwrap.dedent("\n".join(source.splitlines()[first.lineno - 1 : node.end_lineno]))
    raise AssertionError(f"course_lib has no {name} ({course_lib.__file__})")


def disguise(code, reorder=True):
    """A planted copy: every local variable renamed, two independent lines swapped, comments and blank lines added."""
    code = textwrap.dedent(code).strip("\n")
    tree = ast.parse(code)
    stored = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    new = {name: f"my_{name.lower()}_value" for name in stored}
    tokens = [
        (t.type, new.get(t.string, t.string)) if t.type == tokenize.NAME else (t.type, t.string)
        for t in tokenize.generate_tokens(io.StringIO(code + "\n").readline)
    ]
    lines = tokenize.untokenize(tokens).splitlines()
    if reorder:
        lines = _swap_independent(lines)
    out = []
    for i, line in enumerate(lines):
        indent = line[: len(line) - len(line.lstrip())]
        out += [f"{indent}# step {i}: as I understood it", line + "  # ok", ""]
    return "\n".join(out)


def _swap_independent(lines):
    """Swap the first two adjacent top-level one-line assignments that do not use each other's names."""
    for i in range(len(lines) - 1):
        a, b = lines[i], lines[i + 1]
        if a[:1].isspace() or b[:1].isspace():
            continue
        try:
            sa, sb = ast.parse(a).body, ast.parse(b).body
        except SyntaxError:
            continue
        if not (sa and sb and isinstance(sa[0], ast.Assign) and isinstance(sb[0], ast.Assign)):
            continue
        sa, sb = sa[0], sb[0]
        names = [{n.id for n in ast.walk(s) if isinstance(n, ast.Name)} for s in (sa, sb)]
        targets = [{n.id for t in s.targets for n in ast.walk(t) if isinstance(n, ast.Name)} for s in (sa, sb)]
        if not (targets[0] & names[1]) and not (targets[1] & names[0]):
            return lines[:i] + [b, a] + lines[i + 2 :]
    raise AssertionError("no two independent lines to swap:\n" + "\n".join(lines))


def findings(report):
    return {(f.student, f.other, f.kind): {m.exercise for m in f.matches} for f in report.findings}


# ----- planted copies are found ----------------------------------------------------------
def test_a_disguised_copy_of_a_classmate_is_flagged_and_honest_alternatives_are_not(course):
    original = {"w1_gradient_descent": GD_OWN[2], **SHORT[W1]}
    hand_in(course, W1, "orig", original)
    hand_in(course, W1, "copier", {gid: disguise(code) for gid, code in original.items() if gid != "w1_predict"})
    hand_in(course, W1, "honest1", {"w1_gradient_descent": GD_OWN[0], **SHORT[W1]})
    hand_in(course, W1, "honest2", {"w1_gradient_descent": GD_OWN[1], **SHORT[W1]})
    copied = disguise(GD_OWN[2])
    assert "my_w_value" in copied and "# step" in copied  # the disguise really renamed and commented

    report = similarity.find_similar(course, W1)

    assert findings(report) == {("copier", "orig", "pair"): {"w1_gradient_descent"}}
    assert report.students == ["copier", "honest1", "honest2", "orig"]


def test_near_copies_of_the_reference_and_of_course_lib_are_flagged_as_such(course):
    hand_in(course, W1, "ref_copier", {"w1_gradient_descent": disguise(reference(W1, "w1_gradient_descent"))})
    hand_in(course, W1, "own_work", {"w1_gradient_descent": GD_OWN[2]})
    hand_in(course, W4, "lib_copier", {"w4_numerical_gradient": disguise(library_body("numerical_gradient"), False)})
    for i, code in enumerate(NUMGRAD_OWN):
        hand_in(course, W4, f"own{i}", {"w4_numerical_gradient": code})

    assert findings(similarity.find_similar(course, W1)) == {
        ("ref_copier", "reference solution", "reference"): {"w1_gradient_descent"}
    }
    week4 = similarity.find_similar(course, W4)
    assert findings(week4) == {("lib_copier", "course_lib", "course_lib"): {"w4_numerical_gradient"}}
    (match,) = week4.findings[0].matches
    assert match.against == "course_lib.gradcheck.numerical_gradient"


def test_students_who_copy_the_whole_reference_week_are_each_listed_once_under_the_reference(course, monkeypatch):
    for student in ("a", "b", "c"):
        submit(course, student, student_notebook(course, W3, W3), week=W3)  # every reference solution
    found = findings(similarity.find_similar(course, W3))
    assert set(found) == {
        ("a", "reference solution", "reference"),
        ("b", "reference solution", "reference"),
        ("c", "reference solution", "reference"),
    }
    assert "w3_relu" not in found["a", "reference solution", "reference"]  # a one-liner never counts
    # Without the reference to explain it, the same code makes three near-identical pairs.
    monkeypatch.setattr(similarity, "reference_code", lambda source: "")
    found = findings(similarity.find_similar(course, W3))
    assert set(found) == {("a", "b", "pair"), ("a", "c", "pair"), ("b", "c", "pair")}


# ----- honest look-alikes are not ------------------------------------------------------------
def _honest_class(course):
    for week, answers in SHORT.items():
        for i in range(5):
            hand_in(course, week, f"student{i}", answers)
        hand_in(course, week, "blank1", {})
        hand_in(course, week, "blank2", {})
    for i, code in enumerate(MLP_OWN):
        hand_in(course, W3, f"mlp{i}", {"w3_mlp_forward": code, **SHORT[W3]})


@pytest.mark.parametrize("week", sorted(SHORT))
def test_the_same_short_solutions_and_untouched_starter_code_are_not_flagged(course, week):
    _honest_class(course)
    report = similarity.find_similar(course, week)
    assert len(report.students) >= 7
    assert report.findings == []


def test_the_honest_class_would_be_flagged_without_the_size_rules_and_the_starter_removal(course, monkeypatch):
    """The two tests above can fail: they pass because of the thresholds and the starter removal."""
    _honest_class(course)
    monkeypatch.setattr(similarity, "MIN_SHARED", 1)
    monkeypatch.setattr(similarity, "FLAG_SHARED", 1)
    found = findings(similarity.find_similar(course, W3))
    assert ("student0", "student1", "pair") in found
    assert ("blank1", "blank2", "pair") not in found  # nothing is left once the starter is removed
    monkeypatch.setattr(similarity, "without_starter", lambda code, starter: code)
    monkeypatch.setattr(similarity, "_boilerplate", lambda starter: None)
    assert ("blank1", "blank2", "pair") in findings(similarity.find_similar(course, W3))


# ----- where it shows ------------------------------------------------------------------------
def _class_with_hostile_ids(course):
    hand_in(course, W1, ESCAPE_ID, {"w1_gradient_descent": GD_OWN[1]})
    hand_in(course, W1, HTML_ID, {"w1_gradient_descent": disguise(GD_OWN[1])})
    hand_in(course, W1, "fair", {"w1_gradient_descent": GD_OWN[0]})
    submit(course, "broken", b'{"cells": [ not json', week=W1)


def test_course_similarity_prints_the_table_with_student_ids_escaped(course):
    _class_with_hostile_ids(course)
    out = io.StringIO()
    with redirect_stdout(out):
        rc = main(["--course", str(course.root), "similarity", W1])
    text = out.getvalue()
    assert rc == 0
    assert "\x1b" not in text and "\x07" not in text
    assert "evil\\x1b]52;c;aGk=\\x07\\x1b[2J" in text
    (row,) = [line for line in text.splitlines() if "w1_gradient_descent" in line]
    assert row.startswith(HTML_ID) and "student evil\\x1b]52" in row
    assert "fair" not in text.split("not compared")[0]
    assert "not compared: broken: not a notebook" in text


def test_the_class_report_has_the_similar_submissions_section_escaped(course):
    _class_with_hostile_ids(course)
    page = write_report(course, W1).read_text()
    section = page.split("<h2>Similar submissions</h2>")[1]
    assert "<img src=x" not in page and "\x1b" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in section and "w1_gradient_descent" in section
    assert "broken" in section
