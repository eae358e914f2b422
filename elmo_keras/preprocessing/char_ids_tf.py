"""Character ids for ELMo, in the TensorFlow graph.

The same ids as `elmo_keras.preprocessing.char_ids` (the numpy reference),
computed with core TensorFlow ops only, so that a SavedModel taking raw strings
runs in stock TF Serving without tensorflow-text. Every function works inside
`tf.function` and `tf.data.Dataset.map` with unknown batch size and length.

Ops used: `Substr`, `StringLength`, `DecodePaddedRaw` (the bytes of a token),
`Equal` on strings (the `<S>`/`</S>` literals), `StaticRegexReplace` and
`StringSplitV2` (whitespace splitting), ragged/dense plumbing (`Pad`,
`SelectV2`, `Range`, `RaggedTensorToTensor`, ...) and `Assert`.

A tf.string holds bytes, used as they are (invalid UTF-8 included): numpy
`token_to_char_ids` given the same `bytes` gives the same ids. Python strings
are encoded as the numpy encoder encodes them, `str.encode("utf-8",
"ignore")`, which drops lone surrogates (U+D800-U+DFFF alone, the only code
points without a UTF-8 form; `tf.constant` would refuse them), so both
encoders give the same ids on every Python string too.

Example:

>>> import tensorflow as tf
>>> ids, lengths, tokens = strings_to_char_ids(tf.constant(["Hi there", ""]))
>>> ids.shape
TensorShape([2, 4, 50])
>>> ids[0, 1, :5].numpy().tolist()   # <bow> H i <eow> <pad>, all shifted by +1
[259, 73, 106, 260, 261]
>>> lengths.numpy().tolist()
[2, 0]
>>> int(tf.reduce_max(ids[1, 2:]))   # the empty sentence's padding rows
0
"""

import numpy as np
import tensorflow as tf

from elmo_keras.preprocessing.char_ids import BEGIN_OF_SENTENCE
from elmo_keras.preprocessing.char_ids import BEGIN_OF_WORD
from elmo_keras.preprocessing.char_ids import BOS_TOKEN
from elmo_keras.preprocessing.char_ids import END_OF_SENTENCE
from elmo_keras.preprocessing.char_ids import END_OF_WORD
from elmo_keras.preprocessing.char_ids import EOS_TOKEN
from elmo_keras.preprocessing.char_ids import MAX_CHARACTERS_PER_TOKEN
from elmo_keras.preprocessing.char_ids import PADDING_CHARACTER

# Exactly the characters for which Python's `str.isspace()` is true, i.e. the
# ones `str.split()` splits on: ASCII \t \n \v \f \r and space, the ASCII
# separators \x1c-\x1f, and the Unicode spaces U+0085, U+00A0, U+1680,
# U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000. Spelled out because
# RE2's `\s` is only [\t\n\f\r ] (no \v) and `tf.strings.split`'s default
# only knows ASCII whitespace (no \x1c-\x1f, nothing beyond ASCII).
WHITESPACE_CLASS = (
    r"[\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}"
    r"\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"
)


def _utf8(value):
    """Python strings (also inside lists, tuples and numpy arrays) as UTF-8 bytes, lone surrogates dropped."""
    if isinstance(value, str):
        return value.encode("utf-8", "ignore")
    if isinstance(value, (list, tuple)):
        return [_utf8(v) for v in value]
    if isinstance(value, np.ndarray) and value.dtype.kind in "OU":
        flat = [_utf8(v) for v in value.reshape(-1).tolist()]
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(value.shape)
    return value


def _string_tensor(value):
    """`value` as a tf.string tensor.

    Tensors are taken as they are (bytes). Python `str` values are encoded
    as the numpy encoder encodes them, `str.encode("utf-8", "ignore")`: a
    lone surrogate (the only code point without a UTF-8 form) is dropped,
    where `tf.constant` would refuse the whole input.
    """
    if tf.is_tensor(value):
        return tf.convert_to_tensor(value, dtype=tf.string)
    return tf.convert_to_tensor(_utf8(value), dtype=tf.string)


