""".keras files move between backends: saved on TensorFlow, JAX or PyTorch, loaded on each of the others.

Each backend (Keras picks it once per process, so JAX and PyTorch run in child
processes; this process is TensorFlow) saves an `ElmoBackbone` and a small
model around an `Elmo` layer with a non-default mix, and writes its outputs on
the same char ids. Then each backend loads the others' files and writes what
they give. Another backend is another float32 computation (other kernels sum
the products in another order), so outputs agree to the tolerance derived from
the computation (`reference_bilm.float32_tolerance`, measured on these very
char ids), never bit for bit; the masks are equal.
"""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import FIXTURE_OPTIONS, FIXTURE_WEIGHTS, xla_flags
from reference_bilm import ReferenceBiLM, float32_tolerance

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
SENTENCES = [["The", "bank", "raised", "rates", "."], ["We", "sat", "by", "the", "river", "bank"], ["Hi"], []]
MIX = [0.5, -0.5, 1.0]  # not the default: the loaded mix weights must be the saved ones
# Float32 unit roundoff (round to nearest).
U = 2.0**-24

# Run by every backend: `save FOLDER` writes `<backend>_<model>.keras` and their outputs on `char_ids.npy`;
# `load FOLDER` loads every other backend's files and writes `<file>_on_<backend>_<output>.npy`.
SCRIPT = """
    import glob, json, os, sys
    import keras
    import numpy as np
    import elmo_keras  # registers the classes for loading
    from elmo_keras import Elmo, ElmoBackbone

    mode, folder, options_file, weight_file, mix = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
    backend = keras.backend.backend()
    x = np.load(os.path.join(folder, "char_ids.npy"))

    def outputs(model):
        out = model.predict(x, verbose=0)
        return {"activations": out["activations"]} if "activations" in out else out

    if mode == "save":
        char_ids = keras.Input((None, 50), dtype="int32", name="char_ids")
        elmo = Elmo.from_files(options_file, weight_file, dropout=0.0, scalar_mix_parameters=json.loads(mix))(char_ids)
        models = {"backbone": ElmoBackbone.from_files(options_file, weight_file),
                  "elmo": keras.Model(char_ids, {"elmo": elmo["elmo_representations"][0], "mask": elmo["mask"]})}
        for name, model in models.items():
            stem = os.path.join(folder, f"{backend}_{name}")
            model.save(stem + ".keras")
            for key, value in outputs(model).items():
                np.save(f"{stem}_on_{backend}_{key}.npy", np.asarray(value))
    else:
        for path in sorted(glob.glob(os.path.join(folder, "*.keras"))):
            stem = path[: -len(".keras")]
            if os.path.basename(stem).startswith(backend + "_"):
                continue
            for key, value in outputs(keras.saving.load_model(path)).items():
                np.save(f"{stem}_on_{backend}_{key}.npy", np.asarray(value))
    print(json.dumps(backend))
"""


def _installed(backend):
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _run(backend, mode, folder):
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3",
               CUDA_VISIBLE_DEVICES="")
    if backend == "jax":
        env.update(JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags("--xla_backend_optimization_level=0"))
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT), mode, str(folder), FIXTURE_OPTIONS,
                             FIXTURE_WEIGHTS, json.dumps(MIX)], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == backend


def _activation_tolerance(x):
    """The atol between two float32 evaluations of the fixture biLM on `x`: see `float32_tolerance`."""
    with open(FIXTURE_OPTIONS, encoding="utf-8") as f:
        options = json.load(f)
    per_dtype = []
    for dtype in (np.float64, np.float32):
        reference = ReferenceBiLM(options, FIXTURE_WEIGHTS, dtype=dtype)
        per_dtype.append([reference.sentence(x[k, : len(s) + 2]) for k, s in enumerate(SENTENCES)])
    return float32_tolerance(*per_dtype)


@pytest.mark.slow
def test_keras_files_saved_on_one_backend_load_on_the_others_with_equal_outputs(tmp_path):
    from elmo_keras import batch_to_ids

    backends = [b for b in ("tensorflow", "jax", "torch") if _installed(b)]
    if len(backends) < 2:
        pytest.skip("needs a second backend: the jax or torch extra (pip install 'elmo-keras[torch]')")
    x = batch_to_ids(SENTENCES)
    np.save(tmp_path / "char_ids.npy", x)
    for backend in backends:
        _run(backend, "save", tmp_path)
    for backend in backends:
        _run(backend, "load", tmp_path)

    atol = _activation_tolerance(x)
    compared = 0
    for source in backends:
        for name in ("backbone", "elmo"):
            saved = {path.name.split(f"_on_{source}_")[1][: -len(".npy")]: np.load(path)
                     for path in tmp_path.glob(f"{source}_{name}_on_{source}_*.npy")}
            assert sorted(saved) == (["activations"] if name == "backbone" else ["elmo", "mask"])
            for target in backends:
                if target == source:
                    continue
                for key, expected in saved.items():
                    got = np.load(tmp_path / f"{source}_{name}_on_{target}_{key}.npy")
                    assert got.shape == expected.shape and got.dtype == expected.dtype, (source, target, key)
                    if key == "mask":
                        np.testing.assert_array_equal(got, expected)
                        continue
                    bound = atol
                    if key == "elmo":
                        # A mix of the layers (softmax weights summing to 1, scale 1) moves by at most the
                        # layers' atol, plus its own rounding on each side: K products and K - 1 additions,
                        # at most (K + 1) u sum_k |layer_k| (the activations of the same model, saved).
                        layers = np.load(tmp_path / f"{source}_backbone_on_{source}_activations.npy")[:, :, 1:-1]
                        bound = atol + 2 * (len(MIX) + 1) * U * np.abs(layers).sum(axis=1)[:, : got.shape[1]]
                    assert np.all(np.abs(got - expected) <= bound), (source, target, key,
                                                                     np.abs(got - expected).max(), atol)
                    compared += 1
    assert compared == 2 * len(backends) * (len(backends) - 1)  # activations, elmo: each pair both ways
