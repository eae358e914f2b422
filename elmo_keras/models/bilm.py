"""The biLM as a functional Keras model: character ids in, every layer out."""

import keras
from keras import ops

# The builders of the backbone's layers, kept importable from here.
from elmo_keras.models.elmo_backbone import ElmoBackbone
from elmo_keras.models.elmo_backbone import bilstm_from_options  # noqa: F401
from elmo_keras.models.elmo_backbone import char_cnn_from_options  # noqa: F401
from elmo_keras.models.elmo_backbone import token_mask  # noqa: F401


def build_bilm(options, stateful=False, max_batch_size=64, name="bilm"):
    """Build the biLM from an options dict (the original `options.json` schema).

    Args:
        options: dict. The options (validated here).
        stateful: bool. Carry LSTM states per batch row from call to call.
        max_batch_size: int. Rows of state kept when stateful.
        name: str. Model name.

    Returns an `ElmoBackbone` with fresh (random) weights. It takes
    `char_ids` int32 (batch, time, max_characters_per_token), sentence
    boundaries included, and returns a dict:
      - `token_embedding` (batch, time, projection_dim): the char-CNN output;
      - `activations` (batch, n_layers + 1, time, 2 * projection_dim): layer 0
        the char-CNN vector repeated for both directions, then each LSTM
        layer (forward ; backward);
      - `mask` bool (batch, time).
    Padded positions are 0 in every output.

    Example:

    >>> import numpy as np
    >>> opts = {"lstm": {"dim": 8, "projection_dim": 4, "n_layers": 2},
    ...         "char_cnn": {"embedding": {"dim": 4}, "filters": [[1, 4], [2, 4]], "n_highway": 1}}
    >>> out = build_bilm(opts)(np.ones((2, 5, 50), "int32"))
    >>> tuple(out["activations"].shape)
    (2, 3, 5, 8)
    """
    return ElmoBackbone(options, stateful=stateful, max_batch_size=max_batch_size, name=name)


def get_bilstm(model):
    """The `BiLSTM` layer of a biLM model."""
    return model.get_layer("bilstm")


def get_char_cnn(model):
    """The `CharCNN` layer of a biLM model."""
    return model.get_layer("char_cnn")


def build_token_encoder(bilm):
    """A model sharing the biLM's `CharCNN`: char ids (batch, tokens, 50) -> vectors.

    With `build_contextualizer` it splits the biLM in two, so that the
    char-CNN can run once per distinct token (see `ElmoEmbedder`).
    """
    cnn = get_char_cnn(bilm)
    # The slot count is free: the embedder trims unneeded padding slots.
    char_ids = keras.Input(shape=(None, None), dtype="int32", name="char_ids")
    return keras.Model(char_ids, cnn(char_ids), name="token_encoder")


def build_contextualizer(bilm, packed=True):
    """A model sharing the biLM's `BiLSTM`: token vectors -> activations.

    Inputs `token_embedding` (batch, time, projection_dim) and `segment_ids`
    int32 (batch, time): 0 for padding, and each sentence a run of equal
    positive ids, so that one row may hold several sentences packed one after
    another (each is contextualised on its own, see `BiLSTM`). With one
    sentence per row, `segment_ids` is simply the mask as 0/1. Outputs as
    `build_bilm`'s `activations` and `mask`. With `packed=False` every row
    must hold one sentence, and the LSTM loop skips the per-step restarts.

    With `build_token_encoder` it splits the biLM in two, so that the
    char-CNN can run once per distinct token (see `ElmoEmbedder`).
    """
    lstm = get_bilstm(bilm)
    embedding = keras.Input(shape=(None, lstm.projection_dim), name="token_embedding")
    segment_ids = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
    mask = segment_ids > 0
    masked = embedding * ops.cast(mask, embedding.dtype)[..., None]
    layer_0 = ops.concatenate([masked, masked], axis=-1)[:, None]
    contextual = lstm(masked, mask=mask, segment_ids=segment_ids) if packed else lstm(masked, mask=mask)
    activations = ops.concatenate([layer_0, contextual], axis=1)
    return keras.Model({"token_embedding": embedding, "segment_ids": segment_ids},
                       {"activations": activations, "mask": mask}, name="contextualizer")
