"""`ElmoTextClassifier`: a keras-hub `TextClassifier` on ELMo, strings in, class scores out.

From an options + hdf5 folder to `fit`, `save_to_preset`, and keras-hub's own
generic loaders, which must return the package's classes with the same
outputs (bit for bit: the same computation on weights read back from a file).
The scores are checked against an independent computation: `ElmoTextEmbedder`'s
`default` vector (the same backbone and mix) times the dense layer in float64.
"""

import os
import keras
import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub", reason="needs keras-hub: the keras-hub extra")

from elmo_keras import ElmoTextClassifier, ElmoTextEmbedder, ElmoTokenizer  # noqa: E402

TEXTS = ["a good film", "a bad film", "great acting , great story", "awful and bad", "", "Été à Zürich"]
LABELS = np.array([1, 0, 1, 0, 0, 1])
EPS32 = np.finfo(np.float32).eps / 2  # unit roundoff


@pytest.fixture(scope="module")
def model_folder(fixture_model_folder):
    return fixture_model_folder


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_fit_from_an_options_folder_trains_the_mix_and_the_dense_layer_only(model_folder):
    keras.utils.set_random_seed(0)
    classifier = ElmoTextClassifier.from_preset(model_folder, num_classes=2, dropout=0.0)
    assert isinstance(classifier, keras_hub.models.TextClassifier)
    assert sorted(w.path for w in classifier.trainable_weights) == [
        "elmo_head/elmo_mix/layer_weights", "elmo_head/elmo_mix/scale", "logits/bias", "logits/kernel"]
    frozen = [_numpy(w).copy() for w in classifier.backbone.weights]
    # Full batches, no dropout: the same gradient steps every epoch, so the loss falls steadily.
    history = classifier.fit(TEXTS, LABELS, epochs=20, batch_size=len(TEXTS), verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert "sparse_categorical_accuracy" in history.history  # keras-hub's "auto" metrics
    for before, w in zip(frozen, classifier.backbone.weights, strict=True):
        np.testing.assert_array_equal(before, _numpy(w))


def test_scores_are_the_dense_layer_on_the_mixed_mean(model_folder):
    classifier = ElmoTextClassifier.from_preset(model_folder, num_classes=3, scalar_mix_weights=[0.3, -0.2, 0.1])
    scores = classifier.predict(TEXTS, batch_size=len(TEXTS), verbose=0)
    embedder = ElmoTextEmbedder(classifier.backbone, scalar_mix_weights=[0.3, -0.2, 0.1])
    sentence = embedder.predict(TEXTS, batch_size=len(TEXTS), verbose=0)["default"].astype(np.float64)
    kernel, bias = (_numpy(w).astype(np.float64) for w in classifier.output_dense.weights)
    expected = sentence @ kernel + bias
    # The same graph up to the dense layer (same batch, same ids); the float32 product of a sum of n terms
    # lies within gamma_n = n u / (1 - n u) of |x| |W| (Higham, Accuracy and Stability, 3.1), plus the bias.
    n = kernel.shape[0] + 1
    bound = n * EPS32 / (1 - n * EPS32) * (np.abs(sentence) @ np.abs(kernel) + np.abs(bias))
    assert np.all(np.abs(scores - expected) <= bound + np.finfo(np.float32).tiny)
    np.testing.assert_array_equal(scores[4], _numpy(classifier.output_dense.weights[1]))  # "" -> 0 vector


def test_a_preset_reads_back_through_keras_hubs_generic_loaders(model_folder, tmp_path):
    classifier = ElmoTextClassifier.from_preset(model_folder, num_classes=2)
    classifier.fit(TEXTS, LABELS, epochs=2, batch_size=3, verbose=0)
    expected = classifier.predict(TEXTS, verbose=0)
    preset = str(tmp_path / "preset")
    classifier.save_to_preset(preset)
    assert {"config.json", "model.weights.h5", "task.json", "task.weights.h5", "tokenizer.json",
            "preprocessor.json", "metadata.json"} <= set(os.listdir(preset))

    reloaded = keras_hub.models.TextClassifier.from_preset(preset)
    assert type(reloaded) is ElmoTextClassifier
    np.testing.assert_array_equal(reloaded.predict(TEXTS, verbose=0), expected)

    backbone = keras_hub.models.Backbone.from_preset(preset)
    tokenizer = keras_hub.models.Tokenizer.from_preset(preset)
    assert type(tokenizer) is ElmoTokenizer and type(backbone) is type(classifier.backbone)
    char_ids = np.asarray(tokenizer(TEXTS))  # TensorFlow preprocessing: numpy for every backend's model
    np.testing.assert_array_equal(char_ids, np.asarray(classifier.preprocessor.tokenizer(TEXTS)))
    for key, value in backbone(char_ids).items():
        np.testing.assert_array_equal(_numpy(value), _numpy(classifier.backbone(char_ids)[key]))

    # num_classes given: a new head on the preset's backbone (keras-hub's rule).
    fresh = keras_hub.models.TextClassifier.from_preset(preset, num_classes=4)
    assert fresh.predict(TEXTS, verbose=0).shape == (len(TEXTS), 4)


@pytest.mark.parametrize("num_classes", [0, -1, 2.5, "2", True])
def test_num_classes_must_be_a_positive_integer(model_folder, num_classes):
    with pytest.raises(ValueError, match=r"ElmoTextClassifier: num_classes: expected a positive integer"):
        ElmoTextClassifier.from_preset(model_folder, num_classes=num_classes)


@pytest.mark.parametrize("labels, message", [
    ([0, 1, 2, 0, 0, 1], r"integers in \[0, 2\) \(num_classes=2\); found 2 at index 2"),
    ([0, 1, -1, 0, 0, 1], r"found -1 at index 2"),
    ([0.5, 1, 0, 0, 0, 1], r"found dtype float64"),
])
def test_labels_out_of_range_are_refused_before_training(model_folder, labels, message):
    classifier = ElmoTextClassifier.from_preset(model_folder, num_classes=2)
    before = [_numpy(w).copy() for w in classifier.weights]
    with pytest.raises(ValueError, match=message):
        classifier.fit(TEXTS, np.array(labels), epochs=1, verbose=0)
    for b, w in zip(before, classifier.weights, strict=True):
        np.testing.assert_array_equal(b, _numpy(w))
