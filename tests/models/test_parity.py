"""Parity with the original bilm-tf outputs and with an independent reference."""

import contextlib
import functools
import json

import h5py
import keras
import numpy as np
import pytest

from conftest import FIXTURE, FIXTURE_OPTIONS, FIXTURE_WEIGHTS, tiny_options, write_random_model
from reference_bilm import ReferenceBiLM, float32_tolerance

from elmo_keras import ElmoEmbedder, batch_to_ids, load_bilm, load_options


def _fixture_batches():
    with open(FIXTURE / "lm_embeddings_sentences.json") as f:
        sentences = json.load(f)
    return [[sentences[k][i].split() for k in range(3)] for i in range(10)]


def _expected(k, i):
    with h5py.File(FIXTURE / f"lm_embeddings_{k}.hdf5", "r") as f:
        return f[str(i)][...]


@functools.lru_cache(maxsize=None)
def _fixture_tolerance():
    """The float32 atol for the fixture's top layer, from the reference's float32 drift.

    bilm-tf's outputs and ours are two float32 evaluations (see
    reference_bilm.float32_tolerance); on these sentences ~3e-6. The fixture
    is stateful: each batch row carries its state to the next batch.
    """
    per_dtype = []
    for dtype in (np.float64, np.float32):
        reference, tops = ReferenceBiLM(load_options(FIXTURE_OPTIONS), FIXTURE_WEIGHTS, dtype=dtype), []
        for batch in _fixture_batches():
            ids = batch_to_ids(batch)
            tops += [reference.sentence(ids[k, : len(s) + 2], row=k, stateful=True)[-1, 1:-1]
                     for k, s in enumerate(batch)]
        per_dtype.append(tops)
    return float32_tolerance(*per_dtype), per_dtype[0]


def test_reference_reproduces_bilm_tf_stateful_fixture():
    atol, tops = _fixture_tolerance()
    for j, top in enumerate(tops):
        i, k = divmod(j, 3)
        np.testing.assert_allclose(np.concatenate(_expected(k, i), axis=-1), top, rtol=0, atol=atol)


def test_embedder_reproduces_bilm_tf_stateful_fixture():
    embedder = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, batch_size=4, stateful=True)
    errors = []
    for i, batch in enumerate(_fixture_batches()):
        for k, vectors in enumerate(embedder.embed_batch(batch)):
            top = vectors[-1]
            got = np.stack([top[:, :16], top[:, 16:]])
            errors.append(np.abs(got - _expected(k, i)).max())
    assert len(errors) == 30
    assert max(errors) <= _fixture_tolerance()[0]


def test_model_reproduces_fixture_and_stateless_differs():
    model = load_bilm(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, stateful=True, max_batch_size=4)
    stateless = load_bilm(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)
    batches = _fixture_batches()
    for i, batch in enumerate(batches[:3]):
        ids = batch_to_ids(batch)
        top = np.asarray(model.predict_on_batch(ids)["activations"])[:, -1]
        top_stateless = np.asarray(stateless.predict_on_batch(ids)["activations"])[:, -1]
        for k, sentence in enumerate(batch):
            n = len(sentence)
            expected = np.concatenate(_expected(k, i), axis=-1)
            assert np.abs(top[k, 1 : n + 1] - expected).max() <= _fixture_tolerance()[0]
            if i > 0:  # Only batch 0 starts from zero state in the fixture.
                assert np.abs(top_stateless[k, 1 : n + 1] - expected).max() > 0.1


def test_reset_states_restarts_from_zero():
    embedder = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, batch_size=4, stateful=True)
    batches = _fixture_batches()
    first = embedder.embed_batch(batches[0])
    embedder.embed_batch(batches[1])
    embedder.reset_states()
    again = embedder.embed_batch(batches[0])
    for a, b in zip(first, again):
        np.testing.assert_allclose(a, b, atol=1e-6)


