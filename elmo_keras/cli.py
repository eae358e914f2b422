"""The `elmo-keras` command line.

Example:

    elmo-keras embed sentences.txt vectors.hdf5 --all \\
        --options-file options.json --weight-file weights.hdf5

Every command checks its arguments and paths before any work, reports bad
input as one clear line on stderr and exits 1 (2 for a malformed command
line); `--debug` shows the traceback as well. Commands that write refuse to
replace an existing output unless given `--overwrite` (`train` resumes
instead). Quiet by default: `--verbose` shows TensorFlow's and XLA's own
messages and Python warnings.
"""

import argparse
import contextlib
import importlib
import io
import json
import logging
import os
import re
import sys
import threading
import warnings

from elmo_keras.arguments import positive_int
from elmo_keras.backends import missing_backend_error
from elmo_keras.cli_arguments import (add_common_arguments, add_model_arguments, add_overwrite_argument,
                                      add_tokenizer_argument, model_files)
from elmo_keras.compilation_cache import enable_compilation_cache, enabled_by_environment

# Errors that describe bad input: shown as a message, never as a traceback.
USER_ERRORS = (FileNotFoundError, ValueError, OSError)


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: the command, the argument and what is expected."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# Log lines of TensorFlow's, XLA's and absl's C++ code ("I0000 00:00:17... file.cc:12] ...",
# "2026-12-01 12:00:23.08: E external/...] ..." and absl's notice before its set-up). Fatal
# lines (F) are kept.
_NATIVE_LOG_LINE = re.compile(
    rb"^(?:[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\]]+\] |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called)")


def quiet_libraries(verbose):
    """Silence TensorFlow's C++ and Python logs, XLA's and absl's lines and warnings, unless `verbose`.

    Called before TensorFlow is imported: its C++ log level is read at import.
    A level the user set in TF_CPP_MIN_LOG_LEVEL is kept. XLA and absl log
    through absl's C++ logging, which no setting reaches before it is set up;
    `filter_native_logs` drops those lines.
    """
    if verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    for name in ("tensorflow", "absl", "jax", "keras", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


@contextlib.contextmanager
def filter_native_logs():
    """Drop the C++ libraries' log lines from file descriptor 2; Python's stderr is untouched.

    Python's `sys.stderr` (messages, progress bars) is moved to a copy of the
    real stderr; descriptor 2, where C++ code writes, becomes a pipe that a
    thread copies to the real stderr, less the lines `_NATIVE_LOG_LINE`
    matches. Outside a terminal or a pipe (no descriptor 2), nothing changes.
    """
    try:
        sys.stderr.flush()
        real = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    saved_stderr = sys.stderr
    sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(real), "wb", buffering=0), write_through=True,
                                  encoding=getattr(saved_stderr, "encoding", None) or "utf-8",
                                  errors="backslashreplace")

    def copy():
        pending = b""
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            while True:
                block = pipe.read(65536)
                if not block:
                    break
                pending += block
                *lines, pending = pending.split(b"\n")
                kept = b"".join(line + b"\n" for line in lines if not _NATIVE_LOG_LINE.match(line))
                if kept:
                    os.write(real, kept)
        if pending and not _NATIVE_LOG_LINE.match(pending):
            os.write(real, pending)

    thread = threading.Thread(target=copy, name="elmo-keras-native-log-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(real, 2)  # closes the pipe's last write end: the thread sees the end and stops
        thread.join(timeout=5)
        sys.stderr = saved_stderr
        os.close(real)


def _embed(args):
    from elmo_keras.arguments import check_input_file, check_output_file
    from elmo_keras.embedder import ElmoEmbedder

    # Paths first, before the model loads: a mistake costs a second, not a run.
    # The text itself is read once, by embed_file, before any embedding.
    check_output_file(args.output_file, overwrite=args.overwrite)
    check_input_file(args.input_file)
    options_file, weight_file = model_files(args)
    embedder = ElmoEmbedder(options_file, weight_file, batch_size=args.batch_size, stateful=args.stateful,
                            tokenizer=args.tokenizer, max_tokens_per_batch=args.max_tokens_per_batch)
    embedder.embed_file(args.input_file, args.output_file, output_format=args.output_format,
                        batch_size=args.batch_size, forget_sentences=args.forget_sentences,
                        use_sentence_keys=args.use_sentence_keys, progress=not args.quiet,
                        overwrite=args.overwrite, sentence_vectors=args.sentence_vectors)
    print(f"wrote {args.output_file}", file=sys.stderr)


def _build_embed(sub):
    p = sub.add_parser(
        "embed", help="embed a text file (one sentence a line) to hdf5",
        description="Embed a file of sentences, one a line, into an hdf5 file as AllenNLP's `elmo` "
                    "command writes it. The model reads tokens: by default a line is split on whitespace "
                    "(text that is already tokenised, as AllenNLP reads it); --tokenizer punctuation also "
                    "makes every punctuation or symbol character a token ('money.' gives 'money', '.'), "
                    "as the released models' and the bundled model's training text was split. An empty "
                    "line is an empty sentence: its dataset has 0 tokens. An interrupted run resumes "
                    "when the same command is run again.")
    p.add_argument("input_file", help="UTF-8 text, one sentence a line")
    p.add_argument("output_file", help="the hdf5 to write (appears when complete)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--all", action="store_const", const="all", dest="output_format",
                     help="all layers: (layers, tokens, dim) per sentence (default)")
    fmt.add_argument("--top", action="store_const", const="top", dest="output_format",
                     help="top layer only: (tokens, dim)")
    fmt.add_argument("--average", action="store_const", const="average", dest="output_format",
                     help="mean of the layers: (tokens, dim)")
    add_model_arguments(p)
    add_tokenizer_argument(p)
    p.add_argument("--batch-size", type=positive_int, default=64,
                   help="sentences per batch; packed short sentences share rows of up to "
                        "max-tokens-per-batch / batch-size positions, as many rows as that budget allows (default 64)")
    p.add_argument("--max-tokens-per-batch", type=positive_int, default=8192,
                   help="at most this many padded token positions (sentences x longest + 2) per batch, "
                        "which bounds memory; a longer sentence is a batch of its own (default 8192; "
                        "not with --stateful, whose batches are --batch-size consecutive lines)")
    p.add_argument("--stateful", action="store_true",
                   help="carry LSTM states from batch to batch per row, as bilm-tf")
    keys = p.add_mutually_exclusive_group()
    keys.add_argument("--sentence-vectors", action="store_true",
                   help="one vector a line instead of one a token: dataset sentence_vectors, (lines, layers, "
                        "dim), or (lines, dim) with --top/--average, each line's mean over its tokens (zeros "
                        "for an empty line), in line order")
    keys.add_argument("--use-sentence-keys", action="store_true", help="name datasets by sentence")
    p.add_argument("--forget-sentences", action="store_true", help="do not write sentence_to_index")
    add_overwrite_argument(p, "OUTPUT_FILE")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_embed, output_format="all")


