"""ElmoEmbedder and `elmo-keras embed`: formats, order, resume, bad input."""

import json

import h5py
import numpy as np
import pytest

from conftest import FIXTURE_OPTIONS, FIXTURE_WEIGHTS
from reference_bilm import batching_tolerance

from elmo_keras import ElmoEmbedder
from elmo_keras.cli import main
from elmo_keras.embedder import InputFileError, select_layers

LINES = ["the cat sat on the mat .", "a", "Grüße aus Köln , 日本語 !", "x" * 70 + " long token",
         "the cat sat on the mat .", "one two three four five six seven eight nine ten eleven"]


def tolerance():
    """Vectors of LINES in other batches (packed, sorted, alone): ~3e-6, see batching_tolerance."""
    return batching_tolerance(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, tuple(tuple(line.split()) for line in LINES))


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
        np.testing.assert_allclose(v, embedder.embed_sentence(t), rtol=0, atol=tolerance())
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
        np.testing.assert_allclose(vectors, embedder.embed_sentence(sentence), rtol=0, atol=tolerance())
        np.testing.assert_allclose(vectors, other, rtol=0, atol=tolerance())


def test_overlong_token_is_truncated_like_the_original(embedder):
    a = embedder.embed_sentence(["y" * 48])
    b = embedder.embed_sentence(["y" * 49 + "z" * 30])
    np.testing.assert_array_equal(a, b)  # the same char ids in the same shape: the same computation


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
            np.testing.assert_allclose(f[str(i)][...], want, rtol=0, atol=tolerance())


def test_sentence_keys_and_forget_sentences(tmp_path, embedder):
    unique = LINES[:4]
    inp = _write(tmp_path / "in.txt", unique)
    out = str(tmp_path / "out.hdf5")
    embedder.embed_file(inp, out, use_sentence_keys=True, forget_sentences=True, progress=False)
    with h5py.File(out, "r") as f:
        assert sorted(f.keys()) == sorted(unique)
    with pytest.raises(InputFileError, match="more than once"):
        embedder.embed_file(_write(tmp_path / "dup.txt", LINES), out + "2", use_sentence_keys=True,
                            progress=False)
    with pytest.raises(InputFileError, match=r"blank\.txt: line 2 is empty; --use-sentence-keys"):
        embedder.embed_file(_write(tmp_path / "blank.txt", ["a", ""]), out + "3", use_sentence_keys=True,
                            progress=False)


def test_interrupted_run_resumes_without_redoing_work(tmp_path, monkeypatch):
    lines = [f"sentence number {i} " + "w " * (i % 7) for i in range(300)]
    inp = _write(tmp_path / "in.txt", lines)
    out = tmp_path / "out.hdf5"
    # Unpacked, so that a batch is 4 sentences: chunks of 128 sentences, 32 batches each.
    embedder = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, batch_size=4, pack_sentences=False)
    calls = {"n": 0}
    original = ElmoEmbedder._embed_batch

    def failing(self, batch, **kwargs):
        calls["n"] += 1
        if calls["n"] == 40:
            raise KeyboardInterrupt
        return original(self, batch, **kwargs)

    monkeypatch.setattr(ElmoEmbedder, "_embed_batch", failing)
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
        np.testing.assert_allclose(f["299"][...], embedder.embed_sentence(lines[299].split()), rtol=0,
                                   atol=tolerance())


def test_stateful_file_embedding_matches_stateful_batches(tmp_path):
    inp = _write(tmp_path / "in.txt", LINES)
    stateful = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, batch_size=2, stateful=True)
    stateful.embed_file(inp, str(tmp_path / "out.hdf5"), output_format="top", progress=False)
    stateful.reset_states()
    tokens = [line.split() for line in LINES]
    expected = [v for s in range(0, 6, 2) for v in stateful.embed_batch(tokens[s : s + 2])]
    with h5py.File(tmp_path / "out.hdf5", "r") as f:
        for i, e in enumerate(expected):
            np.testing.assert_allclose(f[str(i)][...], e[-1], rtol=0, atol=tolerance())


@pytest.mark.parametrize("content, message", [
    (b"", r"in\.txt: the input file is empty"),
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


def test_token_cache_gives_same_vectors_and_stays_bounded():
    tokens = [line.split() for line in LINES]
    cached = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, batch_size=3, token_cache_size=5)
    uncached = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, batch_size=3, token_cache_size=0)
    for a, b in zip(cached.embed_sentences(tokens), uncached.embed_sentences(tokens)):
        np.testing.assert_allclose(a, b, rtol=0, atol=tolerance())
    assert len(cached._token_vectors) == 5
    assert not uncached._token_vectors


