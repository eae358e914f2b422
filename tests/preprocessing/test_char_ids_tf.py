"""Tests of the in-graph encoder: ids identical to the numpy reference."""

import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from elmo_keras.preprocessing import char_ids  # noqa: E402
from elmo_keras.preprocessing import char_ids_tf  # noqa: E402
from elmo_keras.preprocessing import tokenize  # noqa: E402

# Tokens where an encoder can go wrong.
HARD_TOKENS = [
    "Hi",
    "",
    "<S>",
    "</S>",
    "<s>",
    "<S",
    "café",
    "cafe\u0301",  # NFD
    "日本語",
    "😀👍🏽",
    "a\x00b",
    "x" * 48,
    "y" * 49,
    "z" * 50,
    "".join(chr(ord("a") + k % 26) for k in range(100)),
    "a" * 47 + "é",  # 49 bytes, cut inside "é"
    "a" * 46 + "€",  # 49 bytes, cut inside "€"
    "日" * 17,  # 51 bytes, cut inside the 17th character
]

SENTENCES = [
    ["The", "café", "<S>"],
    [],
    ["", "a" * 60],
    ["日本語", "😀", "x" * 48, "a" * 47 + "é", "</S>"],
    ["Hi"],
]

# Whitespace that Python's str.split() knows, including what RE2's \s
# (\v, \x1c-\x1f) and ASCII-only splitters (U+0085, U+00A0, U+3000...) miss.
TRICKY_TEXTS = [
    "",
    " ",
    "\t\n\x0b\x0c\r ",
    "one",
    "  leading and trailing  ",
    "a\tb\nc\x0bd\x0ce\rf",
    "a\x1cb\x1dc\x1ed\x1fe",
    "a\x85b\xa0c\u1680d\u2000e\u200af\u2028g\u2029h\u202fi\u205fj\u3000k",
    "no\u200bsplit",  # zero-width space is not whitespace for Python
    "no\ufeffsplit",
    "café <S> 日本語\t\t😀",
    "x" * 70 + " " + "a" * 47 + "é",
]


def padded(sentences):
    """Dense [batch, max_len] tokens padded with "" and their lengths."""
    max_len = max((len(s) for s in sentences), default=0)
    tokens = [s + [""] * (max_len - len(s)) for s in sentences]
    tokens = tf.constant(tokens, dtype=tf.string, shape=[len(sentences), max_len])
    return tokens, tf.constant([len(s) for s in sentences], dtype=tf.int32)


def test_tokens_equal_numpy():
    ids = char_ids_tf.tokens_to_char_ids(tf.constant(HARD_TOKENS))
    assert ids.dtype == tf.int32 and ids.shape == (len(HARD_TOKENS), 50)
    expected = np.stack([char_ids.token_to_char_ids(t) for t in HARD_TOKENS])
    np.testing.assert_array_equal(ids.numpy(), expected)


def test_tokens_of_invalid_utf8_are_raw_bytes():
    ids = char_ids_tf.tokens_to_char_ids(tf.constant([b"\xff\xc3"]))
    np.testing.assert_array_equal(ids[0, :4], [259, 0xFF + 1, 0xC3 + 1, 260])


@pytest.mark.parametrize("width", [3, 4, 10, 60])
def test_other_widths_equal_numpy(width):
    ids = char_ids_tf.tokens_to_char_ids(tf.constant(HARD_TOKENS), width)
    expected = np.stack([char_ids.token_to_char_ids(t, width) for t in HARD_TOKENS])
    np.testing.assert_array_equal(ids.numpy(), expected)


def test_width_below_3_is_refused():
    with pytest.raises(ValueError, match="max_characters_per_token must be >= 3"):
        char_ids_tf.tokens_to_char_ids(tf.constant(["a"]), 2)


def test_tokens_of_any_shape():
    scalar = char_ids_tf.tokens_to_char_ids(tf.constant("café"))
    np.testing.assert_array_equal(scalar, char_ids.token_to_char_ids("café"))
    cube = np.array(HARD_TOKENS[:12], dtype=object).reshape(2, 3, 2)
    ids = char_ids_tf.tokens_to_char_ids(tf.constant(cube))
    assert ids.shape == (2, 3, 2, 50)
    expected = np.stack([char_ids.token_to_char_ids(t) for t in cube.reshape(-1)])
    np.testing.assert_array_equal(ids.numpy().reshape(-1, 50), expected)
    assert char_ids_tf.tokens_to_char_ids(tf.constant([], tf.string)).shape == (0, 50)


