"""The biLM with its softmax: the model that pretraining fits.

`LanguageModel` is the biLM of `elmo_keras.models.bilm` (a `CharCNN` and a
`BiLSTM` named `char_cnn` and `bilstm`, so that `elmo_keras.models.weight_layout`
reads and writes its weight files directly) plus one softmax shared by
both directions, as bilm-tf's `bin/train_elmo.py` trains it:

- The forward LM reads `char_ids` and predicts `next_token_id`; the backward
  LM reads its own stream `char_ids_reverse` (sentences reversed, see
  `elmo_keras.training.batcher`) and predicts `next_token_id_reverse`.
- LSTM state is carried per batch row from one call to the next by the
  `BiLSTM` itself (`stateful=True`, one row of state per batch row; bilm-tf
  feeds the final states back as the next batch's initial states). Gradients
  stop at window boundaries, because a variable read is not differentiated
  through.
- Training uses a sampled softmax when `n_negative_samples_batch` is below the
  vocabulary size; evaluation always uses the full softmax.
- The loss is the mean of the forward and the backward mean cross-entropy
  over positions with weight 1.
"""

import keras
import numpy as np
from keras import ops

from elmo_keras.models.bilm import bilstm_from_options, char_cnn_from_options, token_mask
from elmo_keras.registration import check_saved_config
from elmo_keras.training.options import TrainingOptions

# Full-softmax logits are computed for at most this many (position, word)
# pairs at once; longer batches are split, so a 800k-word vocabulary fits.
_MAX_FULL_SOFTMAX_ELEMENTS = 1 << 25
# Added to the logit of a sampled word that is the target itself.
_ACCIDENTAL_HIT_LOGIT = -1e9


def log_uniform_log_probability(ids, vocab_size):
    """Log-probability of each id under the log-uniform (Zipfian) sampler.

    `P(k) = log((k + 2) / (k + 1)) / log(vocab_size + 1)`, TensorFlow's
    `log_uniform_candidate_sampler`; it suits a vocabulary sorted by
    descending frequency.
    """
    ids = ops.cast(ids, "float32")
    return ops.log(ops.log1p(1.0 / (ids + 1.0))) - float(np.log(np.log(vocab_size + 1.0)))


def expected_sampling_tries(vocab_size, num_sampled):
    """Draws from the log-uniform distribution that give `num_sampled` distinct ids on average.

    Sampling `num_sampled` distinct ids is drawing with replacement until that
    many distinct ids came up (TensorFlow's `unique=True` sampler). An id of
    probability `p` is then among them with probability `1 - (1 - p) ** T`
    for T draws; this returns the T whose expected number of distinct ids is
    `num_sampled`, so that probability can be computed without the draw count.

    >>> round(expected_sampling_tries(793471, 8192))  # the 1B Word Benchmark recipe
    16053
    """
    if not 0 < num_sampled < vocab_size:
        raise ValueError(f"num_sampled must be in (0, {vocab_size}), found {num_sampled}")
    k = np.arange(vocab_size, dtype=np.float64)
    log_miss = np.log1p(-np.log1p(1.0 / (k + 1.0)) / np.log(vocab_size + 1.0))

    def distinct(tries):
        return np.sum(-np.expm1(tries * log_miss))

    low, high = float(num_sampled), 2.0 * num_sampled
    while distinct(high) < num_sampled:
        low, high = high, 2.0 * high
    for _ in range(100):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if distinct(middle) < num_sampled else (low, middle)
    return 0.5 * (low + high)


def log_uniform_candidates(vocab_size, num_sampled, seed):
    """Draw `num_sampled` distinct ids from the log-uniform distribution.

    A Gumbel top-k over the log-probabilities: it picks a set with the same
    distribution as drawing with replacement until `num_sampled` distinct ids
    came up (TensorFlow's `log_uniform_candidate_sampler(unique=True)`).

    Args:
        vocab_size: int. Ids are in [0, vocab_size).
        num_sampled: int, below `vocab_size`.
        seed: a `keras.random.SeedGenerator` or an int.

    Returns int32 (num_sampled,), in no particular order.
    """
    log_p = log_uniform_log_probability(ops.arange(vocab_size), vocab_size)
    uniform = keras.random.uniform((vocab_size,), minval=1e-20, maxval=1.0, seed=seed)
    _, sampled = ops.top_k(log_p - ops.log(-ops.log(uniform)), num_sampled, sorted=False)
    return ops.cast(sampled, "int32")


