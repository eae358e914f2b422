"""The Keras backend asked for, and a one-line error when its library is not installed.

Keras reads its backend once, at `import keras` (`KERAS_BACKEND`, else
`keras.json` in `$KERAS_HOME` or `~/.keras`, else TensorFlow), and imports
that library at once; without it the import fails deep inside Keras.
`missing_backend_error` turns that failure into one line naming the extra to
install.

Example:

>>> error = ModuleNotFoundError("No module named 'torch'", name="torch")
>>> print(missing_backend_error(error, requested=("torch", "KERAS_BACKEND")))  # doctest: +NORMALIZE_WHITESPACE
KERAS_BACKEND=torch needs torch, which is not installed: pip install "elmo-keras[torch]"
(or set KERAS_BACKEND to an installed backend)
"""

import json
import os

# Backend: (the module Keras imports for it, the elmo_keras extra that installs it).
BACKEND_LIBRARIES = {"tensorflow": ("tensorflow", "tf"), "jax": ("jax", "jax"), "torch": ("torch", "torch")}


def requested_backend():
    """(backend name, where it was set), read as Keras reads it, without importing Keras."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"], "KERAS_BACKEND"
    keras_dir = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    path = os.path.join(keras_dir, "keras.json")
    try:
        with open(path, encoding="utf-8") as f:
            backend = json.load(f).get("backend")
    except (OSError, ValueError, AttributeError):
        backend = None
    return (backend, path) if backend else ("tensorflow", "Keras' default backend")


def missing_backend_error(error, requested=None):
    """An ImportError of one line when `error` is the requested backend's library missing; else None.

    `requested`: (backend, where it was set), by default `requested_backend()`.
    """
    backend, source = requested or requested_backend()
    module, extra = BACKEND_LIBRARIES.get(backend, (None, None))
    if module is None or (getattr(error, "name", None) or "").partition(".")[0] != module:
        return None
    where = f"KERAS_BACKEND={backend}" if source == "KERAS_BACKEND" else f"the Keras backend {backend} ({source})"
    return ImportError(f'{where} needs {module}, which is not installed: pip install "elmo-keras[{extra}]" '
                       f"(or set KERAS_BACKEND to an installed backend)")
