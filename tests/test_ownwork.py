"""Own work only: an exercise that delegates to course_lib, a notebook helper or a shortcut scores 0.

* fast unit tests of the shared analysis (course_lib/ownwork.py), the runtime tripwire
  (course_lib/_wire.py) and the student's visible warning (course_lib.checks);
* a delegation corpus per week, graded by the real pipeline in one batch: every way of
  delegating costs exactly its exercise, everything else keeps full marks, and honest
  alternative solutions (numpy freely, their own earlier functions, np.linalg.solve) too.
"""

import ast
import linecache
import shutil
import textwrap
from pathlib import Path

import nbformat
import numpy as np
import pytest

from course_lib import _wire
from course_lib.ownwork import Finding, analyze_cells, analyze_function, sentence
from grading.course import Course
from grading.demo import student_notebook
from grading.verdict.notebook import lint, read_spec
from grading.verdict.ownwork import declared, exercises

REPO = Path(__file__).resolve().parents[1]
WEEKS = sorted(p.name for p in (REPO / "source").iterdir() if p.is_dir())
SIG = ["course_lib.nn.activations.sigmoid", "course_lib.nn.activations.ACTIVATIONS"]
SETUP = (
    "import numpy as np\nfrom course_lib import nn\n"
    "from course_lib.nn.activations import sigmoid as reference_sigmoid\n"
    "def library_helper(z):\n    return nn.sigmoid(z)\n"
)
HONEST = (
    "def sigmoid(z):\n    z = np.asarray(z, dtype=float)\n"
    "    return np.exp(np.minimum(z, 0)) / (1 + np.exp(-np.abs(z)))\n"
)


def findings(solution, targets=SIG, others=(), names=("sigmoid",)):
    return analyze_cells(solution, targets, [SETUP], list(others), list(names))


# ----- the static analysis ------------------------------------------------------------
DELEGATIONS = {
    "from-import": "from course_lib.nn.activations import sigmoid",
    "import inside": "def sigmoid(z):\n    from course_lib.nn.activations import sigmoid as s\n    return s(z)",
    "module alias": "import course_lib.nn.activations as A\ndef sigmoid(z):\n    return A.sigmoid(z)",
    "parent module": "from course_lib import nn as N\ndef sigmoid(z):\n    return N.activations.sigmoid(z)",
    "re-export": "def sigmoid(z):\n    return nn.sigmoid(z)",
    "full path": "import course_lib.nn\ndef sigmoid(z):\n    return course_lib.nn.sigmoid(z)",
    "assigned": "sigmoid = nn.sigmoid",
    "registry": "def sigmoid(z):\n    return nn.ACTIVATIONS['sigmoid'](z)",
    "lambda": "sigmoid = lambda z: nn.activations.sigmoid(z)",
}
HELPERS = {
    "reference name": "def sigmoid(z):\n    return reference_sigmoid(z)",
    "library name": "def sigmoid(z):\n    return library_helper(z)",
}
INDIRECT = {
    "importlib": "import importlib\ndef sigmoid(z):\n    return importlib.import_module('course_lib.nn').sigmoid(z)",
    "__import__": "def sigmoid(z):\n    return __import__('course_lib.nn').nn.sigmoid(z)",
    "getattr": "def sigmoid(z):\n    return getattr(nn, 'sig' + 'moid')(z)",
    "globals()": "def sigmoid(z):\n    return globals()['reference_sigmoid'](z)",
    "__dict__": "def sigmoid(z):\n    return nn.__dict__['sigmoid'](z)",
    "sys.modules": "import sys\ndef sigmoid(z):\n    return sys.modules['course_lib.nn'].sigmoid(z)",
    "eval": "def sigmoid(z):\n    return eval('nn.sig' + 'moid')(z)",
    "vars()": "def sigmoid(z):\n    return vars(nn)['sigmoid'](z)",
}


@pytest.mark.parametrize("how", sorted(DELEGATIONS))
def test_every_route_to_the_forbidden_function_is_found(how):
    assert findings(DELEGATIONS[how]) == [Finding("delegates", "course_lib.nn.activations.sigmoid")] or findings(
        DELEGATIONS[how]
    ) == [Finding("delegates", "course_lib.nn.activations.ACTIVATIONS")]


@pytest.mark.parametrize("how", sorted(HELPERS))
def test_the_notebooks_helpers_are_found(how):
    assert Finding("helper", "reference helper") in findings(HELPERS[how])


@pytest.mark.parametrize("how", sorted(INDIRECT))
def test_indirect_access_is_found(how):
    assert Finding("indirect", how) in findings(INDIRECT[how])


