"""Models in bilm-tf's format from a zip (the NLPL repository's layout) or the folder it unpacks to."""

import json
import os
import shutil
import zipfile

import h5py
import numpy as np
import pytest
from conftest import FIXTURE_OPTIONS, FIXTURE_WEIGHTS
from reference_bilm import batching_tolerance

from elmo_keras import ElmoBackbone, ElmoEmbedder, load_bilm
from elmo_keras.cli import main
from elmo_keras.pretrained import DownloadError, ModelZipError, local_model_files, unpack_model_zip

SENTENCES = [["The", "cat", "sat", "."], ["Ещё", "одна", "строка"]]


def _nlpl_zip(path, folder="", members=None):
    """A zip as the NLPL repository publishes: model.hdf5, options.json, vocab.txt, meta.json."""
    members = members if members is not None else {
        "model.hdf5": open(FIXTURE_WEIGHTS, "rb").read(), "options.json": open(FIXTURE_OPTIONS, "rb").read(),
        "vocab.txt": b"<S>\n</S>\n<UNK>\nthe\n", "meta.json": b'{"corpus": "test"}'}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(folder + name, data)
    return str(path)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("ELMO_KERAS_CACHE", str(folder))
    return folder


@pytest.fixture(scope="module")
def reference():
    return ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS).embed_batch(SENTENCES)


@pytest.mark.parametrize("folder", ["", "norelmo_2019/"])
def test_a_zip_loads_everywhere_a_model_is_named(tmp_path, cache, reference, folder):
    model_zip = _nlpl_zip(tmp_path / "model.zip", folder)
    from_api = ElmoEmbedder.from_pretrained(model_zip).embed_batch(SENTENCES)
    for got, want in zip(from_api, reference):
        np.testing.assert_array_equal(got, want)  # the same weights, the same computation
    digest_folder, = (cache / "zips").iterdir()
    assert sorted(os.listdir(digest_folder)) == ["manifest.json", "options.json", "weights.hdf5"]
    x = np.ones((1, 4, 50), "int32")
    np.testing.assert_array_equal(ElmoBackbone.from_preset(model_zip)(x)["activations"],
                                  load_bilm(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)(x)["activations"])
    text = tmp_path / "in.txt"
    text.write_text("\n".join(" ".join(s) for s in SENTENCES) + "\n", encoding="utf-8")
    assert main(["embed", str(text), str(tmp_path / "out.hdf5"), "--model", model_zip, "--quiet"]) == 0
    with h5py.File(tmp_path / "out.hdf5", "r") as f:
        # The command batches the lines its own way (sorted, packed): other rows, the derived tolerance.
        atol = batching_tolerance(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, tuple(map(tuple, SENTENCES)))
        np.testing.assert_allclose(f["1"][...], reference[1], rtol=0, atol=atol)


def test_unpacked_once_then_reused_and_a_damaged_copy_unpacked_again(tmp_path, cache, monkeypatch):
    model_zip = _nlpl_zip(tmp_path / "model.zip")
    options_file, weight_file = unpack_model_zip(model_zip)
    opened = []
    original = zipfile.ZipFile
    monkeypatch.setattr(zipfile, "ZipFile", lambda *a, **k: opened.append(a) or original(*a, **k))
    assert unpack_model_zip(model_zip) == (options_file, weight_file) and not opened
    with open(weight_file, "r+b") as f:  # damaged since it was verified
        f.seek(-8, os.SEEK_END)
        f.write(b"\0" * 8)
    assert unpack_model_zip(model_zip) == (options_file, weight_file) and len(opened) == 1
    with open(weight_file, "rb") as f, open(FIXTURE_WEIGHTS, "rb") as g:
        assert f.read() == g.read()


def test_the_unpacked_folder_works_as_a_model(tmp_path):
    folder = tmp_path / "norelmo"
    with zipfile.ZipFile(_nlpl_zip(tmp_path / "model.zip")) as archive:
        archive.extractall(folder)
    assert local_model_files(str(folder)) == (str(folder / "options.json"), str(folder / "model.hdf5"))


@pytest.mark.parametrize("members, error, message", [
    (None, ModelZipError, r"not a zip file$"),
    ({"model.hdf5": b"x", "vocab.txt": b""}, ModelZipError, r"a model zip must hold one options\.json; found 0$"),
    ({"options.json": b"{}", "meta.json": b"{}"}, ModelZipError,
     r"a model zip must hold one weights \.hdf5 beside its options\.json; found 0$"),
    ({"options.json": b"{}", "model.hdf5": b"x", "../evil.txt": b"x"}, ModelZipError,
     r"member '\.\./evil\.txt' has a path outside the zip's folder; refused$"),
    ({"options.json": b'{"lstm": {}}', "model.hdf5": b"x"}, DownloadError,
     r"model\.zip:options\.json: missing field 'char_cnn'"),
    ({"options.json": open(FIXTURE_OPTIONS, "rb").read(), "model.hdf5": b"not hdf5"}, DownloadError,
     r"model\.zip:model\.hdf5"),
])
def test_a_broken_zip_is_one_line_naming_it_and_leaves_outputs_alone(tmp_path, cache, capsys, members, error,
                                                                      message):
    model_zip = tmp_path / "model.zip"
    if members is None:
        model_zip.write_bytes(b"PK not really")
    else:
        _nlpl_zip(model_zip, members=members)
    with pytest.raises(error, match=message):
        unpack_model_zip(str(model_zip))
    assert not list(cache.glob("zips/.*")), "a staging folder was left behind"
    text, out = tmp_path / "in.txt", tmp_path / "out.hdf5"
    text.write_text("a b\n", encoding="utf-8")
    out.write_bytes(b"earlier output")
    assert main(["embed", str(text), str(out), "--model", str(model_zip), "--overwrite", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("elmo-keras embed: error: ") and str(model_zip) in err and "\n" not in err
    assert out.read_bytes() == b"earlier output"


def test_a_missing_path_or_unknown_name_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere\.zip: model not found"):
        ElmoEmbedder.from_pretrained(str(tmp_path / "nowhere.zip"))
    with pytest.raises(ValueError, match=r"unknown model 'huge': expected one of"):
        ElmoEmbedder.from_pretrained("huge")