def test_sentences_equal_batch_to_ids():
    tokens, lengths = padded(SENTENCES)
    ids = char_ids_tf.sentences_to_char_ids(tokens, lengths)
    np.testing.assert_array_equal(ids.numpy(), char_ids.batch_to_ids(SENTENCES))


def test_sentences_wider_than_longest_get_zero_rows():
    tokens = tf.constant([["a", "b", "junk", "junk"], ["c", "", "junk", ""]])
    ids = char_ids_tf.sentences_to_char_ids(tokens, tf.constant([2, 1], tf.int64))
    assert ids.shape == (2, 6, 50)
    expected = char_ids.batch_to_ids([["a", "b"], ["c"]])
    np.testing.assert_array_equal(ids[:, :4], expected)
    np.testing.assert_array_equal(ids[:, 4:], 0)


def test_all_empty_and_empty_batch():
    ids = char_ids_tf.sentences_to_char_ids(tf.zeros([2, 0], tf.string), [0, 0])
    np.testing.assert_array_equal(ids, char_ids.batch_to_ids([[], []]))
    ids = char_ids_tf.sentences_to_char_ids(tf.zeros([0, 3], tf.string), tf.zeros([0], tf.int32))
    assert ids.shape == (0, 5, 50)


def test_ragged_equals_batch_to_ids():
    ragged = tf.ragged.constant(SENTENCES, dtype=tf.string)
    ids = char_ids_tf.ragged_to_char_ids(ragged)
    np.testing.assert_array_equal(ids.numpy(), char_ids.batch_to_ids(SENTENCES))


def test_ragged_input_checks():
    with pytest.raises(TypeError, match="tf.RaggedTensor"):
        char_ids_tf.ragged_to_char_ids(tf.constant([["a"]]))
    with pytest.raises(ValueError, match=r"\[batch, \(tokens\)\]"):
        char_ids_tf.ragged_to_char_ids(tf.ragged.constant([[["a"]]]))


def test_split_sentences_equals_str_split():
    ragged = char_ids_tf.split_sentences(tf.constant(TRICKY_TEXTS))
    got = [[t.decode("utf-8") for t in row] for row in ragged.to_list()]
    assert got == [text.split() for text in TRICKY_TEXTS]


def test_whitespace_class_is_pythons():
    python = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
    # Each whitespace character on its own between two letters splits them.
    texts = tf.constant([f"a{c}b" for c in python] + ["a\u200bb", "a\x1bb"])
    counts = char_ids_tf.split_sentences(texts).row_lengths().numpy()
    np.testing.assert_array_equal(counts, [2] * len(python) + [1, 1])


def test_split_keeps_invalid_utf8():
    ragged = char_ids_tf.split_sentences(tf.constant([b"a\xff b\xc3 \xe2\x80"]))
    assert ragged.to_list() == [[b"a\xff", b"b\xc3", b"\xe2\x80"]]


def test_split_sentences_wants_rank_1():
    with pytest.raises(ValueError, match="rank-1"):
        char_ids_tf.split_sentences(tf.constant("a b"))


def test_strings_to_char_ids():
    ids, lengths, tokens = char_ids_tf.strings_to_char_ids(tf.constant(TRICKY_TEXTS))
    batch = [text.split() for text in TRICKY_TEXTS]
    np.testing.assert_array_equal(ids.numpy(), char_ids.batch_to_ids(batch))
    np.testing.assert_array_equal(lengths, [len(s) for s in batch])
    assert lengths.dtype == tf.int32
    width = max(len(s) for s in batch)
    expected_tokens = [[t.encode() for t in s] + [b""] * (width - len(s)) for s in batch]
    assert tokens.numpy().tolist() == expected_tokens


def test_inside_tf_function_with_unknown_shapes():
    sentences = tf.function(
        char_ids_tf.sentences_to_char_ids,
        input_signature=[
            tf.TensorSpec([None, None], tf.string),
            tf.TensorSpec([None], tf.int32),
        ],
    )
    tokens_any_rank = tf.function(
        char_ids_tf.tokens_to_char_ids, input_signature=[tf.TensorSpec(None, tf.string)]
    )
    strings = tf.function(
        char_ids_tf.strings_to_char_ids, input_signature=[tf.TensorSpec([None], tf.string)]
    )
    ragged = tf.function(
        char_ids_tf.ragged_to_char_ids,
        input_signature=[tf.RaggedTensorSpec([None, None], tf.string)],
    )
    for batch in (SENTENCES, SENTENCES[:2], [[]]):
        expected = char_ids.batch_to_ids(batch)
        np.testing.assert_array_equal(sentences(*padded(batch)), expected)
        np.testing.assert_array_equal(ragged(tf.ragged.constant(batch, tf.string)), expected)
    np.testing.assert_array_equal(
        tokens_any_rank(tf.constant([HARD_TOKENS])),
        [[char_ids.token_to_char_ids(t) for t in HARD_TOKENS]],
    )
    ids, lengths, _ = strings(tf.constant(TRICKY_TEXTS))
    np.testing.assert_array_equal(
        ids, char_ids.batch_to_ids([text.split() for text in TRICKY_TEXTS])
    )


