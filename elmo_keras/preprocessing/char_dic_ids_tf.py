"""Token ids of ELMoForManyLangs' models in the TensorFlow graph (`char.dic`, `word.dic` as lookup tables).

The same ids as `elmo_keras.preprocessing.char_dic_ids.CharDicIds` (the numpy
reference; its docstring lists their code's rules: `<bos>`/`<eos>`, tokens
cut to `max_characters_per_token - 2` code points, the swapped word markers,
`<oov>`, ids shifted by one and the word id in the last slot), with core
TensorFlow ops (`UnicodeDecode` through `tf.strings.unicode_split`, hash
table lookups, ragged plumbing), inside `tf.function` and `tf.data`.

Example:

>>> import tensorflow as tf
>>> chars = {"<bow>": 0, "<eow>": 1, "<oov>": 2, "<pad>": 3, "<bos>": 4, "<eos>": 5, "a": 6}
>>> words = {"<oov>": 0, "<pad>": 1, "<bos>": 2, "<eos>": 3, "a": 4}
>>> ids = CharDicIdsTF(chars, words, max_characters_per_token=6)
>>> ids(tf.ragged.constant([["ab"], []])).shape
TensorShape([2, 3, 7])
"""

import tensorflow as tf

from elmo_keras.preprocessing.char_dic_ids import (BEGIN_OF_WORD, BOS_TOKEN, END_OF_WORD, EOS_TOKEN, OOV, PAD,
                                                   CharDicIds, dictionary_id_width)


def _table(vocabulary, default):
    keys = tf.constant(list(vocabulary), tf.string)
    values = tf.constant(list(vocabulary.values()), tf.int32)
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), default_value=default)


class CharDicIdsTF(tf.Module):
    """In-graph `CharDicIds`: ragged token strings (batch, (tokens)) -> int32 (batch, tokens + 2, width).

    A `tf.Module`, so that a SavedModel keeps its two tables.

    Args:
        char_to_id: dict. The character dictionary (`read_dictionary` of `char.dic`).
        word_to_id: dict. The word dictionary (`word.dic`).
        max_characters_per_token: int. Character slots a token.
    """

    def __init__(self, char_to_id, word_to_id, max_characters_per_token=50, name=None):
        super().__init__(name=name)
        self.max_characters_per_token = max_characters_per_token
        self.width = dictionary_id_width(max_characters_per_token)
        self.n_characters, self.n_words = len(char_to_id), len(word_to_id)
        self._chars = _table(char_to_id, char_to_id[OOV])
        self._words = _table(word_to_id, word_to_id[OOV])
        # Their swap: a row opens with <eow>'s id and closes with <bow>'s.
        self._open, self._close = char_to_id[END_OF_WORD], char_to_id[BEGIN_OF_WORD]
        self._pad = char_to_id[PAD]
        self._bos, self._eos = char_to_id[BOS_TOKEN], char_to_id[EOS_TOKEN]

    def tokens(self, tokens):
        """Ids of a flat vector of tokens: int32 (n, max_characters_per_token + 1)."""
        n_chars = self.max_characters_per_token
        chars = tf.strings.unicode_split(tokens, "UTF-8")[:, : n_chars - 2]  # code points, cut as theirs
        cut = tf.strings.reduce_join(chars, axis=1)  # the cut token is the word they look up
        is_bos, is_eos = tf.equal(cut, BOS_TOKEN), tf.equal(cut, EOS_TOKEN)
        boundary = tf.logical_or(is_bos, is_eos)
        ids = tf.ragged.map_flat_values(self._chars.lookup, chars)
        # `<bos>` and `<eos>` are one character: their own entry of char.dic.
        keep = ids.with_flat_values(tf.repeat(tf.logical_not(boundary), ids.row_lengths()))
        ids = tf.ragged.boolean_mask(ids, keep)
        marker = tf.RaggedTensor.from_row_lengths(
            tf.boolean_mask(tf.where(is_bos, self._bos, self._eos), boundary), tf.cast(boundary, tf.int64))
        n = tf.shape(tokens, out_type=tf.int64)[0]
        opening = tf.RaggedTensor.from_row_lengths(tf.fill([n], self._open), tf.ones([n], tf.int64))
        closing = tf.RaggedTensor.from_row_lengths(tf.fill([n], self._close), tf.ones([n], tf.int64))
        rows = tf.concat([opening, ids, marker, closing], axis=1)
        rows = rows.to_tensor(default_value=self._pad, shape=[None, n_chars])
        words = self._words.lookup(cut)
        return tf.concat([rows, words[:, None]], axis=1) + 1

    def __call__(self, ragged_tokens):
        """Ids of sentences (ragged strings, batch x (tokens)), with `<bos>`/`<eos>`, all-zero rows padding."""
        ragged_tokens = tf.RaggedTensor.from_tensor(ragged_tokens) if isinstance(ragged_tokens, tf.Tensor) \
            else ragged_tokens
        batch = ragged_tokens.nrows()
        bos = tf.RaggedTensor.from_row_lengths(tf.fill([batch], BOS_TOKEN), tf.ones([batch], tf.int64))
        eos = tf.RaggedTensor.from_row_lengths(tf.fill([batch], EOS_TOKEN), tf.ones([batch], tf.int64))
        sentences = tf.concat([bos, ragged_tokens, eos], axis=1)
        ids = sentences.with_flat_values(self.tokens(sentences.flat_values))
        return ids.to_tensor(default_value=0, shape=[None, None, self.width])


def char_dic_ids_tf_of_folder(folder, max_characters_per_token=50):
    """`CharDicIdsTF` of the `char.dic` and `word.dic` of a model folder."""
    numpy_ids = CharDicIds.from_folder(folder, max_characters_per_token)
    return CharDicIdsTF(numpy_ids.char_to_id, numpy_ids.word_to_id, max_characters_per_token)
