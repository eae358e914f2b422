"""Pretraining speed: `elmo-keras train` against bilm-tf's own training code, same corpus, options, batch, window.

    python benchmarks/bench_train_vs_bilm_tf.py --steps 3,8
    python benchmarks/bench_train_vs_bilm_tf.py --config small --steps 3,13 --append   # a quiet machine

One command, each run in a fresh process, on CPU:

- `bilm-tf`: `bilm.training.train(options, data, n_gpus=1, ...)` of the
  original code (`--bilm-tf`, default `../shared/peers/bilm-tf`) under
  TensorFlow 2.20 as `../shared/peers/README.md` says (`TF_USE_LEGACY_KERAS=1`,
  v2 behaviour off, `tensorflow` aliased to `tf.compat.v1`), its data reader
  `BidirectionalLMDataset` over the corpus files, its vocabulary class
  (`load_vocab(vocab_file, 50)`); `n_train_tokens` set so that one epoch is
  the number of batches wanted. Its one GPU tower runs on the CPU (soft
  placement).
- `elmo-keras train TF` / `JAX`: the command line, `--max-steps N`, on
  `KERAS_BACKEND=tensorflow` / `jax`.

Each is run twice, for the two step counts of `--steps A,B`, and the rate is
`batch_size x unroll_steps x (B - A)` tokens over the difference of the two
wall times: start-up (imports, graph building or compilation, reading the
corpus, the final checkpoint) cancels out. Tokens are counted as bilm-tf
counts them (each position of a window is predicted forward and backward).

Corpus: the WordNet gloss sentences that the bundled model trains on
(`savedmodels/default/make_corpus.py`'s training side, one sentence a line,
punctuation split), its vocabulary every word of the corpus by frequency
after `<S>`, `</S>`, `<UNK>`. Options: the `--config` size
(`benchmarks/configs.py`) with the training keys below (bilm-tf's defaults
for the optimizer: Adagrad 0.2, global norm clip 10; dropout 0.1; sampled
softmax of `--negatives` negatives; bidirectional).
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import common  # noqa: E402
from bench_vs_bilm_tf import DEFAULT_BILM_TF, DEFAULT_WORDNET, wordnet_split  # noqa: E402
from configs import get_options  # noqa: E402

IMPLEMENTATIONS = ("bilm-tf", "elmo-keras train TF", "elmo-keras train JAX")
BACKENDS = {"bilm-tf": "tensorflow", "elmo-keras train TF": "tensorflow", "elmo-keras train JAX": "jax"}
RUN_TIMEOUT = 3600

BILM_TF_RUN = r"""
import os, sys, json
import tensorflow as tf
tf.compat.v1.disable_v2_behavior()
sys.modules["tensorflow"] = tf.compat.v1
sys.path.insert(0, sys.argv[1])
from bilm.training import train, load_vocab
from bilm.data import BidirectionalLMDataset
options = json.load(open(sys.argv[2]))
vocab = load_vocab(sys.argv[3], 50)
data = BidirectionalLMDataset(sys.argv[4], vocab, test=False, shuffle_on_load=True)
train(options, data, 1, sys.argv[5], sys.argv[5])
"""


def write_corpus(directory, wordnet_dir):
    """(training file pattern, vocabulary file, tokens) of the WordNet training sentences."""
    _, train = wordnet_split(wordnet_dir)
    os.makedirs(os.path.join(directory, "train"), exist_ok=True)
    with open(os.path.join(directory, "train", "part-0.txt"), "w", encoding="utf-8") as f:
        f.writelines(" ".join(s) + "\n" for s in train)
    counts = collections.Counter(w for s in train for w in s)
    vocab_file = os.path.join(directory, "vocab.txt")
    with open(vocab_file, "w", encoding="utf-8") as f:
        f.writelines(w + "\n" for w in ["<S>", "</S>", "<UNK>"] + [w for w, _ in counts.most_common()])
    return os.path.join(directory, "train", "*.txt"), vocab_file, sum(counts.values())


def training_options(args, n_vocab, steps):
    options = get_options(args.config)
    options["char_cnn"]["n_characters"] = 261  # training: bilm-tf's 261 (262 is for prediction)
    options.update({"bidirectional": True, "dropout": 0.1, "all_clip_norm_val": 10.0, "n_epochs": 1,
                    "batch_size": args.batch_size, "unroll_steps": args.unroll_steps,
                    "n_negative_samples_batch": args.negatives, "n_tokens_vocab": n_vocab,
                    "n_train_tokens": args.batch_size * args.unroll_steps * steps})
    return options


def timed_run(impl, args, tmp, pattern, vocab_file, n_vocab, steps):
    run_dir = tempfile.mkdtemp(dir=tmp)
    options_file = os.path.join(run_dir, "options.json")
    with open(options_file, "w", encoding="utf-8") as f:
        json.dump(training_options(args, n_vocab, steps), f)
    env = common.worker_env(BACKENDS[impl])
    if impl == "bilm-tf":
        env["TF_USE_LEGACY_KERAS"] = "1"
        save_dir = os.path.join(run_dir, "save")
        os.makedirs(save_dir)
        argv = [sys.executable, "-c", BILM_TF_RUN, os.path.abspath(args.bilm_tf), options_file, vocab_file, pattern,
                save_dir]
    else:
        env.pop("TF_USE_LEGACY_KERAS", None)
        env["ELMO_KERAS_COMPILATION_CACHE"] = "0"
        argv = [sys.executable, "-m", "elmo_keras.cli", "train", "--options-file", options_file, "--vocab-file",
                vocab_file, "--train-prefix", pattern, "--save-dir", os.path.join(run_dir, "save"),
                "--max-steps", str(steps), "--quiet"]
    t = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=common.REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    wall = time.perf_counter() - t
    if proc.returncode:
        return None, (proc.stdout[-1500:] + "\n" + proc.stderr[-3000:]).strip()
    return wall, None


COLUMNS = [
    ("impl", "implementation", ""), ("tokens_per_s", "tokens/s", ",.0f"), ("ratio", "vs bilm-tf", ".2f"),
    ("seconds_per_step", "s a step", ".3f"), ("wall_a", "wall, A steps", ".1f"), ("wall_b", "wall, B steps", ".1f"),
]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="small", choices=["tiny", "small", "original"])
    p.add_argument("--steps", default="3,8", help="the two step counts A,B (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--unroll-steps", type=int, default=20)
    p.add_argument("--negatives", type=int, default=1024, help="sampled softmax negatives (default %(default)s)")
    p.add_argument("--impl", default=",".join(IMPLEMENTATIONS))
    p.add_argument("--bilm-tf", default=DEFAULT_BILM_TF)
    p.add_argument("--wordnet", default=DEFAULT_WORDNET)
    p.add_argument("--append", action="store_true", help="append the results to benchmarks/RESULTS.md")
    args = p.parse_args(argv)
    try:
        a, b = (int(x) for x in args.steps.split(","))
    except ValueError:
        p.error(f"--steps: expected two step counts A,B, found {args.steps!r}")
    if not 0 < a < b:
        p.error("--steps: expected 0 < A < B")
    impls = [i.strip() for i in args.impl.split(",")]
    unknown = [i for i in impls if i not in IMPLEMENTATIONS]
    if unknown:
        p.error(f"--impl: unknown {unknown}; choose from {', '.join(IMPLEMENTATIONS)}")
    if "bilm-tf" in impls and not os.path.isfile(os.path.join(args.bilm_tf, "bilm", "training.py")):
        print(f"skip: bilm-tf: its code is not at {args.bilm_tf} (pass --bilm-tf PATH)")
        impls.remove("bilm-tf")
    if not os.path.isdir(args.wordnet):
        sys.exit(f"{args.wordnet} not found: install Debian's wordnet-base or pass --wordnet DIR")
    rows, status = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        pattern, vocab_file, n_tokens = write_corpus(tmp, args.wordnet)
        with open(vocab_file, encoding="utf-8") as f:
            n_vocab = sum(1 for _ in f)
        print(f"corpus: {n_tokens:,} tokens, vocabulary {n_vocab:,}; steps {a} and {b} of "
              f"{args.batch_size} x {args.unroll_steps} tokens", flush=True)
        for impl in impls:
            walls = []
            for steps in (a, b):
                print(f"[{impl}] {steps} steps ...", flush=True)
                wall, error = timed_run(impl, args, tmp, pattern, vocab_file, n_vocab, steps)
                if error:
                    print(f"[{impl}] FAILED: {error}")
                    status = 1
                    break
                walls.append(wall)
            if len(walls) < 2:
                rows.append({"impl": impl + " (failed)"})
                continue
            per_step = (walls[1] - walls[0]) / (b - a)
            rows.append({"impl": impl, "wall_a": walls[0], "wall_b": walls[1], "seconds_per_step": per_step,
                         "tokens_per_s": args.batch_size * args.unroll_steps / per_step})
            print(f"[{impl}] {rows[-1]['tokens_per_s']:,.0f} tokens/s", flush=True)
    reference = next((r for r in rows if r["impl"] == "bilm-tf" and "tokens_per_s" in r), None)
    for r in rows:
        if reference and "tokens_per_s" in r:
            r["ratio"] = r["tokens_per_s"] / reference["tokens_per_s"]
    body = common.markdown_table(rows, COLUMNS) + (
        f"\n\n- Corpus: {n_tokens:,} tokens of WordNet gloss sentences (the bundled model's training side), "
        f"vocabulary {n_vocab:,}; options: `{args.config}` with batch {args.batch_size} x {args.unroll_steps}, "
        f"{args.negatives} negatives, dropout 0.1; rate = tokens of {b - a} steps over the difference of the "
        f"wall times of runs of {a} and {b} steps; load average {os.getloadavg()[0]:.2f} at the end.")
    print("\n" + body + f"\n\nmachine: {common.machine_line()}\nsoftware: {common.versions_line()}")
    if args.append:
        common.append_results(f"Pretraining, elmo-keras train vs bilm-tf: {args.config}",
                              {"steps": f"{a} and {b}", "implementations": ", ".join(impls)}, body)
    return status


if __name__ == "__main__":
    sys.exit(main())
