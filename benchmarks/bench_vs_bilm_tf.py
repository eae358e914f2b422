"""CPU embedding of real text: bilm-tf and AllenNLP against `elmo_keras.ElmoEmbedder` on every backend, same weights.

    python benchmarks/bench_vs_bilm_tf.py --config small --sentences 128
    python benchmarks/bench_vs_bilm_tf.py --config original --append      # the issue's size (quiet machine)

One command times, each in a fresh child process (see `common.py`):

- `bilm-tf`: the original code (allenai/bilm-tf, its path given by
  `--bilm-tf`, default `../shared/peers/bilm-tf` from the repository root),
  run under TensorFlow 2.20 as `shared/peers/README.md` says (`TF_USE_LEGACY_KERAS=1`,
  `tf.compat.v1.disable_v2_behavior()`, `tensorflow` aliased to `tf.compat.v1`):
  its `Batcher.batch_sentences` and one `Session.run` of `lm_embeddings` per
  batch, its LSTM state variables re-initialised before every batch (stateless);
  its vocabulary file lists only `<S>`, `</S>`, `<UNK>`, so every word's
  character ids are computed on the fly, as for any word outside a vocabulary.
- `AllenNLP`: AllenNLP 2.10.1's own `_ElmoBiLm` and `batch_to_ids` (the
  PyTorch ELMo most users ran), unchanged, under torch 2.13 beside the
  stand-ins of `../shared/peers/allennlp/` (`--allennlp-shim`), in the
  virtual environment its README sets up (`--allennlp-python`, default
  `~/allennlp-venv/bin/python`): its pins cannot be met beside this stack.
  States reset before every batch (stateless, as bilm-tf). Skipped, saying
  why, where its code or that Python is missing.
- `elmo_keras TF`, `elmo_keras JAX`, `elmo_keras PyTorch`:
  `ElmoEmbedder(options_file, weight_file)` with its default settings (token
  cache of char-CNN vectors on, XLA on TensorFlow, short sentences packed
  into shared rows), `embed_batch(batch)` per batch, on
  `KERAS_BACKEND=tensorflow` / `jax` / `torch`; `--embedder-options JSON`
  passes other keyword arguments (e.g. `'{"pack_sentences": false}'`).
- `bilm-tf sorted`: bilm-tf on batches of the same size cut from the text
  sorted by length (less padding: the original code at its best).
- `elmo_keras TF stream`, `... JAX stream`, `... PyTorch stream`: the whole text to
  `ElmoEmbedder.embed_sentences`, which sorts windows of sentences by length
  and packs them into batches of at most `--batch-size` rows: how
  `embed_file` and `elmo-keras embed` run.

All read the same `options.json` + `weights.hdf5` (random weights of the
`--config` size written by `configs.write_random_model`, in the original file
format); `bilm-tf`, `AllenNLP` and the three `elmo_keras` rows without
"stream" embed the same consecutive batches of `--batch-size` sentences, in
text order; outputs are brought to numpy.

Text: real English text with a Zipfian vocabulary. Default: the held-out
WordNet gloss sentences of the bundled model's corpus, built exactly as
`savedmodels/default/make_corpus.py` builds `heldout/heldout.txt` (its
`wordnet_sentences`, punctuation split by `tokenize_punctuation`, duplicates
removed, the held-out one in 50 kept), in file order, the first `--sentences`
of them. `--text FILE` reads one whitespace-tokenised sentence a line instead
(empty lines are left out).

Cold cache, no compilation timed. Each worker first embeds one warm-up batch
of OTHER sentences (WordNet training sentences, or the lines of `--text` after
the timed ones), so that graph building and tracing are not timed. The
compiled implementations (XLA, `jax.jit`) compile once per input shape, and a
pass over real text meets several shapes (padded lengths, packed rows, the
number of new tokens of each char-CNN call), so each worker then runs an
untimed priming pass over the timed sentences, puts its state back to the
state after the warm-up batch (the token cache holds exactly the warm-up
batch's tokens again; bilm-tf has no state between batches), embeds the
warm-up batch once more and times ONE pass over the timed sentences: the
token cache starts without the timed sentences' words beyond what the
warm-up batch filled, and every shape of the pass has been compiled.
`--no-priming` times the pass right after the warm-up batch instead
(compilations of new shapes then count). The same procedure runs in every
worker, bilm-tf included.

Reported per implementation:
- words/s: the words of the timed sentences (not `<S>`/`</S>`, not padding)
  over the wall time of the pass; the ratio column divides by bilm-tf's;
- LSTM fraction of sgemm (the performance target's measure): the LSTM
  FLOPs of the sentences' positions (words + 2 each; `flops.py`: 151 MFLOP a
  position at the original size) over the wall time, over the same worker's
  float32 sgemm rate (below);
- useful GFLOP/s: `flops.sentence_flops` of every sentence (words + 2
  positions, matrix products and convolutions only; the char-CNN of every
  position, which elmo_keras's token cache skips for words seen before, so
  that its fraction below can exceed 1) over the same time, and
  its fraction of the float32 sgemm rate that the same process measured
  (`common.measure_matmuls`, the `large` (batch x 40, 1024) x (1024, 4096)
  product, eager `tf.linalg.matmul` in the TensorFlow workers, a jitted
  product in the JAX one, eager `torch.matmul` in the PyTorch ones (AllenNLP
  included); measured before the model is loaded);
- latency: median of `--latency-runs` calls on one 20-word sentence (real
  words; after one untimed call, so elmo_keras's token cache holds its words);
- peak RSS of the worker (`ru_maxrss`, the whole run).

Same work check: every worker returns the outputs of the first timed batch
(3 layers, each sentence's real positions: bilm-tf's `lm_embeddings` already
drop `<S>`/`</S>` and are padded to the batch's longest sentence, so sentence k
is `[k, :, :n_k]`; `embed_batch` gives sentence k as (3, n_k, dim)). The command
prints each elmo_keras implementation's largest absolute difference from
bilm-tf and exits non-zero if it is above 1e-3 times bilm-tf's largest absolute
output (float32 rounding gives ~1e-5 relative), or if a worker failed.

`--threads N` sets TensorFlow's intra-op threads in the bilm-tf (session
config) and elmo_keras TF workers (`tf.config.threading`) and PyTorch's in
the AllenNLP and elmo_keras PyTorch ones (`torch.set_num_threads`); the JAX
worker keeps XLA's default. Default: each library's default.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import common  # noqa: E402
from configs import get_options  # noqa: E402
from flops import forward_flops_per_position, sentence_flops  # noqa: E402

IMPLEMENTATIONS = ("bilm-tf", "bilm-tf sorted", "AllenNLP", "elmo_keras TF", "elmo_keras JAX", "elmo_keras PyTorch",
                   "elmo_keras TF stream", "elmo_keras JAX stream", "elmo_keras PyTorch stream")
BACKENDS = {"bilm-tf": "tensorflow", "bilm-tf sorted": "tensorflow", "AllenNLP": "torch",
            "elmo_keras TF": "tensorflow", "elmo_keras JAX": "jax", "elmo_keras PyTorch": "torch",
            "elmo_keras TF stream": "tensorflow", "elmo_keras JAX stream": "jax", "elmo_keras PyTorch stream": "torch"}
# How each implementation is handed the text: the same consecutive batches in text order; batches of the
# same size after sorting the whole text by length (bilm-tf's best use); or the whole text to
# `ElmoEmbedder.embed_sentences` (elmo_keras's own batching: sorted windows, packed rows, token budget).
BATCHING = {impl: "stream" if impl.endswith(" stream") else "sorted" if impl.endswith(" sorted") else "text order"
            for impl in IMPLEMENTATIONS}
# The peers: each runs only where its code is present (the command says why it skips otherwise).
PEERS = ("bilm-tf", "bilm-tf sorted", "AllenNLP")
IMPL_ALIASES = {"bilm-tf": "bilm-tf", "bilm_tf": "bilm-tf", "tf": "elmo_keras TF", "tensorflow": "elmo_keras TF",
                "elmo_keras tf": "elmo_keras TF", "jax": "elmo_keras JAX", "elmo_keras jax": "elmo_keras JAX",
                "torch": "elmo_keras PyTorch", "pytorch": "elmo_keras PyTorch", "allennlp": "AllenNLP",
                "bilm-tf-sorted": "bilm-tf sorted", "tf-stream": "elmo_keras TF stream",
                "jax-stream": "elmo_keras JAX stream", "torch-stream": "elmo_keras PyTorch stream"}
IMPL_ALIASES.update({name.lower(): name for name in IMPLEMENTATIONS})
DEFAULT_SENTENCES = {"original": 320, "small": 1200, "tiny": 400}
DEFAULT_LATENCY_RUNS = {"original": 5, "small": 20, "tiny": 20}
LATENCY_WORDS = 20
DEFAULT_BILM_TF = os.path.normpath(os.path.join(common.REPO, "..", "shared", "peers", "bilm-tf"))
# AllenNLP 2.10.1 runs unchanged under torch 2.13 beside the stand-ins of `../shared/peers/allennlp/` (its README),
# in a virtual environment of its own (its pins cannot be met beside this stack): that venv's Python runs its worker.
DEFAULT_ALLENNLP_SHIM = os.path.normpath(os.path.join(common.REPO, "..", "shared", "peers", "allennlp"))
DEFAULT_ALLENNLP_PYTHON = os.path.expanduser(os.path.join("~", "allennlp-venv", "bin", "python"))
DEFAULT_WORDNET = "/usr/share/wordnet"
MAKE_CORPUS = common.MAKE_CORPUS
# The implementations did not do the same work if they differ by more than this, relative to the output.
SAME_WORK_TOLERANCE = 1e-3
WORKER_TIMEOUT = 3600


# ================================================================ text

load_make_corpus = common.load_make_corpus


def wordnet_split(wordnet_dir=DEFAULT_WORDNET, make_corpus_path=MAKE_CORPUS):
    """(held-out, training) WordNet sentences as token lists, in file order, as `make_corpus.build` makes them.

    Each sentence: whitespace runs collapsed, punctuation split off
    (`tokenize_punctuation`), duplicates dropped (first one kept), then
    `is_heldout` of its space-joined tokens decides the side.
    """
    from elmo_keras.preprocessing.split import tokenize_punctuation

    make_corpus = load_make_corpus(make_corpus_path)
    seen, heldout, train = set(), [], []
    for sentence in make_corpus.wordnet_sentences(wordnet_dir):
        tokens = " ".join(tokenize_punctuation(re.sub(r"\s+", " ", sentence)))
        if tokens in seen:
            continue
        seen.add(tokens)
        (heldout if make_corpus.is_heldout(tokens) else train).append(tokens.split())
    return heldout, train


def read_text(path):
    """One whitespace-tokenised sentence a line; empty lines are left out."""
    with open(path, encoding="utf-8") as f:
        return [line.split() for line in f if line.split()]


def load_text(args):
    """(timed sentences, warm-up sentences, description of the text)."""
    n, batch_size = args.sentences, args.batch_size
    if args.text:
        lines = read_text(args.text)
        if not lines:
            sys.exit(f"{args.text}: no sentences")
        timed, warmup = lines[:n], lines[n : n + batch_size]
        source = f"{args.text} (one sentence a line, whitespace-tokenised; {len(lines)} sentences)"
        if not warmup:
            if os.path.isdir(args.wordnet):
                warmup = wordnet_split(args.wordnet)[1][:batch_size]
                source += "; warm-up batch: WordNet training sentences"
            else:
                warmup = common.make_sentences(batch_size, 5, 25, seed=1)[0]
                source += "; warm-up batch: random dictionary words"
        else:
            source += f"; warm-up batch: its lines {n + 1}-{n + len(warmup)}"
    else:
        if not os.path.isdir(args.wordnet):
            sys.exit(f"{args.wordnet} not found: install Debian's wordnet-base, pass --wordnet DIR, or --text FILE")
        heldout, train = wordnet_split(args.wordnet)
        timed, warmup = heldout[:n], train[:batch_size]
        source = (f"WordNet 3.0 gloss sentences held out from the bundled model's corpus (make_corpus.py; "
                  f"{len(heldout)} held out), the first {len(timed)} in file order; warm-up batch: the first "
                  f"{len(warmup)} training sentences")
    if len(timed) < n:
        print(f"note: the text has {len(timed)} sentences, fewer than --sentences {n}: timing all of them")
    return timed, warmup, source


def text_stats(sentences):
    words = [w for s in sentences for w in s]
    return {"sentences": len(sentences), "words": len(words), "types": len(set(words)),
            "longest": max(len(s) for s in sentences)}


def latency_sentence(warmup, n_words=LATENCY_WORDS):
    """`n_words` real words: the first words of the warm-up sentences."""
    words = [w for s in warmup for w in s]
    while len(words) < n_words:
        words += words or ["word"]
    return words[:n_words]


# ================================================================ worker side

def _embedders_bilm_tf(args):
    """bilm-tf under TF 2.20: (embed(batch) -> padded (batch, 3, time, dim) array, reset, info)."""
    import tensorflow as tf

    v1 = tf.compat.v1
    tf.compat.v1.disable_v2_behavior()
    sys.modules["tensorflow"] = v1  # bilm-tf does `import tensorflow as tf` and uses the TF1 API
    sys.path.insert(0, args["bilm_tf"])
    from bilm.data import Batcher
    from bilm.model import BidirectionalLanguageModel

    options = get_options(args["config"])
    vocab_file = os.path.join(os.path.dirname(args["options_file"]), "bilm_tf_vocab.txt")
    with open(vocab_file, "w", encoding="utf-8") as f:
        f.write("<S>\n</S>\n<UNK>\n")
    max_chars = options["char_cnn"]["max_characters_per_token"]
    batcher = Batcher(vocab_file, max_chars)
    ids = v1.placeholder("int32", shape=(None, None, max_chars))
    lm = BidirectionalLanguageModel(args["options_file"], args["weight_file"],
                                    max_batch_size=max(args["batch_size"], 1))
    embeddings = lm(ids)["lm_embeddings"]
    graph = lm._graphs[ids]
    states = [v for direction in graph.lstm_init_states.values() for layer in direction for v in layer]
    reset_states = v1.variables_initializer(states)
    config = v1.ConfigProto()
    if args["threads"]:
        config.intra_op_parallelism_threads = args["threads"]
    sess = v1.Session(config=config)
    sess.run(v1.global_variables_initializer())  # loads the hdf5 weights

    def embed(batch):
        sess.run(reset_states)  # stateless: every batch starts from zero states
        return sess.run(embeddings, feed_dict={ids: batcher.batch_sentences(batch)})

    def per_sentence(output, batch):
        return [output[k, :, : len(s)] for k, s in enumerate(batch)]

    return embed, per_sentence, (lambda: None), {"session_intra_op_threads": config.intra_op_parallelism_threads}


def _embedders_allennlp(args):
    """AllenNLP 2.10.1's `_ElmoBiLm` under torch 2.13: (embed(batch) -> (batch, 3, time + 2, dim) array, ...).

    Its real code, imported beside the stand-ins of `../shared/peers/allennlp/`
    (nothing of it copied or changed); `batch_to_ids` for the character ids;
    its LSTM states reset before every batch (stateless, as bilm-tf above;
    AllenNLP carries them from batch to batch otherwise, at the same speed).
    Its activations keep `<S>`/`</S>`: sentence k is `[k, :, 1 : n_k + 1]`.
    """
    import torch

    sys.path.insert(0, args["allennlp_shim"])
    import allennlp_shim

    allennlp_shim.install(allennlp_shim.DEFAULT_STUBS + ("torchvision",))
    from allennlp.modules.elmo import _ElmoBiLm, batch_to_ids

    bilm = _ElmoBiLm(args["options_file"], args["weight_file"], requires_grad=False).eval()

    def embed(batch):
        bilm._elmo_lstm.reset_states()
        with torch.inference_mode():
            activations = bilm(batch_to_ids(batch))["activations"]
        return np.stack([a.numpy() for a in activations], axis=1)

    def per_sentence(output, batch):
        return [output[k, :, 1 : len(s) + 1] for k, s in enumerate(batch)]

    return embed, per_sentence, (lambda: None), {"torch_threads": torch.get_num_threads()}


def _embedders_elmo_keras(args):
    import keras

    from elmo_keras.embedder import ElmoEmbedder

    embedder = ElmoEmbedder(args["options_file"], args["weight_file"], batch_size=args["batch_size"],
                            **args.get("embedder_options", {}))
    cache = embedder._token_vectors  # private: the token cache, emptied to repeat the warm-up state
    info = {"token_cache_size": embedder.token_cache_size, "pack_sentences": embedder.pack_sentences,
            "compiled": {"tensorflow": f"jit_compile={embedder.model.jit_compile}", "jax": "jax.jit",
                         "torch": "eager"}[keras.backend.backend()]}
    embed = embedder.embed_batch
    if BATCHING[args["impl"]] == "stream":
        def embed(sentences):
            return list(embedder.embed_sentences(sentences))
    return embed, (lambda output, batch: output[: args["batch_size"]]), cache.clear, info


def run_worker_task(args):
    """Worker: sgemm rate, then warm-up, priming pass, one timed pass, latency, first batch's outputs."""
    impl = args["impl"]
    options = get_options(args["config"])
    lib = BACKENDS[impl]
    if lib == "tensorflow":
        import tensorflow as tf

        if args["threads"]:
            tf.config.threading.set_intra_op_parallelism_threads(args["threads"])
    elif lib == "torch" and args["threads"]:
        import torch

        torch.set_num_threads(args["threads"])
    # The sgemm reference first: the bilm-tf worker switches eager execution off next.
    matmul, matmul_shapes = common.measure_matmuls(["numpy", lib], options, args["batch_size"])

    t = time.perf_counter()
    make_embedder = (_embedders_bilm_tf if impl.startswith("bilm-tf") else
                     _embedders_allennlp if impl == "AllenNLP" else _embedders_elmo_keras)
    embed, per_sentence, reset, info = make_embedder(args)
    load_s = time.perf_counter() - t
    batch_size, sentences, warmup = args["batch_size"], args["sentences"], args["warmup"]
    batching = BATCHING[impl]
    if batching == "sorted":
        sentences = sorted(sentences, key=len)
    batches = ([sentences] if batching == "stream" else
               [sentences[i : i + batch_size] for i in range(0, len(sentences), batch_size)])

    t = time.perf_counter()
    embed(warmup)
    warmup_s = time.perf_counter() - t
    priming_s = None
    if args["priming"]:
        t = time.perf_counter()
        for batch in batches:
            embed(batch)
        priming_s = time.perf_counter() - t
        reset()
        embed(warmup)

    first = None
    cpu0, wall0 = time.process_time(), time.perf_counter()  # process_time: ns resolution, all threads
    for k, batch in enumerate(batches):
        output = embed(batch)
        if k == 0:
            first = per_sentence(output, batch)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    np.savez(args["outputs_file"], *[np.asarray(v, dtype=np.float32) for v in first])

    single = [args["latency_sentence"]]
    embed(single)
    latencies = []
    for _ in range(args["latency_runs"]):
        t = time.perf_counter()
        embed(single)
        latencies.append(time.perf_counter() - t)

    words = sum(len(s) for s in sentences)
    useful = sum(sentence_flops(options, len(s)) for s in sentences) / wall / 1e9
    lstm = sum(len(s) + 2 for s in sentences) * forward_flops_per_position(options)["lstm"] / wall / 1e9
    sgemm = matmul["wall"][lib]["large"]
    return {
        "impl": impl, "backend": lib, "info": info, "seconds": wall, "cpu_seconds": cpu,
        "tokens_per_s": words / wall, "tokens_per_cpu_s": words / max(cpu, 1e-9),
        "useful_gflops": useful, "sgemm_gflops": sgemm, "frac_sgemm": useful / sgemm, "lstm_frac_sgemm": lstm / sgemm,
        "frac_numpy_sgemm": useful / matmul["wall"]["numpy"]["large"],
        "matmul": matmul, "matmul_shapes": matmul_shapes, "matmul_lib": lib,
        "latency_ms": common.median_ms(latencies), "latency_runs": len(latencies),
        "peak_rss_mib": common.peak_rss_mib(), "load_s": load_s, "warmup_s": warmup_s, "priming_s": priming_s,
        "cpu_share": cpu / wall / os.cpu_count(), "loadavg": os.getloadavg()[0],
    }


