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
    ],
)
def test_each_new_operator_plants_its_bug(body, expected):
    assert expected in _mutants(_cell(body))


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
