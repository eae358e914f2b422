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
import dataclasses
import json
import math
import os
import warnings

from elmo_keras.arguments import expected_int
from elmo_keras.io.atomic import atomic_write_text


# `char_cnn` fields beyond the original schema, written only when they differ from their defaults.
_OPTIONAL_CHAR_CNN = ("characters", "word_dim", "n_words")


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


# `char_cnn.characters`: what a token's character ids are. bilm-tf's UTF-8
# bytes (the default, and the only kind of the original schema), or Unicode
# code points looked up in a per-model character dictionary, as
# ELMoForManyLangs' models read them (`elmo_keras.preprocessing.char_dic_ids`).
UTF8_BYTES = "utf8_bytes"
CODE_POINTS = "code_points"
CHARACTER_KINDS = (UTF8_BYTES, CODE_POINTS)


# Upper bounds: generous for every released model (the largest, original and
# original_5.5b: lstm.dim 4096, projection_dim 512, 2 layers, filters summing
# to 2048, 2 highway layers, 50 characters a token, 93.6 million parameters),
# low enough that a mistyped size is refused before any tensor is allocated.
MAX_PARAMETERS = 10**10
MAX_SIZE = 2**20  # any one width, count or dimension
MAX_LAYERS = 64  # lstm.n_layers and char_cnn.n_highway
MAX_FILTERS = 256  # entries of char_cnn.filters
# The largest char_cnn.max_characters_per_token accepted (the default, 50, is
# elmo_keras.preprocessing.char_ids.MAX_CHARACTERS_PER_TOKEN).
MAX_TOKEN_WIDTH = 4096


def _kind(value):
    return "null" if value is None else type(value).__name__


