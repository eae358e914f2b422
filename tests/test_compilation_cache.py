"""elmo_keras/compilation_cache.py: the command keeps compiled programs between runs, the vectors stay the same."""

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from elmo_keras import compilation_cache

TEXT = "The cat sat on the mat .\nA second sentence here .\n"


def _embed(tmp_path, backend, out, cache):
    env = dict(os.environ, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu", ELMO_KERAS_CACHE=str(tmp_path / "cache"),
               ELMO_KERAS_COMPILATION_CACHE="1" if cache else "0")
    proc = subprocess.run([sys.executable, "-m", "elmo_keras.cli", "embed", str(tmp_path / "two.txt"),
                           str(tmp_path / out), "--quiet"], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with h5py.File(tmp_path / out, "r") as f:
        return {key: np.asarray(f[key]) for key in f if key != "sentence_to_index"}


def _cached_files(tmp_path):
    root = tmp_path / "cache" / "compiled"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.parametrize("backend", ["tensorflow", pytest.param("jax", marks=pytest.mark.slow)])
def test_the_command_fills_and_reuses_the_cache_with_the_same_vectors(tmp_path, backend):
    (tmp_path / "two.txt").write_text(TEXT, encoding="utf-8")
    without = _embed(tmp_path, backend, "without.hdf5", cache=False)
    assert _cached_files(tmp_path) == []
    first = _embed(tmp_path, backend, "first.hdf5", cache=True)
    files = _cached_files(tmp_path)
    assert files, "nothing was cached"
    second = _embed(tmp_path, backend, "second.hdf5", cache=True)  # compiled programs read back from the cache
    # The same compiled programs on the same CPU: the very same computation, so the same bits.
    for vectors in (first, second):
        assert vectors.keys() == without.keys()
        for key in without:
            np.testing.assert_array_equal(vectors[key], without[key])
    # One folder per machine and software, under $ELMO_KERAS_CACHE/compiled.
    assert {p.relative_to(tmp_path / "cache" / "compiled").parts[0] for p in files} == {
        compilation_cache.machine_digest()}


def test_the_folder_changes_with_what_changes_compiled_code(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    plain = compilation_cache.machine_digest()
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_max_isa=SSE4_2")
    assert compilation_cache.machine_digest() != plain
    monkeypatch.setenv("ELMO_KERAS_CACHE", "/some/where")
    assert compilation_cache.default_directory() == os.path.join("/some/where", "compiled",
                                                                 compilation_cache.machine_digest())


@pytest.mark.parametrize("value, on", [("0", False), ("off", False), ("no", False), ("1", True), ("", True)])
def test_the_environment_variable_turns_it_off(monkeypatch, value, on):
    monkeypatch.setenv(compilation_cache.ENVIRONMENT_VARIABLE, value)
    assert compilation_cache.enabled_by_environment() is on


def test_tensorflow_already_imported_is_said(monkeypatch, tmp_path):
    """TensorFlow reads its XLA flags once: after its import the cache cannot apply, and None says so."""
    pytest.importorskip("tensorflow")
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)
    assert compilation_cache.enable_compilation_cache(str(tmp_path / "c")) is None
    assert "TF_XLA_FLAGS" not in os.environ
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert compilation_cache.enable_compilation_cache(str(tmp_path / "c")) is None  # nothing compiled on PyTorch
