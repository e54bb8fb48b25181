"""course_lib.checks and the probe wire: type → shape → values, named mistakes, hostile values."""

import json

import numpy as np
import pytest

from course_lib import _wire
from course_lib.checks import CheckFailed, check_accuracy, check_at_most, check_close, check_equal, compare


class AlwaysEqual:
    def __eq__(self, other):
        return True

    __hash__ = None

    def __bool__(self):
        return True

    shape = (2,)


class FakeArray:
    def __array__(self, dtype=None, copy=None):
        return np.array([0.5, 0.8807970779778823])


class SneakyNdarray(np.ndarray):
    def __eq__(self, other):
        return np.ones(self.shape, dtype=bool)


class TruthyFloat(float):
    def __eq__(self, other):
        return True

    __hash__ = float.__hash__


EXPECTED = np.array([0.5, 0.8807970779778823])


@pytest.mark.parametrize(
    "hostile",
    [AlwaysEqual(), FakeArray(), EXPECTED.view(SneakyNdarray) * 0 + 7, [0.5, 0.8807970779778823]],
    ids=["__eq__", "__array__", "ndarray-subclass", "list"],
)
def test_values_that_claim_equality_fail(hostile):
    v = compare("close", hostile, EXPECTED)
    assert not v.ok and v.message


def test_float_subclass_with_eq_is_not_a_number():
    assert not compare("close", TruthyFloat(3.0), 0.5).ok
    assert compare("close", 0.5, 0.5).ok and compare("close", np.float64(0.5), 0.5).ok


def test_ndarray_subclass_is_rejected_even_with_right_values():
    assert not compare("close", EXPECTED.view(SneakyNdarray), EXPECTED).ok


def test_type_then_shape_then_values_with_targeted_hints():
    W = np.arange(6.0).reshape(3, 2)
    assert "transposed" in compare("close", W.T, W).message
    assert "got None" in compare("close", None, W).message and "return" in compare("close", None, W).message
    assert "axis of length 1" in compare("close", W.reshape(3, 2, 1), W).message
    assert "(1, 1)" in compare("close", np.array([[0.7]]), 0.7).message
    assert "nan" in compare("close", np.array([np.nan, 1.0]), np.array([0.0, 1.0])).message


def test_generic_mistake_recognition():
    e = np.array([[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]])
    assert "sign is flipped" in compare("close", -e, e).message
    assert "sum where a mean belongs" in compare("close", 5 * e, e).message
    assert "½ or 2" in compare("close", 2 * e, e).message
    assert "same constant" in compare("close", e + 0.3, e).message
    square = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert "transpose" in compare("close", square.T, square).message


def test_named_mistakes_win_over_generic_hints():
    X, W, b = np.ones((2, 3)), np.arange(6.0).reshape(3, 2), np.array([1.0, -1.0])
    v = compare("close", X @ W, X @ W + b, mistakes={"forgot to add the bias b": X @ W})
    assert not v.ok and v.mistake == "forgot to add the bias b"
    assert v.message == "It looks like you forgot to add the bias b."


def test_a_mistake_equal_to_the_answer_is_never_reported():
    e = np.array([1.0, 2.0])
    assert compare("close", e, e, mistakes={"did something": e.copy()}).ok


def test_tuples_and_dicts_are_compared_part_by_part():
    exp = (np.ones((2, 3)), np.zeros(3))
    v = compare("close", (np.ones((2, 3)), np.ones(3)), exp, labels=("dW", "db"))
    assert not v.ok and v.message.startswith("db")
    assert compare("close", {"W1": np.eye(2)}, {"W1": np.eye(2)}).ok
    assert "missing keys" in compare("close", {}, {"W1": np.eye(2)}).message


def test_accuracy_and_bounds():
    y = np.array([0, 1, 1, 0, 1])
    assert compare("accuracy", np.array([0, 1, 1, 0, 0]), y, min_accuracy=0.8).ok
    assert not compare("accuracy", np.array([0, 1, 0, 0, 0]), y, min_accuracy=0.8).ok
    assert "argmax" in compare("accuracy", np.eye(5)[:, :2], y, min_accuracy=0.8).message
    assert compare("at_most", 0.1, 0.2).ok and not compare("at_most", np.nan, 0.2).ok
    assert not compare("at_least", AlwaysEqual(), 0.2).ok


