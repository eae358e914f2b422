"""`ElmoOptions` and `TrainingOptions`: the one options object, read from and written back to options.json."""

import dataclasses
import json

import pytest
from conftest import FIXTURE_OPTIONS

from elmo_keras import ElmoBackbone, OptionsError
from elmo_keras.models.elmo_backbone import backbone_arguments
from elmo_keras.io.options import CharCnnOptions, ElmoOptions, LstmOptions, validate_options
from elmo_keras.training.options import TrainingOptions, validate_training_options

BUNDLED_OPTIONS = "savedmodels/default/options.json"
TINY = {"lstm": {"dim": 8, "projection_dim": 4, "n_layers": 2},
        "char_cnn": {"embedding": {"dim": 4}, "filters": [[1, 4], [2, 4]], "n_highway": 1}}


@pytest.mark.parametrize("options_file", [FIXTURE_OPTIONS, BUNDLED_OPTIONS])
def test_files_read_into_the_object_and_write_back_as_validated(options_file, tmp_path):
    raw = json.load(open(options_file))
    options = ElmoOptions.from_json(options_file)
    assert options.to_dict() == validate_options(raw)
    options.to_json(tmp_path / "options.json")
    assert ElmoOptions.from_json(str(tmp_path / "options.json")) == options
    assert ElmoOptions.from_dict(options) is options


def test_fields_defaults_and_unknown_keys_kept():
    raw = {"lstm": {**TINY["lstm"], "note": [1, 2]},
           "char_cnn": {**TINY["char_cnn"], "embedding": {"dim": 4, "init": "normal"}, "extra_cnn": 1},
           "comment": {"by": "a user"}}
    options = ElmoOptions.from_dict(raw)
    assert options.lstm == LstmOptions(dim=8, projection_dim=4, n_layers=2, extra={"note": [1, 2]})
    assert options.char_cnn == CharCnnOptions(embedding_dim=4, filters=((1, 4), (2, 4)), n_highway=1,
                                              extra={"embedding": {"init": "normal"}, "extra_cnn": 1})
    assert (options.num_layers, options.output_dim, options.char_cnn.widest_filter) == (3, 8, 2)
    assert options.extra == {"comment": {"by": "a user"}}
    assert options.to_dict() == validate_options(raw)
    raw["lstm"]["note"].append(3)  # a copy was taken
    assert options.lstm.extra == {"note": [1, 2]}


def test_frozen_replace_and_errors_name_the_source():
    options = ElmoOptions.from_dict(TINY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.lstm.dim = 16
    wider = dataclasses.replace(options, lstm=dataclasses.replace(options.lstm, dim=16))
    assert wider.to_dict()["lstm"]["dim"] == 16 and options.lstm.dim == 8
    with pytest.raises(OptionsError, match=r"^mine\.json: lstm\.dim: expected a positive integer, found 0$"):
        ElmoOptions.from_dict({**TINY, "lstm": {**TINY["lstm"], "dim": 0}}, source="mine.json")


def test_reading_by_key_still_works_with_a_deprecation_warning():
    options = ElmoOptions.from_dict(TINY)
    with pytest.warns(DeprecationWarning, match=r"options\.lstm\.dim"):
        assert options["lstm"]["dim"] == 8


def test_the_backbone_takes_either_form_of_options_and_its_config_is_flat():
    from_dict, from_object = ElmoBackbone.from_options(TINY), ElmoBackbone.from_options(ElmoOptions.from_dict(TINY))
    assert from_dict.options == from_object.options == ElmoOptions.from_dict(TINY)
    config = from_dict.get_config()
    assert {k: config[k] for k in backbone_arguments(TINY)} == backbone_arguments(TINY)
    json.dumps(config)  # plain JSON, as `.keras` files hold it
    # The flat arguments describe the same options, and convert back to them.
    assert ElmoBackbone.from_config(config).options == ElmoOptions.from_dict(validate_options(TINY))
    # The constructor of elmo_keras 0.x, ElmoBackbone(options), still works with a warning.
    with pytest.warns(DeprecationWarning, match=r"from_options"):
        deprecated = ElmoBackbone(TINY, name="old_form")
    assert deprecated.get_config() == {**config, "name": "old_form"}
    # Configs saved by elmo_keras 0.x (the options dict) load silently, as the same model.
    old = {"name": "bilm", "trainable": True, "options": validate_options(TINY), "stateful": False,
           "max_batch_size": 64}
    assert ElmoBackbone.from_config(old).get_config() == {**config, "name": "bilm"}


def test_training_options_extend_the_options():
    options = TrainingOptions.from_dict(TINY, n_tokens_vocab=50)
    assert isinstance(options, ElmoOptions)
    assert options.to_dict() == validate_training_options(TINY, n_tokens_vocab=50)
    assert "n_train_tokens" not in options.to_dict()  # counted from the corpus when absent
    assert (options.unroll_steps, options.batch_size, options.lstm.cell_clip) == (20, 128, 3)
    counted = dataclasses.replace(options, n_train_tokens=1000)
    assert TrainingOptions.from_dict(counted.to_dict()) == counted
    with pytest.raises(OptionsError, match=r"n_tokens_vocab is 50 but the vocabulary has 60 tokens"):
        TrainingOptions.from_dict(options, n_tokens_vocab=60)
    raw = json.load(open(BUNDLED_OPTIONS))  # a training options file
    assert TrainingOptions.from_json(BUNDLED_OPTIONS).to_dict() == validate_training_options(raw)
