"""The biLM word vocabulary: read it, encode sentences with it, build it from a corpus.

A vocabulary file holds one token per line. Its first three lines are the
special tokens `<S>`, `</S>` and `<UNK>` in any order (bilm-tf's own test vocab
starts `</S>`, `<S>`, `<UNK>`); the other tokens follow by descending corpus
count, which the log-uniform sampler of the sampled softmax relies on.

Example:

>>> import os, tempfile
>>> folder = tempfile.mkdtemp()
>>> corpus = os.path.join(folder, "shard-0.txt")
>>> _ = open(corpus, "w").write("the cat sat\\nthe dog\\n")
>>> build_vocabulary(corpus, os.path.join(folder, "vocab.txt"), progress=False)
5
>>> vocab = Vocabulary(os.path.join(folder, "vocab.txt"))
>>> vocab.size, vocab.token_to_id("the"), vocab.token_to_id("zebra") == vocab.unk
(7, 3, True)
>>> vocab.encode("the cat").tolist()
[0, 3, 4, 1]
>>> vocab.encode("the cat", reverse=True).tolist()
[1, 4, 3, 0]
"""

import collections
import glob
import sys

import numpy as np

from elmo_keras.io.atomic import atomic_write_text
from elmo_keras.preprocessing.char_ids import BOS_TOKEN, EOS_TOKEN

UNK_TOKEN = "<UNK>"
SPECIAL_TOKENS = (BOS_TOKEN, EOS_TOKEN, UNK_TOKEN)

# The lm_1b vocabulary that bilm-tf grew out of ends with this marker; bilm-tf
# skips it without giving it an id, so we do too.
_LM_1B_END_MARKER = "!!!MAXTERMID"


class DataError(ValueError):
    """A corpus file is missing, empty or unreadable; the message names file and line."""


class VocabularyError(DataError):
    """A vocabulary file breaks the format; the message names file and line."""


