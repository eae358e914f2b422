"""The files of `ElmoEmbedder.embed_file`: sentences in, finished chunks, AllenNLP's hdf5 out.

Knows files, not models: the embedder computes, this module reads and writes.

Example:

>>> import os, tempfile
>>> folder = tempfile.mkdtemp()
>>> path = os.path.join(folder, "in.txt")
>>> _ = open(path, "w").write("the cat\\n\\nsat .\\n")
>>> read_sentences(path)
['the cat', '', 'sat .']
"""

import collections
import errno
import glob
import json
import os
import shutil

import h5py
import numpy as np

from elmo_keras.arguments import check_input_file
from elmo_keras.io.atomic import atomic_path

_CHUNK_PREFIX = "chunk_"
_LINE_PREFIX = "line_"
# Tokens per copy of a streamed line's vectors from its work file into the output.
COPY_TOKENS = 4096
OUTPUT_FORMATS = ("all", "top", "average")
# The dataset `embed_file(sentence_vectors=True)` writes.
SENTENCE_VECTORS = "sentence_vectors"


def select_layers(embeddings, output_format):
    """`all` keeps (layers, n, dim); `top` the last layer; `average` the mean."""
    if output_format == "all":
        return embeddings
    if output_format == "top":
        return embeddings[-1]
    if output_format == "average":
        return np.mean(embeddings, axis=0)
    raise ValueError(f"output_format must be one of {OUTPUT_FORMATS}, got {output_format!r}")


def sentence_vector(embedding):
    """The mean over the tokens of one sentence's vectors: (..., tokens, dim) -> (..., dim).

    An empty sentence (no token) gives zeros.

    >>> sentence_vector(np.ones((3, 0, 4), "float32")).shape
    (3, 4)
    """
    if embedding.shape[-2] == 0:
        return np.zeros(embedding.shape[:-2] + embedding.shape[-1:], embedding.dtype)
    return embedding.mean(axis=-2)


class InputFileError(ValueError):
    """An input text file cannot be embedded (the message names file and line)."""


