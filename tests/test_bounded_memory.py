"""Bounded memory of ElmoEmbedder: a token budget per batch, char-CNN slices, token-bounded windows.

A batch's model call holds rows x time x (the LSTM's size) floats, and the
char-CNN about slots x filters floats per new token, so the budget
`max_tokens_per_batch` (rows x padded length), the slices of
`CHAR_CNN_MAX_TOKENS` new tokens and the windows of `WINDOW_MAX_TOKENS` tokens
bound what one call and one window hold; a sentence longer than the budget
runs alone in blocks of that many steps, the LSTM state carried between them
(`elmo_keras.long_line`), and `embed_file` writes it block by block. The tests check every model call's shape against the
budget and that vectors are those without a budget: to `tolerance()` where the
batches differ in shape (float32 rounding of other kernels' summation orders,
see `reference_bilm.batching_tolerance`), bit for bit where the very same
call runs again.

Run as a script to measure peak memory at a benchmark size (random weights),
each case in a fresh process (`ru_maxrss`):

    python tests/test_bounded_memory.py --config small
    python tests/test_bounded_memory.py --config original --cases line_1000 line_50000 --embed-file
"""

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))

from conftest import FIXTURE_OPTIONS, FIXTURE_WEIGHTS  # noqa: E402
from reference_bilm import batching_tolerance  # noqa: E402

from elmo_keras import embedder as embedder_module  # noqa: E402
from elmo_keras import file_embedding, long_line  # noqa: E402
from elmo_keras.io import embedding_file  # noqa: E402
from elmo_keras.cli import main  # noqa: E402
from elmo_keras.layers import bilstm as bilstm_module  # noqa: E402
from elmo_keras.embedder import (CHAR_CNN_MAX_TOKENS, ElmoEmbedder, budget_batches, padded_length,  # noqa: E402
                                 plan_chunks)
from elmo_keras.preprocessing.batching import LENGTH_BUCKET, ROW_BUCKET, packed_batches  # noqa: E402

LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))


def random_words(rng, n, longest=8):
    """`n` random lower-case words of 2..longest letters: almost all distinct, the char-CNN's worst case."""
    return ["".join(rng.choice(LETTERS, rng.integers(2, longest + 1))) for _ in range(n)]


def mixed_sentences(seed=0):
    """Short and long sentences, empty ones, repeated words."""
    rng = np.random.default_rng(seed)
    sentences = [random_words(rng, int(n)) for n in rng.integers(0, 40, 30)]
    sentences += [random_words(rng, 300), random_words(rng, 1000), [], ["the"] * 700]
    order = rng.permutation(len(sentences))
    return [sentences[i] for i in order]


def tolerance():
    """The fixture model's atol between batchings, from short sentences and 300 tokens of a long one.

    3.4e-6; the batchings of `test_same_vectors_with_and_without_a_budget` measured 2.4e-7 to 6e-7
    apart on an AMD EPYC (AVX2).
    """
    sentences = mixed_sentences()
    probe = [s for s in sentences if 0 < len(s) < 40][:6] + [max(sentences, key=len)[:300]]
    return batching_tolerance(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, tuple(map(tuple, probe)))


def assert_close(ours, theirs):
    """Vectors of two batchings of the same sentences agree to the derived tolerance."""
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=tolerance())


class CallShapes:
    """Records the shapes of every model call of an embedder."""

    def __init__(self, embedder):
        self.contextualizer, self.token_encoder, self.full = [], [], []
        for model, calls in ((embedder._contextualizer, self.contextualizer),
                             (embedder._token_encoder, self.token_encoder), (embedder.model, self.full)):
            original = model.predict_on_batch

            def spy(x, original=original, calls=calls):
                calls.append(tuple((x["token_embedding"] if isinstance(x, dict) else x).shape))
                return original(x)

            model.predict_on_batch = spy


