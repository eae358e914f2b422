"""`keras.callbacks.BackupAndRestore` against `train`'s own checkpoint, on the job `test_kill_resume.py` kills.

Why `elmo_keras/training/checkpoint.py` keeps its own format, as facts that
stay true on this job (the tiny biLM on the bilm-tf fixture, 12 steps, dropout
and sampled softmax on, interrupted after step 8):

- (`train` resumed from its checkpoint ends bit for bit where the
  uninterrupted run ends: `tests/test_train.py`, `tests/test_kill_resume.py`;)
- the same job fitted with `BackupAndRestore(save_freq="epoch")` does not: it
  restarts the epoch counter only, the data starts again at the corpus' first
  batch, and its backup (`model.save_weights`) has no random seed state;
- with two pieces of glue (the data started from the restored
  `optimizer.iterations`, the seed states kept beside the backup) and epochs as
  long as the interval between backups, it does.

`benchmarks/backup_and_restore_probe.py` measures more (mid-epoch `save_freq`,
MirroredStrategy, a half-written backup); `benchmarks/RESULTS.md` has its numbers.
"""

import importlib.util
import pathlib
import shutil

import keras
import pytest

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the probe fits on TensorFlow")

PROBE = pathlib.Path(__file__).parents[2] / "benchmarks" / "backup_and_restore_probe.py"


@pytest.fixture
def probe(monkeypatch):
    spec = importlib.util.spec_from_file_location("backup_and_restore_probe", PROBE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "STEPS", 12)  # 2 epochs of 6 steps
    return module


@pytest.mark.slow
def test_backup_and_restore_resumes_the_job_only_with_glue(tmp_path, probe):
    folder, backup = str(tmp_path), str(tmp_path / "backup")
    reference = probe.package_run(folder, "uninterrupted")  # `train`, 12 steps in one go
    # Interrupted after step 8; the backup is BackupAndRestore's (save_freq="epoch": step 6) plus seeds.npz.
    probe.keras_fit(folder, backup, "start", "epoch", crash_after=8, seeds=True)
    shapes, metadata = probe.backup_contents(backup)
    assert metadata == {"epoch": 1, "batch": 0}  # resumes at the start of epoch 1 (step 6)
    # The weights, the optimizer and the carried state (2 arrays of rank 4), no seed state (shape (2,)).
    assert len(shapes) == len(reference["trainable"]) + len(reference["optimizer"]) + 2
    assert sum(len(shape) == 4 for shape in shapes.values()) == 2
    assert not any(shape == (2,) for shape in shapes.values())
    shutil.copytree(backup, str(tmp_path / "plain"))

    # BackupAndRestore as it is: 12 steps done, but not the uninterrupted run's.
    plain = probe.keras_fit(folder, str(tmp_path / "plain"), "start", "epoch")
    assert int(plain["optimizer"]["iteration"]) == 12
    result = probe.compare(plain, reference)
    assert not result["trainable"][0] and not result["seeds"][0]

    # With the data started at the restored step and the seeds restored: bit for bit.
    glued = probe.keras_fit(folder, backup, "iterations", "epoch", seeds=True)
    assert all(equal for equal, _ in probe.compare(glued, reference).values())
