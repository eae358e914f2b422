"""The `elmo-keras embed-beam` command: embed text files with Apache Beam, on one machine or many.

Example (the DirectRunner, two worker processes):

    elmo-keras embed-beam --input 'corpus/*.txt' --output vectors/part --layers top \\
        --direct_running_mode multi_processing --direct_num_workers 2

reads every line of the matching files, embeds it (the bundled model unless
`--model-dir`, `--options-file/--weight-file` or `--model` says otherwise) in
batches of at most `--max-tokens-per-batch` padded tokens among sentences of
similar length, and writes `vectors/part-SSSSS-of-NNNNN.parquet` (or
`.tfrecord`): one row per line with its file, 0-based line number, tokens,
embedding and shape (see `elmo_keras.beam.files`). A summary goes to stdout as
one JSON line.

Every option the command does not know is a Beam pipeline option: `--runner`
(default: the DirectRunner, run here as Beam's FnApiRunner, which Beam's
DirectRunner also falls back to; it never downloads the Prism runner),
`--direct_num_workers`, `--direct_running_mode`, and Dataflow's `--project`,
`--region`, `--temp_location`, `--requirements_file`, ... A flag that neither
the command nor Beam knows is an error.

Building the parser imports neither Beam nor TensorFlow; the command itself
needs the `beam` extra.
"""

import contextlib
import logging
import sys

from elmo_keras.arguments import non_negative_int, positive_int
from elmo_keras.cli_arguments import add_model_arguments, add_overwrite_argument, add_tokenizer_argument, model_files
from elmo_keras.preprocessing.batching import DEFAULT_MAX_TOKENS_PER_BATCH

# The same tuples as elmo_keras.beam.embed_sentences.LAYERS and elmo_keras.beam.files.FORMATS, kept here so
# that building the parser does not import Beam.
LAYERS = ("all", "top", "average")
FORMATS = ("parquet", "tfrecord")
# Runner names that mean Beam's local runner.
LOCAL_RUNNERS = ("directrunner", "direct", "switchingdirectrunner", "fnapirunner")


def unknown_pipeline_flags(pipeline_args):
    """The flags of `pipeline_args` that no Beam `PipelineOptions` class defines."""
    with _quiet_beam_import():
        from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(pipeline_args)
    logger = logging.getLogger("apache_beam.options.pipeline_options")
    level = logger.level
    logger.setLevel(logging.ERROR)  # not "Discarding unparseable args": the caller reports them
    try:
        known = options.get_all_options(retain_unknown_options=False)
        every = options.get_all_options(retain_unknown_options=True)
    finally:
        logger.setLevel(level)
    return sorted(f"--{name}" for name in set(every) - set(known))


@contextlib.contextmanager
def _quiet_beam_import():
    """Import Beam without its warnings about optional Google Cloud clients (some go to the root logger)."""
    beam_logger, root = logging.getLogger("apache_beam"), logging.getLogger()
    levels = beam_logger.level, root.level
    beam_logger.setLevel(logging.ERROR)
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        beam_logger.setLevel(levels[0])
        root.setLevel(levels[1])


def _pass_unknown_to_beam(parser_class):
    """A parser class whose unknown arguments become `args.pipeline_args` instead of an error."""

    class PipelineOptionsParser(parser_class):
        def parse_known_args(self, args=None, namespace=None):
            namespace, extras = super().parse_known_args(args, namespace)
            try:
                unknown = unknown_pipeline_flags(extras) if extras else []
            except ImportError:
                unknown = []  # the command reports the missing extra
            except SystemExit:
                self.error(f"bad Beam pipeline options: {' '.join(extras)}")
            # A word that is not the value of the flag before it (Beam would ignore it silently).
            unknown += [arg for i, arg in enumerate(extras) if not arg.startswith("-") and
                        (i == 0 or not extras[i - 1].startswith("--") or "=" in extras[i - 1])]
            if unknown:
                self.error(f"unrecognized arguments (neither the command's nor Beam pipeline options): "
                           f"{' '.join(unknown)}")
            namespace.pipeline_args = list(getattr(namespace, "pipeline_args", None) or []) + extras
            return namespace, []

    PipelineOptionsParser.__name__ = f"PipelineOptions{parser_class.__name__}"
    return PipelineOptionsParser


def local_runner(options):
    """Beam's FnApiRunner for `options` (what Beam's DirectRunner runs batch pipelines on).

    The pipeline options are handed to the workers as the DirectRunner does,
    so `--direct_running_mode multi_processing --direct_num_workers N` works.
    """
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    return fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)))


