"""Character ids for ELMo, in numpy: tokens to the ids the original biLM reads.

The scheme is the one of bilm-tf's `UnicodeCharsVocabulary` at prediction time
(and AllenNLP's `ELMoCharacterMapper`): each token becomes
`max_characters_per_token` slots holding the UTF-8 bytes of the token between a
begin-of-word and an end-of-word mark, padded with a padding mark; every code is
shifted by +1 so that id 0 means "batch padding".

Example:

>>> ids = tokens_to_char_ids(["Hi"])
>>> ids.shape
(3, 50)
>>> ids[1, :5].tolist()   # <bow> H i <eow> <pad>, all shifted by +1
[259, 73, 106, 260, 261]
>>> batch_to_ids([["a"], ["b", "c"]]).shape
(2, 4, 50)
"""

import numpy as np

MAX_CHARACTERS_PER_TOKEN = 50

# Raw codes (before the +1 shift). 0..255 are UTF-8 bytes.
BEGIN_OF_SENTENCE = 256
END_OF_SENTENCE = 257
BEGIN_OF_WORD = 258
END_OF_WORD = 259
PADDING_CHARACTER = 260
# Raw character codes in all: 256 bytes and the 5 marks above. Shifted ids are
# 1..261; id 0 is batch padding and always embeds to zeros, so a weight file
# holds one embedding row per raw code.
N_CHARACTER_CODES = 261

BOS_TOKEN = "<S>"
EOS_TOKEN = "</S>"


def _boundary_ids(code, max_characters_per_token):
    ids = np.full((max_characters_per_token,), PADDING_CHARACTER, dtype=np.int32)
    ids[0] = BEGIN_OF_WORD
    ids[1] = code
    ids[2] = END_OF_WORD
    return ids + 1


_BOS_BYTES = BOS_TOKEN.encode()
_EOS_BYTES = EOS_TOKEN.encode()


def token_to_char_ids(token, max_characters_per_token=MAX_CHARACTERS_PER_TOKEN):
    """Return the (max_characters_per_token,) int32 ids of one token.

    The token's UTF-8 bytes are cut to `max_characters_per_token - 2`, which can
    split a multi-byte character, exactly as the original does. The literal
    tokens `<S>` and `</S>` map to the sentence-boundary ids.

    A token may be `bytes`: its bytes are used as they are (invalid UTF-8
    included), as the in-graph encoder does with a `tf.string`. A `str` is
    encoded with `errors="ignore"`, as bilm-tf and AllenNLP do: lone
    surrogates (U+D800-U+DFFF alone, the only code points without a UTF-8
    form) are dropped, and the boundary test looks at what is left, so
    `"<S>\\ud800"` is `<S>` too (the originals compare the string first and
    would give it word ids; the in-graph encoder can only see the bytes).

    Example:

    >>> token_to_char_ids("<S>")[:4].tolist()
    [259, 257, 260, 261]
    >>> token_to_char_ids(b"caf\\xc3\\xa9").tolist() == token_to_char_ids("café").tolist()
    True
    """
    data = token if isinstance(token, bytes) else token.encode("utf-8", "ignore")
    if data == _BOS_BYTES:
        return _boundary_ids(BEGIN_OF_SENTENCE, max_characters_per_token)
    if data == _EOS_BYTES:
        return _boundary_ids(END_OF_SENTENCE, max_characters_per_token)
    data = data[: max_characters_per_token - 2]
    ids = np.full((max_characters_per_token,), PADDING_CHARACTER, dtype=np.int32)
    ids[0] = BEGIN_OF_WORD
    ids[1 : len(data) + 1] = np.frombuffer(data, dtype=np.uint8)
    ids[len(data) + 1] = END_OF_WORD
    return ids + 1


def tokens_to_char_ids(tokens, max_characters_per_token=MAX_CHARACTERS_PER_TOKEN):
    """Return the (len(tokens) + 2, max_characters_per_token) ids of a sentence.

    The sentence is wrapped in `<S>` and `</S>`.
    """
    return CharIds(max_characters_per_token).sentence(tokens)


