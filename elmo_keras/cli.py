"""The `elmo-keras` command line.

Example:

    elmo-keras embed sentences.txt vectors.hdf5 --all \\
        --options-file options.json --weight-file weights.hdf5

Every command reports bad input as one clear line on stderr and exits 1;
`--debug` shows the traceback as well.
"""

import argparse
import importlib
import json
import os
import sys

# TensorFlow's start-up chatter would bury the command's own messages.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Errors that describe bad input: shown as a message, never as a traceback.
USER_ERRORS = (FileNotFoundError, ValueError, OSError)


def _add_model_arguments(parser):
    parser.add_argument("--options-file", help="the original options.json (default: the bundled model)")
    parser.add_argument("--weight-file", help="the original weights .hdf5 (default: the bundled model)")
    parser.add_argument("--model", help="a released model, fetched once and cached: "
                                        "small, medium, original or original_5.5b")


def model_files(args):
    """(options_file, weight_file) from --model, the two file flags, or the bundled model."""
    from elmo_keras.pretrained import default_model_files, fetch_pretrained

    if args.model:
        if args.options_file or args.weight_file:
            raise ValueError("pass either --model or --options-file/--weight-file, not both")
        return fetch_pretrained(args.model)
    if bool(args.options_file) != bool(args.weight_file):
        raise ValueError("pass both --options-file and --weight-file (or neither, for the bundled model)")
    if args.options_file:
        return args.options_file, args.weight_file
    return default_model_files()


def _embed(args):
    from elmo_keras.embedder import ElmoEmbedder

    options_file, weight_file = model_files(args)
    embedder = ElmoEmbedder(options_file, weight_file, batch_size=args.batch_size, stateful=args.stateful)
    embedder.embed_file(args.input_file, args.output_file, output_format=args.output_format,
                        batch_size=args.batch_size, forget_sentences=args.forget_sentences,
                        use_sentence_keys=args.use_sentence_keys, progress=not args.quiet)
    print(f"wrote {args.output_file}", file=sys.stderr)


def _build_embed(sub):
    p = sub.add_parser("embed", help="embed a text file (one tokenised sentence a line) to hdf5",
                       description="Embed a file of whitespace-tokenised sentences, one a line, into "
                                   "an hdf5 file as AllenNLP's `elmo` command writes it.")
    p.add_argument("input_file", help="UTF-8 text, one sentence a line, tokens separated by spaces")
    p.add_argument("output_file", help="the hdf5 to write (appears when complete)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--all", action="store_const", const="all", dest="output_format",
                     help="all layers: (layers, tokens, dim) per sentence (default)")
    fmt.add_argument("--top", action="store_const", const="top", dest="output_format",
                     help="top layer only: (tokens, dim)")
    fmt.add_argument("--average", action="store_const", const="average", dest="output_format",
                     help="mean of the layers: (tokens, dim)")
    _add_model_arguments(p)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--stateful", action="store_true",
                   help="carry LSTM states from batch to batch per row, as bilm-tf")
    p.add_argument("--use-sentence-keys", action="store_true", help="name datasets by sentence")
    p.add_argument("--forget-sentences", action="store_true", help="do not write sentence_to_index")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_embed, output_format="all")


# Commands whose parsers live in other modules: (module, function adding the parser).
EXTERNAL_COMMANDS = [
    ("elmo_keras.serving.cli", "add_parsers"),
    ("elmo_keras.training.cli", "add_parsers"),
]


def build_parser():
    parser = argparse.ArgumentParser(prog="elmo-keras", description="ELMo for Keras 3 and TensorFlow 2.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {sys.modules['elmo_keras'].__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    _build_embed(sub)
    for module_name, function in EXTERNAL_COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            if e.name != module_name:
                raise
            continue
        getattr(module, function)(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
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
    if isinstance(result, dict):
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
