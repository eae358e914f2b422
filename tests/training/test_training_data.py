"""Tests of the pretraining data side: vocabulary files and window batching."""

import collections
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest

from conftest import FIXTURE

from elmo_keras.preprocessing.char_ids import token_to_char_ids
from elmo_keras.training.data import DataError, WindowBatcher, make_tf_dataset
from elmo_keras.training.vocab import Vocabulary, VocabularyError, build_vocabulary

FIXTURES = str(FIXTURE / "train")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORDS = ["the", "a", "cat", "dog", "sat", "ran", "on", "mat", "log", "big", "small", "."]


def write(path, text, mode="w"):
    with open(path, mode) as f:
        f.write(text)
    return str(path)


def write_vocab(folder, tokens, name="vocab.txt"):
    return write(os.path.join(folder, name), "".join(t + "\n" for t in tokens))


@pytest.fixture
def corpus(tmp_path):
    """Three shards of random sentences (some longer than a window, some with
    words outside the vocabulary) and a vocabulary missing a few words."""
    rng = random.Random(1234)
    sentences = []
    for shard in range(3):
        lines = []
        for k in range(rng.randint(5, 12)):
            n = rng.choice([1, 2, 3, 7, 13])
            words = [rng.choice(WORDS + ["zebra", "emu", "naïve"]) for _ in range(n)]
            lines.append(" ".join(words))
        sentences.extend(lines)
        write(tmp_path / f"shard-{shard}.txt", "\n".join(lines) + "\n")
    vocab = Vocabulary(write_vocab(tmp_path, ["<S>", "</S>", "<UNK>"] + WORDS))
    return str(tmp_path / "shard-*.txt"), vocab, sentences


def all_batches(batcher):
    return list(iter(batcher))


def decode_char_ids(ids):
    """The token a row of character ids spells (inverse of token_to_char_ids)."""
    raw = np.asarray(ids) - 1
    if raw[1] == 256:
        return "<S>"
    if raw[1] == 257:
        return "</S>"
    end = int(np.argmax(raw == 259))
    return bytes(raw[1:end].astype(np.uint8)).decode("utf-8")


def row_streams(batches, suffix=""):
    """Per row: the input tokens (decoded from char ids) and the weighted target ids."""
    rows = len(batches[0]["weights"])
    tokens = [[] for _ in range(rows)]
    token_ids = [[] for _ in range(rows)]
    targets = [[] for _ in range(rows)]
    for batch in batches:
        chars = batch["char_ids" + suffix]
        for r in range(rows):
            real = chars[r, :, 0] != 0  # an all-zero token is padding
            tokens[r].extend(decode_char_ids(c) for c in chars[r][real])
            token_ids[r].extend(batch["token_ids" + suffix][r][real].tolist())
            targets[r].extend(batch["next_token_id" + suffix][r][batch["weights"][r] == 1].tolist())
    return tokens, token_ids, targets


def split_sentences(stream, first, last):
    """Split `first w... last first w... last` into word lists; fail if malformed."""
    sentences, current = [], None
    for token in stream:
        if current is None:
            assert token == first, f"stream does not start a sentence with {first}: {stream}"
            current = []
        elif token == last:
            sentences.append(current)
            current = None
        else:
            current.append(token)
    assert current is None, "a row ends inside a sentence"
    return sentences


# -- vocabulary ---------------------------------------------------------------


def test_vocabulary_reads_bilm_tf_fixture_with_specials_in_either_order():
    vocab = Vocabulary(os.path.join(FIXTURES, "vocab.txt"))
    assert (vocab.bos, vocab.eos, vocab.unk, vocab.size) == (0, 1, 2, 32)
    assert vocab.token_to_id("of") == 3 and vocab.id_to_token(3) == "of"
    assert vocab.token_to_id("never-seen") == vocab.unk

    swapped = Vocabulary(os.path.join(FIXTURES, "vocab_data_test.txt"))
    assert (swapped.eos, swapped.bos, swapped.unk) == (0, 1, 2)
    assert swapped.encode("the unseen-word").tolist() == [1, 3, 2, 0]
    assert swapped.encode(["the", "unseen-word"], reverse=True, split=False).tolist() == [0, 2, 3, 1]


