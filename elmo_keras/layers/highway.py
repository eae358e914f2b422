"""Highway layer as in bilm-tf's char-CNN."""

import keras
from keras import ops

from elmo_keras.layers.initializers import initializer


@keras.saving.register_keras_serializable(package="elmo_keras")
class Highway(keras.layers.Layer):
    """One highway layer: `y = g * relu(x W_t + b_t) + (1 - g) * x`.

    `g = sigmoid(x W_carry + b_carry)`. As in bilm-tf, the gate named "carry"
    multiplies the transform branch, and the transform is always relu (even
    when the char-CNN activation is tanh).

    Args:
        **kwargs: standard layer arguments.

    Call arguments:
        inputs: float tensor (..., features).

    Example:

    >>> import numpy as np
    >>> tuple(Highway()(np.ones((2, 3), "float32")).shape)
    (2, 3)

    Reference: Srivastava et al., 2015, "Highway Networks".
    """

    def build(self, input_shape):
        dim = input_shape[-1]
        self.carry_kernel = self.add_weight(
            name="carry_kernel", shape=(dim, dim), initializer=initializer("glorot_uniform"))
        self.carry_bias = self.add_weight(name="carry_bias", shape=(dim,), initializer=initializer("zeros"))
        self.transform_kernel = self.add_weight(
            name="transform_kernel", shape=(dim, dim), initializer=initializer("glorot_uniform"))
        self.transform_bias = self.add_weight(name="transform_bias", shape=(dim,), initializer=initializer("zeros"))

    def call(self, inputs):
        gate = ops.sigmoid(ops.matmul(inputs, self.carry_kernel) + self.carry_bias)
        transform = ops.relu(ops.matmul(inputs, self.transform_kernel) + self.transform_bias)
        return gate * transform + (1.0 - gate) * inputs

    def compute_output_shape(self, input_shape):
        return input_shape
