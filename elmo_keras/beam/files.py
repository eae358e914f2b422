"""Beam I/O for embedding: lines of text files in, Parquet or TFRecord shards of vectors out.

`ReadLines(pattern)` gives `(file, line, bytes)` for every line of every
matched file: `file` is the path as matched, `line` its 0-based number in the
file, the bytes without the newline (decoding is `EmbedSentences`' job, so that
a line of invalid UTF-8 is counted and skipped there rather than failing the
read). Lines end at b"\\n", as Python's own file iteration splits them (a final
line without a newline counts; a newline at the very end starts no extra
line); `.gz` and other compressed files are read through Beam's compression
by extension. Each file is read whole by one worker, in order, so that line
numbers are exact; then the lines are reshuffled across workers. A very large
single file is therefore read by one worker (splitting files by byte offsets,
with line numbers from a counting pass, is a later improvement); many files of
moderate size spread well.

`WriteEmbeddings(prefix, "parquet" | "tfrecord")` writes records of
`EmbedSentences` to `prefix-SSSSS-of-NNNNN.parquet` (or `.tfrecord`) with
Beam's file sinks: each worker writes temporary files, and the finished
shards are renamed into place when the whole pipeline has succeeded, so a
shard never appears half-written and the output of a failed or retried bundle
never appears. Parquet columns (`PARQUET_SCHEMA`): `file` string, `line`
int64, `tokens` list<string>, `embedding` list<float32> (row-major), `shape`
list<int32> ((layers, tokens, dim) or (tokens, dim)). TFRecord: one
`tf.train.Example` per sentence with the same features (`file` bytes, `line`
int64, `tokens` bytes list, `embedding` float list, `shape` int64 list).

Example (Parquet and back):

>>> import glob, os, tempfile
>>> import numpy as np, pyarrow.parquet as pq
>>> import apache_beam as beam
>>> from apache_beam.runners.portability.fn_api_runner import FnApiRunner
>>> prefix = os.path.join(tempfile.mkdtemp(), "vectors")
>>> record = {"file": "a.txt", "line": 0, "tokens": ["hi"], "embedding": np.ones((3, 1, 4), np.float32)}
>>> with beam.Pipeline(runner=FnApiRunner()) as pipeline:
...     _ = pipeline | beam.Create([record]) | WriteEmbeddings(prefix, "parquet")
>>> table = pq.read_table(glob.glob(prefix + "-*.parquet"))
>>> table.column("shape").to_pylist(), table.column("embedding").to_pylist()[0][:2]
([[3, 1, 4]], [1.0, 1.0])
"""

import re

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.utils.windowed_value import WindowedValue

METRICS_NAMESPACE = "elmo_keras"
FORMATS = ("parquet", "tfrecord")
SUFFIXES = {"parquet": ".parquet", "tfrecord": ".tfrecord"}

PARQUET_SCHEMA = pa.schema([
    ("file", pa.string()),
    ("line", pa.int64()),
    ("tokens", pa.list_(pa.string())),
    ("embedding", pa.list_(pa.float32())),
    ("shape", pa.list_(pa.int32())),
])
# Rows per Parquet row group, at most; and embedding bytes per row group, at most.
TABLE_MAX_ROWS = 1024
TABLE_MAX_BYTES = 64 << 20


def _check_format(output_format):
    if output_format not in FORMATS:
        raise ValueError(f"format: expected one of {FORMATS}, found {output_format!r}")
    return output_format


def check_tfrecord_support():
    """Raise ValueError unless a CRC32C library for Beam's TFRecord sink is installed."""
    import importlib.util

    if not any(importlib.util.find_spec(name) for name in ("google_crc32c", "snappy", "crcmod")):
        raise ValueError("TFRecord output needs a CRC32C library for Beam's WriteToTFRecord: pip install "
                         "google-crc32c (the elmo-keras[beam] extra has it), or use the parquet format")


def shard_regex(prefix, output_format):
    """The names Beam's sinks give the shards of `prefix`: `prefix-SSSSS-of-NNNNN<suffix>`."""
    return re.compile(re.escape(prefix) + r"-\d{5,}-of-\d{5,}" + re.escape(SUFFIXES[_check_format(output_format)]))


