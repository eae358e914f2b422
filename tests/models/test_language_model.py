"""The pretraining model: sampled softmax, gradients, the carried LSTM state, compiled steps.

Runs on the suite's backend (TensorFlow); `test_language_model_on_jax` runs
the backend-independent tests of this file again under JAX in a child process.
"""

import pathlib

import keras
import numpy as np
import pytest

from conftest import run_pytest_on_jax, skip_where_bf16_training_aborts

from elmo_keras.models.language_model import (
    LanguageModel,
    expected_sampling_tries,
    full_softmax_losses,
    log_expected_count,
    log_uniform_candidates,
    log_uniform_log_probability,
    sampled_softmax_losses,
)
from elmo_keras.training.options import validate_training_options
from elmo_keras.io.options import OptionsError

HERE = pathlib.Path(__file__).parent
VOCAB = 40


def lm_options(**overrides):
    options = {
        "lstm": {"dim": 32, "projection_dim": 16, "n_layers": 2},
        "char_cnn": {"embedding": {"dim": 4}, "filters": [[1, 8], [2, 8]], "n_highway": 1},
        "n_tokens_vocab": VOCAB, "batch_size": 3, "unroll_steps": 4, "dropout": 0.0,
        "n_negative_samples_batch": 0,
    }
    options.update(overrides)
    return options


def random_batch(batch=3, time=8, seed=0, pad_last_row_from=None):
    """A batch as `WindowBatcher` yields it, with random ids."""
    rng = np.random.default_rng(seed)
    out = {}
    for suffix in ("", "_reverse"):
        out["char_ids" + suffix] = rng.integers(1, 262, (batch, time, 50)).astype("int32")
        out["next_token_id" + suffix] = rng.integers(0, VOCAB, (batch, time)).astype("int32")
        out["token_ids" + suffix] = rng.integers(0, VOCAB, (batch, time)).astype("int32")
    out["weights"] = np.ones((batch, time), "float32")
    if pad_last_row_from is not None:
        for suffix in ("", "_reverse"):
            out["char_ids" + suffix][-1, pad_last_row_from:] = 0
        out["weights"][-1, pad_last_row_from - 1:] = 0
    return out


def window(batch, start, stop):
    return {name: value[:, start:stop] for name, value in batch.items()}


def losses_of(model, batch, training=False):
    targets = np.stack([batch["next_token_id"], batch["next_token_id_reverse"]])
    return keras.ops.convert_to_numpy(model.token_losses(model(batch, training=training), targets, training))


# -- sampled softmax ---------------------------------------------------------------


def softmax_problem(vocab=500, dim=16, positions=256, seed=0):
    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 0.5, (vocab, dim)).astype("float32")
    bias = rng.normal(0, 0.5, vocab).astype("float32")
    inputs = rng.normal(0, 1, (positions, dim)).astype("float32")
    p = np.exp(keras.ops.convert_to_numpy(log_uniform_log_probability(np.arange(vocab), vocab)))
    targets = rng.choice(vocab, positions, p=p / p.sum()).astype("int32")
    return inputs, targets, weights, bias


def test_log_uniform_distribution_sums_to_one():
    p = np.exp(keras.ops.convert_to_numpy(log_uniform_log_probability(np.arange(1000), 1000)))
    assert abs(p.sum() - 1.0) < 1e-5
    assert p[0] == pytest.approx(np.log(2) / np.log(1001), rel=1e-5)


def test_expected_tries_give_the_sample_size_in_expectation():
    for vocab, sampled in [(500, 50), (500, 499), (793471, 8192)]:
        tries = expected_sampling_tries(vocab, sampled)
        inclusion = np.exp(keras.ops.convert_to_numpy(log_expected_count(np.arange(vocab), vocab, tries)))
        assert inclusion.sum() == pytest.approx(sampled, rel=1e-4)
    with pytest.raises(ValueError, match="num_sampled must be in"):
        expected_sampling_tries(10, 10)


def test_candidates_are_distinct_with_the_stated_inclusion_probability():
    vocab, sampled, draws = 500, 50, 300
    tries = expected_sampling_tries(vocab, sampled)
    counts = np.zeros(vocab)
    seed = keras.random.SeedGenerator(0)
    for _ in range(draws):
        ids = keras.ops.convert_to_numpy(log_uniform_candidates(vocab, sampled, seed))
        assert len(set(ids.tolist())) == sampled and ids.min() >= 0 and ids.max() < vocab
        counts[ids] += 1
    inclusion = np.exp(keras.ops.convert_to_numpy(log_expected_count(np.arange(vocab), vocab, tries)))
    # 300 draws: a standard error of at most 0.03 per id.
    assert np.abs(counts / draws - inclusion).max() < 0.12
    assert np.abs(counts[:20] / draws - inclusion[:20]).mean() < 0.03


