"""The second mix: all biLM components concatenated, then projected."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="elmo_keras")
class ConcatProjectionMix(keras.layers.Layer):
    """Concatenate the char-CNN vector and every forward and backward LSTM
    output, and multiply by a trainable matrix to `output_dim` values.

    This is the way ELMo is often described as "a learned linear combination
    projected to 512"; unlike `ScalarMix` it can weight each unit.

    Args:
        output_dim: int. Size of the result (512 in that description).
        use_bias: bool. Add a trainable bias.
        kernel_initializer: initializer of the projection matrix.
        **kwargs: standard layer arguments.

    Call arguments:
        activations: float (batch, num_layers, time, 2 * projection_dim) as the
            biLM gives them; layer 0 holds the char-CNN vector twice, and only
            one copy is used.
        mask: bool (batch, time) or None. Padded positions give zeros.

    Returns (batch, time, output_dim).

    Example:

    >>> import numpy as np
    >>> tuple(ConcatProjectionMix(6)(np.ones((2, 3, 4, 8), "float32")).shape)
    (2, 4, 6)
    """

    def __init__(self, output_dim=512, use_bias=False, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.output_dim = output_dim
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        num_layers, width = input_shape[1], input_shape[-1]
        in_dim = width // 2 + (num_layers - 1) * width
        self.kernel = self.add_weight(name="kernel", shape=(in_dim, self.output_dim),
                                      initializer=self.kernel_initializer)
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.output_dim,), initializer="zeros")

    def call(self, activations, mask=None):
        num_layers, width = activations.shape[1], activations.shape[-1]
        parts = [activations[:, 0, :, : width // 2]] + [activations[:, k] for k in range(1, num_layers)]
        y = ops.matmul(ops.concatenate(parts, axis=-1), self.kernel)
        if self.use_bias:
            y = y + self.bias
        if mask is not None:
            y = y * ops.cast(mask, y.dtype)[..., None]
        return y

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update({
            "output_dim": self.output_dim,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        })
        return config
