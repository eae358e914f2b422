"""ElmoEmbedder and `elmo-keras embed`: formats, order, resume, bad input."""

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import FIXTURE_OPTIONS, FIXTURE_WEIGHTS

from elmo_keras import ElmoEmbedder
from elmo_keras.cli import main
from elmo_keras.embedder import InputFileError

LINES = ["the cat sat on the mat .", "a", "Grüße aus Köln , 日本語 !", "x" * 70 + " long token",
         "the cat sat on the mat .", "one two three four five six seven eight nine ten eleven"]


@pytest.fixture(scope="module")
def embedder():
    return ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, batch_size=2)


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_shapes_order_and_batching_independence(embedder):
    tokens = [line.split() for line in LINES]
    ordered = list(embedder.embed_sentences(tokens, batch_size=3))
    assert [v.shape for v in ordered] == [(3, len(t), 32) for t in tokens]
    for t, v in zip(tokens, ordered):
        np.testing.assert_allclose(v, embedder.embed_sentence(t), atol=1e-5)
    assert embedder.embed_sentence([]).shape == (3, 0, 32)
    assert all(v.dtype == np.float32 for v in ordered)


def test_packed_batch_equals_sentences_alone():
    """A stateless batch packs short sentences into shared rows; vectors do not change."""
    embedder = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, batch_size=16, pack_sentences=True)
    rng = np.random.default_rng(0)
    words = [line.split() for line in LINES]
    batch = [words[i][: rng.integers(1, len(words[i]) + 1)] for i in rng.integers(0, len(words), 16)]
    batch += [["a"], ["b", "c"], LINES[-1].split()]
    _, placement = embedder._activations(batch)
    assert len({row for row, _ in placement}) < len(batch)  # rows are shared
    unpacked = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, batch_size=16, pack_sentences=False)
    assert [row for row, _ in unpacked._activations(batch)[1]] == list(range(len(batch)))
    for sentence, vectors, other in zip(batch, embedder.embed_batch(batch), unpacked.embed_batch(batch)):
        np.testing.assert_allclose(vectors, embedder.embed_sentence(sentence), atol=1e-5)
        np.testing.assert_allclose(vectors, other, atol=1e-5)


def test_overlong_token_is_truncated_like_the_original(embedder):
    a = embedder.embed_sentence(["y" * 48])
    b = embedder.embed_sentence(["y" * 49 + "z" * 30])
    np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("fmt", ["all", "top", "average"])
def test_embed_file_formats(tmp_path, embedder, fmt):
    inp = _write(tmp_path / "in.txt", LINES)
    out = str(tmp_path / "out.hdf5")
    embedder.embed_file(inp, out, output_format=fmt, progress=False)
    expected = [embedder.embed_sentence(line.split()) for line in LINES]
    with h5py.File(out, "r") as f:
        assert sorted(f.keys()) == sorted([str(i) for i in range(len(LINES))] + ["sentence_to_index"])
        index = json.loads(f["sentence_to_index"][0])
        assert index["a"] == "1" and len(index) == len(set(LINES))
        for i, e in enumerate(expected):
            want = {"all": e, "top": e[-1], "average": e.mean(axis=0)}[fmt]
            np.testing.assert_allclose(f[str(i)][...], want, atol=1e-5)


def test_sentence_keys_and_forget_sentences(tmp_path, embedder):
    unique = LINES[:4]
    inp = _write(tmp_path / "in.txt", unique)
    out = str(tmp_path / "out.hdf5")
    embedder.embed_file(inp, out, use_sentence_keys=True, forget_sentences=True, progress=False)
    with h5py.File(out, "r") as f:
        assert sorted(f.keys()) == sorted(unique)
    with pytest.raises(InputFileError, match="more than once"):
        embedder.embed_file(_write(tmp_path / "dup.txt", LINES), out, use_sentence_keys=True, progress=False)


