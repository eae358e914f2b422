"""Damaged training text: bytes that are not UTF-8, empty shards, a 1 MB line.

What each reader does (documented in its docstring):

| | `build_vocabulary` | `WindowBatcher` / `train` | `elmo-keras tokenize` |
| --- | --- | --- | --- |
| not UTF-8 | error: file, line | error: file, line | error: file, line; finished files kept |
| empty / blank shard | error: file | error: file | skipped, counted, reported |
| 1 MB line | counted | a sentence, cut window by window | tokenised |
"""

import json
import os
import time

import numpy as np
import pytest

from elmo_keras.cli import main
from elmo_keras.training.batcher import _STATE_FORMAT
from elmo_keras.training.data import WindowBatcher
from elmo_keras.training.vocab import BOS_TOKEN, EOS_TOKEN, DataError, Vocabulary, build_vocabulary

# (bytes of the bad line, what it is). Each makes line 3 of the shard invalid.
BAD_UTF8 = {
    "0xff": b"caf\xff",
    "lone continuation byte": b"a \x80 b",
    "truncated 3-byte sequence": b"end \xe6\x97",
    "overlong encoding of /": b"\xc0\xaf",
    "encoded surrogate": b"\xed\xa0\x80 x",
    "above U+10FFFF": b"\xf4\x90\x80\x80",
    "latin-1 text": "Grüße".encode("latin-1"),
}
LONG_LINE_TOKENS = 340_000  # "word , " repeated: 1.19 MB


def write(path, content):
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return str(path)


