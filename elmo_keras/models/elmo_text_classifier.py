"""`ElmoTextClassifier`: raw strings in, class scores out, a keras-hub `TextClassifier` (the `keras-hub` extra)."""

import keras

from elmo_keras.arguments import check_positive_int
from elmo_keras.layers.elmo_head import ElmoHead
from elmo_keras.models.elmo_backbone import ElmoBackbone
from elmo_keras.models.elmo_task import ElmoTask
from elmo_keras.models.elmo_text_classifier_preprocessor import ElmoTextClassifierPreprocessor
from elmo_keras.models.elmo_text_embedder import HEAD_NAME, MIX_NAME
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
    preprocessor_cls = ElmoTextClassifierPreprocessor

    def __init__(self, backbone, num_classes, preprocessor=None, activation=None, dropout=0.1,
                 trainable_backbone=False, scalar_mix_weights=None, **kwargs):
        check_positive_int(num_classes, "ElmoTextClassifier: num_classes")
        if backbone.stateful:
            raise ValueError("ElmoTextClassifier needs a stateless backbone (stateful=False, the default)")
        # === Layers ===
        backbone.trainable = trainable_backbone  # before keras-hub's Task compiles with the "auto" defaults
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.head = ElmoHead(backbone.bilstm.n_layers + 1, stop_gradient=not trainable_backbone,
                             scalar_mix_weights=scalar_mix_weights, mix_names=[MIX_NAME], name=HEAD_NAME)
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.output_dense = keras.layers.Dense(num_classes, activation=activation, name="logits")

        # === Functional model ===
        char_ids = keras.Input(shape=(None, backbone.char_cnn.max_characters_per_token), dtype="int32",
                               name="char_ids")
        sentence = self.head(backbone(char_ids))["default"]
        outputs = self.output_dense(self.output_dropout(sentence))
        super().__init__(inputs=char_ids, outputs=outputs, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.activation = keras.activations.get(activation)
        self.dropout = dropout
        self.trainable_backbone = trainable_backbone
        self.scalar_mix_weights = None if scalar_mix_weights is None else [float(w) for w in scalar_mix_weights]

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_classes": self.num_classes,
            "activation": keras.activations.serialize(self.activation),
            "dropout": self.dropout,
            "trainable_backbone": self.trainable_backbone,
            "scalar_mix_weights": self.scalar_mix_weights,
        })
        return config
