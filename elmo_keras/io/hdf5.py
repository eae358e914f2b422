"""Weights in the original hdf5 layout (bilm-tf `dump_weights`, AllenNLP).

Each entry below is one variable: the dataset name in the file, the Keras
variable, and the reshape between the two. Values are never changed, so a
file read and written back is identical bit for bit.

Example:

>>> from elmo_keras.models.bilm import build_bilm
>>> opts = {"lstm": {"dim": 8, "projection_dim": 4, "n_layers": 1},
...         "char_cnn": {"embedding": {"dim": 4}, "filters": [[1, 4]], "n_highway": 1}}
>>> [name for name, _, _ in weight_map(build_bilm(opts))][:3]
['char_embed', 'CNN/W_cnn_0', 'CNN/b_cnn_0']
"""

import os

import h5py
import numpy as np

from elmo_keras.io.atomic import atomic_path

_CELL = "RNN_{d}/RNN/MultiRNNCell/Cell{l}/LSTMCell/"


class WeightFileError(ValueError):
    """A weights file is missing, truncated or does not match the options."""


def weight_map(model):
    """List `(dataset name, variable, file shape)` for the char-CNN of a biLM.

    The LSTM arrays, which are split and stacked differently in the file,
    are listed by `_lstm_arrays`.
    """
    cnn = model.get_layer("char_cnn")
    entries = [("char_embed", cnn.char_embed, tuple(cnn.char_embed.shape))]
    for i, (kernel, bias) in enumerate(zip(cnn.conv_kernels, cnn.conv_biases)):
        entries.append((f"CNN/W_cnn_{i}", kernel, (1,) + tuple(kernel.shape)))
        entries.append((f"CNN/b_cnn_{i}", bias, tuple(bias.shape)))
    for k, highway in enumerate(cnn.highways):
        entries.append((f"CNN_high_{k}/W_carry", highway.carry_kernel, tuple(highway.carry_kernel.shape)))
        entries.append((f"CNN_high_{k}/b_carry", highway.carry_bias, tuple(highway.carry_bias.shape)))
        entries.append((f"CNN_high_{k}/W_transform", highway.transform_kernel,
                        tuple(highway.transform_kernel.shape)))
        entries.append((f"CNN_high_{k}/b_transform", highway.transform_bias,
                        tuple(highway.transform_bias.shape)))
    if cnn.use_projection:
        entries.append(("CNN_proj/W_proj", cnn.projection_kernel, tuple(cnn.projection_kernel.shape)))
        entries.append(("CNN_proj/b_proj", cnn.projection_bias, tuple(cnn.projection_bias.shape)))
    return entries


def expected_weight_shapes(options):
    """Dataset name -> shape that a weights file for `options` must hold."""
    cnn, lstm = options["char_cnn"], options["lstm"]
    emb, proj, dim = cnn["embedding"]["dim"], lstm["projection_dim"], lstm["dim"]
    n_filters = sum(n for _, n in cnn["filters"])
    shapes = {"char_embed": (261, emb)}  # one row per raw character code, no padding row
    for i, (width, num) in enumerate(cnn["filters"]):
        shapes[f"CNN/W_cnn_{i}"] = (1, width, emb, num)
        shapes[f"CNN/b_cnn_{i}"] = (num,)
    for k in range(cnn["n_highway"]):
        for kind in ("carry", "transform"):
            shapes[f"CNN_high_{k}/W_{kind}"] = (n_filters, n_filters)
            shapes[f"CNN_high_{k}/b_{kind}"] = (n_filters,)
    if n_filters != proj:
        shapes["CNN_proj/W_proj"] = (n_filters, proj)
        shapes["CNN_proj/b_proj"] = (proj,)
    for d in range(2):
        for layer in range(lstm["n_layers"]):
            prefix = _CELL.format(d=d, l=layer)
            shapes[prefix + "W_0"] = (2 * proj, 4 * dim)
            shapes[prefix + "B"] = (4 * dim,)
            shapes[prefix + "W_P_0"] = (dim, proj)
    return shapes


