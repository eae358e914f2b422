"""`ElmoHead` against plain numpy: mixes, boundaries, padding, the sentence mean, TF Hub's outputs, gradients."""

import keras
import numpy as np
import pytest

from elmo_keras import ElmoHead
from reference_bilm import float32_tolerance

# Three rows, right-padded: 6 positions (4 tokens), 3 (1 token), 2 (the empty sentence: <S> </S> only).
LENGTHS = [6, 3, 2]
TIME, LAYERS, WIDTH = 6, 3, 8
WEIGHTS = [0.1, -0.3, 0.5]


def _bilm_outputs(seed=0):
    rng = np.random.default_rng(seed)
    mask = np.arange(TIME)[None, :] < np.array(LENGTHS)[:, None]
    activations = rng.normal(size=(len(LENGTHS), LAYERS, TIME, WIDTH)).astype("float32")
    token_embedding = rng.normal(size=(len(LENGTHS), TIME, WIDTH // 2)).astype("float32")
    activations *= mask[:, None, :, None]
    token_embedding *= mask[..., None]
    return {"activations": activations, "token_embedding": token_embedding, "mask": mask}


def _expected(bilm_outputs, dtype, keep_sentence_boundaries=False):
    """The head's outputs in plain numpy, at dtype."""
    activations, mask = bilm_outputs["activations"].astype(dtype), bilm_outputs["mask"]
    w = np.exp(np.array(WEIGHTS, dtype)) / np.exp(np.array(WEIGHTS, dtype)).sum()
    mixed = np.einsum("l,bltd->btd", w, activations)  # the scale starts at 1

    def positions(x):
        out = np.zeros_like(x)
        for row, length in enumerate(LENGTHS):
            if keep_sentence_boundaries:
                out[row, :length] = x[row, :length]
            else:
                out[row, :length - 2] = x[row, 1:length - 1]
        return out[:, :TIME] if keep_sentence_boundaries else out[:, :TIME - 2]

    elmo = positions(mixed)
    count = np.array(LENGTHS) - (0 if keep_sentence_boundaries else 2)
    default = elmo.sum(axis=1) / np.maximum(count, 1)[:, None]
    out = {"elmo": elmo, "default": default, "word_emb": positions(bilm_outputs["token_embedding"].astype(dtype)),
           "sequence_len": count}
    for k in range(1, LAYERS):
        out[f"lstm_outputs{k}"] = positions(activations[:, k])
    out["mask"] = mask if keep_sentence_boundaries else mask[:, 2:]
    return out


@pytest.mark.parametrize("keep_sentence_boundaries", [False, True])
def test_outputs_match_numpy(keep_sentence_boundaries):
    bilm_outputs = _bilm_outputs()
    head = ElmoHead(LAYERS, num_output_representations=2, scalar_mix_weights=WEIGHTS, hub_outputs=True,
                    keep_sentence_boundaries=keep_sentence_boundaries)
    out = {name: keras.ops.convert_to_numpy(value) for name, value in head(bilm_outputs).items()
           if name != "elmo_representations"}
    expected = _expected(bilm_outputs, np.float64, keep_sentence_boundaries)
    expected32 = _expected(bilm_outputs, np.float32, keep_sentence_boundaries)
    assert sorted(out) == sorted(expected)
    for name in ("elmo", "default"):
        atol = float32_tolerance([expected[name]], [expected32[name]])
        np.testing.assert_allclose(out[name], expected[name], rtol=0, atol=atol, err_msg=name)
    # Slices and masking only: the very same float32 values.
    for name in ("word_emb", "lstm_outputs1", "lstm_outputs2", "sequence_len", "mask"):
        np.testing.assert_array_equal(out[name], expected32[name], err_msg=name)
    # Padded positions are exactly 0, and an empty sentence's vector is 0.
    assert not out["elmo"][~out["mask"]].any()
    if not keep_sentence_boundaries:
        assert not out["default"][2].any()


def test_representations_are_independent_mixes_and_dropout_only_while_training():
    bilm_outputs = _bilm_outputs(1)
    head = ElmoHead(LAYERS, num_output_representations=2, dropout=0.5)
    head(bilm_outputs)
    head.scalar_mixes[1].layer_weights.assign([5.0, -5.0, -5.0])
    first, second = (keras.ops.convert_to_numpy(x) for x in head(bilm_outputs)["elmo_representations"])
    assert np.abs(first - second).max() > 0.1
    inference = keras.ops.convert_to_numpy(head(bilm_outputs, training=False)["elmo"])
    np.testing.assert_array_equal(inference, first)
    dropped = keras.ops.convert_to_numpy(head(bilm_outputs, training=True)["elmo"])
    kept = dropped != 0
    assert 0 < kept.sum() < (first != 0).sum()
    np.testing.assert_allclose(dropped[kept], 2 * first[kept], rtol=1e-6)  # inverted dropout scales by 1/(1-p)


def test_only_the_mixes_train_and_fixed_weights_do_not():
    head = ElmoHead(LAYERS, num_output_representations=2, mix_names=["in", "out"], name="head")
    head.build({"activations": (None, LAYERS, None, WIDTH), "mask": (None, None)})
    assert [w.path for w in head.trainable_weights] == ["head/in/layer_weights", "head/in/scale",
                                                        "head/out/layer_weights", "head/out/scale"]
    fixed = ElmoHead(LAYERS, scalar_mix_weights=WEIGHTS, trainable_mix=False)
    fixed.build({"activations": (None, LAYERS, None, WIDTH), "mask": (None, None)})
    assert not fixed.trainable_weights and len(fixed.weights) == 2


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="reads gradients with tf.GradientTape")
@pytest.mark.parametrize("stop_gradient", [True, False])
def test_the_gradient_into_the_bilm_is_cut_unless_asked_for(stop_gradient):
    import tensorflow as tf

    bilm_outputs = _bilm_outputs(2)
    activations = tf.Variable(bilm_outputs["activations"])
    token_embedding = tf.Variable(bilm_outputs["token_embedding"])
    head = ElmoHead(LAYERS, hub_outputs=True, stop_gradient=stop_gradient)
    with tf.GradientTape() as tape:
        out = head({"activations": activations, "token_embedding": token_embedding, "mask": bilm_outputs["mask"]})
        loss = tf.reduce_sum(out["elmo"]) + tf.reduce_sum(out["word_emb"])
    grads = tape.gradient(loss, [activations, token_embedding, *head.trainable_weights])
    assert all(g is not None for g in grads[2:])  # the mix always trains
    if stop_gradient:
        assert grads[0] is None and grads[1] is None
    else:
        assert np.abs(grads[0].numpy()).max() > 0 and np.abs(grads[1].numpy()).max() > 0


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_layers=0), r"num_layers: expected a positive integer, found 0"),
    (dict(num_output_representations=0), r"num_output_representations: expected a positive integer, found 0"),
    (dict(dropout=1.5), r"dropout"),
    (dict(l2_coef=-1.0), r"l2_coef: expected a number >= 0, found -1\.0"),
    (dict(scalar_mix_weights=[0.0]), r"scalar_mix_weights: expected 3 numbers \(n_layers \+ 1\), found 1"),
    (dict(mix_names=["a", "b"]), r"mix_names: expected 1 names \(num_output_representations\), found 2"),
])
def test_bad_arguments_are_clear_errors(kwargs, message):
    kwargs = {"num_layers": LAYERS, **kwargs}
    with pytest.raises(ValueError, match=message):
        ElmoHead(**kwargs)
