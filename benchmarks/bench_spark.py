"""Bulk embedding: `elmo-keras embed-spark` with 1 and 2 executors against `ElmoEmbedder` in one process.

    python benchmarks/bench_spark.py --config bundled --sentences 4000 --executors 1,2 --append

The same text as `bench_beam.py` makes (2 x `--sentences` sentences of
`--min-len`..`--max-len` words, Zipf-distributed, in `--shards` files a half)
is embedded, in the same run, by:

- `ElmoEmbedder`: one fresh process (`bench_beam.embedder_worker`), the top
  layer of every sentence kept in memory, the two halves timed apart;
- `elmo-keras embed-spark --layers top` on a local Spark cluster of N
  executors, one core each (`--master local-cluster[N,1,1024]`: each executor
  its own JVM with its own Python worker), once on the first half and once on
  all of the text: Spark starts, reads the files as lines, embeds, writes Parquet.

"Marginal tokens/s" is the steady rate: the second half's tokens / (seconds of
the whole run - seconds of the first-half run) for Spark (each run's own
"seconds": from the Spark session's start to the written output), the second
half's tokens / its own seconds for `ElmoEmbedder`. "CPU s" is the CPU time
of the command and all its child processes (JVMs, Python workers), so that
CPU s / (wall s x cores) shows how much of the machine the run had. The
machine is shared: other jobs run beside; the load averages are recorded.
"""

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
from bench_beam import _load, _timed  # noqa: E402  (and its --embedder-worker, run as a child)


