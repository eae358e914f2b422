"""benchmarks/probe_word_sense.py: the items it reads from WordNet's files, and its 1-NN scorer."""

import importlib.util
import json
import pathlib

import numpy as np
import pytest

SCRIPT = pathlib.Path(__file__).parent.parent / "probe_word_sense.py"


def _load_probe():
    spec = importlib.util.spec_from_file_location("probe_word_sense", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


probe = _load_probe()

HEADER = "  1 This software and database is being provided to you, the LICENSEE, by  \n" \
         "  2 Princeton University under the following license.  \n"

# In the wndb format: offset lex_filenum ss_type w_cnt(hex) [word lex_id]... p_cnt [pointers]... | gloss
DATA_NOUN = HEADER + "".join(line + "  \n" for line in [
    # "bank": two senses of two examples each; the second's examples use "banks" (suffix rule) and
    # hold one example without the lemma. river_bank is not a single word.
    '00000100 15 n 02 Bank 0 river_bank 0 001 @ 00000200 n 0000 | sloping land; '
    '"they sat on the bank"; "the Bank was muddy"',
    '00000200 14 n 01 bank 0 002 @ 00000100 n 0000 ~ 00000300 n 0000 | a financial institution; '
    '"he went to two banks"; "the bank closed, sadly"; "a dog barked"',
    # "mouse": inflected through noun.exc ("mice mouse"), punctuation split from the word.
    '00000300 05 n 01 mouse 0 000 | a small rodent; "the mice ran"; "a mouse squeaked"',
    '00000400 06 n 01 mouse 0 000 | a pointing device; "mice, keyboards and screens"; "click the mouse"',
    # "cat": its second sense has one example only, so cat keeps one sense and is dropped.
    '00000500 05 n 01 cat 0 000 | a feline; "the cat sat"; "cats purr"',
    '00000600 06 n 01 cat 0 000 | a whip; "a cat o\' nine tails"',
])
DATA_VERB = HEADER + "".join(line + "  \n" for line in [
    # Verb lines carry frames after the pointers; w_cnt is hex ("0a" would be ten words).
    '00000700 38 v 02 walk 0 stroll 0 002 @ 00000900 v 0000 ~ 00000800 v 0000 02 + 01 00 + 22 00 | '
    'use one\'s feet; "she walked home"; "he walks daily"; "Walking is healthy"',
    '00000800 38 v 01 walk 1 001 @ 00000700 v 0000 01 + 08 00 | take a dog out; "Walk the dog"; '
    '"walking a dog is fun"',
    # "stroll" has one sense only: dropped.
])
NOUN_EXC = "geese goose\nmice mouse\n"


@pytest.fixture
def wordnet(tmp_path):
    (tmp_path / "data.noun").write_text(DATA_NOUN, encoding="utf-8")
    (tmp_path / "data.verb").write_text(DATA_VERB, encoding="utf-8")
    (tmp_path / "noun.exc").write_text(NOUN_EXC, encoding="utf-8")
    return tmp_path


def test_parse_data_line_reads_the_words_and_gloss():
    line = DATA_VERB.splitlines()[2]
    assert probe.parse_data_line(line) == (
        700, "v", ["walk", "stroll"], 'use one\'s feet; "she walked home"; "he walks daily"; "Walking is healthy"')
    assert probe.parse_data_line(HEADER.splitlines()[0]) is None


def test_extract_items_keeps_lemmas_with_two_senses_of_two_examples(wordnet):
    heldout = {"the bank closed , sadly", "walking a dog is fun"}
    items = probe.extract_items(str(wordnet), is_heldout=heldout.__contains__)
    got = [(i.pos, i.lemma, i.offset, i.sentence, list(i.tokens), i.target, i.heldout) for i in items]
    assert got == [
        ("n", "bank", 100, "they sat on the bank", ["they", "sat", "on", "the", "bank"], 4, False),
        ("n", "bank", 100, "the Bank was muddy", ["the", "Bank", "was", "muddy"], 1, False),
        ("n", "bank", 200, "he went to two banks", ["he", "went", "to", "two", "banks"], 4, False),
        ("n", "bank", 200, "the bank closed, sadly", ["the", "bank", "closed", ",", "sadly"], 1, True),
        ("n", "mouse", 300, "the mice ran", ["the", "mice", "ran"], 1, False),
        ("n", "mouse", 300, "a mouse squeaked", ["a", "mouse", "squeaked"], 1, False),
        ("n", "mouse", 400, "mice, keyboards and screens", ["mice", ",", "keyboards", "and", "screens"], 0, False),
        ("n", "mouse", 400, "click the mouse", ["click", "the", "mouse"], 2, False),
        ("v", "walk", 700, "she walked home", ["she", "walked", "home"], 1, False),
        ("v", "walk", 700, "he walks daily", ["he", "walks", "daily"], 1, False),
        ("v", "walk", 700, "Walking is healthy", ["Walking", "is", "healthy"], 0, False),
        ("v", "walk", 800, "Walk the dog", ["Walk", "the", "dog"], 0, False),
        ("v", "walk", 800, "walking a dog is fun", ["walking", "a", "dog", "is", "fun"], 0, True),
    ]
    assert probe.counts(items)["lemmas"] == 3
    assert probe.counts(items)["senses"] == 6
    assert probe.counts(items)["heldout_examples"] == 2


def test_without_the_exception_list_the_irregular_forms_are_not_found(wordnet):
    (wordnet / "noun.exc").unlink()
    items = probe.extract_items(str(wordnet), is_heldout=lambda s: False)
    # "mice" no longer matches: each mouse sense keeps one example, so mouse is dropped.
    assert sorted({i.lemma for i in items}) == ["bank", "walk"]


def test_inflection_rules():
    exceptions = {"v": {"ran": {"run"}}}
    assert probe.is_form_of("ran", "run", "v", exceptions)
    assert probe.is_form_of("tried", "try", "v", {}) is False  # "ied" is not a rule; verb.exc lists it
    assert probe.is_form_of("hurries", "hurry", "v", {})
    assert probe.is_form_of("churches", "church", "n", {})
    assert probe.is_form_of("firemen", "fireman", "n", {})
    assert probe.is_form_of("nicer", "nice", "a", {})
    assert not probe.is_form_of("s", "", "n", {})
    assert probe.word_lemma("Galore(ip)") == "galore"


def test_the_heldout_rule_is_the_bundled_corpus_one():
    is_heldout = probe.load_is_heldout()
    assert is_heldout("a b c") == (int(__import__("hashlib").sha1(b"a b c").hexdigest(), 16) % 50 == 0)


def test_nearest_neighbour_layer_1_separates_the_senses_layer_0_does_not():
    # Two lemmas of four examples, senses 1, 1, 2, 2 each. Layer 0 puts the first
    # lemma's senses apart but pairs the second lemma's examples across senses.
    groups = ["a"] * 4 + ["b"] * 4
    labels = [1, 1, 2, 2] * 2
    apart = [[1, 0], [1, .1], [0, 1], [.1, 1]]
    crossed = [[1, 0], [0, 1], [1, .1], [.1, 1]]
    layer0, layer1 = np.array(apart + crossed), np.array(apart + apart)
    assert probe.nearest_neighbour_scores(layer0, groups, labels).tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    assert probe.nearest_neighbour_scores(layer1, groups, labels).tolist() == [1.0] * 8
    # Neighbours of another lemma never count, however near.
    # (Item 2, of lemma b, is nearest to item 0 and shares its sense; item 2 alone in b scores 0.)
    near = np.array([[1, 0], [1, .1], [1, .05]])
    assert probe.nearest_neighbour_scores(near, ["a", "a", "b"], [1, 2, 1]).tolist() == [0.0, 0.0, 0.0]
    # Ties share the credit: one of three equally near neighbours has the query's sense.
    np.testing.assert_allclose(probe.nearest_neighbour_scores(np.ones((4, 3)), ["a"] * 4, [1, 1, 2, 2]), 1 / 3)

    items = [probe.Item("n", g, label, "s", ("w",), 0, heldout)
             for g, label, heldout in zip(groups, labels, [True, False, False, False, True, False, False, False])]
    vectors = np.stack([layer0, layer1, layer1 * 2 + .01])
    rows = probe.score_layers(vectors, items)
    assert list(rows) == ["layer 0 (char-CNN)", "layer 1", "layer 2", "layers 1-2 mean", "majority baseline",
                          "random neighbour"]
    assert rows["layer 0 (char-CNN)"]["all"] == 0.5
    assert rows["layer 0 (char-CNN)"]["heldout"] == 0.5  # items 0 (right) and 4 (wrong)
    assert rows["layer 1"]["all"] == rows["layer 1"]["heldout"] == 1.0
    assert rows["layers 1-2 mean"]["all"] == 1.0
    assert rows["majority baseline"]["all"] == 0.0  # leaving the query out, the other sense is the majority
    assert rows["random neighbour"]["all"] == pytest.approx(1 / 3)
    assert probe.best_lstm_gain(rows) == {"layer": "layer 1", "all_points": 50.0, "heldout_points": 50.0}
    assert "| layer 0 (char-CNN) | 0.500 ± 0.177 | 0.500 ± 0.354 |" in probe.markdown_table(rows)


def test_majority_baseline_breaks_ties_by_synset_offset():
    # Leaving a query of the three-example sense out, its sense ties with the other: the lower offset wins.
    assert probe.majority_scores(["g"] * 5, [3, 3, 3, 5, 5]).tolist() == [1, 1, 1, 0, 0]
    assert probe.majority_scores(["g"] * 5, [5, 5, 5, 3, 3]).tolist() == [0, 0, 0, 0, 0]
    assert probe.majority_scores(["g"] * 4 + ["h"] * 4, [3, 3, 5, 5] + [3, 3, 3, 5]).tolist() == [0] * 4 + [1, 1, 1, 0]


@pytest.mark.slow
@pytest.mark.skipif(not pathlib.Path(probe.DEFAULT_WORDNET, "data.noun").exists(),
                    reason=f"WordNet is not in {probe.DEFAULT_WORDNET}: Debian's wordnet-base "
                           "(apt-get install wordnet-base)")
def test_probe_on_the_bundled_model(capsys):
    probe.main(["--max-lemmas", "40", "--json"])
    result = json.loads(capsys.readouterr().out)
    counts = result["counts"]
    assert counts["lemmas"] == 40 and counts["senses"] > 80 and counts["examples"] > 160
    assert len(result["weights_sha256"]) == 16
    for name, row in result["rows"].items():
        assert 0.0 <= row["all"] <= 1.0, name
        assert row["heldout"] is None or 0.0 <= row["heldout"] <= 1.0, name
    assert {"layer 0 (char-CNN)", "layer 1", "layer 2", "majority baseline"} <= set(result["rows"])