def long_line():
    return "word , " * (LONG_LINE_TOKENS // 2)


@pytest.fixture
def shards(tmp_path):
    """Three good shards; a test damages one of them."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    for k in range(3):
        write(folder / f"shard-{k}.txt", f"the cat sat {k}\nthe dog ran\na b c d\n")
    build_vocabulary(str(folder / "shard-*.txt"), str(tmp_path / "vocab.txt"), progress=False)
    return folder


# -- build_vocabulary ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(BAD_UTF8))
def test_vocabulary_names_file_and_line_of_bad_utf8(tmp_path, shards, case):
    write(shards / "shard-1.txt", b"fine line\nanother\n" + BAD_UTF8[case] + b"\nlast\n")
    with pytest.raises(DataError, match=r"shard-1\.txt: line 3: not valid UTF-8") as error:
        build_vocabulary(str(shards / "shard-*.txt"), str(tmp_path / "out.txt"), progress=False)
    assert len(str(error.value).splitlines()) == 1
    assert not (tmp_path / "out.txt").exists()


@pytest.mark.parametrize("content", [b"", b"\n\n   \n\t\n"], ids=["0 bytes", "blank lines"])
def test_vocabulary_refuses_an_empty_shard(tmp_path, shards, content):
    write(shards / "shard-2.txt", content)
    with pytest.raises(DataError, match=r"shard-2\.txt: empty shard \(no tokens\)"):
        build_vocabulary(str(shards / "shard-*.txt"), str(tmp_path / "out.txt"), progress=False)
    assert not (tmp_path / "out.txt").exists()


def test_vocabulary_counts_a_1mb_line(tmp_path, shards):
    write(shards / "shard-1.txt", "x y\n" + long_line() + "\nz\n")
    assert os.path.getsize(shards / "shard-1.txt") > 1_000_000
    start = time.time()
    n_tokens = build_vocabulary(str(shards / "shard-*.txt"), str(tmp_path / "out.txt"), progress=False)
    assert time.time() - start < 10
    assert n_tokens == 2 * 11 + 3 + LONG_LINE_TOKENS
    vocab = open(tmp_path / "out.txt", encoding="utf-8").read().split("\n")
    assert vocab[3:5] == [",", "word"]  # the most frequent tokens come first


# -- the training batcher ------------------------------------------------------------------------------------


def batcher(shards, tmp_path, **kwargs):
    kwargs = dict(dict(batch_size=3, unroll_steps=4, shuffle=False, epochs=1), **kwargs)
    return WindowBatcher(str(shards / "shard-*.txt"), str(tmp_path / "vocab.txt"), **kwargs)


@pytest.mark.parametrize("case", sorted(BAD_UTF8))
def test_batcher_names_file_and_line_of_bad_utf8(tmp_path, shards, case):
    write(shards / "shard-2.txt", b"fine line\nanother\n" + BAD_UTF8[case] + b"\n")
    batches = iter(batcher(shards, tmp_path))
    next(batches)  # the first shards are fine
    with pytest.raises(DataError, match=r"shard-2\.txt: line 3: not valid UTF-8"):
        list(batches)


def test_train_finds_bad_utf8_before_its_first_step(tmp_path, shards):
    from elmo_keras.training.train import train

    write(shards / "shard-2.txt", b"fine\n" + BAD_UTF8["0xff"] + b"\n")
    options = {"lstm": {"dim": 8, "projection_dim": 4, "n_layers": 1},
               "char_cnn": {"embedding": {"dim": 4}, "filters": [[1, 4]], "n_highway": 0},
               "batch_size": 2, "unroll_steps": 3, "n_negative_samples_batch": 4}
    write(tmp_path / "options.json", json.dumps(options))
    with pytest.raises(DataError, match=r"shard-2\.txt: line 2: not valid UTF-8"):
        train(str(tmp_path / "options.json"), str(tmp_path / "vocab.txt"), str(shards / "shard-*.txt"),
              str(tmp_path / "run"), max_steps=2, progress=False)
    assert not (tmp_path / "run" / "checkpoint.h5").exists()


def test_batcher_refuses_empty_shards(tmp_path, shards):
    write(shards / "shard-1.txt", b"")
    with pytest.raises(DataError, match=r"shard-1\.txt: empty shard \(no sentences\)"):
        batcher(shards, tmp_path)  # when the batcher is made, before any batch
    write(shards / "shard-1.txt", b"\n  \n\n")
    batches = iter(batcher(shards, tmp_path))
    with pytest.raises(DataError, match=r"shard-1\.txt: empty shard \(only blank lines\)"):
        list(batches)


def reference_windows(sentences, batch_size, unroll_steps):
    """Every batch's forward and backward windows, rows as plain token lists (the packing rule, spelled out)."""
    rows = [[] for _ in range(batch_size)]
    rows_reverse = [[] for _ in range(batch_size)]
    source = iter(sentences)
    out = []
    while True:
        for forward, backward in zip(rows, rows_reverse):
            while len(forward) <= unroll_steps:
                sentence = next(source, None)
                if sentence is None:
                    break
                forward += [BOS_TOKEN] + sentence + [EOS_TOKEN]
                backward += [EOS_TOKEN] + sentence[::-1] + [BOS_TOKEN]
        if not any(rows):
            return out
        out.append(([r[: unroll_steps + 1] for r in rows], [r[: unroll_steps + 1] for r in rows_reverse]))
        for forward, backward in zip(rows, rows_reverse):
            del forward[:unroll_steps], backward[:unroll_steps]


@pytest.mark.parametrize("seed", range(8))
def test_rows_cut_windows_as_plain_token_streams_do(tmp_path, seed):
    rng = np.random.default_rng(seed)
    folder = tmp_path / "corpus"
    folder.mkdir()
    words = ["w%d" % i for i in range(30)]
    sentences = [[str(w) for w in rng.choice(words, int(n))] for n in rng.integers(0, 12, 60)]
    sentences += [[str(w) for w in rng.choice(words, 300)]]  # one long sentence
    order = rng.permutation(len(sentences))
    sentences = [sentences[i] for i in order if sentences[i]]  # blank lines are not sentences
    write(folder / "shard-0.txt", "".join(" ".join(s) + "\n" for s in sentences))
    build_vocabulary(str(folder / "shard-*.txt"), str(tmp_path / "vocab.txt"), progress=False)
    batch_size, unroll_steps = int(rng.integers(1, 6)), int(rng.integers(1, 9))
    ours = batcher(folder, tmp_path, batch_size=batch_size, unroll_steps=unroll_steps)
    expected = reference_windows(sentences, batch_size, unroll_steps)
    assert ours.skip_batches(10**6) == len(expected)
    ours = batcher(folder, tmp_path, batch_size=batch_size, unroll_steps=unroll_steps)
    for k, (forward, backward) in enumerate(expected):
        assert ours._next_windows() == (forward, backward), k
    assert ours._next_windows() is None


def test_a_1mb_line_trains_as_a_sentence_with_small_states(tmp_path, shards):
    write(shards / "shard-1.txt", "x y\n" + long_line() + "\nz\n")
    build_vocabulary(str(shards / "shard-*.txt"), str(tmp_path / "vocab.txt"), progress=False)
    vocab = Vocabulary(str(tmp_path / "vocab.txt"))
    start = time.time()
    counting = batcher(shards, tmp_path, batch_size=4, unroll_steps=20)
    n_batches = counting.skip_batches(10**9)
    assert time.time() - start < 10  # before: quadratic in the line's length (each cut copied the row)
    assert n_batches > LONG_LINE_TOKENS // 20
    stream = batcher(shards, tmp_path, batch_size=4, unroll_steps=20)
    stream.skip_batches(n_batches // 2)  # inside the long line
    state = json.loads(json.dumps(stream.state()))
    assert len(json.dumps(state)) < 2000  # the state names the line, it does not copy it
    expected = [next(iter(stream)) for _ in range(3)]
    again = batcher(shards, tmp_path, batch_size=4, unroll_steps=20)
    again.restore(state)
    for batch in expected:
        got = next(iter(again))
        for name in batch:
            assert np.array_equal(got[name], batch[name]), name
    windows = [set(vocab.decode(expected[0]["token_ids"][r]).split()) for r in range(4)]
    assert {"word", ","} in windows  # a row inside the long line
    assert again.skip_batches(10**9) + n_batches // 2 + 3 == n_batches


@pytest.mark.parametrize("found", [1, 7])
def test_state_format_is_checked(tmp_path, shards, found):
    # Format 1 (rows as their pending tokens) never left development: refused like a newer format.
    state = batcher(shards, tmp_path).state()
    assert state["format"] == _STATE_FORMAT == 2
    with pytest.raises(ValueError, match=rf"^unknown batcher state format {found} in field 'format' \(this version "
                                         r"restores format 2; format 1 came from development versions before the "
                                         r"first release, a higher one from a newer elmo_keras\)$"):
        batcher(shards, tmp_path).restore(dict(state, format=found))


# -- elmo-keras tokenize ----------------------------------------------------------------------------------------


@pytest.fixture
def tensorflow_text():
    return pytest.importorskip("tensorflow_text")


def test_tokenize_names_file_and_line_and_resumes_after_the_fix(tmp_path, capsys, tensorflow_text):
    raw = tmp_path / "raw"
    raw.mkdir()
    write(raw / "a.txt", "Hello, world.\n")
    write(raw / "b.txt", b"Fine.\n" + BAD_UTF8["latin-1 text"] + b"\n")
    write(raw / "c.txt", "Last one!\n")
    command = ["tokenize", str(raw / "*.txt"), str(tmp_path / "out"), "--quiet"]
    assert main(command) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("elmo-keras tokenize: error: ")
    assert "b.txt: line 2: not valid UTF-8" in err[0]
    assert sorted(os.listdir(tmp_path / "out")) == ["a.txt"]  # finished before the bad file: kept
    done = os.stat(tmp_path / "out" / "a.txt").st_mtime_ns
    write(raw / "b.txt", "Fine.\nGrüße.\n")
    assert main(command) == 0
    assert sorted(os.listdir(tmp_path / "out")) == ["a.txt", "b.txt", "c.txt"]
    assert os.stat(tmp_path / "out" / "a.txt").st_mtime_ns == done  # not redone
    assert open(tmp_path / "out" / "b.txt", encoding="utf-8").read() == "Fine .\nGrüße .\n"


def test_tokenize_skips_files_without_tokens_and_says_so(tmp_path, capsys, tensorflow_text):
    raw = tmp_path / "raw"
    raw.mkdir()
    write(raw / "empty.txt", b"")
    write(raw / "blank.txt", b"\n \t\n\n")
    write(raw / "text.txt", "One line.\n")
    assert main(["tokenize", str(raw / "*.txt"), str(tmp_path / "out"), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out.strip().splitlines()[-1])["files"] == [str(tmp_path / "out" / "text.txt")]
    assert f"tokenize: skipped 2 input file(s) without any token: {raw / 'blank.txt'}, {raw / 'empty.txt'}" in err
    assert sorted(os.listdir(tmp_path / "out")) == ["text.txt"]
    # What it wrote is a corpus the next steps take.
    assert build_vocabulary(str(tmp_path / "out" / "*.txt"), str(tmp_path / "vocab.txt"), progress=False) == 3


def test_tokenize_a_1mb_line(tmp_path, tensorflow_text):
    from elmo_keras.training.tokenize_corpus import tokenize_files

    raw = tmp_path / "raw"
    raw.mkdir()
    write(raw / "long.txt", "Start.\n" + long_line().replace(" , ", ", ") + "\nEnd.\n")
    start = time.time()
    written = tokenize_files(str(raw / "*.txt"), str(tmp_path / "out"), progress=False)
    assert time.time() - start < 60
    lines = open(written[0], encoding="utf-8").read().split("\n")
    assert lines[0] == "Start ." and lines[2] == "End ." and lines[3] == ""
    assert len(lines[1].split()) == LONG_LINE_TOKENS
