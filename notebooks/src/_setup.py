# The set-up cell of every notebook: `build.py` puts it where a notebook's source says `# %% setup`.

# %%
# Set-up. On Colab this installs elmo_keras (a few minutes); where it is installed, it does nothing.
import importlib.metadata
import importlib.util
import os
import pathlib
import subprocess
import sys

# Set REPO_URL to the repository to install from (your fork, or the project's address).
REPO_URL = "https://github.com/<your-fork>/elmo_keras"
# Tiny settings for CI (ELMO_KERAS_NOTEBOOK_SMALL=1); the defaults suit a Colab CPU.
SMALL = os.environ.get("ELMO_KERAS_NOTEBOOK_SMALL", "0") == "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # fewer TensorFlow start-up messages

if importlib.util.find_spec("elmo_keras") is None:
    if "<your-fork>" in REPO_URL:
        raise RuntimeError("elmo_keras is not installed: set REPO_URL in this cell to the repository to install from")
    if not os.path.isdir("elmo_keras_repo"):
        subprocess.run(["git", "clone", "--depth", "1", REPO_URL, "elmo_keras_repo"], check=True)
    loaded = {name: sys.modules[name].__version__ for name in ("numpy", "tensorflow", "keras", "jax")
              if name in sys.modules}
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", "requirements.txt", "-e", "."],
                   cwd="elmo_keras_repo", check=True)
    changed = [name for name, version in loaded.items() if importlib.metadata.version(name) != version]
    if changed:
        raise RuntimeError(f"pip replaced {changed}, which this session had already imported: restart the "
                           f"session (Runtime > Restart session) and run all cells again")
    sys.path.insert(0, os.path.abspath("elmo_keras_repo"))  # an editable install is seen after a restart only

import elmo_keras

# The clone holds the test models and data that the notebooks use.
for REPO in (pathlib.Path(elmo_keras.__file__).resolve().parents[1], pathlib.Path.cwd(), *pathlib.Path.cwd().parents):
    if (REPO / "tests" / "data" / "bilm-tf" / "options.json").exists():
        break
else:
    raise FileNotFoundError("tests/data/bilm-tf not found: run this notebook from a clone of the repository")
FIXTURE_OPTIONS = REPO / "tests" / "data" / "bilm-tf" / "options.json"
FIXTURE_WEIGHTS = REPO / "tests" / "data" / "bilm-tf" / "lm_weights.hdf5"
print(f"elmo_keras {elmo_keras.__version__}; {'tiny CI settings' if SMALL else 'full settings'}")
