"""LSTM cell with a projection, cell clipping and projection clipping."""

import keras
from keras import ops

# TensorFlow's LSTMCell (which wrote every released ELMo file) adds this to the
# forget gate at run time; the files do not contain it.
FORGET_BIAS = 1.0


def lstm_projection_step(gates, c_prev, projection, cell_clip=None, proj_clip=None):
    """One LSTM-with-projection update from precomputed gate pre-activations.

    Args:
        gates: (..., 4 * units) pre-activations in the original block order
            i (input), j (candidate), f (forget), o (output).
        c_prev: (..., units) previous cell state.
        projection: (units, projection_dim) or batched (..., units, projection_dim).
        cell_clip: float or None. Clip of the cell state (the clipped state is
            carried and used for the output).
        proj_clip: float or None. Clip of the projected output (which is also
            the recurrent state).

    Returns `(h, c)`.
    """
    i, j, f, o = ops.split(gates, 4, axis=-1)
    c = ops.sigmoid(f + FORGET_BIAS) * c_prev + ops.sigmoid(i) * ops.tanh(j)
    if cell_clip is not None:
        c = ops.clip(c, -cell_clip, cell_clip)
    h = ops.matmul(ops.sigmoid(o) * ops.tanh(c), projection)
    if proj_clip is not None:
        h = ops.clip(h, -proj_clip, proj_clip)
    return h, c


@keras.saving.register_keras_serializable(package="elmo_keras")
class LSTMCellWithProjection(keras.layers.Layer):
    """An RNN cell for `keras.layers.RNN`: the ELMo LSTM for one direction.

    The state is `[h, c]`: `h` the projected output (projection_dim) and `c`
    the cell (units). `BiLSTM` runs the same arithmetic
    (`lstm_projection_step`) for whole stacks at once; this cell is for
    building single-direction models with the standard Keras RNN machinery.

    Args:
        units: int. Number of LSTM cells (options `lstm.dim`).
        projection_dim: int. Size of the projected output.
        cell_clip: float or None. Clip of the cell state.
        proj_clip: float or None. Clip of the projected output.
        **kwargs: standard layer arguments.

    Example:

    >>> import numpy as np, keras
    >>> rnn = keras.layers.RNN(LSTMCellWithProjection(8, 4, cell_clip=3.0), return_sequences=True)
    >>> tuple(rnn(np.ones((2, 5, 3), "float32")).shape)
    (2, 5, 4)
    """

    def __init__(self, units, projection_dim, cell_clip=None, proj_clip=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.projection_dim = projection_dim
        self.cell_clip = cell_clip
        self.proj_clip = proj_clip
        self.state_size = [projection_dim, units]
        self.output_size = projection_dim

    def build(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], 4 * self.units),
                                      initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel", shape=(self.projection_dim, 4 * self.units), initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(4 * self.units,), initializer="zeros")
        self.projection = self.add_weight(name="projection", shape=(self.units, self.projection_dim),
                                          initializer="glorot_uniform")

    def call(self, inputs, states, training=None):
        h_prev, c_prev = states
        gates = ops.matmul(inputs, self.kernel) + ops.matmul(h_prev, self.recurrent_kernel) + self.bias
        h, c = lstm_projection_step(gates, c_prev, self.projection, self.cell_clip, self.proj_clip)
        return h, [h, c]

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "projection_dim": self.projection_dim,
                       "cell_clip": self.cell_clip, "proj_clip": self.proj_clip})
        return config
