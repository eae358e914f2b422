"""Pretraining over several workers and devices: the same steps as one device.

- `MultiWorkerMirroredStrategy` with two worker processes on 127.0.0.1:
  `train` picks the strategy from `TF_CONFIG`; each worker keeps the rows of
  its own replica.
- `MirroredStrategy` over two logical CPUs.
- JAX `DataParallel` over two (forced) host devices, which `train` picks when
  JAX sees several devices.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys

import h5py
import keras
import numpy as np
import pytest

from conftest import FIXTURE, xla_flags

HERE = pathlib.Path(__file__).parent
REPO = HERE.parent.parent
TRAIN_FIXTURE = FIXTURE / "train"

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="runs the workers from the TF run")

OPTIONS = {"lstm": {"dim": 32, "projection_dim": 16, "n_layers": 2},
           "char_cnn": {"embedding": {"dim": 4}, "filters": [[1, 8], [2, 8]], "n_highway": 1},
           "batch_size": 4, "unroll_steps": 5, "dropout": 0.0, "n_negative_samples_batch": 8}

_WORKER = """
import json, os, sys
index, ports, options_file, fixture, save_dir = int(sys.argv[1]), sys.argv[2].split(","), *sys.argv[3:]
os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": ["127.0.0.1:" + p for p in ports]},
                                      "task": {"type": "worker", "index": index}})
from elmo_keras.training.train import train
result = train(options_file, fixture + "/vocab.txt", fixture + "/data.txt", save_dir, max_steps=3, progress=False)
print("RESULT " + json.dumps(result))
"""


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def checkpoint_arrays(save_dir, groups=("trainable", "optimizer")):
    with h5py.File(os.path.join(save_dir, "checkpoint.h5"), "r") as f:
        return {f"{g}/{n}": f[g][n][...] for g in groups for n in f[g]}


@pytest.mark.slow
def test_two_workers_match_one_process(tmp_path):
    from elmo_keras.training.train import read_checkpoint_meta, train

    options_file = tmp_path / "options.json"
    options_file.write_text(json.dumps(OPTIONS))
    ports = ",".join(map(str, free_ports(2)))
    env = dict(os.environ, KERAS_BACKEND="tensorflow", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    workers = [subprocess.Popen([sys.executable, "-c", _WORKER, str(i), ports, str(options_file),
                                 str(TRAIN_FIXTURE), str(tmp_path / "workers")],
                                cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in range(2)]
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=300))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, out[-2000:] + err[-5000:]
    results = [json.loads(out.split("RESULT ", 1)[1]) for out, _ in outputs]

    single = train(str(options_file), str(TRAIN_FIXTURE / "vocab.txt"), str(TRAIN_FIXTURE / "data.txt"),
                   str(tmp_path / "single"), max_steps=3, progress=False)
    assert results[0]["step"] == results[1]["step"] == single["step"] == 3
    assert results[0]["loss"] == pytest.approx(single["loss"], abs=1e-5)
    assert read_checkpoint_meta(str(tmp_path / "workers"))["replicas"] == 2
    ours, reference = checkpoint_arrays(str(tmp_path / "workers")), checkpoint_arrays(str(tmp_path / "single"))
    assert sorted(ours) == sorted(reference)
    for name in reference:
        np.testing.assert_allclose(ours[name], reference[name], atol=1e-5, err_msg=name)


_ONE_VS_TWO_DEVICES = """
import json, os, sys
import keras
if keras.backend.backend() == "tensorflow":
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    parallel = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
else:
    assert len(keras.distribution.list_devices()) == 2
    parallel = None  # train picks DataParallel over the devices it sees
import h5py, numpy as np
from elmo_keras.training.train import train
options_file, fixture, folder = sys.argv[1:]
results, arrays = {}, {}
for name, strategy in [("one_device", "none"), ("two_devices", parallel)]:
    results[name] = train(options_file, fixture + "/vocab.txt", fixture + "/data.txt", os.path.join(folder, name),
                          max_steps=3, strategy=strategy, progress=False)
    with h5py.File(os.path.join(folder, name, "checkpoint.h5"), "r") as f:
        arrays[name] = {g + "/" + n: f[g][n][...] for g in f if g != "meta_json" for n in f[g]}
one, two = arrays["one_device"], arrays["two_devices"]
print("RESULT " + json.dumps({"results": results, "names": [sorted(one), sorted(two)],
                              "max_difference": {k: float(np.abs(one[k] - two[k]).max()) for k in one}}))
"""


def run_on_two_devices(tmp_path, env):
    options_file = tmp_path / "options.json"
    options_file.write_text(json.dumps(OPTIONS))
    result = subprocess.run([sys.executable, "-c", _ONE_VS_TWO_DEVICES, str(options_file), str(TRAIN_FIXTURE),
                             str(tmp_path)], cwd=REPO, env=dict(os.environ, **env), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-5000:]
    report = json.loads(result.stdout.split("RESULT ", 1)[1])
    one, two = report["results"]["one_device"], report["results"]["two_devices"]
    assert one["step"] == two["step"] == 3
    assert two["loss"] == pytest.approx(one["loss"], abs=1e-5)
    # Every variable after 3 updates: weights, Adagrad accumulators, random
    # seeds and the carried LSTM state of all 4 rows.
    assert report["names"][0] == report["names"][1] and "lstm_state/00000" in report["names"][0]
    assert max(report["max_difference"].values()) < 1e-5, report["max_difference"]


@pytest.mark.slow
def test_mirrored_strategy_matches_one_device(tmp_path):
    run_on_two_devices(tmp_path, {"KERAS_BACKEND": "tensorflow", "CUDA_VISIBLE_DEVICES": ""})


@pytest.mark.slow
def test_jax_data_parallel_matches_one_device(tmp_path):
    pytest.importorskip("jax")
    run_on_two_devices(tmp_path, {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
                                  "XLA_FLAGS": xla_flags("--xla_force_host_platform_device_count=2",
                                                         "--xla_backend_optimization_level=0")})
