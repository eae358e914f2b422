"""The training corpus: shards of one whitespace-tokenised sentence a line, read in a resumable order.

`_shard_paths` finds and checks the shards of a glob, `_read_sentences` reads
one, and `_SentenceSource` hands out sentences in epoch -> shard -> sentence
order (shuffled from a seed, or in file order) from a position that is three
integers, so a batcher state names sentences instead of copying them.
"""

import glob
import logging
import os

import numpy as np

from elmo_keras.training.vocab import DataError, read_utf8_lines

_logger = logging.getLogger(__name__)


def _shard_paths(file_pattern):
    """The sorted files of a glob, each checked to exist and be non-empty."""
    paths = sorted(glob.glob(str(file_pattern)))
    if not paths:
        raise DataError(f"no files match {file_pattern!r}")
    for path in paths:
        # Caught up front: an empty shard found mid-epoch would stop a long run late.
        try:
            size = os.path.getsize(path)
        except OSError as e:
            raise DataError(f"{path}: cannot read shard: {e.strerror or e}") from e
        if size == 0:
            raise DataError(f"{path}: empty shard (no sentences)")
    return paths


def _read_sentences(path):
    """The non-blank lines of a shard, in file order."""
    sentences = [line for line in read_utf8_lines(path, DataError) if line.strip()]
    if not sentences:
        raise DataError(f"{path}: empty shard (only blank lines)")
    return sentences


class _SentenceSource:
    """Sentences in epoch -> shard -> sentence order, at a resumable position.

    Every order is a pure function of (seed, epoch, shard), so a position is
    three integers and no random generator state has to be saved.
    """

    def __init__(self, shards, shuffle, seed, epochs):
        self.shards = shards
        self.shuffle = shuffle
        self.seed = seed
        self.epochs = epochs
        self.seek(epoch=0, shard_position=0, sentence_position=0)

    def seek(self, epoch, shard_position, sentence_position):
        self.epoch = epoch
        self.shard_position = shard_position
        self.sentence_position = sentence_position
        self._sentences = None  # the current shard, loaded on first use

    def position(self):
        return {
            "epoch": self.epoch,
            "shard_position": self.shard_position,
            "sentence_position": self.sentence_position,
        }

    def _shard_order(self, epoch):
        if not self.shuffle:
            return list(range(len(self.shards)))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.shards)).tolist()

    def _load_shard(self, epoch, shard_position):
        """The sentences of the shard at `shard_position` of `epoch`'s order, in that epoch's order."""
        shard_index = self._shard_order(epoch)[shard_position]
        path = self.shards[shard_index]
        _logger.info("loading shard %s (epoch %d)", path, epoch)
        sentences = _read_sentences(path)
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch, shard_index]).permutation(len(sentences))
            sentences = [sentences[i] for i in order]
        return sentences

    def _load_current_shard(self):
        return self._load_shard(self.epoch, self.shard_position)

    def sentences_at(self, refs):
        """The sentences (token lists) at `refs`, each `(epoch, shard_position, sentence_position)`.

        Loads each shard they name once; the current position is unchanged
        (the current shard, when loaded here, is kept for reading on).
        """
        shards = {}
        if self._sentences is not None:
            shards[(self.epoch, self.shard_position)] = self._sentences
        out = []
        for epoch, shard_position, sentence_position in refs:
            key = (epoch, shard_position)
            if key not in shards:
                shards[key] = self._load_shard(epoch, shard_position)
            out.append(shards[key][sentence_position].split())
        if self._sentences is None and (self.epoch, self.shard_position) in shards:
            self._sentences = shards[(self.epoch, self.shard_position)]
        return out

    def _next_shard(self):
        self._sentences = None
        self.sentence_position = 0
        self.shard_position += 1
        if self.shard_position == len(self.shards):
            self.shard_position = 0
            self.epoch += 1

    def next_sentence(self):
        """`(ref, tokens)` of the next sentence, or None after the last epoch.

        `ref` is where it is, `(epoch, shard_position, sentence_position)`,
        which `sentences_at` reads it back from.
        """
        while self.epochs is None or self.epoch < self.epochs:
            if self._sentences is None:
                self._sentences = self._load_current_shard()
            if self.sentence_position < len(self._sentences):
                ref = (self.epoch, self.shard_position, self.sentence_position)
                line = self._sentences[self.sentence_position]
                self.sentence_position += 1
                return ref, line.split()
            self._next_shard()
        return None
