"""biLM pretraining batches: sentences packed into windows of a continuous stream per row.

This is the data side of bilm-tf's `bin/train_elmo.py` (`LMDataset`,
`BidirectionalLMDataset`), in numpy:

- Each of the `batch_size` rows of a batch is a continuous stream of sentences,
  each wrapped `<S> ... </S>`. A batch is the next `unroll_steps` tokens of
  every row, so a stateful LSTM carries its state from one window to the next
  of the same row. A row takes the next sentence of the corpus whenever it runs
  short, rows in order, as bilm-tf does.
- `next_token_id` is the token after each input along the row's stream, so
  the last target of a window is the first input of the row's next window.
- The backward LM gets its own stream in the `_reverse` arrays: the same
  sentences, each reversed and wrapped `</S> ... <S>` (what a backward LM
  reads), packed the same way, with its own next-token targets.
- Inputs are token ids (unknown tokens -> `<UNK>`) and 50 character ids per
  token with the +1 shift of `elmo_keras.preprocessing.char_ids`; an unknown
  token keeps its own characters.

One difference from bilm-tf: here `</S>` is an input too (its target is the
next sentence's `<S>`), so a row's inputs are exactly `<S> s1 </S> <S> s2 </S>
...` and targets are the inputs shifted by one; bilm-tf never feeds `</S>` and
goes straight from a sentence's last word to the next `<S>`. Feeding `</S>`
leaves the LSTM state where inference leaves it (after `</S>`).

End of data (only when `epochs` is not None): by default the stream is not cut.
Batches go on until every row is empty, with id 0, all-zero characters, target
0 and weight 0 wherever a row has no more data; a row's very last token is
still an input but, having no next token, gets weight 0. So in one pass every
token is an input exactly once and every token but a row's first is a target
exactly once. `perplexity_weights` leaves out the targets that are a
sentence's opening `<S>` (certain after `</S>`), so perplexity counts bilm-tf's
targets. `drop_remainder=True` instead stops before the first batch that
would need padding (bilm-tf's behaviour; the tail of the data is lost).

Resuming: `state()` returns a small JSON-serialisable dict and `restore(state)`
continues with exactly the batches that would have followed. The state names
the sentences waiting in each row by their position (epoch, shard, sentence,
tokens already cut), not by their tokens, so it stays small whatever their
length; `restore` reads them back from the shards. When batches are
prefetched (tf.data) the batcher runs ahead of the model, so resume from the
model's step count instead: a fresh batcher plus `skip_batches(steps)` lands on
the same next batch (it packs without building arrays, but still reads every
shard it passes).

Example:

>>> import os, tempfile
>>> from elmo_keras.training.vocab import Vocabulary, build_vocabulary
>>> folder = tempfile.mkdtemp()
>>> _ = open(os.path.join(folder, "shard-0.txt"), "w").write("the cat sat\\nthe dog ran\\n")
>>> _ = build_vocabulary(os.path.join(folder, "shard-*.txt"), os.path.join(folder, "vocab.txt"),
...                      progress=False)
>>> vocab = Vocabulary(os.path.join(folder, "vocab.txt"))
>>> batcher = WindowBatcher(os.path.join(folder, "shard-*.txt"), vocab, batch_size=2,
...                         unroll_steps=3, shuffle=False, epochs=1)
>>> batch = next(iter(batcher))
>>> sorted(batch)  # doctest: +NORMALIZE_WHITESPACE
['char_ids', 'char_ids_reverse', 'next_token_id', 'next_token_id_reverse', 'perplexity_weights',
 'token_ids', 'token_ids_reverse', 'weights']
>>> batch["char_ids"].shape
(2, 3, 50)
>>> [vocab.decode(row) for row in batch["token_ids"]]
['<S> the cat', '<S> the dog']
>>> [vocab.decode(row) for row in batch["next_token_id"]]
['the cat sat', 'the dog ran']
>>> [vocab.decode(row) for row in batch["token_ids_reverse"]]
['</S> sat cat', '</S> ran dog']
>>> saved = batcher.state()
>>> batch = next(iter(batcher))
>>> batch["weights"].tolist()  # each row's final </S> has no next token
[[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
>>> batcher.restore(saved)
>>> next(iter(batcher))["token_ids"].tolist() == batch["token_ids"].tolist()
True
"""

import numpy as np