def test_check_functions_print_a_pass_line_or_raise_with_hint(capsys):
    check_close("sigmoid(0)", np.array([0.5]), [0.5])
    assert "✔ sigmoid(0)" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="Hint: remember the minus"):
        check_close("sigmoid(2)", np.array([0.1]), [0.88], hint="remember the minus")
    with pytest.raises(CheckFailed):
        check_equal("count", 13.5, 13)
    check_equal("count", 13, 13)
    with pytest.raises(CheckFailed, match="below the target"):
        check_accuracy("acc", np.array([1, 1]), [0, 1], min_accuracy=0.9)
    with pytest.raises(CheckFailed):
        check_at_most("loss", 3.0, 1.0)


def test_hidden_messages_do_not_echo_student_values():
    secret = np.array([123.456, 789.0])
    v = compare("close", secret, np.array([1.0, 2.0]), show_values=False)
    assert "123" not in v.message and "789" not in v.message


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        3,
        -(2**70),
        0.1,
        float("nan"),
        float("-inf"),
        "text",
        np.float32(1.5),
        np.int64(7),
        np.arange(6, dtype=np.float32).reshape(2, 3),
        np.array([True, False]),
        np.array(2.5),
        (np.ones(2), 3),
        [1, [2.0, None]],
        {"W1": np.eye(2), "b1": np.zeros(2)},
    ],
)
def test_wire_round_trip(value):
    back = _wire.decode(json.loads(json.dumps(_wire.encode(value))))
    if isinstance(value, np.ndarray):
        assert type(back) is np.ndarray and back.dtype == value.dtype and np.array_equal(back, value)
    elif isinstance(value, float) and np.isnan(value):
        assert np.isnan(back)
    elif isinstance(value, (tuple, list, dict)):
        assert type(back) is type(value)
    else:
        assert back == value


@pytest.mark.parametrize(
    "value",
    [AlwaysEqual(), FakeArray(), EXPECTED.view(SneakyNdarray), TruthyFloat(1.0), np.array([object()], dtype=object)],
)
def test_wire_turns_hostile_values_into_opaque(value):
    back = _wire.decode(json.loads(json.dumps(_wire.encode(value))))
    assert isinstance(back, _wire.Opaque)
    assert not compare("close", back, EXPECTED).ok


@pytest.mark.parametrize(
    "bad",
    [
        {"t": "nd", "dtype": "|O", "shape": [1], "b64": ""},
        {"t": "nd", "dtype": "<f8", "shape": [2], "b64": "AAAA"},
        {"t": "nd", "dtype": "<f8", "shape": [10**9], "b64": ""},
        {"t": "nd", "dtype": "<f8", "shape": [-1], "b64": ""},
        {"t": "int", "v": "9" * 500},
        {"t": "float", "v": 1.5},
        {"t": "eval", "v": "__import__('os')"},
        ["not", "a", "dict"],
    ],
)
def test_wire_decoder_rejects_malformed_reports(bad):
    with pytest.raises(_wire.WireError):
        _wire.decode(bad)


def test_named_mistakes_work_for_tuple_results():
    dW, db = np.arange(6.0).reshape(3, 2), np.array([1.0, -2.0])
    v = compare("close", (dW * 4, db * 4), (dW, db), labels=("dW", "db"), mistakes={"forgot the 1/m": (dW * 4, db * 4)})
    assert v.message == "It looks like you forgot the 1/m."
    v = compare("close", (dW, db * 2), (dW, db), labels=("dW", "db"))
    assert v.message.startswith("db: ") and v.message.count("db") == 1


def test_a_single_wrong_number_gets_a_factor_hint_only_for_round_ratios():
    assert "factor" in compare("close", 1.0, 0.5).message
    assert "factor" in compare("close", 3.0, 1.0).message
    assert "factor" not in compare("close", 0.7310585786, 0.5).message


def test_named_mistakes_work_for_dict_results():
    grads = {"dW1": np.eye(2), "db1": np.ones(2)}
    wrong = {"dW1": 3 * np.eye(2), "db1": 3 * np.ones(2)}
    v = compare("close", wrong, grads, mistakes={"forgot the 1/m": wrong})
    assert v.message == "It looks like you forgot the 1/m."


