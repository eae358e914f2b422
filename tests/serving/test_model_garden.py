"""TensorFlow Model Garden users: examples/model_garden_classifier.py trains on an ELMo SavedModel.

The example runs in a child process (tf_keras, tensorflow_hub and Model Garden stay out of this one):
a tf_keras classifier on `hub.KerasLayer` of an exported SavedModel, trained with Model Garden's
optimizer factory. Its training loss must fall and the encoder's mix weights must change, while the
biLM stays frozen. Needs the `[model-garden]` extra (tf-models-official); skipped without it.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

from conftest import FIXTURE_OPTIONS, FIXTURE_WEIGHTS

REPO = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "model_garden_classifier.py"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        any(importlib.util.find_spec(name) is None for name in ("official", "tensorflow_hub", "tf_keras")),
        reason="needs the [model-garden] extra (tf-models-official, tensorflow-hub, tf_keras)"),
]


def _run_example(*args, cwd):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    result = subprocess.run([sys.executable, str(EXAMPLE), "--json", *map(str, args)], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _check_trained(result, steps):
    assert result["optimizer"] == "AdamWeightDecay"  # Model Garden's AdamW (official.modeling.optimization)
    assert result["steps"] == steps
    assert result["loss_after"] < result["loss_before"] - 0.01, result
    assert result["encoder_weights_change"] > 1e-4, result["encoder_trainable_weights"]
    assert len(result["encoder_trainable_weights"]) >= 2  # the mix weights and the scale
    assert result["encoder_frozen_weights"] > 0  # the biLM's variables are there, not trained


def test_classifier_on_an_exported_fixture_savedmodel_trains_and_reloads(tmp_path):
    result = _run_example("--options-file", FIXTURE_OPTIONS, "--weight-file", FIXTURE_WEIGHTS, "--steps", 12,
                          "--learning-rate", 0.05, "--warmup-steps", 2, "--output", tmp_path / "classifier",
                          cwd=tmp_path)
    _check_trained(result, 12)
    assert result["reloaded_max_difference"] < 1e-5
    assert (tmp_path / "classifier" / "saved_model.pb").exists()


def test_classifier_on_the_bundled_savedmodel_trains(tmp_path):
    result = _run_example("--steps", 12, "--learning-rate", 0.05, "--warmup-steps", 2, cwd=tmp_path)
    assert pathlib.Path(result["encoder"]).parts[-3:] == ("default", "savedmodel", "1")
    _check_trained(result, 12)