@pytest.fixture(scope="module")
def embedders():
    return {kind: ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, max_tokens_per_batch=None, **kwargs)
            for kind, kwargs in {"packed": dict(pack_sentences=True), "unpacked": dict(pack_sentences=False),
                                 "no cache": dict(token_cache_size=0)}.items()}


@pytest.mark.parametrize("seed", range(20))
def test_budget_batches_cover_every_sentence_within_the_budget(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 300, rng.integers(1, 200)).tolist()
    budget, batch_size = int(rng.integers(8, 2000)), int(rng.integers(1, 70))
    batches = budget_batches(lengths, batch_size, budget)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        width = padded_length(max(lengths[i] for i in batch))
        assert len(batch) <= batch_size
        assert len(batch) * width <= budget or len(batch) == 1
    # Without a budget: batch_size sentences a batch, shortest first.
    assert [len(b) for b in budget_batches(lengths, batch_size, None)][:-1] == [batch_size] * (
        -(-len(lengths) // batch_size) - 1)


@pytest.mark.parametrize("seed", range(20))
def test_packed_budget_batches_fill_rows_within_the_budget(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 60, rng.integers(1, 300)).tolist()
    budget, batch_size = int(rng.integers(8, 4000)), int(rng.integers(1, 70))
    batches = budget_batches(lengths, batch_size, budget, packed=True)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        width = padded_length(max(lengths[i] for i in batch))
        positions = sum(lengths[i] + 2 for i in batch)
        assert positions <= batch_size * width or len(batch) == 1  # batch_size rows' worth at most
        assert len(batch) * width <= budget or len(batch) == 1
    # Each batch but the last is full: the next sentence would not have fitted in batch_size rows.
    for batch, following in zip(batches, batches[1:]):
        nxt = following[0]
        positions = sum(lengths[i] + 2 for i in batch) + lengths[nxt] + 2
        assert (positions > batch_size * padded_length(lengths[nxt])
                or (len(batch) + 1) * padded_length(lengths[nxt]) > budget)


@pytest.mark.parametrize("seed", range(20))
def test_packed_batches_fill_rows_and_steps_within_the_budget(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 150 if seed % 2 else 40, rng.integers(1, 400)).tolist()
    batch_size = int(rng.integers(1, 70))
    budget = None if seed % 5 == 0 else int(rng.integers(8, 8000))
    batches = packed_batches(lengths, batch_size, budget)
    assert sorted(i for _, rows in batches for row in rows for i, _ in row) == list(range(len(lengths)))
    capacity = None if budget is None else max(LENGTH_BUCKET, budget // batch_size // LENGTH_BUCKET * LENGTH_BUCKET)
    packed_rows = []
    for time, rows in batches:
        assert time % LENGTH_BUCKET == 0
        widest = max(padded_length(lengths[i]) for row in rows for i, _ in row)
        assert widest <= time
        if capacity is not None and time > capacity:  # longer sentences: rows of the batch's longest
            assert time == widest
        members = [i for row in rows for i, _ in row]
        assert len(rows) * time <= budget or len(members) == 1 if budget else len(rows) <= batch_size
        for row in rows:  # end to end, within the row
            end = 0
            for i, offset in row:
                assert offset == end
                end += lengths[i] + 2
            assert end <= time
        if capacity is None or time <= capacity:
            packed_rows += rows
    if not packed_rows:
        return
    # The sentences within a row's capacity: one length, first-fit (a sentence is in the first row it fitted).
    time = batches[0][0]
    assert time == max(padded_length(lengths[i]) for row in packed_rows for i, _ in row)
    used = [sum(lengths[i] + 2 for i, _ in row) for row in packed_rows]
    for j, row in enumerate(packed_rows):
        for i, _ in row:
            assert all(used[k] + lengths[i] + 2 > time for k in range(j))
    # Batches of the one length hold as many rows as the budget allows (a multiple of ROW_BUCKET), but the last.
    sizes = [len(rows) for t, rows in batches if t == time][:-1]
    most = batch_size if budget is None else budget // time
    assert all(n == (most if most <= ROW_BUCKET else most - most % ROW_BUCKET) for n in sizes)


def test_plan_chunks_close_on_tokens_at_whole_batches():
    lengths = [5000] * 40 + [3] * 100
    plan = plan_chunks(lengths, sentences_per_chunk=64, unit=4, max_tokens=30000)
    assert [(s, e) for s, e in plan][:3] == [(0, 8), (8, 16), (16, 24)]  # 6 sentences reach 30,000: round to 8
    assert plan[0][0] == 0 and plan[-1][1] == len(lengths)
    assert all(a[1] == b[0] for a, b in zip(plan, plan[1:]))
    assert all((e - s) % 4 == 0 for s, e in plan[:-1])
    assert plan_chunks([1] * 10, sentences_per_chunk=4) == [(0, 4), (4, 8), (8, 10)]  # the fixed-size plan


@pytest.mark.parametrize("kind", ["packed", "unpacked", "no cache"])
@pytest.mark.parametrize("budget", [40, 256, 1024])
def test_same_vectors_with_and_without_a_budget(embedders, kind, budget):
    embedder = embedders[kind]
    sentences = mixed_sentences()
    reference = list(embedder.embed_sentences(sentences, batch_size=16))
    shapes = CallShapes(embedder)
    budgeted = list(embedder.embed_sentences(sentences, batch_size=16, max_tokens_per_batch=budget))
    assert len(budgeted) == len(sentences)
    for sentence, ours, theirs in zip(sentences, budgeted, reference):
        assert ours.shape == (3, len(sentence), 32)
        assert_close(ours, theirs)
    calls = shapes.full + shapes.contextualizer
    assert len(calls) > len(budget_batches([len(s) for s in sentences], 16, None))  # the budget cut batches
    for rows, time_steps, *_ in calls:
        assert rows * time_steps <= budget or rows == 1, (rows, time_steps)
    assert all(n <= CHAR_CNN_MAX_TOKENS for _, n, *_ in shapes.token_encoder)


def _with_segment_ids(embedder, change):
    """Embed `mixed_sentences()` with the packed rows' segment ids changed by `change` (a planted bug)."""
    model = embedder._contextualizer
    original = model.predict_on_batch
    model.predict_on_batch = lambda x: original({**x, "segment_ids": change(x["segment_ids"])})
    try:
        return list(embedder.embed_sentences(mixed_sentences(), batch_size=16))
    finally:
        model.predict_on_batch = original


def test_the_tolerance_rejects_batching_bugs(embedders):
    """Bugs of batching move vectors by far more than the tolerance (3.4e-6; measured 87,000x-235,000x)."""
    embedder = embedders["packed"]
    sentences = mixed_sentences()
    correct = list(embedder.embed_sentences(sentences, batch_size=16))
    bugs = {
        # Sentences sharing a row read each other: one segment per row.
        "packed sentences leak": _with_segment_ids(embedder, lambda ids: (ids > 0).astype(ids.dtype)),
        # The padding after a row's last sentence is read as its tokens (the backward LSTM starts on it).
        "padding read": _with_segment_ids(
            embedder, lambda ids: np.where(ids > 0, ids, ids.max(axis=1, keepdims=True)).astype(ids.dtype)),
    }
    # Vectors taken one position off.
    bugs["off by one"] = [np.roll(v, 1, axis=1) for v in correct]
    for bug, vectors in bugs.items():
        worst = max(np.abs(a - b).max() for a, b in zip(vectors, correct) if a.size)
        assert worst > 50 * tolerance(), (bug, worst / tolerance())


def test_char_cnn_runs_in_slices_and_the_cache_still_answers(monkeypatch):
    monkeypatch.setattr(embedder_module, "CHAR_CNN_MAX_TOKENS", 128)
    sliced = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, token_cache_size=300)
    whole = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, token_cache_size=0)
    sentence = random_words(np.random.default_rng(1), 1000)  # about 1,000 distinct: 8 slices, cache overflows
    shapes = CallShapes(sliced)
    assert_close(sliced.embed_sentence(sentence), whole.embed_sentence(sentence))
    assert len(shapes.token_encoder) == -(-len(set(sentence) | {"<S>", "</S>"}) // 128)
    assert max(n for _, n, *_ in shapes.token_encoder) == 128
    assert len(sliced._token_vectors) == 300
    again = sliced.embed_sentence(sentence[-50:])  # partly cached, partly evicted
    assert_close(again, whole.embed_sentence(sentence[-50:]))


def _block_calls(embedder):
    """Shapes of the direction-block calls an embedder makes from now on (the block model is built on first use)."""
    embedder.embed_sentence(["x"] * embedder.max_tokens_per_batch)  # longer than the budget: builds the block model
    calls, model = [], embedder._direction_block
    original = model.predict_on_batch

    def spy(x):
        calls.append(tuple(x["forward"].shape))
        return original(x)

    model.predict_on_batch = spy
    return calls


def test_a_20000_token_sentence_runs_in_blocks_of_the_budget_with_the_vectors_of_one_call(embedders):
    embedder = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, max_tokens_per_batch=512)
    rng = np.random.default_rng(2)
    long_sentence = random_words(rng, 20_000)
    short = [random_words(rng, 5), random_words(rng, 12)]
    shapes, blocks = CallShapes(embedder), _block_calls(embedder)
    out = list(embedder.embed_sentences([short[0], long_sentence, short[1]]))
    assert [v.shape for v in out] == [(3, 5, 32), (3, 20_000, 32), (3, 12, 32)]
    # 20,002 positions with <S> and </S>: 40 blocks of 512 steps a direction, and no call on the whole line.
    assert blocks == [(1, 512, 16)] * 40
    assert all(rows * time <= 512 for rows, time, *_ in shapes.contextualizer + shapes.full)
    whole = embedders["packed"].embed_sentence(long_sentence)  # no budget: the line in one call
    assert_close(out[1], whole)
    assert_close(out[0], embedder.embed_sentence(short[0]))


def test_the_tolerance_rejects_blocks_that_lose_their_state(embedders):
    """A block that starts from zeros, or a backward block read forward, moves vectors far beyond it."""
    sentence = random_words(np.random.default_rng(12), 300)
    whole = embedders["packed"].embed_sentence(sentence)
    embedder = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, max_tokens_per_batch=64)
    _block_calls(embedder)
    assert_close(embedder.embed_sentence(sentence), whole)
    model = embedder._direction_block
    original = model.predict_on_batch
    bugs = {"state dropped": lambda x: {**x, "h": 0 * x["h"], "c": 0 * x["c"]},
            "backward block in position order": lambda x: {**x, "backward": x["backward"][:, ::-1]}}
    for bug, change in bugs.items():
        model.predict_on_batch = lambda x, change=change: original(change(x))
        worst = np.abs(embedder.embed_sentence(sentence) - whole).max()
        assert worst > 50 * tolerance(), (bug, worst / tolerance())
    model.predict_on_batch = original