def _import_manylangs(args):
    from elmo_keras.models.manylangs import import_manylangs

    for note in import_manylangs(args.model_dir, args.out_dir, overwrite=args.overwrite):
        print(f"elmo-keras import-manylangs: {note}", file=sys.stderr)
    print(f"wrote {args.out_dir}", file=sys.stderr)
    return {"model": args.out_dir}


def _build_import_manylangs(sub):
    p = sub.add_parser(
        "import-manylangs", help="import an ELMoForManyLangs model folder (PyTorch) as an elmo_keras model",
        description="Read MODEL_DIR, one of HIT-SCIR's ELMoForManyLangs models (config.json, its architecture "
                    "JSON, char.dic, word.dic, token_embedder.pkl, encoder.pkl), and write OUT_DIR: "
                    "options.json, weights.hdf5, char.dic and word.dic, which `embed --model OUT_DIR` and "
                    "ElmoEmbedder read without torch. Reading MODEL_DIR needs torch (pip install "
                    "'elmo-keras[torch]'). OUT_DIR appears when complete.")
    p.add_argument("model_dir", help="the ELMoForManyLangs model folder (unpacked)")
    p.add_argument("out_dir", help="the folder to write")
    add_overwrite_argument(p, "OUT_DIR")
    p.set_defaults(func=_import_manylangs)


# Commands whose parsers live in other modules: (module, function adding the parser).
EXTERNAL_COMMANDS = [
    ("elmo_keras.serving.cli", "add_parsers"),
    ("elmo_keras.training.cli", "add_parsers"),
    ("elmo_keras.beam.cli", "add_parsers"),
    ("elmo_keras.preset_cli", "add_parsers"),
    ("elmo_keras.spark.cli", "add_parsers"),
]


def build_parser():
    parser = OneLineErrorParser(prog="elmo-keras", description="ELMo for Keras 3 and TensorFlow 2.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {sys.modules['elmo_keras'].__version__}")
    add_common_arguments(parser, top_level=True)
    sub = parser.add_subparsers(dest="command", required=True)
    _build_embed(sub)
    _build_import_manylangs(sub)
    for module_name, function in EXTERNAL_COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            if e.name != module_name:
                raise
            continue
        getattr(module, function)(sub)
    for command in sub.choices.values():
        add_common_arguments(command)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_libraries(args.verbose)
    _compilation_cache()
    with contextlib.nullcontext() if args.verbose or argv is not None else filter_native_logs():
        status = _run(args)
    if argv is None and args.command in FAST_EXIT_COMMANDS:
        _fast_exit(status)
    return status


# Commands whose every output is written, closed and renamed into place when they return, and that leave nothing
# to atexit handlers: the process ends there, without the interpreter tearing TensorFlow and JAX down (1.5-1.6 s
# of `elmo-keras embed`'s 8 s cold start on a 2-core AMD EPYC, measured with `benchmarks/bench_cold_start.py`).
FAST_EXIT_COMMANDS = ("embed",)


def _fast_exit(status):
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _compilation_cache():
    """Compiled programs from earlier runs (`elmo_keras.compilation_cache`), unless turned off or impossible."""
    if not enabled_by_environment():
        return
    try:
        enable_compilation_cache()
    except (OSError, ImportError) as e:  # an unwritable cache folder, a missing backend (said by the command)
        logging.getLogger("elmo_keras").info("compilation cache off: %s", e)


def _run(args):
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print("elmo-keras: interrupted; finished work is kept, run the same command again to resume",
              file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        if args.debug:
            raise
        print(f"elmo-keras {args.command}: error: {e}", file=sys.stderr)
        return 1
    except ImportError as e:
        error = missing_backend_error(e)  # KERAS_BACKEND=torch without torch (say): what to install
        if error is None or args.debug:
            raise
        print(f"elmo-keras {args.command}: error: {error}", file=sys.stderr)
        return 1
    if isinstance(result, dict):
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
