"""savedmodels/default/make_corpus.py: the bundled model's training text from WordNet and the Python docs."""

import importlib.util
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = REPO / "savedmodels" / "default" / "make_corpus.py"


def _module():
    spec = importlib.util.spec_from_file_location("make_corpus_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def sources(tmp_path):
    wordnet = tmp_path / "wordnet"
    wordnet.mkdir()
    (wordnet / "data.noun").write_text(
        "  1 This software and database is being provided\n"
        '00001 03 n 01 bank 0 000 | sloping land beside water; "they pulled the canoe up on the bank"\n'
        '00002 03 n 01 bank 1 000 | a financial institution; "he cashed a check at the bank"; '
        '"he cashed a check at the bank"\n', encoding="utf-8")
    docs = tmp_path / "html"
    (docs / "library").mkdir(parents=True)
    (docs / "genindex-A.html").write_text("<p>Index entries are not prose at all.</p>", encoding="utf-8")
    (docs / "library" / "os.html").write_text(
        "<html><body><h1>os</h1><p>This module provides a portable way. It uses "
        "<code>operating system</code> functions&nbsp;here.\u00b6</p>"
        "<pre><p>code is not read here at all</p></pre><p>Too short.</p></body></html>", encoding="utf-8")
    return wordnet, docs


def test_sentences_of_each_source(sources):
    make_corpus = _module()
    wordnet, docs = sources
    assert list(make_corpus.wordnet_sentences(str(wordnet))) == [
        "sloping land beside water", "they pulled the canoe up on the bank", "a financial institution",
        "he cashed a check at the bank", "he cashed a check at the bank"]
    # <p> prose only: no index pages, no <pre>, no sentence under 3 words, the pilcrow dropped, spaces (also no-break) made one.
    assert list(make_corpus.python_doc_sentences(str(docs))) == [
        "This module provides a portable way.", "It uses operating system functions here."]


def test_build_splits_dedupes_and_holds_out_by_hash(sources, tmp_path):
    make_corpus = _module()
    wordnet, docs = sources
    counts = make_corpus.build(str(tmp_path / "out"), str(wordnet), str(docs))
    lines = []
    for shard in sorted((tmp_path / "out" / "train").iterdir()):
        lines += [s for s in shard.read_text("utf-8").split("\n") if s]
    for heldout in ("heldout", "heldout_python"):
        lines += [s for s in (tmp_path / "out" / heldout / "heldout.txt").read_text("utf-8").split("\n") if s]
    # Punctuation split off, the duplicate example written once.
    assert sorted(lines) == sorted(["sloping land beside water", "they pulled the canoe up on the bank",
                                    "a financial institution", "he cashed a check at the bank",
                                    "This module provides a portable way .",
                                    "It uses operating system functions here ."])
    for heldout in ("heldout", "heldout_python"):
        for sentence in (tmp_path / "out" / heldout / "heldout.txt").read_text("utf-8").split("\n"):
            assert not sentence or make_corpus.is_heldout(sentence)
    assert counts["wordnet"][0] + counts["wordnet"][2] == 4
    assert counts["python-docs"][0] + counts["python-docs"][2] == 2
    assert counts["python-docs"][1] + counts["python-docs"][3] == 7 + 7


def test_command_refuses_to_replace_a_corpus(sources, tmp_path, capsys):
    make_corpus = _module()
    wordnet, docs = sources
    out = tmp_path / "corpus"
    make_corpus.main([str(out), "--wordnet", str(wordnet), "--python-docs", str(docs)])
    assert "wordnet: " in capsys.readouterr().out
    before = sorted(p.read_bytes() for p in out.rglob("*.txt"))
    with pytest.raises(SystemExit):
        make_corpus.main([str(out), "--wordnet", str(wordnet), "--python-docs", ""])
    assert sorted(p.read_bytes() for p in out.rglob("*.txt")) == before
    make_corpus.main([str(out), "--wordnet", str(wordnet), "--python-docs", "", "--overwrite"])
    assert not (out / "heldout_python").exists() and not (tmp_path / "corpus.partial").exists()


def test_missing_source_is_a_clear_error(tmp_path):
    make_corpus = _module()
    with pytest.raises(SystemExit, match="no wordnet text found"):
        make_corpus.main([str(tmp_path / "out"), "--wordnet", str(tmp_path / "nowhere"), "--python-docs", ""])
    assert not (tmp_path / "out").exists()
