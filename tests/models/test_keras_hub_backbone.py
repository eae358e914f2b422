"""`ElmoBackbone` as a keras-hub `Backbone`: flat arguments, presets in keras-hub's layout, its loaders.

The preset is written by `save_to_preset` (keras-hub's own saver, into a folder
that takes the final name only once complete) and read by keras-hub's generic
`keras_hub.models.Backbone.from_preset` and by `ElmoBackbone.from_preset`:
weights and outputs bit for bit (values read back from a file; the very same
computation on them).
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from conftest import FIXTURE_OPTIONS, FIXTURE_WEIGHTS

keras_hub = pytest.importorskip("keras_hub", reason="needs keras-hub: the keras-hub extra")

from elmo_keras import ElmoBackbone, batch_to_ids  # noqa: E402

SENTENCES = [["The", "cat", "sat", "."], ["Été", "à", "Zürich"], []]


def _numpy(outputs):
    return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}


@pytest.fixture(scope="module")
def backbone():
    return ElmoBackbone.from_files(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)


def test_it_is_a_keras_hub_backbone_with_flat_arguments(backbone):
    assert isinstance(backbone, keras_hub.models.Backbone)
    config = backbone.get_config()
    assert (config["lstm_dim"], config["projection_dim"], config["n_lstm_layers"]) == (64, 16, 2)
    assert config["filters"] == [[1, 4], [2, 8], [3, 16], [4, 32], [5, 64]]
    # The defaults are the original ELMo's architecture: 93.6 million parameters (bilm-tf's
    # "original" options; the figure the options' parameter bound is documented with).
    assert ElmoBackbone().count_params() == 93_600_848


def test_save_to_preset_and_keras_hubs_loader_read_it_back_bit_for_bit(backbone, tmp_path):
    preset = tmp_path / "elmo_preset"
    backbone.save_to_preset(str(preset))
    assert sorted(os.listdir(preset)) == ["config.json", "metadata.json", "model.weights.h5"]
    config = json.loads((preset / "config.json").read_text())
    assert config["registered_name"] == "elmo_keras>ElmoBackbone"
    char_ids = batch_to_ids(SENTENCES)
    expected = _numpy(backbone(char_ids))
    for loaded in (keras_hub.models.Backbone.from_preset(str(preset)), ElmoBackbone.from_preset(str(preset))):
        assert type(loaded) is ElmoBackbone
        for a, b in zip(loaded.weights, backbone.weights, strict=True):
            assert a.path == b.path
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
        for key, value in _numpy(loaded(char_ids)).items():
            np.testing.assert_array_equal(value, expected[key])
    random = ElmoBackbone.from_preset(str(preset), load_weights=False)
    assert [w.shape for w in random.weights] == [w.shape for w in backbone.weights]
    assert not np.array_equal(keras.ops.convert_to_numpy(random.weights[0]),
                              keras.ops.convert_to_numpy(backbone.weights[0]))


def test_a_preset_is_replaced_only_by_a_complete_one(backbone, tmp_path, monkeypatch):
    preset = tmp_path / "elmo_preset"
    backbone.save_to_preset(str(preset))
    before = {name: (preset / name).read_bytes() for name in os.listdir(preset)}

    def fail_after_the_config(self, backbone, max_shard_size=10):
        self._save_serialized_object(backbone, config_file="config.json")
        raise OSError("disk full")

    monkeypatch.setattr(keras_hub.src.utils.preset_utils.KerasPresetSaver, "save_backbone", fail_after_the_config)
    tiny = ElmoBackbone(lstm_dim=8, projection_dim=4, n_lstm_layers=1, filters=[[1, 4]], char_embedding_dim=4)
    with pytest.raises(OSError, match="disk full"):
        tiny.save_to_preset(str(preset))
    assert {name: (preset / name).read_bytes() for name in os.listdir(preset)} == before
    assert os.listdir(tmp_path) == ["elmo_preset"]  # no half-written folder left beside it
    monkeypatch.undo()
    tiny.save_to_preset(str(preset))  # a complete preset does replace it
    assert json.loads((preset / "config.json").read_text())["config"]["lstm_dim"] == 8
    assert os.listdir(tmp_path) == ["elmo_preset"]


def test_a_preset_folder_without_its_weights_is_refused_naming_the_file(backbone, tmp_path):
    preset = tmp_path / "elmo_preset"
    backbone.save_to_preset(str(preset))
    (preset / "model.weights.h5").unlink()
    with pytest.raises(FileNotFoundError, match=r"elmo_preset/model\.weights\.h5: missing"):
        ElmoBackbone.from_preset(str(preset))
    (preset / "config.json").write_text('{"registered_name": "elmo_keras>ElmoBack')
    with pytest.raises(ValueError, match=r"elmo_preset/config\.json: not a readable keras-hub config"):
        ElmoBackbone.from_preset(str(preset), load_weights=False)


NO_KERAS_HUB = """
import sys
sys.modules["keras_hub"] = None  # `import keras_hub` fails, as where it is not installed
import importlib.util
real_find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name == "keras_hub" else real_find_spec(name, *a)
import numpy as np, keras
from elmo_keras import ElmoBackbone, batch_to_ids
b = ElmoBackbone.from_files(sys.argv[1], sys.argv[2])
out = b(batch_to_ids([["a", "b"]]))
config = b.get_config()
again = ElmoBackbone.from_config(config)
print(type(b).__mro__[1].__name__, sorted(config)[:3], tuple(out["activations"].shape))
try:
    b.save_to_preset(sys.argv[3])
