"""Tiny fixed datasets from the slides: logic-gate truth tables and 2×2 grids.

Nothing here is random; these are whole truth tables, every possible input once.

* ``logic_gate("and")`` etc.: the four inputs of a two-input gate, either
  0/1 (logistic regression) or bipolar −1/+1 (the perceptron with the sign
  activation). AND and OR are linearly separable; XOR is not.
* ``diagonal_patterns()``: all 16 two-colour 2×2 grids, labelled 1 only for
  the diagonal pattern, the slides' example of logistic regression as a
  pattern detector.
"""

import itertools

import numpy as np

GATES = {
    "and": lambda a, b: a and b,
    "or": lambda a, b: a or b,
    "xor": lambda a, b: a != b,
    "nand": lambda a, b: not (a and b),
    "nor": lambda a, b: not (a or b),
}


def logic_gate(name, bipolar=False):
    """The truth table of a two-input logic gate.

    name: "and", "or", "xor", "nand" or "nor" -> X: (4, 2) float64, y: (4,) int64.
    Rows are (0,0), (0,1), (1,0), (1,1) and y is 1 where the gate is true,
    else 0. With bipolar=True, 0 becomes −1 in inputs and labels alike, so
    bipolar OR has y = −1 only for (−1, −1).
    """
    key = str(name).lower()
    if key not in GATES:
        raise ValueError(f"Unknown logic gate {name!r}. Choose one of: {', '.join(GATES)}.")
    bits = list(itertools.product((0, 1), repeat=2))
    X = np.array(bits, dtype=np.float64)
    y = np.array([int(GATES[key](bool(a), bool(b))) for a, b in bits], dtype=np.int64)
    if bipolar:
        # Map 0 -> -1 and 1 -> +1 so that sign(w·x + b) can output the label.
        X, y = 2 * X - 1, 2 * y - 1
    return X, y


def diagonal_patterns(colors=(-1, 1)):
    """All 16 two-colour 2×2 grids, labelled 1 for the diagonal pattern only.

    colors: (c1, c2) -> X: (16, 4) float64, y: (16,) int64.
    Each row is a grid [[a00, a01], [a10, a11]] flattened row by row into
    [a00, a01, a10, a11]; every cell is c1 or c2, and the rows enumerate the
    grids in binary order with c1 as 0 and a00 as the leading digit.
    y = 1 exactly for the diagonal pattern a00 = a11 = c1, a01 = a10 = c2,
    i.e. x = [c1, c2, c2, c1] (row 6). The slides colour c1 = −1 (black)
    and c2 = +1 (white), the default; colors=(0, 1) gives x = [0, 1, 1, 0],
    the data point of the slides' worked gradient-descent step.
    """
    c1, c2 = colors
    if c1 == c2:
        raise ValueError(f"The two colors must differ, got {colors!r}")
    X = np.array(list(itertools.product((c1, c2), repeat=4)), dtype=np.float64)
    diagonal = np.array([c1, c2, c2, c1], dtype=np.float64)
    y = np.all(X == diagonal, axis=1).astype(np.int64)
    return X, y