def test_a_helper_in_another_cell_is_followed():
    helper = "def squash(z):\n    return nn.activations.sigmoid(z)\n"
    solution = "def sigmoid(z):\n    return squash(z)\n"
    assert findings(solution, others=[helper]) == [Finding("delegates", "course_lib.nn.activations.sigmoid")]
    chained = ["def squash(z):\n    return deeper(z)\n", "def deeper(z):\n    return reference_sigmoid(z)\n"]
    assert Finding("helper", "reference helper") in findings(solution, others=chained)


def test_rebinding_the_exercise_in_another_cell_is_found():
    for other in [
        "sigmoid = nn.sigmoid",
        "from course_lib.nn import sigmoid",
        "def sigmoid(z):\n    return nn.sigmoid(z)",
    ]:
        assert findings(HONEST, others=[other]), other
    assert findings(HONEST, others=["import importlib\nimportlib.reload(np)"]) == [Finding("indirect", "importlib")]
    assert findings(HONEST, others=["import importlib"]) == []  # an import alone is not a use
    aliased = "def sigmoid(z):\n    return imp('course_lib.nn').sigmoid(z)\n"
    assert findings(aliased, others=["from importlib import import_module as imp"]) == [
        Finding("indirect", "importlib")
    ]


def test_honest_code_is_not_flagged():
    assert findings(HONEST) == []
    own_earlier = "def logistic(X, w):\n    return sigmoid(X @ w)\n"  # the student's own sigmoid
    assert findings(own_earlier, others=[HONEST], names=("logistic",)) == []
    # an earlier exercise that itself uses a helper costs that exercise, not this one ...
    lazy = "def sigmoid(z):\n    return reference_sigmoid(z)\n"
    assert (
        analyze_cells(own_earlier, ["course_lib.linear.LogisticRegression"], [SETUP], [lazy], ["logistic"], ["sigmoid"])
        == []
    )
    # ... but this exercise's own targets count wherever they are reached
    assert analyze_cells(own_earlier, SIG, [SETUP], [lazy], ["logistic"], ["sigmoid"]) == [
        Finding("delegates", "course_lib.nn.activations.sigmoid")
    ]
    shadow = "def sigmoid(z, nn=None, getattr=abs):\n    return 1 / (1 + np.exp(-z))\n"
    assert findings(shadow) == []
    other_course_lib = "def sigmoid(z):\n    return 1 / (1 + np.exp(-nn.relu(z) + nn.relu(-z)))\n"
    assert findings(other_course_lib) == []  # course_lib helpers that are not the exercise
    ne = ["course_lib.linear.normal_equation", "numpy.linalg.lstsq", "numpy.linalg.pinv"]
    solve = "def normal_equation(X, y):\n    from numpy.linalg import solve\n    return solve(X.T @ X, X.T @ y)\n"
    assert findings(solve, ne, names=("normal_equation",)) == []
    lstsq = "def normal_equation(X, y):\n    return np.linalg.lstsq(X, y, rcond=None)[0]\n"
    assert findings(lstsq, ne, names=("normal_equation",)) == [Finding("delegates", "numpy.linalg.lstsq")]


def test_feedback_is_a_fixed_sentence_naming_only_the_declared_target():
    s = sentence(Finding("delegates", "course_lib.nn.activations.sigmoid"))
    assert s == "This exercise calls course_lib's own sigmoid instead of your implementation, so it earns no points."
    # a student's helper name never appears: only trusted words
    text = sentence(findings("def sigmoid(z):\n    return reference_EVIL_NAME(z)")[0])
    assert "EVIL" not in text and "reference helper" in text


# ----- the runtime tripwire -----------------------------------------------------------
def _cell(source, ns, name):
    """Run ``source`` as a notebook cell would (its own file name, __main__ globals)."""
    filename = f"<cell-{name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), ns)


def test_the_tripwire_reports_calls_made_by_the_exercise_only(monkeypatch):
    sent = []
    monkeypatch.setattr(_wire, "_publish", lambda mime, payload: sent.append((mime, payload)))
    ns = {"__name__": "__main__"}
    _cell("from course_lib import nn\nimport numpy as np\n", ns, "setup")
    _cell("def sigmoid(z):\n    return nn.sigmoid(z)\n", ns, "solution")
    test = (
        "from course_lib._wire import arm, disarm\n"
        "arm('w2_sigmoid_tests', ['course_lib.nn.activations.sigmoid'], ['sigmoid'])\n"
        "x = nn.sigmoid(np.zeros(2))\n"  # the test's own call: not the student's
        "y = sigmoid(np.zeros(2))\n"
        "disarm()\n"
    )
    _cell(test, ns, "tests")
    assert sent == [(_wire.OWNWORK_MIME, {"cell": "w2_sigmoid_tests", "tripped": 0})]
    import course_lib.nn

    assert course_lib.nn.sigmoid.__module__ == "course_lib.nn.activations"  # put back
    sent.clear()
    _cell("def sigmoid(z):\n    return 1 / (1 + np.exp(-z))\n", ns, "honest")
    _cell(test, ns, "tests2")
    assert sent == []
    _cell("sigmoid = nn.sigmoid\n", ns, "rebound")
    _cell(test, ns, "tests3")
    assert sent == [(_wire.OWNWORK_MIME, {"cell": "w2_sigmoid_tests", "tripped": 0})]


