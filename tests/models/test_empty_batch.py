"""Batches without any sentence (0 rows) or without any token, on every path.

TensorFlow's eager `max` refuses empty tensors, and oneDNN (TensorFlow's
default on x86-64) returns a wrong shape from a convolution on 0 rows; the
char-CNN and the SavedModel signatures handle both. Each answer keeps the
dtypes and the other dimensions of a non-empty one.
"""

import keras
from keras.ops import convert_to_numpy as to_numpy
import numpy as np
import pytest
import tensorflow as tf

from conftest import FIXTURE_OPTIONS, FIXTURE_WEIGHTS
from reference_bilm import batching_tolerance

from elmo_keras import Elmo, ElmoEmbedder, batch_to_ids, load_bilm
from elmo_keras.serving import export

ON_TENSORFLOW = keras.backend.backend() == "tensorflow"
tensorflow_only = pytest.mark.skipif(not ON_TENSORFLOW, reason="SavedModel export traces with TensorFlow")
P = 16  # projection_dim of the fixture model
EMPTY_IDS = np.zeros((0, 2, 50), np.int32)  # batch_to_ids([]): boundaries only


@pytest.fixture(scope="module")
def bilm():
    return load_bilm(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)


def _check_bilm_outputs(out, time=2):
    assert tuple(out["token_embedding"].shape) == (0, time, P)
    assert tuple(out["activations"].shape) == (0, 3, time, 2 * P)
    assert tuple(out["mask"].shape) == (0, time)
    assert to_numpy(out["activations"]).dtype == np.float32


def test_batch_to_ids_of_no_sentence():
    assert batch_to_ids([]).shape == EMPTY_IDS.shape


def test_char_cnn_on_no_token(bilm):
    cnn = bilm.get_layer("char_cnn")
    for ids in (EMPTY_IDS, np.zeros((3, 0, 50), np.int32)):
        outs = [cnn(ids)] + ([tf.function(lambda x: cnn(x))(ids)] if ON_TENSORFLOW else [])
        for out in outs:
            assert tuple(out.shape) == ids.shape[:2] + (P,)


def test_bilm_on_no_sentence(bilm):
    _check_bilm_outputs(bilm(EMPTY_IDS))
    _check_bilm_outputs(bilm.predict_on_batch(EMPTY_IDS))
    if ON_TENSORFLOW:
        _check_bilm_outputs(tf.function(lambda x: bilm(x))(EMPTY_IDS))
    _check_bilm_outputs(bilm(np.zeros((0, 7, 50), np.int32)), time=7)


def test_elmo_layer_on_no_sentence():
    elmo = Elmo.from_files(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)
    out = elmo(EMPTY_IDS)
    assert tuple(out["elmo_representations"][0].shape) == (0, 0, 2 * P)
    assert tuple(out["mask"].shape) == (0, 0)
    char_ids = keras.Input((None, 50), dtype="int32")
    model = keras.Model(char_ids, elmo(char_ids)["elmo_representations"][0])
    assert model.predict_on_batch(EMPTY_IDS).shape == (0, 0, 2 * P)


@pytest.mark.parametrize("kwargs", [dict(), dict(token_cache_size=0), dict(stateful=True, batch_size=2)])
def test_embedder_on_no_sentence_and_empty_sentences(kwargs):
    embedder = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, **kwargs)
    assert embedder.embed_batch([]) == []
    assert list(embedder.embed_sentences([])) == []
    vectors = embedder.embed_batch([[], []])
    assert [v.shape for v in vectors] == [(3, 0, 2 * P)] * 2
    assert all(v.dtype == np.float32 for v in vectors)


def _empty_requests():
    return {
        "default": dict(text=tf.constant([], tf.string)),
        "tokens": dict(tokens=tf.zeros([0, 3], tf.string), sequence_len=tf.zeros([0], tf.int32)),
        "char_ids": dict(char_ids=tf.constant(EMPTY_IDS)),
    }


@tensorflow_only
def test_export_signatures_on_no_sentence(tmp_path):
    result = export.export_savedmodel(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, str(tmp_path), warmup=False)
    loaded = tf.saved_model.load(result["export_dir"])
    length = {"default": 0, "tokens": 3, "char_ids": 0}
    for name, request in _empty_requests().items():
        out = loaded.signatures[name](**request)
        n = length[name]
        assert out["word_emb"].shape == (0, n, P), name
        for key in ("lstm_outputs1", "lstm_outputs2", "elmo"):
            assert out[key].shape == (0, n, 2 * P) and out[key].dtype == tf.float32, (name, key)
        assert out["default"].shape == (0, 2 * P), name
        assert out["sequence_len"].shape == (0,) and out["sequence_len"].dtype == tf.int32, name
    # A non-empty request after an empty one is unaffected.
    out = loaded.signatures["default"](text=tf.constant(["the cat sat"]))
    assert out["elmo"].shape == (1, 3, 2 * P)


@tensorflow_only
def test_exported_downstream_convolution_on_no_sentence(tmp_path):
    # A Conv1D over the ELMo vectors: on 0 rows oneDNN would answer with the
    # input's shape; the signature runs it on one padding row instead. (On 0
    # time steps, as for a batch of empty sentences, oneDNN's Conv1D fails
    # the same way in any model: `tokens` and `char_ids` requests with time
    # steps are checked here.)
    import keras

    elmo = Elmo.from_files(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)
    char_ids = keras.Input((None, 50), dtype="int32", name="char_ids")
    vectors = elmo(char_ids)["elmo_representations"][0]
    features = keras.layers.Conv1D(5, 1, name="features")(vectors)
    model = keras.Model(char_ids, {"features": features,
                                   "pooled": keras.layers.GlobalMaxPooling1D(name="pooled")(features)})
    result = export.export_with_text_input(model, str(tmp_path), warmup=False)
    assert result["non_core_ops"] == []
    loaded = tf.saved_model.load(result["export_dir"])
    requests = _empty_requests()
    requests["char_ids"] = dict(char_ids=tf.zeros([0, 6, 50], tf.int32))
    for name, time in (("tokens", 3), ("char_ids", 4)):
        out = loaded.signatures[name](**requests[name])
        assert out["pooled"].shape == (0, 5) and out["features"].shape == (0, time, 5), name
    texts = ["the cat sat", "a dog"]
    out = loaded.signatures["default"](text=tf.constant(texts))
    expected = np.asarray(model.predict_on_batch(batch_to_ids([t.split() for t in texts]))["pooled"])
    # The SavedModel's graph against Keras' predict: two float32 evaluations. ELMo's vectors agree to
    # the batching tolerance; the 1-wide convolution moves that by at most its kernel's largest column
    # L1 norm, and rounds its own 32-term sums to a few ulps of its outputs.
    kernel = np.asarray(model.get_layer("features").kernel)
    atol = (np.abs(kernel).sum(axis=(0, 1)).max()
            * batching_tolerance(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, tuple(tuple(t.split()) for t in texts))
            + 8 * np.finfo(np.float32).eps * np.abs(expected).max())
    np.testing.assert_allclose(out["pooled"].numpy(), expected, rtol=0, atol=atol)
