# The set-up cell of every notebook: `build.py` puts it where a notebook's source says `# %% setup`.

# %%
# Set-up. On Colab this installs elmo_keras (a few minutes); where it is installed, it does nothing.
import importlib
import importlib.metadata
import importlib.util
import os
import pathlib
import subprocess
import sys

# What pip installs when elmo_keras is missing: the released package with the extras these notebooks need.
# Or a wheel's path: "elmo_keras-0.1.0-py3-none-any.whl[tf,notebooks]"; a URL, or a fork's repository:
# "elmo-keras[tf,notebooks] @ https://.../elmo_keras-0.1.0-py3-none-any.whl" or "... @ git+https://...".
ELMO_KERAS_INSTALL = os.environ.get("ELMO_KERAS_INSTALL") or "elmo-keras[tf,notebooks]"
# Tiny settings for CI (ELMO_KERAS_NOTEBOOK_SMALL=1); the defaults suit a Colab CPU.
SMALL = os.environ.get("ELMO_KERAS_NOTEBOOK_SMALL", "0") == "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # fewer TensorFlow start-up messages

if importlib.util.find_spec("elmo_keras") is None:
    loaded = {name: sys.modules[name].__version__ for name in ("numpy", "tensorflow", "keras", "jax")
              if name in sys.modules}
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", ELMO_KERAS_INSTALL], check=True)
    changed = [name for name, version in loaded.items() if importlib.metadata.version(name) != version]
    if changed:
        raise RuntimeError(f"pip replaced {changed}, which this session had already imported: restart the "
                           f"session (Runtime > Restart session) and run all cells again")
    importlib.invalidate_caches()

import elmo_keras
from elmo_keras.pretrained import default_model_files

# The small English model the package ships (see its MODEL_CARD.md): options.json and weights.hdf5.
MODEL_OPTIONS, MODEL_WEIGHTS = default_model_files()
MODEL_DIR = pathlib.Path(MODEL_OPTIONS).parent
print(f"elmo_keras {elmo_keras.__version__}; {'tiny CI settings' if SMALL else 'full settings'}")
