"""The mutation operators of tests/mutation.py: each plants the bug it names, only inside the
solution regions, and an in-place mutant on a parameter that holds no array is left out."""

import nbformat
import pytest

from tests.mutation import analyse, mutants_of


def _cell(body, signature="f(A, B, n, lr=0.1)"):
    lines = "\n".join("    " + ln for ln in body.strip().splitlines())
    return f"def {signature}:\n    ### BEGIN SOLUTION\n{lines}\n    ### END SOLUTION\n"


def _mutants(source):
    return {(m.operator, m.before, m.after) for m, _ in mutants_of(source, "w9_f")}


@pytest.mark.parametrize(
    "body, expected",
    [
        ("s = 0\ns += B\nreturn s", ("flip += / -=", "s += B", "s -= B")),
        ("s = 0\ns -= B\nreturn s", ("flip += / -=", "s -= B", "s += B")),
        ("return (A - B) ** 2", ("drop **", "(A - B) ** 2", "A - B")),
        ("return A.sum(axis=0)", ("drop axis=", "A.sum(axis=0)", "A.sum()")),
        ("return np.max(A, axis=1)", ("drop axis=", "np.max(A, axis=1)", "np.max(A)")),
        ("return np.max(A)", ("max -> min", "np.max", "np.min")),
        ("return np.minimum(A, 0.0)", ("minimum -> maximum", "np.minimum", "np.maximum")),
        ("return A.argmax()", ("argmax -> argmin", "A.argmax", "A.argmin")),
        ("return max(n, 1)", ("max -> min", "max(n, 1)", "min(n, 1)")),
        ("return A < B", ("reversed comparison", "A < B", "A > B")),
        ("return A >= B", ("reversed comparison", "A >= B", "A <= B")),
        ("A = A - B\nreturn A", ("in-place on a parameter", "A = A - B", "A -= B")),
        ("Z = A / n\nreturn Z", ("in-place on a parameter", "Z = A / n", "A /= n; Z = A")),
        ("return (A - B) / n", ("in-place on a parameter", "return (A - B) / n", "A -= B; return A / n")),
        ("A[0] = A[0] - B\nreturn A", ("in-place on a parameter", "A[0] = A[0] - B", "A[0] -= B")),
        ("return np.sum(A, axis=0)", ("drop axis=", "np.sum(A, axis=0)", "np.sum(A)")),
        ("return np.mean(A, axis=1)", ("drop axis=", "np.mean(A, axis=1)", "np.mean(A)")),
        ("return np.mean(A, axis=1)", ("wrong axis", "axis=1", "axis=0")),
        ("return np.sum(A, axis=0)", ("sum -> mean", "np.sum", "np.mean")),
    ],
)
def test_each_new_operator_plants_its_bug(body, expected):
    assert expected in _mutants(_cell(body))


@pytest.mark.parametrize("call", ["np.sum(A, axis=0)", "np.mean(A, axis=1)", "A.sum(axis=0)", "np.sum(A)"])
def test_sum_for_mean_is_planted_once(call):
    cell = _cell(f"return {call}")
    swapped = cell.replace("sum", "@").replace("mean", "sum").replace("@", "mean").strip()
    assert [new.strip() for _, new in mutants_of(cell, "w9_f")].count(swapped) == 1


def test_no_two_mutants_are_the_same_program():
    # axis=1 -> axis=0 was also planted as "wrong constant"; c * B * B drops the same B twice.
    cell = _cell("return np.mean(A, axis=1) + (1 - n) * B * B")
    new = [new for _, new in mutants_of(cell, "w9_f")]
    assert len(new) == len(set(new)) > 5
    assert ("wrong axis", "axis=1", "axis=0") in _mutants(cell)


def _in_place(source):
    return {(before, after) for op, before, after in _mutants(source) if op == "in-place on a parameter"}


@pytest.mark.parametrize(
    "body, expected",
    [
        # After `A = A - B`, A is a new local array: `A *= n` there changes no caller.
        ("A = A - B\nC = A * n\nreturn C", {("A = A - B", "A -= B")}),
        ("A, C = (A - B, B)\nreturn A / n", {("A, C = (A - B, B)", "A -= B; A, C = (A, B)")}),
        ("for A in B:\n    C = A * n\nreturn C", set()),
        # A view or alias of the caller's array is still the caller's array.
        ("A = A.T\nC = A * n\nreturn C", {("C = A * n", "A *= n; C = A")}),
        ("A = np.asarray(A)\nreturn A - B", {("return A - B", "A -= B; return A")}),
    ],
)
def test_in_place_is_planted_only_while_the_name_is_the_callers_object(body, expected):
    assert _in_place(_cell(body)) == expected