from elmo_keras.arguments import check_positive_int
from elmo_keras.preprocessing.char_ids import CharIdCache, token_to_char_ids
from elmo_keras.training.corpus import _SentenceSource, _shard_paths
from elmo_keras.training.rows import _Row, _Segment
from elmo_keras.training.vocab import Vocabulary

# A row is a list of its sentences' positions [epoch, shard, sentence, tokens
# cut], read back from the shards. Format 1 (a row as its pending tokens)
# never left development.
_STATE_FORMAT = 2


class _TokenEncoder:
    """Token ids and character ids of token lists."""

    # Unknown tokens get their own small cache, emptied when full: a large
    # corpus has millions of them, and keeping all would grow without bound.
    _MAX_CACHED_UNKNOWN_TOKENS = 100_000

    def __init__(self, vocab, max_characters_per_token):
        self.vocab = vocab
        self.max_characters_per_token = max_characters_per_token
        self._char_cache = CharIdCache(max_characters_per_token)
        self._unknown_char_ids = {}

    def token_ids(self, tokens):
        return [self.vocab.token_to_id(t) for t in tokens]

    def char_ids(self, tokens):
        return np.stack([self._token_char_ids(t) for t in tokens])

    def _token_char_ids(self, token):
        if token in self.vocab:
            return self._char_cache.token(token)
        ids = self._unknown_char_ids.get(token)
        if ids is None:
            if len(self._unknown_char_ids) >= self._MAX_CACHED_UNKNOWN_TOKENS:
                self._unknown_char_ids.clear()
            ids = token_to_char_ids(token, self.max_characters_per_token)
            self._unknown_char_ids[token] = ids
        return ids


