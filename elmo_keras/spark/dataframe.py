"""Embed a Spark DataFrame's text column with ELMo: `mapInArrow`, one model per Python worker.

`embed_dataframe(df, text_column="text", model="default", layers="top")`
returns `df` with new columns:

- `tokens` array<string>: the text split by `tokenizer` (`str.split()` by
  default; "punctuation", "moses[:LANG]" as in `elmo-keras embed`);
- `embedding`: the vectors, float32 as nested arrays:
  array<array<array<float>>> (layers, tokens, dim) for `layers="all"`,
  array<array<float>> (tokens, dim) for `"top"` (the last layer),
  `"average"` (the mean of the layers) or a list of mix weights (one number
  per layer, n_layers + 1 of them, used as given: sum of weight x layer);
- with `sentence_vectors=True`, instead of `embedding`, `sentence_vector`:
  the mean over the tokens, array<array<float>> (layers, dim) for "all",
  array<float> (dim) otherwise; zeros for an empty sentence.

An empty or all-whitespace text is an empty sentence (no tokens: `[]`
vectors). A null text gives null `tokens` and vectors and is counted in
`counters.null_texts` (an `EmbedCounters`, Spark accumulators, read on the
driver after an action; an accumulator counts each successful task once, so
a retried task is not counted twice, but a DataFrame computed by two actions
counts twice).

Each Python worker process loads its model once (module-level cache keyed
by the model's spec) and reuses it for every partition it runs; each Arrow
batch Spark hands over (`spark.sql.execution.arrow.maxRecordsPerBatch` rows)
is cut into windows of about `WINDOW_TOKENS` tokens that `ElmoEmbedder`
sorts by length and batches within `max_tokens_per_batch` padded tokens
(`elmo_keras.preprocessing.batching.budget_batches`), so that the memory of a
model call and of an output batch stays bounded. Vectors do not depend on
the batching (stateless), so a retried task gives the same rows.

The model: `model="default"` (the bundled one), a released name (`small`,
`medium`, `original`, `original_5.5b`: each worker fetches it once into its
own cache), a model folder or zip (resolved on the driver; the path must be
readable by the workers), or `options_file` + `weight_file`; or `model_dir`,
a SavedModel of `elmo-keras export` (its `tokens` signature, as Beam's
`ElmoSavedModelHandler` calls it: `elmo_keras.serving.tokens_model`).
"""

import glob
import gzip
import logging
import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from elmo_keras.arguments import check_positive_int
from elmo_keras.io.embedding_file import select_layers, sentence_vector
from elmo_keras.preprocessing.batching import DEFAULT_MAX_TOKENS_PER_BATCH
from elmo_keras.preprocessing.split import check_splitter, split_sentence

LAYER_CHOICES = ("all", "top", "average")
OUTPUT_COLUMNS = ("tokens", "embedding", "sentence_vector")
# Tokens per window of one Arrow batch: sorted together by length, embedded, emitted as one output batch.
WINDOW_TOKENS = 16 * DEFAULT_MAX_TOKENS_PER_BATCH
DEFAULT_MODEL = "default"

_LOGGER = logging.getLogger(__name__)
# One model per Python worker process: ModelSpec -> ElmoEmbedder.
_MODELS = {}