def existing_shards(prefix, output_format):
    """Sorted paths of the shards of `prefix` that exist (any Beam filesystem)."""
    pattern = prefix + "-*-of-*" + SUFFIXES[_check_format(output_format)]
    bare = is_bare_local_pattern(prefix)
    try:
        metadata = FileSystems.match(["./" + pattern if bare else pattern])[0].metadata_list
    except Exception:  # noqa: BLE001 - BeamIOError where the folder does not exist
        return []
    regex = shard_regex(prefix, output_format)
    paths = (m.path[2:] if bare and m.path.startswith("./") else m.path for m in metadata)
    return sorted(path for path in paths if regex.fullmatch(path))


def parquet_rows(paths):
    """Rows in the Parquet files `paths` (any Beam filesystem), from their footers."""
    import pyarrow.parquet as pq

    total = 0
    for path in paths:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            total += pq.ParquetFile(f).metadata.num_rows
    return total


def remove_stale_shards(written, prefix, output_format):
    """Delete shards of `prefix` that this run did not write (from a run with another shard count)."""
    written = set(written)
    stale = [path for path in existing_shards(prefix, output_format) if path not in written]
    if stale:
        FileSystems.delete(stale)
    return stale


def match_files(pattern):
    """Sorted paths of the files matching the glob `pattern` (any Beam filesystem), as matched.

    A local pattern with no folder part (`*.txt`) matches in the current
    folder and gives bare names (`a.txt`), as the shell does. Raises
    FileNotFoundError when nothing matches.
    """
    bare = is_bare_local_pattern(pattern)
    try:
        metadata = FileSystems.match(["./" + pattern if bare else pattern])[0].metadata_list
    except Exception as error:  # noqa: BLE001 - BeamIOError: a folder that is not there, a bad pattern
        raise FileNotFoundError(f"{pattern}: cannot match the input pattern: {error}") from None
    paths = sorted(m.path[2:] if bare and m.path.startswith("./") else m.path for m in metadata
                   if not m.path.endswith(("/", "\\")))
    if not paths:
        raise FileNotFoundError(f"{pattern}: no file matches the input pattern")
    return paths


def is_bare_local_pattern(pattern):
    return FileSystems.get_scheme(pattern) is None and "/" not in pattern


class _MatchDoFn(beam.DoFn):
    def process(self, pattern):
        yield from match_files(pattern)


class _ReadLinesDoFn(beam.DoFn):
    def __init__(self):
        self._files = Metrics.counter(METRICS_NAMESPACE, "files")
        self._lines = Metrics.counter(METRICS_NAMESPACE, "lines")

    def process(self, path):
        number = 0
        with FileSystems.open(path, compression_type=CompressionTypes.AUTO) as f:
            while True:
                raw = f.readline()
                if not raw:
                    break
                yield path, number, raw[:-1] if raw.endswith(b"\n") else raw
                number += 1
        self._files.inc()
        self._lines.inc(number)


class ReadLines(beam.PTransform):
    """Every line of the files matching `patterns`, as `(file, line, bytes)`; see the module docstring.

    Args:
        patterns: a glob (`corpus/*.txt`, `gs://bucket/text/*.gz`) or a list of them;
            a file matched by several patterns is read once.
        reshuffle: bool. Spread the files, then the lines, across workers (default True).
    """

    def __init__(self, patterns, reshuffle=True, label=None):
        super().__init__(label)
        self.patterns = [patterns] if isinstance(patterns, str) else list(patterns)
        self.reshuffle = reshuffle

    def expand(self, pbegin):
        paths = (pbegin
                 | "Patterns" >> beam.Create(self.patterns)
                 | "Match" >> beam.ParDo(_MatchDoFn())
                 | "Distinct" >> beam.Distinct())
        if self.reshuffle:
            paths = paths | "SpreadFiles" >> beam.Reshuffle()
        lines = paths | "Lines" >> beam.ParDo(_ReadLinesDoFn())
        if self.reshuffle:
            lines = lines | "SpreadLines" >> beam.Reshuffle()
        return lines


def records_to_table(records):
    """A `pyarrow.Table` of `PARQUET_SCHEMA` for records of `EmbedSentences`."""
    embeddings = [np.asarray(r["embedding"], dtype=np.float32) for r in records]
    offsets = np.zeros(len(records) + 1, dtype=np.int32)
    np.cumsum([e.size for e in embeddings], out=offsets[1:])
    values = np.concatenate([e.ravel() for e in embeddings]) if embeddings else np.zeros(0, np.float32)
    columns = [
        pa.array([r["file"] for r in records], pa.string()),
        pa.array([r["line"] for r in records], pa.int64()),
        pa.array([list(r["tokens"]) for r in records], pa.list_(pa.string())),
        pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, pa.float32()),
                                 type=PARQUET_SCHEMA.field("embedding").type),
        pa.array([list(e.shape) for e in embeddings], pa.list_(pa.int32())),
    ]
    return pa.Table.from_arrays(columns, schema=PARQUET_SCHEMA)


