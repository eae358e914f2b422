"""Original options + hdf5 in and out: bit-exact round trips and clear errors."""

import json
import shutil

import h5py
import numpy as np
import pytest

from conftest import FIXTURE_OPTIONS, FIXTURE_WEIGHTS, tiny_options, write_random_model

from elmo_keras import OptionsError, WeightFileError, batch_to_ids, load_bilm, load_options, save_bilm


def _datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, (obj[...], obj.dtype))
                     if isinstance(obj, h5py.Dataset) else None)
    return out


def test_fixture_round_trip_is_bit_exact(tmp_path):
    model = load_bilm(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)
    save_bilm(model, str(tmp_path / "options.json"), str(tmp_path / "weights.hdf5"))
    original, written = _datasets(FIXTURE_WEIGHTS), _datasets(tmp_path / "weights.hdf5")
    assert sorted(original) == sorted(written)
    assert len(written) == 1 + 2 * 5 + 4 * 2 + 2 + 3 * 2 * 2
    for name, (value, _) in original.items():
        assert written[name][1] == np.float32
        assert written[name][0].shape == value.shape
        assert written[name][0].tobytes() == value.astype(np.float32).tobytes(), name
    assert load_options(str(tmp_path / "options.json")) == load_options(FIXTURE_OPTIONS)


@pytest.mark.parametrize("config", [dict(skip=True, n_layers=3, activation="tanh"),
                                    dict(filters=((1, 2), (2, 4)), projection_dim=6, n_highway=0),
                                    dict(n_characters=261)])
def test_general_round_trip_keeps_values_and_outputs(tmp_path, config):
    options = tiny_options(**config)
    options_file, weight_file = write_random_model(tmp_path, options, seed=5)
    model = load_bilm(options_file, weight_file)
    save_bilm(model, str(tmp_path / "o2.json"), str(tmp_path / "w2.hdf5"))
    a, b = _datasets(weight_file), _datasets(tmp_path / "w2.hdf5")
    assert all(a[k][0].tobytes() == b[k][0].tobytes() for k in a) and sorted(a) == sorted(b)
    if config.get("filters"):  # 6 filters == projection 6: no projection in the file
        assert "CNN_proj/W_proj" not in a
    reloaded = load_bilm(str(tmp_path / "o2.json"), str(tmp_path / "w2.hdf5"))
    assert reloaded.elmo_options["char_cnn"]["n_characters"] == 262
    ids = batch_to_ids([["round", "trip"], ["ü"]])
    np.testing.assert_array_equal(np.asarray(model.predict_on_batch(ids)["activations"]),
                                  np.asarray(reloaded.predict_on_batch(ids)["activations"]))


def test_saved_char_embed_has_no_padding_row(tmp_path):
    model = load_bilm(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)
    save_bilm(model, str(tmp_path / "o.json"), str(tmp_path / "w.hdf5"))
    with h5py.File(tmp_path / "w.hdf5", "r") as f:
        assert f["char_embed"].shape == (261, 4)
        assert f["RNN_1/RNN/MultiRNNCell/Cell1/LSTMCell/W_0"].shape == (32, 256)


def test_missing_weights_file_names_it(tmp_path):
    with pytest.raises(WeightFileError, match=r"nope\.hdf5: weights file not found"):
        load_bilm(FIXTURE_OPTIONS, str(tmp_path / "nope.hdf5"))


def test_truncated_weights_file_is_reported(tmp_path):
    data = open(FIXTURE_WEIGHTS, "rb").read()
    path = tmp_path / "cut.hdf5"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightFileError, match=r"cut\.hdf5"):
        load_bilm(FIXTURE_OPTIONS, str(path))


