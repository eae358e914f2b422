"""Training options: the original `options.json` schema plus bilm-tf's training keys.

A training options file is an ordinary options file (see
`elmo_keras.io.options`) with the keys of bilm-tf's `bin/train_elmo.py`:

- `n_tokens_vocab`: int. Vocabulary size, special tokens included; taken
  from the vocabulary file when absent, and must equal its size when present.
- `unroll_steps` (20): tokens per window; back-propagation is cut between windows.
- `batch_size` (128): rows per batch, summed over all replicas.
- `n_negative_samples_batch` (8192): negatives of the sampled softmax per
  batch; at or above `n_tokens_vocab` the full softmax is used.
- `dropout` (0.1): on the input of every LSTM layer and on the top layer's output.
- `all_clip_norm_val` (10.0): global gradient norm clip.
- `learning_rate` (0.2): Adagrad learning rate (initial accumulator 1.0).
- `n_epochs` (10): passes over `n_train_tokens`.
- `n_train_tokens` (int or absent): training corpus size in tokens; counted
  from the corpus when absent.
- `mixed_precision` (false): compute in bfloat16 (`mixed_bfloat16` policy);
  variables, carried LSTM states and the softmax stay float32.
- `seed` (0): initial weights, dropout, negative samples and data order.
- `shuffle` (true): shuffle shards and sentences each epoch.

Training defaults differ from the inference schema where bilm-tf's recipe
does: `lstm.cell_clip` and `lstm.proj_clip` are 3, `lstm.use_skip_connections`
is true, and `char_cnn.n_characters` is 261 (a released file's 262 is accepted
and written back as 261; `dump_weights` writes 262 again).

Example:

>>> opts = validate_training_options({
...     "lstm": {"dim": 32, "projection_dim": 16, "n_layers": 2},
...     "char_cnn": {"embedding": {"dim": 4}, "filters": [[1, 8], [2, 8]], "n_highway": 1},
... }, n_tokens_vocab=100)
>>> opts["unroll_steps"], opts["batch_size"], opts["lstm"]["cell_clip"], opts["char_cnn"]["n_characters"]
(20, 128, 3, 261)
"""

import copy
import dataclasses
import numbers

from elmo_keras.arguments import check_positive_int, is_int
from elmo_keras.io.options import ElmoOptions, OptionsError, validate_options

# The full training options, as `train` writes them into its save_dir.
OPTIONS_FILE = "options.json"

TRAINING_DEFAULTS = {
    "bidirectional": True,
    "unroll_steps": 20,
    "batch_size": 128,
    "n_negative_samples_batch": 8192,
    "dropout": 0.1,
    "all_clip_norm_val": 10.0,
    "learning_rate": 0.2,
    "n_epochs": 10,
    "mixed_precision": False,
    "seed": 0,
    "shuffle": True,
}
_LSTM_TRAINING_DEFAULTS = {"cell_clip": 3, "proj_clip": 3, "use_skip_connections": True}

# Keys that fix the shapes of the variables: a checkpoint only restores into
# a model whose options agree on all of them.
ARCHITECTURE_KEYS = ("lstm", "char_cnn", "n_tokens_vocab")


def _check(condition, source, key, expected, value):
    if not condition:
        raise OptionsError(f"{source}: {key}: expected {expected}, found {value!r}")


