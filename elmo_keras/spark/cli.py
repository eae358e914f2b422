"""The `elmo-keras embed-spark` command: embed text files or a table's text column with Apache Spark.

Example (a local Spark with every core; `--master spark://host:7077`, `yarn`, ... for a cluster):

    elmo-keras embed-spark --input 'corpus/*.txt' --output vectors.parquet --layers top

reads every line of the matching files (with its file and 0-based line
number), or with `--text-column COLUMN` the rows of a Parquet path or a
table, embeds them (`elmo_keras.spark.embed_dataframe`: the bundled model
unless `--model` or `--options-file/--weight-file` says otherwise) and writes
a Parquet folder: the input columns plus `tokens` and `embedding` (or
`sentence_vector`). Spark writes into a temporary sibling folder, renamed
to the output when the job has succeeded, so the output is never an
incomplete one; an existing output is replaced only with `--overwrite`.
A summary goes to stdout as one JSON line, the counts to stderr.

Building the parser imports neither PySpark nor TensorFlow; the command
needs the `spark` extra and a Java 17+ runtime, checked before any work.
"""

import os
import sys
import time
import uuid

from elmo_keras.arguments import positive_int
from elmo_keras.cli_arguments import add_overwrite_argument, add_tokenizer_argument
from elmo_keras.preprocessing.batching import DEFAULT_MAX_TOKENS_PER_BATCH

LAYER_NAMES = ("all", "top", "average")


def parse_layers(value):
    """`all`, `top`, `average` or comma-separated mix weights (`0.2,0.3,0.5`)."""
    import argparse

    if value in LAYER_NAMES:
        return value
    try:
        weights = [float(w) for w in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(LAYER_NAMES)} or comma-separated mix "
                                         f"weights (one per layer, such as 0.2,0.3,0.5), found {value!r}") from None
    return weights


def _conf(value):
    import argparse

    if "=" not in value:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, found {value!r}")
    return tuple(value.split("=", 1))


def _is_table_name(value):
    """A table name (`db.table`, `table`) rather than a path: no folder part, nothing there on disk."""
    return "/" not in value and ":" not in value and not os.path.exists(value)


def _check_input(args):
    """The input exists (local paths; a table is looked up once Spark runs)."""
    from elmo_keras.spark.dataframe import check_input_patterns, local_pattern

    if args.text_column is None:
        check_input_patterns([args.input])
        return "text files"
    if _is_table_name(args.input):
        return "table"
    local = local_pattern(args.input)
    if local is not None and not os.path.exists(local):
        raise FileNotFoundError(f"{args.input}: input Parquet path not found")
    return "parquet"


def _check_output(args):
    from elmo_keras.spark.dataframe import local_pattern

    local = local_pattern(args.output)
    if local is None:
        return
    if os.path.exists(local) and not args.overwrite:
        raise FileExistsError(f"{args.output}: exists already; pass --overwrite to replace it")
    existing = os.path.dirname(os.path.abspath(local))
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{args.output}: cannot write in {existing}")