def test_empty_lines_are_empty_sentences_that_keep_their_index(tmp_path, embedder):
    """One rule for empty sentences: the API, the file command and the SavedModel give 0 tokens."""
    inp = _write(tmp_path / "in.txt", ["a b", "", "c", "   "])
    out = str(tmp_path / "out.hdf5")
    embedder.embed_file(inp, out, output_format="top", progress=False)
    with h5py.File(out, "r") as f:
        assert [f[str(i)].shape for i in range(4)] == [(2, 32), (0, 32), (1, 32), (0, 32)]
        np.testing.assert_allclose(f["2"][...], embedder.embed_sentence(["c"])[-1], rtol=0, atol=tolerance())
        assert json.loads(f["sentence_to_index"][0])[""] == "3"
    assert embedder.embed_sentence([]).shape == (3, 0, 32)
    assert [v.shape for v in embedder.embed_texts(["", "x y"])] == [(3, 0, 32), (3, 2, 32)]


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=-5), r"batch_size: expected a positive integer, found -5"),
    (dict(batch_size=0), r"batch_size: expected a positive integer, found 0"),
    (dict(batch_size=2.5), r"batch_size: expected a positive integer, found 2\.5"),
    (dict(output_format="first"), r"output_format: expected one of"),
    (dict(tokenizer="spaces"),
     r"tokenizer must be one of \('whitespace', 'punctuation', 'moses'\) \(or 'moses:LANG'\), got 'spaces'"),
])
def test_bad_arguments_fail_before_any_work_and_keep_the_output(tmp_path, embedder, kwargs, message):
    inp = _write(tmp_path / "in.txt", LINES)
    out = tmp_path / "out.hdf5"
    embedder.embed_file(inp, str(out), progress=False)
    before = out.read_bytes()
    with pytest.raises(ValueError, match=message):
        embedder.embed_file(inp, str(out), progress=False, overwrite=True, **kwargs)
    assert out.read_bytes() == before
    assert not (tmp_path / "out.hdf5.partial").exists()


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=0), r"batch_size: expected a positive integer, found 0"),
    (dict(batch_size=-1), r"batch_size: expected a positive integer, found -1"),
    (dict(token_cache_size=-1), r"token_cache_size: expected an integer >= 0, found -1"),
    (dict(pack_sentences="yes"), r"pack_sentences: expected True, False or 'auto'"),
])
def test_embedder_checks_its_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, **kwargs)


def test_embed_sentences_checks_batch_size(embedder):
    with pytest.raises(ValueError, match="batch_size: expected a positive integer, found 0"):
        list(embedder.embed_sentences([["a"]], batch_size=0))
    stateful = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, batch_size=2, stateful=True)
    with pytest.raises(ValueError, match=r"batch_size: a stateful embedder keeps state for at most 2 rows"):
        list(stateful.embed_sentences([["a"]], batch_size=3))


def test_existing_output_is_replaced_only_with_overwrite(tmp_path, embedder):
    inp = _write(tmp_path / "in.txt", LINES[:2])
    out = tmp_path / "out.hdf5"
    out.write_bytes(b"user data")
    with pytest.raises(FileExistsError, match=r"out\.hdf5: exists already; pass --overwrite"):
        embedder.embed_file(inp, str(out), progress=False)
    assert out.read_bytes() == b"user data"
    embedder.embed_file(inp, str(out), progress=False, overwrite=True)
    with h5py.File(out, "r") as f:
        assert f["1"].shape == (3, 1, 32)


def test_punctuation_tokenizer_splits_raw_text(tmp_path):
    embedder = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, tokenizer="punctuation")
    inp = _write(tmp_path / "in.txt", ["Hello, money."])
    embedder.embed_file(inp, str(tmp_path / "p.hdf5"), output_format="top", progress=False)
    embedder.embed_file(inp, str(tmp_path / "w.hdf5"), output_format="top", progress=False, tokenizer="whitespace")
    with h5py.File(tmp_path / "p.hdf5", "r") as p, h5py.File(tmp_path / "w.hdf5", "r") as w:
        assert p["0"].shape == (4, 32) and w["0"].shape == (2, 32)
        np.testing.assert_allclose(p["0"][...], embedder.embed_sentence(["Hello", ",", "money", "."])[-1],
                                   rtol=0, atol=tolerance())


def _stale_chunk(output_file, input_file, weight_file, embedder):
    """A finished chunk of constant vectors, as an interrupted run with `weight_file` would leave it."""
    from elmo_keras.io.digest import file_digest
    from elmo_keras.io.embedding_file import ChunkStore

    fingerprint = {"input_sha256": file_digest(input_file), "n_sentences": 6,
                   "weights_sha256": file_digest(weight_file), "options": embedder.options.to_dict(),
                   "output_format": "top", "tokenizer": "whitespace", "stateful": False, "batch_size": 1}
    ChunkStore(output_file, fingerprint).write(0, [np.full((2, 12), 7.0, np.float32)] * 6)