def _lstm_arrays(lstm):
    """Yield `(dataset name, getter, setter, file shape)` for every LSTM array.

    The file keeps one `W_0` of shape (input + projection, 4 * units) per
    cell; the Keras layer keeps input and recurrent kernels apart, stacked
    over directions.
    """
    for layer in range(lstm.n_layers):
        kernel, recurrent = lstm.kernels[layer], lstm.recurrent_kernels[layer]
        bias, projection = lstm.biases[layer], lstm.projections[layer]
        n_in = kernel.shape[1]
        for d in range(2):
            prefix = _CELL.format(d=d, l=layer)
            yield (prefix + "W_0", (kernel, recurrent, d, n_in),
                   (n_in + recurrent.shape[1], kernel.shape[2]))
            yield prefix + "B", (bias, d), (bias.shape[1],)
            yield prefix + "W_P_0", (projection, d), tuple(projection.shape[1:])


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


def read_weight_arrays(model, weight_file):
    """Read and check every dataset a biLM model needs; assign nothing.

    Returns `{dataset name: float32 array}` in the file's shapes. Raises
    `WeightFileError` (naming the file, and the dataset with its expected
    shape where one is at fault) on any failure: missing or unreadable file,
    damaged hdf5 structure, missing dataset, wrong shape or dtype, NaN/inf.
    """
    wanted = [(name, shape) for name, _, shape in weight_map(model)]
    wanted += [(name, shape) for name, _, shape in _lstm_arrays(model.get_layer("bilstm"))]
    f = _open(weight_file, "r")
    try:
        return {name: _read_dataset(f, name, shape, weight_file) for name, shape in wanted}
    finally:
        try:
            f.close()
        except _H5_ERRORS:  # closing a damaged file can fail too; the data is read or the error raised
            pass


def load_weights(model, weight_file):
    """Assign the datasets of an original weights file to a biLM model.

    Every dataset is read and checked before anything is assigned, so a bad
    file leaves the model as it was. Any failure raises `WeightFileError`
    naming the file and, where one dataset is at fault, that dataset with
    its expected shape and dtype (float32): a missing or truncated file,
    damaged hdf5 structure (anything h5py or the OS raises), a missing
    dataset, a shape that does not match the options, a non-float dtype,
    or NaN/inf values. Damage that falls only inside the stored numbers
    (not the file's structure) can leave finite values and then loads
    without an error: the format has no checksums.
    """
    lstm = model.get_layer("bilstm")
    arrays = read_weight_arrays(model, weight_file)
    for name, variable, _ in weight_map(model):
        variable.assign(arrays[name].reshape(variable.shape))
    staged = {id(v): np.array(v.numpy()) for v in lstm.kernels + lstm.recurrent_kernels
              + lstm.biases + lstm.projections}
    for name, target, _ in _lstm_arrays(lstm):
        value = arrays[name]
        if len(target) == 4:
            kernel, recurrent, d, n_in = target
            staged[id(kernel)][d] = value[:n_in]
            staged[id(recurrent)][d] = value[n_in:]
        else:
            variable, d = target
            staged[id(variable)][d] = value
    for v in lstm.kernels + lstm.recurrent_kernels + lstm.biases + lstm.projections:
        v.assign(staged[id(v)])


def save_weights(model, weight_file):
    """Write a biLM model's weights in the original hdf5 layout, atomically."""
    lstm = model.get_layer("bilstm")
    with atomic_path(weight_file) as tmp:
        with _open(tmp, "w") as f:
            for name, variable, shape in weight_map(model):
                f.create_dataset(name, data=np.asarray(variable.numpy(), dtype=np.float32).reshape(shape))
            for name, target, shape in _lstm_arrays(lstm):
                if len(target) == 4:
                    kernel, recurrent, d, _ = target
                    value = np.concatenate([kernel.numpy()[d], recurrent.numpy()[d]], axis=0)
                else:
                    variable, d = target
                    value = variable.numpy()[d]
                f.create_dataset(name, data=np.asarray(value, dtype=np.float32))
