"""Training options to start from: `elmo-keras options-template options.json --size SIZE`.

Each template is a complete training options file (the original schema plus
bilm-tf's training keys, see `elmo_keras.training.options`):

- `tiny`: a try-out that trains in seconds on a CPU (2 x 64 cells);
- `default`: the architecture of the bundled default model (2 x 256 cells,
  128 projection), hours on a CPU; `small`, its former name, is deprecated:
  the released model called `small` (`elmo_keras.pretrained`) is another
  size (2 x 1024 cells);
- `original`: Peters et al. (2018): 2 x 4096 cells, 512 projection,
  2048 filters of widths 1-7, 2 highway layers; for GPUs.

Example:

>>> options = training_template("tiny")
>>> options["lstm"]["dim"], options["n_epochs"]
(64, 1)
"""

import copy
import warnings

from elmo_keras.io.options import save_options

_LSTM = {"cell_clip": 3, "proj_clip": 3, "use_skip_connections": True, "n_layers": 2}
_CHAR_CNN = {"activation": "relu", "n_characters": 261, "max_characters_per_token": 50}

TEMPLATES = {
    "tiny": {
        "lstm": dict(_LSTM, dim=64, projection_dim=32),
        "char_cnn": dict(_CHAR_CNN, embedding={"dim": 8}, filters=[[1, 16], [2, 16], [3, 32]], n_highway=1),
        "batch_size": 16, "unroll_steps": 10, "n_negative_samples_batch": 256, "dropout": 0.1,
        "learning_rate": 0.2, "all_clip_norm_val": 10.0, "n_epochs": 1, "seed": 0,
    },
    "default": {
        "lstm": dict(_LSTM, dim=256, projection_dim=128),
        "char_cnn": dict(_CHAR_CNN, embedding={"dim": 16},
                         filters=[[1, 32], [2, 32], [3, 64], [4, 128], [5, 128]], n_highway=1),
        "batch_size": 64, "unroll_steps": 20, "n_negative_samples_batch": 1024, "dropout": 0.1,
        "learning_rate": 0.2, "all_clip_norm_val": 10.0, "n_epochs": 10, "seed": 0,
    },
    "original": {
        "lstm": dict(_LSTM, dim=4096, projection_dim=512),
        "char_cnn": dict(_CHAR_CNN, embedding={"dim": 16},
                         filters=[[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]],
                         n_highway=2),
        "batch_size": 128, "unroll_steps": 20, "n_negative_samples_batch": 8192, "dropout": 0.1,
        "learning_rate": 0.2, "all_clip_norm_val": 10.0, "n_epochs": 10, "seed": 0,
    },
}


# The template's former name, which the released model "small" (2 x 1024 cells) also has.
DEPRECATED_SIZES = {"small": "default"}


def training_template(size="default"):
    """A copy of the training options template `size` ("tiny", "default" or "original")."""
    if size in DEPRECATED_SIZES:
        warnings.warn(f"the template size {size!r} is deprecated: it is the bundled model's size, now named "
                      f"{DEPRECATED_SIZES[size]!r} (the released model {size!r} is 2 x 1024 cells)",
                      DeprecationWarning, stacklevel=2)
        size = DEPRECATED_SIZES[size]
    if size not in TEMPLATES:
        raise ValueError(f"size: expected one of {sorted(TEMPLATES)}, found {size!r}")
    return copy.deepcopy(TEMPLATES[size])


def write_training_template(options_file, size="default"):
    """Write the template `size` to `options_file` (atomically)."""
    save_options(training_template(size), options_file)
