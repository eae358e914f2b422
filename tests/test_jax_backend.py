"""The model code on the JAX backend: the parity and layer tests run again there.

Keras picks its backend once per process, so they run in a child process.
"""

import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("jax")

HERE = pathlib.Path(__file__).parent


def test_parity_and_layers_pass_on_jax():
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore",
         str(HERE / "test_parity.py"), str(HERE / "test_layers.py"), str(HERE / "test_weights_io.py"),
         str(HERE / "test_elmo_layer.py")],
        cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