@pytest.mark.parametrize("output_format", ["all", "top", "average"])
def test_embed_file_writes_a_long_line_block_by_block(tmp_path, embedders, monkeypatch, output_format):
    rng = np.random.default_rng(13)
    lines = [random_words(rng, 4), random_words(rng, 3000), [], random_words(rng, 9)]
    (tmp_path / "in.txt").write_text("".join(" ".join(words) + "\n" for words in lines), encoding="utf-8")
    monkeypatch.setattr(embedding_file, "COPY_TOKENS", 1000)  # the copy into the output in parts, too
    streamed = []
    original = embedding_file.ChunkStore.write

    def write(self, start, vectors):
        streamed.extend(type(v).__name__ for v in vectors)
        return original(self, start, vectors)

    monkeypatch.setattr(embedding_file.ChunkStore, "write", write)
    embedder = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, max_tokens_per_batch=256)
    embedder.embed_file(str(tmp_path / "in.txt"), str(tmp_path / "out.hdf5"), output_format=output_format,
                        progress=False)
    assert streamed == ["ndarray", "StreamedVectors", "ndarray", "ndarray"]
    with h5py.File(tmp_path / "out.hdf5", "r") as f:
        for i, words in enumerate(lines):
            expected = embedding_file.select_layers(embedders["packed"].embed_sentence(words), output_format)
            assert_close(f[str(i)][...], expected)
    assert not (tmp_path / "out.hdf5.partial").exists()