def pipeline_runner(options):
    """The runner for `options`: `local_runner` for no `--runner` or the DirectRunner, else Beam's choice."""
    from apache_beam.options.pipeline_options import StandardOptions

    name = options.view_as(StandardOptions).runner
    if name is None or (isinstance(name, str) and name.lower() in LOCAL_RUNNERS):
        return local_runner(options)
    return None


def _model_handler(args):
    """The model handler of the command's flags, after checking the files it names."""
    from elmo_keras.beam.model_handler import (ElmoEmbedderHandler, ElmoSavedModelHandler, is_local_path,
                                               resolve_savedmodel_dir)
    from elmo_keras.pretrained import verify_model_files

    if args.model_dir:
        if args.model or args.options_file or args.weight_file:
            raise ValueError("pass either --model-dir or --model / --options-file/--weight-file, not both")
        return ElmoSavedModelHandler(resolve_savedmodel_dir(args.model_dir)), args.model_dir
    options_file, weight_file = model_files(args)  # fetches a released --model once, into the cache
    if is_local_path(options_file) and is_local_path(weight_file):
        verify_model_files(options_file, weight_file)
    if args.model:
        # Workers fetch it themselves (into their own cache): the launcher's cache path is not theirs.
        return ElmoEmbedderHandler(model=args.model), args.model
    if args.options_file:
        return ElmoEmbedderHandler(options_file, weight_file), weight_file
    return ElmoEmbedderHandler(), "bundled default model"


def _check_paths(args):
    """The input matches files; the output shards may be written."""
    from elmo_keras.arguments import check_output_file
    from elmo_keras.beam.files import SUFFIXES, check_tfrecord_support, existing_shards, match_files
    from elmo_keras.beam.model_handler import is_local_path

    if args.output_format == "tfrecord":
        check_tfrecord_support()
    matched = match_files(args.input)
    existing = existing_shards(args.output, args.output_format)
    if existing and not args.overwrite:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise FileExistsError(f"{existing[0]}{more}: output shards of {args.output} exist already; pass "
                              f"--overwrite to replace them")
    if is_local_path(args.output):
        check_output_file(f"{args.output}-00000-of-00001{SUFFIXES[args.output_format]}", overwrite=True)
    return len(matched)