# ----- the student's visible warning ----------------------------------------------------
@pytest.fixture
def sigmoid_week(tmp_path, monkeypatch):
    """The student's folder: a notebook whose sigmoid must not delegate to course_lib's."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("def sigmoid(z):\n    ### BEGIN SOLUTION\n    pass\n    ### END SOLUTION\n")
    cell.metadata = {"nbgrader": {"solution": True, "grade_id": "w2_sigmoid"}, "course": {"not_delegate": SIG}}
    nb.cells.append(cell)
    nbformat.write(nb, tmp_path / "week.ipynb")
    monkeypatch.chdir(tmp_path)


DELEGATING_WARNING = "✘ sigmoid uses course_lib's own sigmoid: write your own to earn the points"
TWO_CHECKS = (
    "check_close('σ(0)', sigmoid(np.zeros(1)), [0.5])\ncheck_close('σ(0) again', sigmoid(np.zeros(1)), [0.5])\n"
)


def test_the_visible_check_warns_with_the_same_rules(sigmoid_week, capsys):
    from course_lib.checks import check_close

    ns = {"__name__": "__main__", "check_close": check_close}
    _cell("from course_lib import nn\nimport numpy as np\n", ns, "v-setup")
    _cell("def sigmoid(z):\n    return nn.sigmoid(z)\n", ns, "v-solution")
    _cell("check_close('σ(0)', sigmoid(np.zeros(1)), [0.5])\n", ns, "v-tests")
    out = capsys.readouterr().out
    assert DELEGATING_WARNING in out
    _cell(HONEST, ns, "v-honest")
    _cell("check_close('σ(0)', sigmoid(np.zeros(1)), [0.5])\n", ns, "v-tests2")
    assert "✘" not in capsys.readouterr().out
    assert analyze_function(ns["sigmoid"], SIG) == []


def test_every_run_of_a_test_cell_warns_once(sigmoid_week, capsys):
    """Once per run, though the last run's frame is gone and a new frame may take over its id."""
    from course_lib.checks import check_close

    ns = {"__name__": "__main__", "check_close": check_close}
    _cell("from course_lib import nn\nimport numpy as np\n", ns, "r-setup")
    _cell("def sigmoid(z):\n    return nn.sigmoid(z)\n", ns, "r-solution")
    capsys.readouterr()
    for run in range(3):
        _cell(TWO_CHECKS, ns, f"r-tests{run}")
        assert capsys.readouterr().out.count(DELEGATING_WARNING) == 1, run


def test_every_run_of_a_test_cell_in_ipython_warns_once(sigmoid_week, monkeypatch, capsys):
    """IPython compiles one cell into several code objects (its last expression apart): still one warning."""
    import sys

    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])  # the shell takes it over
    config = Config()
    config.HistoryManager.enabled = False  # nothing written to ~/.ipython
    shell = InteractiveShell.instance(config=config)
    try:
        setup = "from course_lib import nn\nimport numpy as np\nfrom course_lib.checks import check_close\n"
        assert shell.run_cell(setup + "def sigmoid(z):\n    return nn.sigmoid(z)\n", store_history=True).success
        capsys.readouterr()
        for run in range(2):
            assert shell.run_cell(TWO_CHECKS, store_history=True).success
            assert capsys.readouterr().out.count(DELEGATING_WARNING) == 1, run
    finally:
        InteractiveShell.clear_instance()


# ----- the declarations in the course ---------------------------------------------------
@pytest.mark.parametrize("week", WEEKS)
def test_every_exercise_declares_what_it_must_not_delegate_to(week):
    spec = read_spec(REPO / "source" / week / f"{week}.ipynb")
    solutions = [c for c in spec.cells if c.role == "solution" and c.cell_type == "code"]
    assert solutions and all(declared(c.metadata) is not None for c in solutions)
    assert [p for p in lint(spec) if "not_delegate" in p or "delegate" in p] == []
    tested = {t for _targets, _names, tests in exercises(spec).values() for t in tests}
    assert tested == {c.grade_id for c in spec.test_cells}


