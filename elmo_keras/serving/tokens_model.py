"""Embed token lists with a SavedModel of `elmo_keras.export_savedmodel`, through its `tokens` signature.

Shared by Beam's `ElmoSavedModelHandler` and `elmo_keras.spark`: no Beam, no
Spark here. `pick_savedmodel_dir` finds the version folder on any filesystem
given its `exists` and `glob` functions (`local_savedmodel_dir`: the local
one); `load_tokens_signature(export_dir)` loads the SavedModel and gives a
function from token lists to one float32 array (layers, tokens, dim) per
sentence, exactly as `ElmoEmbedder` lays them out (layer 0 = `word_emb` for
both directions, then each LSTM layer).

>>> import os
>>> from elmo_keras.pretrained import DEFAULT_MODEL_DIR
>>> export_dir = local_savedmodel_dir(os.path.join(DEFAULT_MODEL_DIR, "savedmodel"))
>>> os.path.basename(export_dir)
'1'
>>> embed, num_layers, dim = load_tokens_signature(export_dir)
>>> [v.shape for v in embed([["The", "bank", "."], []])], num_layers, dim
([(3, 3, 256), (3, 0, 256)], 3, 256)
"""

import glob
import os
import re

import numpy as np

SAVED_MODEL_FILE = "saved_model.pb"


def pick_savedmodel_dir(model_dir, exists, match, join):
    """The SavedModel folder for `model_dir`: itself, or its highest all-digit version folder.

    `exists(path)`, `match(pattern)` (the paths a glob matches; [] for
    none) and `join(*parts)` are the filesystem's. Raises FileNotFoundError
    naming the folder.
    """
    model_dir = os.fspath(model_dir).rstrip("/") or "/"
    if exists(join(model_dir, SAVED_MODEL_FILE)):
        return model_dir
    versions = {}
    for path in match(join(model_dir, "*", SAVED_MODEL_FILE)):
        folder = path[: -len(SAVED_MODEL_FILE) - 1].rstrip("/")
        version = folder.rsplit("/", 1)[-1]
        if re.fullmatch(r"\d+", version):
            versions[int(version)] = folder
    if not versions:
        raise FileNotFoundError(f"{model_dir}: no SavedModel there ({SAVED_MODEL_FILE}), nor in a version "
                                f"folder of it ({join(model_dir, '1')}/...); pass the folder "
                                f"that `elmo-keras export` wrote, or one version folder in it")
    return versions[max(versions)]


def local_savedmodel_dir(model_dir):
    """`pick_savedmodel_dir` on the local filesystem."""
    return pick_savedmodel_dir(model_dir, os.path.exists, glob.glob, os.path.join)


def load_tokens_signature(export_dir):
    """(embed, num_layers, dim): `embed(token_lists)` gives one float32 (num_layers, tokens, dim) array each.

    `embed` keeps the loaded SavedModel alive (`embed.loaded`). Raises
    ValueError naming the folder when the SavedModel lacks the `tokens`
    signature or its outputs.
    """
    import tensorflow as tf

    loaded = tf.saved_model.load(export_dir)
    if "tokens" not in loaded.signatures:
        raise ValueError(f"{export_dir}: the SavedModel has no 'tokens' signature (signatures: "
                         f"{sorted(loaded.signatures)}); export it with elmo_keras.export_savedmodel")
    function = loaded.signatures["tokens"]
    outputs = function.structured_outputs
    n_lstm = len([name for name in outputs if re.fullmatch(r"lstm_outputs\d+", name)])
    if "word_emb" not in outputs or not n_lstm:
        raise ValueError(f"{export_dir}: the 'tokens' signature lacks word_emb/lstm_outputs1..n "
                         f"(outputs: {sorted(outputs)}); export it with elmo_keras.export_savedmodel")
    names = [f"lstm_outputs{k}" for k in range(1, n_lstm + 1)]

    def embed(token_lists):
        lengths = [len(tokens) for tokens in token_lists]
        width = max(lengths)
        padded = np.empty((len(token_lists), width), dtype=object)
        padded[:] = ""
        for row, tokens in enumerate(token_lists):
            padded[row, : len(tokens)] = tokens
        out = function(tokens=tf.constant(padded, tf.string),
                       sequence_len=tf.constant(lengths, tf.int32))
        word = out["word_emb"].numpy()
        stacked = np.stack([np.concatenate([word, word], axis=-1)]
                           + [out[name].numpy() for name in names], axis=1).astype(np.float32, copy=False)
        return [np.ascontiguousarray(stacked[row, :, :n]) for row, n in enumerate(lengths)]

    # Keep the loaded object alive with the function it owns.
    embed.loaded = loaded
    return embed, n_lstm + 1, int(outputs[names[0]].shape[-1])
