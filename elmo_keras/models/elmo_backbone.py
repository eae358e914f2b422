"""`ElmoBackbone`: the biLM as a Keras model, character ids in, every layer out."""

import os
import warnings

import keras
from keras import ops

from elmo_keras.arguments import check_positive_int
from elmo_keras.io.atomic import atomic_directory
from elmo_keras.io.options import CODE_POINTS, ElmoOptions
from elmo_keras.layers.bilstm import BiLSTM
from elmo_keras.layers.char_cnn import CharCNN
from elmo_keras.layers.initializers import weights_to_be_loaded
from elmo_keras.models.keras_hub_base import Backbone, require_keras_hub
from elmo_keras.models.presets import check_keras_hub_preset, is_keras_hub_preset, preset_files
from elmo_keras.models.weight_layout import load_weights
from elmo_keras.registration import check_saved_config

# The original ELMo's architecture (Peters et al., 2018; bilm-tf's options of the released "original"
# model): `ElmoBackbone()`'s defaults.
ORIGINAL_FILTERS = ((1, 32), (2, 32), (3, 64), (4, 128), (5, 256), (6, 512), (7, 1024))


def backbone_arguments(options):
    """The one converter: `ElmoBackbone`'s constructor arguments from options of the original schema.

    Each argument is the options field of the same name (`lstm_dim` is
    `lstm.dim`, `n_lstm_layers` is `lstm.n_layers`, `char_embedding_dim` is
    `char_cnn.embedding.dim`, the others keep their names).

    >>> opts = {"lstm": {"dim": 8, "projection_dim": 4, "n_layers": 2},
    ...         "char_cnn": {"embedding": {"dim": 4}, "filters": [[1, 4], [2, 4]], "n_highway": 1}}
    >>> backbone_arguments(opts)["filters"], backbone_arguments(opts)["lstm_dim"]
    ([[1, 4], [2, 4]], 8)
    """
    options = ElmoOptions.from_dict(options)
    lstm, cnn = options.lstm, options.char_cnn
    arguments = {"lstm_dim": lstm.dim, "projection_dim": lstm.projection_dim, "n_lstm_layers": lstm.n_layers,
                 "filters": [list(f) for f in cnn.filters], "char_embedding_dim": cnn.embedding_dim,
                 "n_highway": cnn.n_highway, "activation": cnn.activation, "cell_clip": lstm.cell_clip,
                 "proj_clip": lstm.proj_clip, "use_skip_connections": lstm.use_skip_connections,
                 "max_characters_per_token": cnn.max_characters_per_token}
    if cnn.characters == CODE_POINTS:  # the second token embedder (ELMoForManyLangs); bilm-tf's stay as they were
        arguments.update({"characters": cnn.characters, "n_characters": cnn.n_characters,
                          "word_dim": cnn.word_dim, "n_words": cnn.n_words})
    return arguments


def _options_of(arguments):
    """`ElmoOptions` of the backbone's constructor arguments, checked by the options' one validator."""
    a = arguments
    return ElmoOptions.from_dict({
        "lstm": {"dim": a["lstm_dim"], "projection_dim": a["projection_dim"], "n_layers": a["n_lstm_layers"],
                 "cell_clip": a["cell_clip"], "proj_clip": a["proj_clip"],
                 "use_skip_connections": a["use_skip_connections"]},
        "char_cnn": {"embedding": {"dim": a["char_embedding_dim"]}, "filters": [list(f) for f in a["filters"]],
                     "n_highway": a["n_highway"], "activation": a["activation"],
                     "max_characters_per_token": a["max_characters_per_token"],
                     **{k: a[k] for k in ("characters", "n_characters", "word_dim", "n_words") if k in a}},
    }, source="ElmoBackbone arguments")


def char_cnn_from_options(options, name="char_cnn"):
    """Return the `CharCNN` that options (an `ElmoOptions` or a dict) describe."""
    options = ElmoOptions.from_dict(options)
    cnn = options.char_cnn
    # The second token embedder (code points through a character dictionary, and a word embedding:
    # ELMoForManyLangs) is the same layer with a word slot: one input and one mask for both.
    extra = ({"n_characters": cnn.n_characters, "word_dim": cnn.word_dim, "n_words": cnn.n_words}
             if cnn.characters == CODE_POINTS else {})
    return CharCNN(filters=[list(f) for f in cnn.filters], embedding_dim=cnn.embedding_dim,
                   n_highway=cnn.n_highway, projection_dim=options.lstm.projection_dim,
                   activation=cnn.activation, max_characters_per_token=cnn.max_characters_per_token, name=name,
                   **extra)


