"""The keras-hub backbone, presets and tasks on JAX and PyTorch, in a child process each.

Keras picks its backend once per process. The preprocessing (`ElmoTokenizer`,
the tasks' preprocessors) is TensorFlow on every backend, mapped in `tf.data`
by keras-hub's pipeline, as keras-hub's own models do.
"""

import pathlib

import pytest

from conftest import run_pytest_on_jax, run_pytest_on_torch

pytest.importorskip("keras_hub", reason="needs keras-hub: the keras-hub extra")

HERE = pathlib.Path(__file__).parent
FILES = [HERE / "test_keras_hub_backbone.py", HERE / "test_elmo_text_classifier.py",
         HERE / "test_elmo_token_classifier.py"]


@pytest.mark.slow
def test_keras_hub_models_pass_on_jax(tmp_path):
    pytest.importorskip("jax", reason="needs JAX: the jax extra")
    stdout = run_pytest_on_jax(FILES, cache_dir=tmp_path / "xla_cache")
    assert " passed" in stdout and "skipped" not in stdout


@pytest.mark.slow
def test_keras_hub_models_pass_on_torch():
    pytest.importorskip("torch", reason="needs PyTorch: the torch extra")
    stdout = run_pytest_on_torch(FILES)
    assert " passed" in stdout and "skipped" not in stdout
