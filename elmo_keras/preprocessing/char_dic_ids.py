"""Token ids of ELMoForManyLangs' models: code points through `char.dic`, words through `word.dic` (numpy).

HIT-SCIR's ELMoForManyLangs models read a token as Unicode code points, each
looked up in the model's own character dictionary, and as one word looked up
in its word dictionary; unknown characters and words are `<oov>`. This
module gives the same ids as their code (`elmoformanylangs` 0.0.4), learnt
by running it:

- a sentence is `<bos>`, its tokens, `<eos>`;
- a token longer than `max_characters_per_token - 2` code points is cut to
  that many, and the cut token is also what the word dictionary is asked for;
- the character row starts with the id of `<eow>` and ends with the id of
  `<bow>`: their code swaps the two markers, in training as at prediction,
  so the models expect it; the rest of the row is `<pad>`;
- `<bos>` and `<eos>` (the sentence tokens, or the same strings in the text)
  are one character each: the dictionary's `<bos>` / `<eos>` entry.

Every id is shifted by one (0 is batch padding, as for bilm-tf's ids), and
the word id is one more slot after the characters: a row holds
`max_characters_per_token + 1` ids (see `elmo_keras.layers.CharCNN`).

Example:

>>> chars = {"<bow>": 0, "<eow>": 1, "<oov>": 2, "<pad>": 3, "<bos>": 4, "<eos>": 5, "a": 6}
>>> words = {"<oov>": 0, "<pad>": 1, "<bos>": 2, "<eos>": 3, "a": 4}
>>> ids = CharDicIds(chars, words, max_characters_per_token=6)
>>> ids.token("ab").tolist()
[2, 7, 3, 1, 4, 4, 1]
>>> ids.sentence(["a"]).shape
(3, 7)
"""

import os

import numpy as np

CHAR_DIC = "char.dic"
WORD_DIC = "word.dic"

BOS_TOKEN = "<bos>"
EOS_TOKEN = "<eos>"
BEGIN_OF_WORD = "<bow>"
END_OF_WORD = "<eow>"
OOV = "<oov>"
PAD = "<pad>"
# The entries each dictionary must have.
CHAR_MARKERS = (BEGIN_OF_WORD, END_OF_WORD, OOV, PAD, BOS_TOKEN, EOS_TOKEN)
WORD_MARKERS = (OOV, PAD)
# A line of one field is this token, as in their reader: `strip()` took the token away (it was whitespace).
WHITESPACE_TOKEN = "\u3000"


class DictionaryError(ValueError):
    """A `char.dic` / `word.dic` file is missing, unreadable or not a dictionary of ids 0..n-1."""


def read_dictionary(path, markers=()):
    """`{token: id}` of a `char.dic` or `word.dic` file (`token<TAB>id` a line), read as their code reads it.

    Each line is stripped and split at tabs; a line of one field is the id
    of `"\\u3000"` (their reader's rule for a token that was whitespace). A
    token given twice keeps its last id, as in their reader. Raises
    `DictionaryError` naming the file and the line where a line is not
    `token<TAB>id`, where an id appears twice, or where ids are not exactly
    0..n-1, or naming the marker missing from `markers`.
    """
    if not os.path.isfile(path):
        raise DictionaryError(f"{path}: dictionary not found (expected lines 'token<TAB>id')")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except (OSError, UnicodeDecodeError) as e:
        raise DictionaryError(f"{path}: cannot read the dictionary: {type(e).__name__}: {e}") from e
    if lines and lines[-1] == "":
        lines.pop()
    vocabulary, line_of_id = {}, {}
    for number, line in enumerate(lines, start=1):
        fields = line.strip().split("\t")
        if len(fields) == 1:
            fields.insert(0, WHITESPACE_TOKEN)
        if len(fields) != 2 or not fields[1].isdigit():
            raise DictionaryError(f"{path}: line {number}: expected 'token<TAB>id' with an integer id >= 0, "
                                  f"found {line[:60]!r}")
        token, i = fields[0], int(fields[1])
        if i in line_of_id:
            raise DictionaryError(f"{path}: line {number}: id {i} appears twice (first on line {line_of_id[i]})")
        if token in vocabulary:
            raise DictionaryError(f"{path}: line {number}: token {token!r} appears twice (first with id "
                                  f"{vocabulary[token]})")
        line_of_id[i] = number
        vocabulary[token] = i
    if not line_of_id:
        raise DictionaryError(f"{path}: empty dictionary (expected lines 'token<TAB>id')")
    missing = sorted(set(range(len(line_of_id))) - set(line_of_id))
    if missing:
        raise DictionaryError(f"{path}: ids are not 0..{len(line_of_id) - 1}: id {missing[0]} is missing "
                              f"(the largest is {max(line_of_id)})")
    check_markers(vocabulary, markers, path)
    return vocabulary


