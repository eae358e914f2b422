"""The original `options.json` schema: read, validate and write it.

The options file is elmo_keras' one configuration format. A file written by
bilm-tf or AllenNLP loads as it is; training keys (see
`elmo_keras.training`) extend the same schema.

Example:

>>> opts = validate_options({"lstm": {"dim": 8, "projection_dim": 4, "n_layers": 1},
...     "char_cnn": {"embedding": {"dim": 4}, "filters": [[1, 4]], "n_highway": 1,
...                  "n_characters": 262}})
>>> opts["lstm"]["cell_clip"], opts["char_cnn"]["activation"]
(None, 'relu')
"""

import copy
import json
import os

from elmo_keras.io.atomic import atomic_write_text


class OptionsError(ValueError):
    """An options file is missing, unreadable or breaks the schema."""


_LSTM_DEFAULTS = {
    "cell_clip": None,
    "proj_clip": None,
    "use_skip_connections": False,
}
_CHAR_CNN_DEFAULTS = {
    "activation": "relu",
    "max_characters_per_token": 50,
    "n_characters": 262,
    "n_highway": 0,
}


def _require(section, key, where, kind):
    if key not in section:
        raise OptionsError(f"{where}: missing field '{key}' (expected {kind})")
    return section[key]


def _positive_int(value, where):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise OptionsError(f"{where}: expected a positive integer, found {value!r}")
    return value


def validate_options(options, source="options"):
    """Check an options dict against the original schema; fill defaults.

    Returns a deep copy with every optional field present. Raises
    `OptionsError` naming `source`, the field and what was expected.
    """
    if not isinstance(options, dict):
        raise OptionsError(f"{source}: expected a JSON object, found {type(options).__name__}")
    opts = copy.deepcopy(options)
    lstm = _require(opts, "lstm", source, "an object")
    cnn = _require(opts, "char_cnn", source, "an object")
    for key in ("dim", "projection_dim", "n_layers"):
        _positive_int(_require(lstm, key, f"{source}: lstm", "a positive integer"), f"{source}: lstm.{key}")
    for key, value in _LSTM_DEFAULTS.items():
        lstm.setdefault(key, value)
    for key in ("cell_clip", "proj_clip"):
        v = lstm[key]
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0):
            raise OptionsError(f"{source}: lstm.{key}: expected a positive number or null, found {v!r}")
    for key, value in _CHAR_CNN_DEFAULTS.items():
        cnn.setdefault(key, value)
    emb = _require(cnn, "embedding", f"{source}: char_cnn", "an object with 'dim'")
    _positive_int(_require(emb, "dim", f"{source}: char_cnn.embedding", "a positive integer"),
                  f"{source}: char_cnn.embedding.dim")
    filters = _require(cnn, "filters", f"{source}: char_cnn", "a list of [width, num_filters]")
    if not isinstance(filters, list) or not filters:
        raise OptionsError(f"{source}: char_cnn.filters: expected a non-empty list of [width, num_filters]")
    for i, f in enumerate(filters):
        if not (isinstance(f, (list, tuple)) and len(f) == 2):
            raise OptionsError(f"{source}: char_cnn.filters[{i}]: expected [width, num_filters], found {f!r}")
        _positive_int(f[0], f"{source}: char_cnn.filters[{i}][0] (width)")
        _positive_int(f[1], f"{source}: char_cnn.filters[{i}][1] (num_filters)")
        if f[0] > cnn["max_characters_per_token"]:
            raise OptionsError(f"{source}: char_cnn.filters[{i}]: width {f[0]} exceeds "
                               f"max_characters_per_token {cnn['max_characters_per_token']}")
    if cnn["activation"] not in ("relu", "tanh"):
        raise OptionsError(f"{source}: char_cnn.activation: expected 'relu' or 'tanh', found {cnn['activation']!r}")
    if cnn["n_characters"] not in (261, 262):
        raise OptionsError(f"{source}: char_cnn.n_characters: expected 261 or 262, found {cnn['n_characters']!r}")
    if isinstance(cnn["n_highway"], bool) or not isinstance(cnn["n_highway"], int) or cnn["n_highway"] < 0:
        raise OptionsError(f"{source}: char_cnn.n_highway: expected an integer >= 0, found {cnn['n_highway']!r}")
    _positive_int(cnn["max_characters_per_token"], f"{source}: char_cnn.max_characters_per_token")
    return opts


def load_options(options_file):
    """Read and validate an `options.json` file."""
    if not os.path.exists(options_file):
        raise OptionsError(f"{options_file}: options file not found")
    try:
        with open(options_file, encoding="utf-8") as f:
            options = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise OptionsError(f"{options_file}: cannot read options JSON: {e}") from e
    return validate_options(options, source=options_file)


def save_options(options, options_file):
    """Write options as JSON, atomically."""
    atomic_write_text(options_file, json.dumps(options, indent=2, sort_keys=True) + "\n")
