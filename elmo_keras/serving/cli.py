"""The `elmo-keras export` command: a SavedModel for TF Serving and TF Hub users.

Example:

    elmo-keras export --options-file options.json --weight-file weights.hdf5 \\
        savedmodels/elmo --version 1

writes `savedmodels/elmo/1/` (see `elmo_keras.serving.export`), reports on
stderr where it wrote and which non-core ops the graph needs, and prints the
summary as one JSON line on stdout. `--model small` (or medium, original,
original_5.5b) exports a released model instead of the two files; with
neither, the bundled default model.
"""

import sys

from elmo_keras.arguments import non_negative_int
from elmo_keras.cli_arguments import add_model_arguments, add_overwrite_argument, model_files
# `split` imports no TensorFlow: building the parser stays light.
from elmo_keras.preprocessing.split import EXPORT_TOKENIZERS

TOKENIZERS = EXPORT_TOKENIZERS  # the old name, kept importable


def _export(args):
    from elmo_keras.serving.export import export_savedmodel

    options_file, weight_file = model_files(args)
    try:
        result = export_savedmodel(options_file, weight_file, args.out_dir, version=args.version,
                                   tokenizer=args.tokenizer, warmup=not args.no_warmup,
                                   overwrite=args.overwrite)
    except ImportError as error:
        # A missing optional tokenizer package is bad input, not a crash.
        raise ValueError(str(error)) from error
    print(f"wrote {result['export_dir']}", file=sys.stderr)
    if result["non_core_ops"]:
        print("needs ops outside core TensorFlow: " + ", ".join(result["non_core_ops"])
              + " (import tensorflow_text before loading; stock TF Serving lacks them)", file=sys.stderr)
    else:
        print("only core TensorFlow ops: runs in stock TF Serving", file=sys.stderr)
    return result


def add_parsers(subparsers):
    """Add the `export` command to the `elmo-keras` parser."""
    p = subparsers.add_parser(
        "export", help="export a SavedModel for TF Serving with TF Hub ELMo's signatures",
        description="Write OUT_DIR/VERSION/, a SavedModel with the signatures of TF Hub's ELMo "
                    "(default/serving_default on raw text, tokens, char_ids), TF Serving warm-up "
                    "requests and the list of non-core ops it needs.")
    p.add_argument("out_dir", help="TF Serving's model base path (e.g. savedmodels/elmo)")
    add_model_arguments(p)
    p.add_argument("--version", type=non_negative_int, default=1,
                   help="version directory under OUT_DIR (default 1)")
    p.add_argument("--tokenizer", choices=EXPORT_TOKENIZERS, default="core",
                   help="how the text signatures split sentences: core (whitespace, core TF ops only; "
                        "default), or whitespace/punctuation (tensorflow-text ops)")
    p.add_argument("--no-warmup", action="store_true", help="do not write TF Serving warm-up requests")
    add_overwrite_argument(p, "OUT_DIR/VERSION")
    p.set_defaults(func=_export)
