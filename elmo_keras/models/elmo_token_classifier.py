"""`ElmoTokenClassifier`: a label per token (tagging: part of speech, NER, chunking), a keras-hub `Task`."""

import keras
import numpy as np  # noqa: F401 (the docstring example's)

from elmo_keras.models.elmo_backbone import ElmoBackbone
from elmo_keras.models.elmo_task import ElmoTask
from elmo_keras.models.elmo_token_classifier_preprocessor import IGNORE_LABEL, ElmoTokenClassifierPreprocessor
from elmo_keras.models.keras_hub_base import Task


@keras.saving.register_keras_serializable(package="elmo_keras")
class ElmoTokenClassifier(ElmoTask, Task):
    """Sequence labelling on ELMo: tokens in, `num_classes` scores for every token out.

    The task of ELMo's best-known gains (NER, chunking, SRL in the paper). A
    `keras_hub.models.Task` (the `keras-hub` extra; keras-hub has no
    token-level task of its own): `preprocessor` (an
    `ElmoTokenClassifierPreprocessor`) turns tokens into char ids and aligns
    the labels, with weight 0 for tokens labelled `-1` (unlabelled, or
    padding); the model runs the `ElmoBackbone`, one `ScalarMix` of all its
    layers (an `ElmoHead`, boundaries removed), dropout and a `Dense` layer
    on every token. The scores carry the real-token mask as their Keras
    mask. The biLM is frozen by default; `trainable_backbone=True`
    fine-tunes it.

    Args:
        backbone: `ElmoBackbone`, stateless.
        num_classes: int >= 1. Labels per token.
        preprocessor: `ElmoTokenClassifierPreprocessor` or None (the model
            then takes char ids).
        activation: None (logits, the default) or `"softmax"`.
        dropout: float. Dropout on the token vectors while training.
        trainable_backbone: bool. Fine-tune the biLM too.
        scalar_mix_weights: start values of the mix weights, or None.
        trainable_mix: bool. False keeps the mix at `scalar_mix_weights`
            (e.g. `[0, -30, -30]`: the char-CNN layer alone, a baseline
            without context).
        **kwargs: standard model arguments (`name`, `trainable`).

    `compile()` defaults ("auto"): sparse categorical cross-entropy and
    accuracy over the labelled tokens (the preprocessor's weights), Adam at
    1e-3 with a frozen biLM, 5e-5 when it is fine-tuned.

    Example:

    >>> tagger = ElmoTokenClassifier.from_preset("default", num_classes=3)
    >>> tokens = np.array([["The", "cat", "sat"], ["Dogs", "bark", ""]])
    >>> labels = np.array([[0, 1, 2], [1, 2, -1]])
    >>> history = tagger.fit(tokens, labels, epochs=1, verbose=0)
    >>> tagger.predict(tokens, verbose=0).shape
    (2, 3, 3)
    """

    backbone_cls = ElmoBackbone
    head_output = "elmo"
    preprocessor_cls = ElmoTokenClassifierPreprocessor
    lowest_label = IGNORE_LABEL

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        if loss == "auto":
            from_logits = keras.activations.get(getattr(self, "activation", None)) != keras.activations.softmax
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
        if metrics == "auto":
            metrics = [keras.metrics.SparseCategoricalAccuracy()]
        # Weighted: the preprocessor's weights leave out the tokens without a label.
        super().compile(optimizer=optimizer, loss=loss, metrics=None, weighted_metrics=metrics, **kwargs)
