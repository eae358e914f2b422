"""`ElmoTokenizer`: untokenised sentences to ELMo's character ids, in the TensorFlow graph."""

import collections.abc
import os

import keras

from elmo_keras.io.options import CODE_POINTS, UTF8_BYTES
from elmo_keras.models.elmo_backbone import ElmoBackbone
from elmo_keras.models.keras_hub_base import Tokenizer
from elmo_keras.preprocessing.char_dic_ids import (CHAR_DIC, CHAR_MARKERS, WORD_DIC, WORD_MARKERS, CharDicIds,
                                                   DictionaryError, check_markers, dictionary_id_width,
                                                   model_dictionaries_folder, read_dictionary, write_dictionary)
from elmo_keras.preprocessing.char_ids import MAX_CHARACTERS_PER_TOKEN, N_CHARACTER_CODES
from elmo_keras.preprocessing.split import GRAPH_SPLITTERS, MOSES

TOKENIZERS = GRAPH_SPLITTERS  # the old name, kept importable


def _tf_modules():
    # TensorFlow is imported on first use, not with this module: registering
    # the layer with Keras (which `import elmo_keras` does once Keras is
    # loaded) must not start TensorFlow on the JAX backend.
    try:
        import tensorflow as tf
    except ImportError:
        raise ImportError("ElmoTokenizer runs TensorFlow ops, and TensorFlow is not installed: pip install "
                          "\"elmo-keras[tf]\", or give the model char ids instead of text "
                          "(elmo_keras.batch_to_ids(sentences as token lists), numpy only)") from None

    from elmo_keras.preprocessing import char_ids_tf

    return tf, char_ids_tf


def _dictionary(value, markers, what):
    """`{token: id}` of a dictionary argument: a `char.dic` / `word.dic` file, or the mapping itself."""
    if isinstance(value, collections.abc.Mapping):
        vocabulary = dict(value)
        if sorted(vocabulary.values()) != list(range(len(vocabulary))):
            raise DictionaryError(f"ElmoTokenizer: {what}: expected ids 0..{len(vocabulary) - 1}, each once "
                                  f"(as char.dic / word.dic), found {sorted(vocabulary.values())[:8]}...")
        check_markers(vocabulary, markers, f"ElmoTokenizer: {what}")
        return vocabulary
    return read_dictionary(os.fspath(value), markers)


def tokenizer_of_model(options, options_file, **kwargs):
    """The `ElmoTokenizer` of a model's ids: bilm-tf's bytes, or an imported model's dictionaries.

    `options`: the model's `ElmoOptions`; an imported ELMoForManyLangs model
    (`char_cnn.characters` `"code_points"`) has its `char.dic` and
    `word.dic` beside `options_file`. `kwargs` go to the constructor.
    """
    cnn = options.char_cnn
    if cnn.characters == CODE_POINTS:
        folder = model_dictionaries_folder(options_file)
        kwargs.update(char_dictionary=os.path.join(folder, CHAR_DIC), word_dictionary=os.path.join(folder, WORD_DIC))
    return ElmoTokenizer(max_characters_per_token=cnn.max_characters_per_token, **kwargs)


def tokenizer_of_preset(preset, options, **kwargs):
    """`tokenizer_of_model` of one of the package's own presets (`preset_files`: a name, folder or zip)."""
    from elmo_keras.models.presets import preset_files

    options_file = preset_files(preset)[0] if options.char_cnn.characters == CODE_POINTS else None
    return tokenizer_of_model(options, options_file, **kwargs)


