"""The biLM as a functional Keras model: character ids in, every layer out."""

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
    return ElmoBackbone.from_options(options, stateful=stateful, max_batch_size=max_batch_size, name=name)


def get_bilstm(model):
    """The `BiLSTM` layer of a biLM model."""
    return model.get_layer("bilstm")


def get_char_cnn(model):
    """The `CharCNN` layer of a biLM model."""
    return model.get_layer("char_cnn")


def build_token_encoder(bilm):
    """The biLM's `ElmoBackbone.token_encoder()`: its `CharCNN` as a model on char ids."""
    return bilm.token_encoder()


def build_contextualizer(bilm, packed=True):
    """The biLM's `ElmoBackbone.contextualizer(packed)`: its `BiLSTM` as a model on token vectors."""
    return bilm.contextualizer(packed=packed)
