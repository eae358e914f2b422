"""Parity with the original bilm-tf outputs and with an independent reference."""

import json

import h5py
import numpy as np
import pytest

from conftest import FIXTURE, FIXTURE_OPTIONS, FIXTURE_WEIGHTS, tiny_options, write_random_model
from reference_bilm import ReferenceBiLM

from elmo_keras import ElmoEmbedder, batch_to_ids, load_bilm, load_options


def _fixture_batches():
    with open(FIXTURE / "lm_embeddings_sentences.json") as f:
        sentences = json.load(f)
    return [[sentences[k][i].split() for k in range(3)] for i in range(10)]


def _expected(k, i):
    with h5py.File(FIXTURE / f"lm_embeddings_{k}.hdf5", "r") as f:
        return f[str(i)][...]


def test_embedder_reproduces_bilm_tf_stateful_fixture():
    embedder = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, batch_size=4, stateful=True)
    errors = []
    for i, batch in enumerate(_fixture_batches()):
        for k, vectors in enumerate(embedder.embed_batch(batch)):
            top = vectors[-1]
            got = np.stack([top[:, :16], top[:, 16:]])
            errors.append(np.abs(got - _expected(k, i)).max())
    assert len(errors) == 30
    assert max(errors) <= 1e-5


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
            assert np.abs(top[k, 1 : n + 1] - expected).max() <= 1e-5
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


@pytest.mark.parametrize("config", [
    dict(skip=True, n_layers=2),
    dict(skip=True, n_layers=3, activation="tanh", n_highway=2),
    dict(skip=False, n_layers=1, n_highway=0, cell_clip=None, proj_clip=None),
    dict(skip=True, filters=((1, 2), (2, 4)), projection_dim=6, cell_clip=0.5, proj_clip=0.3),
    dict(n_characters=261),
])
def test_matches_reference_on_general_configs(tmp_path, config):
    options = tiny_options(**config)
    options_file, weight_file = write_random_model(tmp_path, options, seed=1, scale=2.0)
    reference = ReferenceBiLM(load_options(options_file), weight_file)
    sentences = [["Grüße", "aus", "Köln", "!"], [], ["x" * 60, "日本語", "é" * 30], ["a"]]
    embedder = ElmoEmbedder(options_file, weight_file, batch_size=4)
    got = embedder.embed_batch(sentences)
    ids = batch_to_ids(sentences)
    for k, sentence in enumerate(sentences):
        expected = reference.sentence(ids[k, : len(sentence) + 2])[:, 1:-1]
        assert got[k].shape == expected.shape
        np.testing.assert_allclose(got[k], expected, atol=1e-5)


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
    embedder = ElmoEmbedder(options_file, weight_file, batch_size=3, stateful=True)
    batches = [[["one", "two"], ["three"], ["four", "five", "six"]],
               [["seven"], ["eight", "nine", "ten", "eleven"]],  # fewer rows: row 2 keeps its state
               [["a"], ["b"], ["c", "d"]]]
    for batch in batches:
        got = embedder.embed_batch(batch)
        ids = batch_to_ids(batch)
        for k, sentence in enumerate(batch):
            expected = reference.sentence(ids[k, : len(sentence) + 2], row=k, stateful=True)[:, 1:-1]
            np.testing.assert_allclose(got[k], expected, atol=1e-5)


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
