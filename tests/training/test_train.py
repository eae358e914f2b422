"""Pretraining end to end: learning on real text, resuming, perplexity, weights out.

Training over several devices and workers: `test_multiworker.py`.

The English corpus is made at test time from the docstrings of Python's own
standard library (no download): prose sentences, lower-cased, split into
words and punctuation.
"""

import importlib
import inspect
import json
import math
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings

import h5py
import keras
import numpy as np
import pytest

from conftest import FIXTURE, run_pytest_on_jax

from elmo_keras.models.bilm_files import load_bilm
from elmo_keras.models.bilm import token_mask
from elmo_keras.models.language_model import LanguageModel
from elmo_keras.preprocessing.char_ids import batch_to_ids
from elmo_keras.training.train import (
    CheckpointError,
    dump_weights,
    load_checkpoint,
    perplexity,
    read_checkpoint_meta,
    train,
)
from elmo_keras.training.vocab import Vocabulary, build_vocabulary

HERE = pathlib.Path(__file__).parent
REPO = HERE.parent.parent
TRAIN_FIXTURE = FIXTURE / "train"

_MODULES = (
    "abc argparse array ast asyncio base64 bdb binascii bisect builtins bz2 calendar cmath cmd code codecs "
    "codeop collections colorsys concurrent.futures configparser contextlib copy copyreg csv dataclasses "
    "datetime decimal difflib dis doctest email.message enum filecmp fileinput fnmatch fractions ftplib "
    "functools gc getopt gettext glob gzip hashlib heapq hmac html.parser http.client imaplib inspect io "
    "ipaddress itertools json keyword linecache locale logging lzma mailbox math mimetypes numbers operator "
    "optparse os pathlib pdb pickle platform plistlib poplib pprint profile pstats queue quopri random re "
    "reprlib sched secrets selectors shelve shlex shutil signal smtplib socket socketserver sqlite3 ssl stat "
    "statistics string struct subprocess sys sysconfig tarfile tempfile textwrap threading time timeit "
    "tokenize trace traceback types typing unicodedata unittest urllib.parse urllib.request uuid warnings "
    "wave weakref xml.dom.minidom xmlrpc.client zipfile zlib").split()


def _docstrings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in _MODULES:
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            yield inspect.getdoc(module)
            for attr, obj in sorted(vars(module).items()):
                if attr.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                    continue
                yield inspect.getdoc(obj)
                if inspect.isclass(obj):
                    for member_name, member in sorted(vars(obj).items()):
                        if not member_name.startswith("_") and callable(member):
                            yield inspect.getdoc(member)


def english_sentences():
    """Prose sentences of the standard library's docstrings (about 2,500, 37k words on 3.11)."""
    text = "\n".join(dict.fromkeys(d for d in _docstrings() if d))
    sentences, current = [], []
    for token in re.findall(r"[a-z]+|[0-9]+|[^\sa-z0-9]", text.lower()):
        current.append(token)
        if token in ".?!":
            words = sum(t.isalpha() for t in current)
            # Keep prose: no code (no "="), mostly words.
            if 4 <= len(current) <= 40 and "=" not in current and words >= 0.85 * len(current):
                sentences.append(" ".join(current))
            current = []
    sentences = list(dict.fromkeys(sentences))
    np.random.default_rng(0).shuffle(sentences)
    return sentences


def write_options(path, **overrides):
    options = {"lstm": {"dim": 32, "projection_dim": 16, "n_layers": 2},
               "char_cnn": {"embedding": {"dim": 4}, "filters": [[1, 8], [2, 8]], "n_highway": 1}}
    options.update(overrides)
    with open(path, "w") as f:
        json.dump(options, f)
    return str(path)


def unigram_perplexity(vocab, train_file, test_file):
    """Add-one unigram perplexity of the held-out stream `<S> s1 </S> <S> s2 </S> ...`.

    Its targets are the ones `perplexity` counts: every word and `</S>`, not `<S>`.
    """
    def ids(path):
        out = []
        for line in open(path, encoding="utf-8"):
            out.extend(vocab.encode(line).tolist())
        return np.array(out)

    counts = np.bincount(ids(train_file), minlength=vocab.size) + 1.0
    targets = ids(test_file)[1:]
    targets = targets[targets != vocab.bos]
    return float(np.exp(-np.mean(np.log(counts / counts.sum())[targets])))


