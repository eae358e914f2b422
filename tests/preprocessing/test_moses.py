"""`tokenizer="moses"`: the Moses tokenizer (sacremoses), as the released English models' text was split."""

import sys

import h5py
import numpy as np
import pytest
from conftest import FIXTURE_OPTIONS, FIXTURE_WEIGHTS

from elmo_keras import ElmoEmbedder, ElmoTokenizer
from elmo_keras.cli import main
from elmo_keras.preprocessing import split
from elmo_keras.preprocessing.split import check_splitter, split_sentence

sacremoses = pytest.importorskip("sacremoses", reason="the moses extra (pip install 'elmo-keras[moses]')")

# Clitics, currency, dashes, quotes, abbreviations, ellipses, non-ASCII: Moses' English rules (escape off).
EXPECTED = {
    "I can't pay $5.20, right?": ["I", "can", "'t", "pay", "$", "5.20", ",", "right", "?"],
    'He said "don\'t" -- it\'s 100% done...': ["He", "said", '"', "don", "'t", '"', "--", "it", "'s", "100", "%",
                                                "done", "..."],
    "The U.S. economy grew (slowly) in 2019.": ["The", "U.S.", "economy", "grew", "(", "slowly", ")", "in",
                                                "2019", "."],
    "Rock-n-roll; café über alles!": ["Rock-n-roll", ";", "café", "über", "alles", "!"],
}


@pytest.mark.parametrize("text", sorted(EXPECTED))
def test_english_splits_as_moses(text):
    assert split_sentence(text, "moses") == EXPECTED[text]
    assert split_sentence(text, "moses:en") == sacremoses.MosesTokenizer(lang="en").tokenize(text, escape=False)


def test_the_language_is_an_option():
    text = "L'homme qu'on aime."
    assert split_sentence(text, "moses:fr") == ["L'", "homme", "qu'", "on", "aime", "."]
    assert split_sentence(text, "moses:fr") == sacremoses.MosesTokenizer(lang="fr").tokenize(text, escape=False)


def test_embedder_and_command_line_read_moses_tokens(tmp_path):
    embedder = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, tokenizer="moses")
    text = "I can't pay $5.20, right?"
    by_text, = embedder.embed_texts([text])
    np.testing.assert_array_equal(by_text, embedder.embed_sentence(EXPECTED[text]))  # the same computation
    inp, out = tmp_path / "in.txt", tmp_path / "out.hdf5"
    inp.write_text(text + "\n", encoding="utf-8")
    model = ["--options-file", FIXTURE_OPTIONS, "--weight-file", FIXTURE_WEIGHTS, "--quiet"]
    assert main(["embed", str(inp), str(out), "--tokenizer", "moses", *model]) == 0
    with h5py.File(out, "r") as f:
        assert f["0"].shape == (3, len(EXPECTED[text]), 32)


@pytest.mark.parametrize("name, message", [
    ("moses:FR", r"tokenizer 'moses:FR': expected 'moses' or 'moses:LANG' with a language code of 2-3 lower-case"),
    ("moses:", r"tokenizer 'moses:': expected 'moses' or 'moses:LANG'"),
    ("mose", r"tokenizer must be one of \('whitespace', 'punctuation', 'moses'\) \(or 'moses:LANG'\), got 'mose'"),
])
def test_bad_names_are_one_line_before_any_work(tmp_path, capsys, name, message):
    with pytest.raises(ValueError, match=message):
        check_splitter(name)
    with pytest.raises(SystemExit) as exit_info:
        main(["embed", str(tmp_path / "missing.txt"), str(tmp_path / "out.hdf5"), "--tokenizer", name])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("elmo-keras embed: error: argument --tokenizer: ") and err.count("\n") == 1


def test_without_sacremoses_the_error_names_the_extra(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "sacremoses", None)  # import fails as when not installed
    split._moses.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"tokenizer 'moses' needs sacremoses, which is not installed: "
                                             r"pip install 'elmo-keras\[moses\]'$"):
            check_splitter("moses")
        with pytest.raises(SystemExit):
            main(["embed", str(tmp_path / "in.txt"), str(tmp_path / "out.hdf5"), "--tokenizer", "moses"])
        assert "pip install 'elmo-keras[moses]'" in capsys.readouterr().err
    finally:
        split._moses.cache_clear()


def test_the_graph_tokenizer_says_moses_runs_in_python_only():
    with pytest.raises(ValueError, match=r"ElmoTokenizer: tokenizer 'moses' runs in Python only"):
        ElmoTokenizer(tokenizer="moses")
