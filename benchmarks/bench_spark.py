"""Bulk embedding: `elmo_keras.spark` with 1 and 2 executors against `ElmoEmbedder` in one process.

    python benchmarks/bench_spark.py --config bundled --sentences 4000 --executors 1,2 --append

The same text as `bench_beam.py` makes (2 x `--sentences` sentences of
`--min-len`..`--max-len` words, Zipf-distributed, in `--shards` files a half)
is embedded, in the same run, by:

- `ElmoEmbedder`: one fresh process (`bench_beam.embedder_worker`), the top
  layer of every sentence kept in memory, the two halves timed apart;
- `elmo_keras.spark` on a local Spark cluster of N executors of one core each
  (`local-cluster[N,1,1024]`: each executor its own JVM with its own Python
  worker), in one fresh process per N: the session starts (`start s`: until
  all N executors have registered), then the first half is read as lines
  (`read_text_lines`), embedded (`embed_dataframe(layers="top")`) and written
  as Parquet, then the second half the same way, each timed on its own.

The first half pays for warming up (the workers import TensorFlow, load the
model, compile each batch shape with XLA, fill the token cache); "marginal
tokens/s" is the second half's tokens / its own seconds, the steady rate a
long run approaches, for both. The machine is shared: other jobs run beside,
so each row records the load averages; CPU time is not shown, as the
executors' processes are not children the benchmark can account.
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
from bench_beam import _load, _timed  # noqa: E402  (and its --embedder-worker, run as a child)


def spark_worker(executors, options_file, weight_file, first_pattern, second_pattern, out_dir, max_tokens):
    """Child process: a local cluster of `executors`, then the two halves embedded one after the other."""
    begin = time.perf_counter()
    from elmo_keras.spark import EmbedCounters, embed_dataframe, read_text_lines
    from elmo_keras.spark.cli import spark_session

    spark, _ = spark_session(f"local-cluster[{executors},1,1024]",
                             conf=[("spark.ui.showConsoleProgress", "false"), ("spark.ui.enabled", "false")])
    status = spark.sparkContext._jsc.sc()
    while status.getExecutorMemoryStatus().size() - 1 < executors and time.perf_counter() - begin < 300:
        time.sleep(0.2)
    timings = {"start_s": time.perf_counter() - begin}
    for half, pattern in (("first", first_pattern), ("second", second_pattern)):
        start = time.perf_counter()
        counters = EmbedCounters(spark.sparkContext)
        lines = read_text_lines(spark, pattern, counters, num_partitions=2 * executors)
        embedded = embed_dataframe(lines, options_file=options_file, weight_file=weight_file, layers="top",
                                   max_tokens_per_batch=max_tokens, counters=counters)
        output = os.path.join(out_dir, f"{half}-{executors}.parquet")
        embedded.write.parquet(output)
        timings[f"{half}_s"] = time.perf_counter() - start
        timings[f"{half}_rows"] = spark.read.parquet(output).count()
        timings[f"{half}_tokens"] = counters.values()["tokens"]
    spark.stop()
    print(json.dumps(timings))


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
    parser.add_argument("--spark-worker", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.spark_worker:
        executors, *files, out_dir, max_tokens = args.spark_worker
        spark_worker(int(executors), *files, out_dir, int(max_tokens))
        return

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
    result, wall, _ = _timed([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                             "bench_beam.py"),
                                "--embedder-worker", options_file, weight_file, patterns["first"],
                                patterns["second"]], env=env)
    timing = json.loads(result.stdout.strip().splitlines()[-1])
    assert timing["first_tokens"] == tokens["first"] and timing["second_tokens"] == tokens["second"]
    rows.append({"run": "ElmoEmbedder, 1 process", "wall": wall, "startup": timing["load_s"],
                 "first": timing["first_s"], "whole": timing["first_s"] + timing["second_s"],
                 "rows_s": n / timing["second_s"], "tokens_s": tokens["all"] / wall,
                 "marginal": tokens["second"] / timing["second_s"]})
    rows[-1]["per_worker"] = rows[-1]["marginal"]
    print(rows[-1], flush=True)
    loads.append(_load())
    for executors in [int(e) for e in args.executors.split(",")]:
        result, wall, _ = _timed([sys.executable, os.path.abspath(__file__), "--spark-worker", str(executors),
                                  options_file, weight_file, patterns["first"], patterns["second"], folder,
                                  str(args.max_tokens_per_batch)], env=env)
        timing = json.loads(result.stdout.strip().splitlines()[-1])
        assert timing["first_tokens"] == tokens["first"] and timing["second_tokens"] == tokens["second"], timing
        assert timing["first_rows"] == n and timing["second_rows"] == n, timing
        rows.append({"run": f"elmo_keras.spark, {executors} executor{'s' if executors > 1 else ''}", "wall": wall,
                     "startup": timing["start_s"], "first": timing["first_s"],
                     "whole": timing["first_s"] + timing["second_s"],
                     "rows_s": n / timing["second_s"], "tokens_s": tokens["all"] / wall,
                     "marginal": tokens["second"] / timing["second_s"]})
        rows[-1]["per_worker"] = rows[-1]["marginal"] / executors
        print(rows[-1], flush=True)
        loads.append(_load())

    columns = [("run", "run (all of the text)", "s"), ("wall", "process wall s", ".1f"),
               ("startup", "start s (model load / Spark session)", ".1f"), ("first", "s, first half", ".1f"),
               ("whole", "s, both halves", ".1f"), ("tokens_s", "tokens/s (process wall)", ",.0f"),
               ("rows_s", "marginal rows/s", ",.0f"), ("marginal", "marginal tokens/s", ",.0f"),
               ("per_worker", "marginal tokens/s per executor", ",.0f")]
    table = common.markdown_table(rows, columns)
    print(table)
    print("taken on a shared machine: other jobs ran beside (load averages above)")
    if args.append:
        settings = {
            "model": args.config + (" (savedmodels/default: 2 x 256 cells, projection 128)"
                                    if args.config == "bundled" else " (random weights, configs.py)"),
            "text": f"2 x {n} sentences of {args.min_len}-{args.max_len} words, {tokens['first']} + "
                    f"{tokens['second']} tokens, {args.shards} files a half; words from {source}",
            "elmo_keras.spark": f"read_text_lines + embed_dataframe(layers='top', max_tokens_per_batch="
                                f"{args.max_tokens_per_batch}) + Parquet write, local-cluster[N,1,1024] (N "
                                f"executors of one core, each its own JVM and Python worker), 2N partitions, XLA "
                                f"on; ElmoEmbedder: batch_size 64, top layer kept in memory",
            "CPU": f"{common.cpu_model()}, AVX-512: {'yes' if 'avx512f' in common.cpu_flags() else 'no'}; "
                   f"pyspark {common.package_version('pyspark')}",
            "shared machine": "other jobs ran beside these runs; the figures are of a shared machine",
            "load average (1/5/15 min) before each row's runs and at the end": "; ".join(loads),
        }
        common.append_results("Bulk embedding with Apache Spark: elmo_keras.spark vs ElmoEmbedder", settings, table)


if __name__ == "__main__":
    main()