def bilstm_from_options(options, stateful=False, max_batch_size=64, dropout=0.0, name="bilstm"):
    """Return the `BiLSTM` that options (an `ElmoOptions` or a dict) describe."""
    lstm = ElmoOptions.from_dict(options).lstm
    return BiLSTM(units=lstm.dim, projection_dim=lstm.projection_dim, n_layers=lstm.n_layers,
                  cell_clip=lstm.cell_clip, proj_clip=lstm.proj_clip,
                  use_skip_connections=lstm.use_skip_connections, dropout=dropout,
                  stateful=stateful, max_batch_size=max_batch_size, name=name)


def check_char_ids_dtype(char_ids, where):
    """Refuse char ids that are not integers (a float or bool tensor of any backend), in one line."""
    dtype = getattr(char_ids, "dtype", None)
    if dtype is None:
        return
    dtype = keras.backend.standardize_dtype(dtype)
    if "int" not in dtype:
        raise TypeError(f"{where}: char_ids must be an integer tensor (int32 or int64, as "
                        f"elmo_keras.batch_to_ids gives), found {dtype}")


def token_mask(char_ids):
    """True for token positions that hold any character (not batch padding)."""
    return ops.any(char_ids > 0, axis=-1)


def contextualize(bilstm, embedding, mask, segment_ids=None):
    """The biLM's layers on token vectors; return (masked embedding, activations).

    Zeroes the padded positions of `embedding` (batch, time, projection_dim),
    runs `bilstm` on it and puts layer 0, the vector repeated for both
    directions, before the LSTM layers: `activations` (batch, n_layers + 1,
    time, 2 * projection_dim). With `segment_ids` (packed rows, see `BiLSTM`)
    the LSTMs restart at each sentence of a row.
    """
    embedding = embedding * ops.cast(mask, embedding.dtype)[..., None]
    if segment_ids is None:
        lstm_outputs = bilstm(embedding, mask=mask)
    else:
        lstm_outputs = bilstm(embedding, mask=mask, segment_ids=segment_ids)
    layer_0 = ops.concatenate([embedding, embedding], axis=-1)[:, None]
    return embedding, ops.concatenate([layer_0, lstm_outputs], axis=1)


class _DirectionBlock(keras.Model):
    """`ElmoBackbone.direction_block`: `BiLSTM.run_directions` from an explicit state, as a model."""

    def __init__(self, bilstm, **kwargs):
        super().__init__(name="direction_block", **kwargs)
        self.bilstm = bilstm

    def call(self, inputs):
        outputs, (h, c) = self.bilstm.run_directions(inputs["forward"], inputs["backward"], inputs["mask"],
                                                     initial_state=(inputs["h"], inputs["c"]))
        return {"outputs": ops.stack(outputs), "h": h, "c": c}


