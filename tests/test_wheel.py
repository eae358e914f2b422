"""`pip install elmo-keras` works outside the repository, with the bundled model.

The wheel is built as a user builds it (`pip wheel --no-deps`), from a copy of
the files a clean clone holds (git's tracked and not-ignored files): the
shared working tree gets no `build/` or `*.egg-info`, and no stale `build/lib`
from an earlier build can slip into the wheel. It is installed without
dependencies into a folder of its own (`pip install --no-deps --target`);
the checks run in a child process whose working directory is outside the
repository and whose `PYTHONPATH` is only that folder, so the repository's
source tree is not importable there. The dependencies (Keras, TensorFlow,
...) come from this interpreter's site-packages.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import zipfile

import h5py
import numpy as np
import pytest
from reference_bilm import batching_tolerance

from elmo_keras.pretrained import default_model_files

pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parent.parent
SENTENCES = [["The", "bank", "raised", "its", "rates", "."], ["We", "sat", "on", "the", "river", "bank"]]
# The files of the bundled model the wheel must carry (relative to savedmodels/default).
MODEL_FILES = ["options.json", "weights.hdf5", "MODEL_CARD.md", "LICENSE.wordnet", "vocab.txt",
               "training_options.json", "savedmodel/1/saved_model.pb",
               "savedmodel/1/variables/variables.data-00000-of-00001", "savedmodel/1/variables/variables.index"]


def _source_files(repo):
    """The files a clean clone of `repo` holds, plus new files not ignored (relative paths)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=repo, capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.CalledProcessError):
        listed = None
    if listed is None:  # not a git checkout (an unpacked source archive): everything but build outputs
        skip = {".git", "build", "dist", "__pycache__", ".pytest_cache"}
        return [p.relative_to(repo) for p in repo.rglob("*") if p.is_file()
                and not skip.intersection(p.relative_to(repo).parts)
                and not any(part.endswith(".egg-info") for part in p.relative_to(repo).parts)]
    return [pathlib.Path(name) for name in listed.decode("utf-8").split("\0") if name]


def _child_env(site):
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    import keras

    env.update(PYTHONPATH=str(site), PYTHONNOUSERSITE="1", KERAS_BACKEND=keras.backend.backend(),
               TF_CPP_MIN_LOG_LEVEL="3")
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Build the wheel, install it into `site`; return the folders, the wheel and the build time."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    for relative in _source_files(REPO):
        if (REPO / relative).is_file():
            (source / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / relative, source / relative)
    start = time.perf_counter()
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"),
                            str(source)], capture_output=True, text=True, timeout=900)
    build_s = time.perf_counter() - start
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    wheels = sorted((tmp / "dist").glob("elmo_keras-*.whl"))
    assert len(wheels) == 1, wheels
    site = tmp / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
                              str(wheels[0])], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    outside = tmp / "outside"
    outside.mkdir()
    print(f"\nwheel {wheels[0].name}: {wheels[0].stat().st_size / 1e6:.1f} MB, built in {build_s:.1f} s")
    return {"tmp": tmp, "source": source, "site": site, "outside": outside, "wheel": wheels[0],
            "build_s": build_s}


def test_wheel_carries_the_bundled_model_and_not_the_tests(installed):
    with zipfile.ZipFile(installed["wheel"]) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode("utf-8")
    for name in MODEL_FILES:
        assert f"elmo_keras/savedmodels/default/{name}" in names, name
    # Every file of the source's savedmodels/default is packaged (a new file needs setup.py's BUNDLED_MODEL).
    bundled = installed["source"] / "savedmodels" / "default"
    missing = [str(p.relative_to(bundled)) for p in bundled.rglob("*")
               if p.is_file() and f"elmo_keras/savedmodels/default/{p.relative_to(bundled).as_posix()}" not in names]
    assert not missing, f"not in the wheel: {missing}"
    assert not [n for n in names if n.split("/")[0] in ("tests", "benchmarks", "examples", "notebooks", "docs")]
    assert installed["wheel"].stat().st_size < 30e6
    # No backend by default; the extras name them.
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert not [line for line in requires if "tensorflow" in line and "extra ==" not in line]
    for extra in ("tf", "jax", "hub", "notebooks", "test", "model-garden"):
        assert f"Provides-Extra: {extra}" in metadata, extra