# ----- the corpus, graded by the real pipeline ------------------------------------------
# Per week: (extra trusted setup line that an older release had, {exercise: delegating source},
# extra student cells, {exercise: honest alternative}). Each delegation returns correct values.
CORPUS = {
    "week1_linear_regression": (
        "from course_lib.linear import normal_equation as reference_normal_equation",
        {
            "w1_neuron_output": "from course_lib.nn.activations import sigmoid\n\n"
            "def neuron_output(x, w):\n    return sigmoid(x @ w)\n",
            "w1_predict": "from course_lib.nn.layers import dense_forward\n\n"
            "def predict(X, W, b):\n    return dense_forward(X, W, b)[0]\n",
            "w1_mse_loss": "import course_lib.nn.losses as L\n\n"
            "def mse_loss(y_hat, y):\n    return L.mse_loss(y_hat, y)[0]\n",
            "w1_mse_gradient": "def mse_gradient(X, y, W, b):\n    return my_numeric_grads(X, y, W, b)\n",
            "w1_normal_equation": "def normal_equation(X, y):\n    return reference_normal_equation(X, y)\n",
            "w1_standardize": "import importlib\n\ndef standardize(X_train, X_test):\n"
            "    return importlib.import_module('course_lib.data').standardize(X_train, X_test)\n",
        },
        "from course_lib import gradcheck\n\ndef my_numeric_grads(X, y, W, b):\n"
        "    f = lambda W_, b_: np.sum((X @ W_ + b_ - y) ** 2) / (2 * len(X))\n"
        "    return (gradcheck.numerical_gradient(lambda V: f(V, b), W.astype(float).copy()),\n"
        "            gradcheck.numerical_gradient(lambda v: f(W, v), b.astype(float).copy()))\n",
        {
            "w1_neuron_output": "def neuron_output(x, w):\n    return 1.0 / (1.0 + np.exp(-np.dot(x, w)))\n",
            "w1_predict": "def predict(X, W, b):\n    return np.dot(X, W) + b[None, :]\n",
            "w1_mse_loss": "def mse_loss(y_hat, y):\n    return float(np.mean(np.sum((y_hat - y) ** 2, axis=1)) / 2)\n",
            "w1_normal_equation": "from numpy.linalg import solve\n\ndef normal_equation(X, y):\n"
            "    Xt = np.column_stack([np.ones(len(X)), X])\n    theta = solve(Xt.T @ Xt, Xt.T @ y)\n"
            "    return theta[1:], theta[0]\n",
            "w1_gradient_descent": "def gradient_descent(X, y, alpha, n_steps):\n"
            "    W, b = np.zeros((X.shape[1], y.shape[1])), np.zeros(y.shape[1])\n    losses = []\n"
            "    for _ in range(n_steps):\n        losses.append(mse_loss(predict(X, W, b), y))\n"
            "        dW, db = mse_gradient(X, y, W, b)\n        W, b = W - alpha * dW, b - alpha * db\n"
            "    return W, b, np.array(losses)\n",
        },
    ),
    "week2_logistic_regression": (
        "from course_lib.nn.activations import sigmoid as reference_sigmoid",
        {
            "w2_sigmoid": "def sigmoid(z):\n    return reference_sigmoid(z)\n",
            "w2_softmax": "from course_lib.nn.activations import softmax\n",
            "w2_one_hot": "from course_lib import data\n\n"
            "def one_hot(y, n_classes):\n    return data.one_hot(y, n_classes)\n",
            "w2_predict_labels": "import importlib\n\ndef predict_labels(X, w, b):\n"
            "    a = importlib.import_module('course_lib.nn.activations').sigmoid(X @ w + b)\n"
            "    return (a > 0.5).astype(np.int64)\n",
            "w2_perceptron_step": "def perceptron_step(w, b, x, y, eta):\n    return my_step(w, b, x, y, eta)\n",
            "w2_train_perceptron": "def train_perceptron(X, y, eta=0.5, epochs=12):\n"
            "    p = _P(learning_rate=eta, max_epochs=epochs, shuffle=False).fit(X, y)\n"
            "    return p.w, p.b, np.array(p.errors_)\n",
            "w2_train_softmax_regression": "from course_lib.linear import SoftmaxRegression\n\n"
            "def train_softmax_regression(X, y, n_classes, alpha=0.5, epochs=150):\n"
            "    s = SoftmaxRegression(learning_rate=alpha, epochs=epochs).fit(X, y, n_classes)\n"
            "    return s.W, s.b, s.losses_\n",
        },
        "from course_lib.linear import Perceptron as _P\n\ndef my_step(w, b, x, y, eta):\n"
        "    p = _P(learning_rate=eta)\n    o = 1 if np.dot(w, x) + b > 0 else -1\n"
        "    return w + eta * (y - o) * x, b + eta * (y - o)\n",
        {
            "w2_logistic_gradient": "def logistic_gradient(X, y, w, b):\n    e = sigmoid(X @ w + b) - y\n"
            "    return e @ X / len(y), float(np.mean(e))\n",
            "w2_cross_entropy": "def cross_entropy(P, Y, eps=1e-15):\n"
            "    return float(-np.mean(np.sum(Y * np.log(np.clip(P, eps, None)), axis=1)))\n",
            "w2_train_perceptron": "def train_perceptron(X, y, eta=0.5, epochs=12):\n"
            "    w, b, mistakes = np.zeros(X.shape[1]), 0.0, []\n"
            "    while len(mistakes) < epochs and (not mistakes or mistakes[-1] > 0):\n"
            "        mistakes.append(0)\n        for x_i, y_i in zip(X, y):\n"
            "            w_new, b_new = perceptron_step(w, b, x_i, y_i, eta)\n"
            "            mistakes[-1] += int(b_new != b)\n            w, b = w_new, b_new\n"
            "    return w, b, np.asarray(mistakes)\n",
            "w2_softmax_regression_gradient": "def softmax_regression_gradient(X, Y, W, b):\n"
            "    dZ = softmax(np.dot(X, W) + b)\n    dZ -= Y\n    dZ /= len(X)\n"
            "    return np.dot(X.T, dZ), np.sum(dZ, axis=0)\n",
            "w2_train_softmax_regression": "def train_softmax_regression(X, y, n_classes, alpha=0.5, epochs=150):\n"
            "    Y, W, b = one_hot(y, n_classes), np.zeros((X.shape[1], n_classes)), np.zeros(n_classes)\n"
            "    losses = np.empty(epochs)\n    for t in range(epochs):\n"
            "        losses[t] = cross_entropy(softmax(X @ W + b), Y)\n"
            "        dW, db = softmax_regression_gradient(X, Y, W, b)\n"
            "        W -= alpha * dW\n        b -= alpha * db\n    return W, b, losses\n",
        },
    ),
    "week3_multilayer_perceptron": (
        "from course_lib.nn.activations import softplus as reference_softplus",
        {
            "w3_relu": "import importlib\n\ndef relu(z):\n"
            "    return importlib.import_module('course_lib.nn.activations').relu(z)\n",
            "w3_softplus": "def softplus(z):\n    return reference_softplus(z)\n",
            "w3_layer_forward": "def layer_forward(X, W, b, g):\n    return g(my_affine(X, W, b))\n",
        },
        "import course_lib.nn.layers as layers\n\n"
        "def my_affine(X, W, b):\n    return layers.dense_forward(X, W, b)[0]\n",
        {
            "w3_mlp_forward": "def mlp_forward(X, params, g_hidden, g_out):\n    A = X\n"
            "    for l, (W, b) in enumerate(params):\n"
            "        A = layer_forward(A, W, b, g_out if l == len(params) - 1 else g_hidden)\n    return A\n",
            "w3_collapse_linear": "def collapse_linear(W1, b1, W2, b2):\n"
            "    return np.dot(W1, W2), np.dot(b1, W2) + b2\n",
            "w3_xor": "def xor_weights(w_and, b_and, w_or, b_or):\n    a, c = w_and\n"
            "    return ((np.array([[-a, a], [c, -c]]), np.array([a + b_and, c + b_and])),\n"
            "            (np.array(w_or, dtype=float)[:, None], np.array([b_or], dtype=float)))\n",
            "w3_count_parameters": "def count_parameters(layer_sizes):\n"
            "    return int(sum(a * b + b for a, b in zip(layer_sizes[:-1], layer_sizes[1:])))\n",
        },
    ),
    "week4_backpropagation": (
        "from course_lib.gradcheck import numerical_gradient as reference_numerical_gradient",
        {
            "w4_dense_backward": "from course_lib.nn.layers import dense_backward as _db\n\n"
            "def dense_backward(dZ, A_prev, W):\n    return _db(dZ, (A_prev, W))\n",
            "w4_numerical_gradient": "def numerical_gradient(f, x, h=1e-5):\n"
            "    return reference_numerical_gradient(f, x, h)\n",
            "w4_value_tanh": "from course_lib.nn.activations import tanh as _tanh\n\ndef value_tanh(a):\n"
            "    t = float(_tanh(np.array([a.data]))[0])\n    out = Value(t, (a,))\n\n    def _backward():\n"
            "        a.grad += (1 - t ** 2) * out.grad\n\n    out._backward = _backward\n    return out\n",
            "w4_two_layer_backprop": "def two_layer_backprop(X, Y, params, cache):\n"
            "    return my_grads(X, Y, params)\n",
            "w4_forward_with_caches": "import importlib\n\ndef forward_with_caches(X, params, activation='sigmoid'):\n"
            "    layers = importlib.import_module('course_lib.nn.layers')\n"
            "    g = nn.get_activation(activation)\n    A, caches = X, []\n"
            "    for l, (W, b) in enumerate(params):\n        Z = layers.dense_forward(A, W, b)[0]\n"
            "        A_next = softmax(Z) if l == len(params) - 1 else g(Z)\n"
            "        caches.append((A, Z, A_next))\n        A = A_next\n    return A, caches\n",
        },
        "import course_lib.nn as cnn\n\ndef my_grads(X, Y, params):\n    (W1, b1), (W2, b2) = params\n"
        "    net = cnn.Sequential([cnn.Dense(W1.shape[1], activation='sigmoid', input_dim=X.shape[1]),\n"
        "                          cnn.Dense(W2.shape[1], activation='softmax')], seed=0)\n"
        "    net.compile(loss='categorical_crossentropy')\n"
        "    net.set_weights([W1, b1, W2, b2])\n"
        "    _, (dW1, db1, dW2, db2) = net.gradients(X, Y)\n"
        "    return [(dW1, db1), (dW2, db2)]\n",
        {
            "w4_mlp_backward": None,  # the solution, which uses nn.get_activation: a helper that is not the exercise
            "w4_value_add": "def value_add(a, b):\n    out = Value(a.data + b.data, {a, b})\n\n    def _backward():\n"
            "        a.grad += 1.0 * out.grad\n        b.grad += 1.0 * out.grad\n\n"
            "    out._backward = _backward\n    return out\n",
            "w4_value_backward": "def value_backward(root):\n    nodes, stack = {}, [root]\n    while stack:\n"
            "        v = stack.pop()\n        if id(v) not in nodes:\n            nodes[id(v)] = v\n"
            "            stack.extend(v._prev)\n    users = {k: 0 for k in nodes}\n    for v in nodes.values():\n"
            "        for p in v._prev:\n            users[id(p)] += 1\n    ready, root.grad = [root], 1.0\n"
            "    while ready:\n        v = ready.pop()\n        v._backward()\n        for p in v._prev:\n"
            "            users[id(p)] -= 1\n            if users[id(p)] == 0:\n                ready.append(p)\n",
            "w4_train": "def train(X, Y, params, grad_fn, lr=0.5, epochs=10, batch_size=32, seed=0):\n"
            "    rng = np.random.default_rng(seed)\n"
            "    p = [(np.array(W, copy=True), np.array(b, copy=True)) for W, b in params]\n"
            "    losses = []\n    for _ in range(epochs):\n        order = rng.permutation(len(X))\n        seen = []\n"
            "        for i in range(0, len(X), batch_size):\n            idx = order[i:i + batch_size]\n"
            "            loss, g = grad_fn(X[idx], Y[idx], p)\n            seen.append(loss)\n"
            "            for (W, b), (dW, db) in zip(p, g):\n"
            "                W -= lr * dW\n                b -= lr * db\n"
            "        losses.append(float(np.mean(seen)))\n"
            "    return p, losses\n",
        },
    ),
    "week5_training_deep_networks": (
        "from course_lib.nn.initializers import he_normal as reference_he_init",
        {
            "w5_init": "from course_lib.nn.initializers import glorot_normal\n\n"
            "def glorot_init(n_in, n_out, rng):\n    return glorot_normal((n_in, n_out), seed=rng)\n\n"
            "def he_init(n_in, n_out, rng):\n    return reference_he_init((n_in, n_out), seed=rng)\n",
            "w5_l2": "from course_lib.nn import Dense\n\ndef l2_penalty(weights, lam):\n    total = 0.0\n"
            "    for W in weights:\n        layer = Dense(1, l2=lam)\n        layer.W = W\n"
            "        total += layer.penalty()\n"
            "    return float(total)\n\ndef l2_gradients(dWs, weights, lam):\n"
            "    return [dW + 2 * lam * W for dW, W in zip(dWs, weights)]\n",
            "w5_dropout": "from course_lib import nn as N\n\ndef dropout_forward(A, keep_prob, rng, training=True):\n"
            "    if not training:\n        return A, None\n    layer = N.Dropout(1.0 - keep_prob, seed=rng)\n"
            "    layer.build(A.shape[1], rng, np.float64)\n"
            "    scaled = layer.forward(np.ones(A.shape), training=True)\n"
            "    return A * scaled, scaled > 0\n\ndef dropout_backward(dA_drop, mask, keep_prob):\n"
            "    return dA_drop * mask / keep_prob\n",
            "w5_momentum": "def momentum_step(W, dW, v, lr=0.01, mu=0.9):\n    return my_sgd(W, dW, v, lr, mu)\n",
            "w5_adam": "import importlib\n\n"
            "def adam_step(W, dW, m, s, t, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-7):\n"
            "    Adam = importlib.import_module('course_lib.nn.optimizers').Adam\n"
            "    opt = Adam(lr, beta1, beta2, eps * np.sqrt(1 - beta2 ** t))\n"
            "    opt._m, opt._s, opt._t = [np.array(m, dtype=float)], [np.array(s, dtype=float)], t - 1\n"
            "    W = np.array(W, dtype=float)\n    opt.update([W], [dW])\n    return W, opt._m[0], opt._s[0]\n",
        },
        "from course_lib.nn.optimizers import SGD as _SGD\n\ndef my_sgd(W, dW, v, lr, mu):\n"
        "    opt = _SGD(lr, momentum=mu)\n    W = np.array(W, dtype=float)\n"
        "    opt._velocity = [np.array(v, dtype=float)]\n"
        "    opt.update([W], [dW])\n    return W, opt._velocity[0]\n",
        {
            "w5_init": "def glorot_init(n_in, n_out, rng):\n"
            "    return rng.normal(0.0, np.sqrt(2 / (n_in + n_out)), size=(n_in, n_out))\n\n"
            "def he_init(n_in, n_out, rng):\n    return rng.normal(0.0, np.sqrt(2 / n_in), size=(n_in, n_out))\n",
            "w5_early_stopping": "def train_with_early_stopping(params, step, val_loss, max_epochs, patience):\n"
            "    best, best_epoch, best_params, losses, epoch = float('inf'), 0, None, [], 0\n"
            "    while epoch < max_epochs and epoch - best_epoch < patience:\n        epoch += 1\n"
            "        params = step(params)\n        losses.append(val_loss(params))\n        if losses[-1] < best:\n"
            "            best, best_epoch = losses[-1], epoch\n"
            "            best_params = [(np.array(W, copy=True), np.array(b, copy=True)) for W, b in params]\n"
            "    return best_params, best_epoch, losses\n",
            "w5_clip": "def clip_by_global_norm(grads, max_norm):\n"
            "    norm = float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads)))\n    if norm <= max_norm:\n"
            "        return [np.array(g, dtype=float) for g in grads], norm\n"
            "    return [g * (max_norm / norm) for g in grads], norm\n",
        },
    ),
    "week6_convolution": (
        "from course_lib.nn.conv import conv_forward as reference_conv_forward",
        {
            "w6_conv2d_loops": "from course_lib.nn.conv import conv_forward\n\ndef conv2d_loops(X, K):\n"
            "    Z, _ = conv_forward(X[None, :, :, None] * 1.0, K[:, :, None, None] * 1.0, np.zeros(1))\n"
            "    return Z[0, :, :, 0]\n",
            "w6_conv2d_vectorized": "def conv2d_vectorized(X, K):\n"
            "    Z, _ = reference_conv_forward(X[None, :, :, None] * 1.0, K[:, :, None, None] * 1.0, np.zeros(1))\n"
            "    return Z[0, :, :, 0]\n",
            "w6_conv_output_size": "from course_lib.nn.conv import output_size\n\n"
            "def conv_output_size(n, k, p=0, s=1):\n    return output_size(n + 2 * p, k, s, 'valid')\n",
            "w6_max_pool_forward": "from course_lib.nn import conv as C\n\ndef max_pool_forward(X):\n"
            "    return C.maxpool_forward(X[None, :, :, None] * 1.0)[0][0, :, :, 0]\n",
            "w6_conv2d_backward": "def conv2d_backward(dZ, X, K):\n    return my_backward(dZ, X, K)\n",
        },
        "import course_lib.nn.conv as conv_lib\n\ndef my_backward(dZ, X, K):\n"
        "    _, cache = conv_lib.conv_forward(X[None, :, :, None] * 1.0, K[:, :, None, None] * 1.0, np.zeros(1))\n"
        "    dX, dK, db = conv_lib.conv_backward(dZ[None, :, :, None] * 1.0, cache)\n"
        "    return dX[0, :, :, 0], dK[:, :, 0, 0], float(db[0])\n",
        {
            "w6_conv2d": "def conv2d(X, K, padding=0, stride=1):\n"
            "    Xp = np.pad(np.asarray(X, dtype=float), padding)\n    kh, kw = K.shape\n"
            "    oh, ow = (Xp.shape[0] - kh) // stride + 1, (Xp.shape[1] - kw) // stride + 1\n"
            "    Z = np.empty((oh, ow))\n    for i in range(oh):\n        for j in range(ow):\n"
            "            r, c = i * stride, j * stride\n"
            "            Z[i, j] = np.sum(Xp[r:r + kh, c:c + kw] * K)\n    return Z\n",
            "w6_max_pool_backward": "def max_pool_backward(dA, X):\n    oh, ow = dA.shape\n"
            "    blocks = X[:2 * oh, :2 * ow].reshape(oh, 2, ow, 2).transpose(0, 2, 1, 3).reshape(oh, ow, 4)\n"
            "    mask = np.arange(4) == blocks.argmax(axis=2)[..., None]\n    dX = np.zeros(X.shape)\n"
            "    routed = (mask * dA[..., None]).reshape(oh, ow, 2, 2).transpose(0, 2, 1, 3)\n"
            "    dX[:2 * oh, :2 * ow] = routed.reshape(2 * oh, 2 * ow)\n    return dX\n",
            "w6_conv_dense_params": "def conv_dense_params(h, w, c_in, k, filters):\n"
            "    out = (h - k + 1) * (w - k + 1) * filters\n"
            "    return (k * k * c_in + 1) * filters, (h * w * c_in + 1) * out\n",
        },
    ),
}