def log_expected_count(ids, vocab_size, tries):
    """Log of the probability that a unique log-uniform draw of `tries` draws includes each id.

    `log(1 - (1 - p) ** tries)`, as TensorFlow's sampler reports expected
    counts for `unique=True` (`tries` from `expected_sampling_tries`).
    """
    log_p = log_uniform_log_probability(ids, vocab_size)
    return ops.log(-ops.expm1(tries * ops.log1p(-ops.exp(log_p))))


def sampled_softmax_losses(inputs, targets, softmax_weights, softmax_bias, sampled, tries):
    """Per-position sampled-softmax cross-entropy, as `tf.nn.sampled_softmax_loss`.

    The softmax of each position runs over its target and the `sampled`
    negatives (shared by all positions). Every logit has the log of its
    expected count subtracted (`log_expected_count`), and a negative that is
    the position's own target is removed from that position's softmax.

    Args:
        inputs: float (n, dim).
        targets: int (n,).
        softmax_weights: (vocab, dim). softmax_bias: (vocab,).
        sampled: int (num_sampled,). Distinct ids from `log_uniform_candidates`.
        tries: float. From `expected_sampling_tries(vocab, num_sampled)`.

    Returns float32 (n,).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> w, b = rng.normal(size=(100, 8)).astype("float32"), np.zeros(100, "float32")
    >>> h, t = rng.normal(size=(6, 8)).astype("float32"), np.arange(6)
    >>> sampled = log_uniform_candidates(100, 20, seed=1)
    >>> tuple(sampled_softmax_losses(h, t, w, b, sampled, expected_sampling_tries(100, 20)).shape)
    (6,)
    """
    vocab_size = softmax_weights.shape[0]
    inputs = ops.cast(inputs, "float32")
    targets = ops.cast(targets, "int32")
    true_logits = (ops.sum(inputs * ops.take(softmax_weights, targets, axis=0), axis=-1)
                   + ops.take(softmax_bias, targets) - log_expected_count(targets, vocab_size, tries))
    sampled_logits = (ops.matmul(inputs, ops.transpose(ops.take(softmax_weights, sampled, axis=0)))
                      + ops.take(softmax_bias, sampled) - log_expected_count(sampled, vocab_size, tries))
    hits = ops.expand_dims(targets, 1) == ops.expand_dims(sampled, 0)
    sampled_logits = ops.where(hits, _ACCIDENTAL_HIT_LOGIT, sampled_logits)
    logits = ops.concatenate([true_logits[:, None], sampled_logits], axis=-1)
    return ops.logsumexp(logits, axis=-1) - true_logits


