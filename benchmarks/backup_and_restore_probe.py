"""Could `keras.callbacks.BackupAndRestore` replace `train`'s checkpoint? Measured on one tiny job.

    python benchmarks/backup_and_restore_probe.py        # about 1-2 min on 2 cores, TensorFlow backend

The job is the one `tests/test_kill_resume.py` kills: the tiny biLM (2 layers of
32 cells, projection 16, char-CNN of 16 filters, dropout 0.1, 8 negative
samples) on the bilm-tf training fixture (vocabulary of 33, 134 tokens: epochs
of 6 steps of 4 rows x 5 tokens). Each run trains 18 steps (3 epochs). An
interrupted run raises from a callback after step 10 (mid epoch 2), and the same
job is then started again in a fresh model, as a killed job would be:

- `package`: `train` with `checkpoint_every=4` (its last checkpoint is step 8,
  mid-epoch); the second `train` call resumes from `checkpoint.h5`.
- `keras ...`: the same model, optimizer, seed and batches, fitted in one
  `model.fit(epochs=3, steps_per_epoch=6)` with `BackupAndRestore` (and
  nothing of the package's checkpoint); the second fit resumes from its backup.
  "data from the start": the data is what a Keras user passes, a
  tf.data pipeline of the batcher's generator, which starts at the corpus'
  first batch on every new process; "data from optimizer.iterations": glue,
  the generator skips `optimizer.iterations` batches when it starts.

Every run's final model and optimizer variables are compared with the
uninterrupted `train` run's, by the names `checkpoint.py` gives them:
`np.array_equal` and the largest absolute difference per group (trainable
weights, optimizer slots and step count, the carried LSTM state, the random
seed states). A second part (a child process, two logical CPUs) checks what
`model.save_weights`/`load_weights`, which `BackupAndRestore` uses, keep of the
per-replica LSTM state under `MirroredStrategy`, against `save_checkpoint`;
a third, what `BackupAndRestore` does with a half-written backup. Prints
markdown; `benchmarks/RESULTS.md` has the findings.
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import h5py  # noqa: E402
import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
FIXTURE = os.path.join(REPO, "tests", "data", "bilm-tf", "train")
OPTIONS = {"lstm": {"dim": 32, "projection_dim": 16, "n_layers": 2},
           "char_cnn": {"embedding": {"dim": 4}, "filters": [[1, 8], [2, 8]], "n_highway": 1},
           "batch_size": 4, "unroll_steps": 5, "n_negative_samples_batch": 8, "n_epochs": 3, "dropout": 0.1}
STEPS, CRASH_AFTER, CHECKPOINT_EVERY = 18, 10, 4
GROUPS = ("trainable", "optimizer", "lstm_state", "seeds")


class Interrupted(RuntimeError):
    """The simulated crash."""


class _Crash:
    """A Keras callback raising after global step `at` (counted over epochs)."""

    def __new__(cls, at):
        import keras

        class Crash(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.step = 0

            def on_train_batch_end(self, batch, logs=None):
                self.step += 1
                if self.step == at:
                    raise Interrupted(f"interrupted after step {at}")

        return Crash()


def write_options(folder):
    path = os.path.join(folder, "options.json")
    with open(path, "w") as f:
        json.dump(OPTIONS, f)
    return path


def model_arrays(model, optimizer):
    """{group: {name: array}} of a model and its optimizer, named as `checkpoint.py` names them."""
    from elmo_keras.training.checkpoint import _other_model_variables, _variable_names

    names = _variable_names(model, optimizer)
    values = lambda variables: {names[id(v)]: np.array(v.numpy()) for v in variables}  # noqa: E731
    return {"trainable": values(model.trainable_variables), "optimizer": values(optimizer.variables),
            "lstm_state": values(model.state_variables), "seeds": values(_other_model_variables(model))}


def checkpoint_arrays(save_dir):
    """The same groups, from a package checkpoint."""
    out = {group: {} for group in GROUPS}
    with h5py.File(os.path.join(save_dir, "checkpoint.h5"), "r") as f:
        for group, target in (("trainable", "trainable"), ("optimizer", "optimizer"), ("lstm_state", "lstm_state"),
                              ("non_trainable", "seeds")):
            for key in f[group]:
                out[target][str(f[group][key].attrs["name"])] = f[group][key][...]
    return out


def compare(ours, reference):
    """{group: (equal, max abs difference)}, and the step count reached."""
    result = {}
    for group in GROUPS:
        assert sorted(ours[group]) == sorted(reference[group]), group
        diffs = [float(np.max(np.abs(ours[group][k].astype(np.float64) - reference[group][k].astype(np.float64))))
                 if ours[group][k].size else 0.0 for k in reference[group]]
        equal = all(np.array_equal(ours[group][k], reference[group][k]) for k in reference[group])
        result[group] = (equal, max(diffs))
    return result


@contextlib.contextmanager
def crashing_monitor(at):
    """Make `train`'s callback raise after step `at` (after any checkpoint of that step)."""
    from elmo_keras.training import callbacks

    original = callbacks._Monitor.on_train_batch_end

    def on_train_batch_end(self, batch, logs=None):
        original(self, batch, logs)
        if self.step == at:
            raise Interrupted(f"interrupted after step {at}")

    callbacks._Monitor.on_train_batch_end = on_train_batch_end
    try:
        yield
    finally:
        callbacks._Monitor.on_train_batch_end = original