def test_a_parameter_rebound_above_the_solution_region_is_not_the_callers_object():
    source = "def f(A, B):\n    A = A - B\n    ### BEGIN SOLUTION\n    return A * B\n    ### END SOLUTION\n"
    assert _in_place(source) == set()
    assert _in_place(source.replace("A = A - B", "C = A - B")) == {("return A * B", "A *= B; return A")}


def test_in_place_is_not_planted_on_a_copy_a_local_or_a_scalar_default():
    found = _mutants(_cell("A = A.copy()\nC = A * 2\nA = A - C\nC = C - lr\nreturn A - lr"))
    in_place = [m for m in found if m[0] == "in-place on a parameter"]
    assert in_place == [], in_place  # A is a copy, C a local, lr has a constant default


def test_every_solution_region_of_a_cell_is_mutated():
    source = _cell("return A + B") + "\n\n" + _cell("return A - B", "g(A, B)")
    befores = {before for _, before, _ in _mutants(source)}
    assert {"A + B", "A - B"} <= befores


def test_code_outside_the_solution_region_is_never_mutated():
    source = "def f(A, B):\n    C = A - B\n    ### BEGIN SOLUTION\n    return C\n    ### END SOLUTION\n"
    assert _mutants(source) == set()


def _notebook(tmp_path, solution, tests):
    nb = nbformat.v4.new_notebook()
    setup = nbformat.v4.new_code_cell(
        "import numpy as np\ndef check_close(name, actual, expected):\n    assert np.allclose(actual, expected), name\n"
    )
    sol = nbformat.v4.new_code_cell(solution)
    sol.metadata["nbgrader"] = {"grade_id": "w9_f", "solution": True, "grade": False, "schema_version": 3}
    test = nbformat.v4.new_code_cell(tests)
    test.metadata["nbgrader"] = {"grade_id": "w9_f_tests", "grade": True, "points": 1, "schema_version": 3}
    nb.cells = [setup, sol, test]
    path = tmp_path / "w9.ipynb"
    nbformat.write(nb, str(path))
    return path


def test_an_in_place_change_of_the_callers_array_survives_tests_that_reuse_the_array(tmp_path):
    # The shared-array trap of the issue: the first call changes X, the later checks compare against X itself.
    path = _notebook(
        tmp_path,
        _cell("return (X - X.mean()) / k", "center(X, k)"),
        "X = np.array([1.0, 2.0, 3.0])\nY = center(X, 1.0)\ncheck_close('centered', Y, X - 2.0 * (X[0] == 1.0))\n",
    )
    _, survivors = analyse(path)
    assert ("in-place on a parameter", "X -= X.mean(); return X / k") in {(m.operator, m.after) for m in survivors}


def test_an_in_place_mutant_on_an_int_argument_is_left_out_as_equivalent(tmp_path):
    cell = _cell("return (n + 2 * p) // 2", "half(n, p)")
    mutant = ("in-place on a parameter", "n += 2 * p; return n // 2")
    assert mutant in {(op, after) for op, _before, after in _mutants(cell)}  # generated from the source ...
    path = _notebook(
        tmp_path, cell, "check_close('half of 4 + 2', half(4, 1), 3)\ncheck_close('half of 5 + 0', half(5, 0), 2)\n"
    )
    killed, survivors = analyse(path)
    assert mutant not in {(m.operator, m.after) for m in killed + survivors}  # ... and dropped: n held an int


@pytest.mark.parametrize("scalar", ["np.int64", "np.float32"])
def test_an_in_place_mutant_on_a_numpy_scalar_argument_is_left_out_as_equivalent(tmp_path, scalar):
    # `n += 2 * p` on a numpy scalar makes a new scalar, as on an int: the caller's n never changes.
    cell = _cell("return (n + 2 * p) // 2", "half(n, p)")
    path = _notebook(tmp_path, cell, f"n = {scalar}(4)\ncheck_close('half of 4 + 2', half(n, {scalar}(1)), 3)\n")
    killed, survivors = analyse(path)
    assert ("in-place on a parameter", "n += 2 * p; return n // 2") not in {(m.operator, m.after) for m in survivors}
    assert killed, "the notebook's other mutants were run"
