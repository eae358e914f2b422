"""ELMoForManyLangs' token ids: numpy (`CharDicIds`), in the graph (`CharDicIdsTF`) and `ElmoTokenizer` agree.

That the numpy ids are their code's is checked against their code in
tests/io/test_manylangs.py; here the in-graph ids equal the numpy ones on
hard input (several scripts, astral code points, unknown characters and
words, tokens over 48 code points, the sentence-marker strings, empty tokens
and sentences), eagerly, in a `tf.function` and in `tf.data`.
"""

import os

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

import manylangs_models

from elmo_keras.preprocessing.char_dic_ids import CharDicIds, DictionaryError, read_dictionary
from elmo_keras.preprocessing.char_dic_ids_tf import CharDicIdsTF

HARD = manylangs_models.SENTENCES + [
    [], ["<eos>", "", manylangs_models.LONG_TOKEN * 2, "😀x" * 30, "<bos>" + "x" * 50, "<bos>", "<pad>"],
    ["\u3000", "a\u0301", "🇫🇷", "\U0010ffff"],
]


@pytest.fixture(scope="module")
def ids():
    chars, words = manylangs_models.dictionaries()
    char_to_id, word_to_id = {c: i for i, c in enumerate(chars)}, {w: i for i, w in enumerate(words)}
    return CharDicIds(char_to_id, word_to_id), CharDicIdsTF(char_to_id, word_to_id)


def test_numpy_ids_by_hand(ids):
    numpy_ids, _ = ids
    row = numpy_ids.token("мир☃")
    chars = numpy_ids.char_to_id
    assert row.shape == (51,)
    # <eow> opens and <bow> closes (their swap); ☃ is unknown; <pad> fills; ids shifted by one.
    assert row[:7].tolist() == [chars["<eow>"] + 1, chars["м"] + 1, chars["и"] + 1, chars["р"] + 1,
                                chars["<oov>"] + 1, chars["<bow>"] + 1, chars["<pad>"] + 1]
    assert row[-1] == numpy_ids.word_to_id["<oov>"] + 1
    assert numpy_ids.token("<bos>")[:4].tolist() == [chars["<eow>"] + 1, chars["<bos>"] + 1, chars["<bow>"] + 1,
                                                     chars["<pad>"] + 1]


def test_in_graph_ids_equal_numpy_ids(ids):
    numpy_ids, graph_ids = ids
    expected = numpy_ids.batch(HARD)
    np.testing.assert_array_equal(graph_ids(tf.ragged.constant(HARD, dtype=tf.string)).numpy(), expected)
    traced = tf.function(graph_ids, input_signature=[tf.RaggedTensorSpec([None, None], tf.string)])
    np.testing.assert_array_equal(traced(tf.ragged.constant(HARD, dtype=tf.string)).numpy(), expected)
    dataset = tf.data.Dataset.from_tensor_slices(tf.ragged.constant(HARD, dtype=tf.string)).batch(4).map(graph_ids)
    for k, batch in enumerate(dataset):
        np.testing.assert_array_equal(batch.numpy(), numpy_ids.batch(HARD[4 * k : 4 * k + 4]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60), max_size=4),
                min_size=1, max_size=3))
def test_in_graph_ids_equal_numpy_ids_on_any_text(ids, sentences):
    numpy_ids, graph_ids = ids
    ragged = tf.ragged.constant(sentences, dtype=tf.string, ragged_rank=1) if any(sentences) else \
        tf.RaggedTensor.from_row_lengths(tf.constant([], tf.string), [0] * len(sentences))
    np.testing.assert_array_equal(graph_ids(ragged).numpy(), numpy_ids.batch(sentences))


def test_dictionary_reading_follows_theirs(tmp_path):
    path = tmp_path / "char.dic"
    # A line of one field is U+3000 (their rule for a token that strip() took away).
    path.write_text("<bow>\t0\n\t1\nb\t2\n", encoding="utf-8")
    assert read_dictionary(str(path)) == {"<bow>": 0, "\u3000": 1, "b": 2}
    with pytest.raises(DictionaryError, match=r"char.dic: missing the entry '<pad>'"):
        read_dictionary(str(path), markers=("<bow>", "<pad>"))
    with pytest.raises(DictionaryError, match=r"nope.dic: dictionary not found"):
        read_dictionary(str(tmp_path / "nope.dic"))


