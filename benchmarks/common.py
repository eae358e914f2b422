"""What every benchmark shares: the machine, test sentences, matmul FLOP/s, workers, RESULTS.md.

Each measurement runs in a fresh child process (a "worker"): Keras picks its
backend once per process, and `ru_maxrss` (peak resident memory) is only
meaningful for a process that did one thing.
"""

import datetime
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULTS_FILE = os.path.join(HERE, "RESULTS.md")
WORD_LIST = "/usr/share/dict/words"
MAKE_CORPUS = os.path.join(REPO, "savedmodels", "default", "make_corpus.py")


def load_make_corpus(path=MAKE_CORPUS):
    """The bundled model's corpus builder (`savedmodels/default/make_corpus.py`), imported by path.

    It is not part of the package; benchmarks use its held-out rule and WordNet reader.
    """
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_corpus", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- machine

def cpu_model():
    """The CPU model name from /proc/cpuinfo (or the platform's guess)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    except OSError:
        pass
    return []


def memory_gib():
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def package_version(name):
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine_line():
    """One line: CPU model, cores, vector flags, memory."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{cpu_model()}, {cores} cores ({os.cpu_count()} logical CPUs), "
            f"flags {' '.join(cpu_flags()) or 'none of avx2/avx512'}, {memory_gib():.1f} GiB RAM")


def versions_line(packages=("numpy", "keras", "tensorflow", "jax", "jaxlib", "torch")):
    found = [f"{p} {package_version(p)}" for p in packages if package_version(p)]
    return f"Python {platform.python_version()}, " + ", ".join(found)


# ---------------------------------------------------------------- memory

