"""Property tests: the numpy and the in-graph encoders give identical ids on any input.

Arbitrary Unicode (lone surrogates, NUL, combining marks, whitespace of every
kind), over-long tokens, every UTF-8 length from 46 to 52 bytes with
multi-byte characters across the cut at 48, and arbitrary bytes. Seeded
(`derandomize=True`) and bounded: about 15 s in all.

What each side does with a lone surrogate (a code point U+D800-U+DFFF alone,
which has no UTF-8 form): both drop it, as `str.encode("utf-8", "ignore")`
does (bilm-tf's and AllenNLP's encoding), and only then look for `<S>`/`</S>`.
Byte strings are used as they are on both sides, invalid UTF-8 included.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

tf = pytest.importorskip("tensorflow")

from elmo_keras.preprocessing import char_ids_tf  # noqa: E402
from elmo_keras.preprocessing.char_ids import batch_to_ids, token_to_char_ids  # noqa: E402


def seeded(examples):
    return settings(derandomize=True, max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


WHITESPACE = [c for c in map(chr, range(0x3001)) if c.isspace()]
MULTIBYTE = ["é", "\u0301", "€", "日", "😀", "\U0010ffff"]  # 2, 2, 3, 3, 4 and 4 bytes
SPECIAL = ["\x00", "\u0301", "\u0300", "\u20dd", "\ud800", "\udbff", "\udc00", "\udfff", "<", "S", "/", ">",
           "\ufeff", "\u200b"] + MULTIBYTE
CHARACTERS = st.one_of(st.characters(), st.characters(categories=["Cs"]), st.characters(categories=["M"]),
                       st.sampled_from(SPECIAL))
WORD_CHARACTERS = CHARACTERS.filter(lambda c: not c.isspace())


@st.composite
def near_the_cut(draw, characters=st.just("a")):
    """A token of 46..52 UTF-8 bytes with multi-byte characters placed anywhere, often across byte 48."""
    target = draw(st.integers(46, 52))
    wide = draw(st.lists(st.sampled_from(MULTIBYTE), min_size=1, max_size=4))
    while sum(len(c.encode()) for c in wide) > target:
        wide.pop()
    narrow = target - sum(len(c.encode()) for c in wide)
    filler = [draw(characters) for _ in range(narrow)]
    at = draw(st.integers(0, narrow))
    token = "".join(filler[:at] + wide + filler[at:])
    assert len(token.encode()) == target
    return token


TOKENS = st.one_of(
    st.text(CHARACTERS, max_size=12),
    st.text(CHARACTERS, min_size=40, max_size=70),  # over-long, many cut inside a character
    near_the_cut(),
    st.sampled_from(["", "<S>", "</S>", "<S>\ud800", "\udfff</S>", "<s>", "<S", "\ud800", "a\x00b",
                     "cafe\u0301", "x" * 48, "y" * 49, "z" * 50]),
)
WORDS = st.one_of(st.text(WORD_CHARACTERS, min_size=1, max_size=12), near_the_cut(),
                  st.text(WORD_CHARACTERS, min_size=45, max_size=60))


def numpy_tokens(tokens, width=50):
    return np.stack([token_to_char_ids(t, width) for t in tokens]).reshape(len(tokens), width)


@seeded(150)
@given(st.lists(TOKENS, min_size=1, max_size=16), st.sampled_from([3, 4, 10, 50, 60]))
def test_tokens_equal_on_any_unicode(tokens, width):
    expected = numpy_tokens(tokens, width)
    np.testing.assert_array_equal(char_ids_tf.tokens_to_char_ids(tokens, width).numpy(), expected)
    # The same tokens as bytes, the way they arrive in a graph.
    as_bytes = tf.constant([t.encode("utf-8", "ignore") for t in tokens], tf.string)
    np.testing.assert_array_equal(char_ids_tf.tokens_to_char_ids(as_bytes, width).numpy(), expected)


@seeded(150)
@given(st.lists(st.binary(max_size=60), min_size=1, max_size=16))
def test_tokens_equal_on_any_bytes(tokens):
    ids = char_ids_tf.tokens_to_char_ids(tf.constant(tokens, tf.string)).numpy()
    np.testing.assert_array_equal(ids, numpy_tokens(tokens))


@seeded(100)
@given(st.lists(st.lists(TOKENS, max_size=8), min_size=1, max_size=5))
def test_sentences_equal_batch_to_ids(sentences):
    width = max(len(s) for s in sentences)
    padded = [s + [""] * (width - len(s)) for s in sentences]
    ids = char_ids_tf.sentences_to_char_ids(np.array(padded, dtype=object).reshape(len(sentences), width),
                                            [len(s) for s in sentences])
    np.testing.assert_array_equal(ids.numpy(), batch_to_ids(sentences))


@st.composite
def raw_sentence(draw):
    """Words between runs of any whitespace Python's str.split() knows, or arbitrary text."""
    if draw(st.booleans()):
        return draw(st.text(st.one_of(CHARACTERS, st.sampled_from(WHITESPACE)), max_size=40))
    words = draw(st.lists(WORDS, max_size=6))
    gaps = [draw(st.text(st.sampled_from(WHITESPACE), min_size=1, max_size=3)) for _ in range(len(words) + 1)]
    gaps[0], gaps[-1] = draw(st.sampled_from(["", gaps[0]])), draw(st.sampled_from(["", gaps[-1]]))
    return gaps[0] + "".join(w + g for w, g in zip(words, gaps[1:]))