def spark_session(master=None, app_name="elmo-keras embed-spark", conf=(), verbose=False):
    """(SparkSession, whether this call started it): `master` (default local[*]), quiet, with a progress bar.

    Called where a session is active already (`main([...])` from Python, a
    notebook), that session is used as it is, and left running.

    The Python workers get this process's Python, PYTHONPATH and a quiet
    TensorFlow; SPARK_HOME defaults to the PySpark package (what
    `local-cluster[...]` and the standalone scripts need).
    """
    import pyspark
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    os.environ.setdefault("SPARK_HOME", os.path.dirname(pyspark.__file__))
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (SparkSession.builder.master(master or "local[*]").appName(app_name)
               .config("spark.ui.showConsoleProgress", "true")
               .config("spark.executorEnv.TF_CPP_MIN_LOG_LEVEL", os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")))
    if os.environ.get("PYTHONPATH"):
        builder = builder.config("spark.executorEnv.PYTHONPATH", os.environ["PYTHONPATH"])
    for key, value in conf:
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if not verbose:
        spark.sparkContext.setLogLevel("ERROR")
    return spark, True


class HadoopPaths:
    """exists / rename / delete on any filesystem Spark writes (Hadoop's FileSystem, through the JVM)."""

    def __init__(self, spark):
        self._jvm = spark.sparkContext._jvm
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _path(self, path):
        jpath = self._jvm.org.apache.hadoop.fs.Path(path)
        return jpath, jpath.getFileSystem(self._conf)

    def exists(self, path):
        jpath, fs = self._path(path)
        return fs.exists(jpath)

    def delete(self, path):
        jpath, fs = self._path(path)
        return fs.delete(jpath, True)

    def rename(self, source, target):
        jsource, fs = self._path(source)
        if not fs.rename(jsource, self._path(target)[0]):
            raise OSError(f"could not rename {source} to {target}")


def sibling(path, tag):
    """A hidden sibling of `path`: `parent/.name.TAG-RANDOM` (Spark's readers skip names starting with '.')."""
    parent, name = path.rstrip("/").rsplit("/", 1) if "/" in path.rstrip("/") else ("", path.rstrip("/"))
    return f"{parent + '/' if parent else ''}.{name}.{tag}-{uuid.uuid4().hex[:8]}"


def write_parquet_atomically(df, output, overwrite, paths):
    """Write `df` to a temporary sibling of `output`, then rename it to `output` (replacing it with `overwrite`)."""
    if paths.exists(output) and not overwrite:
        raise FileExistsError(f"{output}: exists already; pass --overwrite to replace it")
    temporary = sibling(output, "incomplete")
    try:
        df.write.parquet(temporary)
    except BaseException:
        paths.delete(temporary)
        raise
    replaced = None
    if paths.exists(output):
        replaced = sibling(output, "replaced")
        paths.rename(output, replaced)
    paths.rename(temporary, output)
    if replaced is not None:
        paths.delete(replaced)


def _read_input(spark, args, kind, counters):
    from elmo_keras.spark.dataframe import read_text_lines

    if kind == "text files":
        return read_text_lines(spark, args.input, counters, num_partitions=args.partitions), "text"
    from pyspark.errors import AnalysisException

    try:
        df = spark.table(args.input) if kind == "table" else spark.read.parquet(args.input)
    except AnalysisException as error:
        first = str(error).strip().splitlines()[0]
        raise FileNotFoundError(f"{args.input}: cannot read the input {kind}: {first}") from None
    if args.partitions:
        df = df.repartition(args.partitions)
    return df, args.text_column


def _embed_spark(args):
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        raise ValueError("embed-spark needs PySpark: pip install 'elmo-keras[spark]'")
    from elmo_keras.spark.dataframe import EmbedCounters, ModelSpec, check_layers, embed_dataframe
    from elmo_keras.spark.java import check_java

    # Everything that can be checked before Spark starts: Java, paths, model, layers.
    check_java()
    kind = _check_input(args)
    _check_output(args)
    spec = ModelSpec.resolve(args.model or "default", args.options_file, args.weight_file,
                             jit_compile=args.jit_compile, model_dir=args.model_dir)
    layers = check_layers(args.layers, None if isinstance(args.layers, str) else spec.num_layers())
    start = time.time()
    spark, owned = spark_session(args.master, conf=args.conf, verbose=args.verbose)
    try:
        spark_master = spark.sparkContext.master
        paths = HadoopPaths(spark)
        if paths.exists(args.output) and not args.overwrite:
            raise FileExistsError(f"{args.output}: exists already; pass --overwrite to replace it")
        counters = EmbedCounters(spark.sparkContext)
        df, text_column = _read_input(spark, args, kind, counters)
        embedded = embed_dataframe(df, text_column=text_column, model=args.model or "default",
                                   options_file=args.options_file, weight_file=args.weight_file, layers=layers,
                                   sentence_vectors=args.sentence_vectors, tokenizer=args.tokenizer,
                                   max_tokens_per_batch=args.max_tokens_per_batch, counters=counters,
                                   jit_compile=args.jit_compile, model_dir=args.model_dir)
        write_parquet_atomically(embedded, args.output, args.overwrite, paths)
        rows = spark.read.parquet(args.output).count()  # from the files' footers
        counts = counters.values()
    finally:
        if owned:
            spark.stop()
    print(f"wrote {args.output}: {rows} rows, {counts['sentences']} sentences, {counts['tokens']} tokens "
          f"in {time.time() - start:.1f} s", file=sys.stderr)
    if counts["null_texts"]:
        print(f"{counts['null_texts']} row(s) with a null text: null tokens and vectors", file=sys.stderr)
    if counts["invalid_utf8_lines"]:
        print(f"skipped {counts['invalid_utf8_lines']} line(s) that are not valid UTF-8", file=sys.stderr)
    return {"output": args.output, "input": args.input, "input_kind": kind, "rows": rows, **counts,
            "layers": layers if isinstance(layers, str) else list(layers), "sentence_vectors": args.sentence_vectors,
            "model": spec.name or spec.weight_file or spec.savedmodel_dir, "master": spark_master,
            "seconds": round(time.time() - start, 3)}


def add_parsers(subparsers):
    """Add the `embed-spark` command to the `elmo-keras` parser."""
    p = subparsers.add_parser(
        "embed-spark", allow_abbrev=False,
        help="embed text files or a table's text column with Apache Spark into Parquet",
        description="Embed every line of the text files matching --input (with its file and 0-based line), or "
                    "with --text-column the rows of a Parquet path or a table, with Apache Spark, and write a "
                    "Parquet folder: the input columns plus tokens and embedding (or sentence_vector). A "
                    "line of invalid UTF-8 is skipped and counted; a null text gets null outputs and is "
                    "counted. Needs the spark extra and a Java 17+ runtime.")
    p.add_argument("--input", required=True, metavar="FILES_OR_TABLE",
                   help="text files (a path or glob, local or on any filesystem Spark reads; UTF-8, one "
                        "sentence a line); with --text-column, a Parquet path or a table name")
    p.add_argument("--output", required=True, metavar="PATH", help="the Parquet folder to write")
    p.add_argument("--text-column", metavar="COLUMN",
                   help="read --input as Parquet (or a table) and embed this string column")
    p.add_argument("--model-dir", metavar="SAVEDMODEL",
                   help="a SavedModel of `elmo-keras export` (the export folder, its highest version, or one "
                        "version folder), readable by the workers")
    p.add_argument("--options-file", help="the original options.json (default: the bundled model)")
    p.add_argument("--weight-file", help="the original weights .hdf5 (default: the bundled model)")
    p.add_argument("--model", help="default (the bundled model), a released model (small, medium, original, "
                                   "original_5.5b: each worker fetches it once into its cache), or a model "
                                   "folder or zip readable by the workers")
    p.add_argument("--layers", type=parse_layers, default="top",
                   help="top (default): the last layer, (tokens, dim); all: (layers, tokens, dim); average: "
                        "the mean of the layers; or comma-separated mix weights, one per layer (used as given)")
    p.add_argument("--sentence-vectors", action="store_true",
                   help="one vector per row (the mean over its tokens) in column sentence_vector, instead of "
                        "one per token")
    p.add_argument("--max-tokens-per-batch", type=positive_int, default=DEFAULT_MAX_TOKENS_PER_BATCH,
                   help=f"padded tokens per model call (default {DEFAULT_MAX_TOKENS_PER_BATCH})")
    add_tokenizer_argument(p)
    p.add_argument("--no-jit-compile", dest="jit_compile", action="store_false",
                   help="run the model without XLA on the workers: a faster start for a small input")
    p.add_argument("--master", help="Spark master URL (default local[*]; spark://HOST:7077, yarn, "
                                    "local-cluster[N,CORES,MB], ...)")
    p.add_argument("--partitions", type=positive_int,
                   help="partitions to embed in (default: text lines spread over the default parallelism; a "
                        "table keeps its own)")
    p.add_argument("--conf", type=_conf, action="append", default=[], metavar="KEY=VALUE",
                   help="a Spark setting (repeatable), such as spark.executor.memory=4g")
    add_overwrite_argument(p, "an existing output folder")
    p.set_defaults(func=_embed_spark)
    return p