def full_softmax_losses(inputs, targets, softmax_weights, softmax_bias):
    """Per-position full-softmax cross-entropy, float32 (n,).

    With a large vocabulary the positions go through in chunks, so the logits
    never hold more than about 32M values at once.
    """
    inputs = ops.cast(inputs, "float32")
    targets = ops.cast(targets, "int32")
    vocab_size = softmax_weights.shape[0]

    def losses(chunk):
        x, t = chunk
        logits = ops.matmul(x, ops.transpose(softmax_weights)) + softmax_bias
        # A gather of the target rows: much cheaper to differentiate than
        # picking from the (n, vocab) logits.
        true_logits = ops.sum(x * ops.take(softmax_weights, t, axis=0), axis=-1) + ops.take(softmax_bias, t)
        return ops.logsumexp(logits, axis=-1) - true_logits

    n = inputs.shape[0]
    chunk = max(1, _MAX_FULL_SOFTMAX_ELEMENTS // vocab_size)
    if n is None or n <= chunk:
        return losses((inputs, targets))
    while n % chunk:
        chunk -= 1
    per_chunk = ops.map(losses, (ops.reshape(inputs, (n // chunk, chunk, -1)),
                                 ops.reshape(targets, (n // chunk, chunk))))
    return ops.reshape(per_chunk, (n,))


class _DirectionalLSTM(keras.layers.Layer):
    """`BiLSTM.run_directions` as a layer call, from and into the carried state.

    Keras casts variables for mixed precision only inside a layer call, and
    `fit` on JAX calls the model's `call` directly, so a plain method call
    would read the float32 weights into the bfloat16 loop.
    """

    def __init__(self, bilstm, **kwargs):
        super().__init__(**kwargs)
        self.bilstm = bilstm

    def call(self, forward_inputs, backward_inputs, directions_mask, training=None):
        outputs, _ = self.bilstm.run_directions(forward_inputs, backward_inputs, directions_mask,
                                                training=training)
        return outputs


class _TokenMean(keras.losses.Loss):
    """Mean of per-position losses over positions of weight 1.

    A `Loss` so that Keras scales it for `tf.distribute` (each replica's mean
    divided by the number of replicas) as it does its own losses.
    """

    def __init__(self):
        super().__init__(name="token_mean", reduction="mean_with_sample_weight")

    def call(self, y_true, y_pred):
        return y_pred


@keras.saving.register_keras_serializable(package="elmo_keras")
class Perplexity(keras.metrics.Metric):
    """`exp` of the mean per-token loss over all tokens seen since the last reset.

    Args:
        name: str. Metric name.

    Call `update_state(losses, weights)` with per-position losses and 0/1 weights.
    """

    def __init__(self, name="perplexity", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, losses, weights):
        weights = ops.cast(weights, "float32")
        self.total.assign_add(ops.sum(ops.cast(losses, "float32") * weights))
        self.count.assign_add(ops.sum(weights))

    def result(self):
        return ops.exp(ops.divide_no_nan(self.total, self.count))


@keras.saving.register_keras_serializable(package="elmo_keras")
class LanguageModel(keras.Model):
    """ELMo's bidirectional language model for pretraining.

    Args:
        options: `TrainingOptions`, or a dict of training options (see
            `elmo_keras.training.options`); `n_tokens_vocab` must be set.
        batch_size: int or None. Rows of carried LSTM state: the batch size of
            every call (per replica under `tf.distribute`). None: the
            options' `batch_size`.
        seed: int or None. Seed of the negative samples and of the dropout on
            the LSTM output. None: the options' `seed`.
        **kwargs: standard model arguments.

    Call arguments:
        inputs: dict with `char_ids` and `char_ids_reverse`, int32
            (batch, time, max_characters_per_token); other keys are ignored.
        training: bool. Dropout on.

    Returns the top LSTM layer of both directions, (2, batch, time,
    projection_dim), each in its own reading order, 0 at padded positions.
    Every call moves the carried state to each row's state after its last
    real token; `reset_states()` zeroes it.

    `compute_loss` (what `fit` and `evaluate` use) reads the targets from the
    same dict: `next_token_id`, `next_token_id_reverse` and `weights`
    (batch, time). The metrics `forward_perplexity` and `backward_perplexity`
    are `exp` of each direction's mean loss (sampled-softmax loss while
    training with negatives, full softmax in `evaluate`).

    Example:

    >>> import numpy as np, keras
    >>> opts = {"lstm": {"dim": 16, "projection_dim": 8, "n_layers": 2},
    ...         "char_cnn": {"embedding": {"dim": 4}, "filters": [[1, 8], [2, 8]], "n_highway": 1},
    ...         "n_tokens_vocab": 50, "batch_size": 2, "unroll_steps": 5}
    >>> model = LanguageModel(opts)
    >>> model.compile(optimizer="adagrad")
    >>> rng = np.random.default_rng(0)
    >>> batch = {"char_ids": rng.integers(1, 262, (2, 5, 50)).astype("int32"),
    ...          "char_ids_reverse": rng.integers(1, 262, (2, 5, 50)).astype("int32"),
    ...          "next_token_id": rng.integers(0, 50, (2, 5)).astype("int32"),
    ...          "next_token_id_reverse": rng.integers(0, 50, (2, 5)).astype("int32"),
    ...          "weights": np.ones((2, 5), "float32")}
    >>> sorted(model.train_on_batch(batch, return_dict=True))
    ['backward_perplexity', 'forward_perplexity', 'loss']

    Reference: Peters et al., 2018, "Deep contextualized word representations";
    Jean et al., 2015, "On Using Very Large Target Vocabulary for Neural
    Machine Translation" (sampled softmax).
    """

    def __init__(self, options, batch_size=None, seed=None, name="language_model", **kwargs):
        super().__init__(name=name, **kwargs)
        self.options = TrainingOptions.from_dict(options)
        self.batch_size = batch_size
        self.seed = seed
        self.n_tokens_vocab = self.options.n_tokens_vocab
        self.state_rows = int(batch_size if batch_size is not None else self.options.batch_size)
        seed = self.options.seed if seed is None else seed
        negatives = self.options.n_negative_samples_batch
        self.num_sampled = negatives if 0 < negatives < self.n_tokens_vocab else None
        self.sampling_tries = (expected_sampling_tries(self.n_tokens_vocab, self.num_sampled)
                               if self.num_sampled else None)
        dropout = self.options.dropout

        self.char_cnn = char_cnn_from_options(self.options)
        self.bilstm = bilstm_from_options(self.options, dropout=dropout, stateful=True,
                                          max_batch_size=self.state_rows)
        self.directions = _DirectionalLSTM(self.bilstm, name="directions")
        self.output_dropout = keras.layers.Dropout(dropout, seed=seed) if dropout else None
        self.sampler_seed = keras.random.SeedGenerator(seed + 1, name="negative_sampler")
        self.token_mean = _TokenMean()
        self.forward_perplexity = Perplexity(name="forward_perplexity")
        self.backward_perplexity = Perplexity(name="backward_perplexity")
        self.build()

    def compile(self, optimizer="rmsprop", jit_compile="auto", **kwargs):
        # Keras' TensorFlow `scan` (the LSTM loop) is a while loop without an
        # iteration bound, which XLA cannot differentiate; "auto" would pick
        # XLA on a GPU and fail.
        if jit_compile == "auto" and keras.backend.backend() == "tensorflow":
            jit_compile = False
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)

    def build(self, input_shape=None):
        projection_dim = self.options.lstm.projection_dim
        self.char_cnn.build((None, None, self.options.char_cnn.max_characters_per_token))
        self.bilstm.build((None, None, projection_dim))
        self.directions.built = True
        # The softmax and the carried state stay float32 under mixed precision.
        self.softmax_weights = self.add_weight(
            name="softmax_weights", shape=(self.n_tokens_vocab, projection_dim), dtype="float32",
            initializer=keras.initializers.RandomNormal(stddev=1.0 / np.sqrt(projection_dim)))
        self.softmax_bias = self.add_weight(
            name="softmax_bias", shape=(self.n_tokens_vocab,), dtype="float32", initializer="zeros")
        self.built = True

    @property
    def state_variables(self):
        """The carried LSTM state, the `BiLSTM`'s (`BiLSTM.state_variables`).

        `state_h` (n_layers, 2, rows, projection_dim) and `state_c` (..., dim).
        """
        return self.bilstm.state_variables

    @property
    def state_h(self):
        """The `BiLSTM`'s carried `h`."""
        return self.bilstm.state_h

    @property
    def state_c(self):
        """The `BiLSTM`'s carried `c`."""
        return self.bilstm.state_c

    def reset_states(self):
        """Zero the carried state of every row, as at the start of a corpus."""
        self.bilstm.reset_states()

    def call(self, inputs, training=None):
        forward_ids, backward_ids = inputs["char_ids"], inputs["char_ids_reverse"]
        batch, time = ops.shape(forward_ids)[0], ops.shape(forward_ids)[1]
        # Both directions share the CNN: one pass over twice the rows.
        char_ids = ops.concatenate([forward_ids, backward_ids], axis=0)
        mask = token_mask(char_ids)
        embedding = self.char_cnn(char_ids)
        embedding = embedding * ops.cast(mask, embedding.dtype)[..., None]
        outputs = self.directions(embedding[:batch], embedding[batch:], ops.reshape(mask, (2, batch, time)),
                                  training=training)
        top = outputs[-1]
        if self.output_dropout is not None:
            top = self.output_dropout(top, training=training)
        return top

    def token_losses(self, lstm_outputs, targets, training=False):
        """Per-position cross-entropy (2, batch, time), float32.

        Args:
            lstm_outputs: (2, batch, time, projection_dim), what `call` returns.
            targets: int (2, batch, time): forward and backward next tokens.
            training: bool. Sampled softmax when the model has negatives.
        """
        shape = ops.shape(targets)
        inputs = ops.reshape(lstm_outputs, (-1, lstm_outputs.shape[-1]))
        flat_targets = ops.reshape(ops.cast(targets, "int32"), (-1,))
        if training and self.num_sampled:
            # One draw of negatives per step, shared by both directions.
            sampled = log_uniform_candidates(self.n_tokens_vocab, self.num_sampled, self.sampler_seed)
            losses = sampled_softmax_losses(inputs, flat_targets, self.softmax_weights, self.softmax_bias,
                                            sampled, self.sampling_tries)
        else:
            losses = full_softmax_losses(inputs, flat_targets, self.softmax_weights, self.softmax_bias)
        return ops.reshape(losses, shape)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        targets = ops.stack([x["next_token_id"], x["next_token_id_reverse"]])
        weights = ops.cast(x["weights"], "float32")
        losses = self.token_losses(y_pred, targets, training=training)
        # Perplexity counts bilm-tf's targets (no certain <S> after </S>).
        counted = ops.cast(x["perplexity_weights"], "float32") if "perplexity_weights" in x else weights
        self.forward_perplexity.update_state(losses[0], counted)
        self.backward_perplexity.update_state(losses[1], counted)
        # Both directions share the weights, so the mean over the stacked
        # positions is the mean of the two directions' means.
        return self.token_mean(losses, losses, sample_weight=ops.broadcast_to(weights, ops.shape(losses)))

    def get_config(self):
        return {"name": self.name, "options": self.options.to_dict(), "batch_size": self.batch_size,
                "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        check_saved_config(cls, config)
        return cls(**config)
