"""Cold start: `elmo-keras embed` of two sentences with the bundled model, from a new process to the file written.

    python benchmarks/bench_cold_start.py --runs 3 --append
    python benchmarks/bench_cold_start.py --repo /path/to/other/checkout   # time another tree (before/after)

For each backend (`--backends`, default tensorflow, jax, torch), in fresh
processes of this Python:

- `command`: `python -m elmo_keras.cli embed TWO.txt OUT.hdf5 --quiet`, the
  wall time from starting the process to its exit with the file written:
  the first run, with `ELMO_KERAS_CACHE` a new empty folder (no compiled
  programs kept from before), and the median of the `--runs` - 1 later ones
  (which find what the earlier runs kept, where the tree keeps anything);
  beside it `python -c pass`, the interpreter alone;
- `phases`: one process doing what the command does, timed in parts:
  `import keras`, which includes elmo_keras's registration of its classes
  (`elmo_keras/registration.py`: right after Keras, every module defining a
  saved class is imported, and with them keras-hub where it is installed,
  which imports TensorFlow on every backend); the rest of the imports
  (`elmo_keras.cli`, `elmo_keras.embedder`); `ElmoEmbedder()` (reading the options and weights,
  building the model); `embed_file` of the two sentences (first vectors and
  the file: it includes the compilation of the shapes they need); the same
  `embed_file` again into another file (warm: its difference to the first is
  the compilation and first-call cost), with the compilation cache as the
  command has it. Also whether TensorFlow and keras-hub were imported.

The text: two short English sentences (7 and 5 tokens). `--repo` is the
elmo_keras checkout put first on `PYTHONPATH` (default: this one), so that a
commit before a change and after it are timed by the same script. The
machine is shared unless said otherwise: each row records the load average.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import common  # noqa: E402

TEXT = "The cat sat on the mat .\nA second sentence here .\n"

PHASES = r"""
import json, os, sys, time
t0 = time.perf_counter()
try:  # the command's compilation cache, where the tree has one (as `elmo-keras` turns it on)
    from elmo_keras.compilation_cache import enable_compilation_cache, enabled_by_environment
    if enabled_by_environment():
        enable_compilation_cache()
except ImportError:
    pass
import keras
t1 = time.perf_counter()
import elmo_keras.cli
from elmo_keras.embedder import ElmoEmbedder
t2 = time.perf_counter()
embedder = ElmoEmbedder()
t3 = time.perf_counter()
embedder.embed_file(sys.argv[1], sys.argv[2], progress=False)
t4 = time.perf_counter()
embedder.embed_file(sys.argv[1], sys.argv[3], progress=False)
t5 = time.perf_counter()
print(json.dumps({"import_keras": t1 - t0, "import_rest": t2 - t1, "load": t3 - t2, "first_embed": t4 - t3,
                  "warm_embed": t5 - t4, "tensorflow": "tensorflow" in sys.modules,
                  "keras_hub": "keras_hub" in sys.modules}))
"""


def _env(backend, repo, cache):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2", JAX_PLATFORMS="cpu",
               ELMO_KERAS_CACHE=cache)
    env["PYTHONPATH"] = os.pathsep.join([repo, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _wall(argv, env, cwd):
    t = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv)}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    return wall, proc.stdout


def measure(backend, repo, runs, tmp):
    text = os.path.join(tmp, "two.txt")
    with open(text, "w", encoding="utf-8") as f:
        f.write(TEXT)
    env = _env(backend, repo, os.path.join(tmp, "cache"))  # empty at the first run
    interpreter = statistics.median(_wall([sys.executable, "-c", "pass"], env, tmp)[0] for _ in range(runs))
    walls = []
    for k in range(runs):
        out = os.path.join(tmp, f"{backend}_{k}.hdf5")
        walls.append(_wall([sys.executable, "-m", "elmo_keras.cli", "embed", text, out, "--quiet"], env, tmp)[0])
        if not os.path.exists(out):
            raise RuntimeError(f"{backend}: the command wrote no {out}")
    load = os.getloadavg()[0]
    _, stdout = _wall([sys.executable, "-c", PHASES, text, os.path.join(tmp, f"{backend}_p1.hdf5"),
                       os.path.join(tmp, f"{backend}_p2.hdf5")], env, tmp)
    phases = json.loads(stdout.strip().splitlines()[-1])
    return dict(phases, backend=backend, command_first=walls[0], command=statistics.median(walls[1:] or walls),
                command_runs=len(walls), interpreter=interpreter, loadavg=load,
                libraries=", ".join(n for n in ("tensorflow", "keras_hub") if phases[n]) or "neither")


COLUMNS = [
    ("backend", "backend", ""), ("command_first", "command wall s, first run", ".2f"),
    ("command", "later runs (median)", ".2f"),
    ("interpreter", "python -c pass", ".2f"), ("import_keras", "import keras + registration", ".2f"),
    ("import_rest", "import elmo_keras", ".2f"), ("load", "ElmoEmbedder()", ".2f"),
    ("first_embed", "first embed_file", ".2f"), ("warm_embed", "again, warm", ".3f"),
    ("libraries", "imported", ""), ("loadavg", "load avg", ".2f"),
]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backends", default="tensorflow,jax,torch")
    p.add_argument("--runs", type=int, default=3, help="runs of the command per backend (median)")
    p.add_argument("--repo", default=common.REPO, help="the elmo_keras checkout timed (default: %(default)s)")
    p.add_argument("--label", default="", help="a note for the results' title (e.g. the commit)")
    p.add_argument("--append", action="store_true", help="append the results to benchmarks/RESULTS.md")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be positive")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            print(f"[{backend}] ...", flush=True)
            rows.append(measure(backend, os.path.abspath(args.repo), args.runs, tmp))
            r = rows[-1]
            print(f"[{backend}] {r['command']:.2f} s (phases: keras {r['import_keras']:.2f}, elmo_keras "
                  f"{r['import_rest']:.2f}, load {r['load']:.2f}, first embed {r['first_embed']:.2f})", flush=True)
    body = common.markdown_table(rows, COLUMNS)
    print("\n" + body + f"\n\nmachine: {common.machine_line()}\nsoftware: {common.versions_line()}")
    if args.append:
        settings = {"tree timed": os.path.abspath(args.repo) + (f" ({args.label})" if args.label else ""),
                    "text": "two sentences, 7 and 5 tokens; the bundled model (`savedmodels/default`)"}
        common.append_results("Cold start of `elmo-keras embed`", settings, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