def test_resume_reuses_chunks_only_for_the_same_weight_content(tmp_path, capfd):
    """Weights replaced in place (same path) must not reuse chunks computed with the old ones."""
    import shutil

    from conftest import tiny_options, write_random_model

    inp = _write(tmp_path / "in.txt", [f"line {i}" for i in range(6)])  # one chunk (batch_size 1: 32 lines)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    options_file, weight_file = write_random_model(tmp_path / "a", tiny_options(), seed=1)
    _, other_weights = write_random_model(tmp_path / "b", tiny_options(), seed=2)
    old = ElmoEmbedder(options_file, weight_file, batch_size=1)
    _stale_chunk(str(tmp_path / "out.hdf5"), inp, weight_file, old)
    shutil.copy(other_weights, weight_file)  # replaced in place: same path, other content
    new = ElmoEmbedder(options_file, weight_file, batch_size=1)
    new.embed_file(inp, str(tmp_path / "out.hdf5"), output_format="top")
    assert "resuming" not in capfd.readouterr().err
    with h5py.File(tmp_path / "out.hdf5", "r") as f:
        np.testing.assert_allclose(f["0"][...], new.embed_sentence(["line", "0"])[-1], rtol=0,
                                   atol=tolerance())
    # Chunks of the same content are reused, and the run says how much was done.
    _stale_chunk(str(tmp_path / "again.hdf5"), inp, weight_file, new)
    new.embed_file(inp, str(tmp_path / "again.hdf5"), output_format="top")
    assert "resuming " in (err := capfd.readouterr().err) and "6 of 6 sentences were already embedded" in err
    with h5py.File(tmp_path / "again.hdf5", "r") as f:
        assert np.all(f["0"][...] == 7.0)


@pytest.mark.parametrize("fmt", ["all", "top"])
def test_sentence_vectors_are_each_lines_mean_over_its_tokens(tmp_path, embedder, fmt):
    lines = LINES + [""]
    inp = _write(tmp_path / "in.txt", lines)
    out = str(tmp_path / "out.hdf5")
    embedder.embed_file(inp, out, output_format=fmt, progress=False, sentence_vectors=True)
    from_api = embedder.sentence_vectors([line.split() for line in lines], output_format=fmt)
    with h5py.File(out, "r") as f:
        assert sorted(f.keys()) == ["sentence_to_index", "sentence_vectors"]
        stored = f["sentence_vectors"][...]
    assert stored.shape == (len(lines), *((3,) if fmt == "all" else ()), 32) and stored.dtype == np.float32
    # One chunk, the same batches: the very same computation as the API's.
    np.testing.assert_array_equal(stored, from_api)
    assert not stored[-1].any()  # the empty line
    for line, got in zip(lines[:-1], stored):
        # Each line alone: other batches (tolerance()), and the float32 mean of n values (n * eps * max).
        alone = select_layers(embedder.embed_sentence(line.split()), fmt).astype(np.float64)
        n = alone.shape[-2]
        atol = tolerance() + n * np.finfo(np.float32).eps * np.abs(alone).max()
        np.testing.assert_allclose(got, alone.mean(axis=-2), rtol=0, atol=atol)


def test_sentence_vectors_from_the_command_line(tmp_path, embedder, capsys):
    inp = _write(tmp_path / "in.txt", LINES)
    out = str(tmp_path / "out.hdf5")
    model = ["--options-file", FIXTURE_OPTIONS, "--weight-file", FIXTURE_WEIGHTS, "--batch-size", "2"]
    assert main(["embed", inp, out, "--sentence-vectors", "--average", "--quiet", *model]) == 0
    with h5py.File(out, "r") as f:
        np.testing.assert_array_equal(f["sentence_vectors"][...],
                                      embedder.sentence_vectors([line.split() for line in LINES], "average"))
        assert json.loads(f["sentence_to_index"][0])["a"] == "1"
    with pytest.raises(SystemExit) as exit_info:
        main(["embed", inp, str(tmp_path / "other.hdf5"), "--sentence-vectors", "--use-sentence-keys", *model])
    assert exit_info.value.code == 2
    assert "argument --use-sentence-keys: not allowed with argument --sentence-vectors" in capsys.readouterr().err
    assert embedder.sentence_vectors([]).shape == (0, 3, 32)
    assert embedder.sentence_vectors([], "top").shape == (0, 32)
