"""`import_manylangs`: an ELMoForManyLangs model folder (HIT-SCIR, PyTorch) as an elmo_keras model folder.

`elmo_keras.io.manylangs` reads their folder (architecture, dictionaries, the
two state dicts, with torch: the `torch` extra, needed only here); this
module maps each weight onto the biLM's variables, one line per weight with
its transform, and writes `options.json`, `weights.hdf5` (the package's
layout, `elmo_keras.models.weight_layout`) and the two dictionaries, which
`ElmoEmbedder`, `--model` and `from_preset` then load without torch.
"""

import os
import shutil

import numpy as np

from elmo_keras.io.atomic import atomic_directory
from elmo_keras.io.manylangs import OPTIONS, WEIGHTS, read_manylangs, torch_gates_as_ours
from elmo_keras.layers.lstm_projection import FORGET_BIAS
from elmo_keras.models.elmo_backbone import ElmoBackbone
from elmo_keras.models.weight_layout import save_weights
from elmo_keras.preprocessing.char_dic_ids import CHAR_DIC, WORD_DIC


def _assign(options, t, e, backbone):
    """Fill `backbone`'s variables from their state dicts (`t`: the token embedder's, `e`: the encoder's
    `StateDictArrays`), one line per weight."""
    cnn_options, lstm_options = options.char_cnn, options.lstm
    cnn, lstm = backbone.get_layer("char_cnn"), backbone.get_layer("bilstm")
    emb, n_filters = cnn_options.embedding_dim, cnn.n_filters
    proj, cells = lstm_options.projection_dim, lstm_options.dim
    cnn.char_embed.assign(t("char_emb_layer.embedding.weight", (cnn_options.n_characters, emb)))
    cnn.word_embed.assign(t("word_emb_layer.embedding.weight", (cnn_options.n_words, cnn_options.word_dim)))
    for i, (width, num) in enumerate(cnn_options.filters):
        # Conv1d (out, in, width) -> ours (width, in, out); both are cross-correlations.
        cnn.conv_kernels[i].assign(t(f"convolutions.{i}.weight", (num, emb, width)).transpose(2, 1, 0))
        cnn.conv_biases[i].assign(t(f"convolutions.{i}.bias", (num,)))
    for k, highway in enumerate(cnn.highways):
        # Theirs: y = g x + (1 - g) relu(A x), g = sigmoid(B x), rows [A | B]. Ours: y = c relu(T x) + (1 - c) x,
        # c = sigmoid(carry): so T = A, and carry = -B (sigmoid(-z) = 1 - sigmoid(z)).
        weight = t(f"highways._layers.{k}.weight", (2 * n_filters, n_filters))
        bias = t(f"highways._layers.{k}.bias", (2 * n_filters,))
        highway.transform_kernel.assign(weight[:n_filters].T)
        highway.transform_bias.assign(bias[:n_filters])
        highway.carry_kernel.assign(-weight[n_filters:].T)
        highway.carry_bias.assign(-bias[n_filters:])
    # Linear (out, in) over [word ; highway]: ours reads the same concatenation.
    cnn.projection_kernel.assign(t("projection.weight", (proj, cnn_options.word_dim + n_filters)).T)
    cnn.projection_bias.assign(t("projection.bias", (proj,)))

    for layer in range(lstm_options.n_layers):
        kernel, recurrent, bias, projection = ([], [], [], [])
        for direction in ("forward", "backward"):
            name = f"{direction}_layer_{layer}"
            kernel.append(torch_gates_as_ours(e(f"{name}.input_linearity.weight", (4 * cells, proj))).T)
            recurrent.append(torch_gates_as_ours(e(f"{name}.state_linearity.weight", (4 * cells, proj))).T)
            b = torch_gates_as_ours(e(f"{name}.state_linearity.bias", (4 * cells,))).copy()
            b[2 * cells : 3 * cells] -= FORGET_BIAS  # their forget bias is learnt whole; ours adds 1 at run time
            bias.append(b)
            projection.append(e(f"{name}.state_projection.weight", (proj, cells)).T)
        lstm.kernels[layer].assign(np.stack(kernel))
        lstm.recurrent_kernels[layer].assign(np.stack(recurrent))
        lstm.biases[layer].assign(np.stack(bias))
        lstm.projections[layer].assign(np.stack(projection))


def import_manylangs(model_dir, out_dir, overwrite=False):
    """Import an ELMoForManyLangs model folder into `out_dir`; return the notes worth telling the user.

    Writes `options.json`, `weights.hdf5`, `char.dic` and `word.dic`; the
    folder appears whole (`elmo_keras.io.atomic.atomic_directory`). A
    complete `out_dir` is refused unless `overwrite`. Raises `ManyLangsError`
    naming the file at fault: a missing file, a `config_path` naming no
    architecture, a dictionary that is not ids 0..n-1 or lacks its markers,
    a weight missing or of a shape the architecture does not give, torch
    missing.
    """
    options, token_embedder, encoder, notes = read_manylangs(model_dir, out_dir, overwrite)
    backbone = ElmoBackbone.from_options(options, name="bilm")
    _assign(options, token_embedder, encoder, backbone)
    with atomic_directory(out_dir, replace=overwrite) as tmp:
        options.to_json(os.path.join(tmp, OPTIONS))
        save_weights(backbone, os.path.join(tmp, WEIGHTS))
        for name in (CHAR_DIC, WORD_DIC):
            shutil.copyfile(os.path.join(model_dir, name), os.path.join(tmp, name))
    return notes