def record_to_example(record):
    """A `tf.train.Example` (serialized) with the features of the Parquet columns."""
    from tensorflow.core.example import example_pb2, feature_pb2

    embedding = np.asarray(record["embedding"], dtype=np.float32)
    features = {
        "file": feature_pb2.Feature(bytes_list=feature_pb2.BytesList(
            value=[] if record["file"] is None else [record["file"].encode("utf-8")])),
        "line": feature_pb2.Feature(int64_list=feature_pb2.Int64List(
            value=[] if record["line"] is None else [record["line"]])),
        "tokens": feature_pb2.Feature(bytes_list=feature_pb2.BytesList(
            value=[t.encode("utf-8") for t in record["tokens"]])),
        "embedding": feature_pb2.Feature(float_list=feature_pb2.FloatList(value=embedding.ravel())),
        "shape": feature_pb2.Feature(int64_list=feature_pb2.Int64List(value=embedding.shape)),
    }
    return example_pb2.Example(features=feature_pb2.Features(feature=features)).SerializeToString()


class _ToTables(beam.DoFn):
    """Records to `pyarrow.Table`s of at most `TABLE_MAX_ROWS` rows or `TABLE_MAX_BYTES` of vectors."""

    def start_bundle(self):
        self._buffers = {}  # window -> [records, embedding bytes, latest timestamp]

    def process(self, record, window=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
        buffer = self._buffers.setdefault(window, [[], 0, timestamp])
        buffer[0].append(record)
        buffer[1] += np.asarray(record["embedding"]).nbytes
        buffer[2] = max(buffer[2], timestamp)
        if len(buffer[0]) >= TABLE_MAX_ROWS or buffer[1] >= TABLE_MAX_BYTES:
            del self._buffers[window]
            yield WindowedValue(records_to_table(buffer[0]), buffer[2], (window,))

    def finish_bundle(self):
        buffers, self._buffers = self._buffers, {}
        for window, (records, _, timestamp) in buffers.items():
            yield WindowedValue(records_to_table(records), timestamp, (window,))


class WriteEmbeddings(beam.PTransform):
    """Write records of `EmbedSentences` as shards; return the PCollection of written paths.

    Args:
        prefix: path prefix of the shards (`out/vectors` gives
            `out/vectors-00000-of-00004.parquet`, ...); any Beam filesystem.
        output_format: "parquet" (default) or "tfrecord".
        num_shards: int. 0 (default) lets the runner choose (one shard per
            bundle that wrote); a fixed count adds a shuffle.
        remove_stale_shards: bool. After writing, delete shards of `prefix`
            with another shard count, left by an earlier run (for overwriting).
    """

    def __init__(self, prefix, output_format="parquet", num_shards=0, remove_stale_shards=False, label=None):
        super().__init__(label)
        self.prefix = prefix
        self.output_format = _check_format(output_format)
        if self.output_format == "tfrecord":
            check_tfrecord_support()
        self.num_shards = num_shards
        self.remove_stale_shards = remove_stale_shards

    def expand(self, records):
        suffix = SUFFIXES[self.output_format]
        if self.output_format == "parquet":
            written = (records
                       | "ToTables" >> beam.ParDo(_ToTables())
                       | "WriteParquet" >> beam.io.WriteToParquetBatched(
                           self.prefix, schema=PARQUET_SCHEMA, file_name_suffix=suffix, num_shards=self.num_shards,
                           use_compliant_nested_type=True))
        else:
            written = (records
                       | "ToExamples" >> beam.Map(record_to_example)
                       | "WriteTFRecord" >> beam.io.WriteToTFRecord(
                           self.prefix, file_name_suffix=suffix, num_shards=self.num_shards))
        if self.remove_stale_shards:
            _ = (written
                 | "AllWritten" >> beam.combiners.ToList()
                 | "RemoveStale" >> beam.Map(remove_stale_shards, self.prefix, self.output_format))
        return written
