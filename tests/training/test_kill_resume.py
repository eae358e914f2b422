"""Killed and starved runs: `elmo-keras embed` and `elmo-keras train` resume to the uninterrupted result.

- Kill: each command runs as a child process and gets SIGKILL at a seeded
  list of points (right after the work folder, a chunk or a checkpoint
  appears; while the output or a checkpoint is being written; at random
  times), then the same command runs again to the end. `embed` must then
  give the uninterrupted run's file bit for bit (every dataset and
  `sentence_to_index`); `train` must end at the same step with bit-equal
  weights, optimizer slots, LSTM state, seeds and data position (its
  checkpoint holds all of them, see `elmo_keras/training/checkpoint.py`).
- Full disk: writes of `embed_file` fail with ENOSPC (simulated) while a chunk
  is written and while the hdf5 is assembled: a clear error naming the file,
  an earlier output untouched, no temporary file left, the finished chunks
  kept, and the same call resumes.
"""

import errno
import glob
import hashlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from conftest import FIXTURE, FIXTURE_OPTIONS, FIXTURE_WEIGHTS

from elmo_keras import ElmoEmbedder
from elmo_keras.cli import main

HERE = pathlib.Path(__file__).parent
REPO = HERE.parent.parent
TRAIN_FIXTURE = FIXTURE / "train"
N_LINES = 640  # with --batch-size 4: 5 chunks of 128 sentences


def corpus_lines(seed=0, n=N_LINES):
    rng = np.random.default_rng(seed)
    words = ["the", "cat", "sat", "on", "a", "mat", ".", "Köln", "日本語", "x" * 60, "run", "ran"]
    return [" ".join(rng.choice(words, rng.integers(0, 25))) for _ in range(n)]


def read_output(path):
    with h5py.File(path, "r") as f:
        return {name: f[name][...] for name in f}


def assert_same_output(path, reference):
    ours, theirs = read_output(path), read_output(reference)
    assert sorted(ours) == sorted(theirs)
    for name in theirs:
        assert ours[name].dtype == theirs[name].dtype and np.array_equal(ours[name], theirs[name]), name
    assert json.loads(ours["sentence_to_index"][0]) == json.loads(theirs["sentence_to_index"][0])


def digest(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def temporaries(folder):
    return sorted(glob.glob(os.path.join(str(folder), "**", ".*.tmp"), recursive=True))


# -- a full disk (simulated) ------------------------------------------------------------------------------


def _enospc():
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture(scope="module")
def embedder():
    return ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, batch_size=4)


@pytest.fixture(scope="module")
def files(tmp_path_factory, embedder):
    """An input of 5 chunks, its uninterrupted output, and an earlier output of other text."""
    folder = tmp_path_factory.mktemp("disk")
    (folder / "in.txt").write_text("\n".join(corpus_lines()) + "\n", encoding="utf-8")
    (folder / "other.txt").write_text("\n".join(corpus_lines(1, 20)) + "\n", encoding="utf-8")
    embedder.embed_file(str(folder / "in.txt"), str(folder / "reference.hdf5"), progress=False)
    embedder.embed_file(str(folder / "other.txt"), str(folder / "earlier.hdf5"), progress=False)
    return folder


def _fail_on_call(monkeypatch, owner, name, fail_at, where=lambda *a, **k: True):
    """Make `owner.name` raise ENOSPC on its `fail_at`-th matching call (after writing a little)."""
    original = getattr(owner, name)
    calls = {"n": 0}

    def failing(*args, **kwargs):
        if where(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == fail_at:
                if args and hasattr(args[0], "write"):
                    args[0].write(b"half a chunk")
                raise _enospc()
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)
    return calls


@pytest.mark.parametrize("fault", ["chunk 3", "assembly dataset 300", "assembly rename"])
def test_full_disk_is_a_clear_error_and_the_same_call_resumes(tmp_path, files, embedder, monkeypatch, fault,
                                                              capsys):
    out = tmp_path / "out.hdf5"
    out.write_bytes((files / "earlier.hdf5").read_bytes())  # an earlier, complete output
    before = digest(out)
    if fault == "chunk 3":
        _fail_on_call(monkeypatch, np, "savez", 3)
        message = r"out\.hdf5\.partial/chunk_000000000256\.npz: cannot write the chunk of sentences from 256: " \
                  r"No space left on device; the 2 finished chunk\(s\) in .* are kept"
        kept = 2
    elif fault == "assembly dataset 300":
        _fail_on_call(monkeypatch, h5py.Group, "create_dataset", 300)
        message = r"out\.hdf5: cannot write the output: No space left on device; nothing was replaced"
        kept = 5
    else:
        _fail_on_call(monkeypatch, os, "replace", 1, where=lambda src, dst: dst == str(out))
        message = r"out\.hdf5: cannot write the output: No space left on device; nothing was replaced"
        kept = 5
    with pytest.raises(OSError, match=message) as error:
        embedder.embed_file(str(files / "in.txt"), str(out), progress=False, overwrite=True)
    assert error.value.errno == errno.ENOSPC
    assert "run the same command again" in str(error.value)
    assert digest(out) == before  # the earlier output is untouched
    assert temporaries(tmp_path) == []  # no half-written chunk or output left behind
    chunk_files = sorted(p.name for p in (tmp_path / "out.hdf5.partial").iterdir() if p.name.startswith("chunk_"))
    assert len(chunk_files) == kept
    for name in chunk_files:
        with np.load(tmp_path / "out.hdf5.partial" / name) as data:  # every kept chunk is complete
            assert len(data.files) == 128
    monkeypatch.undo()
    capsys.readouterr()
    embedder.embed_file(str(files / "in.txt"), str(out), progress=True, overwrite=True)
    assert f"{kept * 128} of {N_LINES} sentences were already embedded" in capsys.readouterr().err
    assert_same_output(out, files / "reference.hdf5")
    assert not (tmp_path / "out.hdf5.partial").exists()


