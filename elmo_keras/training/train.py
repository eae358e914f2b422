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

Checkpoint (`save_dir/checkpoint.h5`, replaced atomically, only the last is
kept): every model variable (weights, carried LSTM state, random seeds), every
optimizer variable, the step count and the data position (the
`WindowBatcher.state()` before the next batch). A run that finds a checkpoint
in its `save_dir` continues from it: same step, same next batch, same state.
"""

import collections
import contextlib
import json
import logging
import math
import os
import sys
import threading
import time

import h5py
import keras
import numpy as np

from elmo_keras.io.atomic import atomic_path
from elmo_keras.io.options import OptionsError, save_options
from elmo_keras.models.bilm_files import save_bilm
from elmo_keras.models.language_model import LanguageModel
from elmo_keras.models.weight_layout import load_weights
from elmo_keras.training.data import WindowBatcher
from elmo_keras.training.options import ARCHITECTURE_KEYS, validate_training_options
from elmo_keras.training.vocab import Vocabulary, read_utf8_text

CHECKPOINT_FILE = "checkpoint.h5"
OPTIONS_FILE = "options.json"
# 2: every dataset carries the variable's name (`_variable_names`) and is
# restored by it; 1: the same layout, restored by position (still read, by
# the names its recorded paths give).
_CHECKPOINT_FORMAT = 2
_READABLE_FORMATS = (1, 2)
_logger = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or does not fit the model."""


# -- options and optimizer -------------------------------------------------------


def _read_json(path, error_type=OptionsError):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError as e:
        raise error_type(f"{path}: file not found") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise error_type(f"{path}: cannot read JSON: {e}") from e


def build_optimizer(options):
    """bilm-tf's optimizer: Adagrad, learning rate 0.2, initial accumulator 1.0, global clip 10.

    bilm-tf differentiates the loss times `unroll_steps` (the sum over a
    window instead of the mean). Adagrad with initial accumulator `a` and clip
    `n` on the gradient `s * g` makes exactly the updates of Adagrad with
    initial accumulator `a / s**2` and clip `n / s` on `g`, so the model keeps
    its mean loss (and comparable logs) and the recipe's updates are unchanged.
    """
    scale = float(options["unroll_steps"])
    return keras.optimizers.Adagrad(learning_rate=options["learning_rate"],
                                    initial_accumulator_value=1.0 / scale ** 2,
                                    epsilon=1e-7 / scale ** 2,
                                    global_clipnorm=options["all_clip_norm_val"] / scale)


def _count_tokens(batcher):
    return sum(len(read_utf8_text(path).split()) for path in batcher.shards)


# -- distribution ----------------------------------------------------------------


class _Distribution:
    """Where the steps run: the tf.distribute strategy or keras distribution, if any."""

    def __init__(self, strategy=None, keras_distribution=None):
        self.strategy = strategy
        self.keras_distribution = keras_distribution
        self.replicas = strategy.num_replicas_in_sync if strategy is not None else 1

    @property
    def local_replicas(self):
        if self.strategy is None:
            return 1
        return len(self.strategy.extended.worker_devices)

    @property
    def multi_worker(self):
        return self.local_replicas != self.replicas

    @property
    def is_chief(self):
        resolver = getattr(self.strategy, "cluster_resolver", None)
        if resolver is None:
            return True
        cluster = resolver.cluster_spec().as_dict()
        if not cluster:
            return True
        task_type, task_id = resolver.task_type, resolver.task_id
        return task_type == "chief" or (task_type == "worker" and task_id == 0 and "chief" not in cluster)

    def scope(self):
        if self.strategy is not None:
            return self.strategy.scope()
        if self.keras_distribution is not None:
            return self.keras_distribution.scope()
        return contextlib.nullcontext()


