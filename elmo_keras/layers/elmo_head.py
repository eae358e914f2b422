"""`ElmoHead`: what a task reads from the biLM, the one head of `Elmo`, `ElmoTextEmbedder` and the SavedModel."""

import keras
from keras import ops

from elmo_keras.arguments import check_fraction, check_positive_int
from elmo_keras.layers.scalar_mix import ScalarMix


def remove_sentence_boundaries(x, mask):
    """Drop `<S>` and `</S>` from (batch, time, ...) and its (batch, time) mask.

    Rows are right-padded, so dropping the first position and masking out
    the row's last real position (now `</S>`) is enough.
    """
    new_mask = mask[:, 2:]
    x = x[:, 1:-1] * ops.cast(new_mask, x.dtype)[..., None]
    return x, new_mask


def masked_mean(x, mask):
    """Mean of x (batch, time, dim) over the True positions of mask (batch, time); 0 if none."""
    count = ops.sum(ops.cast(mask, x.dtype), axis=1)[:, None]
    return ops.sum(x * ops.cast(mask, x.dtype)[..., None], axis=1) / ops.maximum(count, 1.0)


@keras.saving.register_keras_serializable(package="elmo_keras")
class ElmoHead(keras.layers.Layer):
    """Mixes of the biLM's layers, and the outputs that ELMo's users read.

    Takes the dict an `ElmoBackbone` returns and gives what a task uses:
    `num_output_representations` `ScalarMix`es of all layers, the gradient
    into the biLM cut unless asked for, sentence boundaries removed unless
    kept, 0 at padded positions, dropout while training, and the masked mean
    of the first mix. `Elmo`, `ElmoTextEmbedder` and the SavedModel export
    are this layer on a backbone.

    Args:
        num_layers: int. Layers of the backbone's `activations`
            (`n_layers + 1`).
        num_output_representations: int. Independent mixes.
        dropout: float. Dropout on each mix while training.
        keep_sentence_boundaries: bool. Keep the `<S>`/`</S>` positions.
        stop_gradient: bool. Cut the gradient into the biLM (a frozen biLM:
            no gradient is computed through the LSTM loop, which XLA cannot
            differentiate and which would cost memory).
        do_layer_norm: bool. Masked layer normalisation inside the mixes.
        scalar_mix_weights: list of `num_layers` floats or None. Start
            values of every mix's weights before the softmax (default 0).
        trainable_mix: bool. False fixes the mix weights and scale.
        l2_coef: float. L2 on the mix weights.
        mix_names: list of `num_output_representations` str or None. The
            mixes' layer names (default `scalar_mix_<k>`).
        hub_outputs: bool. Also return TF Hub ELMo's `word_emb`,
            `lstm_outputs1` ... `lstm_outputs<n_layers>` and `sequence_len`.
        **kwargs: standard layer arguments.

    Call arguments:
        bilm_outputs: dict with `activations` (batch, num_layers, time,
            width), `mask` bool (batch, time) and, for `hub_outputs`,
            `token_embedding` (batch, time, width / 2), as `ElmoBackbone`
            returns them.

    Returns a dict: `elmo_representations`, a list of (batch, time', width)
    mixes; `elmo`, the first of them; `default` (batch, width), its mean
    over the real tokens (0 for an empty sentence); `mask` bool (batch,
    time'); and with `hub_outputs` the three above (`sequence_len` int32
    (batch,)). time' is time - 2 unless boundaries are kept.

    Masking: every output with a time axis carries `mask` as its Keras mask,
    so mask-aware layers after it skip the padding. Masks on the inputs are
    not read: padding is `bilm_outputs["mask"]`.

    Example:

    >>> import numpy as np
    >>> head = ElmoHead(3, num_output_representations=2)
    >>> bilm_outputs = {"activations": np.ones((1, 3, 4, 8), "float32"),
    ...                 "mask": np.array([[True, True, True, False]])}
    >>> out = head(bilm_outputs)
    >>> len(out["elmo_representations"]), tuple(out["elmo"].shape), np.asarray(out["mask"]).tolist()
    (2, (1, 2, 8), [[True, False]])
    """

    def __init__(self, num_layers, num_output_representations=1, dropout=0.0, keep_sentence_boundaries=False,
                 stop_gradient=True, do_layer_norm=False, scalar_mix_weights=None, trainable_mix=True,
                 l2_coef=0.0, mix_names=None, hub_outputs=False, **kwargs):
        super().__init__(**kwargs)
        check_positive_int(num_layers, "num_layers")
        check_positive_int(num_output_representations, "num_output_representations")
        check_fraction(dropout, "dropout")
        if isinstance(l2_coef, bool) or not isinstance(l2_coef, (int, float)) or not l2_coef >= 0:
            raise ValueError(f"l2_coef: expected a number >= 0, found {l2_coef!r}")
        if scalar_mix_weights is not None and len(scalar_mix_weights) != num_layers:
            raise ValueError(f"scalar_mix_weights: expected {num_layers} numbers (n_layers + 1), found "
                             f"{len(scalar_mix_weights)}")
        if mix_names is None:
            mix_names = [f"scalar_mix_{k}" for k in range(num_output_representations)]
        if len(mix_names) != num_output_representations:
            raise ValueError(f"mix_names: expected {num_output_representations} names "
                             f"(num_output_representations), found {len(mix_names)}")
        self.num_layers = num_layers
        self.num_output_representations = num_output_representations
        self.dropout = dropout
        self.keep_sentence_boundaries = keep_sentence_boundaries
        self.stop_gradient = stop_gradient
        self.do_layer_norm = do_layer_norm
        self.scalar_mix_weights = list(scalar_mix_weights) if scalar_mix_weights is not None else None
        self.trainable_mix = trainable_mix
        self.l2_coef = l2_coef
        self.mix_names = list(mix_names)
        self.hub_outputs = hub_outputs
        self.scalar_mixes = [
            ScalarMix(num_layers, do_layer_norm=do_layer_norm, initial_weights=self.scalar_mix_weights,
                      trainable_weights_=trainable_mix, l2_coef=l2_coef, name=name)
            for name in self.mix_names]
        self.dropout_layer = keras.layers.Dropout(dropout)
        self.supports_masking = True

    def build(self, input_shape):
        width = input_shape["activations"][-1] if isinstance(input_shape, dict) else None
        for mix in self.scalar_mixes:
            mix.build((None, self.num_layers, None, width))

    def _positions(self, x, mask):
        """x (batch, time, ...) at the positions the head returns, 0 at padding."""
        if self.keep_sentence_boundaries:
            return x * ops.cast(mask, x.dtype)[..., None]
        return remove_sentence_boundaries(x, mask)[0]

    def call(self, bilm_outputs, training=None):
        activations, mask = bilm_outputs["activations"], bilm_outputs["mask"]
        if self.stop_gradient:
            activations = ops.stop_gradient(activations)
        representations = [self.dropout_layer(self._positions(mix(activations, mask=mask), mask), training=training)
                           for mix in self.scalar_mixes]
        out_mask = mask if self.keep_sentence_boundaries else mask[:, 2:]
        outputs = {"elmo_representations": representations, "elmo": representations[0],
                   "default": masked_mean(representations[0], out_mask), "mask": out_mask}
        if self.hub_outputs:
            token_embedding = bilm_outputs["token_embedding"]
            if self.stop_gradient:
                token_embedding = ops.stop_gradient(token_embedding)
            outputs["word_emb"] = self._positions(token_embedding, mask)
            for k in range(1, self.num_layers):
                outputs[f"lstm_outputs{k}"] = self._positions(activations[:, k], mask)
            outputs["sequence_len"] = ops.sum(ops.cast(out_mask, "int32"), axis=1)
        return outputs

    def compute_mask(self, bilm_outputs, mask=None):
        # The input masks are read from bilm_outputs["mask"]; an output with
        # a time axis carries the mask of its positions.
        out_mask = bilm_outputs["mask"] if self.keep_sentence_boundaries else bilm_outputs["mask"][:, 2:]
        masks = {"elmo_representations": [out_mask] * self.num_output_representations, "elmo": out_mask,
                 "default": None, "mask": None}
        if self.hub_outputs:
            masks.update({f"lstm_outputs{k}": out_mask for k in range(1, self.num_layers)})
            masks.update({"word_emb": out_mask, "sequence_len": None})
        return masks

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_layers": self.num_layers,
            "num_output_representations": self.num_output_representations,
            "dropout": self.dropout,
            "keep_sentence_boundaries": self.keep_sentence_boundaries,
            "stop_gradient": self.stop_gradient,
            "do_layer_norm": self.do_layer_norm,
            "scalar_mix_weights": self.scalar_mix_weights,
            "trainable_mix": self.trainable_mix,
            "l2_coef": self.l2_coef,
            "mix_names": self.mix_names,
            "hub_outputs": self.hub_outputs,
        })
        return config
