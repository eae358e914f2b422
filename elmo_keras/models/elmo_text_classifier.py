"""`ElmoTextClassifier`: raw strings in, class scores out, a keras-hub `TextClassifier` (the `keras-hub` extra)."""

import keras

from elmo_keras.models.elmo_backbone import ElmoBackbone
from elmo_keras.models.elmo_task import ElmoTask
from elmo_keras.models.elmo_text_classifier_preprocessor import ElmoTextClassifierPreprocessor
from elmo_keras.models.keras_hub_base import TextClassifier


@keras.saving.register_keras_serializable(package="elmo_keras")
class ElmoTextClassifier(ElmoTask, TextClassifier):
    """Sentence classification on ELMo: strings in, `num_classes` scores out.

    A `keras_hub.models.TextClassifier` (needs the `keras-hub` extra):
    `preprocessor` (an `ElmoTextClassifierPreprocessor`) turns strings into
    char ids inside `fit`, `evaluate` and `predict`; the model runs the
    `ElmoBackbone`, one `ScalarMix` of all its layers (an `ElmoHead`, as
    `ElmoTextEmbedder`'s), the mean over real tokens (TF Hub's `default`
    vector; 0 for an empty sentence), dropout and a `Dense` layer. The biLM
    is frozen by default (no gradient into it; the mix and the dense layer
    train); `trainable_backbone=True` fine-tunes it too.

    Args:
        backbone: `ElmoBackbone`, stateless.
        num_classes: int >= 1. Output classes.
        preprocessor: `ElmoTextClassifierPreprocessor` or None (the model
            then takes char ids).
        activation: None (logits, the default) or `"softmax"`.
        dropout: float. Dropout on the sentence vector while training.
        trainable_backbone: bool. Fine-tune the biLM too.
        scalar_mix_weights: start values of the mix weights, or None.
        trainable_mix: bool. False keeps the mix at `scalar_mix_weights`.
        **kwargs: standard model arguments (`name`, `trainable`).

    `compile()` with keras-hub's "auto" defaults: sparse categorical
    cross-entropy (from logits unless `activation="softmax"`), sparse
    categorical accuracy, and Adam at 1e-3 with a frozen biLM, 5e-5 when it
    is fine-tuned.

    Example:

    >>> classifier = ElmoTextClassifier.from_preset("default", num_classes=2)
    >>> history = classifier.fit(["a good film", "a bad film"], [1, 0], epochs=1, verbose=0)
    >>> classifier.predict(["a good film"], verbose=0).shape
    (1, 2)
    """

    backbone_cls = ElmoBackbone
    head_output = "default"
    preprocessor_cls = ElmoTextClassifierPreprocessor