def _resolve_distribution(strategy):
    """Turn the `strategy` argument of `train` into a `_Distribution`."""
    if strategy == "none" or strategy is False:
        return _Distribution()
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if isinstance(strategy, tf.distribute.Strategy):
            return _Distribution(strategy=strategy)
        if strategy not in (None, "auto"):
            raise ValueError(f"strategy must be None, 'auto', 'none' or a tf.distribute.Strategy, found {strategy!r}")
        tf_config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
        workers = sum(len(v) for k, v in tf_config.get("cluster", {}).items() if k in ("chief", "worker"))
        if workers > 1:
            return _Distribution(strategy=tf.distribute.MultiWorkerMirroredStrategy())
        if len(tf.config.list_logical_devices("GPU")) > 1:
            return _Distribution(strategy=tf.distribute.MirroredStrategy())
        return _Distribution()
    if isinstance(strategy, (keras.distribution.DataParallel, keras.distribution.ModelParallel)):
        return _Distribution(keras_distribution=strategy)
    if strategy not in (None, "auto"):
        raise ValueError(f"strategy must be None, 'auto', 'none' or a keras.distribution DataParallel or ModelParallel "
                         f"on the {backend} backend, found {strategy!r}")
    if backend == "jax" and len(keras.distribution.list_devices()) > 1:
        return _Distribution(keras_distribution=keras.distribution.DataParallel())
    return _Distribution()


# -- data -------------------------------------------------------------------------


class _DataStream:
    """Batches from a data position on, restartable, remembering the position of every step.

    Keras may open an iterator, take a batch and open another (to build the
    model under tf.distribute), and tf.data reads ahead of the model; so each
    iteration starts its own batcher at the start position, and the position
    of a step is looked up afterwards instead of being the batcher's current one.
    """

    _KEEP = 256

    def __init__(self, make_batcher, start_step, start_state):
        self.make_batcher = make_batcher
        self.start_step = start_step
        self._positions = collections.OrderedDict([(start_step, start_state)])
        self._lock = threading.Lock()

    def batches(self):
        batcher = self.make_batcher()
        if self._positions[self.start_step] is not None:
            batcher.restore(self._positions[self.start_step])
        batches = iter(batcher)
        step = self.start_step
        while True:
            self._remember(step, batcher.state())
            batch = next(batches, None)
            if batch is None:
                return
            yield batch
            step += 1

    def _remember(self, step, state):
        with self._lock:
            self._positions[step] = state
            while len(self._positions) > self._KEEP:
                self._positions.popitem(last=False)

    def position(self, step):
        """The batcher state before the batch of `step` (counted from the start of training)."""
        with self._lock:
            if step in self._positions:
                return self._positions[step]
            known = [s for s in self._positions if s <= step]
            if not known:
                raise RuntimeError(f"no data position at or before step {step}")
            start = max(known)
            state = self._positions[start]
        batcher = self.make_batcher()
        if state is not None:
            batcher.restore(state)
        batcher.skip_batches(step - start)
        state = batcher.state()
        self._remember(step, state)
        return state


def _dataset(batches, signature, distribution, global_batch):
    """What `fit` iterates.

    On TensorFlow a tf.data pipeline that reads ahead (under tf.distribute
    split by rows over the replicas); on other backends the numpy batches as
    they come. `batches` is a generator function; every iteration of the
    pipeline calls it anew.
    """
    if keras.backend.backend() != "tensorflow":
        return ((batch,) for batch in batches())  # Keras wants (inputs,) from a generator
    import tensorflow as tf

    specs = {name: tf.TensorSpec(shape, tf.as_dtype(dtype), name=name) for name, (shape, dtype) in signature.items()}

    def pipeline():
        return tf.data.Dataset.from_generator(batches, output_signature=specs)

    if distribution.strategy is None or distribution.replicas == 1:
        return pipeline().prefetch(2)
    replicas, local = distribution.replicas, distribution.local_replicas
    rows = global_batch // replicas

    def dataset_fn(context):
        # Every worker reads the same global batches and keeps the rows of
        # its own replicas, one element per local replica in replica order
        # (how tf.distribute hands a pipeline's elements to its devices), so
        # each replica always sees the same rows and carries their state.
        first = context.input_pipeline_id * local * rows

        def split(batch):
            return {name: tf.reshape(value[first:first + local * rows], (local, rows) + tuple(value.shape[1:]))
                    for name, value in batch.items()}

        return pipeline().map(split).unbatch().prefetch(2 * local)

    return distribution.strategy.distribute_datasets_from_function(dataset_fn)


# -- checkpoints ------------------------------------------------------------------


def _local_values(variable, distribution):
    """The per-replica values of an on-read variable, in replica order (or its one value)."""
    if distribution.strategy is not None and distribution.replicas > 1:
        return [np.asarray(v.numpy()) for v in distribution.strategy.experimental_local_results(variable.value)]
    return [np.asarray(variable.numpy())]


def _state_arrays(model, distribution):
    """The carried LSTM state, all replicas' rows side by side, or None when not all are here."""
    if distribution.multi_worker:
        return None
    return [np.concatenate(_local_values(v, distribution), axis=2) for v in model.state_variables]


