"""`ElmoTextEmbedder`: TF Hub ELMo's `elmo` and `default` outputs as a Keras task model."""

import sys
import warnings

import keras
import numpy as np

from elmo_keras.io.options import CODE_POINTS
from elmo_keras.layers.elmo_head import ElmoHead
from elmo_keras.models.elmo_backbone import ElmoBackbone, token_mask
from elmo_keras.models.presets import is_keras_hub_preset
from elmo_keras.preprocessing.elmo_tokenizer import ElmoTokenizer, tokenizer_of_preset
from elmo_keras.registration import check_saved_config


def _is_text(x):
    """True for a non-empty list, numpy array or tf.Tensor of strings."""
    if isinstance(x, (list, tuple)):
        return len(x) > 0 and isinstance(x[0], (str, bytes))
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "US" or (x.dtype.kind == "O" and x.size > 0
                                        and isinstance(x.flat[0], (str, bytes)))
    return getattr(getattr(x, "dtype", None), "name", None) == "string"


# The layer names of the head and of its one mix (the SavedModel's variables are named after them).
HEAD_NAME = "elmo_head"
MIX_NAME = "elmo_mix"


@keras.saving.register_keras_serializable(package="elmo_keras")
class ElmoTextEmbedder(keras.Model):
    """Contextual word vectors and a sentence vector, as TF Hub's ELMo gives them.

    A functional model on character ids: the `ElmoBackbone`, then an
    `ElmoHead` (layer `elmo_head`) with one trainable `ScalarMix` of all the
    backbone's layers (`scalar_mix`). It returns
    the two outputs of TF Hub ELMo's signatures (and of
    `elmo_keras.export_savedmodel`):
      - `elmo` (batch, tokens, 2 * projection_dim): the mix, sentence
        boundaries removed, 0 at padded positions;
      - `default` (batch, 2 * projection_dim): the mean of `elmo` over the
        real tokens, 0 for an empty sentence.

    Text goes in through `tokenizer` (an `ElmoTokenizer`), which is
    TensorFlow preprocessing, as in keras-hub: the model itself takes only
    char ids, so it runs on every backend. `fit`, `evaluate` and `predict`
    accept strings directly and apply the tokenizer first: a list or array
    of sentences is encoded at once (padded to its longest sentence); a
    `tf.data.Dataset` of string batches gets `tokenizer` mapped over it, so
    that each batch is padded only to its own longest sentence. Calling the
    model, or building a larger model around it, takes char ids: map
    `model.tokenizer` over the dataset (`ds.map(lambda s, y:
    (model.tokenizer(s), y))`), which works on JAX and PyTorch as well.
    Without TensorFlow installed, the model takes char ids alone.

    Args:
        backbone: `ElmoBackbone`, stateless. It is shared, not copied.
        tokenizer: `ElmoTokenizer` or None (whitespace splitting, as
            `str.split()`, into bilm-tf's byte ids). An imported
            ELMoForManyLangs backbone reads the ids of its model's
            `char.dic` and `word.dic`, which it does not hold: None then
            takes char ids only, and text raises until a tokenizer of those
            dictionaries is given (`from_preset` of the folder gives it).
        trainable_backbone: bool. Fine-tune the biLM too. By default it is
            frozen: only the mix weights and scale train, and no gradient is
            computed through the LSTMs.
        scalar_mix_weights: list of `n_layers + 1` floats or None. Start
            values of the mix weights before the softmax (default 0: equal
            weights; the scale starts at 1).
        hub_outputs: bool. Return all the outputs of TF Hub ELMo's
            signatures: also `word_emb` (batch, tokens, projection_dim), the
            char-CNN vector; `lstm_outputs1` ... `lstm_outputs<n_layers>`
            (batch, tokens, 2 * projection_dim); and `sequence_len` int32
            (batch,). The SavedModel export serves this model.
        **kwargs: standard model arguments (`name`, `trainable`).

    Call arguments:
        char_ids: int32 (batch, time, 50), sentence boundaries included, as
            `tokenizer` or `elmo_keras.batch_to_ids` gives them.

    Masking: `elmo` (and every output with a tokens axis) carries the
    real-token mask (batch, tokens) as its Keras mask, so mask-aware layers
    after it skip the padding; `default` has no time axis and carries none.

    Example:

    >>> embedder = ElmoTextEmbedder.from_preset("default")
    >>> out = embedder.predict(["The bank raised rates .", "A river bank"], verbose=0)
    >>> out["elmo"].shape, out["default"].shape
    ((2, 5, 256), (2, 256))

    Reference: Peters et al., 2018, "Deep contextualized word representations";
    TF Hub `google/elmo/3`.
    """

    def __init__(self, backbone, tokenizer=None, trainable_backbone=False, scalar_mix_weights=None,
                 hub_outputs=False, **kwargs):
        if backbone.stateful:
            raise ValueError("ElmoTextEmbedder needs a stateless backbone: a sentence's vectors must not "
                             "depend on earlier batches. Build it with stateful=False (the default).")
        max_chars = backbone.char_cnn.max_characters_per_token

        # === Layers ===
        if tokenizer is None and backbone.options.char_cnn.characters != CODE_POINTS:
            tokenizer = ElmoTokenizer(max_characters_per_token=max_chars)
        n_layers = backbone.bilstm.n_layers
        head = ElmoHead(n_layers + 1, stop_gradient=not trainable_backbone, scalar_mix_weights=scalar_mix_weights,
                        mix_names=[MIX_NAME], hub_outputs=hub_outputs, name=HEAD_NAME)

        # === Functional model ===
        # An ELMoForManyLangs backbone reads one more id a token, its word id (`CharCNN`).
        width = backbone.options.char_cnn.token_id_width
        char_ids = keras.Input(shape=(None, width), dtype="int32", name="char_ids")
        head_out = head(backbone(char_ids))
        names = ["elmo", "default"]
        if hub_outputs:
            names = ["word_emb", *(f"lstm_outputs{k}" for k in range(1, n_layers + 1)), *names, "sequence_len"]
        super().__init__(inputs=char_ids, outputs={name: head_out[name] for name in names}, **kwargs)

        # === Config ===
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.trainable_backbone = trainable_backbone
        self.scalar_mix_weights = list(scalar_mix_weights) if scalar_mix_weights is not None else None
        self.hub_outputs = hub_outputs
        self._output_keys = tuple(names)
        backbone.trainable = trainable_backbone

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """Build on `ElmoBackbone.from_preset(preset)`; `kwargs` go to the constructor.

        Args:
            preset: str. `"default"` (the bundled model), `"small"`,
                `"medium"`, `"original"`, `"original_5.5b"`, or a directory
                holding `options.json` and one weights `.hdf5` (see
                `elmo_keras.models.presets.preset_files`).
            **kwargs: `tokenizer` (by default whitespace splitting, through
                the model's dictionaries for an imported ELMoForManyLangs
                folder), `trainable_backbone`, `scalar_mix_weights`,
                `hub_outputs`, `name`.
        """
        backbone = ElmoBackbone.from_preset(preset)
        if "tokenizer" not in kwargs and not is_keras_hub_preset(preset):
            kwargs["tokenizer"] = tokenizer_of_preset(preset, backbone.options)
        return cls(backbone, **kwargs)

    @property
    def scalar_mix(self):
        """The trainable `ScalarMix` (layer `elmo_mix` of layer `elmo_head`)."""
        return self.get_layer(HEAD_NAME).scalar_mixes[0]

    def get_layer(self, name=None, index=None):
        if name == MIX_NAME:
            warnings.warn(f"get_layer({MIX_NAME!r}) is deprecated: the mix is inside layer {HEAD_NAME!r} "
                          f"(an ElmoHead); use the scalar_mix property", DeprecationWarning, stacklevel=2)
            return self.scalar_mix
        return super().get_layer(name=name, index=index)

    def compute_mask(self, inputs, mask=None):
        char_ids = inputs["char_ids"] if isinstance(inputs, dict) else inputs
        masks = self.get_layer(HEAD_NAME).compute_mask({"mask": token_mask(char_ids)})
        return {name: masks[name] for name in self._output_keys}

    def _char_ids(self, x):
        """Tokenised `x` when it is text; anything else as it is.

        Preprocessing is TensorFlow on every backend; char ids need none of
        it, so that they run on JAX and PyTorch without TensorFlow installed
        (a `tf.data.Dataset` exists only once TensorFlow is imported).
        """
        tf = sys.modules.get("tensorflow")
        if tf is not None and isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            features = spec[0] if isinstance(spec, tuple) else spec
            if getattr(features, "dtype", None) != tf.string:
                return x
            tokenizer = self._text_tokenizer()
            if isinstance(spec, tuple):
                return x.map(lambda text, *rest: (tokenizer(text), *rest))
            return x.map(tokenizer)
        if _is_text(x):
            return np.asarray(self._text_tokenizer()(x))
        return x

    def _text_tokenizer(self):
        if self.tokenizer is None:
            raise ValueError(
                "ElmoTextEmbedder: this backbone reads the ids of an imported model's char.dic and word.dic, "
                "and no tokenizer of them was given, so it takes char ids, not text. Pass "
                "tokenizer=ElmoTokenizer(char_dictionary='<model>/char.dic', word_dictionary='<model>/word.dic'), "
                "or load it with ElmoTextEmbedder.from_preset('<model folder>').")
        return self.tokenizer

    def fit(self, x=None, y=None, validation_data=None, **kwargs):
        """`keras.Model.fit`, taking sentences (strings) as well as char ids."""
        if isinstance(validation_data, tuple):  # (x, y) or (x, y, sample_weight)
            validation_data = (self._char_ids(validation_data[0]),) + tuple(validation_data[1:])
        elif validation_data is not None:
            validation_data = self._char_ids(validation_data)
        return super().fit(self._char_ids(x), y, validation_data=validation_data, **kwargs)

    def evaluate(self, x=None, y=None, **kwargs):
        """`keras.Model.evaluate`, taking sentences (strings) as well as char ids."""
        return super().evaluate(self._char_ids(x), y, **kwargs)

    def predict(self, x, **kwargs):
        """`keras.Model.predict`, taking sentences (strings) as well as char ids.

        With a `tf.data.Dataset` of string batches, batches of different
        lengths give `elmo` outputs that Keras cannot stack (a ragged result
        on TensorFlow, an error on JAX); pass a list of sentences instead.
        """
        return super().predict(self._char_ids(x), **kwargs)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "tokenizer": keras.saving.serialize_keras_object(self.tokenizer),
            "trainable_backbone": self.trainable_backbone,
            "scalar_mix_weights": None if self.scalar_mix_weights is None else list(self.scalar_mix_weights),
            "hub_outputs": self.hub_outputs,
        }

    @classmethod
    def from_config(cls, config):
        check_saved_config(cls, config)
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        config["tokenizer"] = keras.saving.deserialize_keras_object(config["tokenizer"])
        return cls(**config)