def package_run(folder, name, crash_after=None):
    from elmo_keras.training.train import train

    options_file = write_options(folder)
    save_dir = os.path.join(folder, name)
    args = (options_file, os.path.join(FIXTURE, "vocab.txt"), os.path.join(FIXTURE, "data.txt"), save_dir)
    kwargs = dict(max_steps=STEPS, checkpoint_every=CHECKPOINT_EVERY, progress=False)
    if crash_after is not None:
        with crashing_monitor(crash_after):
            try:
                train(*args, **kwargs)
                raise AssertionError("no interruption")
            except Interrupted:
                pass
    train(*args, **kwargs)
    return checkpoint_arrays(save_dir)


def _backup_with_seeds(keras, backup_dir, save_freq):
    """Glue: `BackupAndRestore` that also keeps the random seed states (`save_weights` leaves them out)."""
    from elmo_keras.training.checkpoint import _other_model_variables, _variable_names

    class BackupWithSeeds(keras.callbacks.BackupAndRestore):
        def _seeds(self):
            names = _variable_names(self.model)
            return {names[id(v)]: v for v in _other_model_variables(self.model)}

        def _save_model(self):
            super()._save_model()
            np.savez(os.path.join(self.backup_dir, "seeds.npz"),
                     **{k.replace("/", "|"): v.numpy() for k, v in self._seeds().items()})

        def _load_model(self):
            super()._load_model()
            path = os.path.join(self.backup_dir, "seeds.npz")
            if os.path.exists(path):
                with np.load(path) as saved:
                    for name, variable in self._seeds().items():
                        variable.assign(saved[name.replace("/", "|")])

    return BackupWithSeeds(backup_dir, save_freq=save_freq, delete_checkpoint=False)


def keras_fit(folder, backup_dir, data, save_freq, crash_after=None, seeds=False):
    """One `model.fit` of the job in a fresh model, with `BackupAndRestore`: the model's arrays at its end.

    data: "start" (the batches from the corpus' first on) or "iterations"
    (glue: from the restored step count on). seeds: glue, keep the seed states too.
    """
    import keras

    from elmo_keras.training.distribution import _Distribution
    from elmo_keras.training.options import TrainingOptions
    from elmo_keras.training.stream import _dataset
    from elmo_keras.training.train import WindowBatcher, _build_model, _count_tokens
    from elmo_keras.training.vocab import Vocabulary

    vocab = Vocabulary(os.path.join(FIXTURE, "vocab.txt"))
    options = TrainingOptions.from_json(write_options(folder), n_tokens_vocab=vocab.size)

    def make_batcher():
        return WindowBatcher(os.path.join(FIXTURE, "data.txt"), vocab, batch_size=options.batch_size,
                             unroll_steps=options.unroll_steps,
                             max_characters_per_token=options.char_cnn.max_characters_per_token,
                             shuffle=options.shuffle, seed=options.seed, epochs=None)

    probe = make_batcher()
    steps_per_epoch = _count_tokens(probe) // (options.batch_size * options.unroll_steps)
    distribution = _Distribution()
    keras.utils.set_random_seed(options.seed)  # as `train` does, before building
    model, optimizer = _build_model(options, options.batch_size, distribution)

    class DataStart(keras.callbacks.Callback):
        """Glue: the restored step count, read when training begins (after `BackupAndRestore` restored it).

        Not read in the generator itself: tf.data runs it ahead of the model,
        after the first steps have counted (measured: it saw 1 on a fresh
        run, 7 on a run resumed at 6).
        """

        step = None

        def on_train_begin(self, logs=None):
            DataStart.step = int(optimizer.iterations.numpy())

    def batches():
        batcher = make_batcher()
        if data == "iterations":  # glue: start where the restored optimizer's step count says
            if DataStart.step is None:
                raise RuntimeError("the data started before training began")
            batcher.skip_batches(DataStart.step)
        yield from batcher

    dataset = _dataset(batches, probe.output_signature(), distribution, options.batch_size)
    if seeds:
        callbacks = [_backup_with_seeds(keras, backup_dir, save_freq)]
    else:
        callbacks = [keras.callbacks.BackupAndRestore(backup_dir, save_freq=save_freq, delete_checkpoint=False)]
    callbacks.append(DataStart())
    if crash_after is not None:
        callbacks.append(_Crash(crash_after))
    try:
        model.fit(dataset, epochs=STEPS // steps_per_epoch, steps_per_epoch=steps_per_epoch, callbacks=callbacks,
                  shuffle=False, verbose=0)
    except Interrupted:
        pass
    return model_arrays(model, optimizer)


