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


def _read_dataset(f, name, shape, weight_file):
    if name not in f:
        raise WeightFileError(f"{weight_file}: dataset '{name}' not found "
                              f"(expected shape {shape}); is this the weights file for these options?")
    dataset = f[name]
    if tuple(dataset.shape) != tuple(shape):
        raise WeightFileError(f"{weight_file}: dataset '{name}' has shape {tuple(dataset.shape)}, "
                              f"expected {tuple(shape)} from the options")
    try:
        return np.asarray(dataset[...], dtype=np.float32)
    except (OSError, KeyError) as e:
        raise WeightFileError(f"{weight_file}: dataset '{name}' cannot be read (truncated file?): {e}") from e


def _open(weight_file, mode):
    if mode == "r" and not os.path.exists(weight_file):
        raise WeightFileError(f"{weight_file}: weights file not found")
    try:
        return h5py.File(weight_file, mode)
    except OSError as e:
        raise WeightFileError(f"{weight_file}: not a readable hdf5 weights file (truncated?): {e}") from e


def load_weights(model, weight_file):
    """Assign the datasets of an original weights file to a biLM model.

    Every dataset is checked against the shape the options give; any
    mismatch raises `WeightFileError` naming the file, dataset and shapes.
    """
    lstm = model.get_layer("bilstm")
    with _open(weight_file, "r") as f:
        for name, variable, shape in weight_map(model):
            variable.assign(_read_dataset(f, name, shape, weight_file).reshape(variable.shape))
        staged = {id(v): np.array(v.numpy()) for v in lstm.kernels + lstm.recurrent_kernels
                  + lstm.biases + lstm.projections}
        for name, target, shape in _lstm_arrays(lstm):
            value = _read_dataset(f, name, shape, weight_file)
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