def _spark_command(options_file, weight_file, pattern, output, executors, max_tokens):
    return [sys.executable, "-m", "elmo_keras.cli", "embed-spark", "--input", pattern, "--output", output,
            "--options-file", options_file, "--weight-file", weight_file, "--layers", "top",
            "--max-tokens-per-batch", str(max_tokens), "--master", f"local-cluster[{executors},1,1024]",
            "--partitions", str(2 * executors), "--conf", "spark.ui.showConsoleProgress=false"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="bundled", help="bundled (default), tiny, small or original")
    parser.add_argument("--sentences", type=int, default=4000, help="sentences per half (default 4000)")
    parser.add_argument("--min-len", type=int, default=10)
    parser.add_argument("--max-len", type=int, default=40)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--executors", default="1,2", help="comma-separated executor counts (default 1,2)")
    parser.add_argument("--max-tokens-per-batch", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--append", action="store_true", help="append the results to benchmarks/RESULTS.md")
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="bench_spark_")
    if args.config == "bundled":
        from elmo_keras.pretrained import default_model_files

        options_file, weight_file = default_model_files()
    else:
        from configs import write_random_model

        options_file, weight_file = write_random_model(args.config, folder, seed=args.seed)
    n = args.sentences
    sentences, source = common.make_sentences(2 * n, args.min_len, args.max_len, args.seed)
    halves = (("first", sentences[:n]), ("second", sentences[n:]), ("all", sentences))
    patterns = {}
    for name, part in halves:
        text_dir = os.path.join(folder, name)
        os.makedirs(text_dir)
        for shard in range(args.shards):
            with open(os.path.join(text_dir, f"part-{shard}.txt"), "w", encoding="utf-8") as f:
                f.writelines(" ".join(s) + "\n" for s in part[shard :: args.shards])
        patterns[name] = os.path.join(text_dir, "part-*.txt")
    tokens = {name: sum(len(s) for s in part) for name, part in halves}
    print(f"2 x {n} sentences, {tokens['all']} tokens in {args.shards} files; model {args.config}; "
          f"load average {_load()} (a shared machine: other jobs run beside)", flush=True)

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [common.REPO, os.environ.get("PYTHONPATH")])))
    rows, loads = [], [_load()]
    result, wall, cpu = _timed([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                             "bench_beam.py"),
                                "--embedder-worker", options_file, weight_file, patterns["first"],
                                patterns["second"]], env=env)
    timing = json.loads(result.stdout.strip().splitlines()[-1])
    assert timing["first_tokens"] == tokens["first"] and timing["second_tokens"] == tokens["second"]
    rows.append({"run": "ElmoEmbedder, 1 process", "wall": wall, "cpu": cpu, "startup": timing["load_s"],
                 "first": timing["first_s"], "whole": timing["first_s"] + timing["second_s"],
                 "rows_s": 2 * n / wall, "tokens_s": tokens["all"] / wall,
                 "marginal": tokens["second"] / timing["second_s"]})
    rows[-1]["per_worker"] = rows[-1]["marginal"]
    print(rows[-1], flush=True)
    loads.append(_load())
    for executors in [int(e) for e in args.executors.split(",")]:
        seconds = {}
        for name in ("first", "all"):
            output = os.path.join(folder, f"out-{name}-{executors}.parquet")
            result, run_wall, run_cpu = _timed(_spark_command(options_file, weight_file, patterns[name], output,
                                                              executors, args.max_tokens_per_batch), env=env)
            summary = json.loads(result.stdout.strip().splitlines()[-1])
            assert summary["tokens"] == tokens[name] and summary["rows"] == len(dict(halves)[name]), summary
            seconds[name] = summary["seconds"]
            if name == "all":
                wall, cpu = run_wall, run_cpu
        marginal = tokens["second"] / max(seconds["all"] - seconds["first"], 1e-9)
        rows.append({"run": f"embed-spark, {executors} executor{'s' if executors > 1 else ''}", "wall": wall,
                     "cpu": cpu, "startup": None, "first": seconds["first"], "whole": seconds["all"],
                     "rows_s": 2 * n / wall, "tokens_s": tokens["all"] / wall, "marginal": marginal,
                     "per_worker": marginal / executors})
        print(rows[-1], flush=True)
        loads.append(_load())

    cores = len(os.sched_getaffinity(0))
    for row in rows:
        row["share"] = row["cpu"] / (row["wall"] * cores)
    columns = [("run", "run (all of the text)", "s"), ("wall", "command wall s", ".1f"), ("cpu", "CPU s", ".1f"),
               ("share", "CPU s / (wall s x cores)", ".2f"), ("startup", "model load s", ".1f"),
               ("first", "s, first half", ".1f"), ("whole", "s, all", ".1f"),
               ("rows_s", "rows/s (command wall)", ",.0f"), ("tokens_s", "tokens/s (command wall)", ",.0f"),
               ("marginal", "marginal tokens/s", ",.0f"), ("per_worker", "marginal tokens/s per executor", ",.0f")]
    table = common.markdown_table(rows, columns)
    print(table)
    print("taken on a shared machine: other jobs ran beside (load averages above)")
    if args.append:
        settings = {
            "model": args.config + (" (savedmodels/default: 2 x 256 cells, projection 128)"
                                    if args.config == "bundled" else " (random weights, configs.py)"),
            "text": f"2 x {n} sentences of {args.min_len}-{args.max_len} words, {tokens['first']} + "
                    f"{tokens['second']} tokens, {args.shards} files a half; words from {source}",
            "embed-spark": f"--layers top --max-tokens-per-batch {args.max_tokens_per_batch}, Parquet out, "
                           f"--master local-cluster[N,1,1024] (N executors of one core, each its own JVM and "
                           f"Python worker), 2N partitions; ElmoEmbedder: batch_size 64, top layer kept in memory",
            "CPU": f"{common.cpu_model()}, AVX-512: {'yes' if 'avx512f' in common.cpu_flags() else 'no'}; "
                   f"pyspark {common.package_version('pyspark')}",
            "shared machine": "other jobs ran beside these runs; the figures are of a shared machine",
            "load average (1/5/15 min) before each row's runs and at the end": "; ".join(loads),
        }
        common.append_results("Bulk embedding with Apache Spark: embed-spark vs ElmoEmbedder", settings, table)


if __name__ == "__main__":
    main()
