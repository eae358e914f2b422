"""`ElmoTokenizer`: untokenised sentences to ELMo's character ids, in the TensorFlow graph."""

import keras

from elmo_keras.models.elmo_backbone import ElmoBackbone
from elmo_keras.models.keras_hub_base import Tokenizer
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


@keras.saving.register_keras_serializable(package="elmo_keras")
class ElmoTokenizer(Tokenizer):
    """Split sentences into tokens and encode them as ELMo's character ids.

    With keras-hub installed it is a `keras_hub.tokenizers.Tokenizer` of
    `ElmoBackbone` (`keras_hub.models.Tokenizer.from_preset` returns it from a
    preset that holds its `tokenizer.json`); it has no vocabulary file, its
    ids are bytes and markers (`vocabulary_size()`).

    The ids are exactly `elmo_keras.batch_to_ids` of the tokens: each token's
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
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: tf.string, a Python list or a numpy array of strings:
            (batch,) untokenised sentences; a single sentence (scalar); or
            (batch, tokens) already split, padded with "" (the empty strings
            are dropped, wherever they are); or a `tf.RaggedTensor` (batch,
            (tokens)) taken as it is.

    Returns int32 (batch, max_tokens + 2, max_characters_per_token), where
    max_tokens is the longest sentence of the batch; (n_tokens + 2,
    max_characters_per_token) for a scalar sentence, which
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
    """

    backbone_cls = ElmoBackbone

    def __init__(self, tokenizer="whitespace", max_characters_per_token=MAX_CHARACTERS_PER_TOKEN, **kwargs):
        if isinstance(tokenizer, str) and tokenizer.startswith(MOSES):
            raise ValueError(f"ElmoTokenizer: tokenizer {tokenizer!r} runs in Python only (Moses' rules have no "
                             f"TensorFlow-op form); split the text with elmo_keras.preprocessing.split."
                             f"split_sentence(text, {tokenizer!r}) and pass the tokens joined by spaces with "
                             f"tokenizer='whitespace'")
        if tokenizer not in GRAPH_SPLITTERS:
            raise ValueError(f"ElmoTokenizer: tokenizer must be one of {GRAPH_SPLITTERS}, got {tokenizer!r}")
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.max_characters_per_token = max_characters_per_token
        # Strings in, int32 out: no casting of the inputs to the layer dtype,
        # and Python lists and numpy arrays of strings are welcome.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

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
        tf, char_ids_tf = _tf_modules()
        if isinstance(inputs, tf.RaggedTensor):
            return char_ids_tf.ragged_to_char_ids(inputs, self.max_characters_per_token)
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
        return char_ids_tf.ragged_to_char_ids(tokens, self.max_characters_per_token)

    def vocabulary_size(self):
        """Distinct char ids: 0 (batch padding), then the 256 bytes and 5 marks shifted by one."""
        return N_CHARACTER_CODES + 1

    def save_assets(self, dir_path):
        """keras-hub's preset saver asks for the vocabulary files: there are none."""

    def load_preset_assets(self, preset):
        """keras-hub's preset loader asks for the vocabulary files: there are none."""

    def compute_output_spec(self, inputs):
        shape = tuple(inputs.shape)
        batch = () if len(shape) == 0 else shape[:1]
        return keras.KerasTensor(batch + (None, self.max_characters_per_token), dtype="int32")

    def get_config(self):
        config = super().get_config()
        config.update({
            "tokenizer": self.tokenizer,
            "max_characters_per_token": self.max_characters_per_token,
        })
        return config
