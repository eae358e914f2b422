"""Bulk embedding: `elmo-keras embed-beam` with 1 and 2 worker processes against `ElmoEmbedder` in one process.

    python benchmarks/bench_beam.py --config bundled --sentences 2000 --workers 1,2 --append

The same text (`--sentences` sentences of `--min-len`..`--max-len` words,
Zipf-distributed over the system word list, in `--shards` files) is embedded,
in the same run, by:

- `ElmoEmbedder`: one fresh process, `embed_sentences(..., batch_size=64)`, the
  top layer of every sentence kept in memory (nothing written);
- `elmo-keras embed-beam --layers top` on the DirectRunner with
  `--direct_running_mode multi_processing --direct_num_workers N`: reads the
  files, embeds, writes Parquet shards.

Each Beam run is also repeated on a one-line input, to measure its fixed cost
(starting the worker processes, importing TensorFlow, loading the model,
finalising the sinks); "marginal tokens/s" is tokens / (pipeline seconds -
fixed seconds), the rate a long run approaches. "CPU s" is the CPU time of the
command and its worker processes (getrusage of the children), so CPU s / wall
s / cores shows how much of the machine the run had (others share it).

`--config bundled` is the model shipped with the package (2 x 256 cells,
projection 128); `small` and `original` are the released sizes with random
weights (`configs.py`).
"""

import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402

EMBEDDER_BATCH_SIZE = 64


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(command, env=None):
    """(completed process, wall seconds, CPU seconds of it and its children)."""
    cpu, start = _children_cpu(), time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=common.REPO)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-4000:]}")
    return result, wall, cpu


def embedder_worker(options_file, weight_file, pattern):
    """Child process: ElmoEmbedder over the lines of the files of `pattern`; print JSON timings."""
    start = time.perf_counter()
    from elmo_keras.embedder import ElmoEmbedder, select_layers

    sentences = []
    for path in sorted(glob.glob(pattern)):
        with open(path, encoding="utf-8") as f:
            sentences += [line.split() for line in f]
    embedder = ElmoEmbedder(options_file, weight_file)
    loaded = time.perf_counter()
    kept = [select_layers(v, "top").copy()
            for v in embedder.embed_sentences(sentences, batch_size=EMBEDDER_BATCH_SIZE)]
    done = time.perf_counter()
    print(json.dumps({"load_s": loaded - start, "embed_s": done - loaded, "sentences": len(kept),
                      "tokens": sum(len(s) for s in sentences)}))


def _beam_command(options_file, weight_file, pattern, prefix, workers, max_tokens):
    return [sys.executable, "-m", "elmo_keras.cli", "embed-beam", "--input", pattern, "--output", prefix,
            "--options-file", options_file, "--weight-file", weight_file, "--layers", "top",
            "--max-tokens-per-batch", str(max_tokens), "--direct_running_mode", "multi_processing",
            "--direct_num_workers", str(workers)]