def _check_int(check, source, key, value):
    """`check` (from `elmo_keras.arguments`) of `value`, as an OptionsError naming the file and key."""
    try:
        check(value, f"{source}: {key}")
    except ValueError as error:
        raise OptionsError(str(error)) from None


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def validate_training_options(options, n_tokens_vocab=None, source="options"):
    """Fill the training defaults into an options dict and check every key.

    Args:
        options: dict. Original options, with or without training keys.
        n_tokens_vocab: int or None. The vocabulary size; sets
            `n_tokens_vocab` (or checks it, when the options already have it).
        source: str. Names the options in error messages.

    Returns a new dict; the argument is not changed.

    Raises:
        OptionsError: a key is missing or has a bad value, or `n_tokens_vocab`
            disagrees with the vocabulary.
    """
    if not isinstance(options, dict):
        raise OptionsError(f"{source}: expected a JSON object, found {type(options).__name__}")
    opts = copy.deepcopy(options)
    if isinstance(opts.get("lstm"), dict):
        for key, value in _LSTM_TRAINING_DEFAULTS.items():
            opts["lstm"].setdefault(key, value)
    if isinstance(opts.get("char_cnn"), dict):
        opts["char_cnn"].setdefault("n_characters", 261)
    opts = validate_options(opts, source=source)
    # bilm-tf's training graph has no padding row; the stored char_embed is
    # the same 261 rows either way, so only the number written changes.
    opts["char_cnn"]["n_characters"] = 261
    for key, value in TRAINING_DEFAULTS.items():
        opts.setdefault(key, value)

    _check(opts["bidirectional"] is True, source, "bidirectional", "true (only the biLM is trained)",
           opts["bidirectional"])
    for key in ("unroll_steps", "batch_size", "n_epochs"):
        _check_int(check_positive_int, source, key, opts[key])
    _check(is_int(opts["n_negative_samples_batch"]) and opts["n_negative_samples_batch"] >= 0, source,
           "n_negative_samples_batch", "an integer >= 0 (0: full softmax)", opts["n_negative_samples_batch"])
    _check(_is_number(opts["dropout"]) and 0 <= opts["dropout"] < 1, source, "dropout",
           "a number in [0, 1)", opts["dropout"])
    for key in ("all_clip_norm_val", "learning_rate"):
        _check(_is_number(opts[key]) and opts[key] > 0, source, key, "a positive number", opts[key])
    for key in ("mixed_precision", "shuffle"):
        _check(isinstance(opts[key], bool), source, key, "true or false", opts[key])
    _check(is_int(opts["seed"]), source, "seed", "an integer", opts["seed"])
    if opts.get("n_train_tokens") is not None:
        _check_int(check_positive_int, source, "n_train_tokens", opts["n_train_tokens"])

    if n_tokens_vocab is not None:
        if opts.get("n_tokens_vocab") is None:
            opts["n_tokens_vocab"] = int(n_tokens_vocab)
        elif opts["n_tokens_vocab"] != n_tokens_vocab:
            raise OptionsError(f"{source}: n_tokens_vocab is {opts['n_tokens_vocab']!r} but the vocabulary "
                               f"has {n_tokens_vocab} tokens")
    n_vocab = opts.get("n_tokens_vocab")
    _check(is_int(n_vocab) and n_vocab >= 4, source, "n_tokens_vocab",
           "an integer >= 4 (<S>, </S>, <UNK> and a word)", n_vocab)
    return opts


@dataclasses.dataclass(frozen=True)
class TrainingOptions(ElmoOptions):
    """`ElmoOptions` with bilm-tf's training keys, validated once (`validate_training_options`).

    `from_dict(options, n_tokens_vocab=None, source=...)` fills the training
    defaults; `to_dict()` gives the training options file `train` writes.
    The fields are the keys above; `n_train_tokens` is None until counted.

    >>> opts = TrainingOptions.from_dict({"lstm": {"dim": 32, "projection_dim": 16, "n_layers": 2},
    ...     "char_cnn": {"embedding": {"dim": 4}, "filters": [[1, 8], [2, 8]], "n_highway": 1}}, n_tokens_vocab=100)
    >>> opts.unroll_steps, opts.batch_size, opts.lstm.cell_clip, opts.n_tokens_vocab
    (20, 128, 3, 100)
    """

    n_tokens_vocab: int = None
    n_train_tokens: int = None
    bidirectional: bool = True
    unroll_steps: int = 20
    batch_size: int = 128
    n_negative_samples_batch: int = 8192
    dropout: float = 0.1
    all_clip_norm_val: float = 10.0
    learning_rate: float = 0.2
    n_epochs: int = 10
    mixed_precision: bool = False
    seed: int = 0
    shuffle: bool = True

    @classmethod
    def from_dict(cls, options, n_tokens_vocab=None, source="options"):
        """Validate training options (`validate_training_options`) and build the object."""
        if isinstance(options, cls) and n_tokens_vocab in (None, options.n_tokens_vocab):
            return options
        if isinstance(options, ElmoOptions):
            options = options.to_dict()
        return cls._from_valid(validate_training_options(options, n_tokens_vocab=n_tokens_vocab, source=source))

    @classmethod
    def from_json(cls, options_file, n_tokens_vocab=None):
        """Read and validate a training options file; errors name the file and the field."""
        from elmo_keras.io.options import read_options_json

        return cls.from_dict(read_options_json(options_file), n_tokens_vocab=n_tokens_vocab, source=options_file)

    def to_dict(self):
        options = super().to_dict()
        if options["n_train_tokens"] is None:
            del options["n_train_tokens"]  # counted from the corpus when absent
        return options
