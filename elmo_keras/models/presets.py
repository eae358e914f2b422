"""Where a pretrained biLM comes from: the package's presets and keras-hub's, checked before any loading.

`preset_files` resolves the package's own presets (the bundled model, the
released names, a folder or zip of the original files); the others are
keras-hub presets (a folder holding keras-hub's `config.json`, or a handle
such as `hf://...`, `kaggle://...`), which keras-hub's own loader reads once
`check_keras_hub_preset` has found them readable.
"""

import os

from elmo_keras.models.keras_hub_base import require_keras_hub

DEFAULT_PRESET = "default"


def preset_files(preset):
    """Return the (options_file, weight_file) of a preset.

    Args:
        preset: str. `"default"`: the model bundled in `savedmodels/default`
            (`elmo_keras.pretrained.default_model_files`); `"small"`,
            `"medium"`, `"original"` or `"original_5.5b"`: a released model,
            fetched once into the verified cache
            (`elmo_keras.pretrained.fetch_pretrained`; `ELMO_KERAS_CACHE` and
            `ELMO_KERAS_MIRROR` apply); otherwise a directory holding
            `options.json` and exactly one weights `.hdf5` file, or a zip of
            one (the NLPL repository's models; unpacked once into the cache,
            see `elmo_keras.pretrained.local_model_files`). The names come
            first: write `./small` for a directory called `small`.

    Raises:
        FileNotFoundError: a directory without `options.json` or without
            any `.hdf5` file, or a missing bundled model.
        ValueError: a directory with several `.hdf5` files, a broken zip, or
            a preset that is neither a known name nor a directory or zip.
    """
    # The download code (urllib, http.client) loads only when a preset is asked for.
    from elmo_keras import pretrained

    preset = os.fspath(preset)
    if preset == DEFAULT_PRESET:
        return pretrained.resolve_model_files()
    if preset not in pretrained.PRETRAINED_MODELS and not os.path.exists(preset):
        raise ValueError(
            f"unknown preset {preset!r}: expected {DEFAULT_PRESET!r} (the bundled model), one of "
            f"{sorted(pretrained.PRETRAINED_MODELS)} (released models), or a directory holding "
            f"options.json and one weights .hdf5 file, or a zip of one")
    return pretrained.resolve_model_files(model=preset)


def check_keras_hub_folder(preset, load_weights=True):
    """Refuse a local keras-hub preset folder without a readable config or its weights, naming the file."""
    import json

    preset = os.fspath(preset)
    if "://" in preset:
        return  # a handle: keras-hub fetches and checks it
    config_file = os.path.join(preset, "config.json")
    try:
        with open(config_file, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{config_file}: not a readable keras-hub config ({e})") from None
    if not isinstance(config, dict) or "registered_name" not in config:
        raise ValueError(f"{config_file}: expected a keras-hub config (a JSON object with registered_name, as "
                         f"save_to_preset writes it)")
    weights = [os.path.join(preset, name) for name in ("model.weights.h5", "model.weights.json")]
    if load_weights and not any(map(os.path.isfile, weights)):
        raise FileNotFoundError(f"{weights[0]}: missing: a keras-hub preset holds its weights there "
                                f"(or sharded, listed in model.weights.json); save_to_preset writes it")


# The hosts keras-hub downloads a handle's files from (hf:// honours HF_ENDPOINT, as huggingface_hub does).
HANDLE_HOSTS = {"kaggle": "api.kaggle.com", "hf": "huggingface.co", "modelscope": "www.modelscope.cn"}
# Set by users who work from the handles' own caches without a network: no reachability check then.
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "KAGGLEHUB_OFFLINE")


def check_handle_reachable(preset):
    """Refuse a keras-hub handle whose host does not resolve, at once and naming the handle.

    keras-hub itself would retry for up to 30 s and then report a missing
    `config.json`. Skipped for local folders, unknown schemes, and where
    `HF_HUB_OFFLINE` or `KAGGLEHUB_OFFLINE` is set (cached presets).
    """
    import socket
    import urllib.parse

    scheme = preset.partition("://")[0]
    if scheme not in HANDLE_HOSTS or "://" not in preset or any(os.environ.get(v) for v in OFFLINE_VARIABLES):
        return
    host = HANDLE_HOSTS[scheme]
    if scheme == "hf" and os.environ.get("HF_ENDPOINT"):
        host = urllib.parse.urlparse(os.environ["HF_ENDPOINT"]).hostname or host
    try:
        socket.getaddrinfo(host, 443)
    except OSError as e:
        raise ConnectionError(f"{preset}: cannot reach {host} ({e}), where keras-hub downloads this handle's "
                              f"files; without a network, load a local preset folder") from None


def check_keras_hub_preset(preset, load_weights=True):
    """Everything checked before keras-hub's loader reads `preset`: keras-hub installed, the handle's host
    reachable, a local folder's config and weights present."""
    require_keras_hub(f"the keras-hub preset {os.fspath(preset)!r}")
    check_handle_reachable(os.fspath(preset))
    check_keras_hub_folder(preset, load_weights)


def is_keras_hub_preset(preset):
    """True for a keras-hub handle (`hf://...`, `kaggle://...`) or a folder holding keras-hub's `config.json`."""
    preset = os.fspath(preset)
    return "://" in preset or os.path.isfile(os.path.join(preset, "config.json"))