def checkpoint_arrays(save_dir):
    with h5py.File(os.path.join(save_dir, "checkpoint.h5"), "r") as f:
        return {f"{group}/{name}": f[group][name][...] for group in f if group != "meta_json"
                for name in f[group]}


@pytest.fixture(scope="module")
def english(tmp_path_factory):
    folder = tmp_path_factory.mktemp("english")
    sentences = english_sentences()
    assert len(sentences) > 1500
    held_out = len(sentences) // 10
    (folder / "train.txt").write_text("\n".join(sentences[held_out:]) + "\n", encoding="utf-8")
    (folder / "heldout.txt").write_text("\n".join(sentences[:held_out]) + "\n", encoding="utf-8")
    build_vocabulary(str(folder / "train.txt"), str(folder / "vocab.txt"), min_count=2, progress=False)
    return folder


@pytest.fixture(scope="module")
def trained(english):
    """250 steps of a tiny biLM (sampled softmax, 256 negatives) on the English corpus."""
    options = write_options(english / "options.json", batch_size=32, unroll_steps=20, n_epochs=100,
                            n_negative_samples_batch=256)
    save_dir = english / "run"
    result = train(options, str(english / "vocab.txt"), str(english / "train.txt"), str(save_dir),
                   max_steps=250, checkpoint_every=100, progress=False)
    return save_dir, result


@pytest.mark.slow
def test_short_training_beats_unigram_perplexity_on_english(english, trained):
    save_dir, result = trained
    assert result["step"] == 250
    vocab = Vocabulary(str(english / "vocab.txt"))
    assert vocab.size > 1500 and result["loss"] is not None
    unigram = unigram_perplexity(vocab, english / "train.txt", english / "heldout.txt")
    measured = perplexity(str(save_dir), str(english / "vocab.txt"), str(english / "heldout.txt"), batch_size=16)
    # Measured on Python 3.11: unigram 199.5, biLM 108.2 (forward 107.0, backward 109.5).
    assert 120 < unigram < 400
    assert measured["average"] < 0.7 * unigram
    assert max(measured["forward"], measured["backward"]) < 0.75 * unigram
    assert os.listdir(save_dir / "logs" / "train")  # TensorBoard events


@pytest.mark.slow
def test_perplexity_result(english, trained):
    save_dir, _ = trained
    result = perplexity(str(save_dir), str(english / "vocab.txt"), str(english / "heldout.txt"), batch_size=16)
    assert sorted(result) == ["average", "backward", "forward", "tokens"]
    json.dumps(result)
    assert result["average"] == pytest.approx(math.sqrt(result["forward"] * result["backward"]), rel=1e-6)
    # bilm-tf's targets: every word and every </S>; no <S> is a target.
    targets = sum(len(line.split()) + 1 for line in open(english / "heldout.txt", encoding="utf-8"))
    assert result["tokens"] == targets
    again = perplexity(str(save_dir), str(english / "vocab.txt"), str(english / "heldout.txt"), batch_size=16)
    assert again == result