def read_sentences(input_file):
    """Read one sentence per line; return the stripped lines.

    An empty (or all-whitespace) line is an empty sentence: it keeps its
    index and gets an array with 0 tokens, as `embed_sentence([])` does.
    Raises `InputFileError` for a missing, unreadable or empty file and for
    invalid UTF-8, naming the file and the (1-based) line.
    """
    try:
        check_input_file(input_file)
    except OSError as error:
        raise InputFileError(str(error)) from None
    sentences = []
    with open(input_file, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                sentences.append(raw.decode("utf-8").strip())
            except UnicodeDecodeError as e:
                raise InputFileError(f"{input_file}: line {number}: not valid UTF-8 ({e.reason} at byte "
                                     f"{e.start})") from e
    if not sentences:
        raise InputFileError(f"{input_file}: the input file is empty; expected one sentence per line")
    return sentences


def sentence_keys(input_file, sentences, use_sentence_keys):
    """Dataset names: the line index, or the sentence itself (then non-empty and unique)."""
    if not use_sentence_keys:
        return [str(i) for i in range(len(sentences))]
    seen = set()
    for number, sentence in enumerate(sentences, start=1):
        if not sentence:
            raise InputFileError(f"{input_file}: line {number} is empty; --use-sentence-keys names datasets "
                                 f"by sentence and needs non-empty lines")
        if sentence in seen:
            raise InputFileError(f"{input_file}: the sentence {sentence!r} occurs more than once; "
                                 f"--use-sentence-keys needs unique lines")
        seen.add(sentence)
    return list(sentences)


class StreamedVectors(collections.namedtuple("StreamedVectors", ["shape", "fill"])):
    """A sentence's float32 vectors of `shape`, too large to hold at once: `fill(dataset)` writes them into it."""


class StoredLine:
    """A streamed sentence's vectors in its own file of a chunk store (`ChunkStore.read` gives it)."""

    def __init__(self, path):
        self.path = path

    def copy_to(self, group, name):
        """Create dataset `name` in `group` with the vectors, `COPY_TOKENS` tokens at a time."""
        with h5py.File(self.path, "r") as f:
            source = f["vectors"]
            target = group.create_dataset(name, shape=source.shape, dtype=source.dtype)
            tokens = source.shape[-2]
            for start in range(0, tokens, COPY_TOKENS):
                part = (Ellipsis, slice(start, min(start + COPY_TOKENS, tokens)), slice(None))
                target[part] = source[part]


class ChunkStore:
    """Finished chunks of an `embed_file` run, one `.npz` each, in `<output>.partial/`.

    `fingerprint` (a JSON-able dict: input and weight digests, settings)
    is stored beside them; a run with another fingerprint discards them.
    A sentence given as `StreamedVectors` is written block by block to a
    file of its own, before its chunk (which then holds an empty
    placeholder), so that it is never held in memory whole.
    """

    def __init__(self, output_file, fingerprint):
        self.directory = output_file + ".partial"
        manifest = os.path.join(self.directory, "manifest.json")
        if os.path.isdir(self.directory):
            try:
                with open(manifest, encoding="utf-8") as f:
                    same = json.load(f) == fingerprint
            except (OSError, ValueError):
                same = False
            if not same:
                shutil.rmtree(self.directory)
        if not os.path.isdir(self.directory):
            try:
                os.makedirs(self.directory)
                with atomic_path(manifest) as tmp, open(tmp, "w", encoding="utf-8") as f:
                    json.dump(fingerprint, f)
            except OSError as e:
                shutil.rmtree(self.directory, ignore_errors=True)
                raise OSError(e.errno, f"{manifest}: cannot start the work folder: {e.strerror or e}") from e

    def _path(self, start):
        return os.path.join(self.directory, f"{_CHUNK_PREFIX}{start:012d}.npz")

    def has(self, start):
        return os.path.exists(self._path(start))

    def starts(self):
        """First sentence index of every finished chunk, in order."""
        return sorted(int(name[len(_CHUNK_PREFIX):-4]) for name in os.listdir(self.directory)
                      if name.startswith(_CHUNK_PREFIX) and name.endswith(".npz"))

    def _line_path(self, index):
        return os.path.join(self.directory, f"{_LINE_PREFIX}{index:012d}.h5")

    def write(self, start, vectors):
        """Write the chunk that starts at sentence `start`, atomically.

        `vectors`: one float32 array or `StreamedVectors` per sentence. A
        failed write (a full disk: ENOSPC) leaves no partial chunk and
        raises OSError naming the chunk; the finished chunks are kept.
        """
        path = where = self._path(start)
        try:
            arrays = []
            for index, item in enumerate(vectors, start=start):
                if isinstance(item, StreamedVectors):
                    where = self._line_path(index)
                    with atomic_path(where) as tmp, h5py.File(tmp, "w") as f:
                        item.fill(f.create_dataset("vectors", shape=item.shape, dtype="float32"))
                    item = np.zeros((0,), np.float32)  # a placeholder: the line's own file holds it
                arrays.append(item)
            where = path
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as f:
                    np.savez(f, *arrays)
        except OSError as e:
            raise OSError(e.errno, f"{where}: cannot write the chunk of sentences from {start}: "
                                   f"{e.strerror or e}; the {len(self.starts())} finished chunk(s) in "
                                   f"{self.directory} are kept: make room and run the same command again "
                                   f"to resume") from e

    def read(self, start):
        """The chunk's vectors: arrays, and a `StoredLine` for each streamed sentence."""
        with np.load(self._path(start)) as data:
            vectors = [data[f"arr_{i}"] for i in range(len(data.files))]
        return [StoredLine(self._line_path(index)) if os.path.exists(self._line_path(index)) else vector
                for index, vector in enumerate(vectors, start=start)]

    def remove(self):
        shutil.rmtree(self.directory, ignore_errors=True)


def write_allennlp_hdf5(output_file, chunks, keys, sentences, forget_sentences=False, stacked=None):
    """Assemble the finished chunks into the hdf5 AllenNLP's `elmo` command writes.

    One dataset per sentence, named by `keys`, plus `sentence_to_index`
    (JSON of sentence to index) unless `forget_sentences`. The file appears
    atomically, and only when it holds a vector for every sentence.
    `stacked=(name, row_shape)`: every chunk is one float32 array of its
    sentences' vectors, (sentences, *row_shape), and the file holds them in
    one dataset `name`, (len(keys), *row_shape), instead of one per sentence.

    A failed write (a full disk: ENOSPC) raises OSError naming the output;
    an earlier `output_file` and the finished chunks stay as they were, and
    the temporary file is removed, so the same command finishes once there
    is room. Temporary files that a killed assembly of the same output left
    beside it are removed first.
    """
    remove_stale_temporaries(output_file)
    try:
        with atomic_path(output_file) as tmp:
            written = 0
            with h5py.File(tmp, "w") as out:
                if stacked is not None:
                    name, row_shape = stacked
                    dataset = out.create_dataset(name, shape=(len(keys), *row_shape), dtype="float32")
                for start in chunks.starts():
                    if stacked is not None:
                        (block,) = chunks.read(start)
                        dataset[start : start + len(block)] = block
                        written += len(block)
                        continue
                    for offset, vector in enumerate(chunks.read(start)):
                        if isinstance(vector, StoredLine):
                            vector.copy_to(out, keys[start + offset])
                        else:
                            out.create_dataset(keys[start + offset], data=vector)
                        written += 1
                if not forget_sentences:
                    index = {s: str(i) for i, s in enumerate(sentences)}
                    out.create_dataset("sentence_to_index", (1,), dtype=h5py.string_dtype(),
                                       data=[json.dumps(index)])
            if written != len(keys):
                raise RuntimeError(f"{output_file}: {written} of {len(keys)} sentences embedded; the output "
                                   f"was not written (run the same command again to finish)")
    except OSError as e:
        raise OSError(e.errno, f"{output_file}: cannot write the output: {e.strerror or e}; nothing was "
                               f"replaced, and the finished chunks in {chunks.directory} are kept: make room "
                               f"and run the same command again to finish") from e


def check_disk_room(output_file, needed_bytes):
    """Refuse before any work when the output's folder has less free space than `needed_bytes`.

    Disk space is what bounds `embed_file`: it holds one block of a long
    line in memory, and writes the rest to the work folder, then the output.
    """
    folder = os.path.dirname(os.path.abspath(output_file))
    free = shutil.disk_usage(folder).free
    if needed_bytes > free:
        raise OSError(errno.ENOSPC, f"{output_file}: the vectors need about {needed_bytes / 2**30:.2f} GiB on disk "
                                    f"(the work folder {os.path.basename(output_file)}.partial/ and the output), "
                                    f"and {folder} has {free / 2**30:.2f} GiB free: make room, write the output "
                                    f"elsewhere, or ask for fewer layers (--top, --average)")


def remove_stale_temporaries(output_file):
    """Remove the temporary files (`.<name>.*.tmp`) that killed writes of `output_file` left beside it."""
    folder, name = os.path.split(os.path.abspath(output_file))
    for path in glob.glob(os.path.join(glob.escape(folder), glob.escape(f".{name}.") + "*.tmp")):
        try:
            os.remove(path)
        except OSError:
            pass
