"""Arguments that several `elmo-keras` commands share, and what they resolve to.

Kept apart from `elmo_keras.cli`, which assembles the commands, so that the
command modules (`elmo_keras.serving.cli`, `elmo_keras.training.cli`) import
this and the main parser imports them, with no cycle.
"""

import argparse

# Pure Python, no TensorFlow: the parsers stay light.
from elmo_keras.preprocessing.split import check_splitter


def add_common_arguments(parser, top_level=False):
    """`--verbose` and `--debug`, accepted before or after the command's name."""
    default = False if top_level else argparse.SUPPRESS
    parser.add_argument("--verbose", action="store_true", default=default,
                        help="show TensorFlow's and XLA's messages and Python warnings")
    parser.add_argument("--debug", action="store_true", default=default, help="show tracebacks")


def add_overwrite_argument(parser, what="the output"):
    """`--overwrite`: the one way to replace an existing output."""
    parser.add_argument("--overwrite", action="store_true", help=f"replace {what} if it exists")


def add_tokenizer_argument(parser):
    """`--tokenizer`: how `embed` and `embed-beam` split a line into tokens."""
    parser.add_argument("--tokenizer", type=_splitter, default="whitespace",
                        help="how a line is split into tokens: whitespace (default; tokenised text), "
                             "punctuation (raw text: punctuation split from words), or moses / moses:LANG (the "
                             "Moses tokenizer, as the released English models' training text was split; "
                             "needs sacremoses: pip install 'elmo-keras[moses]')")


def _splitter(name):
    try:
        return check_splitter(name)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_model_arguments(parser):
    """`--options-file`, `--weight-file` and `--model`: which biLM a command uses."""
    parser.add_argument("--options-file", help="the original options.json (default: the bundled model)")
    parser.add_argument("--weight-file", help="the original weights .hdf5 (default: the bundled model)")
    parser.add_argument("--model", help="a released model, fetched once and cached: small, medium, original or "
                                        "original_5.5b; or a model folder (options.json and one weights "
                                        ".hdf5) or a zip of one, such as the NLPL repository's models")


def model_files(args):
    """(options_file, weight_file) from --model, the two file flags, or the bundled model."""
    from elmo_keras.pretrained import resolve_model_files

    return resolve_model_files(args.options_file, args.weight_file, args.model, flags=True)