class WindowBatcher:
    """Windows of `unroll_steps` tokens from `batch_size` continuous sentence streams.

    Args:
        file_pattern: str. A glob of shards, one whitespace-tokenised sentence
            per line (blank lines are skipped).
        vocab: a `Vocabulary` or the path of a vocabulary file.
        batch_size: int. Rows per batch; each row is its own stream.
        unroll_steps: int. Tokens per row per batch.
        max_characters_per_token: int. Character slots per token.
        shuffle: bool. Shuffle the shard order every epoch and the sentences of
            each shard, from `seed`. False reads shards in sorted order and
            sentences in file order.
        seed: int. Fixes every shuffle: same seed, same batches.
        epochs: int, or None for an endless stream. Epochs follow each other
            inside the same row streams; only the end of the last one pads.
        drop_remainder: bool. Stop before the first batch that would need
            padding instead of padding it (see the module docstring).

    Test mode (one deterministic pass over every sentence) is
    `shuffle=False, epochs=1`.

    Iterating yields dicts of numpy arrays, B = batch_size, T = unroll_steps:
    `token_ids`, `next_token_id`, `token_ids_reverse`,
    `next_token_id_reverse` (B, T) int32; `char_ids`, `char_ids_reverse`
    (B, T, max_characters_per_token) int32; `weights` (B, T) float32, 1 where
    a target exists and 0 on padding (the same for both directions). Iterating
    again continues where the last iteration stopped.

    Damaged shards (each is an error, never a silent skip: skipping would
    make the data differ from the vocabulary's count and from run to run):

    - a missing or empty (0-byte) shard: DataError naming it, when the
      batcher is made;
    - a shard of blank lines only, or with bytes that are not UTF-8:
      DataError naming the file (and the line of the first bad byte) when
      the shard is read. `train` reads every shard before its first step
      when it counts the tokens (options without `n_train_tokens`), and
      `build_vocabulary` reads them all too, so these show up front;
    - a very long line (1 MB, hundreds of thousands of tokens, e.g. a file
      whose line ends are missing): no error, it is a sentence like any
      other; its row cuts it window by window at a cost per batch that does
      not grow with its length, and the state stays small.

    Raises:
        DataError: no file matches the glob, a shard is missing or empty, or a
            line is not UTF-8 (the message names file and line).
    """

    def __init__(
        self,
        file_pattern,
        vocab,
        batch_size=128,
        unroll_steps=20,
        max_characters_per_token=50,
        shuffle=True,
        seed=0,
        epochs=1,
        drop_remainder=False,
    ):
        self.file_pattern = str(file_pattern)
        self.vocab = vocab if isinstance(vocab, Vocabulary) else Vocabulary(vocab)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.unroll_steps = check_positive_int(unroll_steps, "unroll_steps")
        self.max_characters_per_token = check_positive_int(max_characters_per_token, "max_characters_per_token")
        if epochs is not None:
            epochs = check_positive_int(epochs, "epochs")
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_remainder = bool(drop_remainder)
        self._encoder = _TokenEncoder(self.vocab, self.max_characters_per_token)
        self._source = _SentenceSource(_shard_paths(self.file_pattern), self.shuffle, self.seed, epochs)
        self._rows = [_Row() for _ in range(self.batch_size)]
        self._batches_done = 0
        self._finished = False

    @property
    def shards(self):
        """The shard paths, sorted."""
        return list(self._source.shards)

    @property
    def epochs(self):
        return self._source.epochs

    @property
    def tokens_per_batch(self):
        """Token positions per batch (padding included): batch_size * unroll_steps."""
        return self.batch_size * self.unroll_steps

    @property
    def batches_done(self):
        """Batches produced (or skipped) so far."""
        return self._batches_done

    def output_signature(self):
        """{name: (shape, numpy dtype)} of every array of a batch."""
        b, t, c = self.batch_size, self.unroll_steps, self.max_characters_per_token
        signature = {}
        for suffix in ("", "_reverse"):
            signature["token_ids" + suffix] = ((b, t), np.dtype(np.int32))
            signature["char_ids" + suffix] = ((b, t, c), np.dtype(np.int32))
            signature["next_token_id" + suffix] = ((b, t), np.dtype(np.int32))
        signature["weights"] = ((b, t), np.dtype(np.float32))
        signature["perplexity_weights"] = ((b, t), np.dtype(np.float32))
        return signature

    # -- packing ---------------------------------------------------------

    def _fill_row(self, row):
        """Pull sentences into a row until it holds a full window plus its last target."""
        pending = self._rows[row]
        while pending.length <= self.unroll_steps:
            sentence = self._source.next_sentence()
            if sentence is None:
                return
            pending.append(_Segment.of_sentence(*sentence))

    def _next_windows(self):
        """Cut the next window of every row; None when the stream has ended.

        A window is up to unroll_steps + 1 tokens: the inputs and, one to the
        right, their targets. Its last token stays in the row, because it is
        also the first input of the row's next window.
        """
        if self._finished:
            return None
        t = self.unroll_steps
        for row in range(self.batch_size):
            self._fill_row(row)
        lengths = [r.length for r in self._rows]
        if max(lengths) == 0 or (self.drop_remainder and min(lengths) <= t):
            self._finished = True
            return None
        windows, windows_reverse = [], []
        for pending in self._rows:
            forward, backward = pending.window(t + 1)
            windows.append(forward)
            windows_reverse.append(backward)
            pending.cut(t)  # with fewer than t + 1 left, this empties the row
        self._batches_done += 1
        return windows, windows_reverse

    # -- arrays ----------------------------------------------------------

    def _encode_direction(self, windows):
        """Arrays of one direction, and the (B, T) mask of positions with a target."""
        b, t, c = self.batch_size, self.unroll_steps, self.max_characters_per_token
        steps = np.arange(t)
        input_mask = steps < np.array([min(len(w), t) for w in windows])[:, None]
        target_mask = steps < np.array([max(len(w) - 1, 0) for w in windows])[:, None]
        # Boolean-mask assignment fills row-major, the order of these flat lists,
        # so the whole batch is encoded with one stack instead of one per row.
        inputs = [token for w in windows for token in w[:t]]
        targets = [token for w in windows for token in w[1:]]
        token_ids = np.zeros((b, t), np.int32)
        token_ids[input_mask] = self._encoder.token_ids(inputs)
        next_token_id = np.zeros((b, t), np.int32)
        next_token_id[target_mask] = self._encoder.token_ids(targets)
        char_ids = np.zeros((b, t, c), np.int32)
        char_ids[input_mask] = self._encoder.char_ids(inputs)
        return {"token_ids": token_ids, "char_ids": char_ids, "next_token_id": next_token_id}, target_mask

    def _encode(self, windows, windows_reverse):
        forward, target_mask = self._encode_direction(windows)
        backward, _ = self._encode_direction(windows_reverse)  # same lengths, same mask
        batch = dict(forward)
        batch.update((name + "_reverse", array) for name, array in backward.items())
        batch["weights"] = target_mask.astype(np.float32)
        # The `<S>` that follows `</S>` is certain. Training keeps it as a
        # target (so every replica's rows hold the same count), but perplexity
        # counts bilm-tf's targets only: each word and `</S>`. The backward
        # stream's `</S>` after `<S>` sits at the same positions.
        batch["perplexity_weights"] = (target_mask & (forward["next_token_id"] != self.vocab.bos)).astype(
            np.float32)
        return batch

    def __iter__(self):
        while True:
            cut = self._next_windows()
            if cut is None:
                return
            yield self._encode(*cut)

    def skip_batches(self, n):
        """Advance past `n` batches without building them; return how many were skipped."""
        skipped = 0
        while skipped < n and self._next_windows() is not None:
            skipped += 1
        return skipped

    # -- resuming ----------------------------------------------------------

    def _config(self):
        return {
            "shards": self.shards,
            "batch_size": self.batch_size,
            "unroll_steps": self.unroll_steps,
            "shuffle": self.shuffle,
            "seed": self.seed,
            "drop_remainder": self.drop_remainder,
        }

    def state(self):
        """A JSON-serialisable snapshot; `restore` continues from exactly here."""
        return {
            "format": _STATE_FORMAT,
            "config": self._config(),
            "position": self._source.position(),
            "rows": [[segment.state() for segment in r.segments] for r in self._rows],
            "batches_done": self._batches_done,
            "finished": self._finished,
        }

    def restore(self, state):
        """Continue from a `state()` of a batcher over the same data and settings.

        `epochs` may differ (to lengthen a run). Raises ValueError when the
        shards, batch_size, unroll_steps, shuffle, seed or drop_remainder differ.
        """
        if state.get("format") != _STATE_FORMAT:
            raise ValueError(f"unknown batcher state format {state.get('format')!r} in field 'format' (this version "
                             f"restores format {_STATE_FORMAT}; format 1 came from development versions before the "
                             f"first release, a higher one from a newer elmo_keras)")
        saved, current = state["config"], self._config()
        changed = sorted(k for k in current if saved.get(k) != current[k])
        if changed:
            raise ValueError(f"cannot restore: the state was saved with different {', '.join(changed)}")
        self._source.seek(**state["position"])
        refs = [tuple(entry[:3]) for row in state["rows"] for entry in row]
        sentences = dict(zip(refs, self._source.sentences_at(refs)))
        self._rows = [_Row([_Segment.of_sentence(tuple(e[:3]), sentences[tuple(e[:3])], e[3]) for e in row])
                      for row in state["rows"]]
        self._batches_done = state["batches_done"]
        # A run restored with more epochs may go on past where it ended.
        self._finished = state["finished"] and self.epochs is not None and (
            self._source.epoch >= self.epochs
        )


