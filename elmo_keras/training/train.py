"""Pretrain a biLM on your own corpus, measure its perplexity, export its weights.

The three steps of bilm-tf's `bin/train_elmo.py`, `bin/run_test.py` and
`bin/dump_weights.py`, as Python functions:

- `train`: fit a `LanguageModel` with `model.fit`; checkpoints in `save_dir`
  make a killed run resumable by running it again.
- `perplexity`: one deterministic pass over held-out text, full softmax.
- `dump_weights`: the trained biLM as the original options + weights files,
  which `elmo_keras.models.bilm_files.load_bilm` (and bilm-tf, and AllenNLP) read.

Example (a tiny model on the bilm-tf training fixture):

>>> import json, os, tempfile
>>> folder = tempfile.mkdtemp()
>>> options = {"lstm": {"dim": 32, "projection_dim": 16, "n_layers": 2},
...            "char_cnn": {"embedding": {"dim": 4}, "filters": [[1, 8], [2, 8]], "n_highway": 1},
...            "batch_size": 4, "unroll_steps": 5}
>>> with open(os.path.join(folder, "options.json"), "w") as f:
...     json.dump(options, f)
>>> fixture = "tests/data/bilm-tf/train"
>>> result = train(os.path.join(folder, "options.json"), f"{fixture}/vocab.txt", f"{fixture}/data.txt",
...                os.path.join(folder, "run"), max_steps=3, progress=False)
>>> result["step"]
3
>>> sorted(perplexity(os.path.join(folder, "run"), f"{fixture}/vocab.txt", f"{fixture}/data.txt",
...                   batch_size=2))
['average', 'backward', 'forward', 'tokens']
>>> dump_weights(os.path.join(folder, "run"), os.path.join(folder, "elmo_options.json"),
...              os.path.join(folder, "elmo_weights.hdf5"))
>>> from elmo_keras.models.bilm_files import load_bilm
>>> bilm = load_bilm(os.path.join(folder, "elmo_options.json"), os.path.join(folder, "elmo_weights.hdf5"))

A run that finds a checkpoint in its `save_dir` continues from it: same step,
same next batch, same state. This module builds the model and runs `fit`; the
rest has a module each, whose public names can be imported from here too:
`checkpoint` (what `save_dir/checkpoint.h5` holds), `distribution`
(strategies and replicas), `stream` (the batches `fit` iterates, from a data
position on), `callbacks` (progress, TensorBoard, a checkpoint every few
steps) and `evaluate` (`perplexity`, `dump_weights`).
"""

import dataclasses
import os

import h5py
import keras

from elmo_keras.arguments import check_positive_int
from elmo_keras.io.options import OptionsError, read_options_json
from elmo_keras.models.language_model import LanguageModel
from elmo_keras.models.weight_layout import load_weights
from elmo_keras.training.batcher import _STATE_FORMAT, WindowBatcher
from elmo_keras.training.callbacks import _Monitor
from elmo_keras.training.checkpoint import (
    CHECKPOINT_FILE,
    CheckpointError,
    _checkpoint_path,
    load_checkpoint,
    read_checkpoint_meta,
    save_checkpoint,
)
from elmo_keras.training.distribution import _fit_under_strategy, _resolve_distribution
from elmo_keras.training.evaluate import dump_weights, perplexity
from elmo_keras.training.options import ARCHITECTURE_KEYS, OPTIONS_FILE, TrainingOptions
from elmo_keras.training.stream import _dataset, _DataStream
from elmo_keras.training.vocab import Vocabulary, read_utf8_text

# The names this module had before it was split, defined now where their concern is.
__all__ = ["CHECKPOINT_FILE", "OPTIONS_FILE", "CheckpointError", "build_optimizer", "dump_weights",
           "load_checkpoint", "perplexity", "read_checkpoint_meta", "save_checkpoint", "train"]

def build_optimizer(options):
    """bilm-tf's optimizer: Adagrad, learning rate 0.2, initial accumulator 1.0, global clip 10.

    bilm-tf differentiates the loss times `unroll_steps` (the sum over a
    window instead of the mean). Adagrad with initial accumulator `a` and clip
    `n` on the gradient `s * g` makes exactly the updates of Adagrad with
    initial accumulator `a / s**2` and clip `n / s` on `g`, so the model keeps
    its mean loss (and comparable logs) and the recipe's updates are unchanged.
    """
    options = TrainingOptions.from_dict(options)
    scale = float(options.unroll_steps)
    return keras.optimizers.Adagrad(learning_rate=options.learning_rate,
                                    initial_accumulator_value=1.0 / scale ** 2,
                                    epsilon=1e-7 / scale ** 2,
                                    global_clipnorm=options.all_clip_norm_val / scale)