def test_embedder_and_cli_outside_the_repository_use_the_packaged_model(installed):
    site, outside = installed["site"], installed["outside"]
    env = _child_env(site)
    code = (
        "import importlib.metadata, json, sys\n"
        "import numpy as np\n"
        "import elmo_keras\n"
        "from elmo_keras import ElmoEmbedder\n"
        "from elmo_keras.pretrained import DEFAULT_MODEL_DIR, default_model_files\n"
        "embedder = ElmoEmbedder()\n"
        f"vectors = embedder.embed_batch({SENTENCES!r})\n"
        "np.savez('vectors.npz', *vectors)\n"
        "print(json.dumps({'file': elmo_keras.__file__, 'version': elmo_keras.__version__,\n"
        "                  'distribution': importlib.metadata.version('elmo_keras'),\n"
        "                  'model_dir': DEFAULT_MODEL_DIR, 'files': default_model_files(),\n"
        "                  'options_file': embedder.options_file,\n"
        "                  'repo_importable': any(p.startswith(sys.argv[1]) for p in map(str, sys.path) if p)}))\n")
    result = subprocess.run([sys.executable, "-s", "-c", code, str(REPO)], cwd=outside, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    site_prefix = str(site.resolve())
    assert report["file"].startswith(site_prefix), report  # the installed package, not the source tree
    assert not report["repo_importable"], report
    assert report["model_dir"] == os.path.join(site_prefix, "elmo_keras", "savedmodels", "default")
    assert report["options_file"] == os.path.join(report["model_dir"], "options.json")
    assert all(path.startswith(report["model_dir"]) for path in report["files"])

    import elmo_keras
    from elmo_keras import ElmoEmbedder

    assert report["version"] == report["distribution"] == elmo_keras.__version__
    expected = ElmoEmbedder().embed_batch(SENTENCES)  # the repository's own bundled model
    with np.load(outside / "vectors.npz") as saved:
        vectors = [saved[f"arr_{k}"] for k in range(len(SENTENCES))]
    assert [v.shape for v in vectors] == [(3, len(s), 256) for s in SENTENCES]
    # The same call on the same files, in another process: on this CPU the same computation.
    for got, want in zip(vectors, expected):
        np.testing.assert_array_equal(got, want)

    (outside / "in.txt").write_text("\n".join(" ".join(s) for s in SENTENCES) + "\n", encoding="utf-8")
    cli = subprocess.run([sys.executable, "-s", "-m", "elmo_keras.cli", "embed", "in.txt", "out.hdf5", "--top",
                          "--quiet"], cwd=outside, env=env, capture_output=True, text=True, timeout=600)
    assert cli.returncode == 0, cli.stderr[-3000:]
    with h5py.File(outside / "out.hdf5", "r") as f:
        for k, want in enumerate(expected):
            assert f[str(k)].shape == (len(SENTENCES[k]), 256)
            # The command's batches are not embed_batch's: the bundled model's batching tolerance.
            atol = batching_tolerance(*default_model_files(), tuple(map(tuple, SENTENCES)))
            np.testing.assert_allclose(f[str(k)][...], want[-1], rtol=0, atol=atol)


def test_console_script_prints_the_version(installed):
    import elmo_keras

    script = installed["site"] / "bin" / "elmo-keras"
    assert script.exists()
    result = subprocess.run([str(script), "--version"], cwd=installed["outside"], env=_child_env(installed["site"]),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == f"elmo-keras {elmo_keras.__version__}"
