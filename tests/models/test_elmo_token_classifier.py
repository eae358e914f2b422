"""`ElmoTokenClassifier`: a label per token, on ELMo, in keras-hub's idiom.

Scores are checked against an independent path (`ElmoTextEmbedder`'s `elmo`
vectors with the same backbone and mix, times the dense layer in float64),
labels against the tokens they belong to, the metrics against numpy over the
labelled tokens only, and presets read back bit for bit.
"""

import keras
import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub", reason="needs keras-hub: the keras-hub extra")

from elmo_keras import (ElmoTextEmbedder, ElmoTokenClassifier, ElmoTokenClassifierPreprocessor,  # noqa: E402
                        ElmoTokenizer, batch_to_ids)

TOKENS = np.array([["The", "cat", "sat", "down", "."],
                   ["Dogs", "bark", "", "", ""],
                   ["Été", "à", "Zürich", "", ""],
                   ["", "", "", "", ""]], dtype=object)
LABELS = np.array([[0, 1, 2, -1, 0],
                   [1, 2, -1, -1, -1],
                   [-1, 0, 1, -1, -1],
                   [-1, -1, -1, -1, -1]])
EPS32 = np.finfo(np.float32).eps / 2  # unit roundoff


@pytest.fixture(scope="module")
def model_folder(fixture_model_folder):
    return fixture_model_folder


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_the_preprocessor_aligns_labels_with_the_tokens_it_keeps():
    preprocessor = ElmoTokenClassifierPreprocessor(ElmoTokenizer())
    tokens = np.array([["a", "", "b"], ["c", "d", ""]], dtype=object)
    labels = np.array([[1, 7, 2], [0, -1, -1]])
    char_ids, aligned, weights = preprocessor(tokens, labels, np.array([[1.0, 9.0, 0.5], [2.0, 2.0, 2.0]]))
    # "" is dropped wherever it is, its label with it; the width of the input is kept.
    char_ids = np.asarray(char_ids)  # TensorFlow preprocessing on every backend
    np.testing.assert_array_equal(char_ids[:, :4], batch_to_ids([["a", "b"], ["c", "d"]]))
    assert char_ids.shape == (2, 5, 50) and not char_ids[:, 4].any()
    np.testing.assert_array_equal(np.asarray(aligned), [[1, 2, 0], [0, 0, 0]])
    np.testing.assert_array_equal(np.asarray(weights), [[1.0, 0.5, 0.0], [2.0, 0.0, 0.0]])
    assert np.asarray(preprocessor(tokens)).shape == (2, 5, 50)  # no labels: char ids only


def test_scores_are_the_dense_layer_on_each_tokens_mixed_vector(model_folder):
    mix = [0.2, -0.4, 0.1]
    tagger = ElmoTokenClassifier.from_preset(model_folder, num_classes=3, scalar_mix_weights=mix)
    scores = tagger.predict(TOKENS, batch_size=len(TOKENS), verbose=0)
    assert scores.shape == (4, 5, 3)  # the input's width
    sentences = [[t for t in row if t] for row in TOKENS]
    vectors = ElmoTextEmbedder(tagger.backbone, scalar_mix_weights=mix).predict(
        [" ".join(s) for s in sentences], batch_size=len(TOKENS), verbose=0)["elmo"].astype(np.float64)
    kernel, bias = (_numpy(w).astype(np.float64) for w in tagger.output_dense.weights)
    n = kernel.shape[0] + 1
    for k, sentence in enumerate(sentences):
        x = vectors[k, : len(sentence)]
        expected = x @ kernel + bias
        # Higham's bound for a float32 sum of n products (gamma_n |x| |W|), the bias included.
        bound = n * EPS32 / (1 - n * EPS32) * (np.abs(x) @ np.abs(kernel) + np.abs(bias))
        assert np.all(np.abs(scores[k, : len(sentence)] - expected) <= bound + np.finfo(np.float32).tiny)


def test_fit_counts_labelled_tokens_only_and_keeps_the_bilm(model_folder):
    keras.utils.set_random_seed(0)
    tagger = ElmoTokenClassifier.from_preset(model_folder, num_classes=3, dropout=0.0)
    assert sorted(w.path for w in tagger.trainable_weights) == [
        "elmo_head/elmo_mix/layer_weights", "elmo_head/elmo_mix/scale", "logits/bias", "logits/kernel"]
    frozen = [_numpy(w).copy() for w in tagger.backbone.weights]
    history = tagger.fit(TOKENS, LABELS, epochs=20, batch_size=len(TOKENS), verbose=0)  # full batches
    assert history.history["loss"][-1] < history.history["loss"][0]
    for before, w in zip(frozen, tagger.backbone.weights, strict=True):
        np.testing.assert_array_equal(before, _numpy(w))
    _, accuracy = tagger.evaluate(TOKENS, LABELS, batch_size=len(TOKENS), verbose=0)
    labelled = LABELS >= 0
    predicted = tagger.predict(TOKENS, batch_size=len(TOKENS), verbose=0).argmax(-1)
    assert accuracy == pytest.approx(np.mean(predicted[labelled] == LABELS[labelled]), abs=1e-6)


def test_a_fixed_mix_stays_as_given(model_folder):
    tagger = ElmoTokenClassifier.from_preset(model_folder, num_classes=3, scalar_mix_weights=[0.0, -30.0, -30.0],
                                             trainable_mix=False)
    assert sorted(w.path for w in tagger.trainable_weights) == ["logits/bias", "logits/kernel"]
    tagger.fit(TOKENS, LABELS, epochs=2, batch_size=2, verbose=0)
    np.testing.assert_array_equal(_numpy(tagger.head.scalar_mixes[0].weights[0]), [0.0, -30.0, -30.0])


def test_a_preset_reads_back_bit_for_bit(model_folder, tmp_path):
    tagger = ElmoTokenClassifier.from_preset(model_folder, num_classes=3)
    tagger.fit(TOKENS, LABELS, epochs=2, batch_size=2, verbose=0)
    expected = tagger.predict(TOKENS, verbose=0)
    preset = str(tmp_path / "tagger")
    tagger.save_to_preset(preset)
    reloaded = ElmoTokenClassifier.from_preset(preset)
    np.testing.assert_array_equal(reloaded.predict(TOKENS, verbose=0), expected)
    assert type(keras_hub.models.Backbone.from_preset(preset)) is type(tagger.backbone)
    assert type(keras_hub.models.Tokenizer.from_preset(preset)) is ElmoTokenizer


@pytest.mark.parametrize("labels, message", [
    (np.where(LABELS == 2, 3, LABELS), r"integers in \[0, 3\) \(num_classes=3\), or -1 for a token without one; "
                                       r"found 3 at \(0, 2\)"),
    (np.where(LABELS == -1, -2, LABELS), r"found -2 at \(0, 3\)"),
    (LABELS + 0.5, r"found dtype float64"),  # whole floats (1.0) pass as class indices
])
def test_labels_out_of_range_are_refused_before_training(model_folder, labels, message):
    tagger = ElmoTokenClassifier.from_preset(model_folder, num_classes=3)
    before = [_numpy(w).copy() for w in tagger.weights]
    with pytest.raises(ValueError, match=message):
        tagger.fit(TOKENS, labels, epochs=1, verbose=0)
    for b, w in zip(before, tagger.weights, strict=True):
        np.testing.assert_array_equal(b, _numpy(w))


def test_num_classes_is_checked_before_loading():
    with pytest.raises(ValueError, match=r"ElmoTokenClassifier: num_classes: expected a positive integer"):
        ElmoTokenClassifier.from_preset("a folder that does not exist", num_classes=0)