def backup_contents(backup_dir):
    """What `BackupAndRestore` wrote: the weights file's datasets (path -> shape) and the metadata."""
    shapes = {}
    with h5py.File(os.path.join(backup_dir, "latest.weights.h5"), "r") as f:
        f.visititems(lambda path, item: shapes.__setitem__(path, item.shape) if isinstance(item, h5py.Dataset)
                     else None)
    with open(os.path.join(backup_dir, "training_metadata.json")) as f:
        return shapes, json.load(f)


def keras_run(folder, name, data, save_freq, crash_after, seeds=False):
    """A fit interrupted after step `crash_after` (None: not), then one resumed from its backup, in fresh models."""
    backup_dir = os.path.join(folder, name)
    contents = None
    if crash_after is not None:
        keras_fit(folder, backup_dir, data, save_freq, crash_after, seeds)
        contents = backup_contents(backup_dir)
    return keras_fit(folder, backup_dir, data, save_freq, seeds=seeds), contents


# -- MirroredStrategy: what save_weights keeps of on-read (per-replica) variables --------------------------

_MIRRORED = r"""
import json, os, sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from elmo_keras.training.checkpoint import load_checkpoint, save_checkpoint
from elmo_keras.training.distribution import _Distribution
from elmo_keras.training.options import TrainingOptions
from elmo_keras.training.train import _build_model

folder = sys.argv[1]
options = TrainingOptions.from_dict(json.loads(sys.argv[2]), n_tokens_vocab=33)
distribution = _Distribution(strategy=tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
rows = options.batch_size // distribution.replicas

def replicas(model):
    return [[np.asarray(c.numpy()) for c in distribution.strategy.experimental_local_results(v.value)]
            for v in model.state_variables]

model, optimizer = _build_model(options, rows, distribution)
for v in model.state_variables:  # replica r carries the value r + 1 in every row
    for r, c in enumerate(distribution.strategy.experimental_local_results(v.value)):
        c.assign(np.full(c.shape, r + 1.0, np.float32))
written = replicas(model)
model.save_weights(os.path.join(folder, "m.weights.h5"))
save_checkpoint(model, optimizer, folder, 0, None, distribution)
result = {}
for how in ("save_weights", "checkpoint"):
    fresh, fresh_optimizer = _build_model(options, rows, distribution)
    if how == "save_weights":
        fresh.load_weights(os.path.join(folder, "m.weights.h5"))
    else:
        load_checkpoint(fresh, folder, fresh_optimizer, distribution, parts=("trainable", "lstm_state"))
    read = replicas(fresh)
    result[how] = {"equal": all(np.array_equal(a, b) for va, vb in zip(written, read) for a, b in zip(va, vb)),
                   "replica values": [sorted(set(np.unique(c).tolist())) for c in read[0]]}
print("RESULT " + json.dumps(result))
"""