def worker(args):
    if args["task"] == "prepare":
        from configs import write_random_model

        options_file, weight_file = write_random_model(args["config"], args["directory"], seed=args["seed"])
        return {"options_file": options_file, "weight_file": weight_file,
                "weight_bytes": os.path.getsize(weight_file)}
    return run_worker_task(args)


# ================================================================ parent side

def _env(impl, threads):
    backend = BACKENDS[impl]
    env = common.worker_env(backend)
    if impl.startswith("bilm-tf"):
        env["TF_USE_LEGACY_KERAS"] = "1"  # tf.compat.v1.nn.rnn_cell comes from tf_keras
    else:
        env.pop("TF_USE_LEGACY_KERAS", None)
    return env


def allennlp_missing_reason(args):
    """Why AllenNLP's worker cannot run here (None when it can): its shim and a Python that imports it."""
    if not os.path.isfile(os.path.join(args.allennlp_shim, "allennlp_shim.py")):
        return f"its stand-ins are not at {args.allennlp_shim} (pass --allennlp-shim PATH)"
    if not os.path.isfile(args.allennlp_python):
        return (f"no Python at {args.allennlp_python} (pass --allennlp-python; the set-up is in "
                f"{os.path.join(args.allennlp_shim, 'README.md')})")
    probe = "import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in ('allennlp', 'torch', 'h5py')))"
    if subprocess.run([args.allennlp_python, "-c", probe], capture_output=True).returncode:
        return f"{args.allennlp_python} does not import allennlp, torch and h5py (set-up: the shim's README.md)"
    return None