def test_vocabulary_errors_name_file_and_line(tmp_path):
    path = write_vocab(tmp_path, ["<S>", "</S>", "the", "<UNK>"])
    with pytest.raises(VocabularyError, match=r"vocab\.txt: line 3: expected .*<UNK>.* found 'the'"):
        Vocabulary(path)

    path = write_vocab(tmp_path, ["<UNK>", "<S>"])
    with pytest.raises(VocabularyError, match=r"vocab\.txt: line 3: expected </S> .*end of file"):
        Vocabulary(path)

    path = write_vocab(tmp_path, ["<S>", "</S>", "<UNK>", "cat", "dog", "cat"])
    with pytest.raises(VocabularyError, match=r"vocab\.txt: line 6: duplicate token 'cat' \(first on line 4\)"):
        Vocabulary(path)

    path = write(tmp_path / "latin1.txt", "<S>\n</S>\n<UNK>\ncaf\xe9\n".encode("latin-1"), "wb")
    with pytest.raises(VocabularyError, match=r"latin1\.txt: line 4: not valid UTF-8"):
        Vocabulary(path)


def test_build_vocabulary_orders_by_count_then_alphabetically(tmp_path):
    write(tmp_path / "b.txt", "dog cat\ncat <UNK> ant\n")
    write(tmp_path / "a.txt", "bee cat dog\n\nemu\n")
    out = str(tmp_path / "out" / "vocab.txt")
    n_tokens = build_vocabulary(str(tmp_path / "*.txt"), out, progress=False)
    assert n_tokens == 9  # a literal <UNK> is counted, blank lines add nothing
    assert open(out).read().split("\n") == ["<S>", "</S>", "<UNK>", "cat", "dog", "ant", "bee", "emu", ""]
    assert Vocabulary(out).size == 8

    build_vocabulary(str(tmp_path / "*.txt"), out, min_count=2, progress=False)
    assert open(out).read().split() == ["<S>", "</S>", "<UNK>", "cat", "dog"]
    build_vocabulary(str(tmp_path / "*.txt"), out, max_size=5, progress=False)
    assert open(out).read().split() == ["<S>", "</S>", "<UNK>", "cat", "dog"]


def test_build_vocabulary_on_bilm_tf_training_fixture(tmp_path):
    out = str(tmp_path / "vocab.txt")
    data = os.path.join(FIXTURES, "data.txt")
    n_tokens = build_vocabulary(data, out, min_count=2, progress=False)
    text = open(data).read()
    assert n_tokens == len(text.split()) == 134
    tokens = open(out).read().split()
    # Same tokens as bilm-tf's fixture vocab (which breaks ties in another order).
    assert tokens[:3] == ["<S>", "</S>", "<UNK>"]
    assert set(tokens) == set(open(os.path.join(FIXTURES, "vocab.txt")).read().split())
    counts = collections.Counter(text.split())
    ranks = [(-counts[t], t) for t in tokens[3:]]
    assert ranks == sorted(ranks)


def test_build_vocabulary_errors_name_file_and_line(tmp_path):
    out = str(tmp_path / "vocab.txt")
    with pytest.raises(DataError, match="no files match"):
        build_vocabulary(str(tmp_path / "missing-*.txt"), out, progress=False)
    write(tmp_path / "empty.txt", "\n\n")
    with pytest.raises(DataError, match=r"empty\.txt: empty shard"):
        build_vocabulary(str(tmp_path / "empty.txt"), out, progress=False)
    write(tmp_path / "bad.txt", b"fine line\nsecond\nbad \xff byte\n", "wb")
    with pytest.raises(DataError, match=r"bad\.txt: line 3: not valid UTF-8"):
        build_vocabulary(str(tmp_path / "bad.txt"), out, progress=False)
    assert not os.path.exists(out)


