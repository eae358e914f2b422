"""A line longer than the token budget, embedded in blocks of steps with the LSTM state carried between them.

ELMo's two directions are independent: the forward LSTM at a position reads
the tokens up to it, the backward one the tokens from it to the end. So a
sequence of any length runs as blocks of `block_steps` positions: at block
k the forward stack reads positions [k B, (k + 1) B) from the state it left
at the end of block k - 1, and the backward stack reads the k-th block from
the end, from its own state. Each block's outputs go to a sink at once
(`LongLine.pieces`): the memory of the model calls is that of one block,
whatever the length, and what grows with the line is the output alone,
which `embed_file` writes to disk block by block (`LongLine.write`).

The outputs equal the whole line's in one call within float32 rounding (the
products of other shapes), as the suite's batching tolerance measures.
"""

import numpy as np

from elmo_keras.io.embedding_file import select_layers, sentence_vector
from elmo_keras.preprocessing.char_ids import BOS_TOKEN, EOS_TOKEN


def available_memory():
    """Bytes of memory available to a new allocation (MemAvailable; None where unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class LongLine:
    """One sentence, embedded on demand in blocks of steps.

    Args:
        sentence: the tokens (without `<S>` and `</S>`).
        vectors_for: callable, tokens -> float32 (len, projection_dim): the
            char-CNN vectors (`ElmoEmbedder`'s cache).
        block_model: `ElmoBackbone.direction_block()`.
        block_steps: int. Positions per block and direction.
        n_layers: int. LSTM layers (the output has one more, layer 0).
        units, projection_dim: int. The LSTM's sizes.
    """

    def __init__(self, sentence, vectors_for, block_model, block_steps, n_layers, units, projection_dim,
                 boundaries=(BOS_TOKEN, EOS_TOKEN)):
        self.sentence = sentence
        self._boundaries = boundaries  # the sentence tokens of the model's tokenizer
        self._vectors_for = vectors_for
        self._model = block_model
        self._block = block_steps
        self._n_layers = n_layers
        self._units = units
        self._dim = projection_dim

    @property
    def shape(self):
        """(n_layers + 1, tokens, 2 * projection_dim), as `ElmoEmbedder` gives a sentence."""
        return (self._n_layers + 1, len(self.sentence), 2 * self._dim)

    @property
    def nbytes(self):
        return int(np.prod(self.shape)) * 4

    def pieces(self):
        """Yield `(direction, start, piece)`: float32 (n_layers + 1, m, projection_dim) of tokens [start, start + m).

        Direction 0 is the forward half of each layer's vector, 1 the backward
        half; layer 0 (the char-CNN vector) appears in both. Blocks come in
        computation order: forward ones from the start, backward ones from
        the end.
        """
        tokens = [self._boundaries[0], *self.sentence, self._boundaries[1]]
        length, block, p = len(tokens), self._block, self._dim
        h = np.zeros((self._n_layers, 2, 1, p), np.float32)
        c = np.zeros((self._n_layers, 2, 1, self._units), np.float32)
        for k in range(-(-length // block)):
            m = min(block, length - k * block)
            forward = (k * block, k * block + m)
            backward = (length - k * block - m, length - k * block)
            inputs = np.zeros((2, 1, block, p), np.float32)
            inputs[0, 0, :m] = self._vectors_for(tokens[slice(*forward)])
            inputs[1, 0, :m] = self._vectors_for(tokens[slice(*backward)])[::-1]  # reading order
            mask = np.zeros((2, 1, block), bool)
            mask[:, :, :m] = True
            out = self._model.predict_on_batch(
                {"forward": inputs[0], "backward": inputs[1], "mask": mask, "h": h, "c": c})
            h, c = np.asarray(out["h"], np.float32), np.asarray(out["c"], np.float32)
            layers = np.asarray(out["outputs"], np.float32)[:, :, 0, :m]  # (n_layers, 2, m, p)
            for direction, (start, end) in enumerate((forward, backward)):
                piece = np.concatenate([inputs[direction, :, :m], layers[:, direction]])
                if direction:
                    piece = piece[:, ::-1]  # back to positions in order
                # Sequence positions [start, end) hold tokens [start - 1, end - 1); <S> and </S> are dropped.
                first, last = max(start, 1), min(end, length - 1)
                if first < last:
                    yield direction, first - 1, np.ascontiguousarray(piece[:, first - start : last - start])

    def write(self, out, output_format="all"):
        """Write the vectors into `out`, an array or h5py dataset shaped for `output_format`; return `out`."""
        p = self._dim
        for direction, start, piece in self.pieces():
            half = slice(direction * p, (direction + 1) * p)
            end = start + piece.shape[1]
            if output_format == "all":
                out[:, start:end, half] = piece
            elif output_format == "top":
                out[start:end, half] = piece[-1]
            else:  # average: the mean over layers, one half at a time
                out[start:end, half] = piece.mean(axis=0)
        return out

    def array(self, output_format="all"):
        """The vectors as one float32 array; refuses before any work when it cannot fit in memory."""
        shape = self.output_shape(output_format)
        needed = int(np.prod(shape)) * 4
        available = available_memory()
        if available is not None and needed > available:
            raise MemoryError(
                f"a line of {len(self.sentence):,} tokens gives a float32 {shape} output of "
                f"{needed / 2**30:.1f} GiB, more than the {available / 2**30:.1f} GiB of memory available: "
                f"its vectors are returned as one array, which bounds it; embed_file (`elmo-keras embed`) "
                f"writes such a line to disk block by block, or split the line")
        return self.write(np.empty(shape, np.float32), output_format)

    def sentence_vector(self, output_format="all"):
        """The mean over the tokens of each layer, as `sentence_vector(select_layers(...))`, in bounded memory."""
        total = np.zeros((self._n_layers + 1, 2 * self._dim), np.float64)
        for direction, _, piece in self.pieces():
            total[:, direction * self._dim : (direction + 1) * self._dim] += piece.sum(axis=1, dtype=np.float64)
        mean = (total / max(len(self.sentence), 1)).astype(np.float32)
        if output_format == "all":
            return mean
        return mean[-1] if output_format == "top" else mean.mean(axis=0)

    def output_shape(self, output_format="all"):
        """The shape of the vectors in `output_format` (`all`, `top`, `average`)."""
        layers, tokens, dim = self.shape
        return (layers, tokens, dim) if output_format == "all" else (tokens, dim)


def sentence_vector_of(vectors, output_format="all"):
    """The mean over the tokens of one sentence's vectors, an array or a `LongLine`, in `output_format`."""
    if isinstance(vectors, LongLine):
        return vectors.sentence_vector(output_format)
    return sentence_vector(select_layers(vectors, output_format))