def test_sampled_softmax_approaches_full_softmax_as_samples_approach_vocab():
    inputs, targets, weights, bias = softmax_problem()
    full = float(np.mean(keras.ops.convert_to_numpy(full_softmax_losses(inputs, targets, weights, bias))))
    assert full == pytest.approx(8.4278, abs=1e-3)

    def sampled_mean(num_sampled):
        tries = expected_sampling_tries(500, num_sampled)
        values = [np.mean(keras.ops.convert_to_numpy(sampled_softmax_losses(
            inputs, targets, weights, bias, log_uniform_candidates(500, num_sampled, seed), tries)))
            for seed in range(8)]
        return float(np.mean(values))

    # Measured (mean of 8 draws / full): 0.834 at 50 samples, 0.9956 at 450, 0.9990 at 490.
    assert abs(sampled_mean(50) / full - 1) > 0.1
    assert abs(sampled_mean(450) / full - 1) < 0.01
    assert abs(sampled_mean(490) / full - 1) < 0.003


def test_sampled_softmax_matches_tensorflow_given_the_same_candidates():
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("compares against tf.nn.sampled_softmax_loss")
    inputs, targets, weights, bias = softmax_problem()
    tries = expected_sampling_tries(500, 50)
    sampled = log_uniform_candidates(500, 50, 3)
    # Frequent words are sampled nearly always, so many positions have an accidental hit.
    assert np.isin(targets, keras.ops.convert_to_numpy(sampled)).mean() > 0.3
    ours = keras.ops.convert_to_numpy(sampled_softmax_losses(inputs, targets, weights, bias, sampled, tries))
    theirs = tf.nn.sampled_softmax_loss(
        weights, bias, targets[:, None].astype("int64"), inputs, 50, 500, remove_accidental_hits=True,
        sampled_values=(tf.cast(sampled, tf.int64), tf.exp(log_expected_count(targets, 500, tries))[:, None],
                        tf.exp(log_expected_count(sampled, 500, tries))))
    np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-5)


def test_full_softmax_in_chunks_equals_one_piece(monkeypatch):
    import elmo_keras.models.language_model as lm

    inputs, targets, weights, bias = softmax_problem(positions=48)
    whole = keras.ops.convert_to_numpy(full_softmax_losses(inputs, targets, weights, bias))
    monkeypatch.setattr(lm, "_MAX_FULL_SOFTMAX_ELEMENTS", 500 * 16)
    chunked = keras.ops.convert_to_numpy(lm.full_softmax_losses(inputs, targets, weights, bias))
    np.testing.assert_allclose(chunked, whole, atol=1e-6)


# -- the model -----------------------------------------------------------------------


def test_training_step_moves_every_weight():
    model = LanguageModel(lm_options(n_negative_samples_batch=10, dropout=0.1))
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    before = [keras.ops.convert_to_numpy(v).copy() for v in model.trainable_variables]
    logs = model.train_on_batch(random_batch(time=4), return_dict=True)
    assert np.isfinite(logs["loss"]) and logs["loss"] > 0
    for variable, old in zip(model.trainable_variables, before):
        change = np.abs(keras.ops.convert_to_numpy(variable) - old).max()
        assert change > 0, f"no gradient reached {variable.path}"


def test_loss_is_the_mean_of_both_directions_over_weighted_positions():
    model = LanguageModel(lm_options())
    batch = random_batch(time=4, pad_last_row_from=2)
    losses = losses_of(model, batch)
    model.reset_states()
    y_pred = model(batch)
    loss = float(keras.ops.convert_to_numpy(model.compute_loss(batch, y_pred=y_pred, training=False)))
    w = batch["weights"]
    forward = (losses[0] * w).sum() / w.sum()
    backward = (losses[1] * w).sum() / w.sum()
    assert loss == pytest.approx(0.5 * (forward + backward), rel=1e-5)
    assert float(model.forward_perplexity.result()) == pytest.approx(np.exp(forward), rel=1e-5)
    assert float(model.backward_perplexity.result()) == pytest.approx(np.exp(backward), rel=1e-5)


def test_carried_state_equals_one_long_window():
    model = LanguageModel(lm_options())
    batch = random_batch(time=8, pad_last_row_from=6)
    long_window = losses_of(model, batch)
    model.reset_states()
    first = losses_of(model, window(batch, 0, 4))
    second = losses_of(model, window(batch, 4, 8))
    carried = np.concatenate([first, second], axis=-1)
    real = batch["weights"].astype(bool)
    np.testing.assert_allclose(carried[:, real], long_window[:, real], atol=1e-5)
    # Without the state, the second window is another computation.
    model.reset_states()
    fresh = losses_of(model, window(batch, 4, 8))
    assert np.abs(fresh - second).max() > 1e-2


def test_state_of_a_padded_row_stops_at_its_last_token():
    model = LanguageModel(lm_options())
    batch = random_batch(time=4, pad_last_row_from=2)
    model(batch)
    padded_state = keras.ops.convert_to_numpy(model.state_h).copy()
    model.reset_states()
    model(window(batch, 0, 2))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.state_h)[:, :, 2],
                               padded_state[:, :, 2], atol=1e-6)


