"""`load_bilm` and `save_bilm`: a biLM from the original `options.json` + weights `.hdf5`, and back.

`save_random_bilm` writes the two files of a biLM with random weights, for
the tests and the benchmarks.

The files themselves are read and written by `elmo_keras.io` (options and
named arrays); `elmo_keras.models.weight_layout` maps the arrays onto the
biLM's variables.

Example:

>>> import os, tempfile
>>> model = load_bilm("tests/data/bilm-tf/options.json", "tests/data/bilm-tf/lm_weights.hdf5")
>>> out = tempfile.mkdtemp()
>>> save_bilm(model, os.path.join(out, "options.json"), os.path.join(out, "weights.hdf5"))
"""

import dataclasses
import os

import keras
import numpy as np

from elmo_keras.io.options import ElmoOptions
from elmo_keras.models.elmo_backbone import ElmoBackbone
from elmo_keras.models.weight_layout import save_weights


def load_bilm(options_file, weight_file, stateful=False, max_batch_size=64):
    """Build the biLM that `options_file` describes and load `weight_file`.

    Args:
        options_file: path of the original `options.json`.
        weight_file: path of the original weights `.hdf5`.
        stateful: bool. Carry LSTM states per batch row from call to call,
            as bilm-tf does at prediction time.
        max_batch_size: int. Rows of carried state (stateful mode).

    Returns the `ElmoBackbone` named "bilm", weights loaded; its options are
    `model.options` (an `ElmoOptions`).
    """
    return ElmoBackbone.from_files(options_file, weight_file, stateful=stateful,
                                   max_batch_size=max_batch_size, name="bilm")


def save_bilm(model, options_file, weight_file, options=None):
    """Write a biLM model as the original options + weights files.

    `n_characters` is written as 262, the value prediction code requires.
    Both files appear atomically.
    """
    if options is None:
        options = getattr(model, "options", None)
    options = ElmoOptions.from_dict(options if options is not None else options_from_model(model))
    options = dataclasses.replace(options, char_cnn=dataclasses.replace(options.char_cnn, n_characters=262))
    save_weights(model, weight_file)
    options.to_json(options_file)


def save_random_bilm(directory, options, seed=0, scale=None):
    """Write `options.json` and `weights.hdf5` of a biLM with random weights into `directory`.

    For the tests and the benchmarks, which need models of any size without
    training one. Returns `(options_file, weight_file)`, as strings.

    Args:
        directory: str or path. An existing folder.
        options: dict. The original options of the biLM.
        seed: int. The same seed writes the same weights.
        scale: float or None. None: the layers' own initial values under
            `keras.utils.set_random_seed(seed)` (Glorot kernels, uniform
            character embedding, zero biases), what the benchmarks time.
            A number: every trainable variable, biases too, drawn from
            N(0, scale / sqrt(fan_in)) by NumPy, so that a test sees every
            weight take part; Keras' global seed is left alone.
    """
    if scale is None:
        keras.utils.set_random_seed(seed)
    model = ElmoBackbone.from_options(options, name="bilm")
    if scale is not None:
        rng = np.random.default_rng(seed)
        for v in model.weights:
            if v.trainable:
                fan_in = max(v.shape[-2] if len(v.shape) > 1 else 4, 1)
                v.assign(rng.normal(0.0, scale / np.sqrt(fan_in), v.shape).astype("float32"))
    directory = os.fspath(directory)
    options_file, weight_file = os.path.join(directory, "options.json"), os.path.join(directory, "weights.hdf5")
    save_bilm(model, options_file, weight_file, options=options)
    return options_file, weight_file


def options_from_model(model):
    """Rebuild the options dict from a biLM model's layers."""
    cnn, lstm = model.get_layer("char_cnn"), model.get_layer("bilstm")
    return {
        "lstm": {"dim": lstm.units, "projection_dim": lstm.projection_dim, "n_layers": lstm.n_layers,
                 "cell_clip": lstm.cell_clip, "proj_clip": lstm.proj_clip,
                 "use_skip_connections": lstm.use_skip_connections},
        "char_cnn": {"embedding": {"dim": cnn.embedding_dim}, "filters": cnn.filters,
                     "n_highway": cnn.n_highway, "activation": cnn.activation,
                     "max_characters_per_token": cnn.max_characters_per_token, "n_characters": 262},
    }
