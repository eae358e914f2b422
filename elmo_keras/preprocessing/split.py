"""Sentence splitting in pure Python: whitespace, punctuation as tokens of their own, or Moses.

The biLM reads tokens. Released ELMo models and the bundled default model
were trained on text whose punctuation was split from words ("money ." not
"money."); `split_sentence(text, "punctuation")` makes raw text look like
that. `"whitespace"` is Python's `str.split()`, for text that is already
tokenised (AllenNLP's `elmo` command reads such files). `"moses"` (English)
or `"moses:LANG"` splits as the Moses tokenizer (sacremoses'
`MosesTokenizer(lang=LANG).tokenize(text, escape=False)`), the tokenisation
of the 1B Word Benchmark that the released English models were trained on
(the `moses` extra installs sacremoses). Moses' rules (lookaround patterns,
per-language lists of non-breaking prefixes) have no TensorFlow-op form, so
`ElmoTokenizer` and exported SavedModels offer only `GRAPH_SPLITTERS`.

Example:

>>> split_sentence("Hello, world... don't!", "punctuation")
['Hello', ',', 'world', '.', '.', '.', 'don', "'", 't', '!']
>>> split_sentence("Hello, world", "whitespace")
['Hello,', 'world']
"""

import functools
import re
import unicodedata

# The one list of tokenizer names; every other list (TOKENIZER_KINDS,
# ElmoTokenizer's, the CLIs' choices) is one of these tuples or derived from them.
# Those that TensorFlow ops express too (in the graph: ElmoTokenizer, SavedModels):
GRAPH_SPLITTERS = ("whitespace", "punctuation")
MOSES = "moses"  # Python only; "moses:LANG" picks the language (default English)
SENTENCE_SPLITTERS = GRAPH_SPLITTERS + (MOSES,)
# The export's choices: "core" is `str.split()` in core TensorFlow ops
# (`char_ids_tf.split_sentences`), the others tensorflow-text's tokenizers of
# the same names. Defined here, in a module without TensorFlow, so that the
# CLI builds its parser without importing it.
EXPORT_TOKENIZERS = ("core",) + GRAPH_SPLITTERS
_MOSES_LANGUAGE = re.compile(r"[a-z]{2,3}")


def _is_punctuation(char):
    # Unicode punctuation (P*) and symbols (S*): for ASCII exactly the 32
    # characters of `string.punctuation`. Outside ASCII the answer depends on
    # the Unicode version of Python (and of RE2 for the in-graph splitter).
    return unicodedata.category(char)[0] in "PS"


def tokenize_punctuation(text):
    """Split on whitespace as `str.split()`; every punctuation or symbol character is a token.

    Identical to the tensorflow-text splitter
    `elmo_keras.preprocessing.tokenize.text_tokenizer("punctuation")` for ASCII.

    >>> tokenize_punctuation("  3.14 (approx) ")
    ['3', '.', '14', '(', 'approx', ')']
    """
    tokens = []
    for word in text.split():
        start = 0
        for index, char in enumerate(word):
            if _is_punctuation(char):
                if index > start:
                    tokens.append(word[start:index])
                tokens.append(char)
                start = index + 1
        if start < len(word):
            tokens.append(word[start:])
    return tokens


def _moses_language(splitter):
    """The language of a Moses splitter name ("moses" -> "en", "moses:de" -> "de"), or None for other names."""
    if not isinstance(splitter, str) or not (splitter == MOSES or splitter.startswith(MOSES + ":")):
        return None
    return splitter[len(MOSES) + 1:] if ":" in splitter else "en"


@functools.lru_cache(maxsize=None)
def _moses(language):
    try:
        from sacremoses import MosesTokenizer
    except ImportError:
        raise ValueError(f"tokenizer 'moses' needs sacremoses, which is not installed: "
                         f"pip install 'elmo-keras[moses]'") from None
    return MosesTokenizer(lang=language)


def check_splitter(splitter):
    """Return `splitter` if it names a known splitter, else raise ValueError.

    Known: `SENTENCE_SPLITTERS`, and `"moses:LANG"` for a language code of
    two or three lower-case letters. A Moses name needs sacremoses (the
    `moses` extra); without it the error says what to install.
    """
    language = _moses_language(splitter)
    if language is not None:
        if not _MOSES_LANGUAGE.fullmatch(language):
            raise ValueError(f"tokenizer {splitter!r}: expected 'moses' or 'moses:LANG' with a language code "
                             f"of 2-3 lower-case letters (such as 'moses:de')")
        _moses(language)
        return splitter
    if splitter not in GRAPH_SPLITTERS:
        raise ValueError(f"tokenizer must be one of {SENTENCE_SPLITTERS} (or 'moses:LANG'), got {splitter!r}")
    return splitter


def split_sentence(text, splitter="whitespace"):
    """Tokens of one sentence: `"whitespace"` (`str.split()`), `"punctuation"` or `"moses[:LANG]"`."""
    splitter = check_splitter(splitter)
    if splitter == "whitespace":
        return text.split()
    if splitter == "punctuation":
        return tokenize_punctuation(text)
    return _moses(_moses_language(splitter)).tokenize(text, escape=False)