@dataclass(frozen=True)
class ModelSpec:
    """Which biLM a worker loads: a released `name` (fetched on the worker), the two files or a SavedModel."""

    options_file: str = None
    weight_file: str = None
    name: str = None
    jit_compile: bool = True
    savedmodel_dir: str = None

    @classmethod
    def resolve(cls, model=DEFAULT_MODEL, options_file=None, weight_file=None, jit_compile=True, model_dir=None):
        """Check the choice on the driver (`elmo_keras.pretrained.resolve_model_files`, as the CLI does).

        `model_dir`: a SavedModel of `elmo-keras export` (the export folder,
        its highest version is used, or one version folder), instead of the
        biLM files (`elmo_keras.serving.tokens_model`, as Beam's
        `ElmoSavedModelHandler`).
        """
        from elmo_keras.pretrained import PRETRAINED_MODELS, check_model_choice, resolve_model_files

        if model_dir is not None:
            if model not in (None, DEFAULT_MODEL) or options_file is not None or weight_file is not None:
                raise ValueError("pass either model_dir (--model-dir) or model / options_file and weight_file "
                                 "(--model / --options-file/--weight-file), not both")
            from elmo_keras.serving.tokens_model import local_savedmodel_dir

            return cls(savedmodel_dir=os.path.abspath(local_savedmodel_dir(model_dir)))
        if model == DEFAULT_MODEL and (options_file is not None or weight_file is not None):
            model = None
        check_model_choice(options_file, weight_file, None if model == DEFAULT_MODEL else model)
        if model == DEFAULT_MODEL or model is None and options_file is None:
            options_file, weight_file = resolve_model_files()
            return cls(os.path.abspath(options_file), os.path.abspath(weight_file), jit_compile=jit_compile)
        if model is not None and os.fspath(model) in PRETRAINED_MODELS:
            resolve_model_files(model=model, progress=False)  # fetched once here too: checks it is reachable
            return cls(name=os.fspath(model), jit_compile=jit_compile)
        options_file, weight_file = resolve_model_files(options_file, weight_file, model)
        return cls(os.path.abspath(options_file), os.path.abspath(weight_file), jit_compile=jit_compile)

    def files(self):
        from elmo_keras.pretrained import resolve_model_files

        if self.name is not None:
            return resolve_model_files(model=self.name, progress=False)
        return self.options_file, self.weight_file

    def num_layers(self):
        """n_layers + 1, from options.json (no model is loaded); None for a SavedModel."""
        import json

        if self.savedmodel_dir is not None:
            return None

        with open(self.files()[0], encoding="utf-8") as f:
            return int(json.load(f)["lstm"]["n_layers"]) + 1

    def load(self):
        """This process's `ElmoEmbedder` for the spec, loaded on first use."""
        embedder = _MODELS.get(self)
        if embedder is None and self.savedmodel_dir is not None:
            embedder = _MODELS[self] = SavedModelEmbedder(self.savedmodel_dir)
        if embedder is None:
            from elmo_keras.embedder import ElmoEmbedder

            options_file, weight_file = self.files()
            embedder = _MODELS[self] = ElmoEmbedder(options_file, weight_file, jit_compile=self.jit_compile)
        return embedder


class SavedModelEmbedder:
    """`embed_sentences` of a SavedModel's `tokens` signature, batched by `budget_batches` as Beam batches it."""

    def __init__(self, export_dir):
        from elmo_keras.serving.tokens_model import load_tokens_signature

        self._embed, self.num_layers, self.dim = load_tokens_signature(export_dir)

    def embed_sentences(self, sentences, max_tokens_per_batch=DEFAULT_MAX_TOKENS_PER_BATCH):
        from elmo_keras.preprocessing.batching import boundary_length, budget_batches

        sentences = [list(s) for s in sentences]
        vectors = [None] * len(sentences)
        for batch in budget_batches([len(s) for s in sentences], None, max_tokens_per_batch,
                                    time_steps=boundary_length):
            for index, array in zip(batch, self._embed([sentences[i] for i in batch])):
                vectors[index] = array
        return vectors


class EmbedCounters:
    """Spark accumulators of one embedding: `null_texts`, `sentences`, `tokens`, `invalid_utf8_lines`.

    Read the values (`counters.values()`) on the driver after an action.
    """

    NAMES = ("null_texts", "sentences", "tokens", "invalid_utf8_lines")

    def __init__(self, spark_context):
        for name in self.NAMES:
            setattr(self, name, spark_context.accumulator(0))

    def values(self):
        return {name: getattr(self, name).value for name in self.NAMES}


def check_layers(layers, num_layers=None):
    """`layers` if it is one of LAYER_CHOICES or a list of `num_layers` numbers (mix weights)."""
    if isinstance(layers, str):
        if layers not in LAYER_CHOICES:
            raise ValueError(f"layers: expected one of {LAYER_CHOICES} or a list of mix weights, found {layers!r}")
        return layers
    try:
        weights = tuple(float(w) for w in layers)
    except (TypeError, ValueError):
        raise ValueError(f"layers: expected one of {LAYER_CHOICES} or a list of mix weights (numbers), "
                         f"found {layers!r}") from None
    if not weights or not all(np.isfinite(weights)):
        raise ValueError(f"layers: mix weights must be finite numbers, one per layer, found {layers!r}")
    if num_layers is not None and len(weights) != num_layers:
        raise ValueError(f"layers: expected {num_layers} mix weights (one per layer: the char-CNN layer and "
                         f"each LSTM layer), found {len(weights)}")
    return weights


def output_schema(layers, sentence_vectors=False):
    """The Spark types of the new columns: [(name, DataType)]."""
    from pyspark.sql.types import ArrayType, FloatType, StringType

    depth = 3 if layers == "all" else 2
    if sentence_vectors:
        depth -= 1
    vectors = FloatType()
    for _ in range(depth):
        vectors = ArrayType(vectors, containsNull=False)
    name = "sentence_vector" if sentence_vectors else "embedding"
    return [("tokens", ArrayType(StringType(), containsNull=False)), (name, vectors)]


