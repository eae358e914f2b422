"""The original weight file layout mapped onto the biLM's variables: one line per dataset.

`weight_layout(backbone)` lists, for every dataset of a bilm-tf / AllenNLP
weights file, the dataset name, the variables it fills and the transform
between the two. `load_weights` and `save_weights` both read this one table,
so loading and saving can never disagree. Values are never changed, only
sliced, stacked and reshaped: a file read and written back is identical bit
for bit. The file itself is read and written by `elmo_keras.io.hdf5`, which
knows datasets, not layers.

Example:

>>> from elmo_keras.models.elmo_backbone import ElmoBackbone
>>> opts = {"lstm": {"dim": 8, "projection_dim": 4, "n_layers": 1},
...         "char_cnn": {"embedding": {"dim": 4}, "filters": [[1, 4]], "n_highway": 1}}
>>> [row.name for row in weight_layout(ElmoBackbone.from_options(opts))][:4]
['char_embed', 'CNN/W_cnn_0', 'CNN/b_cnn_0', 'CNN_high_0/W_carry']
"""

import collections

import numpy as np

from elmo_keras.io.hdf5 import LSTM_CELL_PREFIX, read_weight_arrays, write_weight_arrays

# A dataset of the file: `to_file(values)` builds it from the variables'
# values ({variable path: array}); `from_file(values, array)` writes it into them.
LayoutRow = collections.namedtuple("LayoutRow", ["name", "variables", "to_file", "from_file"])


def _whole(variable, file_shape=None):
    """The dataset is the variable, reshaped to `file_shape` (default: the same shape)."""
    path, shape = variable.path, tuple(variable.shape)

    def to_file(values):
        return values[path].reshape(file_shape or shape)

    def from_file(values, array):
        values[path] = array.reshape(shape)

    return (variable,), to_file, from_file


def _direction(variable, d):
    """The dataset is direction `d` of a variable stacked over (forward, backward)."""
    path = variable.path

    def to_file(values):
        return values[path][d]

    def from_file(values, array):
        values[path][d] = array

    return (variable,), to_file, from_file


def _input_and_recurrent(kernel, recurrent_kernel, d):
    """The dataset `W_0` is [input kernel; recurrent kernel] of direction `d`, stacked on axis 0."""
    n_in = kernel.shape[1]

    def to_file(values):
        return np.concatenate([values[kernel.path][d], values[recurrent_kernel.path][d]], axis=0)

    def from_file(values, array):
        values[kernel.path][d] = array[:n_in]
        values[recurrent_kernel.path][d] = array[n_in:]

    return (kernel, recurrent_kernel), to_file, from_file


def weight_layout(backbone):
    """The rows `(name, variables, to_file, from_file)` of a biLM's weight file, in file order."""
    cnn, lstm = backbone.get_layer("char_cnn"), backbone.get_layer("bilstm")
    rows = [("char_embed", *_whole(cnn.char_embed))]  # 261 character codes; id 0 (padding) is not stored
    for i, (kernel, bias) in enumerate(zip(cnn.conv_kernels, cnn.conv_biases)):
        rows.append((f"CNN/W_cnn_{i}", *_whole(kernel, (1,) + tuple(kernel.shape))))  # bilm-tf's conv2d axis
        rows.append((f"CNN/b_cnn_{i}", *_whole(bias)))
    for k, highway in enumerate(cnn.highways):
        rows.append((f"CNN_high_{k}/W_carry", *_whole(highway.carry_kernel)))
        rows.append((f"CNN_high_{k}/b_carry", *_whole(highway.carry_bias)))
        rows.append((f"CNN_high_{k}/W_transform", *_whole(highway.transform_kernel)))
        rows.append((f"CNN_high_{k}/b_transform", *_whole(highway.transform_bias)))
    if cnn.word_dim:  # ELMoForManyLangs' word embedding; id 0 (padding) is not stored
        rows.append(("word_embed", *_whole(cnn.word_embed)))
    if cnn.use_projection:  # with a word embedding its input rows are [word ; highway]
        rows.append(("CNN_proj/W_proj", *_whole(cnn.projection_kernel)))
        rows.append(("CNN_proj/b_proj", *_whole(cnn.projection_bias)))
    for d in range(2):  # RNN_0 forward, RNN_1 backward
        for layer in range(lstm.n_layers):
            cell = LSTM_CELL_PREFIX.format(d=d, l=layer)
            rows.append((cell + "W_0", *_input_and_recurrent(lstm.kernels[layer], lstm.recurrent_kernels[layer],
                                                             d)))
            rows.append((cell + "B", *_direction(lstm.biases[layer], d)))
            rows.append((cell + "W_P_0", *_direction(lstm.projections[layer], d)))
    return [LayoutRow(*row) for row in rows]


def _values(layout):
    """Copies of the current values of every variable the layout names, by path."""
    return {v.path: np.array(v.numpy(), dtype=np.float32) for row in layout for v in row.variables}


def load_weights(backbone, weight_file):
    """Assign the datasets of an original weights file to a biLM (`ElmoBackbone` or a model with its layers).

    Every dataset is read and checked (`elmo_keras.io.hdf5.read_weight_arrays`)
    before anything is assigned, so a bad file leaves the model as it was and
    raises `WeightFileError` naming the file and, where one dataset is at
    fault, that dataset with its expected shape. Damage that falls only inside
    the stored numbers (not the file's structure) can leave finite values and
    then loads without an error: the format has no checksums.
    """
    layout = weight_layout(backbone)
    values = _values(layout)
    shapes = {row.name: row.to_file(values).shape for row in layout}
    arrays = read_weight_arrays(weight_file, shapes)
    for row in layout:
        row.from_file(values, arrays[row.name])
    for row in layout:
        for variable in row.variables:
            variable.assign(values[variable.path])


def save_weights(backbone, weight_file):
    """Write a biLM's weights in the original hdf5 layout, atomically."""
    layout = weight_layout(backbone)
    values = _values(layout)
    write_weight_arrays(weight_file, {row.name: row.to_file(values) for row in layout})
