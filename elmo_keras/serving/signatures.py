"""The tf.functions behind the SavedModel's signatures: text, tokens or char ids in, outputs out.

Each signature turns its input into checked char ids in the graph, so that a
bad request fails with a message instead of a wrong answer, and answers an
empty batch with empty outputs. `elmo_keras.serving.export` attaches these
functions to the saved object.
"""

import tensorflow as tf

from elmo_keras.preprocessing import char_ids_tf
from elmo_keras.preprocessing import tokenize
from elmo_keras.preprocessing.char_ids import N_CHARACTER_CODES
from elmo_keras.preprocessing.split import EXPORT_TOKENIZERS, GRAPH_SPLITTERS

TOKENIZERS = EXPORT_TOKENIZERS  # the old name, kept importable (also from `serving.export`)
# Id 0 is batch padding, 1..261 the shifted character codes.
N_CHAR_IDS = N_CHARACTER_CODES + 1


def sentence_splitter(tokenizer="core"):
    """Return the in-graph splitter tf.string [batch] -> RaggedTensor of tokens.

    "core" is `char_ids_tf.split_sentences` (Python's `str.split()`, core TF
    ops only); "whitespace" and "punctuation" are the tensorflow-text
    tokenizers of `elmo_keras.preprocessing.tokenize.text_tokenizer`.
    """
    if tokenizer == "core":
        return char_ids_tf.split_sentences
    if tokenizer in GRAPH_SPLITTERS:
        return tokenize.text_tokenizer(tokenizer)
    raise ValueError(f"tokenizer must be one of {EXPORT_TOKENIZERS}, got {tokenizer!r}")


def _checked_char_ids(char_ids, max_chars, limits=None):
    """char_ids after run-time checks of their shape and values.

    `limits`: None (bilm-tf's ids, all below N_CHAR_IDS), or `(n_chars, n_words)` for ELMoForManyLangs'
    ids, whose character slots are below `n_chars` and whose last slot (the word id) is below `n_words`.
    """
    # ensure_shape checks at run time even where the signature declares the
    # shape: a signature does not validate shapes, and checks on a rank that
    # the graph already "knows" are optimised away.
    char_ids = tf.ensure_shape(char_ids, [None, None, max_chars], name="char_ids")
    checks = [
        tf.debugging.assert_greater_equal(
            tf.shape(char_ids)[1], 2,
            message="char_ids must include the <S> and </S> positions (time >= 2), as batch_to_ids gives"),
    ]
    if limits is None:
        checks.append(tf.debugging.assert_non_negative(char_ids, message=f"char_ids must be in [0, {N_CHAR_IDS})"))
        checks.append(tf.debugging.assert_less(char_ids, N_CHAR_IDS, message=f"char_ids must be in [0, {N_CHAR_IDS})"))
    else:
        n_chars, n_words = limits
        checks += [
            tf.debugging.assert_non_negative(char_ids, message="char_ids must be non-negative"),
            tf.debugging.assert_less(char_ids[..., :-1], n_chars,
                                     message=f"char_ids' character slots must be in [0, {n_chars})"),
            tf.debugging.assert_less(char_ids[..., -1], n_words,
                                     message=f"char_ids' last slot (the word id) must be in [0, {n_words})"),
        ]
    with tf.control_dependencies(checks):
        return tf.identity(char_ids)


def _on_at_least_one_row(char_ids_fn):
    """`char_ids_fn` that also answers a batch of 0 rows, with 0-row outputs.

    An empty request runs the model on one padding row (all ids 0) and cuts
    it off, so every output keeps its dtype and its other dimensions. Under
    oneDNN (TensorFlow's default on x86-64) a convolution on 0 rows returns
    a wrong shape, which a downstream model of `export_with_text_input` may
    meet. Non-empty batches are unchanged: the filler then has 0 rows.
    """

    def fn(char_ids):
        batch = tf.shape(char_ids)[0]
        filler_shape = tf.concat([[tf.maximum(1 - batch, 0)], tf.shape(char_ids)[1:]], axis=0)
        outputs = char_ids_fn(tf.concat([char_ids, tf.zeros(filler_shape, char_ids.dtype)], axis=0))
        return {name: value[:batch] if value.shape.rank else value for name, value in outputs.items()}

    return fn


def signature_functions(char_ids_fn, split, max_chars, token_ids=None):
    """The tf.functions of the `default`, `tokens` and `char_ids` signatures.

    `char_ids_fn` maps checked char ids to the dict of outputs. Each
    signature answers an empty batch with empty outputs. `token_ids`: None
    (bilm-tf's character ids, `char_ids_tf`), or a `CharDicIdsTF` (an
    ELMoForManyLangs model's ids, `max_chars + 1` a token).
    """
    char_ids_fn = _on_at_least_one_row(char_ids_fn)
    if token_ids is not None:
        return _dictionary_signature_functions(char_ids_fn, split, token_ids)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def default(text):
        text = tf.ensure_shape(text, [None], name="text")
        return char_ids_fn(char_ids_tf.ragged_to_char_ids(split(text), max_chars))

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name="tokens"),
                                  tf.TensorSpec([None], tf.int32, name="sequence_len")])
    def tokens(tokens, sequence_len):
        tokens = tf.ensure_shape(tokens, [None, None], name="tokens")
        sequence_len = tf.ensure_shape(sequence_len, [None], name="sequence_len")
        return char_ids_fn(char_ids_tf.sentences_to_char_ids(tokens, sequence_len, max_chars))

    @tf.function(input_signature=[tf.TensorSpec([None, None, max_chars], tf.int32, name="char_ids")])
    def char_ids(char_ids):
        return char_ids_fn(_checked_char_ids(char_ids, max_chars))

    return {"default": default, "tokens": tokens, "char_ids": char_ids}


def _dictionary_signature_functions(char_ids_fn, split, token_ids):
    """`signature_functions` for ids through a model's dictionaries (`CharDicIdsTF`)."""
    width = token_ids.width
    limits = (token_ids.n_characters + 1, token_ids.n_words + 1)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def default(text):
        text = tf.ensure_shape(text, [None], name="text")
        return char_ids_fn(token_ids(split(text)))

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string, name="tokens"),
                                  tf.TensorSpec([None], tf.int32, name="sequence_len")])
    def tokens(tokens, sequence_len):
        tokens = tf.ensure_shape(tokens, [None, None], name="tokens")
        sequence_len = tf.ensure_shape(sequence_len, [None], name="sequence_len")
        checks = [
            tf.debugging.assert_equal(tf.shape(sequence_len)[0], tf.shape(tokens)[0],
                                      message="sequence_len must have one entry per row of tokens"),
            tf.debugging.assert_non_negative(sequence_len, message="sequence_len must be >= 0"),
            tf.debugging.assert_less_equal(sequence_len, tf.shape(tokens)[1],
                                           message="sequence_len must be <= the tokens' width"),
        ]
        with tf.control_dependencies(checks):
            ragged = tf.RaggedTensor.from_tensor(tokens, lengths=sequence_len)
        return char_ids_fn(token_ids(ragged))

    @tf.function(input_signature=[tf.TensorSpec([None, None, width], tf.int32, name="char_ids")])
    def char_ids(char_ids):
        return char_ids_fn(_checked_char_ids(char_ids, width, limits))

    return {"default": default, "tokens": tokens, "char_ids": char_ids}
