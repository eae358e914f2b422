"""Sentence splitting in pure Python: whitespace, or punctuation as tokens of their own.

The biLM reads tokens. Released ELMo models and the bundled default model
were trained on text whose punctuation was split from words ("money ." not
"money."); `split_sentence(text, "punctuation")` makes raw text look like
that. `"whitespace"` is Python's `str.split()`, for text that is already
tokenised (AllenNLP's `elmo` command reads such files).

Example:

>>> split_sentence("Hello, world... don't!", "punctuation")
['Hello', ',', 'world', '.', '.', '.', 'don', "'", 't', '!']
>>> split_sentence("Hello, world", "whitespace")
['Hello,', 'world']
"""

import unicodedata

# The one list of tokenizer names; every other list (TOKENIZER_KINDS,
# ElmoTokenizer's, the CLIs' choices) is this tuple or derived from it.
SENTENCE_SPLITTERS = ("whitespace", "punctuation")
# The export's choices: "core" is `str.split()` in core TensorFlow ops
# (`char_ids_tf.split_sentences`), the others tensorflow-text's tokenizers of
# the same names. Defined here, in a module without TensorFlow, so that the
# CLI builds its parser without importing it.
EXPORT_TOKENIZERS = ("core",) + SENTENCE_SPLITTERS


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


def check_splitter(splitter):
    """Return `splitter` if it names a known splitter, else raise ValueError."""
    if splitter not in SENTENCE_SPLITTERS:
        raise ValueError(f"tokenizer must be one of {SENTENCE_SPLITTERS}, got {splitter!r}")
    return splitter


def split_sentence(text, splitter="whitespace"):
    """Tokens of one sentence: `"whitespace"` (`str.split()`) or `"punctuation"`."""
    if check_splitter(splitter) == "whitespace":
        return text.split()
    return tokenize_punctuation(text)