except ImportError as e:
    print(e)
import elmo_keras
try:
    elmo_keras.ElmoTextClassifier(b, num_classes=2)
except ImportError as e:
    print(e)
"""


@pytest.mark.slow
def test_without_keras_hub_the_backbone_works_and_presets_and_the_classifier_name_the_extra(tmp_path):
    result = subprocess.run([sys.executable, "-c", NO_KERAS_HUB, FIXTURE_OPTIONS, FIXTURE_WEIGHTS,
                             str(tmp_path / "p")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "Backbone ['activation', 'cell_clip', 'char_embedding_dim'] (1, 3, 4, 32)"
    assert lines[1] == ('ElmoBackbone.save_to_preset needs keras-hub, which is not installed: '
                        'pip install "elmo-keras[keras-hub]"')
    assert lines[2] == 'ElmoTextClassifier needs keras-hub, which is not installed: pip install "elmo-keras[keras-hub]"'
    assert not (tmp_path / "p").exists()


def test_to_preset_command_writes_a_preset_of_the_original_files(backbone, tmp_path, capsys):
    from elmo_keras.cli import main

    out = tmp_path / "preset"
    args = ["to-preset", str(out), "--options-file", FIXTURE_OPTIONS, "--weight-file", FIXTURE_WEIGHTS]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["parameters"] == backbone.count_params()
    loaded = keras_hub.models.Backbone.from_preset(str(out))
    for a, b in zip(loaded.weights, backbone.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    written = (out / "model.weights.h5").read_bytes()
    assert main(args) == 1  # an existing preset is kept
    assert capsys.readouterr().err.strip().endswith("exists: pass --overwrite to replace it")
    assert (out / "model.weights.h5").read_bytes() == written
    (out / "task.json").write_text("{}")  # a file of another preset: --overwrite replaces the folder whole
    assert main(args + ["--overwrite"]) == 0
    assert sorted(os.listdir(out)) == ["README.md", "assets", "config.json", "metadata.json", "model.weights.h5",
                                       "tokenizer.json"]
    assert sorted(os.listdir(tmp_path)) == ["preset"]
    assert type(keras_hub.models.Tokenizer.from_preset(str(out))).__name__ == "ElmoTokenizer"
    card = (out / "README.md").read_text()
    from elmo_keras.io.digest import file_digest
    assert file_digest(FIXTURE_WEIGHTS) in card and f"{backbone.count_params():,} parameters" in card


@pytest.mark.parametrize("handle, host", [("kaggle://someone/elmo/keras/elmo_default", "api.kaggle.com"),
                                          ("hf://someone/elmo", "huggingface.co")])
def test_a_handle_without_a_network_is_refused_at_once_naming_it(handle, host, monkeypatch):
    import socket

    from elmo_keras import ElmoTextClassifier, ElmoTokenClassifier

    def no_network(name, *args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    for v in ("HF_HUB_OFFLINE", "KAGGLEHUB_OFFLINE", "HF_ENDPOINT"):
        monkeypatch.delenv(v, raising=False)
    for cls in (ElmoBackbone, ElmoTextClassifier, ElmoTokenClassifier):
        with pytest.raises(ConnectionError, match=f"^{handle}: cannot reach {host} .*without a network, load a "
                                                  f"local preset folder$"):
            cls.from_preset(handle)
