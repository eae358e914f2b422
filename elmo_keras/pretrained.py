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

Models published elsewhere in bilm-tf's format, such as the NLPL vector
repository's zip files (`model.hdf5`, `options.json`, `vocab.txt`,
`meta.json`; NorELMo, the RusVectores models), load from the zip itself or
from the folder it unpacks to (`local_model_files`): a zip is unpacked once
into the cache, verified, and reused.
"""

import glob
import http.client
import json
import os
import posixpath
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile

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
    if os.path.exists(os.path.join(folder, "manifest.json")):
        if _verified(folder, options_file, weight_file):
            return options_file, weight_file
        shutil.rmtree(folder)  # changed or damaged since it was verified
    os.makedirs(folder, exist_ok=True)
    _download(options_url, options_file, progress=False)
    _download(weights_url, weight_file, progress=progress)
    try:
        verify_model_files(options_file, weight_file)
    except DownloadError:
        shutil.rmtree(folder)
        raise
    _write_manifest(folder, {"name": name, "options_url": options_url, "weights_url": weights_url})
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


def _folder_model_files(folder):
    """(options_file, weight_file) of a folder holding `options.json` and exactly one weights `.hdf5`."""
    options_file = os.path.join(folder, "options.json")
    if not os.path.isfile(options_file):
        raise FileNotFoundError(f"{folder}: a model folder must hold options.json; it is not there")
    weight_files = sorted(glob.glob(os.path.join(glob.escape(folder), "*.hdf5")))
    if not weight_files:
        raise FileNotFoundError(f"{folder}: a model folder must hold one weights .hdf5 file; found none")
    if len(weight_files) > 1:
        names = ", ".join(os.path.basename(f) for f in weight_files)
        raise ValueError(f"{folder}: a model folder must hold exactly one weights .hdf5 file; "
                         f"found {len(weight_files)}: {names}")
    return options_file, weight_files[0]


class ModelZipError(ValueError):
    """A model zip is not a zip, lacks its files, or holds paths outside its folder."""


def _zip_members(zip_path, archive):
    """The members `options.json` and the one `.hdf5` beside it, after checking every name."""
    names = [info.filename for info in archive.infolist() if not info.is_dir()]
    for name in names:
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or (parts[0][1:2] == ":"):
            raise ModelZipError(f"{zip_path}: member {name!r} has a path outside the zip's folder; refused")
    options = [n for n in names if posixpath.basename(n) == "options.json"]
    if len(options) != 1:
        raise ModelZipError(f"{zip_path}: a model zip must hold one options.json; found {len(options)}")
    folder = posixpath.dirname(options[0])
    weights = [n for n in names if n.endswith(".hdf5") and posixpath.dirname(n) == folder]
    if len(weights) != 1:
        raise ModelZipError(f"{zip_path}: a model zip must hold one weights .hdf5 beside its options.json; "
                            f"found {len(weights)}" + (f": {', '.join(weights)}" if weights else ""))
    return options[0], weights[0]


def unpack_model_zip(zip_path, cache_dir=None):
    """(options_file, weight_file) of a model zip (the NLPL repository's format), unpacked once and verified.

    The zip holds `options.json` and one weights `.hdf5` in one folder (other
    files, such as `vocab.txt` and `meta.json`, are left in the zip). They are
    unpacked into `<cache>/zips/<SHA-256 of the zip>/`, checked as a download
    is (`verify_model_files`), and reused while their recorded digests hold.

    Raises:
        ModelZipError: not a zip, no `options.json` or no weights beside it,
            or a member whose path leaves the zip's folder.
        DownloadError: the files fail verification (options or weights).
    """
    zip_path = os.fspath(zip_path)
    if not zipfile.is_zipfile(zip_path):
        raise ModelZipError(f"{zip_path}: not a zip file")
    digest = file_digest(zip_path)
    folder = os.path.join(cache_dir or default_cache_dir(), "zips", digest)
    options_file, weight_file = os.path.join(folder, "options.json"), os.path.join(folder, "weights.hdf5")
    if _verified(folder, options_file, weight_file):
        return options_file, weight_file
    with zipfile.ZipFile(zip_path) as archive:
        options_member, weights_member = _zip_members(zip_path, archive)
        os.makedirs(os.path.dirname(folder), exist_ok=True)
        staging = tempfile.mkdtemp(prefix=f".{digest}.", dir=os.path.dirname(folder))
        try:
            for member, name in ((options_member, "options.json"), (weights_member, "weights.hdf5")):
                with archive.open(member) as source, open(os.path.join(staging, name), "wb") as target:
                    shutil.copyfileobj(source, target, 1 << 20)
            staged = os.path.join(staging, "options.json"), os.path.join(staging, "weights.hdf5")
            try:
                verify_model_files(*staged)
            except DownloadError as e:
                # Named as the zip's members, not as the staging files.
                message = str(e)
                for path, member in zip(staged, (options_member, weights_member)):
                    message = message.replace(path, f"{zip_path}:{member}")
                raise DownloadError(message) from e
            _write_manifest(staging, {"zip": os.path.abspath(zip_path), "zip_sha256": digest})
            shutil.rmtree(folder, ignore_errors=True)  # a damaged earlier copy
            os.replace(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return options_file, weight_file


def _write_manifest(folder, fields):
    options_file, weight_file = os.path.join(folder, "options.json"), os.path.join(folder, "weights.hdf5")
    atomic_write_text(os.path.join(folder, "manifest.json"), json.dumps({
        **fields, "options_sha256": file_digest(options_file), "weights_sha256": file_digest(weight_file)},
        indent=2))


def _verified(folder, options_file, weight_file):
    """Whether a cached model's files still have the digests its manifest recorded."""
    try:
        with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as f:
            manifest = json.load(f)
        return (file_digest(options_file) == manifest["options_sha256"]
                and file_digest(weight_file) == manifest["weights_sha256"])
    except (OSError, ValueError, KeyError):
        return False


def local_model_files(path, cache_dir=None):
    """(options_file, weight_file) of a model on disk: a folder or a zip of one.

    A folder holds `options.json` and exactly one weights `.hdf5` (as an
    NLPL zip unpacks: `model.hdf5`); a `.zip` is unpacked once into the
    cache (`unpack_model_zip`).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        return _folder_model_files(path)
    if os.path.isfile(path):
        return unpack_model_zip(path, cache_dir=cache_dir)
    raise FileNotFoundError(f"{path}: model not found (expected a released name, a model folder or a zip)")


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


def resolve_model_files(options_file=None, weight_file=None, model=None, progress=True, flags=False,
                        cache_dir=None, mirror=None):
    """(options_file, weight_file) of the biLM the arguments name: the one resolution of "which model".

    `model`: a released name (`fetch_pretrained`, once into the cache), a
    model folder or a model zip (`local_model_files`); or the two files as
    given; or with none the bundled default model (`default_model_files`).
    `ElmoEmbedder`, the CLI's `--model`/`--options-file`/`--weight-file`,
    `ElmoBackbone.from_preset` and the Beam handler all resolve here;
    `check_model_choice` (with `flags`) says what is wrong with a bad
    combination. `cache_dir` and `mirror` as in `fetch_pretrained`.
    """
    check_model_choice(options_file, weight_file, model, flags=flags)
    if model is not None:
        model = os.fspath(model)
        if model in PRETRAINED_MODELS:
            return fetch_pretrained(model, cache_dir=cache_dir, mirror=mirror, progress=progress)
        if os.path.exists(model) or os.sep in model or model.endswith(".zip"):
            return local_model_files(model, cache_dir=cache_dir)
        raise ValueError(f"unknown model {model!r}: expected one of {sorted(PRETRAINED_MODELS)} (released "
                         f"models), a model folder (options.json and one weights .hdf5) or a model zip")
    if options_file is not None:
        return options_file, weight_file
    return default_model_files()
