"""Training speed of the biLM language model: tokens/s of `train_on_batch`, per backend.

    python benchmarks/bench_train.py --config small --batch-size 32 --unroll-steps 20

Tokens are counted as bilm-tf counts them: batch_size x unroll_steps per step
(each token is predicted by the forward and by the backward LM). FLOPs per
token are `flops.training_flops_per_position` (about 3x the forward pass of
the char-CNN on both streams, the biLSTM and the softmax of both directions).

The model is `elmo_keras.models.language_model.LanguageModel`, imported only
when the benchmark runs; without it the benchmark reports a skip.
The optimizer is bilm-tf's (Adagrad, learning rate 0.2, initial accumulator
1.0, global norm clip 10), the data random windows of Zipf-distributed words.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
from configs import get_options  # noqa: E402
from flops import training_flops_per_position  # noqa: E402

DEFAULT_BATCH = {"tiny": 8, "small": 32, "original": 8}


def _windows(batch_size, unroll_steps, vocab_size, steps, seed, max_chars=50):
    """`steps` training batches: char ids of word windows, reversed windows, targets, weights."""
    from elmo_keras.preprocessing.char_ids import token_to_char_ids

    rng = np.random.default_rng(seed)
    n = batch_size * unroll_steps
    sentences, _ = common.make_sentences(steps * n // 10 + 10, 10, 10, seed)
    stream = [w for s in sentences for w in s]
    cache = {}

    def ids_of(words):
        rows = []
        for w in words:
            if w not in cache:
                cache[w] = token_to_char_ids(w, max_chars)
            rows.append(cache[w])
        return np.stack(rows).reshape(batch_size, unroll_steps, max_chars)

    batches = []
    for step in range(steps):
        words = stream[step * n : (step + 1) * n]
        batches.append({
            "char_ids": ids_of(words),
            "char_ids_reverse": ids_of(words[::-1]),
            "next_token_id": rng.integers(0, vocab_size, (batch_size, unroll_steps)).astype("int32"),
            "next_token_id_reverse": rng.integers(0, vocab_size, (batch_size, unroll_steps)).astype("int32"),
            "weights": np.ones((batch_size, unroll_steps), "float32"),
        })
    return batches


def run(args):
    """Worker: build the language model, time train_on_batch."""
    try:
        from elmo_keras.models.language_model import LanguageModel
    except ImportError as e:
        return {"skipped": f"elmo_keras.models.language_model is not available ({e})"}
    import keras

    backend = keras.backend.backend()
    options = get_options(args["config"])
    options.update({"n_tokens_vocab": args["vocab_size"], "batch_size": args["batch_size"],
                    "unroll_steps": args["unroll_steps"], "n_negative_samples_batch": args["negatives"],
                    "dropout": 0.1, "mixed_precision": args["precision"] == "mixed_bfloat16"})
    if args["precision"] == "mixed_bfloat16":
        keras.config.set_dtype_policy("mixed_bfloat16")
    rss_start = common.current_rss_mib()
    model = LanguageModel(options, batch_size=args["batch_size"])
    optimizer = keras.optimizers.Adagrad(learning_rate=0.2, initial_accumulator_value=1.0, global_clipnorm=10.0)
    jit = {"auto": "auto", "true": True, "false": False}[args["jit_compile"]]
    model.compile(optimizer=optimizer, jit_compile=jit)
    batches = _windows(args["batch_size"], args["unroll_steps"], args["vocab_size"], args["steps"] + 1,
                       args["seed"])
    rss_built = common.current_rss_mib()
    t = time.perf_counter()
    model.train_on_batch(batches[0], return_dict=True)
    first = time.perf_counter() - t
    seconds, cpu_seconds = [], []
    cpu, wall = common.cpu_seconds(), time.perf_counter()
    for batch in batches[1:]:
        c, t = common.cpu_seconds(), time.perf_counter()
        logs = model.train_on_batch(batch, return_dict=True)
        seconds.append(time.perf_counter() - t)
        cpu_seconds.append(common.cpu_seconds() - c)
    cpu_share = (common.cpu_seconds() - cpu) / (time.perf_counter() - wall) / os.cpu_count()
    peak = common.peak_rss_mib()
    tokens = args["batch_size"] * args["unroll_steps"]
    step = float(np.median(seconds))
    per_token = training_flops_per_position(options, args["vocab_size"], args["negatives"])
    lib = "tensorflow" if backend == "tensorflow" else "jax"
    matmul, shapes = common.measure_matmuls(["numpy", lib], options, args["batch_size"])
    gflops = per_token * tokens / step / 1e9
    gflops_cpu = per_token * tokens / float(np.median(cpu_seconds)) / 1e9
    return {"backend": backend, "jit_compile": str(model.jit_compile), "tokens_per_s": tokens / step,
            "step_s": step, "first_step_s": first, "gflops": gflops,
            "frac_matmul": gflops / matmul["wall"][lib]["large"], "matmul_large": matmul["wall"][lib]["large"],
            "numpy_large": matmul["wall"]["numpy"]["large"], "matmul_cpu_share": matmul["cpu_share"],
            "tokens_per_cpu_s": tokens / float(np.median(cpu_seconds)),
            "frac_cpu": gflops_cpu / matmul["cpu"][lib]["large"],
            "peak_rss_mib": peak, "rss_built_mib": rss_built, "rss_start_mib": rss_start,
            "cpu_share": cpu_share, "loss": float(logs["loss"]), "flops_per_token": per_token}


COLUMNS = [("backend", "backend", ""), ("jit_compile", "jit_compile", ""), ("tokens_per_s", "tokens/s", ",.0f"),
           ("step_s", "step s (median)", ".2f"), ("first_step_s", "first step s", ".1f"),
           ("gflops", "GFLOP/s", ".1f"), ("frac_matmul", "fraction of matmul", ".2f"),
           ("matmul_large", "matmul GFLOP/s", ".1f"), ("tokens_per_cpu_s", "tokens per CPU-s", ",.0f"),
           ("frac_cpu", "fraction of matmul (CPU time)", ".2f"), ("peak_rss_mib", "peak RSS MiB", ",.0f"),
           ("rss_built_mib", "RSS built MiB", ",.0f"), ("cpu_share", "CPU share", ".2f"),
           ("matmul_cpu_share", "CPU share (matmul)", ".2f")]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="small", choices=["tiny", "small", "original"])
    p.add_argument("--backend", default="both", choices=["tensorflow", "jax", "both"])
    p.add_argument("--batch-size", type=int, default=None, help="rows per step (bilm-tf: 128 per GPU)")
    p.add_argument("--unroll-steps", type=int, default=20)
    p.add_argument("--vocab-size", type=int, default=100_000, help="softmax size (bilm-tf: 793,471)")
    p.add_argument("--negatives", type=int, default=8192, help="sampled-softmax negatives per batch")
    p.add_argument("--steps", type=int, default=3, help="timed steps (after one warm-up step)")
    p.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"])
    p.add_argument("--jit-compile", default="auto", choices=["auto", "true", "false"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-results", action="store_true", help="do not append to RESULTS.md")
    args = p.parse_args()
    args.batch_size = args.batch_size or DEFAULT_BATCH[args.config]
    backends = ["tensorflow", "jax"] if args.backend == "both" else [args.backend]
    start = time.time()
    rows, notes = [], []
    for backend in backends:
        print(f"[{backend}] training ...", flush=True)
        r = common.run_worker(__file__, dict(vars(args)), backend, timeout=1800)
        if "error" in r:
            print(f"[{backend}] FAILED: {r['error']}")
            notes.append(f"{backend}: failed: {r['error'][-400:]}")
            continue
        if "skipped" in r:
            print(f"[{backend}] skipped: {r['skipped']}")
            notes.append(f"{backend}: skipped: {r['skipped']}")
            continue
        rows.append(r)
        print(f"[{backend}] {r['tokens_per_s']:.0f} tokens/s, step {r['step_s']:.2f} s, "
              f"peak {r['peak_rss_mib']:.0f} MiB", flush=True)
    body = common.markdown_table(rows, COLUMNS) if rows else "(no result)"
    if rows:
        notes.insert(0, f"tokens = batch x unroll_steps per step; {rows[0]['flops_per_token']:,.0f} training "
                        f"FLOPs per token (3x forward: char-CNN on both streams, biLSTM, sampled softmax).")
    body += "\n\n" + "\n".join(f"- {n}" for n in notes)
    print("\n" + body)
    settings = {"configuration": f"{args.config} (random weights)", "backend": ", ".join(backends),
                "precision": args.precision,
                "batch": f"{args.batch_size} rows x {args.unroll_steps} unroll steps, vocabulary "
                         f"{args.vocab_size:,}, {args.negatives} negatives, dropout 0.1, {args.steps} timed steps",
                "wall time of the command": f"{time.time() - start:.0f} s"}
    if not args.no_results:
        common.append_results(f"Training throughput: {args.config}", settings, body)


if __name__ == "__main__":
    if "--worker" in sys.argv:
        common.worker_main(run)
    else:
        main()