def test_sentence_vectors_of_a_long_line_in_blocks(embedders):
    sentence = random_words(np.random.default_rng(14), 2000)
    embedder = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, max_tokens_per_batch=128)
    whole = embedders["packed"].embed_sentence(sentence).astype(np.float64)
    for output_format in ("all", "top", "average"):
        ours = embedder.sentence_vectors([sentence, ["a"]], output_format)[0]
        expected = embedding_file.select_layers(whole, output_format).mean(axis=-2)
        # The float32 mean of 2,000 values adds at most n * eps * max|x| to the vectors' own tolerance.
        bound = tolerance() + len(sentence) * np.finfo(np.float32).eps * np.abs(whole).max()
        np.testing.assert_allclose(ours, expected, rtol=0, atol=bound)


def test_a_line_whose_output_cannot_fit_in_memory_is_refused_before_any_work(monkeypatch, tmp_path):
    embedder = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, max_tokens_per_batch=64)
    monkeypatch.setattr(long_line, "available_memory", lambda: 10 * 2**20)  # 10 MiB
    sentence = ["w"] * 200_000  # (3, 200000, 32) float32: 73 MiB
    with pytest.raises(MemoryError, match=r"a line of 200,000 tokens gives a float32 \(3, 200000, 32\) output of "
                                          r"0\.1 GiB, more than the 0\.0 GiB of memory available.*embed_file"):
        embedder.embed_sentence(sentence)
    # embed_file writes it to disk instead, block by block: what bounds it there is the disk.
    monkeypatch.setattr(embedding_file.shutil, "disk_usage", lambda path: type("U", (), {"free": 2**20})())
    (tmp_path / "in.txt").write_text(" ".join(sentence) + "\n", encoding="utf-8")
    with pytest.raises(OSError, match=r"out\.hdf5: the vectors need about 0\.14 GiB on disk .* has 0\.00 GiB free"):
        embedder.embed_file(str(tmp_path / "in.txt"), str(tmp_path / "out.hdf5"), progress=False)
    assert not list(tmp_path.glob("out.hdf5*"))


