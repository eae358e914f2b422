"""examples/tag_wordnet_pos.py runs end to end (small), and its saved preset predicts as the tagger did."""

import importlib.util
import pathlib
import sys

import pytest

pytest.importorskip("keras_hub", reason="needs keras-hub: the keras-hub extra")

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.slow
def test_the_tagging_example_trains_both_taggers_and_reloads_its_preset(fixture_model_folder, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))  # as when run as a script: it imports its sibling example
    spec = importlib.util.spec_from_file_location("tag_wordnet_pos", EXAMPLES / "tag_wordnet_pos.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    result = example.main(["--model", fixture_model_folder, "--train-size", "300", "--epochs", "1"])
    assert (result["train_rows"], result["test_rows"]) == (300, 1458)
    assert 0 <= result["elmo_accuracy"] <= 1 and 0 <= result["char_cnn_only_accuracy"] <= 1
    # The preset holds the trained tagger: the very same predictions.
    assert result["reloaded_preset_accuracy"] == result["elmo_accuracy"]
    sys.modules.pop("finetune_classifier", None)
