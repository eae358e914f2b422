"""Step time and memory of fine-tuning a downstream model on ELMo, on the CPU.

The downstream model is the word classifier of examples/finetune_classifier.py
(Elmo + the marked word's vector + softmax) on the `small` biLM (2 layers of
1024 cells projected to 128, filters [[1,32],[2,32],[3,64],[4,128],[5,256],
[6,512],[7,1024]], 1 highway layer, random weights), at batch 32 x 20 tokens,
one `train_on_batch` step with Adam. It compares:

- jit_compile=True against False (TensorFlow), and the JAX backend (always XLA);
- mixed_bfloat16 against float32;
- full fine-tuning (`trainable_backbone=True`) against the frozen biLM: step time
  and peak resident memory.

Step times: all the runs of one backend live in one process and take their
steps in turn (round robin), so that other processes on the cores slow them
alike; the best and the median step of each run are reported. Memory: each
memory run is a process of its own, so `ru_maxrss` is that run's peak.

"+stop_gradient" runs apply, from outside, the fix proposed for `Elmo.call`
(stop the gradient at the frozen biLM's activations): without it TensorFlow
differentiates through the frozen biLM's loop, and jit_compile fails. A run
that fails is reported with its error.

    python benchmarks/bench_finetune.py                # prints the tables, appends them to RESULTS.md
    python benchmarks/bench_finetune.py --steps 3 --no-append --only "frozen float32"
"""

import argparse
import datetime
import importlib.util
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "RESULTS.md"

SMALL = {
    "lstm": {"dim": 1024, "projection_dim": 128, "n_layers": 2, "cell_clip": 3, "proj_clip": 3,
             "use_skip_connections": True},
    "char_cnn": {"embedding": {"dim": 16}, "n_highway": 1, "activation": "relu", "n_characters": 262,
                 "max_characters_per_token": 50,
                 "filters": [[1, 32], [2, 32], [3, 64], [4, 128], [5, 256], [6, 512], [7, 1024]]},
}

# name: (backend, biLM trained, dtype policy, jit_compile, stop_gradient fix)
TIMED = {
    "tf frozen float32": ("tensorflow", False, "float32", False, False),
    "tf frozen float32 jit": ("tensorflow", False, "float32", True, False),
    "tf frozen float32 +stop_gradient": ("tensorflow", False, "float32", False, True),
    "tf frozen float32 jit +stop_gradient": ("tensorflow", False, "float32", True, True),
    "tf frozen bfloat16": ("tensorflow", False, "mixed_bfloat16", False, False),
    "tf frozen bfloat16 jit +stop_gradient": ("tensorflow", False, "mixed_bfloat16", True, True),
    "tf full float32": ("tensorflow", True, "float32", False, False),
    "tf full float32 jit": ("tensorflow", True, "float32", True, False),
    "tf full bfloat16": ("tensorflow", True, "mixed_bfloat16", False, False),
    "jax frozen float32 (jit)": ("jax", False, "float32", True, False),
    "jax frozen bfloat16 (jit)": ("jax", False, "mixed_bfloat16", True, False),
    "jax full float32 (jit)": ("jax", True, "float32", True, False),
}
MEASURED_MEMORY = ["tf frozen float32", "tf frozen float32 +stop_gradient", "tf full float32",
                   "jax frozen float32 (jit)", "jax full float32 (jit)"]


