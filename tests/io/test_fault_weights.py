"""Damaged weight files: every truncation or flipped byte loads or raises one WeightFileError.

Seeded fault injection into the bilm-tf fixture weights (450 KB, 31
datasets): truncation at 20 offsets, 30 files with 16 bytes flipped in the
first 4 KB (superblock, root group, object headers, B-tree) and 30 with 16
bytes flipped in the rest (mostly the stored numbers). A case either loads
or raises `WeightFileError` naming the file; never another exception, and a
failed load leaves the model's weights as they were.
"""

import collections

import h5py
import numpy as np
import pytest

from conftest import FIXTURE_OPTIONS, FIXTURE_WEIGHTS

from elmo_keras import WeightFileError
from elmo_keras.io.hdf5 import expected_weight_shapes, read_weight_arrays
from elmo_keras.io.options import load_options
from elmo_keras.models.bilm import build_bilm
from elmo_keras.models.weight_layout import load_weights

HEADER_BYTES = 4096
FLIPS = 16


@pytest.fixture(scope="module")
def model():
    return build_bilm(load_options(FIXTURE_OPTIONS))


@pytest.fixture(scope="module")
def original(model):
    return read_weight_arrays(FIXTURE_WEIGHTS, expected_weight_shapes(load_options(FIXTURE_OPTIONS)))


def _weights(model):
    return [np.array(v.numpy()) for v in model.weights]


def _flipped(data, rng, low, high):
    damaged = bytearray(data)
    for position in rng.choice(np.arange(low, high), FLIPS, replace=False):
        damaged[position] ^= int(rng.integers(1, 256))  # never a no-op
    return bytes(damaged)


def _try(model, original, path, blob):
    """Write `blob` to `path` and load it: 'loaded' or 'error' (anything else fails the test)."""
    path.write_bytes(blob)
    before = _weights(model)
    try:
        arrays = read_weight_arrays(str(path), expected_weight_shapes(load_options(FIXTURE_OPTIONS)))
        load_weights(model, str(path))
    except WeightFileError as e:
        assert str(path) in str(e), str(e)
        assert "\n" not in str(e)
        for a, b in zip(before, _weights(model)):
            np.testing.assert_array_equal(a, b)  # nothing assigned
        return "error"
    # Loaded: each flipped byte can change at most one stored float32.
    changed = sum(int(np.count_nonzero(arrays[name] != value)) for name, value in original.items())
    assert changed <= FLIPS
    return "loaded"


def test_truncated_and_flipped_files_load_or_raise_weight_file_error(model, original, tmp_path):
    data = open(FIXTURE_WEIGHTS, "rb").read()
    assert len(data) == 450896
    rng = np.random.default_rng(12)
    cases = [("truncated", data[:offset]) for offset in np.linspace(0, len(data), 22).astype(int)[1:-1]]
    cases += [("header", _flipped(data, rng, 0, HEADER_BYTES)) for _ in range(30)]
    cases += [("data", _flipped(data, rng, HEADER_BYTES, len(data))) for _ in range(30)]
    outcomes = collections.Counter()
    for k, (kind, blob) in enumerate(cases):
        outcomes[kind, _try(model, original, tmp_path / f"damaged_{k}.hdf5", blob)] += 1
    assert sum(outcomes.values()) == 80
    # Every truncation loses data the file needs.
    assert outcomes["truncated", "error"] == 20
    # Flips in the structure are nearly always caught (27 of 30 with this seed
    # and h5py 3.16); flips in the numbers mostly load (data damage is not
    # detectable without checksums, except where it gives NaN/inf).
    assert outcomes["header", "error"] >= 24
    assert outcomes["data", "loaded"] >= 20
    assert outcomes["header", "error"] + outcomes["header", "loaded"] == 30
    assert outcomes["data", "error"] + outcomes["data", "loaded"] == 30
    # The clean file still loads after all that.
    load_weights(model, FIXTURE_WEIGHTS)
    np.testing.assert_array_equal(model.get_layer("char_cnn").char_embed.numpy(), original["char_embed"])


def _copy_with(tmp_path, name, value):
    path = tmp_path / "edited.hdf5"
    path.write_bytes(open(FIXTURE_WEIGHTS, "rb").read())
    with h5py.File(path, "a") as f:
        del f[name]
        if value is None:
            f.create_group(name)
        else:
            f.create_dataset(name, data=value)
    return path


@pytest.mark.parametrize("value, message", [
    (np.zeros((261, 4), np.int32),
     r"dataset 'char_embed' has dtype int32, expected float32 \(shape \(261, 4\)\)"),
    (np.array([b"abc"] * 261 * 4).reshape(261, 4),
     r"dataset 'char_embed' has dtype \|S3, expected float32"),
    (np.zeros((262, 4), np.float32), r"dataset 'char_embed' has shape \(262, 4\), expected \(261, 4\)"),
    (np.full((261, 4), np.nan, np.float32), r"dataset 'char_embed' holds 1044 non-finite values"),
    (None, r"dataset 'char_embed' is a Group, expected a float32 array of shape \(261, 4\)"),
])
def test_wrong_dtype_shape_or_kind_is_one_clear_error(model, tmp_path, value, message):
    path = _copy_with(tmp_path, "char_embed", value)
    with pytest.raises(WeightFileError, match=r"edited\.hdf5: " + message):
        load_weights(model, str(path))


def test_float64_datasets_load_as_float32(model, original, tmp_path):
    path = _copy_with(tmp_path, "char_embed", original["char_embed"].astype(np.float64))
    load_weights(model, str(path))
    np.testing.assert_array_equal(model.get_layer("char_cnn").char_embed.numpy(), original["char_embed"])


def test_not_an_hdf5_file(model, tmp_path):
    path = tmp_path / "text.hdf5"
    path.write_text("options, not weights\n")
    with pytest.raises(WeightFileError, match=r"text\.hdf5: not a readable hdf5 weights file"):
        load_weights(model, str(path))