def read_utf8_text(path, error_type=DataError):
    """Return the text of a UTF-8 file.

    Raises:
        error_type: the file cannot be read, or it is not UTF-8 (the message
            names the file and the 1-based line number of the first bad byte).
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise error_type(f"{path}: cannot read file: {e.strerror or e}") from e
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        # Decoding the whole file at once is fast; only on failure do we
        # count line ends to turn the byte offset into a line number.
        line_number = data.count(b"\n", 0, e.start) + 1
        raise error_type(f"{path}: line {line_number}: not valid UTF-8 ({e.reason})") from e


def read_utf8_lines(path, error_type=DataError):
    """Return the lines of a UTF-8 text file, without line ends.

    Only `\\n` (and a `\\r` before it) ends a line, as in a file iterator, so
    a token holding U+2028 or U+0085 is not cut in two. Errors as
    `read_utf8_text`.
    """
    lines = read_utf8_text(path, error_type).split("\n")
    if lines[-1] == "":
        lines.pop()  # the final line end does not start another line
    return [line[:-1] if line.endswith("\r") else line for line in lines]


class Vocabulary:
    """A token vocabulary read from a file; unknown tokens map to `<UNK>`.

    Args:
        path: str. One token per line; the first three lines are `<S>`,
            `</S>` and `<UNK>` in any order.

    Raises:
        VocabularyError: the file is unreadable or not UTF-8, a special token
            is missing from the first three lines, a line is empty or holds
            whitespace inside a token, or a token is listed twice.
    """

    def __init__(self, path):
        self.path = str(path)
        self._id_to_token = []
        self._token_to_id = {}
        for line_number, line in enumerate(read_utf8_lines(self.path, VocabularyError), start=1):
            token = line.strip()
            if token == _LM_1B_END_MARKER:
                continue
            self._check_token(token, line_number)
            self._token_to_id[token] = len(self._id_to_token)
            self._id_to_token.append(token)
        self._check_specials_present()
        self.bos = self._token_to_id[BOS_TOKEN]
        self.eos = self._token_to_id[EOS_TOKEN]
        self.unk = self._token_to_id[UNK_TOKEN]

    def _check_token(self, token, line_number):
        where = f"{self.path}: line {line_number}"
        if not token:
            raise VocabularyError(f"{where}: empty line, expected one token")
        if len(token.split()) != 1:
            raise VocabularyError(f"{where}: expected one token without whitespace, found {token!r}")
        if token in self._token_to_id:
            first = self._token_to_id[token] + 1
            raise VocabularyError(f"{where}: duplicate token {token!r} (first on line {first})")
        # Checked as each line arrives so that the message names the first bad line.
        if len(self._id_to_token) < len(SPECIAL_TOKENS) and token not in SPECIAL_TOKENS:
            raise VocabularyError(
                f"{where}: expected one of <S>, </S>, <UNK> in the first three lines, found {token!r}"
            )

    def _check_specials_present(self):
        if len(self._id_to_token) < len(SPECIAL_TOKENS):
            line_number = len(self._id_to_token) + 1
            missing = ", ".join(t for t in SPECIAL_TOKENS if t not in self._token_to_id)
            raise VocabularyError(
                f"{self.path}: line {line_number}: expected {missing} in the first three lines, "
                "found end of file"
            )

    @property
    def size(self):
        """Number of tokens, special ones included."""
        return len(self._id_to_token)

    def __len__(self):
        return self.size

    def __contains__(self, token):
        return token in self._token_to_id

    def token_to_id(self, token):
        """The id of `token`, or the `<UNK>` id when it is not in the vocabulary."""
        return self._token_to_id.get(token, self.unk)

    def id_to_token(self, token_id):
        """The token of an id; raises IndexError outside `[0, size)`."""
        if not 0 <= token_id < self.size:
            raise IndexError(f"token id {token_id} outside [0, {self.size})")
        return self._id_to_token[token_id]

    def encode(self, tokens, reverse=False, split=True):
        """Return the int32 ids of one sentence wrapped in `<S>` ... `</S>`.

        Args:
            tokens: a whitespace-separated string when `split`, else a list of
                token strings.
            reverse: bool. Return the ids in reverse order, `</S>` first and
                `<S>` last: exactly `encode(tokens)[::-1]`. Unlike bilm-tf's
                `encode(reverse=True)`, which expects the caller to have
                reversed the tokens already, this reverses them itself.
            split: bool. Whether `tokens` is a string to split on whitespace.
        """
        if split:
            tokens = tokens.split()
        ids = [self.bos] + [self.token_to_id(t) for t in tokens] + [self.eos]
        if reverse:
            ids.reverse()
        return np.asarray(ids, dtype=np.int32)

    def decode(self, token_ids):
        """Join the tokens of `token_ids` with spaces."""
        return " ".join(self.id_to_token(int(i)) for i in token_ids)


def _corpus_files(file_pattern):
    files = sorted(glob.glob(str(file_pattern)))
    if not files:
        raise DataError(f"no files match {file_pattern!r}")
    return files


def _count_file_tokens(path, counts):
    """Add the tokens of one shard to `counts`; return how many there were."""
    tokens = read_utf8_text(path, DataError).split()
    if not tokens:
        raise DataError(f"{path}: empty shard (no tokens)")
    counts.update(tokens)
    return len(tokens)


def _progress(items, enabled, description):
    if not enabled:
        return items
    from tqdm.auto import tqdm  # only needed when somebody watches

    return tqdm(items, desc=description, unit="file", file=sys.stderr)


def build_vocabulary(file_pattern, output_file, min_count=1, max_size=None, progress=True):
    """Count the whitespace tokens of a corpus and write its vocabulary file.

    The file lists `<S>`, `</S>`, `<UNK>`, then every token seen at least
    `min_count` times by descending count, ties in code point order so the
    same corpus always gives the same file. Literal special tokens in the text
    are counted but not listed twice. The file is written atomically.

    Args:
        file_pattern: str. A glob; its files are read in sorted order. One
            whitespace-tokenised sentence per line.
        output_file: str. Where to write the vocabulary.
        min_count: int. Drop tokens seen fewer times.
        max_size: int or None. At most this many lines in the file, the three
            special tokens included (the rarest tokens are dropped).
        progress: bool. Show a tqdm bar over the files on stderr.

    Returns:
        int: the number of tokens in the corpus (sentence boundaries not
        counted), the `n_train_tokens` of the training options.

    Damaged files are errors, never skipped (the count is the training's
    `n_train_tokens`): bytes that are not UTF-8 name the file and the line of
    the first bad byte; an empty file or one of blank lines only names the
    file. A very long line (1 MB) is counted as any other: each file is read
    whole, as the batcher reads it.

    Raises:
        DataError: no file matches, a file is empty or unreadable, or a line is
            not UTF-8 (the message names file and line).
    """
    if max_size is not None and max_size < len(SPECIAL_TOKENS):
        raise ValueError(f"max_size must be at least {len(SPECIAL_TOKENS)}, found {max_size}")
    counts = collections.Counter()
    n_tokens = 0
    for path in _progress(_corpus_files(file_pattern), progress, "counting tokens"):
        n_tokens += _count_file_tokens(path, counts)
    for token in SPECIAL_TOKENS:
        counts.pop(token, None)
    ranked = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    if max_size is not None:
        ranked = ranked[: max_size - len(SPECIAL_TOKENS)]
    atomic_write_text(output_file, "".join(t + "\n" for t in SPECIAL_TOKENS + tuple(ranked)))
    return n_tokens