def _check_width(max_characters_per_token):
    # Three slots is the least that holds <bow>, one code and <eow>, which
    # the sentence-boundary tokens need.
    if int(max_characters_per_token) < 3:
        raise ValueError(
            "max_characters_per_token must be >= 3, got "
            f"{max_characters_per_token}"
        )
    return int(max_characters_per_token)


def _boundary_row(code, max_characters_per_token):
    """The shifted ids of a sentence-boundary token, as an int32 constant."""
    row = [BEGIN_OF_WORD, code, END_OF_WORD]
    row += [PADDING_CHARACTER] * (max_characters_per_token - 3)
    return tf.constant(row, dtype=tf.int32) + 1


def _encode_flat(tokens, max_characters_per_token):
    """[N] strings -> [N, max_characters_per_token] shifted int32 ids."""
    n = max_characters_per_token
    # Cut in bytes, not characters: the original cuts the UTF-8 bytes and may
    # split a multi-byte character.
    data = tf.strings.substr(tokens, 0, n - 2, unit="BYTE")
    length = tf.strings.length(data, unit="BYTE")
    # decode_raw with fixed_length zero-pads every string to n - 2 bytes,
    # giving a dense byte matrix without any ragged step.
    codes = tf.cast(tf.io.decode_raw(data, tf.uint8, fixed_length=n - 2), tf.int32)

    # A literal <S> or </S> is a one-"byte" word whose byte is the boundary
    # code (256 or 257), which is exactly the boundary layout.
    is_bos = tf.equal(tokens, BOS_TOKEN)
    is_eos = tf.equal(tokens, EOS_TOKEN)
    first = tf.where(
        is_bos, BEGIN_OF_SENTENCE, tf.where(is_eos, END_OF_SENTENCE, codes[:, 0])
    )
    codes = tf.concat([first[:, None], codes[:, 1:]], axis=1)
    length = tf.where(is_bos | is_eos, 1, length)[:, None]

    # Slot p holds <bow> at 0, byte p - 1 for 1 <= p <= length, <eow> right
    # after the bytes and the in-word padding code after that.
    slots = tf.pad(codes, [[0, 0], [1, 1]])
    position = tf.range(n, dtype=tf.int32)[None, :]
    ids = tf.where(
        position <= length,
        slots,
        tf.where(position == length + 1, END_OF_WORD, PADDING_CHARACTER),
    )
    ids = tf.where(position == 0, BEGIN_OF_WORD, ids)
    return ids + 1


def tokens_to_char_ids(tokens, max_characters_per_token=MAX_CHARACTERS_PER_TOKEN):
    """Encode each token of a string tensor of any shape, without boundaries.

    Each token gets the ids of numpy `token_to_char_ids`: its UTF-8 bytes cut
    to `max_characters_per_token - 2` between <bow> and <eow>, every code
    shifted by +1. The literals `<S>` and `</S>` get the sentence-boundary
    ids, and the empty string is an ordinary (empty) word, not padding.

    Args:
        tokens: tf.string tensor of shape S (any bytes), or Python strings
            (nested lists or a numpy array), encoded as the numpy encoder
            does: lone surrogates dropped.
        max_characters_per_token: int, at least 3. Slots per token.

    Returns:
        int32 tensor of shape S + [max_characters_per_token].

    Example:

    >>> tokens_to_char_ids(tf.constant(["Hi"]))[0, :5].numpy().tolist()
    [259, 73, 106, 260, 261]
    """
    n = _check_width(max_characters_per_token)
    tokens = _string_tensor(tokens)
    ids = _encode_flat(tf.reshape(tokens, [-1]), n)
    ids = tf.reshape(ids, tf.concat([tf.shape(tokens), [n]], axis=0))
    # The reshape loses what is statically known of the shape; give it back.
    ids.set_shape(tokens.shape.concatenate([n]))
    return ids


