"""One rule for randomness: everything random takes ``seed=`` (an int, None or a Generator)."""

import numpy as np


def as_rng(seed=None):
    """Return a ``np.random.Generator``: a Generator passes through, an int seeds a new one.

    Passing the same Generator along a chain of calls keeps one reproducible
    stream; passing an int restarts it. None gives fresh entropy (not
    reproducible; notebooks always pass a seed).
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None and not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, None or np.random.Generator, not {type(seed).__name__}")
    return np.random.default_rng(seed)
