"""Tests of the numpy character-id encoder against hand-written ids."""

import unicodedata

import numpy as np
import pytest

from elmo_keras.preprocessing.char_ids import CharIdCache
from elmo_keras.preprocessing.char_ids import batch_to_ids
from elmo_keras.preprocessing.char_ids import token_to_char_ids
from elmo_keras.preprocessing.char_ids import tokens_to_char_ids

# Shifted (+1) codes, written out rather than imported so that a wrong
# constant in the module shows up here.
BOW, EOW, PAD = 259, 260, 261
BOS_ROW = [259, 257, 260] + [261] * 47
EOS_ROW = [259, 258, 260] + [261] * 47


def word_ids(byte_values, width=50):
    """Expected ids of a word whose (already cut) bytes are `byte_values`."""
    row = [BOW] + [b + 1 for b in byte_values] + [EOW]
    return row + [PAD] * (width - len(row))


def test_known_ids_of_hi():
    np.testing.assert_array_equal(token_to_char_ids("Hi"), word_ids([72, 105]))
    assert word_ids([72, 105])[:5] == [259, 73, 106, 260, 261]


def test_sentence_boundaries():
    np.testing.assert_array_equal(token_to_char_ids("<S>"), BOS_ROW)
    np.testing.assert_array_equal(token_to_char_ids("</S>"), EOS_ROW)
    np.testing.assert_array_equal(
        tokens_to_char_ids(["Hi"]), [BOS_ROW, word_ids([72, 105]), EOS_ROW]
    )


def test_boundary_lookalikes_are_ordinary_words():
    np.testing.assert_array_equal(token_to_char_ids("<s>"), word_ids(b"<s>"))
    np.testing.assert_array_equal(token_to_char_ids(" <S>"), word_ids(b" <S>"))


def test_dtype_and_empty_token():
    ids = token_to_char_ids("")
    assert ids.dtype == np.int32
    np.testing.assert_array_equal(ids, word_ids([]))
    assert ids[:3].tolist() == [259, 260, 261]


@pytest.mark.parametrize(
    "token, expected_bytes",
    [
        ("café", [0x63, 0x61, 0x66, 0xC3, 0xA9]),
        ("日本語", [0xE6, 0x97, 0xA5, 0xE6, 0x9C, 0xAC, 0xE8, 0xAA, 0x9E]),
        ("😀", [0xF0, 0x9F, 0x98, 0x80]),
        ("a\x00b", [0x61, 0x00, 0x62]),
        ("\xff", [0xC3, 0xBF]),
    ],
)
def test_multibyte_utf8(token, expected_bytes):
    np.testing.assert_array_equal(token_to_char_ids(token), word_ids(expected_bytes))


def test_48_bytes_fill_every_slot():
    ids = token_to_char_ids("x" * 48)
    np.testing.assert_array_equal(ids, [BOW] + [ord("x") + 1] * 48 + [EOW])
    assert PAD not in ids


@pytest.mark.parametrize("length", [49, 50, 100])
def test_long_tokens_are_cut_to_48_bytes(length):
    token = "".join(chr(ord("a") + k % 26) for k in range(length))
    expected = word_ids(token[:48].encode())
    np.testing.assert_array_equal(token_to_char_ids(token), expected)
    np.testing.assert_array_equal(token_to_char_ids(token), token_to_char_ids(token[:48]))


def test_cut_inside_multibyte_character():
    token = "a" * 47 + "é"  # 49 bytes: the 48-byte cut keeps only 0xC3
    ids = token_to_char_ids(token)
    np.testing.assert_array_equal(ids, word_ids([0x61] * 47 + [0xC3]))
    assert ids[48] == 0xC3 + 1 and ids[49] == EOW


def test_nfc_and_nfd_differ():
    nfc = unicodedata.normalize("NFC", "é")
    nfd = unicodedata.normalize("NFD", "é")
    np.testing.assert_array_equal(token_to_char_ids(nfc), word_ids([0xC3, 0xA9]))
    np.testing.assert_array_equal(token_to_char_ids(nfd), word_ids([0x65, 0xCC, 0x81]))


def test_other_widths():
    np.testing.assert_array_equal(
        token_to_char_ids("abcdef", max_characters_per_token=5),
        [BOW, 98, 99, 100, EOW],
    )
    np.testing.assert_array_equal(
        token_to_char_ids("<S>", max_characters_per_token=3), [259, 257, 260]
    )


def test_empty_sentence():
    ids = tokens_to_char_ids([])
    assert ids.shape == (2, 50)
    np.testing.assert_array_equal(ids, [BOS_ROW, EOS_ROW])


def test_batch_to_ids_pads_with_zero_rows():
    batch = [["a", "bb", "c"], [], ["d"]]
    ids = batch_to_ids(batch)
    assert ids.shape == (3, 5, 50) and ids.dtype == np.int32
    for k, sentence in enumerate(batch):
        np.testing.assert_array_equal(ids[k, : len(sentence) + 2], tokens_to_char_ids(sentence))
        np.testing.assert_array_equal(ids[k, len(sentence) + 2 :], 0)
    # Every real position has some id > 0, so lengths can be read back.
    np.testing.assert_array_equal((ids > 0).any(-1).sum(-1), [5, 2, 3])


def test_batch_to_ids_of_empty_batch():
    assert batch_to_ids([]).shape == (0, 2, 50)


def test_cache_equals_uncached():
    sentences = [["the", "cat", "the"], ["café", "a" * 60, "<S>", ""], []]
    cache = CharIdCache()
    for sentence in sentences:
        np.testing.assert_array_equal(cache.sentence(sentence), tokens_to_char_ids(sentence))
    np.testing.assert_array_equal(cache.token("the"), token_to_char_ids("the"))
    small = CharIdCache(max_characters_per_token=7)
    np.testing.assert_array_equal(
        small.sentence(["abcdefgh"]), tokens_to_char_ids(["abcdefgh"], 7)
    )