def check_text_column(df, text_column):
    """Raise ValueError naming the column unless `df` has `text_column` of type string."""
    from pyspark.sql.types import StringType

    names = df.schema.names
    if text_column not in names:
        raise ValueError(f"text column {text_column!r} not found; the input's columns: "
                         f"{', '.join(names) or '(none)'}")
    data_type = df.schema[text_column].dataType
    if not isinstance(data_type, StringType):
        raise ValueError(f"text column {text_column!r} is of type {data_type.simpleString()}; expected string")
    return text_column


def embed_dataframe(df, text_column="text", model=DEFAULT_MODEL, layers="top", sentence_vectors=False,
                    tokenizer="whitespace", max_tokens_per_batch=DEFAULT_MAX_TOKENS_PER_BATCH, options_file=None,
                    weight_file=None, counters=None, jit_compile=True, model_dir=None):
    """`df` with the columns `tokens` and `embedding` (or `sentence_vector`); see the module docstring.

    Args:
        df: a pyspark DataFrame with a string column `text_column`.
        model: "default" (the bundled model), a released name, a model folder or zip.
        layers: "all", "top" (default), "average" or a list of mix weights (n_layers + 1 numbers).
        sentence_vectors: bool. One vector per row (the mean over its tokens) instead of one per token.
        tokenizer: "whitespace" (default), "punctuation" or "moses[:LANG]".
        max_tokens_per_batch: int. Padded token positions per model call (default 8192).
        options_file, weight_file: the original files, instead of `model`.
        model_dir: a SavedModel of `elmo-keras export` (the export folder or one version folder), instead.
        counters: an `EmbedCounters` to count null texts, sentences and tokens in (optional).
        jit_compile: bool. XLA on the workers (as `ElmoEmbedder`'s).

    Lazy, as any DataFrame transformation: the work runs at the first action.
    """
    check_text_column(df, text_column)
    clash = [name for name in OUTPUT_COLUMNS if name in df.schema.names]
    if clash:
        raise ValueError(f"the input has columns named {', '.join(clash)} already; the embedding adds "
                         f"{', '.join(OUTPUT_COLUMNS[:2])} (and sentence_vector): rename them first")
    check_positive_int(max_tokens_per_batch, "max_tokens_per_batch")
    tokenizer = check_splitter(tokenizer)
    spec = ModelSpec.resolve(model, options_file, weight_file, jit_compile=jit_compile, model_dir=model_dir)
    layers = check_layers(layers, spec.num_layers() if not isinstance(layers, str) else None)
    from pyspark.sql.types import StructField, StructType

    new_fields = output_schema(layers, bool(sentence_vectors))
    schema = StructType(list(df.schema.fields) + [StructField(name, t, True) for name, t in new_fields])
    embed = _ArrowEmbedder(spec, text_column, layers, bool(sentence_vectors), tokenizer, max_tokens_per_batch,
                           counters)
    return df.mapInArrow(embed, schema)


class _ArrowEmbedder:
    """The function `mapInArrow` runs on the workers: Arrow batches in, the same rows with vectors out."""

    def __init__(self, spec, text_column, layers, sentence_vectors, tokenizer, max_tokens_per_batch, counters):
        self.spec = spec
        self.text_column = text_column
        self.layers = layers
        self.sentence_vectors = sentence_vectors
        self.tokenizer = tokenizer
        self.max_tokens_per_batch = max_tokens_per_batch
        self.counters = counters

    def __call__(self, batches):
        embedder = None
        for batch in batches:
            texts = batch.column(batch.schema.get_field_index(self.text_column)).to_pylist()
            tokens = [None if text is None else split_sentence(text, self.tokenizer) for text in texts]
            for start, stop in _windows(tokens, WINDOW_TOKENS):
                if embedder is None:
                    embedder = self.spec.load()
                yield self._embed_rows(embedder, batch.slice(start, stop - start), tokens[start:stop])

    def _vectors(self, embedding):
        if isinstance(self.layers, tuple):
            if len(self.layers) != embedding.shape[0]:
                raise ValueError(f"layers: expected {embedding.shape[0]} mix weights (one per layer of the "
                                 f"model), found {len(self.layers)}")
            mixed = np.tensordot(np.asarray(self.layers, np.float32), embedding, axes=1).astype(np.float32)
        else:
            mixed = select_layers(embedding, self.layers)
        return sentence_vector(mixed) if self.sentence_vectors else mixed

    def _embed_rows(self, embedder, batch, tokens):
        present = [t for t in tokens if t is not None]
        embedded = iter(embedder.embed_sentences(present, max_tokens_per_batch=self.max_tokens_per_batch))
        vectors = [None if t is None else np.ascontiguousarray(self._vectors(next(embedded)), np.float32)
                   for t in tokens]
        if self.counters is not None:
            self.counters.null_texts.add(len(tokens) - len(present))
            self.counters.sentences.add(len(present))
            self.counters.tokens.add(sum(len(t) for t in present))
        depth = 3 if self.layers == "all" else 2
        if self.sentence_vectors:
            depth -= 1
        token_column = pa.array(tokens, pa.list_(pa.string()))
        columns = list(batch.columns) + [token_column, nested_list_array(vectors, depth)]
        names = list(batch.schema.names) + ["tokens", "sentence_vector" if self.sentence_vectors else "embedding"]
        return pa.RecordBatch.from_arrays(columns, names=names)