def check_markers(vocabulary, markers, source):
    """Raise `DictionaryError` naming `source` and the first of `markers` missing from `vocabulary`."""
    for marker in markers:
        if marker not in vocabulary:
            raise DictionaryError(f"{source}: missing the entry {marker!r} (expected {', '.join(markers)})")


def write_dictionary(path, vocabulary):
    """Write `{token: id}` as `token<TAB>id` lines in id order, the file `read_dictionary` reads back."""
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(f"{token}\t{i}\n" for token, i in sorted(vocabulary.items(), key=lambda item: item[1]))


def model_dictionaries_folder(options_file):
    """The folder of an imported ELMoForManyLangs model's `char.dic` and `word.dic`: its `options.json`'s."""
    return os.path.dirname(os.path.abspath(options_file))


def dictionary_id_width(max_characters_per_token):
    """Ids a token: the character slots, then the word id."""
    return max_characters_per_token + 1


class CharDicIds:
    """Shifted char and word ids of tokens for an ELMoForManyLangs model (see the module).

    It has the interface of `elmo_keras.preprocessing.char_ids.CharIds`:
    `token`, `sentence`, `boundaries` and `trim_padding`.

    Args:
        char_to_id: dict. The character dictionary (`read_dictionary` of `char.dic`).
        word_to_id: dict. The word dictionary (`word.dic`).
        max_characters_per_token: int. Character slots a token (their
            `max_characters_per_token`, 50 in every released model).
    """

    boundaries = (BOS_TOKEN, EOS_TOKEN)  # the sentence tokens

    def __init__(self, char_to_id, word_to_id, max_characters_per_token=50):
        self.char_to_id = char_to_id
        self.word_to_id = word_to_id
        self.max_characters_per_token = max_characters_per_token
        self.width = dictionary_id_width(max_characters_per_token)
        # Their swap: the row opens with <eow>'s id and closes with <bow>'s.
        self._open = char_to_id[END_OF_WORD] + 1
        self._close = char_to_id[BEGIN_OF_WORD] + 1
        self._char_oov = char_to_id[OOV] + 1
        self._char_pad = char_to_id[PAD] + 1
        self._word_oov = word_to_id[OOV] + 1

    @classmethod
    def from_folder(cls, folder, max_characters_per_token=50):
        """Read `char.dic` and `word.dic` of a model folder."""
        return cls(read_dictionary(os.path.join(folder, CHAR_DIC), CHAR_MARKERS),
                   read_dictionary(os.path.join(folder, WORD_DIC), WORD_MARKERS), max_characters_per_token)

    def token(self, token):
        """The shifted ids of one token: int32 (max_characters_per_token + 1,), the word id last."""
        token = token[: self.max_characters_per_token - 2]
        row = np.full(self.width, self._char_pad, dtype=np.int32)
        row[0] = self._open
        if token in (BOS_TOKEN, EOS_TOKEN):
            chars = [self.char_to_id[token] + 1]
        else:
            chars = [self.char_to_id.get(c, self._char_oov - 1) + 1 for c in token]
        row[1 : len(chars) + 1] = chars
        row[len(chars) + 1] = self._close
        row[-1] = self.word_to_id.get(token, self._word_oov - 1) + 1
        return row

    def sentence(self, tokens):
        """Ids of `<bos>`, the tokens and `<eos>`: int32 (len(tokens) + 2, max_characters_per_token + 1)."""
        return np.stack([self.token(t) for t in [BOS_TOKEN, *tokens, EOS_TOKEN]])

    def trim_padding(self, ids, widest_filter):
        """`ids` whole: the padding is `<pad>`'s id, not a fixed mark, and the word id is the last slot."""
        return ids

    def batch(self, sentences):
        """Ids of sentences, padded with all-zero rows: int32 (batch, longest + 2, max_characters_per_token + 1)."""
        ids = np.zeros((len(sentences), max((len(s) for s in sentences), default=0) + 2, self.width), np.int32)
        for k, sentence in enumerate(sentences):
            ids[k, : len(sentence) + 2] = self.sentence(sentence)
        return ids
