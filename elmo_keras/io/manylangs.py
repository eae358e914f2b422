"""Import an ELMoForManyLangs model folder (HIT-SCIR, PyTorch) as an elmo_keras model folder.

Their folder holds `config.json` (whose `config_path` names the architecture
JSON), `char.dic`, `word.dic`, `token_embedder.pkl` and `encoder.pkl` (PyTorch
state dicts). `import_manylangs` reads it, with torch (the `torch` extra,
needed only here), and writes `options.json`, `weights.hdf5` (the package's
layout, `elmo_keras.models.weight_layout`) and the two dictionaries, which
`ElmoEmbedder`, `--model` and `from_preset` load without torch.

Their architecture differs from bilm-tf's in the token embedder only (see
`elmo_keras.preprocessing.char_dic_ids` for their ids); each weight is one
line of `_token_embedder_arrays` / `_encoder_arrays`, with its transform.
"""

import json
import os
import shutil

import numpy as np

from elmo_keras.io.atomic import atomic_directory
from elmo_keras.io.options import CODE_POINTS, ElmoOptions, OptionsError
from elmo_keras.layers.lstm_projection import FORGET_BIAS
from elmo_keras.preprocessing.char_dic_ids import (CHAR_DIC, CHAR_MARKERS, WORD_DIC, WORD_MARKERS,
                                                   read_dictionary)

CONFIG = "config.json"
TOKEN_EMBEDDER = "token_embedder.pkl"
ENCODER = "encoder.pkl"
THEIR_FILES = (CONFIG, CHAR_DIC, WORD_DIC, TOKEN_EMBEDDER, ENCODER)
OPTIONS = "options.json"
WEIGHTS = "weights.hdf5"
OUR_FILES = (OPTIONS, WEIGHTS, CHAR_DIC, WORD_DIC)

# The architecture of every released model (their `configs/cnn_50_100_512_4096_sample.json`), which
# some releases name without shipping it.
RELEASED_ARCHITECTURE_NAME = "cnn_50_100_512_4096_sample.json"
RELEASED_ARCHITECTURE = {
    "encoder": {"name": "elmo", "projection_dim": 512, "cell_clip": 3, "proj_clip": 3, "dim": 4096, "n_layers": 2},
    "token_embedder": {"name": "cnn", "activation": "relu",
                       "filters": [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]],
                       "n_highway": 2, "word_dim": 100, "char_dim": 50, "max_characters_per_token": 50},
}


class ManyLangsError(ValueError):
    """An ELMoForManyLangs folder is incomplete or inconsistent; the message names the file."""


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ManyLangsError(f"{path}: cannot read JSON: {type(e).__name__}: {e}") from e


def architecture_file(model_dir):
    """`(path or None, architecture dict, note)`: the architecture that `config.json`'s `config_path` names.

    Their released configs carry absolute paths of the authors' machine: the
    folder's own file of the same name is read instead, and `note` says so
    (None when the path was the folder's own). A name that the folder lacks
    but that is the released architecture's gives that architecture.
    """
    config_file = os.path.join(model_dir, CONFIG)
    config = _read_json(config_file)
    path = config.get("config_path") if isinstance(config, dict) else None
    if not isinstance(path, str) or not path:
        raise ManyLangsError(f"{config_file}: expected an object with 'config_path' (the architecture JSON's "
                             f"name), found {str(config)[:60]!r}")
    own = os.path.join(model_dir, os.path.basename(path.replace("\\", "/")))
    named = os.path.normpath(os.path.join(model_dir, path))
    if os.path.isfile(own):
        inside = os.path.exists(named) and os.path.samefile(named, own)
        note = None if inside else (f"{config_file}: config_path {path!r} is not this folder's file: "
                                    f"read the folder's own {own}")
        return own, _read_json(own), note
    if os.path.basename(own) == RELEASED_ARCHITECTURE_NAME:
        return None, RELEASED_ARCHITECTURE, (f"{config_file}: config_path {path!r}: the folder has no "
                                             f"{RELEASED_ARCHITECTURE_NAME}; it names the released architecture, used")
    raise ManyLangsError(f"{config_file}: config_path {path!r}: expected the architecture JSON "
                         f"{os.path.basename(own)!r} in {model_dir}, not found")


def options_from_architecture(architecture, n_characters, n_words, source):
    """Our options (the original schema plus the second token embedder) of their architecture JSON."""
    try:
        encoder, embedder = architecture["encoder"], architecture["token_embedder"]
        if encoder["name"].lower() != "elmo" or embedder["name"].lower() != "cnn":
            raise ManyLangsError(f"{source}: expected encoder 'elmo' and token_embedder 'cnn' (the released "
                                 f"models'), found {encoder['name']!r} and {embedder['name']!r}")
        if not embedder.get("char_dim") or not embedder.get("word_dim"):
            raise ManyLangsError(f"{source}: token_embedder: expected char_dim and word_dim > 0 (the released "
                                 f"models'), found {embedder.get('char_dim')!r} and {embedder.get('word_dim')!r}")
        options = {
            # Their encoder always adds each layer's input to its output from layer 1 on.
            "lstm": {"dim": encoder["dim"], "projection_dim": encoder["projection_dim"],
                     "n_layers": encoder["n_layers"], "cell_clip": encoder.get("cell_clip"),
                     "proj_clip": encoder.get("proj_clip"), "use_skip_connections": True},
            "char_cnn": {"embedding": {"dim": embedder["char_dim"]}, "filters": embedder["filters"],
                         "n_highway": embedder["n_highway"], "activation": embedder["activation"],
                         "max_characters_per_token": embedder["max_characters_per_token"],
                         "characters": CODE_POINTS, "n_characters": n_characters,
                         "word_dim": embedder["word_dim"], "n_words": n_words},
        }
        for key in ("cell_clip", "proj_clip"):  # 0 or absent: no clipping, as in their code
            options["lstm"][key] = options["lstm"][key] or None
        return ElmoOptions.from_dict(options, source=source)
    except (KeyError, TypeError, AttributeError) as e:
        raise ManyLangsError(f"{source}: expected their architecture JSON (encoder, token_embedder), "
                             f"missing or wrong {e}") from e
    except OptionsError as e:
        raise ManyLangsError(str(e)) from e


