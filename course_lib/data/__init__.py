"""Datasets for the course: seeded toy data, slide examples, two real datasets.

    generators     make_linear, make_blobs, make_moons, make_circles, make_spirals
    patterns       logic_gate (AND/OR/XOR/NAND/NOR, 0/1 or bipolar), diagonal_patterns
    preprocessing  train_test_split, standardize / Standardizer, one_hot
    datasets       load_digits, load_breast_cancer (shipped, offline; see PROVENANCE.md)

Rows are examples: X: (m, n) float64, class labels y: (m,) int64 in 0..C-1
(bipolar gates: -1/+1). Everything random takes ``seed=``.
"""

from .datasets import Dataset, load_breast_cancer, load_digits
from .generators import (
    default_weights,
    make_blobs,
    make_circles,
    make_linear,
    make_moons,
    make_spirals,
)
from .patterns import GATES, diagonal_patterns, logic_gate
from .preprocessing import Standardizer, one_hot, standardize, train_test_split

__all__ = [
    "GATES",
    "Dataset",
    "Standardizer",
    "default_weights",
    "diagonal_patterns",
    "load_breast_cancer",
    "load_digits",
    "logic_gate",
    "make_blobs",
    "make_circles",
    "make_linear",
    "make_moons",
    "make_spirals",
    "one_hot",
    "standardize",
    "train_test_split",
]