GENERAL_CONFIGS = [
    dict(skip=True, n_layers=2),
    dict(skip=True, n_layers=3, activation="tanh", n_highway=2),
    dict(skip=False, n_layers=1, n_highway=0, cell_clip=None, proj_clip=None),
    dict(skip=True, filters=((1, 2), (2, 4)), projection_dim=6, cell_clip=0.5, proj_clip=0.3),
    dict(n_characters=261),
]
GENERAL_SENTENCES = [["Grüße", "aus", "Köln", "!"], [], ["x" * 60, "日本語", "é" * 30], ["a"]]
# float64 Keras against the float64 reference: both round at ~1.1e-16 relative.
# The float32 sensitivity of these configurations (see float32_tolerance) is
# at most ~20 float32 ulps of outputs up to ~6, so the same amplification
# gives float64 errors of ~20 * 2.2e-16 * 6 ~ 3e-14 (measured: 6e-15). 1e-9
# leaves 4 orders of magnitude for other CPUs and summation orders, and is
# still 70 times below one float32 rounding of the smallest outputs checked
# (~1.2 * 6e-8): a float32 step hidden anywhere in the model would fail it.
FLOAT64_ATOL = 1e-9


@contextlib.contextmanager
def float64_keras():
    """Build and run Keras layers in float64 inside the block; restore after.

    The global dtype policy is fixed at the first layer built, so it is set
    along with floatx.
    """
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)


def _random_general_model(tmp_path, config):
    options = tiny_options(**config)
    options_file, weight_file = write_random_model(tmp_path, options, seed=1, scale=2.0)
    return options_file, weight_file, load_options(options_file)


def _reference_outputs(options, weight_file, ids, sentences, dtype=np.float64):
    reference = ReferenceBiLM(options, weight_file, dtype=dtype)
    return [reference.sentence(ids[k, : len(s) + 2]) for k, s in enumerate(sentences)]


# Keras 3.15 promotes float64 with a Python float to float32 except on
# TensorFlow (keras/src/backend/common/dtypes.py, BIT64_TO_BIT32_DTYPE), so
# `ops.tanh` and friends leave float64 on JAX even with jax_enable_x64.
@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="Keras computes in float64 only on TensorFlow")
@pytest.mark.parametrize("config", GENERAL_CONFIGS)
def test_float64_model_matches_reference_exactly(tmp_path, config):
    """The model's arithmetic and structure, free of float32 rounding.

    The biLM model only: `ElmoEmbedder` keeps its token cache in float32, so
    its extra structure (cache, trimmed slots, packed rows) is checked by the
    float32 test below.
    """
    options_file, weight_file, options = _random_general_model(tmp_path, config)
    ids = batch_to_ids(GENERAL_SENTENCES)
    expected = _reference_outputs(options, weight_file, ids, GENERAL_SENTENCES)
    with float64_keras():
        model = load_bilm(options_file, weight_file)
        assert {v.dtype for v in model.weights} == {"float64"}
        eager = model(ids)
        predicted = model.predict_on_batch(ids)
    for out in (eager, predicted):
        activations = np.asarray(out["activations"])
        assert activations.dtype == np.float64
        for k, sentence in enumerate(GENERAL_SENTENCES):
            n = len(sentence) + 2
            np.testing.assert_allclose(activations[k, :, :n], expected[k], rtol=0, atol=FLOAT64_ATOL)
            assert np.all(activations[k, :, n:] == 0)


@pytest.mark.parametrize("config", GENERAL_CONFIGS)
def test_matches_reference_on_general_configs(tmp_path, config):
    options_file, weight_file, options = _random_general_model(tmp_path, config)
    sentences = GENERAL_SENTENCES
    ids = batch_to_ids(sentences)
    expected = [e[:, 1:-1] for e in _reference_outputs(options, weight_file, ids, sentences)]
    expected32 = [e[:, 1:-1] for e in _reference_outputs(options, weight_file, ids, sentences, np.float32)]
    atol = float32_tolerance(expected, expected32)  # 1.3e-4 for config0, 1.6e-6 for config3
    got = ElmoEmbedder(options_file, weight_file, batch_size=4).embed_batch(sentences)
    for k, sentence in enumerate(sentences):
        assert got[k].shape == expected[k].shape
        np.testing.assert_allclose(got[k], expected[k], rtol=0, atol=atol)


