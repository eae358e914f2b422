"""BiLSTM with any mask: left padding, holes, random masks give the outputs of the compacted rows.

Also: segment_ids over masks with holes, the carried state with left padding,
and the clear error for a stateful batch above max_batch_size. Runs on the
JAX backend too (the last test starts it there).
"""

import keras
from keras.ops import convert_to_numpy as to_numpy
import numpy as np
import pytest

from conftest import run_pytest_on_jax

from elmo_keras import BiLSTM
from elmo_keras.layers.bilstm import backward_order, reverse_within_length

MASKS = np.array([
    [0, 0, 0, 1, 1, 1, 1, 1, 1],  # left padding
    [1, 1, 0, 0, 1, 1, 1, 0, 1],  # holes in the middle
    [1, 1, 1, 1, 1, 0, 0, 0, 0],  # right padding, as before
    [0, 0, 0, 0, 0, 0, 0, 0, 0],  # nothing real
    [0, 0, 0, 0, 1, 0, 0, 0, 0],  # one real position
    [1, 1, 1, 1, 1, 1, 1, 1, 1],  # no padding
], bool)


def _random_masks(rng, rows, time):
    return rng.random((rows, time)) < rng.uniform(0.2, 0.9, size=(rows, 1))


def _compacted(x, mask):
    """Each row's real positions moved to the front, zeros after; the right-padded mask."""
    out = np.zeros_like(x)
    for b in range(len(x)):
        out[b, : mask[b].sum()] = x[b, mask[b]]
    return out, np.arange(mask.shape[1])[None, :] < mask.sum(axis=1)[:, None]


def _layer(**kwargs):
    keras.utils.set_random_seed(0)
    lstm = BiLSTM(units=6, projection_dim=4, n_layers=2, cell_clip=1.0, proj_clip=1.0,
                  use_skip_connections=True, **kwargs)
    lstm.build((None, None, 4))
    rng = np.random.default_rng(1)
    for v in lstm.trainable_variables:  # biases too, so that padding would show
        v.assign(rng.normal(0, 0.5, v.shape).astype("float32"))
    return lstm


def test_backward_order_reads_real_positions_last_to_first():
    order, index = backward_order(MASKS[:2])
    order, index = to_numpy(order), to_numpy(index)
    np.testing.assert_array_equal(order[0], [8, 7, 6, 5, 4, 3, 0, 1, 2])
    np.testing.assert_array_equal(order[1], [8, 6, 5, 4, 1, 0, 2, 3, 7])
    for b in range(2):
        np.testing.assert_array_equal(order[b][index[b]], np.arange(9))  # inverse permutations
    # A prefix mask: the reversal within the row's length, as before.
    x = np.arange(18).reshape(2, 9)
    order, _ = backward_order(MASKS[2:4])
    np.testing.assert_array_equal(np.take_along_axis(x, to_numpy(order), 1),
                                  to_numpy(reverse_within_length(x[..., None], [5, 0]))[..., 0])


@pytest.mark.parametrize("kind", ["fixed", "random"])
def test_any_mask_gives_the_outputs_of_the_compacted_rows(kind):
    rng = np.random.default_rng(7)
    masks = MASKS if kind == "fixed" else _random_masks(rng, 8, 11)
    x = rng.normal(size=masks.shape + (4,)).astype("float32")
    lstm = _layer()
    y = to_numpy(lstm(x, mask=masks))
    compact, compact_mask = _compacted(x, masks)
    expected = to_numpy(lstm(compact, mask=compact_mask))
    for b in range(len(x)):
        n = masks[b].sum()
        np.testing.assert_allclose(y[b][:, masks[b]], expected[b][:, :n], atol=1e-6, rtol=0)
        assert np.all(y[b][:, ~masks[b]] == 0)
        if 0 < n:  # and a row of its own, without any padding
            alone = to_numpy(lstm(x[b][masks[b]][None]))[0]
            np.testing.assert_allclose(y[b][:, masks[b]], alone, atol=1e-6, rtol=0)


def test_segments_over_a_mask_with_holes_equal_separate_rows():
    rng = np.random.default_rng(3)
    # Sequences A (ids 1, with a hole), B (ids 2, after a hole), C (ids 1 again).
    ids = np.array([[1, 0, 1, 1, 0, 2, 2, 0, 0, 1, 1, 0]], "int32")
    x = rng.normal(size=(1, 12, 4)).astype("float32")
    lstm = _layer()
    y = to_numpy(lstm(x, segment_ids=ids))
    for positions in ([0, 2, 3], [5, 6], [9, 10]):
        alone = to_numpy(lstm(x[:, positions]))[0]
        np.testing.assert_allclose(y[0][:, positions], alone, atol=1e-6, rtol=0)
    assert np.all(y[0][:, ids[0] == 0] == 0)


def test_stateful_left_padding_carries_the_state_as_right_padding_does():
    rng = np.random.default_rng(4)
    left = np.array([[0, 0, 1, 1, 1], [0, 1, 1, 1, 1], [1, 1, 1, 1, 1]], bool)
    x = rng.normal(size=(3, 5, 4)).astype("float32")
    compact, right = _compacted(x, left)
    by_left, by_right = _layer(stateful=True, max_batch_size=3), _layer(stateful=True, max_batch_size=3)
    for _ in range(2):  # the second call starts from the first one's final state
        y_left, y_right = to_numpy(by_left(x, mask=left)), to_numpy(by_right(compact, mask=right))
        for b in range(3):
            np.testing.assert_allclose(y_left[b][:, left[b]], y_right[b][:, : left[b].sum()], atol=1e-6, rtol=0)
        np.testing.assert_allclose(by_left.state_h.numpy(), by_right.state_h.numpy(), atol=1e-6, rtol=0)
        np.testing.assert_allclose(by_left.state_c.numpy(), by_right.state_c.numpy(), atol=1e-6, rtol=0)


def test_stateful_batch_above_max_batch_size_is_a_clear_error():
    lstm = _layer(stateful=True, max_batch_size=2)
    with pytest.raises(ValueError, match=r"BiLSTM '.*' is stateful with max_batch_size=2 rows of carried state, "
                                         r"but was called on a batch of 3 rows"):
        lstm(np.zeros((3, 4, 4), "float32"))
    before = lstm.state_h.numpy().copy()
    assert to_numpy(lstm(np.ones((2, 4, 4), "float32"))).shape == (2, 2, 4, 8)  # at most 2 rows work
    assert np.abs(lstm.state_h.numpy() - before).max() > 0


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow graphs of unknown batch size")
def test_stateful_batch_above_max_batch_size_in_a_graph_of_unknown_batch():
    import tensorflow as tf

    lstm = _layer(stateful=True, max_batch_size=2)
    traced = tf.function(lambda x: lstm(x), input_signature=[tf.TensorSpec([None, None, 4], tf.float32)])
    assert traced(tf.ones((2, 3, 4))).shape == (2, 2, 3, 8)
    with pytest.raises(tf.errors.InvalidArgumentError, match="stateful_batch_larger_than_max_batch_size_2"):
        traced(tf.ones((3, 3, 4)))


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="starts the JAX run from the TF run")
def test_on_jax(tmp_path):
    pytest.importorskip("jax")
    stdout = run_pytest_on_jax([__file__], "not on_jax and not graph", cache_dir=tmp_path)
    assert "6 passed" in stdout