def _counters(result):
    """{name: value} of the `elmo_keras` counters of a finished pipeline."""
    from apache_beam.metrics.metric import MetricsFilter

    totals = {}
    for counter in result.metrics().query(MetricsFilter().with_namespace("elmo_keras"))["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + (value or 0)
    return totals


def _set_up_logging(verbose):
    """Warnings of elmo_keras.beam (a skipped line) as one line each; Beam's own messages only with --verbose."""
    logger = logging.getLogger("elmo_keras.beam")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("elmo-keras embed-beam: warning: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
        logger.setLevel(logging.WARNING)
    if verbose:
        return
    with _quiet_beam_import():
        try:
            import apache_beam  # noqa: F401
        except ImportError:
            pass
    logging.getLogger("apache_beam").setLevel(logging.ERROR)


def _quiet_worker_flags(pipeline_args):
    """Worker log levels for a quiet run (warnings of elmo_keras, errors of Beam), unless the user set them."""
    names = {arg.split("=", 1)[0] for arg in pipeline_args}
    flags = []
    if "--default_sdk_harness_log_level" not in names:
        flags.append("--default_sdk_harness_log_level=WARNING")
    if "--sdk_harness_log_level_overrides" not in names:
        flags.append('--sdk_harness_log_level_overrides={"apache_beam": "ERROR", "__main__": "ERROR"}')
    return flags


def _embed_beam(args):
    import time

    _set_up_logging(args.verbose)
    try:
        import apache_beam as beam
        from apache_beam.options.pipeline_options import PipelineOptions
    except ImportError as error:
        raise ValueError(f"embed-beam needs Apache Beam: pip install 'elmo-keras[beam]' ({error})") from None
    from elmo_keras.beam.embed_sentences import EmbedSentences
    from elmo_keras.beam.files import ReadLines, WriteEmbeddings, existing_shards, parquet_rows

    # Paths and model files first, before any pipeline starts.
    n_files = _check_paths(args)
    handler, model_name = _model_handler(args)
    options = PipelineOptions(args.pipeline_args + ([] if args.verbose else _quiet_worker_flags(args.pipeline_args)))
    runner = pipeline_runner(options)
    start = time.time()
    pipeline = beam.Pipeline(runner=runner, options=options)
    (pipeline
     | "Read" >> ReadLines(args.input)
     | "Embed" >> EmbedSentences(handler, layers=args.layers, max_tokens_per_batch=args.max_tokens_per_batch,
                                 tokenizer=args.tokenizer)
     | "Write" >> WriteEmbeddings(args.output, args.output_format, num_shards=args.num_shards,
                                  remove_stale_shards=args.overwrite))
    result = pipeline.run()
    state = result.wait_until_finish()
    if str(state).upper().rsplit(".", 1)[-1] not in ("DONE", "UNKNOWN"):
        raise RuntimeError(f"the pipeline ended in state {state}; no complete output")
    counters = _counters(result)
    shards = existing_shards(args.output, args.output_format)
    invalid = counters.get("invalid_utf8_lines", 0)
    print(f"wrote {len(shards)} shard(s) {args.output}-*-of-*.{args.output_format}: "
          f"{counters.get('sentences', 0)} sentences, {counters.get('tokens', 0)} tokens from "
          f"{n_files} file(s)", file=sys.stderr)
    if invalid:
        print(f"skipped {invalid} line(s) that are not valid UTF-8 (each is logged with its file and line)",
              file=sys.stderr)
    # Rows as written (counters may count a retried bundle twice on some runners); TFRecord needs a full read.
    rows = parquet_rows(shards) if args.output_format == "parquet" else None
    return {"output": args.output, "format": args.output_format, "shards": shards, "rows": rows, "files": n_files,
            "lines": counters.get("lines", 0), "sentences": counters.get("sentences", 0),
            "tokens": counters.get("tokens", 0), "invalid_utf8_lines": invalid,
            "batches": counters.get("batches", 0), "model": model_name, "layers": args.layers,
            "seconds": round(time.time() - start, 3)}


def add_parsers(subparsers):
    """Add the `embed-beam` command to the `elmo-keras` parser."""
    p = subparsers.add_parser(
        "embed-beam", allow_abbrev=False,
        help="embed text files with Apache Beam (any runner) into Parquet or TFRecord shards",
        description="Embed every line of the files matching --input with Apache Beam and write "
                    "PREFIX-SSSSS-of-NNNNN.parquet (or .tfrecord) shards: one row per line with its file, "
                    "0-based line number, tokens, embedding (flat, float32) and shape. Sentences of similar "
                    "length are batched within a token budget. A line of invalid UTF-8 is counted, logged "
                    "and skipped. Every option not listed here is a Beam pipeline option (--runner, "
                    "--direct_num_workers, --direct_running_mode, Dataflow's --project, --region, "
                    "--temp_location, ...); the default runner is the DirectRunner.")
    p.__class__ = _pass_unknown_to_beam(type(p))
    p.add_argument("--input", required=True, metavar="PATTERN",
                   help="files to embed: a glob, local or on any Beam filesystem (gs://...); UTF-8, "
                        "one sentence a line")
    p.add_argument("--output", required=True, metavar="PREFIX",
                   help="path prefix of the output shards (PREFIX-00000-of-00004.parquet, ...)")
    p.add_argument("--model-dir", metavar="SAVEDMODEL",
                   help="a SavedModel of `elmo-keras export`: the export folder (its highest version) or "
                        "one version folder in it")
    add_model_arguments(p)
    p.add_argument("--layers", choices=LAYERS, default="all",
                   help="all (default): (layers, tokens, dim) per line; top: the last layer; average: "
                        "the mean of the layers ((tokens, dim))")
    p.add_argument("--format", choices=FORMATS, default="parquet", dest="output_format",
                   help="parquet (default) or tfrecord (tf.train.Example per line)")
    p.add_argument("--max-tokens-per-batch", type=positive_int, default=DEFAULT_MAX_TOKENS_PER_BATCH,
                   help=f"padded tokens per model call: sentences x (longest + 2, rounded up to 8 for the "
                        f"biLM files; the SavedModel pads to longest + 2) (default {DEFAULT_MAX_TOKENS_PER_BATCH})")
    add_tokenizer_argument(p)
    p.add_argument("--num-shards", type=non_negative_int, default=0,
                   help="number of output shards (default 0: the runner chooses, one per bundle)")
    add_overwrite_argument(p, "existing output shards of PREFIX")
    p.set_defaults(func=_embed_beam, pipeline_args=[])
    return p