def dataset_from_generator(batches, signature):
    """A `tf.data.Dataset` of the dicts that `batches()` yields: the one generator-to-tf.data step.

    Args:
        batches: a function returning an iterator of `{name: array}`; every
            iteration of the dataset calls it anew.
        signature: `{name: (shape, dtype)}`, as `WindowBatcher.output_signature()`.
    """
    import tensorflow as tf  # imported here so the module works without TensorFlow

    specs = {name: tf.TensorSpec(shape=shape, dtype=tf.as_dtype(dtype), name=name)
             for name, (shape, dtype) in signature.items()}
    return tf.data.Dataset.from_generator(batches, output_signature=specs)


def make_tf_dataset(batcher, prefetch=2):
    """A `tf.data.Dataset` of the batcher's batches, with fixed shapes.

    Every element has the exact shapes of `batcher.output_signature()` (the
    end of data is padded, never shorter), as `tf.distribute` wants. The
    dataset pulls from the batcher itself, so iterating it again continues
    where the batcher is, and the batcher runs `prefetch` batches ahead of the
    model: to resume, use `skip_batches(model steps)` rather than `state()`.

    Args:
        batcher: a `WindowBatcher`.
        prefetch: int, or None for `tf.data.AUTOTUNE`; 0 turns prefetching off.
    """
    import tensorflow as tf

    dataset = dataset_from_generator(lambda: iter(batcher), batcher.output_signature())
    if prefetch is None:
        return dataset.prefetch(tf.data.AUTOTUNE)
    return dataset.prefetch(prefetch) if prefetch > 0 else dataset