def _assign_state(model, arrays, distribution):
    for variable, value in zip(model.state_variables, arrays):
        if distribution.strategy is not None and distribution.replicas > 1:
            parts = np.split(value, distribution.replicas, axis=2)
            for component, part in zip(distribution.strategy.experimental_local_results(variable.value), parts):
                component.assign(part)
        else:
            variable.assign(value)


def _other_model_variables(model):
    state = {id(v) for v in model.state_variables}
    return [v for v in model.non_trainable_variables if id(v) not in state]


def _strip(path, prefix):
    return path[len(prefix) + 1:] if path.startswith(prefix + "/") else path


def _seed_generator_names(model):
    """id(seed state variable) -> its attribute path from the model ("bilstm/dropout_layer/seed_generator").

    Keras names seed generators and dropout layers by a per-process counter
    ("seed_generator_3"), so their own paths differ from run to run; the
    attributes that hold them do not.
    """
    names, seen, queue = {}, set(), [("", model)]
    while queue:
        prefix, layer = queue.pop(0)
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        for attribute, value in vars(layer).items():
            if isinstance(value, keras.random.SeedGenerator):
                names.setdefault(id(value.state), f"{prefix}{attribute}/{value.state.name}")
            elif isinstance(value, keras.layers.Layer):
                queue.append((f"{prefix}{attribute}/", value))
    return names


def _variable_names(model, optimizer=None):
    """id(variable) -> name for every model (and optimizer) variable, as checkpoints key them.

    A model variable is named by its `variable.path` less the model's name
    ("bilstm/layer_0_kernel", "char_cnn/highway_0/carry_kernel", "state_h"),
    a seed generator's state by the attributes that lead to it, an optimizer
    variable by its path less the optimizer's name ("iteration"), and a
    slot by the variable it belongs to ("slot/bilstm/layer_0_kernel/accumulator").
    None of these depends on the order in which the variables were created.
    """
    seeds = _seed_generator_names(model)
    names = {}
    for variable in model.variables:
        names[id(variable)] = seeds.get(id(variable), _strip(variable.path, model.name))
    if optimizer is not None:
        # Keras names a slot "<the variable's path, '/' -> '_'>_<slot>".
        flat = sorted(((v.path.replace("/", "_") + "_", names[id(v)]) for v in model.trainable_variables),
                      key=lambda item: -len(item[0]))
        for variable in optimizer.variables:
            rest = _strip(variable.path, optimizer.name)
            for prefix, name in flat:
                if rest.startswith(prefix):
                    rest = f"slot/{name}/{rest[len(prefix):]}"
                    break
            names[id(variable)] = rest
    return names


def _write_group(f, name, variables, names, values=None):
    group = f.create_group(name)
    used = set()
    for i, variable in enumerate(variables):
        value = np.asarray(variable.numpy()) if values is None else values[i]
        key = names[id(variable)]
        if key in used:
            raise CheckpointError(f"two variables of '{name}' have the name {key!r}; cannot checkpoint them apart")
        used.add(key)
        dataset = group.create_dataset(f"{i:05d}", data=value)
        dataset.attrs["name"] = key
        dataset.attrs["path"] = variable.path


def save_checkpoint(model, optimizer, save_dir, step, data_state, distribution=None):
    """Write `save_dir/checkpoint.h5` atomically: variables, optimizer, step, data position.

    Groups `trainable`, `non_trainable` (random seeds), `lstm_state` (all
    replicas' rows; absent over several workers, where one process does not
    hold them all) and `optimizer` hold one dataset per variable, numbered in
    the model's variable order, each with attributes `name` (the variable's
    name, by which `load_checkpoint` restores it, see `_variable_names`) and
    `path` (Keras' `variable.path` when written); `meta_json` holds the
    format, step, data position and the replica count. `train` calls it.
    """
    distribution = distribution or _Distribution()
    meta = {"format": _CHECKPOINT_FORMAT, "step": int(step), "data_state": data_state,
            "replicas": distribution.replicas}
    state = _state_arrays(model, distribution)
    names = _variable_names(model, optimizer)
    path = os.path.join(save_dir, CHECKPOINT_FILE)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("meta_json", data=np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8))
            _write_group(f, "trainable", model.trainable_variables, names)
            _write_group(f, "non_trainable", _other_model_variables(model), names)
            if state is not None:
                _write_group(f, "lstm_state", model.state_variables, names, state)
            _write_group(f, "optimizer", optimizer.variables, names)