def compare(outputs, reference):
    """(largest |difference|, largest |reference|) over the sentences of the first batch."""
    if len(outputs) != len(reference):
        return float("inf"), 0.0
    diff, scale = 0.0, 0.0
    for a, b in zip(outputs, reference):
        if a.shape != b.shape:
            return float("inf"), 0.0
        if a.size:
            diff = max(diff, float(np.max(np.abs(a - b))))
            scale = max(scale, float(np.max(np.abs(b))))
    return diff, scale


def _load_outputs(path):
    with np.load(path) as data:
        return [data[f"arr_{k}"] for k in range(len(data.files))]


COLUMNS = [
    ("impl", "implementation", ""), ("tokens_per_s", "words/s", ",.0f"), ("ratio", "vs bilm-tf", ".2f"),
    ("lstm_frac_sgemm", "LSTM fraction of sgemm", ".3f"), ("useful_gflops", "useful GFLOP/s", ".2f"),
    ("frac_sgemm", "fraction of sgemm", ".3f"),
    ("sgemm_gflops", "sgemm GFLOP/s", ".1f"), ("latency_ms", "latency ms (1 sentence)", ",.1f"),
    ("peak_rss_mib", "peak RSS MiB", ",.0f"), ("max_abs_diff", "max abs diff vs bilm-tf", ".2e"),
    ("rel_diff", "relative", ".2e"), ("tokens_per_cpu_s", "words per CPU-s", ",.0f"),
    ("cpu_share", "CPU share", ".2f"), ("seconds", "timed pass s", ".2f"),
    ("priming_s", "priming pass s", ".2f"),
]


