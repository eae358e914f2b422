"""Released pretrained ELMo models: fetched once, verified, reused offline.

The files are the ones AllenNLP and bilm-tf published. A download goes to a
temporary file, is checked (size, options schema, every weight dataset
readable with the shape the options give) and only then moved into the
cache; its SHA-256 is recorded and checked again on every reuse, so a broken
or partial file is never used.

Example (offline: a model already in the cache is reused without network):

    from elmo_keras.pretrained import fetch_pretrained
    options_file, weight_file = fetch_pretrained("small")

`ELMO_KERAS_CACHE` sets the cache folder (default `~/.cache/elmo_keras`);
`ELMO_KERAS_MIRROR` replaces the download address prefix (a local mirror).
"""

import http.client
import json
import os
import shutil
import urllib.error
import urllib.request

import h5py

from elmo_keras.io.atomic import atomic_path, atomic_write_text
from elmo_keras.io.digest import file_digest
from elmo_keras.io.hdf5 import expected_weight_shapes
from elmo_keras.io.options import ElmoOptions, OptionsError

OFFICIAL_PREFIX = "https://s3-us-west-2.amazonaws.com/allennlp/models/elmo"

# name -> folder and file stem at the official address.
PRETRAINED_MODELS = {
    "small": "2x1024_128_2048cnn_1xhighway",
    "medium": "2x2048_256_2048cnn_1xhighway",
    "original": "2x4096_512_2048cnn_2xhighway",
    "original_5.5b": "2x4096_512_2048cnn_2xhighway_5.5B",
}


class DownloadError(OSError):
    """A pretrained model could not be fetched or failed verification."""


def model_urls(name, mirror=None):
    """Return the (options, weights) addresses of a released model."""
    if name not in PRETRAINED_MODELS:
        raise ValueError(f"unknown pretrained model {name!r}; expected one of {sorted(PRETRAINED_MODELS)}")
    stem = PRETRAINED_MODELS[name]
    prefix = (mirror or os.environ.get("ELMO_KERAS_MIRROR") or OFFICIAL_PREFIX).rstrip("/")
    base = f"{prefix}/{stem}/elmo_{stem}"
    return base + "_options.json", base + "_weights.hdf5"