# -- window batching ----------------------------------------------------------------


def test_rows_are_continuous_streams_covering_every_sentence_once(corpus):
    pattern, vocab, sentences = corpus
    batches = all_batches(WindowBatcher(pattern, vocab, batch_size=4, unroll_steps=5, shuffle=False))
    tokens, token_ids, targets = row_streams(batches)
    row_sentences = [split_sentences(stream, "<S>", "</S>") for stream in tokens]

    found = [" ".join(s) for row in row_sentences for s in row]
    assert sorted(found) == sorted(sentences)  # none lost, none repeated
    for stream, ids, row_targets in zip(tokens, token_ids, targets):
        assert ids == [vocab.token_to_id(t) for t in stream]  # unknown words -> <UNK>
        assert row_targets == ids[1:]  # targets: the stream shifted by one
    n_tokens = sum(len(s.split()) + 2 for s in sentences)
    assert sum(len(s) for s in tokens) == n_tokens
    assert sum(b["weights"].sum() for b in batches) == n_tokens - sum(1 for s in tokens if s)


def test_window_targets_continue_into_the_next_window(corpus):
    pattern, vocab, _ = corpus
    batches = all_batches(WindowBatcher(pattern, vocab, batch_size=3, unroll_steps=4, shuffle=False))
    for batch, following in zip(batches, batches[1:]):
        full = batch["weights"].all(axis=1)
        np.testing.assert_array_equal(batch["next_token_id"][:, :-1][full], batch["token_ids"][:, 1:][full])
        np.testing.assert_array_equal(batch["next_token_id"][full, -1], following["token_ids"][full, 0])


def test_reverse_stream_holds_the_reversed_sentences(corpus):
    pattern, vocab, _ = corpus
    batches = all_batches(WindowBatcher(pattern, vocab, batch_size=4, unroll_steps=5, shuffle=False))
    forward, _, _ = row_streams(batches)
    backward, backward_ids, backward_targets = row_streams(batches, "_reverse")
    for fwd, bwd, ids, row_targets in zip(forward, backward, backward_ids, backward_targets):
        reversed_sentences = [s[::-1] for s in split_sentences(fwd, "<S>", "</S>")]
        assert split_sentences(bwd, "</S>", "<S>") == reversed_sentences
        assert row_targets == ids[1:]
        for sentence in reversed_sentences:
            encoded = vocab.encode(sentence[::-1], reverse=True, split=False).tolist()
            assert encoded == [vocab.token_to_id(t) for t in ["</S>"] + sentence + ["<S>"]]


def test_char_ids_are_those_of_the_token_even_when_unknown(tmp_path):
    vocab = Vocabulary(write_vocab(tmp_path, ["<S>", "</S>", "<UNK>", "the"]))
    pattern = write(tmp_path / "shard.txt", "the zebra naïve\n")
    batch = next(iter(WindowBatcher(pattern, vocab, batch_size=1, unroll_steps=5, shuffle=False)))
    stream = ["<S>", "the", "zebra", "naïve", "</S>"]
    expected_chars = np.stack([token_to_char_ids(t) for t in stream])
    np.testing.assert_array_equal(batch["char_ids"][0], expected_chars)
    np.testing.assert_array_equal(batch["char_ids_reverse"][0], expected_chars[::-1])
    assert batch["token_ids"][0].tolist() == [0, 3, 2, 2, 1]
    assert batch["next_token_id"][0].tolist() == [3, 2, 2, 1, 0]
    assert batch["weights"][0].tolist() == [1, 1, 1, 1, 0]  # the final </S> has no next token
    assert batch["char_ids"].dtype == np.int32 and batch["weights"].dtype == np.float32


