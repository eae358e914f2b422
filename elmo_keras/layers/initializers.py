"""The biLM layers' initial weights, and placeholders where a weight file is about to overwrite them.

A model built to load weights does not need random initial values: on the
JAX backend each random initializer compiles a program per weight shape,
which cost 3.2 s of the 3.4 s that `ElmoEmbedder()` took for the bundled
model (`python benchmarks/bench_cold_start.py`, RESULTS.md "Cold start").
Inside `weights_to_be_loaded()`, the layers' weights start as zeros made by
numpy instead (no random draws, nothing compiled); the loader then assigns
every one of them (`models/weight_layout.py` lists them all, and refuses a
file that lacks one).
"""

import contextlib
import threading

import keras
import numpy as np

_state = threading.local()


class _ToBeLoaded(keras.initializers.Initializer):
    """Zeros made by numpy: a weight's value until the weight file's is assigned."""

    def __call__(self, shape, dtype=None):
        return np.zeros(shape, dtype=keras.backend.standardize_dtype(dtype or keras.config.floatx()))


@contextlib.contextmanager
def weights_to_be_loaded():
    """Within: layers built by this thread take placeholders instead of their initializers.

    >>> import numpy as np
    >>> with weights_to_be_loaded():
    ...     float(np.abs(np.asarray(initializer("glorot_uniform")((2, 3)))).sum())
    0.0
    """
    previous = getattr(_state, "loading", False)
    _state.loading = True
    try:
        yield
    finally:
        _state.loading = previous


def initializer(value):
    """`value` (a Keras initializer or its name), or the placeholder inside `weights_to_be_loaded()`."""
    return _ToBeLoaded() if getattr(_state, "loading", False) else value
