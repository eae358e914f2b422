"""`elmo-keras vocab | tokenize | train | perplexity | dump-weights` end to end on a tiny model."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import FIXTURE

from elmo_keras import ElmoEmbedder
from elmo_keras.cli import main

TRAIN = str(FIXTURE / "train" / "data.txt")
TINY = {"lstm": {"dim": 16, "projection_dim": 8, "n_layers": 2},
        "char_cnn": {"embedding": {"dim": 4}, "filters": [[1, 4], [2, 4]], "n_highway": 1},
        "batch_size": 4, "unroll_steps": 5}


def _run(*args):
    result = subprocess.run([sys.executable, "-m", "elmo_keras.cli", *args], capture_output=True, text=True,
                            timeout=600)
    return result


def test_vocab_train_perplexity_dump_then_embed(tmp_path, capsys):
    vocab = str(tmp_path / "vocab.txt")
    assert main(["vocab", TRAIN, vocab, "--quiet"]) == 0
    lines = open(vocab, encoding="utf-8").read().split()
    assert lines[:3] == ["<S>", "</S>", "<UNK>"] and lines[3] == "of"  # the most frequent word
    (tmp_path / "options.json").write_text(json.dumps(TINY))
    assert main(["train", "--options-file", str(tmp_path / "options.json"), "--vocab-file", vocab,
                 "--train-prefix", TRAIN, "--save-dir", str(tmp_path / "run"), "--max-steps", "4", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["perplexity", "--save-dir", str(tmp_path / "run"), "--vocab-file", vocab, "--test-prefix", TRAIN,
                 "--batch-size", "2", "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert sorted(result) == ["average", "backward", "forward", "tokens"]
    n_words = sum(len(line.split()) + 1 for line in open(TRAIN, encoding="utf-8") if line.strip())
    assert result["tokens"] == n_words  # each word and each </S>, as bilm-tf counts
    assert 1 < result["forward"] < len(lines) * 2
    assert main(["dump-weights", "--save-dir", str(tmp_path / "run"), "--options-file", str(tmp_path / "o.json"),
                 "--weight-file", str(tmp_path / "w.hdf5")]) == 0
    assert json.load(open(tmp_path / "o.json"))["char_cnn"]["n_characters"] == 262
    vectors = ElmoEmbedder(str(tmp_path / "o.json"), str(tmp_path / "w.hdf5")).embed_sentence(["the", "models"])
    assert vectors.shape == (3, 2, 16) and np.isfinite(vectors).all()
    # Writers share one rule: an existing output is replaced only with --overwrite.
    written = (tmp_path / "w.hdf5").read_bytes()
    capsys.readouterr()
    assert main(["dump-weights", "--save-dir", str(tmp_path / "run"), "--options-file", str(tmp_path / "o.json"),
                 "--weight-file", str(tmp_path / "w.hdf5")]) == 1
    assert "o.json: exists already; pass --overwrite" in capsys.readouterr().err
    assert main(["dump-weights", "--save-dir", str(tmp_path / "run"), "--options-file", str(tmp_path / "o.json"),
                 "--weight-file", str(tmp_path / "w.hdf5"), "--overwrite"]) == 0
    assert (tmp_path / "w.hdf5").read_bytes() == written  # the same weights, bit for bit
    assert main(["vocab", TRAIN, vocab, "--quiet"]) == 1
    assert "vocab.txt: exists already; pass --overwrite" in capsys.readouterr().err
    assert main(["vocab", TRAIN, vocab, "--quiet", "--overwrite", "--min-count", "2"]) == 0
    assert len(open(vocab, encoding="utf-8").read().split()) < len(lines)


def test_options_templates_are_valid_and_default_is_the_bundled_architecture(tmp_path, capsys):
    from elmo_keras.pretrained import default_model_files
    from elmo_keras.training.options import validate_training_options
    from elmo_keras.training.templates import training_template

    for size in ("tiny", "default", "original"):
        out = tmp_path / f"{size}.json"
        assert main(["options-template", str(out), "--size", size]) == 0
        validate_training_options(json.loads(out.read_text()), n_tokens_vocab=1000, source=str(out))
    bundled = json.load(open(default_model_files()[0]))
    default = json.loads((tmp_path / "default.json").read_text())
    assert default["lstm"] == bundled["lstm"]
    assert {k: v for k, v in default["char_cnn"].items() if k != "n_characters"} == \
        {k: v for k, v in bundled["char_cnn"].items() if k != "n_characters"}
    # "small", the former name, still writes the same file, and says it is deprecated.
    capsys.readouterr()
    assert main(["options-template", str(tmp_path / "small.json"), "--size", "small"]) == 0
    assert "--size small is deprecated" in capsys.readouterr().err
    assert json.loads((tmp_path / "small.json").read_text()) == default
    with pytest.warns(DeprecationWarning, match="the released model 'small' is 2 x 1024 cells"):
        assert training_template("small") == training_template("default")
    original = json.loads((tmp_path / "original.json").read_text())
    assert (original["lstm"]["dim"], original["lstm"]["projection_dim"]) == (4096, 512)
    assert sum(n for _, n in original["char_cnn"]["filters"]) == 2048
    assert main(["options-template", str(tmp_path / "tiny.json")]) == 1
    assert "tiny.json: exists already; pass --overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("args", [
    ["train", "--options-file", "o.json", "--vocab-file", "v.txt", "--train-prefix", "x", "--save-dir", "r",
     "--max-steps", "0"],
    ["train", "--options-file", "o.json", "--vocab-file", "v.txt", "--train-prefix", "x", "--save-dir", "r",
     "--checkpoint-every", "-1"],
    ["perplexity", "--save-dir", "r", "--vocab-file", "v.txt", "--test-prefix", "x", "--batch-size", "0"],
    ["vocab", "x", "v.txt", "--min-count", "-3"],
    ["export", "out", "--version", "-1"],
])
def test_numeric_arguments_are_checked_by_the_parser(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: argument --" in err and "expected" in err


def test_tokenize_splits_punctuation(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.txt").write_text("Hello, world!\n\nIt costs $3.\n", encoding="utf-8")
    assert main(["tokenize", str(tmp_path / "raw" / "*.txt"), str(tmp_path / "out"), "--quiet"]) == 0
    assert (tmp_path / "out" / "a.txt").read_text() == "Hello , world !\nIt costs $ 3 .\n"


@pytest.mark.parametrize("args, message", [
    (["vocab", "/nonexistent/*.txt", "v.txt"], "no files match"),
    (["perplexity", "--save-dir", "/nonexistent", "--vocab-file", str(FIXTURE / "train" / "vocab.txt"),
      "--test-prefix", TRAIN], "/nonexistent"),
])
def test_bad_input_is_one_clear_line(args, message):
    result = _run(*args)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