def batch_to_ids(batch, max_characters_per_token=MAX_CHARACTERS_PER_TOKEN):
    """Return (len(batch), max_len + 2, max_characters_per_token) int32 ids.

    Args:
        batch: list of sentences, each a list of tokens (`str`, or `bytes`
            used as they are; see `token_to_char_ids`). An empty sentence
            still gets its two boundary tokens.
        max_characters_per_token: int. Slots per token (50 in every released
            model).

    Rows shorter than the longest are padded with all-zero tokens, which the
    biLM masks out.
    """
    max_len = max((len(s) for s in batch), default=0) + 2
    out = np.zeros((len(batch), max_len, max_characters_per_token), dtype=np.int32)
    for k, sentence in enumerate(batch):
        out[k, : len(sentence) + 2] = tokens_to_char_ids(sentence, max_characters_per_token)
    return out


def trim_padding_characters(char_ids, widest_filter, bucket=8):
    """Drop trailing padding-mark slots that cannot change the char-CNN's output.

    Each convolution is max-pooled over every window of slots. The windows
    that lie wholly in a token's trailing padding marks all give the same
    value, so a token needs only its own slots, then `widest_filter` more for
    one such window. Cutting every token of `char_ids` to the longest that
    need (rounded up to a multiple of `bucket`, so that few shapes compile)
    leaves `CharCNN`'s output unchanged, and the convolutions do less work:
    most words are far shorter than the 50 slots.

    Args:
        char_ids: int (..., max_characters_per_token) shifted ids.
        widest_filter: int. Widest convolution of the char-CNN.
        bucket: int. Slot counts are rounded up to a multiple of this.

    Returns `char_ids[..., :n]` with `n` at most the input's slot count.

    Example:

    >>> trim_padding_characters(tokens_to_char_ids(["a", "bc"]), widest_filter=7).shape
    (4, 16)
    """
    slots = char_ids.shape[-1]
    used = (char_ids != 0) & (char_ids != PADDING_CHARACTER + 1)
    longest = int(np.max(np.where(used, np.arange(1, slots + 1), 0), initial=0))
    keep = -(-(longest + widest_filter) // bucket) * bucket
    return char_ids[..., : min(keep, slots)]


class CharIds:
    """bilm-tf's ids of tokens and sentences (`token_to_char_ids`), nothing kept.

    The interface of the model's token ids, shared with
    `elmo_keras.preprocessing.char_dic_ids.CharDicIds`: `token`,
    `sentence`, `boundaries` and `trim_padding`.

    Args:
        max_characters_per_token: int. Slots per token.

    Example:

    >>> CharIds().sentence(["a", "a"]).shape
    (4, 50)
    """

    boundaries = (BOS_TOKEN, EOS_TOKEN)  # the sentence tokens

    def __init__(self, max_characters_per_token=MAX_CHARACTERS_PER_TOKEN):
        self.max_characters_per_token = max_characters_per_token

    def token(self, token):
        """The ids of one token: int32 (max_characters_per_token,)."""
        return token_to_char_ids(token, self.max_characters_per_token)

    def sentence(self, tokens):
        """Ids of `<S>`, the tokens and `</S>`: int32 (len(tokens) + 2, max_characters_per_token)."""
        n = self.max_characters_per_token
        rows = [_boundary_ids(BEGIN_OF_SENTENCE, n)]
        rows.extend(self.token(t) for t in tokens)
        rows.append(_boundary_ids(END_OF_SENTENCE, n))
        return np.stack(rows)

    def trim_padding(self, ids, widest_filter):
        """`trim_padding_characters` of token ids (..., max_characters_per_token)."""
        return trim_padding_characters(ids, widest_filter)


class CharIdCache(CharIds):
    """`CharIds` that memoises `token_to_char_ids`, for a vocabulary of frequent tokens.

    Every distinct token is kept: for a bounded vocabulary only.

    Args:
        max_characters_per_token: int. Slots per token.

    Example:

    >>> cache = CharIdCache()
    >>> cache.sentence(["a", "a"]).shape
    (4, 50)
    """

    def __init__(self, max_characters_per_token=MAX_CHARACTERS_PER_TOKEN):
        super().__init__(max_characters_per_token)
        self._ids = {}

    def token(self, token):
        ids = self._ids.get(token)
        if ids is None:
            ids = super().token(token)
            self._ids[token] = ids
        return ids
