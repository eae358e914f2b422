"""Bulk embedding: `elmo-keras embed-beam` with 1 and 2 worker processes against `ElmoEmbedder` in one process.

    python benchmarks/bench_beam.py --config bundled --sentences 4000 --workers 1,2 --append

The same text (2 x `--sentences` sentences of `--min-len`..`--max-len` words,
Zipf-distributed over the system word list, in `--shards` files) is embedded,
in the same run, by:

- `ElmoEmbedder`: one fresh process, `embed_sentences(..., batch_size=64)`, the
  top layer of every sentence kept in memory (nothing written); the first and
  the second half of the sentences are timed apart;
- `elmo-keras embed-beam --layers top` on the DirectRunner with
  `--direct_running_mode multi_processing --direct_num_workers N`, once on
  the first half and once on all of the text: it reads the files, embeds,
  writes Parquet shards.

A short run mostly measures warming up: starting processes, importing
TensorFlow, loading the model, one XLA compilation per batch shape, and the
char-CNN of every token not yet in the embedder's token cache. A long run
reaches a steady rate, which is what a billion tokens costs. "Marginal
tokens/s" is that rate for the second half of the text: the second half's
tokens / (seconds of the whole run - seconds of the first-half run) for Beam,
the second half's tokens / its own seconds for `ElmoEmbedder`. "CPU s" is the
CPU time of the command and its worker processes (getrusage of the
children), so CPU s / wall s / cores shows how much of the machine the run
had (others share it).

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


def _read_tokens(pattern):
    sentences = []
    for path in sorted(glob.glob(pattern)):
        with open(path, encoding="utf-8") as f:
            sentences += [line.split() for line in f]
    return sentences


def embedder_worker(options_file, weight_file, first_pattern, second_pattern):
    """Child process: ElmoEmbedder over the first, then the second files; print JSON timings."""
    start = time.perf_counter()
    from elmo_keras.embedder import ElmoEmbedder, select_layers

    embedder = ElmoEmbedder(options_file, weight_file)
    timings = {"load_s": time.perf_counter() - start}
    for half, pattern in (("first", first_pattern), ("second", second_pattern)):
        sentences = _read_tokens(pattern)
        begin = time.perf_counter()
        kept = [select_layers(v, "top").copy()
                for v in embedder.embed_sentences(sentences, batch_size=EMBEDDER_BATCH_SIZE)]
        timings[f"{half}_s"] = time.perf_counter() - begin
        timings[f"{half}_tokens"] = sum(len(s) for s in sentences)
        timings[f"{half}_sentences"] = len(kept)
    print(json.dumps(timings))


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
    parser.add_argument("--sentences", type=int, default=4000, help="sentences per half (default 4000)")
    parser.add_argument("--min-len", type=int, default=10)
    parser.add_argument("--max-len", type=int, default=40)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    parser.add_argument("--max-tokens-per-batch", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--append", action="store_true", help="append the results to benchmarks/RESULTS.md")
    parser.add_argument("--embedder-worker", nargs=4, metavar=("OPTIONS", "WEIGHTS", "FIRST", "SECOND"),
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
    n = args.sentences
    sentences, source = common.make_sentences(2 * n, args.min_len, args.max_len, args.seed)
    patterns = {}
    for name, part in (("first", sentences[:n]), ("second", sentences[n:]), ("all", sentences)):
        text_dir = os.path.join(folder, name)
        os.makedirs(text_dir)
        for shard in range(args.shards):
            with open(os.path.join(text_dir, f"part-{shard}.txt"), "w", encoding="utf-8") as f:
                f.writelines(" ".join(s) + "\n" for s in part[shard :: args.shards])
        patterns[name] = os.path.join(text_dir, "part-*.txt")
    tokens = {name: sum(len(s) for s in part) for name, part in
              (("first", sentences[:n]), ("second", sentences[n:]), ("all", sentences))}
    print(f"2 x {n} sentences, {tokens['all']} tokens in {args.shards} files; model {args.config}; "
          f"load average {_load()}", flush=True)

    rows, loads = [], [_load()]
    result, wall, cpu = _timed([sys.executable, os.path.abspath(__file__), "--embedder-worker", options_file,
                                weight_file, patterns["first"], patterns["second"]])
    timing = json.loads(result.stdout.strip().splitlines()[-1])
    assert timing["first_tokens"] == tokens["first"] and timing["second_tokens"] == tokens["second"]
    rows.append({"run": "ElmoEmbedder, 1 process", "wall": wall, "cpu": cpu, "startup": timing["load_s"],
                 "first": timing["first_s"], "whole": timing["first_s"] + timing["second_s"],
                 "tokens_s": tokens["all"] / wall, "marginal": tokens["second"] / timing["second_s"]})
    rows[-1]["per_worker"] = rows[-1]["marginal"]
    print(rows[-1], flush=True)
    loads.append(_load())
    for workers in [int(w) for w in args.workers.split(",")]:
        seconds = {}
        for name in ("first", "all"):
            prefix = os.path.join(folder, f"out-{name}-{workers}", "vectors")
            result, run_wall, run_cpu = _timed(_beam_command(options_file, weight_file, patterns[name], prefix,
                                                             workers, args.max_tokens_per_batch))
            summary = json.loads(result.stdout.strip().splitlines()[-1])
            assert summary["tokens"] == tokens[name] and summary["invalid_utf8_lines"] == 0, summary
            seconds[name] = summary["seconds"]
            if name == "all":
                wall, cpu, batches, shards = run_wall, run_cpu, summary["batches"], len(summary["shards"])
        marginal = tokens["second"] / max(seconds["all"] - seconds["first"], 1e-9)
        rows.append({"run": f"embed-beam, {workers} worker process{'es' if workers > 1 else ''}", "wall": wall,
                     "cpu": cpu, "startup": None, "first": seconds["first"], "whole": seconds["all"],
                     "tokens_s": tokens["all"] / wall, "marginal": marginal, "per_worker": marginal / workers,
                     "batches": batches, "shards": shards})
        print(rows[-1], flush=True)
        loads.append(_load())

    cores = len(os.sched_getaffinity(0))
    for row in rows:
        row["share"] = row["cpu"] / (row["wall"] * cores)
    columns = [("run", "run (all of the text)", "s"), ("wall", "command wall s", ".1f"), ("cpu", "CPU s", ".1f"),
               ("share", "CPU s / (wall s x cores)", ".2f"), ("startup", "model load s", ".1f"),
               ("first", "s, first half", ".1f"), ("whole", "s, all", ".1f"),
               ("tokens_s", "tokens/s (command wall)", ",.0f"), ("marginal", "marginal tokens/s", ",.0f"),
               ("per_worker", "marginal tokens/s per worker", ",.0f")]
    table = common.markdown_table(rows, columns)
    print(table)
    if args.append:
        settings = {
            "model": args.config + (" (savedmodels/default: 2 x 256 cells, projection 128)"
                                    if args.config == "bundled" else " (random weights, configs.py)"),
            "text": f"2 x {n} sentences of {args.min_len}-{args.max_len} words, {tokens['first']} + "
                    f"{tokens['second']} tokens, {args.shards} files a half; words from {source}",
            "embed-beam": f"--layers top --max-tokens-per-batch {args.max_tokens_per_batch}, Parquet out, "
                          f"DirectRunner (FnApiRunner) multi_processing; ElmoEmbedder: batch_size "
                          f"{EMBEDDER_BATCH_SIZE}, top layer kept in memory",
            "load average (1/5/15 min) before each row's runs and at the end": "; ".join(loads),
        }
        common.append_results("Bulk embedding with Apache Beam: embed-beam vs ElmoEmbedder", settings, table)


if __name__ == "__main__":
    main()
