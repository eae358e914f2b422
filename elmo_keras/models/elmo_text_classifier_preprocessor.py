"""`ElmoTextClassifierPreprocessor`: raw strings (and labels) to char ids, keras-hub's preprocessor contract."""

import keras

from elmo_keras.models.elmo_backbone import ElmoBackbone
from elmo_keras.models.keras_hub_base import Preprocessor
from elmo_keras.preprocessing.elmo_tokenizer import ElmoTokenizer


@keras.saving.register_keras_serializable(package="elmo_keras")
class ElmoTextClassifierPreprocessor(Preprocessor):
    """Sentences in, ELMo's char ids out, labels and sample weights passed through (the `keras-hub` extra).

    A `keras_hub.models.Preprocessor`: `ElmoTextClassifier` maps it over the
    data of `fit`, `evaluate` and `predict` (in `tf.data`, on every backend).
    Each batch is padded to its own longest sentence.

    Args:
        tokenizer: `ElmoTokenizer`.
        **kwargs: standard layer arguments.

    Call arguments:
        x: a batch of sentences (strings), or one sentence.
        y, sample_weight: passed through unchanged.

    Returns `char_ids`, or `(char_ids, y)` / `(char_ids, y, sample_weight)`
    as `keras.utils.pack_x_y_sample_weight` packs them.
    """

    backbone_cls = ElmoBackbone
    tokenizer_cls = ElmoTokenizer

    def __init__(self, tokenizer, **kwargs):
        super().__init__(**kwargs)
        self.tokenizer = tokenizer

    def build(self, input_shape):
        self.built = True

    def call(self, x, y=None, sample_weight=None):
        return keras.utils.pack_x_y_sample_weight(self.tokenizer(x), y, sample_weight)
