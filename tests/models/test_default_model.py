"""The bundled default model: loads with no arguments and its two forms agree."""

import json
import os
import subprocess
import sys

import h5py
import numpy as np

from elmo_keras import ElmoEmbedder
from elmo_keras.pretrained import DEFAULT_MODEL_DIR

SENTENCES = [["the", "bank", "of", "the", "river"], ["a", "financial", "institution", "that", "accepts",
                                                     "deposits"]]


def test_embedder_without_arguments_uses_bundled_model():
    embedder = ElmoEmbedder()
    assert embedder.options_file == os.path.join(DEFAULT_MODEL_DIR, "options.json")
    vectors = embedder.embed_batch(SENTENCES)
    assert [v.shape for v in vectors] == [(3, 5, 256), (3, 6, 256)]
    assert all(np.isfinite(v).all() for v in vectors)


def test_bundled_savedmodel_matches_the_hdf5_model():
    code = (
        "import json, sys, tensorflow as tf\n"
        f"m = tf.saved_model.load({os.path.join(DEFAULT_MODEL_DIR, 'savedmodel', '1')!r})\n"
        f"out = m.signatures['default'](text=tf.constant({[' '.join(s) for s in SENTENCES]!r}))\n"
        "print(json.dumps({k: v.numpy().tolist() for k, v in out.items()}))\n")
    result = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=300,
                            cwd="/", env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-2000:]
    out = {k: np.array(v) for k, v in json.loads(result.stdout.strip().splitlines()[-1]).items()}
    expected = ElmoEmbedder().embed_batch(SENTENCES)
    # Two float32 evaluations of the model: each within the float32 drift
    # that the independent reference measures on these sentences, per output
    # (see reference_bilm.float32_tolerance; word_emb ~1.3e-5, lstm_outputs2 ~6e-6).
    atol = _float32_tolerances()
    for k, e in enumerate(expected):
        n = e.shape[1]
        np.testing.assert_allclose(out["lstm_outputs2"][k, :n], e[2], rtol=0, atol=atol[2])
        np.testing.assert_allclose(out["word_emb"][k, :n], e[0][:, :128], rtol=0, atol=atol[0])


def _float32_tolerances():
    """Per layer, the atol of a float32 evaluation of the bundled model on SENTENCES."""
    from elmo_keras import batch_to_ids, load_options
    from reference_bilm import ReferenceBiLM, float32_tolerance

    options = load_options(os.path.join(DEFAULT_MODEL_DIR, "options.json"))
    weight_file = os.path.join(DEFAULT_MODEL_DIR, "weights.hdf5")
    ids = batch_to_ids(SENTENCES)
    per_dtype = [[ReferenceBiLM(options, weight_file, dtype).sentence(ids[k, : len(s) + 2])[:, 1:-1]
                  for k, s in enumerate(SENTENCES)] for dtype in (np.float64, np.float32)]
    return [float32_tolerance(*[[e[layer] for e in outputs] for outputs in per_dtype]) for layer in range(3)]


def test_cli_embed_with_no_model_flags(tmp_path):
    (tmp_path / "in.txt").write_text("\n".join(" ".join(s) for s in SENTENCES) + "\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "elmo_keras.cli", "embed", str(tmp_path / "in.txt"),
                             str(tmp_path / "out.hdf5"), "--all", "--quiet"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    with h5py.File(tmp_path / "out.hdf5", "r") as f:
        assert f["1"].shape == (3, 6, 256)