def _course(tmp_path, week, setup_line):
    """A copy of the course with one week; its setup cell binds a reference_* helper, as older releases did."""
    from grading.authoring.release import release

    root = tmp_path / "course"
    (root / "source").mkdir(parents=True)
    shutil.copytree(REPO / "source" / week, root / "source" / week)
    shutil.copy(REPO / "nbgrader_config.py", root)
    path = root / "source" / week / f"{week}.ipynb"
    nb = nbformat.read(path, 4)
    setup = next(c for c in nb.cells if (c.metadata.get("nbgrader") or {}).get("grade_id", "").endswith("_setup"))
    setup.source += "\n" + setup_line + "\n"
    nbformat.write(nb, path)
    course = Course.load(root)
    release(course, week)
    return course


def _submit(course, week, student, replaced, extra=None):
    nb = student_notebook(course, week, week)
    first = None
    for i, cell in enumerate(nb.cells):
        gid = (cell.metadata.get("nbgrader") or {}).get("grade_id")
        if gid in replaced and replaced[gid] is not None:
            cell.source = replaced[gid]
        if first is None and gid and gid.endswith("_setup"):
            first = i
    if extra:  # the student's own cell, right after the setup
        nb.cells.insert(first + 1, nbformat.v4.new_code_cell(extra))
    d = course.submitted(student, week)
    d.mkdir(parents=True)
    nbformat.write(nb, d / f"{week}.ipynb")
    (d / "timestamp.txt").write_text("2026-02-01 12:00:00.000000 UTC")


