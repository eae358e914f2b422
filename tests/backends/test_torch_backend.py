"""The package on the PyTorch backend: the parity, layer and language-model tests run again there, a plain
PyTorch training loop trains an `Elmo` layer, and `ElmoEmbedder` and `elmo-keras embed` pass their tests there
and run without TensorFlow installed."""

import os
import pathlib
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import FIXTURE_OPTIONS, FIXTURE_WEIGHTS, run_pytest_on_torch
from reference_bilm import batching_tolerance

pytest.importorskip("torch", reason="the PyTorch backend needs torch (pip install torch)")

TESTS = pathlib.Path(__file__).parent.parent


@pytest.mark.slow
def test_parity_and_layers_pass_on_torch():
    stdout = run_pytest_on_torch([TESTS / "models" / "test_parity.py", TESTS / "layers" / "test_layers.py",
                                  TESTS / "io" / "test_weights_io.py", TESTS / "models" / "test_elmo_layer.py",
                                  TESTS / "layers" / "test_elmo_head.py", TESTS / "models" / "test_language_model.py",
                                  TESTS / "training" / "test_torch_training_loop.py"])
    assert " passed" in stdout
    assert "test_torch_training_loop.py" not in stdout  # not skipped: the child runs on PyTorch


@pytest.mark.slow
def test_embedder_and_embed_command_pass_on_torch():
    stdout = run_pytest_on_torch([TESTS / "test_embedder.py", TESTS / "test_embed_cli.py",
                                  TESTS / "models" / "test_default_model.py", TESTS / "models" / "test_empty_batch.py",
                                  TESTS / "preprocessing" / "test_packing.py"])
    assert " passed" in stdout


# `pip install "elmo-keras[torch]"` brings no TensorFlow: embedding must not import it. The child makes
# `import tensorflow` fail, as it fails where TensorFlow is not installed.
NO_TENSORFLOW = """
import sys
sys.modules["tensorflow"] = None
from elmo_keras.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_embed_command_runs_on_torch_without_tensorflow(tmp_path):
    from elmo_keras import ElmoEmbedder

    (tmp_path / "in.txt").write_text("the cat sat on the mat .\nHi\n", encoding="utf-8")
    env = dict(os.environ, KERAS_BACKEND="torch", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, "embed", str(tmp_path / "in.txt"),
                             str(tmp_path / "out.hdf5"), "--options-file", FIXTURE_OPTIONS, "--weight-file",
                             FIXTURE_WEIGHTS, "--quiet"], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == f"wrote {tmp_path / 'out.hdf5'}\n"
    with h5py.File(tmp_path / "out.hdf5", "r") as f:
        got = [f["0"][...], f["1"][...]]
    # Another backend's float32 kernels: equal to this process's within the derived tolerance.
    sentences = (tuple("the cat sat on the mat .".split()), ("Hi",))
    expected = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS).embed_batch([list(s) for s in sentences])
    atol = batching_tolerance(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, sentences)
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=0, atol=atol)
