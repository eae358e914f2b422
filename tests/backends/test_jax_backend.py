"""The model code on the JAX backend: the parity and layer tests run again there."""

import pathlib

import pytest

from conftest import run_pytest_on_jax

pytest.importorskip("jax")

HERE = pathlib.Path(__file__).parent


@pytest.mark.slow
def test_parity_and_layers_pass_on_jax():
    stdout = run_pytest_on_jax([HERE / "test_parity.py", HERE / "test_layers.py", HERE / "test_weights_io.py",
                                HERE / "test_elmo_layer.py", HERE / "test_elmo_head.py"])
    assert " passed" in stdout