@pytest.mark.slow
def test_dump_weights_round_trip(english, trained, tmp_path):
    save_dir, _ = trained
    options_file, weight_file = str(tmp_path / "options.json"), str(tmp_path / "weights.hdf5")
    dump_weights(str(save_dir), options_file, weight_file)
    dumped = json.load(open(options_file))
    assert dumped["char_cnn"]["n_characters"] == 262 and dumped["n_tokens_vocab"] > 1500

    # Four rows of carried state, zero after loading: the four sentences below start from zeros.
    trained_lm = LanguageModel(json.load(open(save_dir / "options.json")), batch_size=4)
    load_checkpoint(trained_lm, str(save_dir))
    saved = checkpoint_arrays(str(save_dir))
    for i, variable in enumerate(trained_lm.trainable_variables):
        assert np.array_equal(saved[f"trainable/{i:05d}"], keras.ops.convert_to_numpy(variable))

    def key(variable):  # "char_cnn/char_embed", "highway_0/carry_kernel", "bilstm/layer_0_kernel"
        return "/".join(variable.path.split("/")[-2:])

    trained_values = {key(v): keras.ops.convert_to_numpy(v) for v in trained_lm.trainable_variables}
    bilm = load_bilm(options_file, weight_file)
    assert len(bilm.trainable_variables) == len(trained_values) - 2  # all but the softmax
    for variable in bilm.trainable_variables:
        # Bit for bit: the file holds the checkpoint's float32 values.
        assert np.array_equal(keras.ops.convert_to_numpy(variable), trained_values[key(variable)]), variable.path
    sentences = [line.split() for line in open(english / "heldout.txt", encoding="utf-8")][:4]
    char_ids = batch_to_ids(sentences)  # adds <S> and </S>
    out = bilm(char_ids)
    mask = token_mask(char_ids)
    embedding = trained_lm.char_cnn(char_ids) * keras.ops.cast(mask, "float32")[..., None]
    lstm = trained_lm.bilstm(embedding, mask=mask)
    real = keras.ops.convert_to_numpy(mask)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out["token_embedding"])[real],
                               keras.ops.convert_to_numpy(embedding)[real], atol=1e-6)
    for layer in range(2):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(out["activations"])[:, layer + 1][real],
                                   keras.ops.convert_to_numpy(lstm)[:, layer][real], atol=1e-6)


def fixture_run(save_dir, max_steps, **overrides):
    options = dict(batch_size=4, unroll_steps=5, n_negative_samples_batch=8, n_epochs=50)
    options.update(overrides)
    options_file = write_options(pathlib.Path(str(save_dir) + ".options.json"), **options)
    return train(options_file, str(TRAIN_FIXTURE / "vocab.txt"), str(TRAIN_FIXTURE / "data.txt"), str(save_dir),
                 max_steps=max_steps, checkpoint_every=2, progress=False)


RUN_STEPS = 16


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """A run of RUN_STEPS steps on the bilm-tf training fixture (epochs of 6 steps: 134 words, 20 a step)."""
    save_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    assert fixture_run(save_dir, RUN_STEPS)["step"] == RUN_STEPS
    return save_dir


def assert_same_run(save_dir, reference):
    ours, theirs = checkpoint_arrays(str(save_dir)), checkpoint_arrays(str(reference))
    assert sorted(ours) == sorted(theirs)
    assert any(name.startswith("lstm_state") for name in theirs)
    for name in theirs:
        np.testing.assert_allclose(ours[name], theirs[name], atol=1e-6, err_msg=name)
    assert read_checkpoint_meta(str(save_dir)) == read_checkpoint_meta(str(reference))


def test_resume_continues_exactly_where_the_run_stopped(tmp_path, uninterrupted):
    # Stopped mid-epoch at a step that is no checkpoint multiple; resumed
    # across two epoch boundaries. Dropout and negative samples are random.
    assert fixture_run(tmp_path / "split", 5)["step"] == 5
    assert read_checkpoint_meta(str(tmp_path / "split"))["step"] == 5
    assert fixture_run(tmp_path / "split", RUN_STEPS)["step"] == RUN_STEPS
    assert_same_run(tmp_path / "split", uninterrupted)
    assert read_checkpoint_meta(str(uninterrupted))["data_state"]["batches_done"] == RUN_STEPS
    # A run that has reached its end does nothing more.
    assert fixture_run(tmp_path / "split", RUN_STEPS)["step"] == RUN_STEPS


def test_resume_refuses_other_options(uninterrupted):
    with pytest.raises(CheckpointError, match="batch_size=4, these options say 2"):
        fixture_run(uninterrupted, RUN_STEPS + 2, batch_size=2)


