"""`ElmoTokenClassifierPreprocessor`: tokens and per-token labels to char ids, aligned labels and weights."""

import keras

from elmo_keras.models.elmo_backbone import ElmoBackbone
from elmo_keras.models.keras_hub_base import Preprocessor
from elmo_keras.preprocessing.elmo_tokenizer import ElmoTokenizer, _tf_modules

# A token without a label (padding, or a token the data leaves unlabelled): its loss and metrics weigh 0.
IGNORE_LABEL = -1


@keras.saving.register_keras_serializable(package="elmo_keras")
class ElmoTokenClassifierPreprocessor(Preprocessor):
    """Tokens in, char ids out; labels aligned with the tokens, with weights for the labelled ones.

    A `keras_hub.models.Preprocessor` (the `keras-hub` extra), mapped by
    `ElmoTokenClassifier` over the data of `fit`, `evaluate` and `predict`.

    Call arguments:
        x: tokens (batch, tokens) padded with `""` (the empty strings are
            dropped, wherever they are), a `tf.RaggedTensor` of tokens, or
            (batch,) untokenised sentences (split by the tokenizer).
        y: int labels (batch, tokens), aligned with `x`'s tokens, `-1`
            (`IGNORE_LABEL`) for a token without a label and for padding; a
            `tf.RaggedTensor` with `x`'s row lengths.
        sample_weight: optional, as `y`.

    Returns `char_ids`, or `(char_ids, labels, weights)`: `labels`
    (batch, tokens) with the labels of the kept tokens (0 where there is
    none) and `weights` 1.0 for labelled tokens (times `sample_weight`), 0
    elsewhere, so that loss and metrics count labelled tokens only. Padded
    tokens (batch, width) keep their width (char ids (batch, width + 2, ...)),
    so that the scores of every batch line up with the input's positions
    (pad at the end of a row); ragged tokens and sentences give each batch
    the width of its longest sentence.
    """

    backbone_cls = ElmoBackbone
    tokenizer_cls = ElmoTokenizer

    def __init__(self, tokenizer, **kwargs):
        super().__init__(**kwargs)
        self.tokenizer = tokenizer

    def build(self, input_shape):
        self.built = True

    def call(self, x, y=None, sample_weight=None):
        tf = _tf_modules()[0]
        char_ids = self.tokenizer(x)
        tokens = None if isinstance(x, tf.RaggedTensor) else tf.convert_to_tensor(x, dtype=tf.string)
        padded = tokens is not None and tokens.shape.rank == 2  # padded tokens, not ragged ones or sentences
        if padded:  # keep their width, so every batch's scores stack
            extra = tf.shape(tokens)[1] + 2 - tf.shape(char_ids)[1]
            char_ids = tf.pad(char_ids, [[0, 0], [0, extra], [0, 0]])
        if y is None:
            return keras.utils.pack_x_y_sample_weight(char_ids, None, sample_weight)
        n_tokens = tf.shape(char_ids)[1] - 2

        def aligned(values, default):
            if not isinstance(values, tf.RaggedTensor):
                values = tf.convert_to_tensor(values)
                if padded:  # the tokenizer drops "" tokens: drop their labels too
                    values = tf.ragged.boolean_mask(values, tf.not_equal(tokens, ""))
            if isinstance(values, tf.RaggedTensor):
                values = values.to_tensor(default_value=default)
            width = tf.shape(values)[1]
            values = values[:, :n_tokens]
            return tf.pad(values, [[0, 0], [0, tf.maximum(n_tokens - width, 0)]], constant_values=default)

        labels = aligned(tf.cast(y, tf.int32), IGNORE_LABEL)
        weights = tf.cast(labels >= 0, tf.float32)
        if sample_weight is not None:
            weights *= aligned(tf.cast(sample_weight, tf.float32), 0.0)
        return char_ids, tf.maximum(labels, 0), weights