def _frame(body, lengths, max_characters_per_token):
    """Wrap rows of token ids in <S>/</S> and zero everything past the end.

    Args:
        body: int32 [batch, max_len, n] ids of the tokens; rows at or past a
            sentence's length may hold anything.
        lengths: int32 [batch] tokens per sentence, each in [0, max_len].

    Returns:
        int32 [batch, max_len + 2, n]: row b is <S>, its `lengths[b]` tokens,
        </S>, then all-zero batch padding.
    """
    n = max_characters_per_token
    width = tf.shape(body)[1] + 2
    position = tf.range(width, dtype=tf.int32)[None, :, None]
    length = lengths[:, None, None]
    # One row of zeros on either side lines body row t - 1 up with output t.
    slots = tf.pad(body, [[0, 0], [1, 1], [0, 0]])
    ids = tf.where(
        position <= length,
        slots,
        tf.where(position == length + 1, _boundary_row(END_OF_SENTENCE, n), 0),
    )
    return tf.where(position == 0, _boundary_row(BEGIN_OF_SENTENCE, n), ids)


def _validated(tokens, sequence_len):
    """Return tokens and sequence_len, run only after in-graph checks pass."""
    rank_checks = [
        tf.debugging.assert_rank(
            tokens, 2, message="tokens must be a rank-2 [batch, max_len] tensor"
        ),
        tf.debugging.assert_rank(
            sequence_len, 1, message="sequence_len must be a rank-1 [batch] tensor"
        ),
    ]
    # The shape lookups below are only meaningful once the ranks are right.
    with tf.control_dependencies(rank_checks):
        batch = tf.shape(tokens)[0]
        max_len = tf.shape(tokens)[1]
        value_checks = [
            tf.debugging.assert_equal(
                tf.shape(sequence_len)[0],
                batch,
                message="sequence_len must have one entry per row of tokens "
                "(same batch size)",
            ),
            tf.debugging.assert_non_negative(
                sequence_len, message="sequence_len must be >= 0"
            ),
            tf.debugging.assert_less_equal(
                sequence_len,
                max_len,
                message="sequence_len must be <= max_len (tokens.shape[1])",
            ),
        ]
    # Explicit dependencies, so the checks run even where automatic control
    # dependencies would not add them (e.g. a plain graph).
    with tf.control_dependencies(value_checks):
        return tf.identity(tokens), tf.identity(sequence_len)


def sentences_to_char_ids(
    tokens, sequence_len, max_characters_per_token=MAX_CHARACTERS_PER_TOKEN
):
    """Encode a padded batch of tokenised sentences, as numpy `batch_to_ids`.

    Args:
        tokens: tf.string [batch, max_len]; entries at or past a row's length
            are ignored (usually "").
        sequence_len: int [batch], tokens per row, each in [0, max_len].
        max_characters_per_token: int, at least 3. Slots per token.

    Returns:
        int32 [batch, max_len + 2, max_characters_per_token]. Row b holds <S>,
        the ids of `tokens[b, :sequence_len[b]]`, </S>, then all-zero rows.
        This equals `batch_to_ids` on the same sentences, except that the
        width follows `max_len` rather than `max(sequence_len)`.

    Raises:
        tf.errors.InvalidArgumentError: at run time, if a length is negative
            or above max_len, or the batch sizes differ (ValueError instead
            when a rank is statically wrong).

    Example:

    >>> ids = sentences_to_char_ids(tf.constant([["a", ""]]), tf.constant([1]))
    >>> ids.shape
    TensorShape([1, 4, 50])
    """
    n = _check_width(max_characters_per_token)
    tokens = _string_tensor(tokens)
    sequence_len = tf.cast(tf.convert_to_tensor(sequence_len), tf.int32)
    tokens, sequence_len = _validated(tokens, sequence_len)
    return _frame(tokens_to_char_ids(tokens, n), sequence_len, n)