def _load_state_dict(path):
    try:
        import torch
    except ImportError as e:
        raise ManyLangsError(f"{path}: reading it needs torch (pip install 'elmo_keras[torch]'); only the "
                             f"import needs it, the imported model does not") from e
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a bad file
        raise ManyLangsError(f"{path}: cannot read a PyTorch state dict: {type(e).__name__}: {e}") from e
    if not isinstance(state, dict):
        raise ManyLangsError(f"{path}: expected a PyTorch state dict, found {type(state).__name__}")
    return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in state.items()}


class _Arrays:
    """Reads arrays of one state dict by key, checking each against the shape the architecture gives."""

    def __init__(self, path):
        self.path = path
        self.state = _load_state_dict(path)

    def __call__(self, key, shape):
        if key not in self.state:
            raise ManyLangsError(f"{self.path}: missing {key!r} (expected shape {tuple(shape)})")
        array = self.state[key]
        if array.shape != tuple(shape):
            raise ManyLangsError(f"{self.path}: {key!r} has shape {array.shape}, the architecture expects "
                                 f"{tuple(shape)}")
        return array


def _gates(array):
    """Their gate blocks (i, f, g, o) on axis 0, as ours (i, j=g, f, o)."""
    i, f, g, o = np.split(array, 4, axis=0)
    return np.concatenate([i, g, f, o], axis=0)


def _assign(model_dir, options, backbone):
    """Fill `backbone`'s variables from their two state dicts, one line per weight."""
    cnn_options, lstm_options = options.char_cnn, options.lstm
    cnn, lstm = backbone.get_layer("char_cnn"), backbone.get_layer("bilstm")
    emb, n_filters = cnn_options.embedding_dim, cnn.n_filters
    proj, cells = lstm_options.projection_dim, lstm_options.dim
    t = _Arrays(os.path.join(model_dir, TOKEN_EMBEDDER))
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

    e = _Arrays(os.path.join(model_dir, ENCODER))
    for layer in range(lstm_options.n_layers):
        kernel, recurrent, bias, projection = ([], [], [], [])
        for direction in ("forward", "backward"):
            name = f"{direction}_layer_{layer}"
            kernel.append(_gates(e(f"{name}.input_linearity.weight", (4 * cells, proj))).T)
            recurrent.append(_gates(e(f"{name}.state_linearity.weight", (4 * cells, proj))).T)
            b = _gates(e(f"{name}.state_linearity.bias", (4 * cells,))).copy()
            b[2 * cells : 3 * cells] -= FORGET_BIAS  # their forget bias is learnt whole; ours adds 1 at run time
            bias.append(b)
            projection.append(e(f"{name}.state_projection.weight", (proj, cells)).T)
        lstm.kernels[layer].assign(np.stack(kernel))
        lstm.recurrent_kernels[layer].assign(np.stack(recurrent))
        lstm.biases[layer].assign(np.stack(bias))
        lstm.projections[layer].assign(np.stack(projection))


def is_imported(out_dir):
    """Whether `out_dir` holds every file an import writes."""
    return all(os.path.isfile(os.path.join(out_dir, name)) for name in OUR_FILES)


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
    from elmo_keras.models.elmo_backbone import ElmoBackbone
    from elmo_keras.models.weight_layout import save_weights

    if not os.path.isdir(model_dir):
        raise ManyLangsError(f"{model_dir}: not a folder (expected an ELMoForManyLangs model folder: "
                             f"{', '.join(THEIR_FILES)})")
    for name in THEIR_FILES:
        if not os.path.isfile(os.path.join(model_dir, name)):
            raise ManyLangsError(f"{os.path.join(model_dir, name)}: missing (an ELMoForManyLangs model folder "
                                 f"holds {', '.join(THEIR_FILES)})")
    if is_imported(out_dir) and not overwrite:
        raise ManyLangsError(f"{out_dir}: already holds an imported model (pass overwrite / --overwrite to "
                             f"replace it)")
    path, architecture, note = architecture_file(model_dir)
    chars = read_dictionary(os.path.join(model_dir, CHAR_DIC), CHAR_MARKERS)
    words = read_dictionary(os.path.join(model_dir, WORD_DIC), WORD_MARKERS)
    options = options_from_architecture(architecture, len(chars), len(words),
                                        source=path or os.path.join(model_dir, CONFIG))
    backbone = ElmoBackbone.from_options(options, name="bilm")
    _assign(model_dir, options, backbone)
    with atomic_directory(out_dir, replace=overwrite) as tmp:
        options.to_json(os.path.join(tmp, OPTIONS))
        save_weights(backbone, os.path.join(tmp, WEIGHTS))
        for name in (CHAR_DIC, WORD_DIC):
            shutil.copyfile(os.path.join(model_dir, name), os.path.join(tmp, name))
    return [note] if note else []
