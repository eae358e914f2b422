"""`elmo-keras vocab | tokenize | options-template | train | perplexity | dump-weights`: pretraining.

Example, from raw text to ELMo vectors:

    elmo-keras options-template options.json --size default
    elmo-keras tokenize 'raw/*.txt' corpus/
    elmo-keras vocab 'corpus/*.txt' vocab.txt --min-count 2
    elmo-keras train --options-file options.json --vocab-file vocab.txt \\
        --train-prefix 'corpus/*.txt' --save-dir run/ --epochs 10
    elmo-keras perplexity --save-dir run/ --vocab-file vocab.txt --test-prefix 'heldout/*.txt'
    elmo-keras dump-weights --save-dir run/ --options-file elmo_options.json --weight-file elmo_weights.hdf5
"""

import sys

from elmo_keras.arguments import check_output_file, positive_int
from elmo_keras.cli_arguments import add_overwrite_argument
from elmo_keras.preprocessing.split import GRAPH_SPLITTERS


def _vocab(args):
    from elmo_keras.training.vocab import Vocabulary, build_vocabulary

    check_output_file(args.output_file, overwrite=args.overwrite)
    n_tokens = build_vocabulary(args.corpus_glob, args.output_file, min_count=args.min_count,
                                max_size=args.max_size, progress=not args.quiet)
    size = Vocabulary(args.output_file).size
    print(f"wrote {args.output_file}: {size} entries from {n_tokens} corpus tokens", file=sys.stderr)
    return {"vocab_size": size, "corpus_tokens": n_tokens}


def _tokenize(args):
    from elmo_keras.training.tokenize_corpus import tokenize_files

    written = tokenize_files(args.input_glob, args.output_dir, kind=args.kind, progress=not args.quiet,
                             overwrite=args.overwrite)
    print(f"wrote {len(written)} file(s) to {args.output_dir}", file=sys.stderr)
    return {"files": written}


def _options_template(args):
    from elmo_keras.training.templates import DEPRECATED_SIZES, write_training_template

    check_output_file(args.output_file, overwrite=args.overwrite)
    if args.size in DEPRECATED_SIZES:
        print(f"elmo-keras options-template: --size {args.size} is deprecated; it is the bundled model's size, "
              f"now named {DEPRECATED_SIZES[args.size]}", file=sys.stderr)
        args.size = DEPRECATED_SIZES[args.size]
    write_training_template(args.output_file, args.size)
    print(f"wrote {args.output_file}: the {args.size} template; edit it, then pass it to "
          f"elmo-keras train --options-file", file=sys.stderr)


def _train(args):
    from elmo_keras.training.train import train

    result = train(args.options_file, args.vocab_file, args.train_prefix, args.save_dir, epochs=args.epochs,
                   max_steps=args.max_steps, batch_size=args.batch_size, restart_from=args.restart_from,
                   checkpoint_every=args.checkpoint_every, progress=not args.quiet)
    return result


def _perplexity(args):
    from elmo_keras.training.evaluate import perplexity

    result = perplexity(args.save_dir, args.vocab_file, args.test_prefix, batch_size=args.batch_size,
                        progress=not args.quiet)
    if not args.json:
        print(f"forward perplexity:  {result['forward']:.3f}\nbackward perplexity: {result['backward']:.3f}\n"
              f"average perplexity:  {result['average']:.3f}\ntokens: {result['tokens']}")
        return None
    return result


def _dump_weights(args):
    from elmo_keras.training.evaluate import dump_weights

    check_output_file(args.options_file, overwrite=args.overwrite)
    check_output_file(args.weight_file, overwrite=args.overwrite)
    dump_weights(args.save_dir, args.options_file, args.weight_file)
    print(f"wrote {args.options_file} and {args.weight_file}", file=sys.stderr)


def add_parsers(sub):
    """Add the pretraining commands to the `elmo-keras` subparsers."""
    p = sub.add_parser("vocab", help="build a vocabulary file from a corpus")
    p.add_argument("corpus_glob", help="glob of text files, one whitespace-tokenised sentence a line")
    p.add_argument("output_file")
    p.add_argument("--min-count", type=positive_int, default=1, help="drop tokens seen fewer times")
    p.add_argument("--max-size", type=positive_int, default=None,
                   help="at most this many entries (specials included)")
    add_overwrite_argument(p, "OUTPUT_FILE")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_vocab)

    p = sub.add_parser("tokenize", help="tokenise raw text with tensorflow-text (one sentence a line)")
    p.add_argument("input_glob", help="glob of raw UTF-8 text files, one sentence a line")
    p.add_argument("output_dir", help="receives one tokenised file per input file, same name")
    p.add_argument("--kind", choices=GRAPH_SPLITTERS, default="punctuation",
                   help="punctuation: split punctuation from words (default); whitespace: split on spaces")
    p.add_argument("--overwrite", action="store_true",
                   help="tokenise every file again (default: files already in OUTPUT_DIR are kept: a re-run "
                        "resumes)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_tokenize)

    p = sub.add_parser("options-template", help="write a training options file to start from",
                       description="Write a complete training options file: tiny (a try-out that trains "
                                   "in seconds), default (the bundled model's architecture) or original "
                                   "(Peters et al., 2018).")
    p.add_argument("output_file", help="the options.json to write")
    p.add_argument("--size", choices=("tiny", "default", "original", "small"), default="default",
                   help="which template (default: default); small is the former name of default")
    add_overwrite_argument(p, "OUTPUT_FILE")
    p.set_defaults(func=_options_template)

    p = sub.add_parser("train", help="pretrain a biLM; re-run the same command to resume")
    p.add_argument("--options-file", required=True, help="options.json: architecture and training keys")
    p.add_argument("--vocab-file", required=True)
    p.add_argument("--train-prefix", required=True, help="glob of training shards")
    p.add_argument("--save-dir", required=True, help="checkpoints, options and TensorBoard logs")
    p.add_argument("--epochs", type=positive_int, help="passes over the training data (default: n_epochs)")
    p.add_argument("--max-steps", type=positive_int, help="stop after this many steps in all")
    p.add_argument("--batch-size", type=positive_int, help="rows per step over all replicas")
    p.add_argument("--restart-from", help="released weights .hdf5 or a checkpoint to continue from")
    p.add_argument("--checkpoint-every", type=positive_int, default=1000, help="steps between checkpoints")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_train)

    p = sub.add_parser("perplexity", help="held-out perplexity, forward and backward")
    p.add_argument("--save-dir", required=True)
    p.add_argument("--vocab-file", required=True)
    p.add_argument("--test-prefix", required=True, help="glob of held-out files")
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_perplexity)

    p = sub.add_parser("dump-weights", help="write a checkpoint as the original options + hdf5")
    p.add_argument("--save-dir", required=True)
    p.add_argument("--options-file", required=True, help="options.json to write")
    p.add_argument("--weight-file", required=True, help="weights .hdf5 to write")
    add_overwrite_argument(p, "the options and weight files")
    p.set_defaults(func=_dump_weights)
