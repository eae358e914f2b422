"""`ElmoTask`: what the package's keras-hub tasks share (loading, "auto" optimizer, label checks)."""

import os

import keras
import numpy as np

from elmo_keras.arguments import check_positive_int
from elmo_keras.models.elmo_backbone import ElmoBackbone, check_keras_hub_preset, is_keras_hub_preset
from elmo_keras.models.keras_hub_base import require_keras_hub
from elmo_keras.preprocessing.elmo_tokenizer import ElmoTokenizer

# "auto" compile: Adam at this rate when the biLM is frozen (only the mix and the task's layers train, as
# in AllenNLP's ELMo tasks); keras-hub's 5e-5, meant for fine-tuning a whole backbone, when it trains too.
FROZEN_LEARNING_RATE = 1e-3
FINE_TUNING_LEARNING_RATE = 5e-5


class ElmoTask:
    """Mixed into the package's keras-hub tasks, before the keras-hub base class.

    The task class names its preprocessor (`preprocessor_cls`, built on an
    `ElmoTokenizer`) and the smallest label it accepts (`lowest_label`: 0,
    or -1 where -1 means "no label").
    """

    lowest_label = 0

    def __new__(cls, *args, **kwargs):
        # Before any attribute is set (on PyTorch a Module refuses attributes before its __init__).
        require_keras_hub(cls.__name__)
        return super().__new__(cls, *args, **kwargs)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Build on `ElmoBackbone.from_preset(preset)` with a whitespace `ElmoTokenizer`, or load a keras-hub preset.

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
        tokenizer = ElmoTokenizer(max_characters_per_token=backbone.char_cnn.max_characters_per_token)
        kwargs.setdefault("preprocessor", cls.preprocessor_cls(tokenizer))
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