def test_a_long_sentence_runs_in_blocks_of_steps_with_the_vectors_of_one_block(monkeypatch):
    # 702 positions: three blocks of input products (256, 256, 190 steps) against one block of all.
    sentence = random_words(np.random.default_rng(8), 700)
    assert bilstm_module.STEP_BLOCK < padded_length(len(sentence))
    blocked = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS).embed_sentence(sentence)
    monkeypatch.setattr(bilstm_module, "STEP_BLOCK", 10**6)
    whole = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS).embed_sentence(sentence)
    assert_close(blocked, whole)
    # Blocks smaller than a sentence, with padded steps at the end: packed rows (restarts inside a
    # block and across blocks) and stateful rows, against one block.
    sentences = [random_words(np.random.default_rng(9), n) for n in (3, 11, 17)]
    one_block = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, pack_sentences=False).embed_batch(sentences)
    monkeypatch.setattr(bilstm_module, "STEP_BLOCK", 5)
    for kwargs in (dict(pack_sentences=True), dict(stateful=True, batch_size=3)):
        for ours, theirs in zip(ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, **kwargs).embed_batch(sentences),
                                one_block):
            assert_close(ours, theirs)


def test_without_a_cache_a_long_sentence_is_encoded_in_slices_too(embedders):
    sentence = random_words(np.random.default_rng(6), 5000)
    uncached, cached = embedders["no cache"], embedders["packed"]
    shapes = CallShapes(uncached)
    assert_close(uncached.embed_sentence(sentence), cached.embed_sentence(sentence))
    assert shapes.full == []  # 5,008 positions: not in one pass with the LSTMs
    assert len(shapes.token_encoder) == 3 and max(n for _, n, *_ in shapes.token_encoder) <= CHAR_CNN_MAX_TOKENS
    assert uncached._token_vectors == {}  # nothing kept
    short = CallShapes(uncached)
    uncached.embed_sentence(["a", "b"])
    assert short.full == [(1, 8, 50)]  # a short batch still runs in one pass


