"""The biLM sizes the benchmarks run, as original `options.json` dicts.

- `original`: the released "Original" ELMo (Peters et al., 2018): 2 layers of
  4096 cells projected to 512, 2048 char-CNN filters, 2 highway layers.
- `small`: the released "Small" ELMo: 2 layers of 1024 cells projected to 128,
  the same filters, 1 highway layer.
- `tiny`: a few hundred kilobytes of weights, for smoke runs of the harness.

Weights are random (the benchmarks measure speed, not quality).

Example:

>>> get_options("small")["lstm"]["dim"]
1024
"""

import copy

_FILTERS = [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]]


def _options(dim, projection_dim, n_highway, filters=_FILTERS, n_layers=2):
    return {
        "lstm": {"dim": dim, "projection_dim": projection_dim, "n_layers": n_layers,
                 "cell_clip": 3, "proj_clip": 3, "use_skip_connections": True},
        "char_cnn": {"embedding": {"dim": 16}, "filters": [list(f) for f in filters],
                     "n_highway": n_highway, "activation": "relu", "max_characters_per_token": 50,
                     "n_characters": 262},
    }


CONFIGS = {
    "original": _options(dim=4096, projection_dim=512, n_highway=2),
    "small": _options(dim=1024, projection_dim=128, n_highway=1),
    "tiny": _options(dim=64, projection_dim=16, n_highway=1, filters=[[1, 8], [2, 8], [3, 16]]),
    # The original's cells (4 x 4096 input products a step) with a narrow projection and CNN: what a long
    # line costs in the LSTM's working memory, apart from the output it returns.
    "wide_narrow": _options(dim=4096, projection_dim=64, n_highway=1, filters=[[1, 32], [2, 32]]),
}


def get_options(name):
    """A fresh copy of the options of configuration `name`."""
    if name not in CONFIGS:
        raise ValueError(f"unknown configuration {name!r}; choose one of {sorted(CONFIGS)}")
    return copy.deepcopy(CONFIGS[name])


def write_random_model(name, directory, seed=0):
    """Write `options.json` and `weights.hdf5` of configuration `name` with random weights.

    The weights are the layers' own initial values under `seed` (Glorot for
    kernels, uniform in [-1, 1] for the character embedding, zero biases):
    `elmo_keras.models.bilm_files.save_random_bilm` with no scale.
    Returns `(options_file, weight_file)`.
    """
    from elmo_keras.models.bilm_files import save_random_bilm

    return save_random_bilm(directory, get_options(name), seed=seed)