def _load():
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="bundled", help="bundled (default), tiny, small or original")
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--min-len", type=int, default=10)
    parser.add_argument("--max-len", type=int, default=40)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    parser.add_argument("--max-tokens-per-batch", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--append", action="store_true", help="append the results to benchmarks/RESULTS.md")
    parser.add_argument("--embedder-worker", nargs=3, metavar=("OPTIONS", "WEIGHTS", "PATTERN"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.embedder_worker:
        embedder_worker(*args.embedder_worker)
        return

    folder = tempfile.mkdtemp(prefix="bench_beam_")
    if args.config == "bundled":
        from elmo_keras.pretrained import default_model_files

        options_file, weight_file = default_model_files()
    else:
        from configs import write_random_model

        options_file, weight_file = write_random_model(args.config, folder, seed=args.seed)
    sentences, source = common.make_sentences(args.sentences, args.min_len, args.max_len, args.seed)
    text_dir = os.path.join(folder, "text")
    os.makedirs(text_dir)
    for shard in range(args.shards):
        with open(os.path.join(text_dir, f"part-{shard}.txt"), "w", encoding="utf-8") as f:
            f.writelines(" ".join(s) + "\n" for s in sentences[shard :: args.shards])
    with open(os.path.join(folder, "one.txt"), "w", encoding="utf-8") as f:
        f.write(" ".join(sentences[0]) + "\n")
    pattern = os.path.join(text_dir, "part-*.txt")
    n_tokens = sum(len(s) for s in sentences)
    print(f"{len(sentences)} sentences, {n_tokens} tokens in {args.shards} files; model {args.config}; "
          f"load average {_load()}", flush=True)

    rows, loads = [], [_load()]
    result, wall, cpu = _timed([sys.executable, os.path.abspath(__file__), "--embedder-worker", options_file,
                                weight_file, pattern])
    timing = json.loads(result.stdout.strip().splitlines()[-1])
    assert timing["tokens"] == n_tokens
    rows.append({"run": "ElmoEmbedder, 1 process", "wall": wall, "cpu": cpu, "pipeline": timing["embed_s"],
                 "fixed": timing["load_s"], "tokens_s": n_tokens / timing["embed_s"],
                 "marginal": n_tokens / timing["embed_s"], "per_worker": n_tokens / timing["embed_s"]})
    print(rows[-1], flush=True)
    loads.append(_load())
    for workers in [int(w) for w in args.workers.split(",")]:
        prefix = os.path.join(folder, f"out{workers}", "vectors")
        result, wall, cpu = _timed(_beam_command(options_file, weight_file, pattern, prefix, workers,
                                                 args.max_tokens_per_batch))
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert summary["tokens"] == n_tokens and summary["sentences"] == len(sentences), summary
        fixed_run, _, _ = _timed(_beam_command(options_file, weight_file, os.path.join(folder, "one.txt"),
                                               os.path.join(folder, f"one{workers}", "vectors"), workers,
                                               args.max_tokens_per_batch))
        fixed = json.loads(fixed_run.stdout.strip().splitlines()[-1])["seconds"]
        marginal = n_tokens / max(summary["seconds"] - fixed, 1e-9)
        rows.append({"run": f"embed-beam, {workers} worker process{'es' if workers > 1 else ''}", "wall": wall,
                     "cpu": cpu, "pipeline": summary["seconds"], "fixed": fixed,
                     "tokens_s": n_tokens / summary["seconds"], "marginal": marginal,
                     "per_worker": marginal / workers, "batches": summary["batches"],
                     "shards": len(summary["shards"])})
        print(rows[-1], flush=True)
        loads.append(_load())

    cores = len(os.sched_getaffinity(0))
    for row in rows:
        row["share"] = row["cpu"] / (row["wall"] * cores)
    columns = [("run", "run", "s"), ("wall", "command wall s", ".1f"), ("cpu", "CPU s", ".1f"),
               ("share", "CPU s / (wall s x cores)", ".2f"),
               ("fixed", "fixed s (load; Beam: 1-line run)", ".1f"),
               ("pipeline", "embedding s (Beam: whole pipeline)", ".1f"), ("tokens_s", "tokens/s", ",.0f"),
               ("marginal", "marginal tokens/s", ",.0f"), ("per_worker", "marginal tokens/s per worker", ",.0f")]
    table = common.markdown_table(rows, columns)
    print(table)
    if args.append:
        settings = {
            "model": args.config + (" (savedmodels/default: 2 x 256 cells, projection 128)"
                                    if args.config == "bundled" else " (random weights, configs.py)"),
            "text": f"{len(sentences)} sentences of {args.min_len}-{args.max_len} words, {n_tokens} tokens, "
                    f"{args.shards} files; words from {source}",
            "embed-beam": f"--layers top --max-tokens-per-batch {args.max_tokens_per_batch}, Parquet out, "
                          f"DirectRunner (FnApiRunner) multi_processing; ElmoEmbedder: batch_size "
                          f"{EMBEDDER_BATCH_SIZE}, top layer kept in memory",
            "load average (1/5/15 min) before each run and at the end": "; ".join(loads),
        }
        common.append_results("Bulk embedding with Apache Beam: embed-beam vs ElmoEmbedder", settings, table)


if __name__ == "__main__":
    main()