def _checkpoint_path(path):
    return os.path.join(path, CHECKPOINT_FILE) if os.path.isdir(path) else path


def read_checkpoint_meta(path):
    """The step count and data position of a checkpoint (a file or a `save_dir`), or None.

    Example: `read_checkpoint_meta("run")["step"]` is the step a rerun continues from.
    """
    path = _checkpoint_path(path)
    if not os.path.exists(path):
        return None
    try:
        with h5py.File(path, "r") as f:
            meta = json.loads(bytes(f["meta_json"][...]).decode("utf-8"))
    except (OSError, KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint: {e}") from e
    if meta.get("format") not in _READABLE_FORMATS:
        raise CheckpointError(f"{path}: unknown checkpoint format {meta.get('format')!r} (this version reads "
                              f"formats {', '.join(map(str, _READABLE_FORMATS))}; a newer elmo_keras wrote it?)")
    return meta


def _legacy_name(recorded_path):
    """The name a format-1 dataset's recorded path gives: the path less its first part.

    Format 1 recorded only `variable.path`, whose first part is the model's or
    the optimizer's name and, for seed generators, a per-process counter;
    what follows names the variable (seed states all give the same name, and
    are paired in order).
    """
    return recorded_path.split("/", 1)[-1]


def _listing(names):
    names = sorted(names)
    shown = ", ".join(repr(n) for n in names[:8])
    return shown + (f" and {len(names) - 8} more" if len(names) > 8 else "") if names else "none"


def _read_group(f, name, variables, names, path, legacy, skip=()):
    """The stored value of each of `variables`, found by name; None for those in `skip` (ids)."""
    if name not in f:
        raise CheckpointError(f"{path}: group '{name}' not found")
    group = f[name]
    stored = collections.defaultdict(list)
    for dataset_name in sorted(group):
        dataset = group[dataset_name]
        if legacy:
            key = _legacy_name(str(dataset.attrs.get("path", dataset_name)))
        else:
            key = dataset.attrs.get("name")
            if key is None:
                raise CheckpointError(f"{path}: '{name}/{dataset_name}' has no variable name (damaged checkpoint?)")
        stored[str(key)].append(dataset)
    wanted = collections.defaultdict(list)
    for variable in variables:
        wanted[_legacy_name(variable.path) if legacy else names[id(variable)]].append(variable)
    missing = [k for k in wanted if len(stored.get(k, ())) < len(wanted[k])]
    unexpected = [k for k in stored if len(wanted.get(k, ())) < len(stored[k])]
    if missing or unexpected:
        raise CheckpointError(f"{path}: the variables in '{name}' do not match the model's (was it written for "
                              f"other options or another model?): missing from the checkpoint: "
                              f"{_listing(missing)}; in the checkpoint but not the model: {_listing(unexpected)}")
    found = {}
    for key, group_variables in wanted.items():
        for variable, dataset in zip(group_variables, stored[key]):
            if id(variable) in skip:
                continue
            if tuple(dataset.shape) != tuple(variable.shape):
                raise CheckpointError(f"{path}: '{name}' variable {key!r} has shape {tuple(dataset.shape)}, "
                                      f"the model's {variable.path} has {tuple(variable.shape)}")
            found[id(variable)] = dataset[...]
    return [found.get(id(v)) for v in variables]


def load_checkpoint(model, path, optimizer=None, distribution=None, parts=("trainable",)):
    """Load parts of a checkpoint into a model (and its optimizer).

    Args:
        model: a built `LanguageModel` with the checkpoint's options.
        path: a checkpoint file or a directory holding `checkpoint.h5`.
        optimizer: the model's optimizer, built, when `parts` has "optimizer".
        distribution: where the model lives (for the per-replica LSTM state).
        parts: any of "trainable" (the weights), "non_trainable" (random
            seeds), "lstm_state" (the carried state; skipped when the
            checkpoint lacks it or has another number of rows, and over
            several workers), "optimizer" (every optimizer variable) and
            "optimizer_slots" (the accumulators, not the step count or the
            learning rate).

    Returns the checkpoint's metadata (step, data position).

    Example (the trained weights of a `train` save_dir, without the optimizer):

        model = LanguageModel(json.load(open("run/options.json")), batch_size=16)
        load_checkpoint(model, "run")
    """
    distribution = distribution or _Distribution()
    path = _checkpoint_path(path)
    meta = read_checkpoint_meta(path)
    if meta is None:
        raise CheckpointError(f"{path}: checkpoint not found")
    assignments = []
    uses_optimizer = "optimizer" in parts or "optimizer_slots" in parts
    names = _variable_names(model, optimizer if uses_optimizer else None)
    legacy = meta["format"] == 1
    with h5py.File(path, "r") as f:
        if "trainable" in parts:
            values = _read_group(f, "trainable", model.trainable_variables, names, path, legacy)
            assignments += zip(model.trainable_variables, values)
        if "non_trainable" in parts:
            others = _other_model_variables(model)
            assignments += zip(others, _read_group(f, "non_trainable", others, names, path, legacy))
        if uses_optimizer:
            # The scalars are the step count and the learning rate; the rest
            # are the per-weight slots (Adagrad's accumulators).
            skip = () if "optimizer" in parts else {id(v) for v in optimizer.variables if not v.shape}
            values = _read_group(f, "optimizer", optimizer.variables, names, path, legacy, skip)
            assignments += [(v, value) for v, value in zip(optimizer.variables, values) if value is not None]
        state = None
        if "lstm_state" in parts and "lstm_state" in f and not distribution.multi_worker:
            # Rows are checked here, not by shape: another row count starts from zeros.
            group = f["lstm_state"]
            by_name = {_legacy_name(str(group[k].attrs.get("path", k))) if legacy else str(group[k].attrs.get("name")):
                       group[k] for k in group}
            keys = [_legacy_name(v.path) if legacy else names[id(v)] for v in model.state_variables]
            if sorted(by_name) != sorted(keys):
                raise CheckpointError(f"{path}: the variables in 'lstm_state' do not match the model's: "
                                      f"missing from the checkpoint: {_listing(set(keys) - set(by_name))}; in the "
                                      f"checkpoint but not the model: {_listing(set(by_name) - set(keys))}")
            state = [by_name[k][...] for k in keys]
            rows = [v.shape[2] * distribution.replicas for v in model.state_variables]
            if [s.shape[2] for s in state] != rows:
                _logger.warning("%s: the carried LSTM state has another number of rows; starting from zeros", path)
                state = None
    for variable, value in assignments:
        variable.assign(value)
    if state is not None:
        _assign_state(model, state, distribution)
    return meta


# -- callbacks --------------------------------------------------------------------


class _Monitor(keras.callbacks.Callback):
    """Counts steps; shows progress, writes TensorBoard scalars and checkpoints.

    Args:
        optimizer, save_dir, distribution: what a checkpoint needs.
        step: int. The step count training starts from.
        total_steps: int. Where it ends (for the progress bar).
        checkpoint_every: int. Steps between checkpoints.
        tokens_per_step: int. Token positions per step, all replicas.
        progress: bool. Show a tqdm bar.
        log_every: int. Steps between TensorBoard scalars.

    `stream` (the `_DataStream` of the running fit call) is set by `train`.
    """

    def __init__(self, optimizer, save_dir, distribution, step, total_steps, checkpoint_every, tokens_per_step,
                 progress, log_every):
        super().__init__()
        self.optimizer = optimizer
        self.save_dir = save_dir
        self.distribution = distribution
        self.step = self.saved_step = step
        self.total_steps = total_steps
        self.checkpoint_every = checkpoint_every
        self.tokens_per_step = tokens_per_step
        self.log_every = log_every
        self.stream = None
        self.bar = self.writer = None
        if distribution.is_chief and progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total_steps, initial=step, desc="training", unit="step", file=sys.stderr)
        if distribution.is_chief:
            try:
                import tensorflow as tf

                self.writer = tf.summary.create_file_writer(os.path.join(save_dir, "logs", "train"))
            except ImportError:
                pass
        self._rate_start = None
        self._shown = 0.0

    def save(self, model):
        """Checkpoint `model` at the current step (on the chief)."""
        if self.distribution.is_chief:
            save_checkpoint(model, self.optimizer, self.save_dir, self.step, self.stream.position(self.step),
                            self.distribution)
        self.saved_step = self.step

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        # Plain floats (over several workers a step's logs are 1-element vectors).
        logs = {name: float(np.mean(value)) for name, value in (logs or {}).items()}
        now = time.time()
        if self._rate_start is None:  # timed from the end of the first step, which compiles
            self._rate_start = (now, self.step)
        start_time, start_step = self._rate_start
        tokens_per_second = (self.step - start_step) * self.tokens_per_step / max(now - start_time, 1e-9)
        if self.bar is not None:
            self.bar.update(1)
            if now - self._shown > 0.5 or self.step == self.total_steps:
                self._shown = now
                self.bar.set_postfix(collections.OrderedDict([
                    ("loss", f"{logs.get('loss', float('nan')):.3f}"),
                    ("ppl_fwd", f"{logs.get('forward_perplexity', float('nan')):.1f}"),
                    ("ppl_bwd", f"{logs.get('backward_perplexity', float('nan')):.1f}"),
                    ("tokens/s", f"{tokens_per_second:.0f}")]))
        if self.writer is not None and self.step % self.log_every == 0:
            import tensorflow as tf

            with self.writer.as_default(step=self.step):
                for name in ("loss", "forward_perplexity", "backward_perplexity"):
                    if name in logs:
                        tf.summary.scalar(name, logs[name])
                tf.summary.scalar("tokens_per_second", tokens_per_second)
        if self.step % self.checkpoint_every == 0:
            # `self.model` (not a reference kept elsewhere): on JAX, reading it
            # puts the state of the running epoch back into the variables.
            self.save(self.model)

    def close(self):
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()


