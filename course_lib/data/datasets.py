"""Two small real datasets, shipped inside the package and read offline.

* ``load_digits()``: 1797 handwritten digits as 8×8 images of pixel
  counts 0..16, labels 0..9 (UCI Optical Recognition of Handwritten Digits).
* ``load_breast_cancer()``: 569 breast masses described by 30 measurements
  of their cell nuclei, labelled malignant or benign (UCI Breast Cancer
  Wisconsin (Diagnostic)).

Both files are scikit-learn's bundled copies; PROVENANCE.md gives their
origin, licenses and SHA-256 checksums. The loaders only read package files
through ``importlib.resources``, so they work without a network and from
an installed wheel as well as from the source tree.
"""

import gzip
import io
from dataclasses import dataclass
from importlib import resources

import numpy as np


@dataclass(frozen=True, repr=False)
class Dataset:
    """A loaded dataset. ``X, y = load_digits()`` unpacks it.

    X: (m, n) float64 features, y: (m,) int64 labels; y = k means
    ``target_names[k]``. ``images`` is (m, 8, 8) for the digits, else None.
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: tuple
    target_names: tuple
    description: str
    images: np.ndarray | None = None

    def __iter__(self):
        # Unpacking a Dataset gives (X, y), like a generator's return value.
        yield self.X
        yield self.y

    def __repr__(self):
        return (
            f"Dataset(X: {self.X.shape} {self.X.dtype}, y: {self.y.shape} {self.y.dtype}, "
            f"classes: {list(self.target_names)})"
        )


def _read_csv(filename, skip_header):
    """A gzipped CSV shipped in this package -> (header line or None, (m, k) float64 array)."""
    raw = (resources.files(__package__) / filename).read_bytes()
    text = gzip.decompress(raw).decode("ascii")
    header = text.split("\n", 1)[0] if skip_header else None
    table = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=int(skip_header), ndmin=2)
    return header, table


DIGITS_DESCRIPTION = """\
Optical Recognition of Handwritten Digits (UCI ML repository; E. Alpaydin and
C. Kaynak, 1998; https://doi.org/10.24432/C50P49, CC BY 4.0). This is the test
part of the UCI data (writers not in its training part), as bundled with
scikit-learn. Each 32x32 black-and-white scan was cut into 4x4 blocks and the
black pixels of each block counted, giving an 8x8 image of integers 0..16.
X[i] is image i flattened row by row (feature pixel_r_c is row r, column c);
y[i] in 0..9 is the digit shown. Classes are nearly balanced (174 to 183 each).
"""


def load_digits():
    """The 8×8 handwritten digits: 1797 examples, 10 classes.

    -> Dataset with X: (1797, 64) float64 pixel counts 0..16, images:
    (1797, 8, 8) (the same numbers; images[i].ravel() == X[i]), y: (1797,)
    int64 with y = the digit 0..9 (target_names[k] = str(k)).
    """
    _, table = _read_csv("digits.csv.gz", skip_header=False)
    X, y = table[:, :64], table[:, 64].astype(np.int64)
    return Dataset(
        X=X,
        y=y,
        feature_names=tuple(f"pixel_{r}_{c}" for r in range(8) for c in range(8)),
        target_names=tuple(str(k) for k in range(10)),
        description=DIGITS_DESCRIPTION,
        images=X.reshape(-1, 8, 8).copy(),
    )


_NUCLEUS_FEATURES = (
    "radius",
    "texture",
    "perimeter",
    "area",
    "smoothness",
    "compactness",
    "concavity",
    "concave points",
    "symmetry",
    "fractal dimension",
)

BREAST_CANCER_DESCRIPTION = """\
Breast Cancer Wisconsin (Diagnostic) (UCI ML repository; W. H. Wolberg,
W. N. Street and O. L. Mangasarian, 1995; https://doi.org/10.24432/C5DW2B,
CC BY 4.0), as bundled with scikit-learn.
Each row describes the cell nuclei in a digitized image of a fine-needle
aspirate of a breast mass: 10 measurements (radius, texture, ...), each as
the mean over the nuclei, its standard error, and the "worst" value (mean of
the three largest), giving 30 features in very different units.
Labels: y = 0 means malignant (212 examples), y = 1 means benign (357).
"""


def load_breast_cancer():
    """Breast Cancer Wisconsin (Diagnostic): 569 examples, 30 features, 2 classes.

    -> Dataset with X: (569, 30) float64, y: (569,) int64 where
    y = 0 is MALIGNANT (212) and y = 1 is BENIGN (357), the coding of the
    shipped file and of scikit-learn; target_names = ("malignant", "benign").
    For "1 = malignant", use 1 - y. Columns 0-9 are the means, 10-19 the
    standard errors, 20-29 the worst values; standardize before training.
    """
    header, table = _read_csv("breast_cancer.csv.gz", skip_header=True)
    m, n, *target_names = header.strip().split(",")  # "569,30,malignant,benign"
    expected = (int(m), int(n) + 1)  # n features and the label
    if table.shape != expected:
        raise OSError(f"breast_cancer.csv.gz is damaged: expected {expected}, got {table.shape}")
    names = (
        [f"mean {f}" for f in _NUCLEUS_FEATURES]
        + [f"{f} error" for f in _NUCLEUS_FEATURES]
        + [f"worst {f}" for f in _NUCLEUS_FEATURES]
    )
    return Dataset(
        X=table[:, :-1],
        y=table[:, -1].astype(np.int64),
        feature_names=tuple(names),
        target_names=tuple(target_names),
        description=BREAST_CANCER_DESCRIPTION,
    )