def test_interrupted_run_resumes_without_redoing_work(tmp_path, monkeypatch):
    lines = [f"sentence number {i} " + "w " * (i % 7) for i in range(300)]
    inp = _write(tmp_path / "in.txt", lines)
    out = tmp_path / "out.hdf5"
    embedder = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, batch_size=4)  # chunks of 128 sentences
    calls = {"n": 0}
    original = ElmoEmbedder.embed_batch

    def failing(self, batch):
        calls["n"] += 1
        if calls["n"] == 40:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(ElmoEmbedder, "embed_batch", failing)
    with pytest.raises(KeyboardInterrupt):
        embedder.embed_file(inp, str(out), progress=False)
    assert not out.exists()
    assert len([p for p in (tmp_path / "out.hdf5.partial").iterdir() if p.name.startswith("chunk_")]) == 1
    calls["n"] = -10**9
    embedder.embed_file(inp, str(out), progress=False)
    assert calls["n"] == -10**9 + 32 + 11  # only the second and third chunks (128 + 44 sentences) ran
    assert not (tmp_path / "out.hdf5.partial").exists()
    with h5py.File(out, "r") as f:
        assert len(f.keys()) == 301
        np.testing.assert_allclose(f["299"][...], embedder.embed_sentence(lines[299].split()), atol=1e-5)


def test_stateful_file_embedding_matches_stateful_batches(tmp_path):
    inp = _write(tmp_path / "in.txt", LINES)
    stateful = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, batch_size=2, stateful=True)
    stateful.embed_file(inp, str(tmp_path / "out.hdf5"), output_format="top", progress=False)
    stateful.reset_states()
    tokens = [line.split() for line in LINES]
    expected = [v for s in range(0, 6, 2) for v in stateful.embed_batch(tokens[s : s + 2])]
    with h5py.File(tmp_path / "out.hdf5", "r") as f:
        for i, e in enumerate(expected):
            np.testing.assert_allclose(f[str(i)][...], e[-1], atol=1e-6)


@pytest.mark.parametrize("content, message", [
    (b"", r"in\.txt: the input file is empty"),
    (b"a b\n\nc\n   \n", r"in\.txt: empty line\(s\) at line 2, 4"),
    (b"fine\nbad \xff byte\n", r"in\.txt: line 2: not valid UTF-8"),
])
def test_bad_input_files(tmp_path, embedder, content, message):
    (tmp_path / "in.txt").write_bytes(content)
    with pytest.raises(InputFileError, match=message):
        embedder.embed_file(str(tmp_path / "in.txt"), str(tmp_path / "out.hdf5"), progress=False)
    assert not (tmp_path / "out.hdf5").exists()


def test_cli_embed_writes_allennlp_layout(tmp_path, capsys):
    inp = _write(tmp_path / "in.txt", LINES[:3])
    out = str(tmp_path / "out.hdf5")
    code = main(["embed", inp, out, "--top", "--options-file", FIXTURE_OPTIONS, "--weight-file", FIXTURE_WEIGHTS,
                 "--batch-size", "2", "--quiet"])
    assert code == 0
    with h5py.File(out, "r") as f:
        assert f["2"].shape == (6, 32)


def test_cli_reports_errors_without_traceback(tmp_path):
    inp = _write(tmp_path / "in.txt", LINES[:2])
    existing = tmp_path / "keep.hdf5"
    existing.write_bytes(b"user data")
    result = subprocess.run(
        [sys.executable, "-m", "elmo_keras.cli", "embed", inp, str(existing), "--options-file", FIXTURE_OPTIONS,
         "--weight-file", str(tmp_path / "missing.hdf5")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "missing.hdf5: weights file not found" in result.stderr
    assert "Traceback" not in result.stderr
    assert existing.read_bytes() == b"user data"
    (tmp_path / "bad.txt").write_bytes(b"ok\n\xfe\n")
    result = subprocess.run(
        [sys.executable, "-m", "elmo_keras.cli", "embed", str(tmp_path / "bad.txt"), str(existing),
         "--options-file", FIXTURE_OPTIONS, "--weight-file", FIXTURE_WEIGHTS], capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 1 and "bad.txt: line 2: not valid UTF-8" in result.stderr
    assert existing.read_bytes() == b"user data"


def test_token_cache_gives_same_vectors_and_stays_bounded():
    tokens = [line.split() for line in LINES]
    cached = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, batch_size=3, token_cache_size=5)
    uncached = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, batch_size=3, token_cache_size=0)
    for a, b in zip(cached.embed_sentences(tokens), uncached.embed_sentences(tokens)):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert len(cached._token_vectors) == 5
    assert not uncached._token_vectors