def test_end_of_data_is_padded_or_dropped(corpus):
    pattern, vocab, _ = corpus
    padded = all_batches(WindowBatcher(pattern, vocab, batch_size=4, unroll_steps=5, shuffle=False))
    last = padded[-1]
    padding = last["char_ids"][..., 0] == 0
    assert padding.any() and (last["token_ids"][padding] == 0).all() and (last["weights"][padding] == 0).all()
    dropped = all_batches(
        WindowBatcher(pattern, vocab, batch_size=4, unroll_steps=5, shuffle=False, drop_remainder=True)
    )
    assert 0 < len(dropped) < len(padded)
    assert all(b["weights"].all() for b in dropped)
    for kept, full in zip(dropped, padded):
        np.testing.assert_array_equal(kept["char_ids"], full["char_ids"])


def epoch_orders(pattern, vocab, seed, epochs=2):
    """The sentence order of each epoch (one row, so the row is the global order)."""
    batcher = WindowBatcher(pattern, vocab, batch_size=1, unroll_steps=7, seed=seed, epochs=epochs)
    tokens, _, _ = row_streams(all_batches(batcher))
    sentences = [" ".join(s) for s in split_sentences(tokens[0], "<S>", "</S>")]
    per_epoch = len(sentences) // epochs
    return [sentences[k * per_epoch : (k + 1) * per_epoch] for k in range(epochs)]


def test_shuffling_is_seeded_and_changes_every_epoch(corpus):
    pattern, vocab, sentences = corpus
    first, second = epoch_orders(pattern, vocab, seed=0)
    assert sorted(first) == sorted(second) == sorted(sentences)
    assert first != second and first != sentences
    assert epoch_orders(pattern, vocab, seed=0) == [first, second]
    assert epoch_orders(pattern, vocab, seed=1) != [first, second]

    # A shard is read whole before the next, so its sentences stay together;
    # the shard order itself changes with the seed and from epoch to epoch.
    shard_of = {}
    for k in range(3):
        for line in open(pattern.replace("*", str(k))).read().splitlines():
            shard_of.setdefault(line, k)

    def shard_order(epoch_sentences):
        order = [shard_of[s] for s in epoch_sentences]
        return tuple(k for i, k in enumerate(order) if i == 0 or order[i - 1] != k)

    orders = [tuple(map(shard_order, epoch_orders(pattern, vocab, seed=seed))) for seed in range(6)]
    assert all(sorted(o) == [0, 1, 2] for epochs in orders for o in epochs)
    assert len({epochs[0] for epochs in orders}) > 1
    assert any(first != second for first, second in orders)