def _count_tokens(batcher):
    return sum(len(read_utf8_text(path).split()) for path in batcher.shards)


def _check_resumable(save_dir, options, meta):
    # Checked here, not when the batcher restores it: that happens inside the
    # tf.data pipeline, whose error would not name the checkpoint.
    data_state = meta["data_state"]
    if data_state is not None and data_state.get("format") != _STATE_FORMAT:
        raise CheckpointError(f"{_checkpoint_path(save_dir)}: unknown batcher state format "
                              f"{data_state.get('format')!r} in field 'data_state.format' of meta_json (this version "
                              f"resumes from format {_STATE_FORMAT}; format 1 came from development versions before "
                              f"the first release); use another save_dir")
    saved_file = os.path.join(save_dir, OPTIONS_FILE)
    if not os.path.exists(saved_file):
        raise CheckpointError(f"{save_dir}: has a checkpoint but no {OPTIONS_FILE}")
    saved = read_options_json(saved_file)
    current = options.to_dict()
    for key in ARCHITECTURE_KEYS + ("batch_size", "unroll_steps", "seed", "shuffle"):
        if saved.get(key) != current.get(key):
            raise CheckpointError(f"{save_dir}: the checkpoint was trained with {key}={saved.get(key)!r}, "
                                  f"these options say {current.get(key)!r}; use another save_dir")
    return saved


def _build_model(options, rows, distribution):
    policy = keras.config.dtype_policy()
    if options.mixed_precision:
        keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        with distribution.scope():
            model = LanguageModel(options, batch_size=rows)
            optimizer = build_optimizer(options)
            model.compile(optimizer=optimizer)
            optimizer.build(model.trainable_variables)
    finally:
        keras.config.set_dtype_policy(policy)
    return model, optimizer


def _restart(model, optimizer, restart_from, distribution):
    """Start from released weights (.hdf5) or from another run's checkpoint."""
    if not os.path.exists(restart_from):
        raise FileNotFoundError(f"{restart_from}: restart_from not found")
    path = _checkpoint_path(restart_from)
    with h5py.File(path, "r") as f:
        is_checkpoint = "meta_json" in f
    if is_checkpoint:
        # Weights and Adagrad accumulators go on; step count, data position and state start anew.
        load_checkpoint(model, path, optimizer, distribution, parts=("trainable", "optimizer_slots"))
    else:
        load_weights(model, path)


