"""The Elmo layer in downstream Keras models: outputs, training, saving."""

import pytest
import numpy as np
import keras
from keras.ops import convert_to_numpy as to_numpy

from conftest import FIXTURE_OPTIONS, FIXTURE_WEIGHTS

from elmo_keras import Elmo, ElmoEmbedder, batch_to_ids

SENTENCES = [["The", "bank", "raised", "rates", "."], ["We", "sat", "by", "the", "river", "bank"], ["Hi"]]


def _classifier(**elmo_kwargs):
    char_ids = keras.Input((None, 50), dtype="int32")
    out = Elmo.from_files(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, name="elmo", **elmo_kwargs)(char_ids)
    pooled = keras.layers.GlobalAveragePooling1D()(out["elmo_representations"][0], mask=out["mask"])
    return keras.Model(char_ids, keras.layers.Dense(2, activation="softmax")(pooled))


def test_representation_is_mix_of_embedder_layers():
    elmo = Elmo.from_files(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, num_output_representations=2, dropout=0.0)
    out = elmo(batch_to_ids(SENTENCES))
    expected = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS).embed_batch(SENTENCES)
    reps, mask = [to_numpy(r) for r in out["elmo_representations"]], to_numpy(out["mask"])
    assert len(reps) == 2 and reps[0].shape == (3, 6, 32)
    np.testing.assert_array_equal(mask.sum(axis=1), [5, 6, 1])
    for k, e in enumerate(expected):
        np.testing.assert_allclose(reps[0][k, : e.shape[1]], e.mean(axis=0), atol=1e-5)
        assert np.all(reps[0][k, e.shape[1]:] == 0)


def test_keep_boundaries_and_fixed_mix():
    elmo = Elmo.from_files(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, keep_sentence_boundaries=True, dropout=0.0,
                           scalar_mix_parameters=[0.0, -1e9, -1e9])
    out = elmo(batch_to_ids(SENTENCES[:1]))
    rep = to_numpy(out["elmo_representations"][0])
    assert rep.shape == (1, 7, 32) and to_numpy(out["mask"]).sum() == 7
    layer0 = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS).embed_sentence(SENTENCES[0])[0]
    np.testing.assert_allclose(rep[0, 1:-1], layer0, atol=1e-6)
    assert not elmo.trainable_weights


def test_fit_trains_only_the_mix_and_task_by_default_and_saves(tmp_path):
    model = _classifier(dropout=0.2)
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    dense = next(layer.name for layer in model.layers if isinstance(layer, keras.layers.Dense))  # "dense", "dense_1", ...
    assert sorted(w.path for w in model.trainable_weights) == [
        f"{dense}/bias", f"{dense}/kernel", "elmo/elmo_head/scalar_mix_0/layer_weights", "elmo/elmo_head/scalar_mix_0/scale"]
    frozen_before = [w.numpy().copy() for w in model.get_layer("elmo").bilm.weights]
    ids, labels = batch_to_ids(SENTENCES * 4), np.array([0, 1, 0] * 4)
    history = model.fit(ids, labels, epochs=15, batch_size=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    for before, w in zip(frozen_before, model.get_layer("elmo").bilm.weights):
        np.testing.assert_array_equal(before, w.numpy())
    path = str(tmp_path / "classifier.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_array_equal(model.predict(ids, verbose=0), reloaded.predict(ids, verbose=0))


def test_trainable_backbone_option_exposes_all_weights():
    model = _classifier(trainable_backbone=True)
    assert len(model.trainable_weights) == 4 + len(model.get_layer("elmo").bilm.weights)
    with pytest.warns(DeprecationWarning, match=r"trainable_bilm=\.\.\.\) is deprecated: pass trainable_backbone"):
        old = _classifier(trainable_bilm=True)
    assert old.get_layer("elmo").get_config()["trainable_backbone"] is True
    assert len(old.trainable_weights) == len(model.trainable_weights)


@pytest.mark.parametrize("kwargs, message", [
    (dict(dropout=1.5), r"dropout: expected a number in \[0, 1\), found 1\.5"),
    (dict(dropout=-0.1), r"dropout: expected a number in \[0, 1\)"),
    (dict(num_output_representations=0), r"num_output_representations: expected a positive integer, found 0"),
    (dict(l2_coef=-1.0), r"l2_coef: expected a number >= 0, found -1\.0"),
    (dict(scalar_mix_parameters=[0.0, 1.0]), r"scalar_mix_parameters: expected 3 numbers \(n_layers \+ 1\), found 2"),
])
def test_elmo_checks_its_arguments(kwargs, message):
    from elmo_keras import Elmo
    from elmo_keras.io.options import load_options

    with pytest.raises(ValueError, match=message):
        Elmo(load_options(FIXTURE_OPTIONS), **kwargs)


def test_backbone_checks_max_batch_size():
    from elmo_keras import ElmoBackbone
    from elmo_keras.io.options import load_options

    with pytest.raises(ValueError, match=r"max_batch_size: expected a positive integer, found -2"):
        ElmoBackbone.from_options(load_options(FIXTURE_OPTIONS), stateful=True, max_batch_size=-2)


def test_char_ids_of_a_float_or_bool_dtype_are_refused_in_one_line():
    """Keras would cast them to int32 silently; any backend's tensor of the wrong dtype is named instead."""
    elmo = Elmo.from_files(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, dropout=0.0)
    ids = batch_to_ids(SENTENCES)
    expected = to_numpy(elmo(ids)["elmo_representations"][0])
    np.testing.assert_array_equal(to_numpy(elmo(keras.ops.cast(ids, "int64"))["elmo_representations"][0]),
                                  expected)  # int64, as torch.tensor gives by default: the same computation
    for model in (elmo, elmo.bilm):
        for dtype in ("float32", "bool"):
            with pytest.raises(TypeError, match=rf"^{type(model).__name__}: char_ids must be an integer tensor "
                                                rf"\(int32 or int64, as elmo_keras.batch_to_ids gives\), found {dtype}$"):
                model(keras.ops.cast(ids, dtype))