# === ElmoTokenizer through the dictionaries: the same ids, its dictionaries as assets ===

def test_elmo_tokenizer_of_dictionaries_gives_the_numpy_ids(ids, tmp_path):
    from elmo_keras import ElmoTokenizer

    numpy_ids, _ = ids
    sentences = manylangs_models.SENTENCES
    texts = [" ".join(s) for s in sentences]
    expected = numpy_ids.batch(sentences)
    tokenizer = ElmoTokenizer(char_dictionary=numpy_ids.char_to_id, word_dictionary=numpy_ids.word_to_id)
    assert tokenizer.token_id_width == 51 and tokenizer.vocabulary_size() == len(numpy_ids.char_to_id) + 1
    np.testing.assert_array_equal(tokenizer(texts), expected)
    np.testing.assert_array_equal(tokenizer(tf.ragged.constant(sentences)), expected)
    np.testing.assert_array_equal(tokenizer(texts[1]), numpy_ids.sentence(sentences[1]))
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(4).map(tokenizer)
    for k, batch in enumerate(dataset):
        np.testing.assert_array_equal(batch.numpy(), numpy_ids.batch(sentences[4 * k : 4 * k + 4]))

    # The config names the kind of ids; the dictionaries are assets (keras-hub's way with vocabularies).
    config = tokenizer.get_config()
    assert config["characters"] == "code_points" and not any("dictionary" in key for key in config)
    restored = ElmoTokenizer.from_config(config)
    with pytest.raises(ValueError, match=r"characters 'code_points' and no dictionaries yet"):
        restored(texts)
    tokenizer.save_assets(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["char.dic", "word.dic"]
    restored.load_assets(str(tmp_path))
    assert restored.get_config() == config
    np.testing.assert_array_equal(restored(texts), expected)
    from_files = ElmoTokenizer(char_dictionary=str(tmp_path / "char.dic"), word_dictionary=tmp_path / "word.dic")
    np.testing.assert_array_equal(from_files(texts), expected)


def test_elmo_tokenizer_refuses_half_or_wrong_dictionaries(ids):
    from elmo_keras import ElmoTokenizer

    numpy_ids, _ = ids
    chars, words = numpy_ids.char_to_id, numpy_ids.word_to_id
    with pytest.raises(ValueError, match=r"pass both char_dictionary and word_dictionary"):
        ElmoTokenizer(char_dictionary=chars)
    with pytest.raises(DictionaryError, match=r"ElmoTokenizer: word_dictionary: missing the entry '<pad>'"):
        ElmoTokenizer(char_dictionary=chars, word_dictionary={"<oov>": 0})
    with pytest.raises(DictionaryError, match=r"ElmoTokenizer: char_dictionary: expected ids 0..1, each once"):
        ElmoTokenizer(char_dictionary={"<bow>": 0, "<eow>": 2}, word_dictionary=words)
    with pytest.raises(ValueError, match=r"characters must be 'utf8_bytes' \(no dictionaries\) or 'code_points'"):
        ElmoTokenizer(char_dictionary=chars, word_dictionary=words, characters="utf8_bytes")
    assert "characters" not in ElmoTokenizer().get_config()  # bilm-tf's byte ids: the config as it was


def test_a_keras_file_carries_the_dictionaries(ids, tmp_path):
    import keras

    from elmo_keras import ElmoTokenizer

    if keras.backend.backend() != "tensorflow":
        pytest.skip("a model with string inputs runs on the TensorFlow backend")
    numpy_ids, _ = ids
    text = keras.Input(shape=(), dtype="string")
    tokenizer = ElmoTokenizer(char_dictionary=numpy_ids.char_to_id, word_dictionary=numpy_ids.word_to_id)
    keras.Model(text, tokenizer(text)).save(tmp_path / "tokenizer.keras")
    loaded = keras.saving.load_model(tmp_path / "tokenizer.keras")
    sentences = manylangs_models.SENTENCES
    np.testing.assert_array_equal(loaded(tf.constant([" ".join(s) for s in sentences])),
                                  numpy_ids.batch(sentences))