def default_cache_dir():
    return os.environ.get("ELMO_KERAS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "elmo_keras")


def verify_model_files(options_file, weight_file):
    """Raise `DownloadError` unless the two files form a complete model."""
    try:
        options = ElmoOptions.from_json(options_file)
    except OptionsError as e:
        raise DownloadError(str(e)) from e
    try:
        with h5py.File(weight_file, "r") as f:
            for name, shape in expected_weight_shapes(options).items():
                if name not in f or tuple(f[name].shape) != shape:
                    found = tuple(f[name].shape) if name in f else "missing"
                    raise DownloadError(f"{weight_file}: dataset '{name}' is {found}, expected {shape}")
                f[name][...]  # reads every byte: a truncated file fails here
    except OSError as e:
        if isinstance(e, DownloadError):
            raise
        raise DownloadError(f"{weight_file}: not a complete hdf5 weights file: {e}") from e


def _download(url, path, progress):
    from tqdm import tqdm

    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            expected = response.headers.get("Content-Length")
            expected = int(expected) if expected is not None else None
            received = 0
            with atomic_path(path) as tmp, open(tmp, "wb") as out, tqdm(
                    total=expected, unit="B", unit_scale=True, desc=os.path.basename(path),
                    disable=not progress) as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    received += len(block)
                    bar.update(len(block))
                out.flush()
                if expected is not None and received != expected:
                    raise DownloadError(f"{url}: download incomplete ({received} of {expected} bytes)")
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as e:
        raise DownloadError(f"{url}: download failed: {e}") from e


def fetch_pretrained(name, cache_dir=None, mirror=None, progress=True):
    """Return local (options_file, weight_file) of a released model.

    Args:
        name: `"small"`, `"medium"`, `"original"` or `"original_5.5b"`.
        cache_dir: folder for the files (default `default_cache_dir()`).
        mirror: address prefix to use instead of the official one.
        progress: show a download progress bar.

    A verified cached copy is used without any network access.
    """
    options_url, weights_url = model_urls(name, mirror)
    folder = os.path.join(cache_dir or default_cache_dir(), name)
    options_file = os.path.join(folder, "options.json")
    weight_file = os.path.join(folder, "weights.hdf5")
    manifest_file = os.path.join(folder, "manifest.json")
    if os.path.exists(manifest_file):
        try:
            with open(manifest_file, encoding="utf-8") as f:
                manifest = json.load(f)
            if (file_digest(options_file) == manifest["options_sha256"]
                    and file_digest(weight_file) == manifest["weights_sha256"]):
                return options_file, weight_file
        except (OSError, ValueError, KeyError):
            pass
        shutil.rmtree(folder)  # changed or damaged since it was verified
    os.makedirs(folder, exist_ok=True)
    _download(options_url, options_file, progress=False)
    _download(weights_url, weight_file, progress=progress)
    try:
        verify_model_files(options_file, weight_file)
    except DownloadError:
        shutil.rmtree(folder)
        raise
    atomic_write_text(manifest_file, json.dumps({
        "name": name, "options_url": options_url, "weights_url": weights_url,
        "options_sha256": file_digest(options_file), "weights_sha256": file_digest(weight_file)}, indent=2))
    return options_file, weight_file


def _bundled_model_dir():
    """The folder of the bundled default model, wherever elmo_keras is.

    An installed package (a wheel) carries it as package data in
    `elmo_keras/savedmodels/default/`; a source tree or an editable install
    has it at the top of the repository, `savedmodels/default/`.
    """
    package = os.path.dirname(os.path.abspath(__file__))
    candidates = (os.path.join(package, "savedmodels", "default"),
                  os.path.join(os.path.dirname(package), "savedmodels", "default"))
    for folder in candidates:
        if os.path.isfile(os.path.join(folder, "options.json")):
            return folder
    return candidates[0]  # where an installed package keeps it: named by the error if it is missing


# The small model trained by this project and shipped with the package.
DEFAULT_MODEL_DIR = _bundled_model_dir()


def default_model_files():
    """Return (options_file, weight_file) of the bundled default model.

    `ELMO_KERAS_DEFAULT_MODEL` may name another folder holding
    `options.json` and `weights.hdf5`.
    """
    folder = os.environ.get("ELMO_KERAS_DEFAULT_MODEL") or DEFAULT_MODEL_DIR
    options_file, weight_file = os.path.join(folder, "options.json"), os.path.join(folder, "weights.hdf5")
    if not (os.path.exists(options_file) and os.path.exists(weight_file)):
        raise FileNotFoundError(
            f"{folder}: the bundled default model (options.json, weights.hdf5) is not there; pass "
            f"--options-file/--weight-file or --model NAME (one of {sorted(PRETRAINED_MODELS)})")
    return options_file, weight_file


# A wrong choice of model, in the words of the Python API or of the CLI's flags.
_CHOICE_ERRORS = {
    False: ("pass either model or options_file/weight_file, not both",
            "pass both options_file and weight_file, or neither for the bundled default model"),
    True: ("pass either --model or --options-file/--weight-file, not both",
           "pass both --options-file and --weight-file (or neither, for the bundled model)"),
}


def check_model_choice(options_file=None, weight_file=None, model=None, flags=False):
    """Raise ValueError unless the arguments name one biLM: `model`, both files, or none.

    `flags`: name the CLI's `--model`, `--options-file` and `--weight-file`
    in the message instead of the Python arguments. `None` means not given.
    """
    both, pair = _CHOICE_ERRORS[bool(flags)]
    if model is not None and (options_file is not None or weight_file is not None):
        raise ValueError(both)
    if (options_file is None) != (weight_file is None):
        raise ValueError(pair)


def resolve_model_files(options_file=None, weight_file=None, model=None, progress=True, flags=False):
    """(options_file, weight_file) of the biLM the arguments name: the one resolution of "which model".

    A released `model` (`fetch_pretrained`, once into the cache), the two
    files as given, or with none the bundled default model
    (`default_model_files`). `ElmoEmbedder`, the CLI's `--model`/
    `--options-file`/`--weight-file`, `ElmoBackbone.from_preset` and the Beam
    handler all resolve here; `check_model_choice` (with `flags`) says what
    is wrong with a bad combination.
    """
    check_model_choice(options_file, weight_file, model, flags=flags)
    if model is not None:
        return fetch_pretrained(model, progress=progress)
    if options_file is not None:
        return options_file, weight_file
    return default_model_files()