def train(options_file, vocab_file, train_prefix, save_dir, epochs=None, max_steps=None, batch_size=None,
          restart_from=None, checkpoint_every=1000, strategy=None, progress=True, log_every=100):
    """Pretrain a biLM (bilm-tf's `bin/train_elmo.py`), resumable.

    Args:
        options_file: str. Options JSON: the architecture and, optionally,
            the training keys of `elmo_keras.training.options`.
        vocab_file: str. One token per line, `<S>`, `</S>`, `<UNK>` first,
            then by descending frequency (`build_vocabulary` writes it).
        train_prefix: str. Glob of training shards, one tokenised sentence a line.
        save_dir: str. Receives `options.json` (the full training options),
            `checkpoint.h5` and TensorBoard logs under `logs/`. When it
            already holds a checkpoint, training continues from it.
        epochs: int or None. Overrides the options' `n_epochs`. An epoch is
            `n_train_tokens // (batch_size * unroll_steps)` steps, as in bilm-tf.
        max_steps: int or None. Stop at this step count at the latest
            (steps are counted over resumed runs).
        batch_size: int or None. Overrides the options' `batch_size`: rows
            per step over all replicas.
        restart_from: str or None. Start (when `save_dir` has no checkpoint)
            from released weights (an original `.hdf5`; the softmax starts
            fresh) or from another run's checkpoint (directory or file;
            weights and Adagrad accumulators, not step or data position).
        checkpoint_every: int. Steps between checkpoints; one is also written
            at the end.
        strategy: None or "auto" (TF backend: `MultiWorkerMirroredStrategy`
            when `TF_CONFIG` names several workers, `MirroredStrategy` with
            several GPUs; JAX backend: `keras.distribution.DataParallel` with
            several devices), "none", a `tf.distribute.Strategy` or a
            `keras.distribution.DataParallel` / `ModelParallel`. Rows are split evenly over
            replicas and each replica carries its rows' state.
        progress: bool. A tqdm bar with loss, perplexities and tokens/s.
        log_every: int. Steps between TensorBoard scalars.

    Returns a dict: `step` (the step count reached), and the last epoch's
    `loss`, `forward_perplexity` and `backward_perplexity` (training values:
    with sampled softmax, lower than the true perplexities), None when no step ran.

    Raises:
        OptionsError, DataError, CheckpointError (ValueErrors) on bad input.

    Example (the 1B Word Benchmark recipe; the module docstring has a tiny run):

        build_vocabulary("1b/training/news.en-*", "vocab.txt")
        train("options.json", "vocab.txt", "1b/training/news.en-*", "runs/elmo")
        # killed? the same call again continues from runs/elmo/checkpoint.h5
    """
    distribution = _resolve_distribution(strategy)
    vocab = Vocabulary(vocab_file)
    options = TrainingOptions.from_json(options_file, n_tokens_vocab=vocab.size)
    overrides = {key: value for key, value in (("n_epochs", epochs), ("batch_size", batch_size))
                 if value is not None}
    if overrides:
        options = TrainingOptions.from_dict({**options.to_dict(), **overrides}, source=options_file)
    if options.batch_size % distribution.replicas:
        raise OptionsError(f"{options_file}: batch_size {options.batch_size} does not split evenly over "
                           f"{distribution.replicas} replicas")
    check_positive_int(checkpoint_every, "checkpoint_every")

    def make_batcher():
        return WindowBatcher(train_prefix, vocab, batch_size=options.batch_size, unroll_steps=options.unroll_steps,
                             max_characters_per_token=options.char_cnn.max_characters_per_token,
                             shuffle=options.shuffle, seed=options.seed, epochs=None)

    probe = make_batcher()  # checks the shards before anything else happens
    meta = read_checkpoint_meta(save_dir) if os.path.isdir(save_dir) else None
    if meta is not None:
        saved = _check_resumable(save_dir, options, meta)
        if options.n_train_tokens is None:
            options = dataclasses.replace(options, n_train_tokens=saved.get("n_train_tokens"))
    if options.n_train_tokens is None:
        options = dataclasses.replace(options, n_train_tokens=_count_tokens(probe))
    if distribution.is_chief:
        os.makedirs(save_dir, exist_ok=True)
        options.to_json(os.path.join(save_dir, OPTIONS_FILE))

    tokens_per_step = options.batch_size * options.unroll_steps
    steps_per_epoch = max(1, options.n_train_tokens // tokens_per_step)
    total_steps = options.n_epochs * steps_per_epoch
    if max_steps is not None:
        total_steps = min(total_steps, max_steps)

    keras.utils.set_random_seed(options.seed)
    model, optimizer = _build_model(options, options.batch_size // distribution.replicas, distribution)
    step, data_state = 0, None
    if meta is not None:
        meta = load_checkpoint(model, save_dir, optimizer, distribution,
                               parts=("trainable", "non_trainable", "lstm_state", "optimizer"))
        step, data_state = meta["step"], meta["data_state"]
    elif restart_from is not None:
        _restart(model, optimizer, restart_from, distribution)

    monitor = _Monitor(optimizer, save_dir, distribution, step, total_steps, checkpoint_every, tokens_per_step,
                       progress, log_every)
    monitor.stream = _DataStream(make_batcher, step, data_state)
    history = {}
    try:
        _fit_under_strategy(model, distribution)
        with distribution.scope():
            while monitor.step < total_steps:
                epoch = monitor.step // steps_per_epoch
                steps = min((epoch + 1) * steps_per_epoch, total_steps) - monitor.step
                # Each fit call reads from where the last one stopped (tf.data
                # read ahead of it, so the position comes from the stream).
                monitor.stream = _DataStream(make_batcher, monitor.step, monitor.stream.position(monitor.step))
                data = _dataset(monitor.stream.batches, probe.output_signature(), distribution,
                                options.batch_size)
                result = model.fit(data, epochs=epoch + 1, initial_epoch=epoch, steps_per_epoch=steps,
                                   callbacks=[monitor], shuffle=False, verbose=0)
                history = {name: values[-1] for name, values in result.history.items()}
        if monitor.saved_step != monitor.step:
            monitor.save(model)
    finally:
        monitor.close()
    return {"step": monitor.step, "loss": history.get("loss"),
            "forward_perplexity": history.get("forward_perplexity"),
            "backward_perplexity": history.get("backward_perplexity")}
