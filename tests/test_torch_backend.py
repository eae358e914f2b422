"""The model code on the PyTorch backend: the parity, layer and language-model tests run again there, and a
plain PyTorch training loop trains an `Elmo` layer."""

import pathlib

import pytest

from conftest import run_pytest_on_torch

pytest.importorskip("torch", reason="the PyTorch backend needs torch (pip install torch)")

HERE = pathlib.Path(__file__).parent


@pytest.mark.slow
def test_parity_and_layers_pass_on_torch():
    stdout = run_pytest_on_torch([HERE / "test_parity.py", HERE / "test_layers.py", HERE / "test_weights_io.py",
                                  HERE / "test_elmo_layer.py", HERE / "test_elmo_head.py",
                                  HERE / "test_language_model.py", HERE / "test_torch_training_loop.py"])
    assert " passed" in stdout
    assert "test_torch_training_loop.py" not in stdout  # not skipped: the child runs on PyTorch
