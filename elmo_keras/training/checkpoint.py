"""The training checkpoint: one hdf5 file that makes a killed `train` run resumable.

`save_dir/checkpoint.h5`, replaced atomically, only the last kept: every model
variable (weights, carried LSTM state, random seeds), every optimizer
variable, the step count and the data position (the `WindowBatcher.state()`
before the next batch). Each variable is stored under a name that does not
depend on the order in which variables were created (`_variable_names`), and
restored by it.

Why not `keras.callbacks.BackupAndRestore` (Keras 3.15.1, measured with
`python benchmarks/backup_and_restore_probe.py`: the tiny job of
`tests/test_kill_resume.py`, 18 steps, interrupted after step 10, against the
uninterrupted run; numbers in `benchmarks/RESULTS.md`). Its backup is
`model.save_weights` (weights, all optimizer variables with the step count,
the carried LSTM state) plus `{"epoch", "batch"}`, and a resumed `fit` restarts
at the saved epoch only. So, as it is, it loses:
- the data position: a generator or tf.data pipeline starts again at the
  corpus' first batch (final weights differ by up to 0.23, the LSTM state by 0.70);
- the step inside an epoch: "batch" is written but never read, so with
  `save_freq=4` the resumed fit runs the whole epoch again (20 steps, not 18);
- the random seed states (dropout, negative sampler): `save_weights` leaves
  out `SeedGenerator` states;
- under `MirroredStrategy` the per-replica LSTM state: `save_weights` writes
  the replicas' mean (two replicas carrying 1 and 2 come back as 1.5 and 1.5);
  this format keeps every replica's rows;
- atomicity: it writes `latest.weights.h5` in place, then the metadata; a file
  cut in half makes the next `fit` raise OSError (truncated file) unless
  `double_checkpoint=True`, and a kill between the two files pairs new weights
  with an old epoch;
- over several workers (from its source, not run) every worker writes the
  same files, and at the end of each `fit` every worker deletes them.
It resumes bit for bit with three pieces of glue: `fit` epochs as long as the
interval between backups (`save_freq="epoch"`), the seed states saved beside
the backup (a subclass), and the data started from the restored
`optimizer.iterations`, read in `on_train_begin` (the generator itself reads
it too late: 1 on a fresh run, 7 on a run resumed at 6) and reached with
`WindowBatcher.skip_batches`, which re-reads the corpus up to that step on
every resume where this format stores the position. It would still need this
format's per-replica state and atomic write, so `train` keeps its own.
"""

import collections
import json
import logging
import os

import h5py
import keras
import numpy as np

from elmo_keras.io.atomic import atomic_path
from elmo_keras.training.distribution import _Distribution

CHECKPOINT_FILE = "checkpoint.h5"
# Every dataset carries the variable's name (`_variable_names`) and is
# restored by it. Format 1 (restored by position) never left development.
# Format 3: the carried LSTM state is the BiLSTM's ("bilstm/state_h"); format 2
# kept it in the model ("state_h") and is read with these names mapped.
_CHECKPOINT_FORMAT = 3
_RENAMED = {2: {"state_h": "bilstm/state_h", "state_c": "bilstm/state_c"}}
_logger = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or does not fit the model."""


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
    if meta.get("format") != _CHECKPOINT_FORMAT and meta.get("format") not in _RENAMED:
        readable = " and ".join(str(f) for f in sorted([*_RENAMED, _CHECKPOINT_FORMAT]))
        raise CheckpointError(f"{path}: unknown checkpoint format {meta.get('format')!r} in field 'format' of "
                              f"meta_json (this version reads formats {readable}; format 1 came from "
                              f"development versions before the first release, a higher one from a newer elmo_keras)")
    return meta


def _listing(names):
    names = sorted(names)
    shown = ", ".join(repr(n) for n in names[:8])
    return shown + (f" and {len(names) - 8} more" if len(names) > 8 else "") if names else "none"


def _stored_name(dataset, renamed):
    """The name a dataset's variable has in this version (None when the dataset has none)."""
    key = dataset.attrs.get("name")
    return None if key is None else renamed.get(str(key), str(key))


def _read_group(f, name, variables, names, path, skip=()):
    """The stored value of each of `variables`, found by name; None for those in `skip` (ids)."""
    if name not in f:
        raise CheckpointError(f"{path}: group '{name}' not found")
    group = f[name]
    stored = collections.defaultdict(list)
    for dataset_name in sorted(group):
        dataset = group[dataset_name]
        key = _stored_name(dataset, {})
        if key is None:
            raise CheckpointError(f"{path}: '{name}/{dataset_name}' has no variable name (damaged checkpoint?)")
        stored[key].append(dataset)
    wanted = collections.defaultdict(list)
    for variable in variables:
        wanted[names[id(variable)]].append(variable)
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
    renamed = _RENAMED.get(meta["format"], {})
    assignments = []
    uses_optimizer = "optimizer" in parts or "optimizer_slots" in parts
    names = _variable_names(model, optimizer if uses_optimizer else None)
    with h5py.File(path, "r") as f:
        if "trainable" in parts:
            values = _read_group(f, "trainable", model.trainable_variables, names, path)
            assignments += zip(model.trainable_variables, values)
        if "non_trainable" in parts:
            others = _other_model_variables(model)
            assignments += zip(others, _read_group(f, "non_trainable", others, names, path))
        if uses_optimizer:
            # The scalars are the step count and the learning rate; the rest
            # are the per-weight slots (Adagrad's accumulators).
            skip = () if "optimizer" in parts else {id(v) for v in optimizer.variables if not v.shape}
            values = _read_group(f, "optimizer", optimizer.variables, names, path, skip)
            assignments += [(v, value) for v, value in zip(optimizer.variables, values) if value is not None]
        state = None
        if "lstm_state" in parts and "lstm_state" in f and not distribution.multi_worker:
            # Rows are checked here, not by shape: another row count starts from zeros.
            group = f["lstm_state"]
            by_name = {_stored_name(group[k], renamed): group[k] for k in group}
            keys = [names[id(v)] for v in model.state_variables]
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