def _windows(tokens, window_tokens):
    """(start, stop) row ranges of about `window_tokens` tokens each (a null row counts as one)."""
    start, count = 0, 0
    for i, t in enumerate(tokens):
        count += 1 + (len(t) if t is not None else 0)
        if count >= window_tokens:
            yield start, i + 1
            start, count = i + 1, 0
    if start < len(tokens):
        yield start, len(tokens)


def nested_list_array(arrays, depth):
    """An Arrow list array, `depth` levels deep, of float32 `arrays` (each of `depth` dimensions) or None.

    >>> nested_list_array([np.ones((2, 1), np.float32), None, np.zeros((0, 1), np.float32)], 2).to_pylist()
    [[[1.0], [1.0]], None, []]
    """
    present = [a for a in arrays if a is not None]
    for a in present:
        if a.ndim != depth:
            raise ValueError(f"expected arrays of {depth} dimensions, found shape {a.shape}")
    values = np.concatenate([a.ravel() for a in present]) if present else np.zeros(0, np.float32)
    array = pa.array(values.astype(np.float32, copy=False), pa.float32())
    for level in reversed(range(depth)):
        if level == 0:
            counts = np.array([0 if a is None else a.shape[0] for a in arrays], np.int64)
        else:
            counts = np.concatenate([np.full(int(np.prod(a.shape[:level])), a.shape[level], np.int64)
                                     for a in present] or [np.zeros(0, np.int64)])
        offsets = np.zeros(len(counts) + 1, np.int32)
        np.cumsum(counts, out=offsets[1:])
        mask = pa.array([a is None for a in arrays]) if level == 0 and len(present) < len(arrays) else None
        array = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), array, mask=mask)
    return array


# Text files as lines.

def local_pattern(pattern):
    """The local path of `pattern` (no scheme or file:), or None for another filesystem (hdfs://, s3a://)."""
    if pattern.startswith("file:"):
        return pattern[len("file:"):].replace("///", "/", 1) if pattern.startswith("file:///") else pattern[5:]
    if "://" in pattern:
        return None
    return pattern


def check_input_patterns(patterns):
    """Raise FileNotFoundError naming the first local pattern that matches no file."""
    for pattern in patterns:
        local = local_pattern(pattern)
        if local is not None and not [p for p in glob.glob(local) if os.path.isfile(p)]:
            raise FileNotFoundError(f"{pattern}: no file matches the input")


def read_text_lines(spark, patterns, counters=None, num_partitions=None):
    """A DataFrame (file string, line long, text string): every line of the files matching `patterns`.

    `patterns`: a path or glob (or a list), local or on any filesystem Spark
    reads; `file` is the file's URI as Spark names it (`file:/data/a.txt`,
    `hdfs://...`). Each file is read whole by one task (`SparkContext.binaryFiles`,
    so a file must fit in a task's memory; many files spread over the cluster),
    so that line numbers (0-based) are exact; lines end at b"\\n" (a final
    line without one counts; a newline at the very end starts no extra
    line); `.gz` files are decompressed. A line that is not valid UTF-8 is
    skipped and counted in `counters.invalid_utf8_lines`. The lines are then
    spread over `num_partitions` partitions (default: the cluster's default
    parallelism) for embedding.
    """
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    check_input_patterns(patterns)
    context = spark.sparkContext
    invalid = counters.invalid_utf8_lines if counters is not None else None
    rdd = context.binaryFiles(",".join(patterns)).flatMap(_FileLines(invalid))
    df = spark.createDataFrame(rdd, "file string, line long, text string")
    return df.repartition(num_partitions or context.defaultParallelism)


class _FileLines:
    """(file, line, text) of every valid UTF-8 line of one (path, bytes) pair; count the others."""

    def __init__(self, invalid_counter):
        self.invalid_counter = invalid_counter

    def __call__(self, item):
        path, content = item
        if path.endswith(".gz"):
            content = gzip.decompress(content)
        lines = content.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for number, raw in enumerate(lines):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                if self.invalid_counter is not None:
                    self.invalid_counter.add(1)
                _LOGGER.warning("%s: line %d (0-based): not valid UTF-8 (%s at byte %d); the line is skipped",
                                path, number, error.reason, error.start)
                continue
            yield path, number, text