def test_full_disk_in_the_cli_is_one_line_and_exit_1(tmp_path, files, monkeypatch, capsys):
    _fail_on_call(monkeypatch, np, "savez", 1)
    code = main(["embed", str(files / "other.txt"), str(tmp_path / "out.hdf5"), "--options-file", FIXTURE_OPTIONS,
                 "--weight-file", FIXTURE_WEIGHTS, "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert err[0].startswith("elmo-keras embed: error: [Errno 28] ")
    assert "chunk_000000000000.npz: cannot write the chunk of sentences from 0: No space left on device" in err[0]
    assert not (tmp_path / "out.hdf5").exists()


def test_temporaries_of_a_killed_assembly_are_removed(tmp_path, files, embedder):
    out = tmp_path / "out.hdf5"
    stale = tmp_path / ".out.hdf5.abc123.tmp"
    stale.write_bytes(b"left by a killed run")
    other = tmp_path / ".other.hdf5.abc123.tmp"  # another output's: kept
    other.write_bytes(b"")
    embedder.embed_file(str(files / "other.txt"), str(out), progress=False)
    assert not stale.exists() and other.exists()


# -- SIGKILL at seeded points ---------------------------------------------------------------------------------


def _kill_when(command, condition, timeout=240):
    """Run `command`; SIGKILL it as soon as `condition()` holds. Return what happened."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    start, deadline = time.time(), time.time() + timeout
    while process.poll() is None and time.time() < deadline:
        if condition(time.time() - start):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    process.wait(timeout=60)
    stderr = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    return process.returncode, time.time() - start, stderr


def _count(folder, pattern):
    return len(glob.glob(os.path.join(str(folder), pattern)))


def _watch(condition):
    """A condition that never kills but notes when `condition` first held: (function, list of times)."""
    seen = []

    def watch(t):
        if not seen and condition(t):
            seen.append(t)
        return False

    return watch, seen


def _after(start_condition, delay):
    """A condition that holds `delay` seconds after `start_condition` first held (in the same run)."""
    started = []

    def condition(t):
        if not started and start_condition(t):
            started.append(t)
        return bool(started) and t - started[0] >= delay

    return condition


def _embed_points(seed, work_seconds):
    """The seeded kill points of an embed run whose work (after loading the model) takes `work_seconds`."""
    rng = np.random.default_rng(seed)
    points = [("work folder", 0)]
    points += [("chunk", int(k)) for k in sorted(rng.choice([1, 2, 3, 4], 2, replace=False))]
    points += [("assembly", 0)]
    points += [("time", round(float(t), 3)) for t in sorted(rng.uniform(0, 0.9 * work_seconds, 2))]
    return points


@pytest.mark.slow
def test_killed_embed_resumes_to_the_same_file_bit_for_bit(tmp_path, capsys):
    inp = tmp_path / "in.txt"
    inp.write_text("\n".join(corpus_lines(2)) + "\n", encoding="utf-8")

    def argv(out):
        return ["embed", str(inp), str(out), "--options-file", FIXTURE_OPTIONS, "--weight-file", FIXTURE_WEIGHTS,
                "--batch-size", "4"]

    command = [sys.executable, "-m", "elmo_keras.cli"]
    reference = tmp_path / "reference.hdf5"
    watch, started = _watch(lambda t: os.path.exists(f"{reference}.partial"))
    code, duration, stderr = _kill_when(command + argv(reference) + ["--quiet"], watch)
    assert code == 0 and started, stderr[-3000:]
    results = []
    for k, (kind, value) in enumerate(_embed_points(0, duration - started[0])):
        out = tmp_path / f"out{k}.hdf5"
        partial = f"{out}.partial"
        conditions = {
            "work folder": lambda t: os.path.exists(os.path.join(partial, "manifest.json")),
            "chunk": lambda t: _count(partial, "chunk_*.npz") >= value,
            "assembly": lambda t: _count(tmp_path, f".{out.name}.*.tmp") > 0,
        }
        # A random time after the work began (loading the model takes most of a run).
        conditions["time"] = _after(conditions["work folder"], value)
        code, _, stderr = _kill_when(command + argv(out) + ["--quiet"], conditions[kind])
        killed = code == -signal.SIGKILL
        finished = _count(partial, "chunk_*.npz")
        results.append((kind, value, killed, finished))
        if not killed:  # the run ended before the point: nothing to resume
            assert code == 0, stderr[-3000:]
            assert_same_output(out, reference)
            continue
        assert not out.exists()
        capsys.readouterr()
        assert main(argv(out)) == 0  # the same command again
        err = capsys.readouterr().err
        if finished:
            assert f"{min(finished * 128, N_LINES)} of {N_LINES} sentences were already embedded" in err
        assert_same_output(out, reference)
        assert not os.path.exists(partial) and _count(tmp_path, f".{out.name}.*.tmp") == 0
    print("embed kill points (kind, value, killed, finished chunks):", results)
    assert sum(killed for _, _, killed, _ in results) >= 5, results
    assert any(f for kind, _, killed, f in results if killed and kind == "chunk")


def _train_argv(options_file, save_dir):
    return ["train", "--options-file", str(options_file), "--vocab-file", str(TRAIN_FIXTURE / "vocab.txt"),
            "--train-prefix", str(TRAIN_FIXTURE / "data.txt"), "--save-dir", str(save_dir), "--max-steps", "16",
            "--checkpoint-every", "2", "--quiet"]


def _checkpoint_step(save_dir):
    from elmo_keras.training.train import read_checkpoint_meta

    try:
        meta = read_checkpoint_meta(str(save_dir))
    except ValueError:
        return -1
    return -1 if meta is None else meta["step"]


def checkpoint_contents(save_dir):
    with h5py.File(os.path.join(str(save_dir), "checkpoint.h5"), "r") as f:
        arrays = {f"{group}/{name}": (f[group][name][...], f[group][name].attrs["name"]) for group in f
                  if group != "meta_json" for name in f[group]}
        meta = json.loads(bytes(f["meta_json"][...]).decode("utf-8"))
    return arrays, meta


@pytest.mark.slow
def test_killed_training_resumes_to_the_same_weights_bit_for_bit(tmp_path):
    options = {"lstm": {"dim": 32, "projection_dim": 16, "n_layers": 2},
               "char_cnn": {"embedding": {"dim": 4}, "filters": [[1, 8], [2, 8]], "n_highway": 1},
               "batch_size": 4, "unroll_steps": 5, "n_negative_samples_batch": 8, "n_epochs": 50, "dropout": 0.1}
    options_file = tmp_path / "options.json"
    options_file.write_text(json.dumps(options))
    command = [sys.executable, "-m", "elmo_keras.cli"]
    watch, started = _watch(lambda t: _checkpoint_step(tmp_path / "reference") >= 2)
    code, duration, stderr = _kill_when(command + _train_argv(options_file, tmp_path / "reference"), watch)
    assert code == 0 and started, stderr[-3000:]
    reference, reference_meta = checkpoint_contents(tmp_path / "reference")
    assert reference_meta["step"] == 16
    rng = np.random.default_rng(0)
    points = [("options written", 0), ("checkpoint being written", 0)]
    points += [("checkpoint", int(k)) for k in sorted(rng.choice([2, 6, 10, 14], 2, replace=False))]
    # Random times after the first step's checkpoint (the run's start-up takes most of its time).
    points += [("time", round(float(t), 3)) for t in sorted(rng.uniform(0, 0.9 * (duration - started[0]), 2))]
    results = []
    for k, (kind, value) in enumerate(points):
        save_dir = tmp_path / f"run{k}"
        conditions = {
            "options written": lambda t: os.path.exists(save_dir / "options.json"),
            "checkpoint being written": lambda t: _count(save_dir, ".checkpoint.h5.*.tmp") > 0,
            "checkpoint": lambda t: _checkpoint_step(save_dir) >= value,
        }
        conditions["time"] = _after(lambda t: _checkpoint_step(save_dir) >= 2, value)
        code, _, stderr = _kill_when(command + _train_argv(options_file, save_dir), conditions[kind])
        killed = code == -signal.SIGKILL
        at_step = _checkpoint_step(save_dir)
        results.append((kind, value, killed, at_step))
        if killed:  # (a kill after the last checkpoint leaves nothing to do: the same command then ends at once)
            assert main(_train_argv(options_file, save_dir)) == 0  # the same command again
        else:
            assert code == 0, stderr[-3000:]
        arrays, meta = checkpoint_contents(save_dir)
        assert meta == reference_meta  # step 16, the same data position
        assert sorted(arrays) == sorted(reference)
        for name, (value_array, variable) in reference.items():
            assert arrays[name][1] == variable
            assert np.array_equal(arrays[name][0], value_array), (kind, name)
    print("train kill points (kind, value, killed, checkpoint step):", results)
    assert sum(killed and step < 16 for _, _, killed, step in results) >= 5, results
