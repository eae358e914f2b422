"""Each layer against plain numpy, config round trips, masks and saving."""

import numpy as np
import pytest
import keras
from keras.ops import convert_to_numpy as to_numpy

from elmo_keras import (BiLSTM, CharCNN, ConcatProjectionMix, ElmoHead, Highway, LSTMCellWithProjection, ScalarMix,
                        batch_to_ids)
from elmo_keras.layers.bilstm import reverse_within_length
from elmo_keras.preprocessing.char_ids import trim_padding_characters
from layer_checks import run_layer_test
from reference_bilm import float32_tolerance


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _normal(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _lengths_mask(lengths, time):
    return np.arange(time)[None, :] < np.array(lengths)[:, None]


@pytest.mark.parametrize("make_layer, input_data", [
    (lambda: Highway(name="layer"), _normal(3, 5)),
    (lambda: CharCNN(filters=[[1, 4], [2, 8]], embedding_dim=4, n_highway=2, projection_dim=6, activation="tanh",
                     name="layer"),
     batch_to_ids([["a", "bc"], ["Köln"]])),
    # The second token embedder (ELMoForManyLangs'): dictionary ids of 10 characters and the word id last.
    (lambda: CharCNN(filters=[[1, 4], [2, 8]], embedding_dim=4, n_highway=1, projection_dim=6, n_characters=12,
                     word_dim=3, n_words=5, max_characters_per_token=10, name="layer"),
     np.concatenate([np.random.default_rng(0).integers(1, 13, (2, 4, 10)),
                     np.random.default_rng(1).integers(1, 6, (2, 4, 1))], axis=-1).astype("int32")),
    (lambda: BiLSTM(units=8, projection_dim=4, n_layers=3, cell_clip=3.0, proj_clip=3.0, use_skip_connections=True,
                    dropout=0.1, name="layer"),
     _normal(2, 5, 4)),
    (lambda: ScalarMix(3, do_layer_norm=True, initial_weights=[0.1, 0.2, 0.3], initial_scale=2.0,
                       trainable_weights_=False, l2_coef=0.001, name="layer"),
     _normal(2, 3, 5, 4)),
    (lambda: ConcatProjectionMix(7, use_bias=True, name="layer"), _normal(2, 3, 5, 4)),
    (lambda: ElmoHead(3, num_output_representations=2, dropout=0.25, keep_sentence_boundaries=True,
                      stop_gradient=False, do_layer_norm=True, scalar_mix_weights=[0.1, 0.2, 0.3], trainable_mix=False,
                      l2_coef=0.01, mix_names=["a", "b"], hub_outputs=True, name="layer"),
     {"activations": _normal(2, 3, 5, 8) * _lengths_mask([5, 3], 5)[:, None, :, None],
      "token_embedding": _normal(2, 5, 4, seed=1) * _lengths_mask([5, 3], 5)[..., None],
      "mask": _lengths_mask([5, 3], 5)}),
], ids=["Highway", "CharCNN", "CharCNNWithWords", "BiLSTM", "ScalarMix", "ConcatProjectionMix", "ElmoHead"])
def test_keras_contract(make_layer, input_data, tmp_path):
    run_layer_test(make_layer(), input_data, tmp_path)


@pytest.mark.parametrize("layer", [
    LSTMCellWithProjection(8, 4, cell_clip=3.0, proj_clip=2.0),
    BiLSTM(units=8, projection_dim=4, n_layers=3, stateful=True, max_batch_size=5),
])
def test_config_round_trip(layer):
    """Layers whose calls carry state: the config alone (the model tests save and reload them)."""
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config


def test_highway_matches_numpy():
    x = np.random.default_rng(0).normal(size=(3, 5)).astype("float32")
    layer = Highway()
    y = to_numpy(layer(x))
    weights = [v.numpy() for v in (layer.carry_kernel, layer.carry_bias, layer.transform_kernel,
                                   layer.transform_bias)]

    def highway(dtype):
        xd, (wc, bc, wt, bt) = x.astype(dtype), (w.astype(dtype) for w in weights)
        g = _sigmoid(xd @ wc + bc)
        return g * np.maximum(xd @ wt + bt, 0) + (1 - g) * xd

    # float32 against float64, within the drift of a float32 evaluation
    # (see reference_bilm.float32_tolerance): at least 8 ulps of the output.
    expected = highway(np.float64)
    np.testing.assert_allclose(y, expected, rtol=0, atol=float32_tolerance([expected], [highway(np.float32)]))


def test_char_cnn_padding_id_embeds_to_zero_and_shape():
    cnn = CharCNN(filters=[[1, 3], [2, 3]], embedding_dim=4, n_highway=0, projection_dim=6)
    ids = batch_to_ids([["ab"]])
    out = to_numpy(cnn(ids))
    assert out.shape == (1, 3, 6)
    assert not cnn.use_projection  # 3 + 3 filters == projection 6
    # An all-padding token sees only the zero row: every conv gives its bias.
    zero_token = to_numpy(cnn(np.zeros((1, 1, 50), "int32")))[0, 0]
    expected = np.maximum(np.concatenate([cnn.conv_biases[0].numpy(), cnn.conv_biases[1].numpy()]), 0)
    np.testing.assert_allclose(zero_token, expected, atol=1e-7)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_char_cnn_gives_the_same_vectors_on_trimmed_character_slots(activation):
    cnn = CharCNN(filters=[[1, 4], [3, 4], [7, 8]], embedding_dim=4, n_highway=1, projection_dim=6,
                  activation=activation)
    cnn.build((None, None, 50))
    # Random padding-mark embeddings make the all-padding windows matter.
    cnn.char_embed.assign(np.random.default_rng(0).normal(size=(261, 4)).astype("float32"))
    for tokens in (["a", "Köln", "<S>"], ["x" * 40, "b"], ["y" * 41], ["z" * 48], ["w" * 60, "日本語"]):
        ids = batch_to_ids([tokens])
        trimmed = trim_padding_characters(ids, widest_filter=7)
        assert trimmed.shape[-1] == min(50, -(-(max(len(t.encode()) for t in tokens) + 2 + 7) // 8) * 8)
        np.testing.assert_allclose(to_numpy(cnn(trimmed)), to_numpy(cnn(ids)), atol=1e-6)


def test_lstm_cell_in_keras_rnn_matches_numpy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 4, 3)).astype("float32")
    cell = LSTMCellWithProjection(5, 2, cell_clip=0.5, proj_clip=0.2)
    rnn = keras.layers.RNN(cell, return_sequences=True)
    y = to_numpy(rnn(x))
    w, u, b, p = (v.numpy() for v in (cell.kernel, cell.recurrent_kernel, cell.bias, cell.projection))
    h, c = np.zeros((2, 2)), np.zeros((2, 5))
    for t in range(4):
        z = x[:, t] @ w + h @ u + b
        i, j, f, o = np.split(z, 4, axis=-1)
        c = np.clip(_sigmoid(f + 1) * c + _sigmoid(i) * np.tanh(j), -0.5, 0.5)
        h = np.clip((_sigmoid(o) * np.tanh(c)) @ p, -0.2, 0.2)
        np.testing.assert_allclose(y[:, t], h, atol=1e-6)


def test_bilstm_equals_two_keras_rnns_of_the_cell():
    """The fused two-direction loop equals Keras' RNN with go_backwards on unpadded rows."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 6, 4)).astype("float32")
    lstm = BiLSTM(units=5, projection_dim=4, n_layers=1, cell_clip=3.0, proj_clip=3.0)
    y = to_numpy(lstm(x))
    for d, backwards in ((0, False), (1, True)):
        cell = LSTMCellWithProjection(5, 4, cell_clip=3.0, proj_clip=3.0)
        rnn = keras.layers.RNN(cell, return_sequences=True, go_backwards=backwards)
        rnn.build(x.shape)
        for target, source in ((cell.kernel, lstm.kernels[0]), (cell.recurrent_kernel, lstm.recurrent_kernels[0]),
                               (cell.bias, lstm.biases[0]), (cell.projection, lstm.projections[0])):
            target.assign(source.numpy()[d])
        out = to_numpy(rnn(x))
        if backwards:
            out = out[:, ::-1]
        np.testing.assert_allclose(y[:, 0, :, 4 * d : 4 * d + 4], out, atol=1e-5)


def test_reverse_within_length():
    x = np.arange(10, dtype="float32").reshape(2, 5)[..., None]
    y = to_numpy(reverse_within_length(x, np.array([3, 0])))[..., 0]
    np.testing.assert_array_equal(y, [[2, 1, 0, 3, 4], [5, 6, 7, 8, 9]])


def test_bilstm_mask_zeroes_padding_and_state_ignores_it():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 5, 4)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    lstm = BiLSTM(units=6, projection_dim=4, n_layers=2, use_skip_connections=True)
    y = to_numpy(lstm(x, mask=mask))
    assert np.all(y[0, :, 3:] == 0)
    alone = to_numpy(lstm(x[:1, :3]))
    np.testing.assert_allclose(y[0, :, :3], alone[0], atol=1e-6)


def test_bilstm_packed_segments_equal_separate_rows():
    """Sequences packed end to end in one row (segment_ids) give what each gives alone."""
    rng = np.random.default_rng(5)
    lengths = [3, 5, 1, 2, 4]
    xs = [rng.normal(size=(n, 4)).astype("float32") for n in lengths]
    lstm = BiLSTM(units=6, projection_dim=4, n_layers=2, cell_clip=1.0, proj_clip=1.0,
                  use_skip_connections=True)
    rows = [[0, 1], [2, 3, 4]]
    packed = np.zeros((2, 10, 4), "float32")
    segment_ids = np.zeros((2, 10), "int32")
    where = {}
    for r, members in enumerate(rows):
        offset = 0
        for segment, k in enumerate(members, start=1):
            packed[r, offset : offset + lengths[k]] = xs[k]
            # Ids only need to differ from the neighbour's: reuse 1 after 2.
            segment_ids[r, offset : offset + lengths[k]] = 1 + (segment + 1) % 2
            where[k] = (r, offset)
            offset += lengths[k]
    y = to_numpy(lstm(packed, segment_ids=segment_ids))
    for k, x in enumerate(xs):
        r, offset = where[k]
        np.testing.assert_allclose(y[r, :, offset : offset + lengths[k]], to_numpy(lstm(x[None]))[0],
                                   atol=1e-6)
    assert np.all(y[0, :, 8:] == 0) and np.all(y[1, :, 7:] == 0)


def test_bilstm_segment_ids_of_one_sentence_a_row_equal_the_mask():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 5, 4)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    lstm = BiLSTM(units=6, projection_dim=4, n_layers=1, stateful=True, max_batch_size=2)
    by_mask = [to_numpy(lstm(x, mask=mask)) for _ in range(2)]
    lstm.reset_states()
    by_segments = [to_numpy(lstm(x, segment_ids=mask.astype("int32"))) for _ in range(2)]
    np.testing.assert_array_equal(by_mask, by_segments)


def test_bilstm_stateful_carries_rows_and_resets():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 4, 4)).astype("float32")
    lstm = BiLSTM(units=6, projection_dim=4, n_layers=1, stateful=True, max_batch_size=3)
    first = to_numpy(lstm(x))
    second = to_numpy(lstm(x))
    assert np.abs(first - second).max() > 1e-3
    lstm.reset_states()
    np.testing.assert_allclose(to_numpy(lstm(x)), first, atol=1e-6)
    # A smaller batch uses and updates rows [:2]; row 2 keeps its state.
    before = lstm.state_h.numpy()[:, :, 2].copy()
    lstm(x[:2])
    np.testing.assert_array_equal(lstm.state_h.numpy()[:, :, 2], before)


def test_bilstm_initial_state_and_return_state_are_the_carried_state():
    # What a stateless layer returns as its final state, fed back as its initial state, gives what a
    # stateful layer with the same weights gives on its next call: the same computation, bit for bit.
    rng = np.random.default_rng(6)
    x = rng.normal(size=(3, 4, 4)).astype("float32")
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [0, 1, 1, 0]], bool)
    kwargs = dict(units=6, projection_dim=4, n_layers=2, cell_clip=3.0, proj_clip=3.0, use_skip_connections=True)
    stateless, stateful = BiLSTM(**kwargs), BiLSTM(stateful=True, max_batch_size=3, **kwargs)
    stateless.build(x.shape)
    stateful.build(x.shape)
    for target, source in zip(stateful.trainable_weights, stateless.trainable_weights):
        target.assign(source)
    y1, h, c = (to_numpy(t) for t in stateless(x, mask=mask, return_state=True))
    assert h.shape == (2, 2, 3, 4) and c.shape == (2, 2, 3, 6)
    np.testing.assert_array_equal(to_numpy(stateful(x, mask=mask)), y1)
    np.testing.assert_array_equal(to_numpy(stateful.state_h), h)
    np.testing.assert_array_equal(to_numpy(stateful.state_c), c)
    y2 = to_numpy(stateless(x, mask=mask, initial_state=(h, c)))
    np.testing.assert_array_equal(to_numpy(stateful(x, mask=mask)), y2)
    assert np.abs(y2 - y1).max() > 1e-3
    # An explicit initial state leaves a stateful layer's carried state alone.
    before = to_numpy(stateful.state_h).copy()
    np.testing.assert_array_equal(to_numpy(stateful(x, mask=mask, initial_state=(h, c))), y2)
    np.testing.assert_array_equal(to_numpy(stateful.state_h), before)
    # The functional API sees the three outputs.
    outputs = stateless(keras.Input((None, 4)), return_state=True)
    assert [tuple(t.shape) for t in outputs] == [(None, 2, None, 8), (2, 2, None, 4), (2, 2, None, 6)]


def test_scalar_mix_numbers():
    acts = np.random.default_rng(5).normal(size=(2, 3, 4, 5)).astype("float32")
    mix = ScalarMix(3, initial_weights=[0.0, 1.0, 2.0], initial_scale=0.5)
    w = np.exp([0.0, 1.0, 2.0]) / np.exp([0.0, 1.0, 2.0]).sum()
    np.testing.assert_allclose(to_numpy(mix(acts)), 0.5 * np.einsum("k,bktd->btd", w, acts), atol=1e-6)
    assert len(mix.trainable_weights) == 2
    fixed = ScalarMix(3, trainable_weights_=False)
    fixed.build(acts.shape)
    assert not fixed.trainable_weights


def test_scalar_mix_layer_norm_uses_real_tokens_of_whole_batch():
    acts = np.random.default_rng(6).normal(size=(2, 2, 3, 4)).astype("float32")
    mask = np.array([[1, 1, 0], [1, 0, 0]], bool)
    out = to_numpy(ScalarMix(2, do_layer_norm=True)(acts, mask=mask))
    expected = 0
    for k in range(2):
        real = acts[:, k][mask]
        expected = expected + 0.5 * (acts[:, k] - real.mean()) / np.sqrt(real.var() + 1e-12)
    np.testing.assert_allclose(out[mask], expected[mask], atol=1e-5)
    assert np.all(out[~mask] == 0)


def test_scalar_mix_l2_loss():
    mix = ScalarMix(3, initial_weights=[1.0, 2.0, 0.0], l2_coef=0.01)
    mix(np.ones((1, 3, 2, 2), "float32"))
    assert float(to_numpy(sum(mix.losses))) == pytest.approx(0.01 * 5.0)


def test_concat_projection_mix_uses_char_vector_once():
    acts = np.random.default_rng(7).normal(size=(2, 3, 4, 6)).astype("float32")
    mix = ConcatProjectionMix(5)
    out = to_numpy(mix(acts, mask=np.array([[1, 1, 1, 0]] * 2, bool)))
    concat = np.concatenate([acts[:, 0, :, :3], acts[:, 1], acts[:, 2]], axis=-1)
    assert mix.kernel.shape == (15, 5)
    np.testing.assert_allclose(out[:, :3], (concat @ mix.kernel.numpy())[:, :3], atol=1e-5)
    assert np.all(out[:, 3] == 0)


def test_bilstm_stateless_call_takes_inputs_of_another_dtype():
    lstm = BiLSTM(units=6, projection_dim=4, n_layers=2, cell_clip=3.0, proj_clip=3.0)
    x = np.random.default_rng(7).normal(size=(2, 5, 4)).astype("float32")
    expected = to_numpy(lstm(x))
    y, _ = lstm.stateless_call(lstm.trainable_variables, lstm.non_trainable_variables,
                               keras.ops.cast(x, "bfloat16"))
    assert keras.backend.standardize_dtype(y.dtype) == "float32"
    np.testing.assert_allclose(to_numpy(y), expected, atol=0.05)
