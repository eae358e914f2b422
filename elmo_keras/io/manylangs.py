"""Read an ELMoForManyLangs model folder (HIT-SCIR, PyTorch): its architecture, dictionaries and state dicts.

Their folder holds `config.json` (whose `config_path` names the architecture
JSON), `char.dic`, `word.dic`, `token_embedder.pkl` and `encoder.pkl` (PyTorch
state dicts); this module reads it, the state dicts with torch (the `torch`
extra, needed only here). `elmo_keras.models.manylangs.import_manylangs` maps
what it reads onto the biLM's layers and writes an elmo_keras model folder,
which `ElmoEmbedder`, `--model` and `from_preset` load without torch.

Their architecture differs from bilm-tf's in the token embedder only (see
`elmo_keras.preprocessing.char_dic_ids` for their ids).
"""

import json
import os

import numpy as np

from elmo_keras.io.options import CODE_POINTS, ElmoOptions, OptionsError
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


class StateDictArrays:
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


def torch_gates_as_ours(array):
    """Their gate blocks (i, f, g, o) on axis 0, as ours (i, j=g, f, o)."""
    i, f, g, o = np.split(array, 4, axis=0)
    return np.concatenate([i, g, f, o], axis=0)


def is_imported(out_dir):
    """Whether `out_dir` holds every file an import writes."""
    return all(os.path.isfile(os.path.join(out_dir, name)) for name in OUR_FILES)




def read_manylangs(model_dir, out_dir=None, overwrite=False):
    """Check and read an ELMoForManyLangs folder: `(options, token_embedder arrays, encoder arrays, notes)`.

    The arrays are `StateDictArrays`, read by key with the shape the
    architecture gives. With `out_dir`, a complete import there is refused
    unless `overwrite`, before anything is read. Raises `ManyLangsError`
    (or `DictionaryError`) naming the file at fault.
    """
    if not os.path.isdir(model_dir):
        raise ManyLangsError(f"{model_dir}: not a folder (expected an ELMoForManyLangs model folder: "
                             f"{', '.join(THEIR_FILES)})")
    for name in THEIR_FILES:
        if not os.path.isfile(os.path.join(model_dir, name)):
            raise ManyLangsError(f"{os.path.join(model_dir, name)}: missing (an ELMoForManyLangs model folder "
                                 f"holds {', '.join(THEIR_FILES)})")
    if out_dir is not None and is_imported(out_dir) and not overwrite:
        raise ManyLangsError(f"{out_dir}: already holds an imported model (pass overwrite / --overwrite to "
                             f"replace it)")
    path, architecture, note = architecture_file(model_dir)
    chars = read_dictionary(os.path.join(model_dir, CHAR_DIC), CHAR_MARKERS)
    words = read_dictionary(os.path.join(model_dir, WORD_DIC), WORD_MARKERS)
    options = options_from_architecture(architecture, len(chars), len(words),
                                        source=path or os.path.join(model_dir, CONFIG))
    return (options, StateDictArrays(os.path.join(model_dir, TOKEN_EMBEDDER)),
            StateDictArrays(os.path.join(model_dir, ENCODER)), [note] if note else [])
