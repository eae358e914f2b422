"""A Keras backend whose library is not installed: one line naming the extra, from the API and the command line.

Keras imports the backend's library at `import keras` and fails deep inside
itself without it. Each case runs in a child process in which importing that
library fails as it fails where it is not installed (`ModuleNotFoundError`
naming it), whether or not it is installed here.
"""

import json
import os
import subprocess
import sys

import pytest

from conftest import FIXTURE_OPTIONS, FIXTURE_WEIGHTS

# Makes `import <BLOCKED>` (and its submodules) fail as for a library that is not installed.
BLOCK = """
import importlib.abc, os, sys
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == os.environ["BLOCKED"]:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NotInstalled())
"""

API = BLOCK + """
import elmo_keras
try:
    elmo_keras.ElmoEmbedder(sys.argv[1], sys.argv[2])
except ImportError as e:
    print(str(e))
"""

CLI = BLOCK + """
from elmo_keras.cli import main
sys.exit(main())
"""


def _run(script, backend, *args, **env):
    env = dict(os.environ, KERAS_BACKEND=backend, BLOCKED={"tensorflow": "tensorflow"}.get(backend, backend), **env)
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env)


def _message(backend, extra):
    return (f'KERAS_BACKEND={backend} needs {backend}, which is not installed: pip install "elmo-keras[{extra}]" '
            f"(or set KERAS_BACKEND to an installed backend)")


@pytest.mark.parametrize("backend, extra", [("torch", "torch"), ("jax", "jax"), ("tensorflow", "tf")])
def test_api_names_the_extra_of_a_missing_backend(backend, extra):
    result = _run(API, backend, FIXTURE_OPTIONS, FIXTURE_WEIGHTS)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == _message(backend, extra) + "\n"


@pytest.mark.parametrize("backend, extra", [("torch", "torch"), ("jax", "jax")])
def test_embed_command_says_in_one_line_which_extra_to_install(tmp_path, backend, extra):
    (tmp_path / "in.txt").write_text("the cat sat\n", encoding="utf-8")
    result = _run(CLI, backend, "embed", tmp_path / "in.txt", tmp_path / "out.hdf5", "--options-file",
                  FIXTURE_OPTIONS, "--weight-file", FIXTURE_WEIGHTS)
    assert result.returncode == 1
    assert result.stderr == f"elmo-keras embed: error: {_message(backend, extra)}\n"
    assert not (tmp_path / "out.hdf5").exists()


def test_backend_from_keras_json_is_named_with_its_file(tmp_path):
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "torch"}))
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    result = subprocess.run([sys.executable, "-c", API, FIXTURE_OPTIONS, FIXTURE_WEIGHTS], capture_output=True,
                            text=True, timeout=300, env={**env, "KERAS_HOME": str(tmp_path), "BLOCKED": "torch"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == (f"the Keras backend torch ({tmp_path / 'keras.json'}) needs torch, which is not "
                             f'installed: pip install "elmo-keras[torch]" (or set KERAS_BACKEND to an installed '
                             f"backend)\n")