def test_stateful_batches_ignore_the_budget():
    sentences = mixed_sentences(3)[:12]
    plain = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, batch_size=4, stateful=True, max_tokens_per_batch=None)
    budgeted = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, batch_size=4, stateful=True, max_tokens_per_batch=16)
    shapes = CallShapes(budgeted)
    for ours, theirs in zip(budgeted.embed_sentences(sentences), plain.embed_sentences(sentences)):
        assert np.array_equal(ours, theirs)  # the same calls: 4 rows each, in order
    assert [rows for rows, *_ in shapes.contextualizer] == [4, 4, 4]  # in order, batch_size rows each


def test_windows_and_chunks_close_on_tokens(tmp_path, monkeypatch):
    monkeypatch.setattr(embedder_module, "WINDOW_MAX_TOKENS", 500)
    embedder = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, batch_size=64)
    sentences = mixed_sentences(4)
    windows = []
    original = embedder._embed_chunk
    monkeypatch.setattr(embedder, "_embed_chunk", lambda chunk, *a: windows.append(len(chunk)) or original(chunk, *a))
    vectors = list(embedder.embed_sentences(sentences))
    assert sum(windows) == len(sentences) and len(windows) > 1
    inp = tmp_path / "in.txt"
    inp.write_text("\n".join(" ".join(s) for s in sentences) + "\n", encoding="utf-8")
    embedder.embed_file(str(inp), str(tmp_path / "out.hdf5"), progress=False, max_tokens_per_batch=128)
    manifest = []
    monkeypatch.setattr(file_embedding.ChunkStore, "remove", lambda self: manifest.append(self.starts()))
    embedder.embed_file(str(inp), str(tmp_path / "again.hdf5"), progress=False)
    lengths = [len(s) for s in sentences]
    assert manifest == [[s for s, _ in plan_chunks(lengths, 64 * 32, max_tokens=500)]] and len(manifest[0]) > 1
    import h5py

    for name in ("out.hdf5", "again.hdf5"):
        with h5py.File(tmp_path / name, "r") as f:
            for i, v in enumerate(vectors):
                assert_close(f[str(i)][...], v)


def test_cli_flag(tmp_path, capsys):
    sentences = mixed_sentences(5)[:10]
    inp = tmp_path / "in.txt"
    inp.write_text("\n".join(" ".join(s) for s in sentences) + "\n", encoding="utf-8")
    model = ["--options-file", FIXTURE_OPTIONS, "--weight-file", FIXTURE_WEIGHTS, "--quiet"]
    with pytest.raises(SystemExit) as error:
        main(["embed", str(inp), str(tmp_path / "bad.hdf5"), "--max-tokens-per-batch", "0", *model])
    assert error.value.code == 2
    assert "--max-tokens-per-batch: expected a positive integer, found '0'" in capsys.readouterr().err
    assert main(["embed", str(inp), str(tmp_path / "out.hdf5"), "--max-tokens-per-batch", "64", *model]) == 0
    import h5py

    embedder = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, max_tokens_per_batch=None)
    with h5py.File(tmp_path / "out.hdf5", "r") as f:
        for i, v in enumerate(embedder.embed_sentences(sentences)):
            assert_close(f[str(i)][...], v)