def mirrored_probe(folder):
    env = dict(os.environ, KERAS_BACKEND="tensorflow", CUDA_VISIBLE_DEVICES="", PYTHONPATH=REPO)
    out = subprocess.run([sys.executable, "-c", _MIRRORED, folder, json.dumps(OPTIONS)], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=600)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(lines[-1][len("RESULT "):])


def half_written_probe(folder):
    """A backup cut in the middle of `save_weights` (as a kill would leave it): what the next fit does."""
    import keras

    from elmo_keras.training.distribution import _Distribution
    from elmo_keras.training.options import TrainingOptions
    from elmo_keras.training.train import _build_model

    options = TrainingOptions.from_dict(OPTIONS, n_tokens_vocab=33)
    model, _ = _build_model(options, options.batch_size, _Distribution())
    backup_dir = os.path.join(folder, "half")
    os.makedirs(backup_dir)
    path = os.path.join(backup_dir, "latest.weights.h5")
    model.save_weights(path)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    callback = keras.callbacks.BackupAndRestore(backup_dir)
    callback.set_model(model)
    try:
        callback.on_train_begin()
        return "loaded without error"
    except Exception as e:  # noqa: BLE001 - what it raises is the finding
        return f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-mirrored", action="store_true", help="skip the MirroredStrategy child process")
    args = parser.parse_args()
    import keras

    start = time.time()
    with tempfile.TemporaryDirectory() as folder:
        reference = package_run(folder, "package_uninterrupted")
        runs = [("package `train`, interrupted after step 10, resumed (checkpoint of step 8)",
                 package_run(folder, "package_resumed", CRASH_AFTER), None)]
        for label, data, save_freq, crash, *seeds in [
                ("keras fit + BackupAndRestore, uninterrupted", "start", "epoch", None),
                ("keras, save_freq='epoch', data from the start", "start", "epoch", CRASH_AFTER),
                ("keras, save_freq=4, data from the start", "start", CHECKPOINT_EVERY, CRASH_AFTER),
                ("keras, save_freq=4, data from optimizer.iterations", "iterations", CHECKPOINT_EVERY, CRASH_AFTER),
                ("keras, save_freq='epoch', data from optimizer.iterations", "iterations", "epoch", CRASH_AFTER),
                ("keras, save_freq=4, data from optimizer.iterations, + seeds", "iterations", CHECKPOINT_EVERY,
                 CRASH_AFTER, True),
                ("keras, save_freq='epoch', data from optimizer.iterations, + seeds", "iterations", "epoch",
                 CRASH_AFTER, True)]:
            arrays, contents = keras_run(folder, label.replace(" ", "_").replace("'", "").replace(",", ""),
                                         data, save_freq, crash, *seeds)
            runs.append((label, arrays, contents))
        print(f"Keras {keras.__version__}, {STEPS} steps (3 epochs of 6), interrupted after step {CRASH_AFTER}; "
              f"against the uninterrupted `train` run\n")
        print("| run | resumed from (backup metadata) | steps done (`iterations`) | "
              + " | ".join(f"{g} equal (max abs diff)" for g in GROUPS) + " |")
        print("|---|---|---|" + "---|" * len(GROUPS))
        for label, arrays, contents in runs:
            result = compare(arrays, reference)
            cells = [f"{'yes' if equal else 'no'} ({diff:.3g})" for equal, diff in (result[g] for g in GROUPS)]
            resumed = "step 8 (`checkpoint.h5`)" if label.startswith("package") else (
                "-" if contents is None else f"`{json.dumps(contents[1])}`")
            print(f"| {label} | {resumed} | {int(arrays['optimizer']['iteration'])} | " + " | ".join(cells) + " |")
        shapes, metadata = next(contents for _, _, contents in runs if contents is not None)
        print(f"\nBackupAndRestore's backup: latest.weights.h5 holds {len(shapes)} arrays "
              f"({sum('optimizer' in p for p in shapes)} under optimizer/, "
              f"{sum(len(shape) == 4 for shape in shapes.values())} of the carried state's rank 4, "
              f"{sum(shape == (2,) for shape in shapes.values())} of a seed state's shape (2,)); "
              f"training_metadata.json: {metadata}")
        print(f"a backup cut in half, then fit again: {half_written_probe(folder)}")
        if not args.no_mirrored:
            print(f"MirroredStrategy, 2 replicas, replica r carrying r + 1: {mirrored_probe(folder)}")
    print(f"\n{time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