def _show(value):
    """`repr` of a found value, cut short: a message stays one readable line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _found(value):
    return f"found {_kind(value)} {_show(value)}"


def _section(parent, key, source, prefix=""):
    """The object `parent[key]`; `prefix` is the dotted field name of `parent` ("" at the top)."""
    if key not in parent:
        where = f"{source}: {prefix[:-1]}" if prefix else source
        raise OptionsError(f"{where}: missing field '{key}' (expected an object)")
    value = parent[key]
    if not isinstance(value, dict):
        raise OptionsError(f"{source}: {prefix}{key}: expected an object, {_found(value)}")
    return value


def _require(section, key, where, kind):
    if key not in section:
        raise OptionsError(f"{where}: missing field '{key}' (expected {kind})")
    return section[key]


def _int_in_range(value, where, low=1, high=MAX_SIZE):
    # JSON's integers only: a NumPy integer in a dict built in Python would
    # not write back to options.json. A wrong type is named with its JSON
    # type ("found bool True"), as in every options error.
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionsError(f"{where}: expected {expected_int(low)}, {_found(value)}")
    if value < low:
        raise OptionsError(f"{where}: expected {expected_int(low)}, found {value!r}")
    if value > high:
        raise OptionsError(f"{where}: {value} is above the limit of {high:,} (the largest released "
                           f"model needs far less; is it a typo?)")
    return value


def _positive_int(value, where):
    return _int_in_range(value, where)


def parameter_count(options):
    """Parameters of the biLM that valid `options` describe, by part.

    Returns `{field: count}` with the field that sizes each part:
    `char_cnn.embedding.dim` (the character embedding), `char_cnn.filters`
    (the convolutions and the projection to `lstm.projection_dim`),
    `char_cnn.n_highway` (the highway layers) and `lstm.dim` (both LSTM
    stacks). The original model gives about 93.6 million in all.
    """
    cnn, lstm = options["char_cnn"], options["lstm"]
    emb, proj, dim = cnn["embedding"]["dim"], lstm["projection_dim"], lstm["dim"]
    code_points = cnn.get("characters", UTF8_BYTES) == CODE_POINTS
    word_dim = cnn.get("word_dim", 0)
    n_filters = sum(num for _, num in cnn["filters"])
    convolutions = sum(width * emb * num + num for width, num in cnn["filters"])
    inputs = n_filters + word_dim
    projection = inputs * proj + proj if inputs != proj or code_points else 0
    cell = 2 * proj * 4 * dim + 4 * dim + dim * proj
    counts = {
        "char_cnn.embedding.dim": (cnn["n_characters"] if code_points else 261) * emb,
        "char_cnn.filters": convolutions + projection,
        "char_cnn.n_highway": cnn["n_highway"] * 2 * (n_filters * n_filters + n_filters),
        "lstm.dim": 2 * lstm["n_layers"] * cell,
    }
    if word_dim:
        counts["char_cnn.word_dim"] = cnn["n_words"] * word_dim
    return counts


def validate_options(options, source="options"):
    """Check an options dict against the original schema; fill defaults.

    Returns a deep copy with every optional field present. Raises one
    `OptionsError` naming `source`, the field and what was expected, for
    any wrong type, missing key or out-of-range value, nested or not.
    Sizes are bounded: each width, count or dimension by 2**20, `n_layers`
    and `n_highway` by 64, `filters` by 256 entries,
    `max_characters_per_token` by 4096, and the biLM's parameter count
    (`parameter_count`) by 10**10, so that a mistyped size is refused
    before any tensor is allocated.

    Beyond the original schema (written only when used): `char_cnn.characters`
    `"utf8_bytes"` (the default, bilm-tf's) or `"code_points"` (an imported
    ELMoForManyLangs model: characters through its `char.dic`, whose size
    `n_characters` then is, and a word embedding of `word_dim` over `n_words`
    words of its `word.dic`).
    """
    if not isinstance(options, dict):
        raise OptionsError(f"{source}: expected a JSON object, found {_kind(options)}")
    opts = copy.deepcopy(options)
    lstm = _section(opts, "lstm", source)
    cnn = _section(opts, "char_cnn", source)
    for key in ("dim", "projection_dim"):
        _positive_int(_require(lstm, key, f"{source}: lstm", "a positive integer"), f"{source}: lstm.{key}")
    _int_in_range(_require(lstm, "n_layers", f"{source}: lstm", "a positive integer"),
                  f"{source}: lstm.n_layers", high=MAX_LAYERS)
    for key, value in _LSTM_DEFAULTS.items():
        lstm.setdefault(key, value)
    for key in ("cell_clip", "proj_clip"):
        v = lstm[key]
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0
                              or not math.isfinite(v)):
            raise OptionsError(f"{source}: lstm.{key}: expected a positive number or null, {_found(v)}")
    if not isinstance(lstm["use_skip_connections"], bool):
        raise OptionsError(f"{source}: lstm.use_skip_connections: expected true or false, "
                           f"{_found(lstm['use_skip_connections'])}")
    for key, value in _CHAR_CNN_DEFAULTS.items():
        cnn.setdefault(key, value)
    max_chars = _int_in_range(cnn["max_characters_per_token"], f"{source}: char_cnn.max_characters_per_token",
                              low=3, high=MAX_TOKEN_WIDTH)
    emb = _section(cnn, "embedding", source, "char_cnn.")
    _positive_int(_require(emb, "dim", f"{source}: char_cnn.embedding", "a positive integer"),
                  f"{source}: char_cnn.embedding.dim")
    filters = _require(cnn, "filters", f"{source}: char_cnn", "a list of [width, num_filters]")
    if not isinstance(filters, list) or not filters:
        raise OptionsError(f"{source}: char_cnn.filters: expected a non-empty list of [width, num_filters], "
                           f"{_found(filters)}")
    if len(filters) > MAX_FILTERS:
        raise OptionsError(f"{source}: char_cnn.filters: {len(filters)} entries, above the limit of {MAX_FILTERS}")
    for i, f in enumerate(filters):
        if not (isinstance(f, (list, tuple)) and len(f) == 2):
            raise OptionsError(f"{source}: char_cnn.filters[{i}]: expected [width, num_filters], "
                               f"{_found(f)}")
        _positive_int(f[0], f"{source}: char_cnn.filters[{i}][0] (width)")
        _positive_int(f[1], f"{source}: char_cnn.filters[{i}][1] (num_filters)")
        if f[0] > max_chars:
            raise OptionsError(f"{source}: char_cnn.filters[{i}]: width {f[0]} exceeds "
                               f"max_characters_per_token {max_chars}")
    if not isinstance(cnn["activation"], str) or cnn["activation"] not in ("relu", "tanh"):
        raise OptionsError(f"{source}: char_cnn.activation: expected 'relu' or 'tanh', {_found(cnn['activation'])}")
    characters = cnn.get("characters", UTF8_BYTES)
    if not isinstance(characters, str) or characters not in CHARACTER_KINDS:
        raise OptionsError(f"{source}: char_cnn.characters: expected one of "
                           f"{', '.join(repr(k) for k in CHARACTER_KINDS)}, {_found(characters)}")
    n_characters = cnn["n_characters"]
    if characters == CODE_POINTS:
        # The size of the model's character dictionary, markers included.
        _positive_int(n_characters, f"{source}: char_cnn.n_characters (with characters 'code_points')")
        for key in ("word_dim", "n_words"):
            _int_in_range(cnn.get(key, 0), f"{source}: char_cnn.{key}", low=0)
        if cnn.get("word_dim", 0) and not cnn.get("n_words", 0):
            raise OptionsError(f"{source}: char_cnn.n_words: expected a positive integer (the size of the "
                               f"word dictionary) with word_dim {cnn['word_dim']}, found "
                               f"{_show(cnn.get('n_words', 0))}")
    else:
        if isinstance(n_characters, bool) or not isinstance(n_characters, int) or n_characters not in (261, 262):
            raise OptionsError(f"{source}: char_cnn.n_characters: expected 261 or 262, found {_show(n_characters)}")
        for key in ("word_dim", "n_words"):
            if cnn.get(key, 0) != 0:
                raise OptionsError(f"{source}: char_cnn.{key}: a word embedding needs characters "
                                   f"'code_points', found {_show(cnn[key])} with characters 'utf8_bytes'")
    _int_in_range(cnn["n_highway"], f"{source}: char_cnn.n_highway", low=0, high=MAX_LAYERS)
    counts = parameter_count(opts)
    total = sum(counts.values())
    if total > MAX_PARAMETERS:
        field = max(counts, key=counts.get)
        raise OptionsError(f"{source}: {field}: these options make a biLM of {total:,} parameters "
                           f"({counts[field]:,} from {field}), above the limit of {MAX_PARAMETERS:,} "
                           f"(the largest released model has about 93.6 million)")
    return opts


def _json_copy(value):
    """A plain copy of JSON-able data (Keras wraps dicts and lists held by layers in trackers)."""
    return json.loads(json.dumps(value))


def _split(section, fields):
    """(the known fields of a section dict, its other keys as a plain dict)."""
    known = {f.name for f in fields if f.name != "extra"}
    return ({k: v for k, v in section.items() if k in known},
            _json_copy({k: v for k, v in section.items() if k not in known}))


@dataclasses.dataclass(frozen=True)
class LstmOptions:
    """The options' `lstm` section: both directions' stacks of LSTMs with projection.

    `extra` keeps any other keys the section had, so that it writes back as read.
    """

    dim: int
    projection_dim: int
    n_layers: int
    cell_clip: float | None = None
    proj_clip: float | None = None
    use_skip_connections: bool = False
    extra: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class CharCnnOptions:
    """The options' `char_cnn` section (`embedding.dim` is `embedding_dim` here).

    `extra` keeps any other keys the section had, so that it writes back as read.
    """

    embedding_dim: int
    filters: tuple
    n_highway: int = 0
    activation: str = "relu"
    max_characters_per_token: int = 50
    n_characters: int = 262
    characters: str = UTF8_BYTES
    word_dim: int = 0
    n_words: int = 0
    extra: dict = dataclasses.field(default_factory=dict)

    @property
    def widest_filter(self):
        """The widest convolution, in characters."""
        return max(width for width, _ in self.filters)

    @property
    def token_id_width(self):
        """Ids per token: the character slots, and one more for the word id when there is a word embedding."""
        return self.max_characters_per_token + (1 if self.word_dim else 0)


@dataclasses.dataclass(frozen=True)
class ElmoOptions:
    """The options of a biLM, validated once: the one options object of the package.

    Built from the original `options.json` schema (`from_dict`, `from_json`;
    `elmo_keras.io.options.validate_options` checks it) and written back to it
    (`to_dict`, `to_json`) with every key it was read with, unknown ones
    included (`extra`); `elmo_keras.training.options.TrainingOptions` extends
    it with the training keys. Frozen: `dataclasses.replace` makes a changed
    copy (which `from_dict(copy.to_dict())` validates again).

    Example:

    >>> opts = ElmoOptions.from_dict({"lstm": {"dim": 8, "projection_dim": 4, "n_layers": 1},
    ...     "char_cnn": {"embedding": {"dim": 4}, "filters": [[1, 4]], "n_highway": 1}})
    >>> opts.lstm.cell_clip, opts.char_cnn.activation, opts.num_layers, opts.output_dim
    (None, 'relu', 2, 8)
    >>> opts.to_dict()["char_cnn"]["embedding"]
    {'dim': 4}
    """

    lstm: LstmOptions
    char_cnn: CharCnnOptions
    extra: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, options, source="options"):
        """Validate an options dict (`validate_options`) and build the object; an `ElmoOptions` passes as it is."""
        if isinstance(options, cls):
            return options
        if isinstance(options, ElmoOptions):
            options = options.to_dict()
        return cls._from_valid(cls._validate(options, source))

    @staticmethod
    def _validate(options, source):
        return validate_options(options, source=source)

    @classmethod
    def _from_valid(cls, opts):
        lstm, lstm_extra = _split(opts["lstm"], dataclasses.fields(LstmOptions))
        cnn, cnn_extra = _split(opts["char_cnn"], dataclasses.fields(CharCnnOptions))
        embedding = cnn_extra.pop("embedding")
        if len(embedding) > 1:  # keys beside `dim`, kept to be written back
            cnn_extra["embedding"] = {k: v for k, v in embedding.items() if k != "dim"}
        char_cnn = CharCnnOptions(embedding_dim=embedding["dim"],
                                  filters=tuple((int(w), int(n)) for w, n in cnn.pop("filters")),
                                  extra=cnn_extra, **cnn)
        top = {f.name for f in dataclasses.fields(cls) if f.name not in ("lstm", "char_cnn", "extra")}
        known = {k: opts[k] for k in top if k in opts}
        extra = _json_copy({k: v for k, v in opts.items() if k not in top and k not in ("lstm", "char_cnn")})
        return cls(lstm=LstmOptions(extra=lstm_extra, **lstm), char_cnn=char_cnn, extra=extra, **known)

    @classmethod
    def from_json(cls, options_file):
        """Read and validate an `options.json` file; errors name the file and the field."""
        return cls.from_dict(read_options_json(options_file), source=options_file)

    def to_dict(self):
        """The options in the original schema: a new plain dict, JSON-able."""
        lstm = {f.name: getattr(self.lstm, f.name) for f in dataclasses.fields(self.lstm) if f.name != "extra"}
        cnn = {f.name: getattr(self.char_cnn, f.name) for f in dataclasses.fields(self.char_cnn)
               if f.name not in ("extra", "embedding_dim", "filters")
               # The fields of the second token embedder are written only where used: a bilm-tf
               # model's options write back in the original schema, as read.
               and not (f.name in _OPTIONAL_CHAR_CNN and getattr(self.char_cnn, f.name) == f.default)}
        cnn_extra = _json_copy(self.char_cnn.extra)
        embedding = {"dim": self.char_cnn.embedding_dim, **cnn_extra.pop("embedding", {})}
        options = {"lstm": {**lstm, **_json_copy(self.lstm.extra)},
                   "char_cnn": {"embedding": embedding, "filters": [list(f) for f in self.char_cnn.filters],
                                **cnn, **cnn_extra}}
        options.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                        if f.name not in ("lstm", "char_cnn", "extra")})
        options.update(_json_copy(self.extra))
        return _json_copy(options)

    def to_json(self, options_file):
        """Write the options as `options.json`, atomically."""
        save_options(self.to_dict(), options_file)

    @property
    def num_layers(self):
        """Layers of ELMo's output: the char-CNN layer and each LSTM layer (`lstm.n_layers + 1`)."""
        return self.lstm.n_layers + 1

    @property
    def output_dim(self):
        """Width of every output layer: forward and backward (`2 * lstm.projection_dim`)."""
        return 2 * self.lstm.projection_dim

    def __getitem__(self, key):
        # The options were a dict before this class: reading them by key still works, for now.
        warnings.warn("reading options by key (options['lstm']) is deprecated: use the attributes "
                      "(options.lstm.dim) or options.to_dict()", DeprecationWarning, stacklevel=2)
        return self.to_dict()[key]


def read_options_json(options_file):
    """The JSON of an options file, not validated: the one reader of options files.

    Raises `OptionsError` naming the file: not found, unreadable, not UTF-8,
    not JSON, or nested too deep to parse. `load_options` validates what it
    reads; training reads its options (and a checkpoint's saved ones) here
    too, and validates them with its own keys.
    """
    if not os.path.exists(options_file):
        raise OptionsError(f"{options_file}: options file not found")
    try:
        with open(options_file, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError, RecursionError) as e:
        # ValueError: bad JSON, bad UTF-8, or an integer of more digits than Python converts;
        # RecursionError: JSON nested too deep to parse.
        raise OptionsError(f"{options_file}: cannot read options JSON: {type(e).__name__}: {e}") from e


def load_options(options_file):
    """Read and validate an `options.json` file."""
    return validate_options(read_options_json(options_file), source=options_file)


def save_options(options, options_file):
    """Write options as JSON, atomically."""
    atomic_write_text(options_file, json.dumps(options, indent=2, sort_keys=True) + "\n")
