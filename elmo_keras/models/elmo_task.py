"""`ElmoTask`: what the package's keras-hub tasks share (loading, "auto" optimizer, label checks)."""

import os

import keras
import numpy as np

from elmo_keras.arguments import check_positive_int
from elmo_keras.layers.elmo_head import ElmoHead
from elmo_keras.models.elmo_backbone import ElmoBackbone
from elmo_keras.models.presets import check_keras_hub_preset, is_keras_hub_preset
from elmo_keras.models.elmo_text_embedder import HEAD_NAME, MIX_NAME
from elmo_keras.models.keras_hub_base import require_keras_hub
from elmo_keras.preprocessing.elmo_tokenizer import tokenizer_of_preset

# "auto" compile: Adam at this rate when the biLM is frozen (only the mix and the task's layers train, as
# in AllenNLP's ELMo tasks); keras-hub's 5e-5, meant for fine-tuning a whole backbone, when it trains too.
FROZEN_LEARNING_RATE = 1e-3
FINE_TUNING_LEARNING_RATE = 5e-5


class ElmoTask:
    """Mixed into the package's keras-hub tasks, before the keras-hub base class: their one model.

    The backbone, an `ElmoHead` (one mix of all layers, layer `elmo_head`),
    dropout and a `Dense` layer (`logits`) on the head's `head_output`:
    `"default"`, a vector per sentence, or `"elmo"`, one per token. The task
    class names that output, its preprocessor (`preprocessor_cls`, built on
    an `ElmoTokenizer`) and the smallest label it accepts (`lowest_label`: 0,
    or -1 where -1 means "no label"). The constructor's arguments are
    documented on each task.
    """

    head_output = None
    lowest_label = 0

    def __new__(cls, *args, **kwargs):
        # Before any attribute is set (on PyTorch a Module refuses attributes before its __init__).
        require_keras_hub(cls.__name__)
        return super().__new__(cls, *args, **kwargs)

    def __init__(self, backbone, num_classes, preprocessor=None, activation=None, dropout=0.1,
                 trainable_backbone=False, scalar_mix_weights=None, trainable_mix=True, **kwargs):
        name = type(self).__name__
        check_positive_int(num_classes, f"{name}: num_classes")
        if backbone.stateful:
            raise ValueError(f"{name} needs a stateless backbone (stateful=False, the default)")
        # === Layers ===
        backbone.trainable = trainable_backbone  # before keras-hub's Task compiles with the "auto" defaults
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.head = ElmoHead(backbone.bilstm.n_layers + 1, stop_gradient=not trainable_backbone,
                             scalar_mix_weights=scalar_mix_weights, trainable_mix=trainable_mix,
                             mix_names=[MIX_NAME], name=HEAD_NAME)
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.output_dense = keras.layers.Dense(num_classes, activation=activation, name="logits")

        # === Functional model ===
        # An imported ELMoForManyLangs backbone reads one more id a token, its word id (`CharCNN`).
        char_ids = keras.Input(shape=(None, backbone.options.char_cnn.token_id_width), dtype="int32",
                               name="char_ids")
        features = self.head(backbone(char_ids))[self.head_output]
        outputs = self.output_dense(self.output_dropout(features))
        super().__init__(inputs=char_ids, outputs=outputs, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.activation = keras.activations.get(activation)
        self.dropout = dropout
        self.trainable_backbone = trainable_backbone
        self.scalar_mix_weights = None if scalar_mix_weights is None else [float(w) for w in scalar_mix_weights]
        self.trainable_mix = trainable_mix

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_classes": self.num_classes,
            "activation": keras.activations.serialize(self.activation),
            "dropout": self.dropout,
            "trainable_backbone": self.trainable_backbone,
            "scalar_mix_weights": self.scalar_mix_weights,
            "trainable_mix": self.trainable_mix,
        })
        return config

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Build on `ElmoBackbone.from_preset(preset)` with a whitespace `ElmoTokenizer` (of the model's
        dictionaries for an imported ELMoForManyLangs model), or load a keras-hub preset.

        Args:
            preset: `"default"`, a released name, a folder of `options.json`
                and weights `.hdf5`, a zip of one, or a keras-hub preset
                (folder or handle: keras-hub's loader, which restores the
                task's own weights when the preset holds them and
                `num_classes` is not given).
            load_weights: bool. False: random weights.
            **kwargs: constructor arguments (`num_classes`, ...).
        """
        if "num_classes" in kwargs:  # before any loading
            check_positive_int(kwargs["num_classes"], f"{cls.__name__}: num_classes")
        if is_keras_hub_preset(preset):
            check_keras_hub_preset(preset, load_weights)
            return super().from_preset(os.fspath(preset), load_weights=load_weights, **kwargs)
        backbone = ElmoBackbone.from_preset(preset, load_weights=load_weights)
        if "preprocessor" not in kwargs:
            kwargs["preprocessor"] = cls.preprocessor_cls(tokenizer_of_preset(preset, backbone.options))
        return cls(backbone=backbone, **kwargs)

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        if optimizer == "auto":
            rate = FINE_TUNING_LEARNING_RATE if self.backbone.trainable else FROZEN_LEARNING_RATE
            optimizer = keras.optimizers.Adam(rate)
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def check_labels(self, y):
        """Refuse labels outside [lowest_label, num_classes) before any work (arrays and lists; a dataset
        is read later)."""
        if y is None or not isinstance(y, (list, tuple, np.ndarray)):
            return
        try:
            labels = np.asarray(y)
        except ValueError:
            return  # rows of different lengths: the preprocessor reads them as given
        expected = f"integers in [0, {self.num_classes}) (num_classes={self.num_classes})"
        if self.lowest_label < 0:
            expected += f", or {self.lowest_label} for a token without one"
        whole = labels.dtype.kind in "iu" or (labels.dtype.kind == "f" and np.all(labels == np.round(labels)))
        if not whole:
            raise ValueError(f"{type(self).__name__}: labels must be {expected}; found dtype {labels.dtype}")
        bad = np.argwhere((labels < self.lowest_label) | (labels >= self.num_classes))
        if bad.size:
            where = tuple(int(i) for i in bad[0])
            where = f"index {where[0]}" if len(where) == 1 else f"{where}"
            raise ValueError(f"{type(self).__name__}: labels must be {expected}; found {labels[tuple(bad[0])]} "
                             f"at {where}")

    def fit(self, x=None, y=None, **kwargs):
        self.check_labels(y)
        return super().fit(x, y, **kwargs)

    def evaluate(self, x=None, y=None, **kwargs):
        self.check_labels(y)
        return super().evaluate(x, y, **kwargs)