def _planted_bugs(options, weight_file):
    """References with one bug each, as a model could get them wrong."""
    def with_weights(edit):
        reference = ReferenceBiLM(options, weight_file)
        for name in list(reference.w):
            if name.endswith(("LSTMCell/W_0", "LSTMCell/B")):
                reference.w[name] = edit(reference.w[name].copy())
        return reference

    def swap_input_forget(w):  # gates read as (f, j, i, o) instead of (i, j, f, o)
        i, j, f, o = np.split(w, 4, axis=-1)
        return np.concatenate([f, j, i, o], axis=-1)

    def no_forget_bias(b):  # the +1 on the forget gate left out
        if b.ndim == 1:
            b[b.shape[0] // 2 : 3 * b.shape[0] // 4] -= 1.0
        return b

    unclipped = dict(options, lstm=dict(options["lstm"], cell_clip=None, proj_clip=None))
    no_skip = dict(options, lstm=dict(options["lstm"], use_skip_connections=False))
    return {"swapped gates": with_weights(swap_input_forget), "no forget bias": with_weights(no_forget_bias),
            "no clips": ReferenceBiLM(unclipped, weight_file), "no skip": ReferenceBiLM(no_skip, weight_file)}


def test_derived_tolerance_rejects_model_bugs(tmp_path):
    # Guards the float32 test above: on its loosest configuration (config0,
    # whose clips at 3 are barely active), each planted bug moves the outputs
    # far beyond the derived tolerance.
    options_file, weight_file, options = _random_general_model(tmp_path, GENERAL_CONFIGS[0])
    ids = batch_to_ids(GENERAL_SENTENCES)
    expected = _reference_outputs(options, weight_file, ids, GENERAL_SENTENCES)
    atol = float32_tolerance(expected, _reference_outputs(options, weight_file, ids, GENERAL_SENTENCES,
                                                          np.float32))
    assert atol < 1e-3
    for bug, reference in _planted_bugs(options, weight_file).items():
        wrong = [reference.sentence(ids[k, : len(s) + 2]) for k, s in enumerate(GENERAL_SENTENCES)]
        gap = max(np.abs(a - b).max() for a, b in zip(wrong, expected) if a.size)
        assert gap > 50 * atol, (bug, gap, atol)


def test_clipping_is_active_in_reference_config(tmp_path):
    # Guards the test above: with these weights the clips change the result.
    options = tiny_options(cell_clip=0.5, proj_clip=0.3)
    unclipped = tiny_options(cell_clip=None, proj_clip=None)
    options_file, weight_file = write_random_model(tmp_path, options, seed=1, scale=2.0)
    ids = batch_to_ids([["clipping", "matters"]])[0]
    a = ReferenceBiLM(options, weight_file).sentence(ids)
    b = ReferenceBiLM(unclipped, weight_file).sentence(ids)
    assert np.abs(a - b).max() > 0.05


def test_stateful_matches_reference_across_batches(tmp_path):
    options = tiny_options(n_layers=2, skip=True)
    options_file, weight_file = write_random_model(tmp_path, options, seed=2, scale=1.5)
    reference = ReferenceBiLM(load_options(options_file), weight_file)
    reference32 = ReferenceBiLM(load_options(options_file), weight_file, dtype=np.float32)
    embedder = ElmoEmbedder(options_file, weight_file, batch_size=3, stateful=True)
    batches = [[["one", "two"], ["three"], ["four", "five", "six"]],
               [["seven"], ["eight", "nine", "ten", "eleven"]],  # fewer rows: row 2 keeps its state
               [["a"], ["b"], ["c", "d"]]]
    got, expected, expected32 = [], [], []
    for batch in batches:
        got += embedder.embed_batch(batch)
        ids = batch_to_ids(batch)
        for k, sentence in enumerate(batch):
            for ref, out in ((reference, expected), (reference32, expected32)):
                out.append(ref.sentence(ids[k, : len(sentence) + 2], row=k, stateful=True)[:, 1:-1])
    atol = float32_tolerance(expected, expected32)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=0, atol=atol)


def test_padding_never_changes_results(tmp_path):
    options_file, weight_file = write_random_model(tmp_path, tiny_options(), seed=3)
    model = load_bilm(options_file, weight_file)
    ids = batch_to_ids([["short"], ["a", "much", "longer", "sentence", "here"]])
    padded = np.concatenate([ids, np.zeros((2, 9, 50), np.int32)], axis=1)
    a = np.asarray(model.predict_on_batch(ids)["activations"])
    b = np.asarray(model.predict_on_batch(padded)["activations"])
    np.testing.assert_allclose(a, b[:, :, : ids.shape[1]], atol=1e-6)
    assert np.all(b[:, :, ids.shape[1]:] == 0)
    assert np.all(a[0, :, 3:] == 0)