_KILLED_RUN = """
import sys
from elmo_keras.training.train import train
train(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], max_steps=1000, checkpoint_every=2, progress=False)
"""


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path, uninterrupted):
    options_file = write_options(tmp_path / "killed.options.json", batch_size=4, unroll_steps=5,
                                 n_negative_samples_batch=8, n_epochs=50)
    process = subprocess.Popen(
        [sys.executable, "-c", _KILLED_RUN, options_file, str(TRAIN_FIXTURE / "vocab.txt"),
         str(TRAIN_FIXTURE / "data.txt"), str(tmp_path / "killed")],
        cwd=REPO, env=dict(os.environ, KERAS_BACKEND=keras.backend.backend()),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 180
    meta = None
    while time.time() < deadline and process.poll() is None:
        meta = read_checkpoint_meta(str(tmp_path / "killed"))  # appears whole or not at all
        if meta is not None and meta["step"] >= 4:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert meta is not None and meta["step"] >= 4, process.stderr.read().decode()[-3000:]
    killed_at = read_checkpoint_meta(str(tmp_path / "killed"))["step"]
    assert killed_at < RUN_STEPS
    assert fixture_run(tmp_path / "killed", RUN_STEPS)["step"] == RUN_STEPS
    assert_same_run(tmp_path / "killed", uninterrupted)


def test_restart_from_released_weights(tmp_path):
    released = json.load(open(FIXTURE / "options.json"))
    released.update(batch_size=4, unroll_steps=5, learning_rate=1e-9, n_negative_samples_batch=8)
    options_file = tmp_path / "options.json"
    options_file.write_text(json.dumps(released))
    train(str(options_file), str(TRAIN_FIXTURE / "vocab.txt"), str(TRAIN_FIXTURE / "data.txt"),
          str(tmp_path / "run"), max_steps=1, restart_from=str(FIXTURE / "lm_weights.hdf5"), progress=False)
    dump_weights(str(tmp_path / "run"), str(tmp_path / "out.json"), str(tmp_path / "out.hdf5"))
    with h5py.File(FIXTURE / "lm_weights.hdf5", "r") as original, h5py.File(tmp_path / "out.hdf5", "r") as out:
        names = []
        original.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        assert len(names) > 20
        for name in names:
            np.testing.assert_allclose(out[name][...], original[name][...], atol=1e-6, err_msg=name)
    # And from that run's checkpoint: the same weights again.
    train(str(options_file), str(TRAIN_FIXTURE / "vocab.txt"), str(TRAIN_FIXTURE / "data.txt"),
          str(tmp_path / "again"), max_steps=1, restart_from=str(tmp_path / "run"), progress=False)
    first, again = checkpoint_arrays(str(tmp_path / "run")), checkpoint_arrays(str(tmp_path / "again"))
    for name in first:
        if name.startswith("trainable"):
            np.testing.assert_allclose(again[name], first[name], atol=1e-6, err_msg=name)


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="starts the JAX run from the TF run")
def test_resume_on_jax(tmp_path):
    """Checkpoints in the middle of a JAX epoch (whose state lives outside the
    variables until synced) resume exactly too."""
    pytest.importorskip("jax")
    stdout = run_pytest_on_jax([__file__], "resume_continues", cache_dir=tmp_path)
    assert "1 passed" in stdout


# -- checkpoints restore by name ---------------------------------------------------------------------------


CHECKPOINT_OPTIONS = {"lstm": {"dim": 8, "projection_dim": 4, "n_layers": 2},
                      "char_cnn": {"embedding": {"dim": 4}, "filters": [[1, 4], [2, 4]], "n_highway": 1},
                      "n_tokens_vocab": 12, "batch_size": 4, "unroll_steps": 3, "dropout": 0.1}


class _PermutedLanguageModel(LanguageModel):
    """A LanguageModel whose variables come in another order (as if created in another order)."""

    permutation = None

    @property
    def trainable_variables(self):
        variables = super().trainable_variables
        return [variables[i] for i in self.permutation([v.path.split("/", 1)[1] for v in variables])]