def load_example():
    spec = importlib.util.spec_from_file_location("finetune_classifier", REPO / "examples" / "finetune_classifier.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rss_mib():
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def stop_gradient_at_bilm(elmo):
    """The proposed `Elmo.call` fix, applied to one layer from outside."""
    from keras import ops

    call = elmo.bilm.call

    def frozen_call(*args, **kwargs):
        out = dict(call(*args, **kwargs))
        out["activations"] = ops.stop_gradient(out["activations"])
        return out

    elmo.bilm.call = frozen_call


def build(name, finetune):
    """The compiled classifier of run `name` (under its dtype policy)."""
    import keras

    from elmo_keras import Elmo

    _, full, policy, jit_compile, fix = TIMED[name]
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(policy)
    try:
        elmo = Elmo(SMALL, dropout=0.0, trainable_backbone=full, name="elmo")
        if fix:
            stop_gradient_at_bilm(elmo)
        model = finetune.build_classifier(elmo)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", jit_compile=jit_compile)
    return model


def batch(finetune, size, tokens):
    """`size` sentences of `tokens` real words (from the task's training split)."""
    import numpy as np

    words = [t for sentence, _, _ in finetune.load_wordnet_pos("train", 50 * size) for t in sentence]
    rng = np.random.default_rng(0)
    rows = [(words[k * tokens:(k + 1) * tokens], int(rng.integers(tokens)), int(rng.integers(2)))
            for k in range(size)]
    return finetune.encode(rows, pad_to=1)


def step(model, x, y):
    return float(model.train_on_batch(x, y, return_dict=True)["loss"])


def timing_worker(spec):
    """Round-robin steps of the runs `spec["names"]` (one backend); prints one JSON line."""
    import numpy as np

    finetune = load_example()
    x, y = batch(finetune, spec["batch"], spec["tokens"])
    models, results = {}, {}
    for name in spec["names"]:
        model = build(name, finetune)
        results[name] = {"trainable_params": sum(int(np.prod(w.shape)) for w in model.trainable_weights),
                         "input_shape": list(x["char_ids"].shape), "times": [], "cpu_times": []}
        try:
            start = time.perf_counter()
            for _ in range(spec["warmup"]):
                step(model, x, y)
            results[name]["first_steps_s"] = time.perf_counter() - start
            models[name] = model
        except Exception as error:  # reported in the table; the other runs go on
            results[name]["error"] = f"{type(error).__name__}: {str(error).strip().splitlines()[0][:90]}"
    for _ in range(spec["steps"]):
        for name, model in models.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            loss = step(model, x, y)
            results[name]["cpu_times"].append(time.process_time() - cpu_start)
            results[name]["times"].append(time.perf_counter() - start)
            results[name]["loss"] = loss
    for name in models:
        times, cpu_times = results[name].pop("times"), results[name].pop("cpu_times")
        results[name].update(step_ms=1000 * statistics.median(times), min_step_ms=1000 * min(times),
                             cpu_ms=1000 * statistics.median(cpu_times),
                             cpu_share=sum(cpu_times) / sum(times) / os.cpu_count(),
                             finite=bool(np.isfinite(results[name]["loss"])))
    print(json.dumps(results))


def memory_worker(spec):
    """Peak memory of a few steps of one run, alone in this process; prints one JSON line."""
    finetune = load_example()
    x, y = batch(finetune, spec["batch"], spec["tokens"])
    model = build(spec["name"], finetune)
    result = {"rss_built_mib": rss_mib()}
    for _ in range(3):
        step(model, x, y)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def spawn(backend, mode, spec):
    env = dict(os.environ, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, __file__, f"--{mode}", json.dumps(spec)], env=env,
                          capture_output=True, text=True, timeout=1800, cwd=REPO)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{mode} worker exit {proc.returncode}: {proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def machine():
    model, family, number, flags = "unknown", "?", "?", set()
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "model name" and model == "unknown":
                model = value
            elif key == "cpu family":
                family = value
            elif key == "model":
                number = value
            elif key == "flags" and not flags:
                flags = set(value.split())
    simd = " ".join(f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16") if f in flags)
    return f"{model} (cpu family {family}, model {number}; {simd}), {os.cpu_count()} cores"


def ratio(timed, a, b):
    """Step time of run `b` / of run `a` (how much faster `a` is): CPU time, best wall time."""
    if "min_step_ms" in timed.get(a, {}) and "min_step_ms" in timed.get(b, {}):
        return (f"{timed[b]['cpu_ms'] / timed[a]['cpu_ms']:.2f}x CPU time, "
                f"{timed[b]['min_step_ms'] / timed[a]['min_step_ms']:.2f}x best wall time")
    return "n/a"


def versions():
    import importlib.metadata
    import platform

    found = [f"Python {platform.python_version()}"]
    for package in ("numpy", "keras", "tensorflow", "jax", "jaxlib"):
        try:
            found.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return ", ".join(found)


def report(timed, memory, args, load, wall_s):
    base = timed.get("tf frozen float32", {}).get("cpu_ms")
    lines = [
        f"### Fine-tuning step time and memory: small "
        f"({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC)",
        "",
        f"- command: `{' '.join(['python', 'benchmarks/bench_finetune.py'] + sys.argv[1:])}`",
        f"- machine: {machine()}; load average (1 min) {load[0]:.1f} before, {load[1]:.1f} after",
        f"- software: {versions()}",
        f"- model: word classifier of examples/finetune_classifier.py on the `small` biLM (random weights), "
        f"batch {args.batch} x {args.tokens} tokens, Adam, one `train_on_batch` per step; the runs of a backend "
        f"share one process and take turns, step by step",
        f"- wall time of the command: {wall_s:.0f} s",
        "",
        "CPU ms is the process CPU time of a step (all threads; the least disturbed by other processes), "
        "best wall ms the fastest step, CPU share = CPU time / (wall time x cores): well below 1 means the "
        "cores were busy with other work.",
        "",
        f"| run | CPU ms (median of {args.steps}) | best wall ms | median wall ms | CPU share "
        f"| speed vs tf frozen float32 (CPU) | first {args.warmup} steps s | trainable params |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in timed.items():
        if "min_step_ms" in r:
            speed = f"{base / r['cpu_ms']:.2f}x" if base else ""
            lines.append(f"| {name} | {r['cpu_ms']:.0f} | {r['min_step_ms']:.0f} | {r['step_ms']:.0f} | "
                         f"{r['cpu_share']:.2f} | {speed} | {r['first_steps_s']:.1f} | {r['trainable_params']:,} |")
        else:
            lines.append(f"| {name} | fails: {r['error']} | | | | | | {r['trainable_params']:,} |")
    lines += ["", "| run (alone in a process, 3 steps) | RSS after build MiB | peak RSS MiB | peak - build MiB |",
              "| --- | ---: | ---: | ---: |"]
    for name, r in memory.items():
        lines.append(f"| {name} | {r['rss_built_mib']:.0f} | {r['peak_rss_mib']:.0f} | "
                     f"{r['peak_rss_mib'] - r['rss_built_mib']:.0f} |")
    lines += [
        "",
        "Speed-ups (step time of the second run / of the first; above 1: the first is faster):",
        "",
        "- jit_compile=True over False (TF, frozen, float32, both with the stop_gradient fix): "
        + ratio(timed, "tf frozen float32 jit +stop_gradient", "tf frozen float32 +stop_gradient"),
        "- the stop_gradient fix over none (TF, frozen, float32, no jit): "
        + ratio(timed, "tf frozen float32 +stop_gradient", "tf frozen float32"),
        "- mixed_bfloat16 over float32: TF frozen no jit "
        + ratio(timed, "tf frozen bfloat16", "tf frozen float32") + "; TF frozen jit "
        + ratio(timed, "tf frozen bfloat16 jit +stop_gradient", "tf frozen float32 jit +stop_gradient")
        + "; TF full " + ratio(timed, "tf full bfloat16", "tf full float32")
        + "; JAX frozen " + ratio(timed, "jax frozen bfloat16 (jit)", "jax frozen float32 (jit)"),
        "- frozen over full fine-tuning (float32): TF " + ratio(timed, "tf frozen float32", "tf full float32")
        + "; JAX " + ratio(timed, "jax frozen float32 (jit)", "jax full float32 (jit)"),
        "",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timing", help=argparse.SUPPRESS)
    parser.add_argument("--memory", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps (tracing, compiling)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--only", default=None, help="only the runs whose name contains this")
    parser.add_argument("--no-append", action="store_true", help="do not append to benchmarks/RESULTS.md")
    args = parser.parse_args()
    if args.timing:
        return timing_worker(json.loads(args.timing))
    if args.memory:
        return memory_worker(json.loads(args.memory))
    names = [name for name in TIMED if not args.only or args.only in name]
    common = {"batch": args.batch, "tokens": args.tokens, "steps": args.steps, "warmup": args.warmup}
    load_before, started_all = os.getloadavg()[0], time.perf_counter()
    timed = {}
    for backend in ("tensorflow", "jax"):
        group = [name for name in names if TIMED[name][0] == backend]
        if group:
            started = time.perf_counter()
            timed.update(spawn(backend, "timing", dict(common, names=group)))
            print(f"timed {backend}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    memory = {}
    for name in MEASURED_MEMORY:
        if name in names:
            memory[name] = spawn(TIMED[name][0], "memory", dict(common, name=name))
            print(f"memory {name}: {memory[name]}", file=sys.stderr, flush=True)
    text = report({name: timed[name] for name in names}, memory, args, (load_before, os.getloadavg()[0]),
                  time.perf_counter() - started_all)
    print(text)
    if not args.no_append:
        with open(RESULTS, "a", encoding="utf-8") as f:
            f.write("\n" + text)
        print(f"appended to {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