def run(args):
    """Run the workers and print the table; return (exit status, markdown body, settings)."""
    impls = list(args.impls)
    bilm_tf_ok = os.path.isfile(os.path.join(args.bilm_tf, "bilm", "model.py"))
    for impl in [i for i in impls if i.startswith("bilm-tf")]:
        if not bilm_tf_ok:
            print(f"skip: {impl}: the original code is not at {args.bilm_tf} (pass --bilm-tf PATH); "
                  "timing the others without ratios to bilm-tf or the same-work check")
            impls.remove(impl)
    allennlp_missing = allennlp_missing_reason(args) if "AllenNLP" in impls else None
    if allennlp_missing:
        print(f"skip: AllenNLP: {allennlp_missing}")
        impls.remove("AllenNLP")
    if not impls:
        return 0, "", {}
    sentences, warmup, source = load_text(args)
    stats = text_stats(sentences)
    lat_sentence = latency_sentence(warmup)
    print(f"text: {stats['sentences']} sentences, {stats['words']:,} words, {stats['types']:,} distinct words, "
          f"longest {stats['longest']} words; {source}")
    status, results = 0, []
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        files = common.run_worker(__file__, {"task": "prepare", "config": args.config, "directory": tmp,
                                             "seed": args.seed}, "tensorflow", env=_env("elmo_keras TF", None))
        if "error" in files:
            sys.exit(f"writing the random model failed: {files['error']}")
        weight_bytes = files.pop("weight_bytes")
        outputs = {}
        for impl in impls:
            print(f"[{impl}] running ...", flush=True)
            path = os.path.join(tmp, f"outputs_{len(outputs)}.npz")
            task = dict(files, task="measure", impl=impl, config=args.config, batch_size=args.batch_size,
                        sentences=sentences, warmup=warmup, latency_sentence=lat_sentence,
                        latency_runs=args.latency_runs, threads=args.threads,
                        embedder_options=args.embedder_options, priming=not args.no_priming,
                        bilm_tf=os.path.abspath(args.bilm_tf), allennlp_shim=os.path.abspath(args.allennlp_shim),
                        outputs_file=path)
            r = common.run_worker(__file__, task, BACKENDS[impl], timeout=WORKER_TIMEOUT,
                                  env=_env(impl, args.threads),
                                  python=args.allennlp_python if impl == "AllenNLP" else None)
            if "error" in r:
                print(f"[{impl}] FAILED: {r['error']}")
                results.append({"impl": impl + " (failed)"})
                status = 1
                continue
            outputs[impl] = _load_outputs(path)
            results.append(r)
            print(f"[{impl}] {r['tokens_per_s']:,.0f} words/s, {r['frac_sgemm']:.3f} of sgemm, latency "
                  f"{r['latency_ms']:.1f} ms, peak {r['peak_rss_mib']:,.0f} MiB", flush=True)

    reference = next((r for r in results if r["impl"] == "bilm-tf" and "tokens_per_s" in r), None)
    checks = []
    for r in results:
        if "tokens_per_s" not in r or reference is None:
            continue
        r["ratio"] = r["tokens_per_s"] / reference["tokens_per_s"]
        if r is reference or BATCHING[r["impl"]] == "sorted":
            continue
        diff, scale = compare(outputs[r["impl"]], outputs["bilm-tf"])
        r["max_abs_diff"], r["rel_diff"] = diff, diff / scale if scale else float("inf")
        ok = r["rel_diff"] <= SAME_WORK_TOLERANCE
        checks.append(f"{r['impl']}: max abs difference from bilm-tf {diff:.3e} (bilm-tf's max abs output "
                      f"{scale:.3g}, relative {r['rel_diff']:.2e}) on the {len(outputs['bilm-tf'])} sentences "
                      f"of the first batch: {'ok' if ok else 'FAILED'}")
        if not ok:
            status = 1
    table = common.markdown_table(results, COLUMNS)
    ok = [r for r in results if "tokens_per_s" in r]
    flops_per_position = forward_flops_per_position(get_options(args.config))
    per_position, lstm_per_position = flops_per_position["total"], flops_per_position["lstm"]
    notes = [
        f"Text: {stats['sentences']} sentences, {stats['words']:,} words (without `<S>`/`</S>`), "
        f"{stats['types']:,} distinct words; {source}.",
        f"Batching: `bilm-tf`, `AllenNLP`, `elmo_keras TF`, `JAX`, `PyTorch`: the same batches of {args.batch_size} "
        f"consecutive sentences in text order (`embed_batch` each); `bilm-tf sorted`: batches of "
        f"{args.batch_size} after sorting the whole text by length (bilm-tf at its best with that batch size); "
        "`... stream`: the whole text to `ElmoEmbedder.embed_sentences` (its own batching, `packed_batches`: "
        "a sort window packed into rows of one length, as many rows a batch as the token budget allows).",
        "Every implementation: one timed pass "
        + ("after a warm-up batch of other sentences, an untimed priming pass over the timed sentences (it "
           "compiles every shape) and the token cache put back to its state after the warm-up batch."
           if not args.no_priming else "right after a warm-up batch of other sentences (compilations of new "
           "shapes are timed)."),
        f"words/s counts words only; useful GFLOP/s counts {per_position:,} FLOPs per sentence position "
        f"(words + 2), {lstm_per_position:,} of them the LSTMs'; (LSTM) fraction of sgemm: (LSTM) useful FLOP/s "
        "over the float32 `large` matmul rate measured in the same worker (TensorFlow eager for bilm-tf and "
        "elmo_keras TF, jax.jit for JAX, eager torch.matmul for AllenNLP and elmo_keras PyTorch). The useful "
        "FLOPs include the "
        "char-CNN of every position; elmo_keras's token cache skips it for words seen before, so its fraction "
        "can exceed 1.",
        f"Latency: median of {args.latency_runs} calls on one {LATENCY_WORDS}-word sentence (after one untimed "
        "call). Peak RSS: the worker's `ru_maxrss` over the whole run.",
        f"Threads: {args.threads if args.threads else 'library default'} (intra-op, TensorFlow and PyTorch "
        "workers). CPU "
        "share: process CPU time / (wall time x logical CPUs) during the timed pass; below ~0.9 means other "
        "processes took CPU (the machine is shared unless said otherwise).",
    ]
    notes += checks
    for r in ok:
        notes.append(f"{r['impl']}: {r['info']}; load {r['load_s']:.1f} s, warm-up batch {r['warmup_s']:.1f} s, "
                     f"timed pass {r['seconds']:.2f} s; load average {r['loadavg']:.2f}.")
    body = table + "\n\n" + "\n".join(f"- {n}" for n in notes)
    print("\n" + body)
    print(f"\nmachine: {common.machine_line()}\nsoftware: {common.versions_line()}")
    settings = {
        "configuration": f"{args.config} (random weights, {weight_bytes / 2**20:.0f} MiB hdf5, seed {args.seed})",
        "implementations": ", ".join(impls),
        "bilm-tf": os.path.abspath(args.bilm_tf) if bilm_tf_ok else "absent",
        "batches": f"{args.batch_size} sentences, in text order",
        "threads": args.threads or "library default",
        "wall time of the command": f"{time.time() - start:.0f} s",
    }
    return status, body, settings


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="small", choices=["tiny", "small", "original"])
    p.add_argument("--bilm-tf", default=DEFAULT_BILM_TF, help="the original bilm-tf code (default: %(default)s)")
    p.add_argument("--allennlp-shim", default=DEFAULT_ALLENNLP_SHIM,
                   help="the stand-ins under which AllenNLP's code runs (default: %(default)s)")
    p.add_argument("--allennlp-python", default=DEFAULT_ALLENNLP_PYTHON,
                   help="a Python that imports allennlp 2.10.1 and torch (default: %(default)s)")
    p.add_argument("--text", default=None, help="one whitespace-tokenised sentence a line (default: WordNet held-out)")
    p.add_argument("--wordnet", default=DEFAULT_WORDNET, help="WordNet's data.* files (default: %(default)s)")
    p.add_argument("--sentences", type=int, default=None,
                   help="sentences timed (default: "
                        + ", ".join(f"{k} {v}" for k, v in DEFAULT_SENTENCES.items()) + ")")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--latency-runs", type=int, default=None,
                   help="single-sentence calls (default: " + ", ".join(
                       f"{k} {v}" for k, v in DEFAULT_LATENCY_RUNS.items()) + ")")
    p.add_argument("--impl", default=",".join(IMPLEMENTATIONS),
                   help="comma-separated subset of: bilm-tf, bilm-tf-sorted, tf (elmo_keras TF), jax (elmo_keras "
                        "JAX), tf-stream, jax-stream (default: all)")
    p.add_argument("--threads", type=int, default=None, help="TensorFlow intra-op threads (default: library default)")
    p.add_argument("--embedder-options", type=json.loads, default={},
                   help='JSON of ElmoEmbedder keyword arguments, e.g. \'{"jit_compile": false}\' (default: none)')
    p.add_argument("--no-priming", action="store_true", help="time the pass right after the warm-up batch")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    p.add_argument("--append", action="store_true", help="append the results to benchmarks/RESULTS.md")
    args = p.parse_args(argv)
    args.sentences = args.sentences or DEFAULT_SENTENCES[args.config]
    args.latency_runs = args.latency_runs or DEFAULT_LATENCY_RUNS[args.config]
    if args.sentences < 1 or args.batch_size < 1 or args.latency_runs < 1 or (args.threads is not None
                                                                               and args.threads < 1):
        p.error("--sentences, --batch-size, --latency-runs and --threads must be positive")
    impls = []
    for name in args.impl.split(","):
        key = IMPL_ALIASES.get(name.strip().lower())
        if key is None:
            p.error(f"--impl: unknown implementation {name!r}; choose from {', '.join(sorted(IMPL_ALIASES))}")
        if key not in impls:
            impls.append(key)
    args.impls = [i for i in IMPLEMENTATIONS if i in impls]
    return args


def main(argv=None):
    args = parse_args(argv)
    status, body, settings = run(args)
    if args.append and body:
        common.append_results(f"elmo_keras vs bilm-tf, real text: {args.config}", settings, body)
    if status:
        print("\nFAILED: a worker failed or the implementations did not do the same work (see above)")
    return status


if __name__ == "__main__":
    if "--worker" in sys.argv:
        common.worker_main(worker)
    else:
        sys.exit(main())