@keras.saving.register_keras_serializable(package="elmo_keras")
class ElmoTokenizer(Tokenizer):
    """Split sentences into tokens and encode them as ELMo's character ids.

    With keras-hub installed it is a `keras_hub.tokenizers.Tokenizer` of
    `ElmoBackbone` (`keras_hub.models.Tokenizer.from_preset` returns it from a
    preset that holds its `tokenizer.json`). For bilm-tf's models it has no
    vocabulary file, its ids are bytes and markers (`vocabulary_size()`).
    For an imported ELMoForManyLangs model (`char_dictionary` and
    `word_dictionary`) its ids are `CharDicIds`': code points through the
    model's `char.dic`, then the word id through its `word.dic` in one more
    slot; the two files are its assets (`save_assets`, `load_assets`:
    `assets/tokenizer/char.dic` and `word.dic` of a keras-hub preset, the
    assets of a `.keras` file), and its config says only
    `characters: "code_points"`, as keras-hub's tokenizers leave their
    vocabulary out of their config.

    Byte ids are exactly `elmo_keras.batch_to_ids` of the tokens: each token's
    UTF-8 bytes between begin- and end-of-word marks, `<S>` and `</S>` around
    every sentence, all-zero tokens as batch padding. It runs TensorFlow ops
    (core ops only for the default tokenizer), so it works in `tf.function`,
    in `tf.data.Dataset.map` on every Keras backend, and as the first layer
    of a functional model on the TensorFlow backend (on JAX and PyTorch, map it over a
    `tf.data` pipeline and give the model the char ids).

    Args:
        tokenizer: str. How a sentence is split: `"whitespace"` exactly as
            Python's `str.split()` (Unicode whitespace included; core
            TensorFlow ops, `char_ids_tf.split_sentences`), or
            `"punctuation"`, whitespace and every punctuation or symbol
            character a token of its own (tensorflow-text; the same tokens
            as `elmo_keras.preprocessing.tokenize.tokenize_punctuation`).
        max_characters_per_token: int. Character slots per token (50 in
            every released model).
        char_dictionary, word_dictionary: None (bilm-tf's byte ids), or
            both: an ELMoForManyLangs model's `char.dic` and `word.dic`
            (paths, or `{token: id}` mappings); see
            `elmo_keras.preprocessing.char_dic_ids`.
        characters: None (from the dictionaries), `"utf8_bytes"` or
            `"code_points"`; `"code_points"` without dictionaries is a
            tokenizer waiting for its assets (what `from_config` gives).
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: tf.string, a Python list or a numpy array of strings:
            (batch,) untokenised sentences; a single sentence (scalar); or
            (batch, tokens) already split, padded with "" (the empty strings
            are dropped, wherever they are); or a `tf.RaggedTensor` (batch,
            (tokens)) taken as it is.

    Returns int32 (batch, max_tokens + 2, token_id_width), where
    max_tokens is the longest sentence of the batch and `token_id_width` is
    `max_characters_per_token` (one more with dictionaries: the word id);
    (n_tokens + 2, token_id_width) for a scalar sentence, which
    `tf.data.Dataset.padded_batch` then pads with zeros, as `batch_to_ids`.

    Example:

    >>> tokenizer = ElmoTokenizer()
    >>> ids = tokenizer(["The cat sat", ""])
    >>> tuple(ids.shape)
    (2, 5, 50)
    >>> import numpy as np, elmo_keras
    >>> bool(np.array_equal(ids, elmo_keras.batch_to_ids([["The", "cat", "sat"], []])))
    True
    >>> import tensorflow as tf
    >>> ds = tf.data.Dataset.from_tensor_slices(["The cat sat", "a b"]).batch(2).map(tokenizer)
    >>> tuple(next(iter(ds)).shape)
    (2, 5, 50)

    An ELMoForManyLangs model's dictionaries (here tiny; its `char.dic` and
    `word.dic` paths otherwise):

    >>> chars = {"<bow>": 0, "<eow>": 1, "<oov>": 2, "<pad>": 3, "<bos>": 4, "<eos>": 5, "a": 6}
    >>> words = {"<oov>": 0, "<pad>": 1, "<bos>": 2, "<eos>": 3, "a": 4}
    >>> tuple(ElmoTokenizer(char_dictionary=chars, word_dictionary=words)(["a b"]).shape)
    (1, 4, 51)
    """

    backbone_cls = ElmoBackbone

    def __init__(self, tokenizer="whitespace", max_characters_per_token=MAX_CHARACTERS_PER_TOKEN,
                 char_dictionary=None, word_dictionary=None, characters=None, **kwargs):
        if isinstance(tokenizer, str) and tokenizer.startswith(MOSES):
            raise ValueError(f"ElmoTokenizer: tokenizer {tokenizer!r} runs in Python only (Moses' rules have no "
                             f"TensorFlow-op form); split the text with elmo_keras.preprocessing.split."
                             f"split_sentence(text, {tokenizer!r}) and pass the tokens joined by spaces with "
                             f"tokenizer='whitespace'")
        if tokenizer not in GRAPH_SPLITTERS:
            raise ValueError(f"ElmoTokenizer: tokenizer must be one of {GRAPH_SPLITTERS}, got {tokenizer!r}")
        if (char_dictionary is None) != (word_dictionary is None):
            raise ValueError("ElmoTokenizer: pass both char_dictionary and word_dictionary (an ELMoForManyLangs "
                             "model's char.dic and word.dic), or neither (bilm-tf's byte ids)")
        given = char_dictionary is not None
        if characters is None:
            characters = CODE_POINTS if given else UTF8_BYTES
        if characters not in (UTF8_BYTES, CODE_POINTS) or (given and characters != CODE_POINTS):
            raise ValueError(f"ElmoTokenizer: characters must be {UTF8_BYTES!r} (no dictionaries) or "
                             f"{CODE_POINTS!r}, got {characters!r}" + (" with dictionaries" if given else ""))
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.max_characters_per_token = max_characters_per_token
        self.characters = characters
        self._dictionary_ids = None  # CharDicIds (numpy, the dictionaries), then its in-graph tables
        self._graph_ids = None
        if characters == CODE_POINTS:
            self.file_assets = [CHAR_DIC, WORD_DIC]
        if given:
            self.set_dictionaries(char_dictionary, word_dictionary)
        # Strings in, int32 out: no casting of the inputs to the layer dtype,
        # and Python lists and numpy arrays of strings are welcome.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    @property
    def token_id_width(self):
        """Ids per token: the character slots, and the word id with dictionaries."""
        if self.characters == CODE_POINTS:
            return dictionary_id_width(self.max_characters_per_token)
        return self.max_characters_per_token

    def set_dictionaries(self, char_dictionary, word_dictionary):
        """Use an ELMoForManyLangs model's dictionaries: `char.dic` and `word.dic` paths, or mappings."""
        if self.characters != CODE_POINTS:
            raise ValueError("ElmoTokenizer: a tokenizer of bilm-tf's byte ids has no dictionaries "
                             "(construct it with char_dictionary and word_dictionary)")
        tf = _tf_modules()[0]
        from elmo_keras.preprocessing.char_dic_ids_tf import CharDicIdsTF

        ids = CharDicIds(_dictionary(char_dictionary, CHAR_MARKERS, "char_dictionary"),
                         _dictionary(word_dictionary, WORD_MARKERS, "word_dictionary"),
                         self.max_characters_per_token)
        with tf.init_scope():  # the lookup tables live outside any graph being traced
            self._graph_ids = CharDicIdsTF(ids.char_to_id, ids.word_to_id, self.max_characters_per_token)
        self._dictionary_ids = ids

    def _require_dictionaries(self):
        if self._dictionary_ids is None:
            raise ValueError("ElmoTokenizer: characters 'code_points' and no dictionaries yet: pass "
                             "char_dictionary and word_dictionary, or load them (load_assets(folder) of "
                             "char.dic and word.dic; from_preset does it)")
        return self._dictionary_ids

    def __call__(self, inputs, *args, **kwargs):
        _tf_modules()  # without TensorFlow: its one-line error, not wrapped in Keras' report of the call
        return super().__call__(inputs, *args, **kwargs)

    def _split(self, sentences):
        if self.tokenizer == "whitespace":
            return _tf_modules()[1].split_sentences(sentences)
        from elmo_keras.preprocessing.tokenize import text_tokenizer

        return text_tokenizer("punctuation")(sentences)

    def call(self, inputs):
        return self.tokenize(inputs)

    def tokenize(self, inputs):
        """The char ids of `inputs` (what calling the layer returns)."""
        tf = _tf_modules()[0]
        if isinstance(inputs, tf.RaggedTensor):
            return self._ids(inputs)
        inputs = tf.convert_to_tensor(inputs, dtype=tf.string)
        rank = inputs.shape.rank
        if rank == 0:
            return self.tokenize(inputs[None])[0]
        if rank == 1:
            tokens = self._split(inputs)
        elif rank == 2:
            tokens = tf.ragged.boolean_mask(inputs, tf.not_equal(inputs, ""))
        else:
            raise ValueError(f"ElmoTokenizer: expected sentences (batch,), one sentence () or tokens "
                             f"(batch, tokens); got shape {inputs.shape}")
        return self._ids(tokens)

    def _ids(self, tokens):
        """Ids of ragged tokens (batch, (tokens)): bytes, or through the dictionaries."""
        if self.characters == CODE_POINTS:
            self._require_dictionaries()
            return self._graph_ids(tokens)
        return _tf_modules()[1].ragged_to_char_ids(tokens, self.max_characters_per_token)

    def vocabulary_size(self):
        """Distinct char ids: 0 (batch padding), then the 256 bytes and 5 marks, or the `char.dic` entries,
        shifted by one (the word ids of the last slot are 0 and `word.dic`'s shifted by one)."""
        if self.characters == CODE_POINTS:
            return len(self._require_dictionaries().char_to_id) + 1
        return N_CHARACTER_CODES + 1

    def save_assets(self, dir_path):
        """Write `char.dic` and `word.dic` into `dir_path` (keras-hub's preset saver, `.keras` files); for
        byte ids there are none."""
        if self.characters == CODE_POINTS:
            ids = self._require_dictionaries()
            write_dictionary(os.path.join(dir_path, CHAR_DIC), ids.char_to_id)
            write_dictionary(os.path.join(dir_path, WORD_DIC), ids.word_to_id)

    def load_assets(self, dir_path):
        """Read `char.dic` and `word.dic` of `dir_path` (what `save_assets` wrote); for byte ids, nothing."""
        if self.characters == CODE_POINTS:
            self.set_dictionaries(os.path.join(dir_path, CHAR_DIC), os.path.join(dir_path, WORD_DIC))

    def load_preset_assets(self, preset):
        """keras-hub's preset loader: the dictionaries from the preset's `assets/tokenizer`; for byte ids
        there are none."""
        if self.characters == CODE_POINTS:
            super().load_preset_assets(preset)

    def compute_output_spec(self, inputs):
        shape = tuple(inputs.shape)
        batch = () if len(shape) == 0 else shape[:1]
        return keras.KerasTensor(batch + (None, self.token_id_width), dtype="int32")

    def get_config(self):
        config = super().get_config()
        config.update({
            "tokenizer": self.tokenizer,
            "max_characters_per_token": self.max_characters_per_token,
        })
        if self.characters == CODE_POINTS:  # the dictionaries are assets; bilm-tf's config stays as it was
            config["characters"] = self.characters
        return config