def _without_lone_surrogates(text):
    return text.encode("utf-8", "ignore").decode("utf-8")


@seeded(100)
@given(st.lists(raw_sentence(), min_size=1, max_size=5))
def test_strings_equal_split_then_batch_to_ids(sentences):
    # Lone surrogates go before the split (the graph sees bytes): see split_sentences.
    expected = [_without_lone_surrogates(s).split() for s in sentences]
    ids, lengths, tokens = char_ids_tf.strings_to_char_ids(sentences)
    np.testing.assert_array_equal(ids.numpy(), batch_to_ids(expected))
    np.testing.assert_array_equal(lengths.numpy(), [len(s) for s in expected])
    got = [[t.decode("utf-8") for t in row[:n]] for row, n in zip(tokens.numpy().tolist(), lengths.numpy())]
    assert got == expected


@st.composite
def raw_bytes(draw):
    """Arbitrary bytes, with whitespace (ASCII and multi-byte) and broken UTF-8 mixed in often."""
    pieces = st.one_of(st.binary(max_size=6), st.sampled_from([c.encode() for c in WHITESPACE]),
                       st.sampled_from([b"\xc2", b"\xe2\x80", b"\xe3\x80", b"\xed\xa0\x80", b"\xc0\xa0",
                                        b"\xe0\x80\xa0", b"\xf4\x90\x80\x80", b"\xff", b"\x80"]))
    return b"".join(draw(st.lists(pieces, max_size=10)))


def _split_bytes(data):
    """str.split() on bytes: invalid UTF-8 is part of the words, as a surrogateescape round trip keeps it."""
    return [w.encode("utf-8", "surrogateescape") for w in data.decode("utf-8", "surrogateescape").split()]


@seeded(150)
@given(st.lists(raw_bytes(), min_size=1, max_size=5))
def test_strings_of_any_bytes_equal_split_then_batch_to_ids(sentences):
    expected = [_split_bytes(s) for s in sentences]
    ids, lengths, tokens = char_ids_tf.strings_to_char_ids(tf.constant(sentences, tf.string))
    assert [row[:n] for row, n in zip(tokens.numpy().tolist(), lengths.numpy())] == expected
    np.testing.assert_array_equal(ids.numpy(), batch_to_ids(expected))


def test_every_length_from_46_to_52_bytes_with_every_cut():
    """Exhaustive: a 2-, 3- or 4-byte character at every offset near the cut, in tokens of 46..52 bytes."""
    tokens = []
    for length in range(46, 53):
        for wide in ("é", "€", "😀"):
            w = len(wide.encode())
            for start in range(40, length - w + 1):
                tokens.append("a" * start + wide + "b" * (length - start - w))
    assert len(tokens) == 147
    expected = numpy_tokens(tokens)
    np.testing.assert_array_equal(char_ids_tf.tokens_to_char_ids(tokens).numpy(), expected)
    for token, ids in zip(tokens, expected):
        data = token.encode()[:48]
        assert ids[1 + len(data)] == 260  # <eow> right after at most 48 bytes, cut or not
        np.testing.assert_array_equal(ids[1 : 1 + len(data)], np.frombuffer(data, np.uint8) + 1)


def test_lone_surrogates_are_dropped_on_both_sides():
    for token, same_as in [("a\ud800b", "ab"), ("\udfff", ""), ("<S>\ud800", "<S>"), ("\ud800</S>", "</S>")]:
        expected = token_to_char_ids(same_as)
        np.testing.assert_array_equal(token_to_char_ids(token), expected)
        np.testing.assert_array_equal(char_ids_tf.tokens_to_char_ids([token]).numpy()[0], expected)
    assert token_to_char_ids("<S>\ud800")[1] == 257  # the boundary code 256, shifted
    # A word of only lone surrogates: an empty word for numpy, no word at all once the text is split in the graph.
    ids, lengths, _ = char_ids_tf.strings_to_char_ids(["a \ud800 b"])
    assert lengths.numpy().tolist() == [2]
    np.testing.assert_array_equal(ids.numpy(), batch_to_ids([["a", "b"]]))
    assert batch_to_ids([["a", "\ud800", "b"]])[0, 2, :3].tolist() == [259, 260, 261]