def test_inside_dataset_map():
    texts = ["The café", "", "  a\tb  c ", "日本語 😀"]
    dataset = tf.data.Dataset.from_tensor_slices(texts).batch(3)
    dataset = dataset.map(char_ids_tf.strings_to_char_ids)
    batches = list(dataset)
    assert len(batches) == 2
    for (ids, lengths, _), chunk in zip(batches, (texts[:3], texts[3:])):
        batch = [text.split() for text in chunk]
        np.testing.assert_array_equal(ids, char_ids.batch_to_ids(batch))
        np.testing.assert_array_equal(lengths, [len(s) for s in batch])

    tokens, lengths = padded(SENTENCES)
    dataset = tf.data.Dataset.from_tensor_slices((tokens, lengths)).batch(2)
    dataset = dataset.map(char_ids_tf.sentences_to_char_ids)
    got = np.concatenate([ids.numpy() for ids in dataset])
    np.testing.assert_array_equal(got, char_ids.batch_to_ids(SENTENCES))


@pytest.mark.parametrize(
    "lengths, message",
    [
        ([1, -1], "sequence_len must be >= 0"),
        ([1, 3], "sequence_len must be <= max_len"),
        ([1, 1, 1], "sequence_len must have one entry per row"),
    ],
)
def test_invalid_sequence_len_raises(lengths, message):
    tokens = tf.constant([["a", "b"], ["c", ""]])
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        char_ids_tf.sentences_to_char_ids(tokens, tf.constant(lengths))
    traced = tf.function(
        char_ids_tf.sentences_to_char_ids,
        input_signature=[tf.TensorSpec(None, tf.string), tf.TensorSpec(None, tf.int32)],
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        traced(tokens, tf.constant(lengths))


def test_wrong_ranks_raise():
    traced = tf.function(
        char_ids_tf.sentences_to_char_ids,
        input_signature=[tf.TensorSpec(None, tf.string), tf.TensorSpec(None, tf.int32)],
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="tokens must be a rank-2"):
        traced(tf.constant(["a"]), tf.constant([1]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="sequence_len must be a rank-1"):
        traced(tf.constant([["a"]]), tf.constant(1))
    with pytest.raises(ValueError, match="tokens must be a rank-2"):
        char_ids_tf.sentences_to_char_ids(tf.constant(["a"]), tf.constant([1]))


CORE_SIGNATURES = {
    "tokens_to_char_ids": [tf.TensorSpec(None, tf.string)],
    "sentences_to_char_ids": [
        tf.TensorSpec([None, None], tf.string),
        tf.TensorSpec([None], tf.int32),
    ],
    "ragged_to_char_ids": [tf.RaggedTensorSpec([None, None], tf.string)],
    "split_sentences": [tf.TensorSpec([None], tf.string)],
    "strings_to_char_ids": [tf.TensorSpec([None], tf.string)],
}


@pytest.mark.parametrize("name", sorted(CORE_SIGNATURES))
def test_core_functions_use_core_ops_only(name):
    function = getattr(char_ids_tf, name)
    concrete = tf.function(function).get_concrete_function(*CORE_SIGNATURES[name])
    assert tokenize.non_core_ops(concrete) == []
    assert "Substr" in tokenize.graph_op_types(concrete) or name == "split_sentences"


def test_graph_op_types_walks_the_function_library():
    @tf.function
    def inner(x):
        return tf.strings.length(x)

    @tf.function
    def outer(x):
        return inner(x) + 1

    concrete = outer.get_concrete_function(tf.TensorSpec([None], tf.string))
    types = tokenize.graph_op_types(concrete)
    assert "StringLength" in types and "AddV2" in types
    assert not any(t.startswith("__inference") for t in types)


# Sentences for the punctuation tokenizers, ASCII plus a little beyond.
PUNCTUATION_TEXTS = TRICKY_TEXTS + [
    "Hello, world... don't stop!!",
    "3.14 (approx) -- e.g. x+y=z; a_b [c] {d} <e> @f #g $h %i ^j &k *l",
    "\"quoted\" 'single' `back` ~tilde |pipe| back\\slash /slash? colon:",
    "<S> </S> end.",
    "U.S.A. mid-word co-op 1,000,000",
    "\u201cCurly\u201d \u2014 dash\u2026 \u20ac5 \u00bfqu\u00e9?",  # beyond ASCII
]


def test_tokenize_punctuation_ascii_classes():
    import string

    for char in string.punctuation:
        assert tokenize.tokenize_punctuation(f"a{char}b") == ["a", char, "b"]
    for char in string.ascii_letters + string.digits:
        assert tokenize.tokenize_punctuation(f"a{char}b") == [f"a{char}b"]


def test_unknown_tokenizer_kind():
    with pytest.raises(ValueError, match="kind must be one of"):
        tokenize.text_tokenizer("moses")


def test_missing_tensorflow_text_message(monkeypatch):
    # A None entry in sys.modules makes `import tensorflow_text` fail.
    monkeypatch.setitem(sys.modules, "tensorflow_text", None)
    with pytest.raises(ImportError, match="pip install tensorflow-text"):
        tokenize.text_tokenizer("whitespace")


@pytest.fixture
def tensorflow_text():
    return pytest.importorskip("tensorflow_text")


def test_punctuation_tokenizer_equals_python(tensorflow_text):
    tokenizer = tokenize.text_tokenizer("punctuation")
    got = tokenizer(tf.constant(PUNCTUATION_TEXTS)).to_list()
    got = [[t.decode("utf-8") for t in row] for row in got]
    assert got == [tokenize.tokenize_punctuation(text) for text in PUNCTUATION_TEXTS]
    assert got[len(TRICKY_TEXTS)] == [
        "Hello", ",", "world", ".", ".", ".", "don", "'", "t", "stop", "!", "!",
    ]


def test_whitespace_tokenizer(tensorflow_text):
    tokenizer = tokenize.text_tokenizer("whitespace")
    # ICU whitespace: as str.split() except that \x1c-\x1f are not spaces.
    texts = [t for t in TRICKY_TEXTS if not any("\x1c" <= c <= "\x1f" for c in t)]
    got = tokenizer(tf.constant(texts)).to_list()
    assert [[t.decode("utf-8") for t in row] for row in got] == [t.split() for t in texts]
    assert tokenizer(tf.constant(["a\x1cb c"])).to_list() == [[b"a\x1cb", b"c"]]
    assert tokenizer(tf.constant(["a\xa0b\u3000c"])).to_list() == [[b"a", b"b", b"c"]]


def test_upstream_whitespace_tokenizer_cuts_multibyte_spaces(tensorflow_text):
    # Why text_tokenizer("whitespace") rewrites non-ASCII spaces first. If
    # this starts failing, tensorflow-text fixed it and the rewrite can go.
    raw = tensorflow_text.WhitespaceTokenizer().tokenize(tf.constant(["a\xa0b"]))
    assert raw.to_list() == [[b"a\xc2", b"b"]]


@pytest.mark.parametrize("kind", tokenize.TOKENIZER_KINDS)
def test_text_tokenizers_in_dataset_map_and_char_ids(tensorflow_text, kind):
    tokenizer = tokenize.text_tokenizer(kind)
    dataset = tf.data.Dataset.from_tensor_slices(["Hi, there!", ""]).batch(2)
    dataset = dataset.map(lambda s: char_ids_tf.ragged_to_char_ids(tokenizer(s)))
    (ids,) = list(dataset)
    expected = {
        "whitespace": [["Hi,", "there!"], []],
        "punctuation": [["Hi", ",", "there", "!"], []],
    }[kind]
    np.testing.assert_array_equal(ids, char_ids.batch_to_ids(expected))


def test_non_core_ops_lists_the_text_ops(tensorflow_text):
    assert tokenize.text_tokenizer_non_core_ops("whitespace") == [
        "TFText>WhitespaceTokenizeWithOffsetsV2"
    ]
    assert tokenize.text_tokenizer_non_core_ops("punctuation") == ["RegexSplitWithOffsets"]

    tokenizer = tokenize.text_tokenizer("punctuation")

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def pipeline(sentences):
        return char_ids_tf.ragged_to_char_ids(tokenizer(sentences))

    concrete = pipeline.get_concrete_function()
    assert tokenize.non_core_ops(concrete) == ["RegexSplitWithOffsets"]
    assert "DecodePaddedRaw" in tokenize.graph_op_types(concrete)