def test_state_updates_survive_compiled_fit_and_evaluate():
    batch = random_batch(time=8)
    model = LanguageModel(lm_options())
    initial = [keras.ops.convert_to_numpy(v).copy() for v in model.weights]
    eager_state = []
    for start in (0, 4):
        model(window(batch, start, start + 4))
        eager_state.append([keras.ops.convert_to_numpy(v).copy() for v in model.state_variables])

    # One compiled training step carries the same state as the eager call
    # (the step's forward pass uses the weights from before its update).
    for variable, value in zip(model.weights, initial):
        variable.assign(value)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model.fit(window(batch, 0, 4), batch_size=3, epochs=1, shuffle=False, verbose=0)
    for variable, expected in zip(model.state_variables, eager_state[0]):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), expected, atol=1e-6)
    model.fit(window(batch, 4, 8), batch_size=3, epochs=1, shuffle=False, verbose=0)
    assert np.abs(keras.ops.convert_to_numpy(model.state_h) - eager_state[0][0]).max() > 1e-3

    # Compiled evaluation carries the state from window to window, as one long window.
    for variable, value in zip(model.weights, initial):
        variable.assign(value)
    long_window = losses_of(model, batch)
    model.reset_states()
    model.evaluate(window(batch, 0, 4), batch_size=3, verbose=0)
    result = model.evaluate(window(batch, 4, 8), batch_size=3, verbose=0, return_dict=True)
    for variable, expected in zip(model.state_variables, eager_state[1]):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), expected, atol=1e-5)
    expected = np.exp(long_window[0][:, 4:].mean())
    assert result["forward_perplexity"] == pytest.approx(expected, rel=1e-4)


def test_sampled_softmax_trains_and_full_softmax_evaluates():
    model = LanguageModel(lm_options(n_negative_samples_batch=10))
    assert model.num_sampled == 10
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    batch = random_batch(time=4)
    train = model.train_on_batch(batch, return_dict=True)
    model.reset_states()
    test = model.test_on_batch(batch, return_dict=True)
    # With 10 of 40 words as negatives, the training loss is not the full one.
    assert abs(train["loss"] - test["loss"]) > 0.05
    full = LanguageModel(lm_options(n_negative_samples_batch=VOCAB))
    assert full.num_sampled is None


@skip_where_bf16_training_aborts
def test_mixed_precision_keeps_state_and_softmax_in_float32():
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = LanguageModel(lm_options(n_negative_samples_batch=10))
    finally:
        keras.config.set_dtype_policy(policy)
    model.compile(optimizer=keras.optimizers.Adagrad(0.2))
    logs = model.train_on_batch(random_batch(time=4), return_dict=True)
    assert np.isfinite(logs["loss"])
    assert model.bilstm.compute_dtype == "bfloat16" and model.char_cnn.compute_dtype == "bfloat16"
    assert [v.dtype for v in model.state_variables] == ["float32", "float32"]
    assert model.softmax_weights.dtype == "float32" and model.bilstm.kernels[0].dtype == "float32"
    assert np.abs(keras.ops.convert_to_numpy(model.state_c)).max() > 0


def test_config_round_trip():
    model = LanguageModel(lm_options(), batch_size=5, seed=7)
    clone = LanguageModel.from_config(model.get_config())
    assert clone.state_rows == 5 and clone.seed == 7
    assert [tuple(v.shape) for v in clone.weights] == [tuple(v.shape) for v in model.weights]
    assert tuple(model.state_h.shape) == (2, 2, 5, 16) and tuple(model.state_c.shape) == (2, 2, 5, 32)


def test_training_options_defaults_and_errors():
    opts = validate_training_options(lm_options(n_tokens_vocab=None, n_negative_samples_batch=0), n_tokens_vocab=40)
    assert (opts["lstm"]["cell_clip"], opts["lstm"]["proj_clip"], opts["all_clip_norm_val"]) == (3, 3, 10.0)
    assert (opts["learning_rate"], opts["n_negative_samples_batch"]) == (0.2, 0)
    assert opts["char_cnn"]["n_characters"] == 261 and opts["n_tokens_vocab"] == 40
    with pytest.raises(OptionsError, match="n_tokens_vocab is 40 but the vocabulary has 41 tokens"):
        validate_training_options(lm_options(), n_tokens_vocab=41)
    with pytest.raises(OptionsError, match=r"dropout: expected a number in \[0, 1\), found 1.5"):
        validate_training_options(lm_options(dropout=1.5))
    with pytest.raises(OptionsError, match="lstm: missing field 'dim'"):
        validate_training_options({"lstm": {"projection_dim": 4, "n_layers": 1}, "char_cnn": {}})


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="starts the JAX run from the TF run")
def test_language_model_on_jax(tmp_path):
    pytest.importorskip("jax")
    # The compiled (jit) train and test steps are what differs on JAX.
    stdout = run_pytest_on_jax([__file__], "training_step_moves or survive_compiled", cache_dir=tmp_path)
    assert "2 passed" in stdout