def test_mismatched_options_name_dataset_and_shapes(tmp_path):
    options = json.load(open(FIXTURE_OPTIONS))
    options["lstm"]["dim"] = 32
    (tmp_path / "o.json").write_text(json.dumps(options))
    with pytest.raises(WeightFileError) as e:
        load_bilm(str(tmp_path / "o.json"), FIXTURE_WEIGHTS)
    message = str(e.value)
    assert "lm_weights.hdf5" in message and "RNN_0/RNN/MultiRNNCell/Cell0/LSTMCell/W_0" in message
    assert "(32, 256)" in message and "(32, 128)" in message


def test_missing_dataset_is_named(tmp_path):
    path = tmp_path / "w.hdf5"
    shutil.copy(FIXTURE_WEIGHTS, path)
    with h5py.File(path, "a") as f:
        del f["CNN_high_1/W_carry"]
    with pytest.raises(WeightFileError, match=r"dataset 'CNN_high_1/W_carry' not found.*\(124, 124\)"):
        load_bilm(FIXTURE_OPTIONS, str(path))


@pytest.mark.parametrize("mutate, message", [
    (lambda o: o["lstm"].pop("dim"), r"lstm: missing field 'dim'"),
    (lambda o: o["char_cnn"].__setitem__("activation", "gelu"), r"char_cnn.activation: expected 'relu' or 'tanh'"),
    (lambda o: o["char_cnn"].__setitem__("n_characters", 300), r"n_characters: expected 261 or 262, found 300"),
    (lambda o: o["char_cnn"].__setitem__("filters", [[1, "x"]]), r"filters\[0\]\[1\]"),
])
def test_bad_options_name_file_and_field(tmp_path, mutate, message):
    options = json.load(open(FIXTURE_OPTIONS))
    mutate(options)
    (tmp_path / "bad.json").write_text(json.dumps(options))
    with pytest.raises(OptionsError, match=r"bad\.json: .*" + message):
        load_options(str(tmp_path / "bad.json"))


def test_unreadable_options_file(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(OptionsError, match=r"broken\.json: cannot read options JSON"):
        load_options(str(tmp_path / "broken.json"))
    with pytest.raises(OptionsError, match=r"missing\.json: options file not found"):
        load_options(str(tmp_path / "missing.json"))


def test_expected_shapes_from_options_match_a_written_file(tmp_path):
    from elmo_keras.io.hdf5 import expected_weight_shapes

    options = tiny_options(n_layers=3, n_highway=2)
    _, weight_file = write_random_model(tmp_path, options)
    written = {name: value.shape for name, (value, _) in _datasets(weight_file).items()}
    assert expected_weight_shapes(load_options(str(tmp_path / "options.json"))) == written


@pytest.mark.parametrize("config", [dict(), dict(n_layers=3, n_highway=2), dict(filters=((1, 3), (2, 3)),
                                                                              projection_dim=6)])
def test_weight_layout_covers_every_dataset_and_variable_once(config):
    """The one table that loading and saving share: a row per dataset, every variable filled."""
    from elmo_keras.io.hdf5 import expected_weight_shapes
    from elmo_keras.io.options import validate_options
    from elmo_keras.models.bilm import build_bilm
    from elmo_keras.models.weight_layout import weight_layout

    options = tiny_options(**config)
    model = build_bilm(options)
    layout = weight_layout(model)
    values = {v.path: np.array(v.numpy()) for v in model.trainable_weights}
    shapes = {row.name: row.to_file(values).shape for row in layout}
    assert shapes == expected_weight_shapes(validate_options(options))
    assert {v.path for row in layout for v in row.variables} == set(values)


def test_a_model_built_to_load_weights_starts_from_placeholders_only_then():
    """Inside `weights_to_be_loaded()` the weights start as zeros (no random draws), outside as before."""
    from elmo_keras.layers.initializers import weights_to_be_loaded
    from elmo_keras.models.bilm import build_bilm

    with weights_to_be_loaded():
        placeholder = build_bilm(tiny_options())
    assert all(not np.any(np.asarray(v.numpy())) for v in placeholder.trainable_weights)
    random = build_bilm(tiny_options())
    assert all(np.any(np.asarray(v.numpy())) for v in random.trainable_weights if "bias" not in v.path)
