"""Optional tensorflow-text tokenisers, and tools to see which ops a graph needs.

The default pipeline (`char_ids_tf.split_sentences`) splits on whitespace with
core TensorFlow ops only, so an exported SavedModel runs in stock TF Serving.
Users who want a better split can opt in to a tensorflow-text tokenizer here,
at the price of ops that only exist where `tensorflow_text` is loaded;
`non_core_ops` lists them for any traced function.

Example:

>>> tokenize_punctuation("Hello, world... don't!")
['Hello', ',', 'world', '.', '.', '.', 'don', "'", 't', '!']
>>> import tensorflow as tf
>>> from elmo_keras.preprocessing import char_ids_tf
>>> fn = tf.function(char_ids_tf.strings_to_char_ids).get_concrete_function(
...     tf.TensorSpec([None], tf.string))
>>> non_core_ops(fn)
[]
"""

import tensorflow as tf

from elmo_keras.preprocessing.char_ids_tf import WHITESPACE_CLASS
from elmo_keras.preprocessing.split import GRAPH_SPLITTERS
from elmo_keras.preprocessing.split import tokenize_punctuation  # noqa: F401  (re-exported)

# The in-graph counterparts of the pure-Python splitters (an alias, kept for
# its importers). Note that "whitespace" here is tensorflow-text's
# WhitespaceTokenizer (ICU whitespace), which unlike `str.split()` does not
# split on \x1c-\x1f.
TOKENIZER_KINDS = GRAPH_SPLITTERS

# Unicode punctuation (P*) and symbols (S*): for ASCII exactly the 32
# characters of `string.punctuation`. Each is a token of its own.
PUNCTUATION_CLASS = r"[\p{P}\p{S}]"
# regex_split drops delimiters unless they also match the "keep" pattern:
# whitespace runs go, punctuation stays.
_PUNCTUATION_DELIMITERS = WHITESPACE_CLASS + "+|" + PUNCTUATION_CLASS
# The non-ASCII part of WHITESPACE_CLASS; all of it is ICU whitespace too.
_MULTIBYTE_WHITESPACE = (
    r"[\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}"
    r"\x{205f}\x{3000}]"
)


def _import_tensorflow_text():
    try:
        import tensorflow_text
    except ImportError as error:
        raise ImportError(
            "text_tokenizer needs the optional package tensorflow-text "
            "(`pip install tensorflow-text`, the version matching your "
            "TensorFlow). Its ops are not part of stock TF Serving; the "
            "default elmo_keras.preprocessing.char_ids_tf.split_sentences "
            "needs no extra package."
        ) from error
    return tensorflow_text


def text_tokenizer(kind="whitespace"):
    """Return a tensorflow-text tokenizer: tf.string [batch] -> RaggedTensor.

    Args:
        kind: "whitespace": `tensorflow_text.WhitespaceTokenizer`, which splits
            on ICU whitespace: Python's `str.split()` except the ASCII
            separators \\x1c-\\x1f, which it keeps inside tokens.
            "punctuation": split on whitespace runs (Python's `str.split()`
            characters) and make every punctuation or symbol character its
            own token, with `tensorflow_text.regex_split`; the pure-Python
            `tokenize_punctuation` gives the same tokens.

    Returns:
        A callable taking tf.string [batch] and returning a tf.RaggedTensor
        [batch, (tokens)] of strings; usable in `tf.function` and
        `tf.data.Dataset.map`.

    Raises:
        ValueError: for an unknown kind.
        ImportError: if tensorflow-text is not installed.
    """
    if kind not in TOKENIZER_KINDS:
        raise ValueError(f"kind must be one of {TOKENIZER_KINDS}, got {kind!r}")
    text = _import_tensorflow_text()
    if kind == "whitespace":
        tokenizer = text.WhitespaceTokenizer()

        def tokenize(sentences):
            sentences = tf.convert_to_tensor(sentences, tf.string)
            # WhitespaceTokenizer (2.20.1) ends a token one byte before the
            # end of the whitespace character after it, so a multi-byte
            # space leaves its leading bytes in the token ("a\u00a0b" gives
            # b"a\xc2"). Turning those spaces into ASCII ones avoids it.
            sentences = tf.strings.regex_replace(sentences, _MULTIBYTE_WHITESPACE, " ")
            return tokenizer.tokenize(sentences)

    else:

        def tokenize(sentences):
            return text.regex_split(
                tf.convert_to_tensor(sentences, tf.string),
                delim_regex_pattern=_PUNCTUATION_DELIMITERS,
                keep_delim_regex_pattern=PUNCTUATION_CLASS,
            )

    return tokenize


def graph_op_types(concrete_function):
    """Return the set of op type names a traced function can run.

    Walks the function's graph and every function in its library (the
    bodies of nested tf.functions, dataset functions, cond/while branches).
    Calls of library functions by name are not ops and are left out.

    Args:
        concrete_function: a `tf.types.experimental.ConcreteFunction` (from
            `tf.function(f).get_concrete_function(...)`) or a `tf.Graph`.
    """
    graph = getattr(concrete_function, "graph", concrete_function)
    return graph_def_op_types(graph.as_graph_def())


def graph_def_op_types(graph_def):
    """The op types of a `GraphDef` and of every function in its library.

    Calls of library functions by name are not ops and are left out. Reads
    the protocol buffer only, so no op needs to be registered.
    """
    library = graph_def.library.function
    types = {node.op for node in graph_def.node}
    for function in library:
        types.update(node.op for node in function.node_def)
    return types - {function.signature.name for function in library}


def non_core_ops(concrete_function):
    """Return the sorted op types of a traced function that are not core TF.

    An op is core when `tf.raw_ops` has it: those are the ops compiled into
    TensorFlow itself (and TF Serving), while ops of add-on libraries such as
    tensorflow-text are registered at import time and never appear there.
    """
    return sorted(t for t in graph_op_types(concrete_function) if not hasattr(tf.raw_ops, t))


def text_tokenizer_non_core_ops(kind="whitespace"):
    """Return the non-core ops that `text_tokenizer(kind)` adds to a graph.

    Traced with an unknown batch size. With tensorflow-text 2.20.1 this is
    `["TFText>WhitespaceTokenizeWithOffsetsV2"]` for "whitespace" and
    `["RegexSplitWithOffsets"]` for "punctuation".

    Raises:
        ImportError: if tensorflow-text is not installed.
    """
    tokenize = text_tokenizer(kind)
    concrete = tf.function(tokenize).get_concrete_function(
        tf.TensorSpec([None], tf.string)
    )
    return non_core_ops(concrete)
