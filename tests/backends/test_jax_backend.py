"""The model code on the JAX backend: the parity and layer tests run again there."""

import pathlib

import pytest

from conftest import run_pytest_on_jax

pytest.importorskip("jax")

HERE = pathlib.Path(__file__).parent
TESTS = HERE.parent  # the folders of the tests run again


@pytest.mark.slow
def test_parity_and_layers_pass_on_jax():
    stdout = run_pytest_on_jax([TESTS / "models" / "test_parity.py", TESTS / "layers" / "test_layers.py",
                                TESTS / "io" / "test_weights_io.py", TESTS / "models" / "test_elmo_layer.py",
                                TESTS / "layers" / "test_elmo_head.py"])
    assert " passed" in stdout