@keras.saving.register_keras_serializable(package="elmo_keras")
class ElmoBackbone(Backbone):
    """The ELMo biLM: character ids in, the char-CNN and every LSTM layer out.

    A functional model: a `CharCNN` (layer `char_cnn`) turns each token's
    characters into a vector and a `BiLSTM` (layer `bilstm`) reads the
    sentence forward and backward. `elmo_keras.models.weight_layout` maps the
    original weight files onto it by those layer names. With keras-hub
    installed it is a `keras_hub.models.Backbone` (see `save_to_preset`).

    The defaults are the original ELMo's architecture (2 x 4096 cells, 512
    projection, 2 highway layers, 93.6 million parameters), with random
    weights; `from_preset` and `from_files` load trained ones, and
    `from_options` converts the original `options.json` schema (each
    argument is the options field of the same name: `backbone_arguments`).

    Args:
        lstm_dim: int. LSTM cells per direction and layer (`lstm.dim`).
        projection_dim: int. The LSTMs' projection, and the char-CNN's output.
        n_lstm_layers: int. LSTM layers per direction (`lstm.n_layers`).
        filters: list of `[width, count]`. The char-CNN's convolutions.
        char_embedding_dim: int. Character embedding (`char_cnn.embedding.dim`).
        n_highway: int. Highway layers after the convolutions.
        activation: str. `"relu"` or `"tanh"`, after the convolutions.
        cell_clip, proj_clip: float or None. LSTM cell and projection clipping.
        use_skip_connections: bool. Residual connection into LSTM layers 2+.
        max_characters_per_token: int. Width of the char-id input.
        stateful: bool. Carry LSTM states per batch row from call to call, as
            bilm-tf does at prediction time (`reset_states()` forgets them).
        max_batch_size: int. Rows of state kept when stateful.
        dtype: the dtype policy of the layers (keras-hub's argument).
        characters: None (bilm-tf's UTF-8 bytes) or `"code_points"`: the
            second token embedder, ELMoForManyLangs' (`char_cnn.characters`).
        n_characters, word_dim, n_words: int. With `"code_points"`: the
            character dictionary's size, the word embedding's size and the
            word dictionary's size; the char ids then have one more slot, the
            word id (see `CharCNN`).
        **kwargs: standard model arguments (`name`, `trainable`).

    `ElmoBackbone(options)` (an `ElmoOptions` or dict of the original schema,
    the constructor of elmo_keras 0.x) still works with a DeprecationWarning:
    use `ElmoBackbone.from_options(options)`.

    Call arguments:
        char_ids: int32 (batch, time, max_characters_per_token), sentence
            boundaries included, as `elmo_keras.batch_to_ids` gives them;
            all-zero tokens are batch padding.

    Returns a dict:
      - `token_embedding` (batch, time, projection_dim): the char-CNN output;
      - `activations` (batch, n_layers + 1, time, 2 * projection_dim): layer
        0 the char-CNN vector repeated for both directions, then each LSTM
        layer (forward ; backward);
      - `mask` bool (batch, time): True for real tokens.
    Padded positions are 0 in every output.

    Masking: `token_embedding` carries `mask` as its Keras mask, so that a
    mask-aware layer after it (pooling, an RNN, attention) skips the padding
    by itself. `activations` carries none: Keras masks run along axis 1,
    which is its layer axis; pass `mask=out["mask"]` explicitly (as
    `ScalarMix` takes it). An input mask is ignored: padding is read from
    the char ids.

    Example:

    >>> import numpy as np
    >>> backbone = ElmoBackbone.from_preset("default")
    >>> out = backbone(np.ones((2, 5, 50), "int32"))
    >>> tuple(out["activations"].shape), tuple(out["token_embedding"].shape)
    ((2, 3, 5, 256), (2, 5, 128))
    >>> tiny = ElmoBackbone(lstm_dim=8, projection_dim=4, n_lstm_layers=2, filters=[[1, 4], [2, 4]],
    ...                     char_embedding_dim=4, n_highway=1)  # random weights
    >>> tuple(tiny(np.ones((2, 5, 50), "int32"))["activations"].shape)
    (2, 3, 5, 8)

    Reference: Peters et al., 2018, "Deep contextualized word representations".
    """

    def __init__(self, lstm_dim=4096, projection_dim=512, n_lstm_layers=2, filters=ORIGINAL_FILTERS,
                 char_embedding_dim=16, n_highway=2, activation="relu", cell_clip=3.0, proj_clip=3.0,
                 use_skip_connections=True, max_characters_per_token=50, stateful=False, max_batch_size=64,
                 dtype=None, characters=None, n_characters=None, word_dim=0, n_words=0, **kwargs):
        if isinstance(lstm_dim, (dict, ElmoOptions)) or "options" in kwargs:
            options = kwargs.pop("options") if "options" in kwargs else lstm_dim
            warnings.warn("ElmoBackbone(options) is deprecated: use ElmoBackbone.from_options(options), or "
                          "the flat arguments (elmo_keras.models.elmo_backbone.backbone_arguments)",
                          DeprecationWarning, stacklevel=2)
            self.__init__(**backbone_arguments(options), stateful=stateful, max_batch_size=max_batch_size,
                          dtype=dtype, **kwargs)
            return
        arguments = {"lstm_dim": lstm_dim, "projection_dim": projection_dim, "n_lstm_layers": n_lstm_layers,
                     "filters": [list(f) for f in filters], "char_embedding_dim": char_embedding_dim,
                     "n_highway": n_highway, "activation": activation, "cell_clip": cell_clip,
                     "proj_clip": proj_clip, "use_skip_connections": use_skip_connections,
                     "max_characters_per_token": max_characters_per_token}
        if characters is not None:
            arguments.update({"characters": characters, "n_characters": n_characters, "word_dim": word_dim,
                              "n_words": n_words})
        options = _options_of(arguments)
        check_positive_int(max_batch_size, "max_batch_size")
        width = options.char_cnn.token_id_width

        # === Layers ===
        char_cnn = char_cnn_from_options(options)
        bilstm = bilstm_from_options(options, stateful=stateful, max_batch_size=max_batch_size)

        # === Functional model ===
        char_ids = keras.Input(shape=(None, width), dtype="int32", name="char_ids")
        mask = token_mask(char_ids)
        embedding, activations = contextualize(bilstm, char_cnn(char_ids), mask)
        outputs = {"token_embedding": embedding, "activations": activations, "mask": mask}
        super().__init__(inputs=char_ids, outputs=outputs, dtype=dtype, **kwargs)

        # === Config ===
        self.options = options
        self.stateful = stateful
        self.max_batch_size = max_batch_size

    def __call__(self, *args, **kwargs):
        # Before Keras' own call, which would cast floats to int32 silently, and wrap an error in its report.
        inputs = args[0] if args else kwargs.get("inputs", kwargs.get("char_ids"))
        check_char_ids_dtype(inputs["char_ids"] if isinstance(inputs, dict) else inputs, type(self).__name__)
        return super().__call__(*args, **kwargs)

    @property
    def elmo_options(self):
        """The options as a new dict of the original schema (`options.to_dict()`)."""
        return self.options.to_dict()

    @property
    def char_cnn(self):
        """The `CharCNN` layer."""
        return self.get_layer("char_cnn")

    @property
    def bilstm(self):
        """The `BiLSTM` layer."""
        return self.get_layer("bilstm")

    def token_encoder(self):
        """A model sharing the `CharCNN`: char ids (batch, tokens, chars) -> (batch, tokens, projection_dim).

        With `contextualizer` it is the backbone in two parts, so that the
        char-CNN can run once per distinct token (see `ElmoEmbedder`). Its
        character axis takes any width: trailing padding slots may be cut.
        """
        char_ids = keras.Input(shape=(None, None), dtype="int32", name="char_ids")
        return keras.Model(char_ids, self.char_cnn(char_ids), name="token_encoder")

    def contextualizer(self, packed=True):
        """A model sharing the `BiLSTM`: token vectors -> `activations` and `mask`, as the backbone's.

        Inputs `token_embedding` (batch, time, projection_dim) and
        `segment_ids` int32 (batch, time): 0 for padding, and each sentence a
        run of equal positive ids, so that one row may hold several sentences
        packed one after another, each contextualised on its own. With one
        sentence per row, `segment_ids` is the mask as 0/1. With
        `packed=False` every row must hold one sentence, and the LSTM loop
        skips the per-step restarts.
        """
        embedding = keras.Input(shape=(None, self.bilstm.projection_dim), name="token_embedding")
        segment_ids = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
        mask = segment_ids > 0
        _, activations = contextualize(self.bilstm, embedding, mask, segment_ids if packed else None)
        return keras.Model({"token_embedding": embedding, "segment_ids": segment_ids},
                           {"activations": activations, "mask": mask}, name="contextualizer")

    def direction_block(self):
        """A model sharing the `BiLSTM`: one block of steps of each direction, from a given state to the next.

        Inputs `forward` and `backward` (batch, steps, projection_dim), each
        direction's token vectors in its own reading order; `mask` bool
        (2, batch, steps), per direction; `h` (n_layers, 2, batch,
        projection_dim) and `c` (n_layers, 2, batch, units), the state before
        the block. Outputs `outputs` (n_layers, 2, batch, steps,
        projection_dim) in reading order, and the state after the block,
        `h` and `c`. A long sequence runs as consecutive blocks, each given
        the state the one before left (`elmo_keras.long_line`); a carried
        state of a stateful backbone is neither read nor changed.
        """
        return _DirectionBlock(self.bilstm)

    def reset_states(self):
        """Forget the carried LSTM states (stateful mode)."""
        self.bilstm.reset_states()

    def compute_mask(self, inputs, mask=None):
        char_ids = inputs["char_ids"] if isinstance(inputs, dict) else inputs
        return {"activations": None, "mask": None, "token_embedding": token_mask(char_ids)}

    @classmethod
    def from_options(cls, options, **kwargs):
        """Build from options of the original schema (an `ElmoOptions`, a dict), with random weights.

        `kwargs` go to the constructor (`stateful`, `max_batch_size`, `name`,
        `dtype`). The backbone's `options` are these options, their keys
        beyond the architecture (training keys, `n_characters`) included, so
        that `save_bilm` writes them back as they were.
        """
        options = ElmoOptions.from_dict(options)
        model = cls(**backbone_arguments(options), **kwargs)
        model.options = options
        return model

    @classmethod
    def from_files(cls, options_file, weight_file, **kwargs):
        """Build from the original `options.json` and load the weights `.hdf5`.

        `kwargs` go to the constructor (`stateful`, `max_batch_size`, `name`).
        """
        with weights_to_be_loaded():  # no random initial values: the file's are assigned next
            model = cls.from_options(ElmoOptions.from_json(options_file), **kwargs)
        load_weights(model, weight_file)
        return model

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Build a pretrained backbone: `"default"`, a released name, a folder, or a keras-hub preset.

        Args:
            preset: str. See `preset_files`: `"default"` (the bundled
                model), `"small"`, `"medium"`, `"original"`,
                `"original_5.5b"` (fetched once, verified, then offline), a
                directory holding `options.json` and one weights `.hdf5`, or
                a zip of one. A folder holding keras-hub's `config.json`
                (written by `save_to_preset`) and keras-hub's handles
                (`hf://...`, `kaggle://...`) load through keras-hub's own
                loader (the `keras-hub` extra).
            load_weights: bool. False: the preset's architecture with random
                weights.
            **kwargs: constructor arguments (`stateful`, `max_batch_size`,
                `name`, `dtype`).
        """
        if is_keras_hub_preset(preset):
            check_keras_hub_preset(preset, load_weights)
            return super().from_preset(os.fspath(preset), load_weights=load_weights, **kwargs)
        options_file, weight_file = preset_files(preset)
        if not load_weights:
            return cls.from_options(ElmoOptions.from_json(options_file), **kwargs)
        return cls.from_files(options_file, weight_file, **kwargs)

    def save_to_preset(self, preset_dir, max_shard_size=10):
        """Write the backbone as a keras-hub preset folder (the `keras-hub` extra).

        keras-hub's own saver writes `config.json`, `model.weights.h5` and
        `metadata.json` into a new folder beside `preset_dir`, and only once
        it has finished do they move into `preset_dir` (a new `preset_dir`
        appears whole; in an existing one each file is replaced by one
        rename, and other parts of a preset, such as a tokenizer saved there,
        stay): a reader never sees a half-written preset. `keras_hub.models.Backbone.from_preset(preset_dir)` and
        `ElmoBackbone.from_preset(preset_dir)` read it back, weights bit for
        bit (once `elmo_keras` is imported, which registers the class).
        """
        require_keras_hub("ElmoBackbone.save_to_preset")
        with atomic_directory(preset_dir) as tmp:
            super().save_to_preset(tmp, max_shard_size=max_shard_size)

    def get_config(self):
        config = super().get_config()
        config.update(backbone_arguments(self.options))
        config.update({"stateful": self.stateful, "max_batch_size": self.max_batch_size})
        return config

    @classmethod
    def from_config(cls, config):
        # Functional's from_config would rebuild a plain Functional model.
        config = dict(config)
        if "options" in config:  # saved by elmo_keras 0.x: the original schema, converted
            config.update(backbone_arguments(config.pop("options")))
        check_saved_config(cls, config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.get(config["dtype"])
        return cls(**config)