# -- train --------------------------------------------------------------------------


def _check_resumable(save_dir, options):
    saved_file = os.path.join(save_dir, OPTIONS_FILE)
    if not os.path.exists(saved_file):
        raise CheckpointError(f"{save_dir}: has a checkpoint but no {OPTIONS_FILE}")
    saved = _read_json(saved_file)
    for key in ARCHITECTURE_KEYS + ("batch_size", "unroll_steps", "seed", "shuffle"):
        if saved.get(key) != options.get(key):
            raise CheckpointError(f"{save_dir}: the checkpoint was trained with {key}={saved.get(key)!r}, "
                                  f"these options say {options.get(key)!r}; use another save_dir")
    return saved


def _build_model(options, rows, distribution):
    policy = keras.config.dtype_policy()
    if options["mixed_precision"]:
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


def _fit_under_strategy(model, distribution):
    """Work around two Keras (3.15) limits of `fit` under tf.distribute.

    - Before fitting under a strategy Keras peeks at a batch and reduces it
      over replicas, to build the model; the reduction fails for dict batches
      with `MultiWorkerMirroredStrategy`. The model is built already, and
      `fit` inside the strategy's scope takes the scope's strategy when the
      model has none of its own.
    - Over several workers Keras averages each step's logs along axis 0,
      which scalars do not have (tensorflow/tensorflow#72388); the step
      returns them as 1-element vectors, and the average is a scalar again.
    """
    if distribution.strategy is None:
        return
    model._distribute_strategy = None
    if distribution.multi_worker:
        train_step = model.train_step

        def train_step_with_vector_logs(data):
            return {name: keras.ops.reshape(value, (1,)) for name, value in train_step(data).items()}

        model.train_step = train_step_with_vector_logs


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
    options = validate_training_options(_read_json(options_file), n_tokens_vocab=vocab.size, source=options_file)
    if epochs is not None:
        options["n_epochs"] = epochs
    if batch_size is not None:
        options["batch_size"] = batch_size
    options = validate_training_options(options, source=options_file)
    if options["batch_size"] % distribution.replicas:
        raise OptionsError(f"{options_file}: batch_size {options['batch_size']} does not split evenly over "
                           f"{distribution.replicas} replicas")
    if not isinstance(checkpoint_every, int) or checkpoint_every <= 0:
        raise ValueError(f"checkpoint_every must be a positive integer, found {checkpoint_every!r}")

    def make_batcher():
        return WindowBatcher(train_prefix, vocab, batch_size=options["batch_size"],
                             unroll_steps=options["unroll_steps"],
                             max_characters_per_token=options["char_cnn"]["max_characters_per_token"],
                             shuffle=options["shuffle"], seed=options["seed"], epochs=None)

    probe = make_batcher()  # checks the shards before anything else happens
    meta = read_checkpoint_meta(save_dir) if os.path.isdir(save_dir) else None
    if meta is not None:
        saved = _check_resumable(save_dir, options)
        options.setdefault("n_train_tokens", saved.get("n_train_tokens"))
    if options.get("n_train_tokens") is None:
        options["n_train_tokens"] = _count_tokens(probe)
    if distribution.is_chief:
        os.makedirs(save_dir, exist_ok=True)
        save_options(options, os.path.join(save_dir, OPTIONS_FILE))

    tokens_per_step = options["batch_size"] * options["unroll_steps"]
    steps_per_epoch = max(1, options["n_train_tokens"] // tokens_per_step)
    total_steps = options["n_epochs"] * steps_per_epoch
    if max_steps is not None:
        total_steps = min(total_steps, max_steps)

    keras.utils.set_random_seed(options["seed"])
    model, optimizer = _build_model(options, options["batch_size"] // distribution.replicas, distribution)
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
                                options["batch_size"])
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


# -- perplexity and weights ----------------------------------------------------------


def _saved_options(save_dir, vocab_size=None):
    path = os.path.join(save_dir, OPTIONS_FILE)
    return validate_training_options(_read_json(path), n_tokens_vocab=vocab_size, source=path)


def perplexity(save_dir, vocab_file, test_prefix, batch_size=128, progress=False):
    """Held-out perplexity of a trained biLM (bilm-tf's `bin/run_test.py`).

    One pass over every sentence of `test_prefix` in file order: `batch_size`
    rows, each a continuous stream whose LSTM state is carried from window to
    window, full softmax. Every token, `</S>` included, is a target once,
    except the first `<S>` of each row.

    Args:
        save_dir: str. A `train` save_dir (options.json + checkpoint.h5).
        vocab_file: str. The training vocabulary.
        test_prefix: str. Glob of held-out shards.
        batch_size: int. Rows per batch (any; only throughput changes).
        progress: bool. Show Keras's progress bar.

    Returns a dict: `forward` and `backward` (exp of each direction's mean
    loss), `average` (exp of the mean of both, the number bilm-tf prints) and
    `tokens` (targets per direction).

    Example (after the module docstring's run):

        perplexity("run", "tests/data/bilm-tf/train/vocab.txt", "tests/data/bilm-tf/train/data.txt",
                   batch_size=2)
        # {'forward': 17.2, 'backward': 17.0, 'average': 17.1, 'tokens': 142}
    """
    vocab = Vocabulary(vocab_file)
    options = _saved_options(save_dir, vocab.size)
    model = LanguageModel(options, batch_size=batch_size)
    model.compile()
    load_checkpoint(model, save_dir, parts=("trainable",))
    def make_batcher():
        return WindowBatcher(test_prefix, vocab, batch_size=batch_size, unroll_steps=options["unroll_steps"],
                             max_characters_per_token=options["char_cnn"]["max_characters_per_token"],
                             shuffle=False, epochs=1)

    tokens = {}

    def batches():
        tokens.clear()  # an iteration that starts again counts again
        for batch in make_batcher():
            tokens["n"] = tokens.get("n", 0.0) + float(batch["perplexity_weights"].sum())
            yield batch

    probe = make_batcher()
    steps = probe.skip_batches(sys.maxsize)  # a pass without arrays: Keras wants the length
    data = _dataset(batches, probe.output_signature(), _Distribution(), batch_size)
    result = model.evaluate(data, steps=steps, return_dict=True, verbose=1 if progress else 0)
    forward, backward = float(result["forward_perplexity"]), float(result["backward_perplexity"])
    return {"forward": forward, "backward": backward,
            "average": float(math.exp(0.5 * (math.log(forward) + math.log(backward)))),
            "tokens": int(round(tokens.get("n", 0.0)))}


def dump_weights(save_dir, options_file, weight_file):
    """Write a trained biLM as the original options + weights files (bilm-tf's `bin/dump_weights.py`).

    The weights are the checkpoint's values bit for bit; `options_file` is the
    training options with `char_cnn.n_characters` 262, as prediction code
    requires. Both files appear atomically. `load_bilm(options_file,
    weight_file)` then gives the activations of the trained CharCNN + BiLSTM.

    Example (after the module docstring's run):

        dump_weights("run", "elmo_options.json", "elmo_weights.hdf5")
        embedder = elmo_keras.ElmoEmbedder("elmo_options.json", "elmo_weights.hdf5")
    """
    options = _saved_options(save_dir)
    model = LanguageModel(options, batch_size=1)
    load_checkpoint(model, save_dir, parts=("trainable",))
    save_bilm(model, options_file, weight_file, options=options)