def _model_and_optimizer(options, cls=LanguageModel, seed=0):
    from elmo_keras.training.train import build_optimizer

    model = cls(options, batch_size=4)
    optimizer = build_optimizer(model.options)
    model.compile(optimizer=optimizer)
    optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(seed)
    for v in model.trainable_variables + model.state_variables + optimizer.variables:
        if v.shape:
            v.assign(rng.normal(size=v.shape).astype("float32"))
    return model, optimizer


def _by_name(model, optimizer):
    from elmo_keras.training.checkpoint import _variable_names

    names = _variable_names(model, optimizer)
    return {names[id(v)]: keras.ops.convert_to_numpy(v)
            for v in model.trainable_variables + model.state_variables + optimizer.variables}


_SAME_SHAPES = [("char_cnn/highway_0/carry_kernel", "char_cnn/highway_0/transform_kernel"),
                ("char_cnn/highway_0/carry_bias", "char_cnn/highway_0/transform_bias"),
                ("bilstm/layer_0_kernel", "bilstm/layer_0_recurrent_kernel"),
                ("bilstm/layer_1_kernel", "bilstm/layer_1_recurrent_kernel")]


def _same_shape_swaps(paths):
    """The order with each pair of same-shaped variables swapped: what restoring by position gets wrong silently."""
    order = list(range(len(paths)))
    for a, b in _SAME_SHAPES:
        i, j = paths.index(a), paths.index(b)
        order[i], order[j] = order[j], order[i]
    return order


@pytest.mark.parametrize("permutation", [_same_shape_swaps, lambda paths: list(range(len(paths)))[::-1]],
                         ids=["same-shape-swaps", "reversed"])
def test_checkpoint_restores_by_name_in_any_variable_order(tmp_path, permutation):
    from elmo_keras.training.train import save_checkpoint

    model, optimizer = _model_and_optimizer(CHECKPOINT_OPTIONS)
    paths = [v.path.split("/", 1)[1] for v in model.trainable_variables]
    for a, b in _SAME_SHAPES:
        assert model.trainable_variables[paths.index(a)].shape == model.trainable_variables[paths.index(b)].shape
    save_checkpoint(model, optimizer, str(tmp_path), step=7, data_state={"batches_done": 7})
    _PermutedLanguageModel.permutation = staticmethod(permutation)
    other, other_optimizer = _model_and_optimizer(CHECKPOINT_OPTIONS, _PermutedLanguageModel, seed=1)
    assert [v.path.split("/", 1)[1] for v in other.trainable_variables] != paths
    meta = load_checkpoint(other, str(tmp_path), other_optimizer,
                           parts=("trainable", "non_trainable", "lstm_state", "optimizer"))
    assert meta["step"] == 7 and meta["format"] == 3
    saved, restored = _by_name(model, optimizer), _by_name(other, other_optimizer)
    assert sorted(saved) == sorted(restored) and len(saved) == 2 * 21 + 2 + 2
    assert "slot/bilstm/layer_0_recurrent_kernel/accumulator" in saved and "iteration" in saved
    for name in saved:
        np.testing.assert_array_equal(restored[name], saved[name], err_msg=name)


def test_checkpoint_of_other_variables_names_the_missing_and_unexpected(tmp_path):
    from elmo_keras.training.train import save_checkpoint

    one = dict(CHECKPOINT_OPTIONS, char_cnn=dict(CHECKPOINT_OPTIONS["char_cnn"], n_highway=1))
    two = dict(CHECKPOINT_OPTIONS, char_cnn=dict(CHECKPOINT_OPTIONS["char_cnn"], n_highway=2))
    model, optimizer = _model_and_optimizer(one)
    save_checkpoint(model, optimizer, str(tmp_path / "one"), step=1, data_state=None)
    model, optimizer = _model_and_optimizer(two)
    save_checkpoint(model, optimizer, str(tmp_path / "two"), step=1, data_state=None)
    with pytest.raises(CheckpointError, match=r"one/checkpoint\.h5: the variables in 'trainable' do not match the "
                                              r"model's .*missing from the checkpoint: 'char_cnn/highway_1/carry_bias', "
                                              r"'char_cnn/highway_1/carry_kernel', .*; in the checkpoint but not the "
                                              r"model: none$"):
        load_checkpoint(model, str(tmp_path / "one"))
    model, optimizer = _model_and_optimizer(one)
    with pytest.raises(CheckpointError, match=r"two/checkpoint\.h5: .* missing from the checkpoint: none; in the "
                                              r"checkpoint but not the model: 'slot/char_cnn/highway_1/carry_bias/"
                                              r"accumulator', .* and 0 more|two/checkpoint\.h5: .*'slot/char_cnn/"
                                              r"highway_1/"):
        load_checkpoint(model, str(tmp_path / "two"), optimizer, parts=("optimizer_slots",))