def _scores(course, week, student):
    from grading.pipeline import collect_results

    result = collect_results(course, week)[student]
    assert result["status"] == "graded", result.get("reason")
    return {
        c["grade_id"]: (c["points"], c["max_points"], c["messages"], [ch["passed"] for ch in c["checks"]])
        for nb in result["notebooks"].values()
        for c in nb["cells"]
    }


@pytest.mark.slow
@pytest.mark.parametrize("week", WEEKS)
def test_delegating_exercises_score_zero_and_honest_ones_full_marks(week, tmp_path):
    from grading.pipeline import grade_week
    from grading.sandbox.layers import Limits

    setup_line, delegating, extra, honest = CORPUS[week]
    course = _course(tmp_path, week, setup_line)
    _submit(course, week, "delegator", delegating, extra)
    _submit(course, week, "honest_alt", honest)
    limits = Limits(cell_seconds=60, notebook_seconds=400, memory_mb=1024, cpu_seconds=300)
    summary = grade_week(course, week, workers=0, progress=False, limits=limits)
    assert not summary.failed
    spec = read_spec(course.source(week) / f"{week}.ipynb")
    tests_of = {gid: tests for gid, (_t, _n, tests) in exercises(spec).items()}
    scores = _scores(course, week, "delegator")
    for gid, tests in tests_of.items():
        for t in tests:
            points, max_points, messages, checks = scores[t]
            if gid in delegating:
                # every check passes: without the own-work rule this delegation earned full marks
                assert checks and all(checks), (t, messages)
                assert points == 0, (t, messages)
                assert messages and messages[0].startswith("This exercise "), (t, messages)
                assert "earns no points" in messages[0]
            else:
                assert points == max_points, (t, messages)
    honest_scores = _scores(course, week, "honest_alt")
    assert all(v[0] == v[1] for v in honest_scores.values()), {k: v for k, v in honest_scores.items() if v[0] != v[1]}


def test_corpus_delegations_are_real_code():
    """Every corpus cell parses, so a 0 comes from the check, never from a syntax error."""
    for _setup, delegating, extra, honest in CORPUS.values():
        for src in [*delegating.values(), extra, *(s for s in honest.values() if s)]:
            ast.parse(textwrap.dedent(src))
    assert np  # numpy is used by the corpus cells at grading time


def test_a_long_cell_is_parsed_but_not_kept_for_later_submissions():
    """A worker grades many submissions: the course's cells are remembered, a huge student cell is not."""
    from course_lib import ownwork

    short, long = "y = 2\n", "x = 1\n" + "#" * (70 * 1024) + "\n"
    assert ownwork.parse_once(short) is ownwork.parse_once(short)
    assert ownwork.parse_once(long) is not None
    assert ownwork.parse_once(long) is not ownwork.parse_once(long)  # parsed each time
    imports, statements = ownwork.cell_bindings(long)
    assert imports == [] and [name for name, _node in statements] == ["x"]
    assert ownwork.cell_bindings(long) is not ownwork.cell_bindings(long)