def test_whole_numbers_off_by_a_factor_get_no_hint_about_one_over_m():
    for actual, expected in ((30, 60), (1, 3)):
        v = compare("equal", actual, expected)
        assert not v.ok and "1/" not in v.message and "MSE" not in v.message, v.message
    assert "½ or 2" in compare("close", 1.0, 2.0).message  # real-valued results still get it


def test_labels_must_name_every_item_of_a_tuple():
    v = compare("close", (1.0, 2.0, 3.0), (1.0, 2.0, 4.0), labels=["a", "b"])
    assert not v.ok  # the third item is never silently skipped


def test_grader_feedback_does_not_spell_out_hidden_text_or_truth_values():
    assert compare("equal", "linear", "nonlinear", show_values=False).message == "wrong text"
    assert "True" not in compare("equal", False, True, show_values=False).message
    assert "nonlinear" in compare("equal", "linear", "nonlinear").message  # students' own checks do


def test_a_row_of_labels_is_told_to_ravel_not_to_argmax():
    v = compare("accuracy", np.array([[0, 1, 1]]), np.array([0, 1, 1]), min_accuracy=0.9)
    assert not v.ok and ".ravel()" in v.message and "argmax" not in v.message
    assert "argmax" in compare("accuracy", np.eye(3), np.array([0, 1, 2]), min_accuracy=0.9).message


def test_timedelta_is_not_a_number():
    assert not compare("equal", np.timedelta64(3), 3).ok


def test_grader_messages_never_quote_a_type_name_the_student_chose():
    secret_type = type("SECRET_built_from_the_hidden_tests", (), {})
    wire = json.dumps(_wire.encode(secret_type()))
    assert "SECRET" not in wire
    sent = _wire.decode(json.loads(wire))
    forged = _wire.decode({"t": "other", "type": "SECRET", "kind": "SECRET"})  # a lying kernel
    for actual in (sent, forged, secret_type(), [secret_type()], (secret_type(), 1.0)):
        for expected in (EXPECTED, 0.5, (EXPECTED, 1.0), {"a": EXPECTED}, True, "text"):
            v = compare("close", actual, expected, show_values=False)
            assert not v.ok and "SECRET" not in v.message, v.message
    for actual in (sent, forged, secret_type()):
        assert "got a value of another type" in compare("close", actual, EXPECTED, show_values=False).message
    assert "SECRET" in compare("close", secret_type(), EXPECTED).message  # the student's own visible check may


def test_an_opaque_value_says_why_from_a_closed_list():
    big = _wire.decode(json.loads(json.dumps(_wire.encode(np.array(["a"], dtype=object)))))
    assert "numpy array of a dtype or size" in compare("close", big, EXPECTED, show_values=False).message


def test_exception_and_warning_names_come_from_a_closed_list():
    from grading.verdict.judge import _cell_problems, exception_name

    assert exception_name({"ename": "FloatingPointError"}) == "FloatingPointError"
    assert exception_name({"ename": "CheckFailed"}) == "CheckFailed"
    assert exception_name({"ename": "SECRETError"}) == exception_name({"ename": ["x"]}) == "an exception"
    stderr = {"output_type": "stream", "name": "stderr", "text": "SECRETWarning: a\nRuntimeWarning: overflow"}
    error = {"output_type": "error", "ename": "SECRETError", "evalue": "SECRET", "traceback": ["SECRET"]}
    problems = " ".join(_cell_problems({"outputs": [error, stderr]}))
    assert "SECRET" not in problems and "an exception" in problems and "a RuntimeWarning" in problems


def test_expected_parameters_may_be_written_as_nested_lists():
    """A network's parameters, [(W1, b1), ...], written as plain lists in a notebook's check."""
    params = [(np.array([[3.0]]), np.array([0.0]))]
    check_close("pairs", params, [([[3.0]], [0.0])])
    with pytest.raises(CheckFailed, match="expected 3, got 3.5"):
        check_close("pairs", [(np.array([[3.5]]), np.array([0.0]))], [([[3.0]], [0.0])])