def assert_same_batches(left, right):
    assert len(left) == len(right)
    for a, b in zip(left, right):
        assert a.keys() == b.keys()
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_resume_from_state_or_by_skipping_gives_the_same_next_batches(corpus):
    pattern, vocab, _ = corpus
    settings = dict(batch_size=3, unroll_steps=4, seed=5, epochs=3)
    reference = all_batches(WindowBatcher(pattern, vocab, **settings))
    for done in (1, len(reference) // 2, len(reference) - 1):
        batcher = WindowBatcher(pattern, vocab, **settings)
        iterator = iter(batcher)
        for _ in range(done):
            next(iterator)
        saved = json.loads(json.dumps(batcher.state()))

        resumed = WindowBatcher(pattern, vocab, **settings)
        resumed.restore(saved)
        assert_same_batches(all_batches(resumed), reference[done:])

        skipped = WindowBatcher(pattern, vocab, **settings)
        assert skipped.skip_batches(done) == done
        assert_same_batches(all_batches(skipped), reference[done:])

    other = WindowBatcher(pattern, vocab, **dict(settings, seed=6))
    with pytest.raises(ValueError, match="different seed"):
        other.restore(saved)


def test_tf_dataset_yields_the_same_arrays(corpus):
    tf = pytest.importorskip("tensorflow")
    pattern, vocab, _ = corpus
    settings = dict(batch_size=3, unroll_steps=4, seed=2, epochs=2)
    reference = all_batches(WindowBatcher(pattern, vocab, **settings))
    dataset = make_tf_dataset(WindowBatcher(pattern, vocab, **settings))
    assert dataset.element_spec["char_ids"].shape == (3, 4, 50)
    assert dataset.element_spec["weights"].dtype == tf.float32
    from_tf = [{k: v.numpy() for k, v in batch.items()} for batch in dataset]
    assert_same_batches(from_tf, reference)


def test_shard_errors_name_file_and_line(tmp_path):
    vocab = Vocabulary(write_vocab(tmp_path, ["<S>", "</S>", "<UNK>"]))
    with pytest.raises(DataError, match="no files match"):
        WindowBatcher(str(tmp_path / "nothing-*.txt"), vocab)
    write(tmp_path / "empty.txt", "")
    with pytest.raises(DataError, match=r"empty\.txt: empty shard"):
        WindowBatcher(str(tmp_path / "empty.txt"), vocab)
    write(tmp_path / "blank.txt", "\n  \n")
    with pytest.raises(DataError, match=r"blank\.txt: empty shard"):
        list(WindowBatcher(str(tmp_path / "blank.txt"), vocab))
    write(tmp_path / "bad.txt", b"one\ntwo\n\xc3( three\n", "wb")
    batcher = WindowBatcher(str(tmp_path / "bad.txt"), vocab)  # shards are read lazily
    with pytest.raises(DataError, match=r"bad\.txt: line 3: not valid UTF-8"):
        list(batcher)


def test_numpy_batches_train_a_keras_model_on_jax(corpus, tmp_path):
    """The numpy iterator is the backend-neutral path: a generator for model.fit."""
    pytest.importorskip("jax")
    pattern, vocab, _ = corpus
    script = f"""
import os
os.environ["KERAS_BACKEND"] = "jax"
import keras
from elmo_keras.training.data import WindowBatcher
from elmo_keras.training.vocab import Vocabulary
batcher = WindowBatcher({pattern!r}, Vocabulary({vocab.path!r}), batch_size=2, unroll_steps=3, epochs=None)
ids = keras.Input((3,), batch_size=2, dtype="int32")
hidden = keras.layers.Embedding({vocab.size}, 4)(ids)
model = keras.Model(ids, keras.layers.Dense({vocab.size})(hidden))
model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
batches = ((b["token_ids"], b["next_token_id"], b["weights"]) for b in batcher)
history = model.fit(batches, steps_per_epoch=3, epochs=1, verbose=0)
print(keras.backend.backend(), batcher.batches_done)
"""
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONPATH=REPO_ROOT)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    backend, batches_done = result.stdout.split()[-2:]
    assert backend == "jax" and int(batches_done) >= 3


def test_certain_sentence_start_is_not_a_target(tmp_path):
    vocab = Vocabulary(write_vocab(tmp_path, ["<S>", "</S>", "<UNK>", "a", "b", "c"]))
    pattern = write(tmp_path / "shard.txt", "a b\nc\n")
    batch = next(iter(WindowBatcher(pattern, vocab, batch_size=1, unroll_steps=8, shuffle=False)))
    assert [vocab.decode([t]) for t in batch["next_token_id"][0][:6]] == ["a", "b", "</S>", "<S>", "c", "</S>"]
    assert batch["weights"][0].tolist() == [1, 1, 1, 1, 1, 1, 0, 0]  # training: every target
    assert batch["perplexity_weights"][0].tolist() == [1, 1, 1, 0, 1, 1, 0, 0]  # bilm-tf's targets
    assert [vocab.decode([t]) for t in batch["next_token_id_reverse"][0][:6]] == ["b", "a", "<S>", "</S>", "c",
                                                                                     "<S>"]
