"""The `Elmo` layer: a frozen biLM and task-specific mixes for downstream models."""

import warnings

import keras

from elmo_keras.io.options import ElmoOptions
from elmo_keras.layers.elmo_head import ElmoHead
from elmo_keras.layers.elmo_head import masked_mean  # noqa: F401  (importable from here, as before)
from elmo_keras.layers.elmo_head import remove_sentence_boundaries  # noqa: F401
from elmo_keras.models.elmo_backbone import ElmoBackbone, check_char_ids_dtype
from elmo_keras.models.presets import preset_files
from elmo_keras.models.weight_layout import load_weights


@keras.saving.register_keras_serializable(package="elmo_keras")
class Elmo(keras.layers.Layer):
    """ELMo representations for a downstream Keras model.

    Runs the biLM (frozen unless `trainable_backbone`) and returns
    `num_output_representations` `ScalarMix`es of its layers, with dropout.

    Args:
        options: dict. The original options (`options.json` contents).
        weight_file: str or None. Original weights `.hdf5` to load. It is not
            part of `get_config`: a saved `.keras` model carries its weights.
        num_output_representations: int. Independent mixes (e.g. one for the
            input and one for the output of a task model).
        dropout: float. Dropout on each representation while training.
        keep_sentence_boundaries: bool. Keep the `<S>`/`</S>` positions.
        trainable_backbone: bool. Fine-tune the biLM too (default frozen),
            as `ElmoTextEmbedder`'s. `trainable_bilm`, its former name, is
            deprecated.
        do_layer_norm: bool. Masked layer normalisation inside the mixes.
        scalar_mix_parameters: list of floats or None. Fixed, non-trainable
            mix weights (before the softmax) for every representation.
        l2_coef: float. L2 on the mix weights.
        **kwargs: standard layer arguments.

    Call arguments:
        char_ids: int32 (batch, time, 50) with sentence boundaries, as from
            `elmo_keras.batch_to_ids`.

    Returns a dict: `elmo_representations`, a list of (batch, time', 2 *
    projection_dim) tensors, and `mask` bool (batch, time'), where time' is
    time - 2 unless boundaries are kept.

    Example:

    >>> import keras
    >>> elmo = Elmo.from_files("tests/data/bilm-tf/options.json", "tests/data/bilm-tf/lm_weights.hdf5")
    >>> char_ids = keras.Input((None, 50), dtype="int32")
    >>> out = elmo(char_ids)
    >>> tuple(out["elmo_representations"][0].shape)
    (None, None, 32)

    Reference: Peters et al., 2018, "Deep contextualized word representations".
    """

    def __init__(self, options, weight_file=None, num_output_representations=1, dropout=0.5,
                 keep_sentence_boundaries=False, trainable_backbone=False, do_layer_norm=False,
                 scalar_mix_parameters=None, l2_coef=0.0, trainable_bilm=None, **kwargs):
        if trainable_bilm is not None:
            warnings.warn("Elmo(trainable_bilm=...) is deprecated: pass trainable_backbone, the name "
                          "ElmoTextEmbedder uses too", DeprecationWarning, stacklevel=2)
            trainable_backbone = trainable_bilm
        super().__init__(**kwargs)
        self.options = ElmoOptions.from_dict(options)
        num_layers = self.options.num_layers
        if scalar_mix_parameters is not None and len(scalar_mix_parameters) != num_layers:
            raise ValueError(f"scalar_mix_parameters: expected {num_layers} numbers (n_layers + 1), found "
                             f"{len(scalar_mix_parameters)}")
        # The head checks the other arguments, before any weights are read.
        # Fixed parameters are mix weights that do not train.
        self.head = ElmoHead(
            num_layers, num_output_representations=num_output_representations, dropout=dropout,
            keep_sentence_boundaries=keep_sentence_boundaries, stop_gradient=not trainable_backbone,
            do_layer_norm=do_layer_norm, scalar_mix_weights=scalar_mix_parameters,
            trainable_mix=scalar_mix_parameters is None, l2_coef=l2_coef, name="elmo_head")
        self.bilm = ElmoBackbone.from_options(self.options, name="bilm")
        if weight_file is not None:
            load_weights(self.bilm, weight_file)
        self.bilm.trainable = trainable_backbone
        # The other arguments are the head's (get_config reads them there).
        self.trainable_backbone = trainable_backbone

    @property
    def scalar_mixes(self):
        """The `ScalarMix` layers, one per output representation."""
        return self.head.scalar_mixes

    @classmethod
    def from_files(cls, options_file, weight_file, **kwargs):
        """Build from the original `options.json` and weights `.hdf5`."""
        return cls(ElmoOptions.from_json(options_file), weight_file=weight_file, **kwargs)

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """Build on a pretrained biLM: `"default"` (the bundled model), a released name or a directory.

        See `elmo_keras.ElmoBackbone.from_preset` for the presets; `kwargs`
        go to the constructor.

        >>> elmo = Elmo.from_preset("default", num_output_representations=2)
        >>> len(elmo.scalar_mixes)
        2
        """
        return cls.from_files(*preset_files(preset), **kwargs)

    def build(self, input_shape):
        self.head.build({"activations": (None, self.head.num_layers, None, self.options.output_dim),
                         "mask": (None, None)})

    def __call__(self, char_ids, *args, **kwargs):
        check_char_ids_dtype(char_ids, type(self).__name__)  # before Keras' report of the call wraps it
        return super().__call__(char_ids, *args, **kwargs)

    def call(self, char_ids, training=None):
        bilm_out = self.bilm(char_ids, training=training and self.trainable_backbone)
        out = self.head(bilm_out, training=training)
        return {"elmo_representations": out["elmo_representations"], "mask": out["mask"]}

    def compute_output_spec(self, char_ids, training=None):
        # Given, not traced: tracing would run the whole biLM on symbolic
        # shapes (slow, and on JAX with unknown dimensions fragile).
        batch, time = char_ids.shape[0], char_ids.shape[1]
        if time is not None and not self.head.keep_sentence_boundaries:
            time -= 2
        representations = [keras.KerasTensor((batch, time, self.options.output_dim), dtype=self.compute_dtype)
                            for _ in range(self.head.num_output_representations)]
        return {"elmo_representations": representations, "mask": keras.KerasTensor((batch, time), dtype="bool")}

    def get_config(self):
        config = super().get_config()
        config.update({
            "options": self.options.to_dict(),
            "num_output_representations": self.head.num_output_representations,
            "dropout": self.head.dropout,
            "keep_sentence_boundaries": self.head.keep_sentence_boundaries,
            "trainable_backbone": self.trainable_backbone,
            "do_layer_norm": self.head.do_layer_norm,
            "scalar_mix_parameters": self.head.scalar_mix_weights,
            "l2_coef": self.head.l2_coef,
        })
        return config
