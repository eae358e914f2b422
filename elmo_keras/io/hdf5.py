"""Weight files in the original hdf5 layout (bilm-tf `dump_weights`, AllenNLP), as named arrays.

This module knows datasets, not layers: `read_weight_arrays` turns a file
into checked `{dataset name: float32 array}`, `write_weight_arrays` writes
such a dict back atomically, and `expected_weight_shapes` says which datasets
an options file implies. `elmo_keras.models.weight_layout` maps them onto a
model's variables.

Example:

>>> opts = {"lstm": {"dim": 8, "projection_dim": 4, "n_layers": 1},
...         "char_cnn": {"embedding": {"dim": 4}, "filters": [[1, 4]], "n_highway": 1}}
>>> sorted(expected_weight_shapes(opts))[:3]
['CNN/W_cnn_0', 'CNN/b_cnn_0', 'CNN_high_0/W_carry']
"""

import os

import h5py
import numpy as np

from elmo_keras.io.atomic import atomic_path
from elmo_keras.io.options import ElmoOptions
from elmo_keras.preprocessing.char_ids import N_CHARACTER_CODES

# The prefix of cell `l` of direction `d` (0 forward, 1 backward), as bilm-tf names it.
LSTM_CELL_PREFIX = "RNN_{d}/RNN/MultiRNNCell/Cell{l}/LSTMCell/"


class WeightFileError(ValueError):
    """A weights file is missing, truncated or does not match the options."""


def expected_weight_shapes(options):
    """Dataset name -> shape that a weights file for `options` must hold."""
    options = ElmoOptions.from_dict(options)
    cnn, lstm = options.char_cnn, options.lstm
    emb, proj, dim = cnn.embedding_dim, lstm.projection_dim, lstm.dim
    n_filters = sum(n for _, n in cnn.filters)
    shapes = {"char_embed": (N_CHARACTER_CODES, emb)}  # one row per raw character code, no padding row
    for i, (width, num) in enumerate(cnn.filters):
        shapes[f"CNN/W_cnn_{i}"] = (1, width, emb, num)
        shapes[f"CNN/b_cnn_{i}"] = (num,)
    for k in range(cnn.n_highway):
        for kind in ("carry", "transform"):
            shapes[f"CNN_high_{k}/W_{kind}"] = (n_filters, n_filters)
            shapes[f"CNN_high_{k}/b_{kind}"] = (n_filters,)
    if n_filters != proj:
        shapes["CNN_proj/W_proj"] = (n_filters, proj)
        shapes["CNN_proj/b_proj"] = (proj,)
    for d in range(2):
        for layer in range(lstm.n_layers):
            prefix = LSTM_CELL_PREFIX.format(d=d, l=layer)
            shapes[prefix + "W_0"] = (2 * proj, 4 * dim)
            shapes[prefix + "B"] = (4 * dim,)
            shapes[prefix + "W_P_0"] = (dim, proj)
    return shapes


# What h5py raises on a damaged or truncated file: OSError for most I/O,
# RuntimeError for broken links and B-tree nodes ("addr overflow"), KeyError
# and ValueError for broken object headers, TypeError for unreadable types.
_H5_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, AttributeError, IndexError,
              MemoryError, OverflowError, SystemError)


def _read_dataset(f, name, shape, weight_file):
    """The float32 values of dataset `name`, checked against `shape`.

    Every failure of h5py (a damaged file can fail at any lookup) and every
    wrong kind, dtype, shape or non-finite value becomes one
    `WeightFileError` naming the file, the dataset and what was expected.
    """
    expected = f"a float32 array of shape {tuple(shape)}"
    where = f"{weight_file}: dataset '{name}'"
    try:
        found = name in f
    except _H5_ERRORS as e:
        raise WeightFileError(f"{where} cannot be looked up (damaged or truncated file?; expected "
                              f"{expected}): {type(e).__name__}: {e}") from e
    if not found:
        raise WeightFileError(f"{weight_file}: dataset '{name}' not found "
                              f"(expected shape {tuple(shape)}); is this the weights file for these options?")
    try:
        dataset = f[name]
        if not isinstance(dataset, h5py.Dataset):
            raise WeightFileError(f"{where} is a {type(dataset).__name__}, expected {expected}")
        found_shape, found_dtype = tuple(dataset.shape), dataset.dtype
    except WeightFileError:
        raise
    except _H5_ERRORS as e:
        raise WeightFileError(f"{where} cannot be opened (damaged or truncated file?; expected "
                              f"{expected}): {type(e).__name__}: {e}") from e
    if found_shape != tuple(shape):
        raise WeightFileError(f"{weight_file}: dataset '{name}' has shape {found_shape}, "
                              f"expected {tuple(shape)} from the options")
    # The format is float32; other IEEE floats convert exactly or by rounding.
    if found_dtype.kind != "f":
        raise WeightFileError(f"{where} has dtype {found_dtype}, expected float32 (shape {tuple(shape)})")
    try:
        value = np.asarray(dataset[...], dtype=np.float32)
    except _H5_ERRORS as e:
        raise WeightFileError(f"{where} cannot be read (damaged or truncated file?; expected "
                              f"{expected}): {type(e).__name__}: {e}") from e
    if value.shape != tuple(shape):
        raise WeightFileError(f"{where} read as shape {value.shape}, expected {tuple(shape)}")
    if not np.all(np.isfinite(value)):
        bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
        raise WeightFileError(f"{where} holds {bad} non-finite values (NaN or inf; damaged file?), "
                              f"expected finite float32 values")
    return value


def _open(weight_file, mode):
    if mode == "r" and not os.path.exists(weight_file):
        raise WeightFileError(f"{weight_file}: weights file not found")
    try:
        return h5py.File(weight_file, mode)
    except _H5_ERRORS as e:
        raise WeightFileError(f"{weight_file}: not a readable hdf5 weights file (truncated or damaged?): "
                              f"{type(e).__name__}: {e}") from e


def read_weight_arrays(weight_file, shapes):
    """Read and check the datasets `shapes` names ({dataset name: shape}); return float32 arrays.

    Raises `WeightFileError` (naming the file, and the dataset with its
    expected shape where one is at fault) on any failure: missing or
    unreadable file, damaged hdf5 structure, missing dataset, wrong shape or
    dtype, NaN/inf. Datasets the file holds beyond `shapes` are ignored.
    """
    f = _open(weight_file, "r")
    try:
        return {name: _read_dataset(f, name, shape, weight_file) for name, shape in shapes.items()}
    finally:
        try:
            f.close()
        except _H5_ERRORS:  # closing a damaged file can fail too; the data is read or the error raised
            pass


def write_weight_arrays(weight_file, arrays):
    """Write `{dataset name: array}` as float32 datasets, atomically (the file appears complete or not at all)."""
    with atomic_path(weight_file) as tmp:
        with _open(tmp, "w") as f:
            for name, value in arrays.items():
                f.create_dataset(name, data=np.asarray(value, dtype=np.float32))