def peak_rss_mib():
    """Peak resident memory of this process so far (ru_maxrss, KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib():
    try:
        with open("/proc/self/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def cpu_seconds():
    """User + system CPU seconds of this process (all threads)."""
    t = os.times()
    return t.user + t.system


# ---------------------------------------------------------------- sentences

def word_list():
    """(words, source): the system word list when present, else generated pseudo-words."""
    if os.path.exists(WORD_LIST):
        with open(WORD_LIST, encoding="utf-8", errors="ignore") as f:
            words = sorted({w.strip() for w in f if w.strip() and " " not in w.strip()})
        if len(words) > 1000:
            return words, f"{WORD_LIST} ({len(words)} words)"
    rng = np.random.default_rng(12345)
    letters = np.array(list("etaoinshrdlcumwfgypbvkjxqz"))
    weights = np.linspace(2.0, 0.2, len(letters))
    weights /= weights.sum()
    words = sorted({"".join(rng.choice(letters, size=int(n), p=weights))
                    for n in np.clip(rng.geometric(0.2, size=60000), 1, 20)})
    return words, f"generated pseudo-words ({len(words)} words)"


def make_sentences(n, min_len, max_len, seed, zipf=1.0):
    """`n` sentences of uniformly random length in [min_len, max_len] words.

    Words are drawn with Zipf frequencies (rank r has weight 1 / (r + 1) ** zipf)
    over a seeded shuffle of the word list, so that repeats within a batch are
    about as common as in text (this matters for the char-CNN cache).
    Returns (sentences, word source).
    """
    words, source = word_list()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(words))
    weights = 1.0 / np.arange(1, len(words) + 1) ** zipf
    weights /= weights.sum()
    lengths = rng.integers(min_len, max_len + 1, size=n)
    drawn = rng.choice(len(words), size=int(lengths.sum()), p=weights)
    flat = [words[order[k]] for k in drawn]
    sentences, start = [], 0
    for length in lengths:
        sentences.append(flat[start : start + int(length)])
        start += int(length)
    return sentences, source


def char_id_batch(sentences, max_characters_per_token=50):
    """Char ids exactly as `ElmoEmbedder` pads them (time rounded up to its LENGTH_BUCKET)."""
    from elmo_keras.embedder import LENGTH_BUCKET
    from elmo_keras.preprocessing.char_ids import tokens_to_char_ids

    length = -(-(max(len(s) for s in sentences) + 2) // LENGTH_BUCKET) * LENGTH_BUCKET
    ids = np.zeros((len(sentences), length, max_characters_per_token), dtype=np.int32)
    for k, sentence in enumerate(sentences):
        ids[k, : len(sentence) + 2] = tokens_to_char_ids(sentence, max_characters_per_token)
    return ids


# ---------------------------------------------------------------- matmul FLOP/s

def _time_calls(call, min_seconds, min_calls=3, max_calls=200):
    """Median wall seconds and median process CPU seconds of `call` (after a warm-up call)."""
    call()  # warm-up (compilation, thread pool start)
    walls, cpus, start = [], [], time.perf_counter()
    while len(walls) < min_calls or (time.perf_counter() - start < min_seconds and len(walls) < max_calls):
        c, t = cpu_seconds(), time.perf_counter()
        call()
        walls.append(time.perf_counter() - t)
        cpus.append(cpu_seconds() - c)
    return float(np.median(walls)), float(np.median(cpus))


def matmul_gflops(lib, m, k, n, min_seconds=0.5):
    """Float32 (m, k) x (k, n) matmul rate of `lib`: (GFLOP per wall second, GFLOP per CPU second).

    lib: "numpy", "tensorflow" (eager `tf.linalg.matmul`), "jax" (a jitted
    product) or "torch" (eager `torch.matmul`, CPU tensors). One timed call
    makes ~0.5 GFLOP worth of products back to back,
    so the per-call dispatch (tens of microseconds) is a few percent at most
    even for the recurrent (batch, P) x (P, 4D) product. Medians over calls.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    r = max(1, int(5e8 // (2 * m * k * n)))
    if lib == "numpy":
        def call():
            for _ in range(r):
                np.matmul(a, b)
    elif lib == "tensorflow":
        import tensorflow as tf

        ta, tb = tf.constant(a), tf.constant(b)

        def call():
            for _ in range(r):
                c = tf.linalg.matmul(ta, tb)
            c.numpy()
    elif lib == "jax":
        import jax
        import jax.numpy as jnp

        ja, jb = jnp.asarray(a), jnp.asarray(b)
        product = jax.jit(jnp.matmul)

        def call():
            for _ in range(r):
                c = product(ja, jb)
                c.block_until_ready()
    elif lib == "torch":
        import torch

        ta, tb = torch.from_numpy(a), torch.from_numpy(b)

        def call():
            with torch.no_grad():
                for _ in range(r):
                    torch.matmul(ta, tb)
    else:
        raise ValueError(lib)
    wall, cpu = _time_calls(call, min_seconds)
    flops = 2.0 * m * k * n * r
    return flops / wall / 1e9, flops / max(cpu, 1e-9) / 1e9


def matmul_shapes(options, batch_size, time_steps=40):
    """The reference products: the issue's large one and ELMo's own (input gates, recurrent)."""
    p, d = options["lstm"]["projection_dim"], options["lstm"]["dim"]
    return {
        "large": (batch_size * time_steps, 1024, 4096),
        "input_gates": (batch_size * time_steps, p, 4 * d),
        "recurrent": (batch_size, p, 4 * d),
    }


def measure_matmuls(libs, options, batch_size):
    """Matmul rates measured in this process, and the shapes.

    Returns ({"wall": {lib: {shape: GFLOP/s}}, "cpu": {lib: {shape: GFLOP per
    CPU-second}}, "cpu_share": ...}, shapes). `cpu_share` is this process's CPU
    time over (wall time x logical CPUs) while measuring; well below 1 means
    other processes took CPU.
    """
    shapes = matmul_shapes(options, batch_size)
    cpu, wall = cpu_seconds(), time.perf_counter()
    rates = {lib: {name: matmul_gflops(lib, *mkn) for name, mkn in shapes.items()} for lib in libs}
    share = (cpu_seconds() - cpu) / (time.perf_counter() - wall) / os.cpu_count()
    return {"wall": {lib: {k: v[0] for k, v in r.items()} for lib, r in rates.items()},
            "cpu": {lib: {k: v[1] for k, v in r.items()} for lib, r in rates.items()},
            "cpu_share": share}, shapes


# ---------------------------------------------------------------- workers

def worker_env(backend, extra=None):
    env = dict(os.environ)
    env.update({"KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2", "JAX_PLATFORMS": "cpu",
                "PYTHONPATH": os.pathsep.join([HERE, REPO, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)})
    env.update(extra or {})
    return env


def run_worker(script, args, backend, timeout=1200, env=None, python=None):
    """Run `script --worker IN OUT` in a fresh process on `backend`; return its JSON result.

    `python`: the interpreter (default: this one), e.g. a peer's own virtual environment.
    A failed worker gives `{"error": ...}` with the end of its output.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path_in, path_out = os.path.join(tmp, "in.json"), os.path.join(tmp, "out.json")
        with open(path_in, "w", encoding="utf-8") as f:
            json.dump(args, f)
        try:
            proc = subprocess.run([python or sys.executable, script, "--worker", path_in, path_out], cwd=REPO,
                                  env=env or worker_env(backend), capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout} s"}
        if proc.returncode != 0 or not os.path.exists(path_out):
            tail = (proc.stdout[-1500:] + "\n" + proc.stderr[-3000:]).strip()
            return {"error": f"exit {proc.returncode}: {tail}"}
        with open(path_out, encoding="utf-8") as f:
            return json.load(f)


def worker_main(handler):
    """Entry of a worker process: `--worker IN OUT`."""
    path_in, path_out = sys.argv[sys.argv.index("--worker") + 1 : sys.argv.index("--worker") + 3]
    with open(path_in, encoding="utf-8") as f:
        args = json.load(f)
    result = handler(args)
    with open(path_out, "w", encoding="utf-8") as f:
        json.dump(result, f)


# ---------------------------------------------------------------- output

def markdown_table(rows, columns):
    """rows: list of dicts; columns: list of (key, header, format)."""
    def cell(row, key, fmt):
        value = row.get(key)
        if value is None:
            return "-"
        if isinstance(value, str):
            return value
        return format(value, fmt)

    lines = ["| " + " | ".join(h for _, h, _ in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(cell(row, k, f) for k, _, f in columns) + " |")
    return "\n".join(lines)


def command_line():
    return "python " + shlex.join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])


def append_results(title, settings, body, path=RESULTS_FILE):
    """Append one run to RESULTS.md: title, date, command, machine, settings, then `body`."""
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [f"### {title} ({now})", "", f"- command: `{command_line()}`", f"- machine: {machine_line()}",
             f"- software: {versions_line()}"]
    lines += [f"- {key}: {value}" for key, value in settings.items()]
    text = "\n".join(lines) + "\n\n" + body.strip() + "\n\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
    print(f"\nappended to {os.path.relpath(path, os.getcwd())}")


def median_ms(seconds):
    return 1000.0 * float(np.median(seconds))
