"""ScalarMix: the task-specific weighting of the biLM layers."""

import keras
from keras import ops


def _masked_layer_norm(layer, mask):
    # Not a per-token LayerNorm: one mean and variance over all real-token
    # values of the whole batch tensor, as bilm-tf and AllenNLP do.
    mask = ops.cast(mask, layer.dtype)[..., None]
    count = ops.maximum(ops.sum(mask) * ops.cast(ops.shape(layer)[-1], layer.dtype), 1.0)
    mean = ops.sum(layer * mask) / count
    variance = ops.sum(ops.square((layer - mean) * mask)) / count
    return (layer - mean) / ops.sqrt(variance + 1e-12) * mask


@keras.saving.register_keras_serializable(package="elmo_keras")
class ScalarMix(keras.layers.Layer):
    """`gamma * sum_k softmax(w)_k * layer_k` over the biLM layers.

    Args:
        num_layers: int. Number of layers mixed (biLM `n_layers + 1`).
        do_layer_norm: bool. Normalise each layer over its real tokens first.
        initial_weights: list of floats or None. Start values of `w`
            (default zeros: equal weights).
        initial_scale: float. Start value of `gamma`.
        trainable_weights_: bool. False fixes `w` and `gamma`.
        l2_coef: float. L2 penalty `l2_coef * sum(w ** 2)` added as a loss
            (bilm-tf suggests 0.001).
        **kwargs: standard layer arguments.

    Call arguments:
        activations: float (batch, num_layers, time, dim).
        mask: bool (batch, time); needed for `do_layer_norm`.

    Returns (batch, time, dim).

    Example:

    >>> import numpy as np
    >>> tuple(ScalarMix(3)(np.ones((2, 3, 4, 5), "float32")).shape)
    (2, 4, 5)
    """

    def __init__(self, num_layers, do_layer_norm=False, initial_weights=None, initial_scale=1.0,
                 trainable_weights_=True, l2_coef=0.0, **kwargs):
        super().__init__(**kwargs)
        if initial_weights is not None and len(initial_weights) != num_layers:
            raise ValueError(f"ScalarMix: {len(initial_weights)} initial_weights for {num_layers} layers")
        self.num_layers = num_layers
        self.do_layer_norm = do_layer_norm
        self.initial_weights = list(initial_weights) if initial_weights is not None else None
        self.initial_scale = initial_scale
        self.trainable_weights_ = trainable_weights_
        self.l2_coef = l2_coef
        self.supports_masking = True

    def build(self, input_shape):
        init = (keras.initializers.Constant(self.initial_weights) if self.initial_weights is not None
                else "zeros")
        self.layer_weights = self.add_weight(
            name="layer_weights", shape=(self.num_layers,), initializer=init,
            trainable=self.trainable_weights_,
            regularizer=keras.regularizers.L2(self.l2_coef) if self.l2_coef else None)
        self.scale = self.add_weight(
            name="scale", shape=(), initializer=keras.initializers.Constant(self.initial_scale),
            trainable=self.trainable_weights_)

    def call(self, activations, mask=None):
        if self.do_layer_norm:
            if mask is None:
                mask = ops.ones(ops.shape(activations)[:1] + ops.shape(activations)[2:3], dtype="bool")
            activations = ops.stack(
                [_masked_layer_norm(activations[:, k], mask) for k in range(self.num_layers)], axis=1)
        weights = ops.cast(ops.softmax(self.layer_weights), activations.dtype)
        mixed = ops.einsum("k,bktd->btd", weights, activations)
        return ops.cast(self.scale, activations.dtype) * mixed

    def compute_mask(self, activations, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(input_shape[2:])

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_layers": self.num_layers,
            "do_layer_norm": self.do_layer_norm,
            "initial_weights": self.initial_weights,
            "initial_scale": self.initial_scale,
            "trainable_weights_": self.trainable_weights_,
            "l2_coef": self.l2_coef,
        })
        return config