def ragged_to_char_ids(ragged_tokens, max_characters_per_token=MAX_CHARACTERS_PER_TOKEN):
    """Encode a ragged batch of tokenised sentences, as numpy `batch_to_ids`.

    Args:
        ragged_tokens: tf.RaggedTensor of strings, [batch, (tokens)].
        max_characters_per_token: int, at least 3. Slots per token.

    Returns:
        int32 [batch, max_tokens + 2, max_characters_per_token].

    Example:

    >>> rt = tf.ragged.constant([["a"], ["b", "c"]])
    >>> ragged_to_char_ids(rt).shape
    TensorShape([2, 4, 50])
    """
    n = _check_width(max_characters_per_token)
    if not isinstance(ragged_tokens, tf.RaggedTensor):
        raise TypeError(
            "ragged_tokens must be a tf.RaggedTensor [batch, (tokens)]; use "
            "sentences_to_char_ids for a padded dense batch, got "
            f"{type(ragged_tokens).__name__}"
        )
    if ragged_tokens.ragged_rank != 1 or ragged_tokens.flat_values.shape.rank != 1:
        raise ValueError(
            "ragged_tokens must have shape [batch, (tokens)], got "
            f"{ragged_tokens.shape}"
        )
    # Encode only the real tokens (the flat values), then pad with zeros.
    ids = ragged_tokens.with_flat_values(
        tokens_to_char_ids(ragged_tokens.flat_values, n)
    )
    lengths = tf.cast(ragged_tokens.row_lengths(), tf.int32)
    return _frame(ids.to_tensor(default_value=0), lengths, n)


def split_sentences(sentences):
    """Split each sentence on whitespace, as Python's `str.split()` does.

    Runs of whitespace separate tokens; leading and trailing whitespace is
    dropped; a sentence of only whitespace (or empty) has no tokens. The
    whitespace characters are exactly Python's (`WHITESPACE_CLASS`), ASCII and
    Unicode alike. Bytes that are not valid UTF-8 are kept inside tokens.

    Args:
        sentences: tf.string [batch], or Python strings: those are encoded
            first, lone surrogates dropped (see `tokens_to_char_ids`), so a
            token made only of lone surrogates is no token here, where
            `str.split()` would keep it (and the numpy encoder would give it
            the ids of the empty word).

    Returns:
        tf.RaggedTensor of strings, [batch, (tokens)].

    Example:

    >>> split_sentences(tf.constant([" a\\tb\\n", ""])).to_list()
    [[b'a', b'b'], []]
    """
    sentences = _string_tensor(sentences)
    if sentences.shape.rank != 1:
        raise ValueError(
            f"sentences must be a rank-1 [batch] tensor, got shape {sentences.shape}"
        )
    # Turn every whitespace run into one space, which the default split
    # (ASCII whitespace, runs merged, ends stripped) then cuts on.
    spaced = tf.strings.regex_replace(sentences, WHITESPACE_CLASS + "+", " ")
    return tf.strings.split(spaced)


def strings_to_char_ids(sentences, max_characters_per_token=MAX_CHARACTERS_PER_TOKEN):
    """Split raw sentences on whitespace and encode them.

    Args:
        sentences: tf.string [batch] of untokenised text.
        max_characters_per_token: int, at least 3. Slots per token.

    Returns:
        A tuple `(char_ids, sequence_len, tokens)`:
        char_ids int32 [batch, max_tokens + 2, max_characters_per_token], as
        `batch_to_ids` on `[s.split() for s in sentences]`; sequence_len int32
        [batch], tokens per sentence without the two boundaries; tokens
        tf.string [batch, max_tokens], padded with "".

    Example:

    >>> _, lengths, tokens = strings_to_char_ids(tf.constant(["a b", "c"]))
    >>> tokens.numpy().tolist()
    [[b'a', b'b'], [b'c', b'']]
    """
    ragged_tokens = split_sentences(sentences)
    char_ids = ragged_to_char_ids(ragged_tokens, max_characters_per_token)
    sequence_len = tf.cast(ragged_tokens.row_lengths(), tf.int32)
    return char_ids, sequence_len, ragged_tokens.to_tensor(default_value="")