def _replace_meta(checkpoint_file, meta):
    with h5py.File(checkpoint_file, "a") as f:
        del f["meta_json"]
        f.create_dataset("meta_json", data=np.frombuffer(json.dumps(meta).encode(), np.uint8))


def test_checkpoint_of_format_2_restores_the_state_it_kept_in_the_model(tmp_path):
    # Format 2 named the carried state "state_h"/"state_c" (the model's own variables then); it is
    # now the BiLSTM's ("bilstm/state_h"), and a format-2 checkpoint resumes with it all the same.
    from elmo_keras.training.train import save_checkpoint

    model, optimizer = _model_and_optimizer(CHECKPOINT_OPTIONS)
    save_checkpoint(model, optimizer, str(tmp_path), step=5, data_state={"batches_done": 5})
    checkpoint = tmp_path / "checkpoint.h5"
    with h5py.File(checkpoint, "a") as f:
        names = sorted(str(d.attrs["name"]) for d in f["lstm_state"].values())
        assert names == ["bilstm/state_c", "bilstm/state_h"]
        for dataset in f["lstm_state"].values():
            dataset.attrs["name"] = str(dataset.attrs["name"]).split("/")[-1]
    _replace_meta(checkpoint, {"format": 2, "step": 5, "data_state": {"batches_done": 5}, "replicas": 1})
    other, other_optimizer = _model_and_optimizer(CHECKPOINT_OPTIONS, seed=1)
    meta = load_checkpoint(other, str(tmp_path), other_optimizer,
                           parts=("trainable", "non_trainable", "lstm_state", "optimizer"))
    assert meta["step"] == 5 and meta["format"] == 2
    saved, restored = _by_name(model, optimizer), _by_name(other, other_optimizer)
    for name in saved:
        np.testing.assert_array_equal(restored[name], saved[name], err_msg=name)


@pytest.mark.parametrize("found", [1, 4])
def test_checkpoint_of_an_unknown_format_says_so(tmp_path, found):
    # Format 1 (restored by recorded paths) never left development: refused like a newer format.
    from elmo_keras.training.train import save_checkpoint

    model, optimizer = _model_and_optimizer(CHECKPOINT_OPTIONS)
    save_checkpoint(model, optimizer, str(tmp_path), step=3, data_state=None)
    _replace_meta(tmp_path / "checkpoint.h5", {"format": found, "step": 3})
    with pytest.raises(CheckpointError, match=rf"checkpoint\.h5: unknown checkpoint format {found} in field 'format' "
                                              r"of meta_json \(this version reads formats 2 and 3; format 1 came from "
                                              r"development versions before the first release, a higher one from a "
                                              r"newer elmo_keras\)$"):
        load_checkpoint(model, str(tmp_path))


def test_resume_refuses_a_data_position_of_format_1(tmp_path, uninterrupted):
    shutil.copytree(uninterrupted, tmp_path / "run")
    meta = read_checkpoint_meta(str(tmp_path / "run"))
    _replace_meta(tmp_path / "run" / "checkpoint.h5", dict(meta, data_state=dict(meta["data_state"], format=1)))
    with pytest.raises(CheckpointError, match=r"run/checkpoint\.h5: unknown batcher state format 1 in field "
                                              r"'data_state\.format' of meta_json \(this version resumes from format "
                                              r"2; format 1 came from development versions before the first "
                                              r"release\); use another save_dir$"):
        fixture_run(tmp_path / "run", RUN_STEPS + 2)