def test_bad_budget_is_refused_before_any_work():
    with pytest.raises(ValueError, match="max_tokens_per_batch: expected a positive integer, found 0"):
        ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, max_tokens_per_batch=0)
    embedder = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)
    with pytest.raises(ValueError, match="max_tokens_per_batch: expected a positive integer, found -3"):
        next(embedder.embed_sentences([["a"]], max_tokens_per_batch=-3))


# -- peak memory, measured in a fresh process ------------------------------------------------------------

CASES = {
    # name: (sentences, tokens each)
    "line_1000": (1, 1_000),
    "line_10000": (1, 10_000),
    "line_20000": (1, 20_000),
    "line_50000": (1, 50_000),
    "batch_64x2000": (64, 2_000),
}


def _child(config, case, budget, token_cache_size, to_file=False):
    """Embed one case (`embed_sentences`, or `embed_file` to hdf5); print peak memory (MiB) before and after."""
    directory = f"/tmp/elmo_keras_memory_{config}"
    options_file, weight_file = f"{directory}/options.json", f"{directory}/weights.hdf5"
    embedder = ElmoEmbedder(options_file, weight_file, max_tokens_per_batch=budget,
                            token_cache_size=token_cache_size)
    rng = np.random.default_rng(0)
    n_sentences, n_tokens = CASES[case]
    sentences = [random_words(rng, n_tokens) for _ in range(n_sentences)]
    embedder.embed_sentence(["warm", "up"])
    if to_file:
        import tempfile

        work = tempfile.mkdtemp()
        with open(f"{work}/in.txt", "w", encoding="utf-8") as f:
            f.writelines(" ".join(words) + "\n" for words in sentences)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.time()
    if to_file:
        embedder.embed_file(f"{work}/in.txt", f"{work}/out.hdf5", progress=False)
        with h5py.File(f"{work}/out.hdf5", "r") as f:
            shapes = [f["0"].shape]
    else:
        shapes = [v.shape for v in embedder.embed_sentences(sentences)]
    seconds = time.time() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"config": config, "case": case, "budget": budget, "token_cache_size": token_cache_size,
                      "embed_file": to_file, "shape": list(shapes[0]), "rss_before_mib": round(before),
                      "peak_mib": round(peak), "seconds": round(seconds, 1)}))


def _measure(config, cases, budgets, token_cache_sizes, to_file=False):
    directory = f"/tmp/elmo_keras_memory_{config}"
    if not os.path.exists(f"{directory}/weights.hdf5"):
        sys.path.insert(0, str(HERE.parent / "benchmarks"))
        from configs import write_random_model

        os.makedirs(directory, exist_ok=True)
        write_random_model(config, directory)
    rows = []
    for case in cases:
        for budget in budgets:
            for cache in token_cache_sizes:
                command = [sys.executable, __file__, "--child", case, "--config", config, "--budget", str(budget),
                           "--token-cache-size", str(cache)] + (["--embed-file"] if to_file else [])
                result = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parent)
                if result.returncode:
                    raise SystemExit(result.stderr[-3000:])
                rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
                print(json.dumps(rows[-1]), flush=True)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="small")
    parser.add_argument("--cases", nargs="+", default=list(CASES))
    parser.add_argument("--budgets", nargs="+", default=[str(embedder_module.DEFAULT_MAX_TOKENS_PER_BATCH)])
    parser.add_argument("--token-cache-sizes", nargs="+", type=int, default=[100_000])
    parser.add_argument("--embed-file", action="store_true",
                        help="embed with embed_file to an hdf5 (default: embed_sentences, vectors returned)")
    parser.add_argument("--child")
    parser.add_argument("--budget")
    parser.add_argument("--token-cache-size", type=int)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.child:
        _child(args.config, args.child, None if args.budget == "none" else int(args.budget), args.token_cache_size,
               args.embed_file)
    else:
        _measure(args.config, args.cases, args.budgets, args.token_cache_sizes, args.embed_file)
