"""Embedding speed of the biLM: tokens/s, latency, peak memory, per execution mode and backend.

Two questions, one command each:

    # throughput, latency and memory of every execution mode, both backends
    python benchmarks/bench_embed.py --config small --batch-size 64 --min-len 10 --max-len 40

    # where the time goes: char-CNN vs LSTM, gate precompute vs scan loop, char-CNN cache
    python benchmarks/bench_embed.py --config small --profile

Every measurement runs in a fresh process (see `common.py`), which also
measures the machine's float32 matmul FLOP/s, so that ELMo's FLOP/s is
reported as a fraction of what the same process gets from a plain matmul.

What is counted:
- tokens/s counts the words of the sentences, not `<S>`/`</S>` and not the
  padding the batch adds;
- "useful" FLOP/s counts the positions of the sentences (words + 2 per
  sentence) times `flops.forward_flops_per_position`; "executed" FLOP/s counts
  every position the batch holds (padding included).

Modes (TensorFlow backend):
- `embedder`: `ElmoEmbedder.embed_batch`, end to end, as configured by
  default (with its token cache of char-CNN vectors when it has one; each
  timed pass starts from the cache state left by embedding as many other
  sentences).
- `embedder_nocache`: the same with `token_cache_size=0` (char ids in numpy,
  `model.predict_on_batch`, slicing per sentence).
- `embedder_noxla`: `ElmoEmbedder(jit_compile=False)`, TensorFlow without XLA.
- `predict_on_batch`: the model alone on precomputed char ids. On a CPU-only
  machine Keras resolves `jit_compile="auto"` to no XLA; the result says
  what it resolved to.
- `tf_function`: `tf.function(model.__call__)` without XLA.
- `xla`: `tf.function(model.__call__, jit_compile=True)`.
- `eager`: the model called eagerly (slow; not in the default set).
Modes (JAX backend): `embedder`, `embedder_nocache`, `predict_on_batch`
(Keras's `jax.jit` predict step), `jax_jit` (`jax.jit(model.stateless_call)`,
variables passed in).
Modes (PyTorch backend): `embedder`, `embedder_nocache`, `predict_on_batch`
(Keras's torch predict step: eager, as `jit_compile="auto"` resolves on
torch), `embedder_compiled` (the embedder with its models'
`jit_compile=True`, which Keras's torch trainer turns into `torch.compile`
of the predict step), `torch_compile` (`torch.compile(model.__call__)`,
default mode); `predict_on_batch_compiled` (`model.jit_compile=True`, not in
the default set). The first-call column shows what compiling costs.
"""

import argparse
import collections
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
from configs import get_options  # noqa: E402
from flops import forward_flops_per_position  # noqa: E402

MODES = {
    "tensorflow": ["embedder", "embedder_nocache", "embedder_noxla", "predict_on_batch", "tf_function", "xla"],
    "jax": ["embedder", "embedder_nocache", "predict_on_batch", "jax_jit"],
    "torch": ["embedder", "embedder_nocache", "predict_on_batch", "embedder_compiled", "torch_compile"],
}
EXTRA_MODES = {"tensorflow": ["eager"], "jax": [], "torch": ["predict_on_batch_compiled"]}
BACKEND_CHOICES = {"both": ["tensorflow", "jax"], "all": ["tensorflow", "jax", "torch"]}
# Per configuration: batches timed and single-sentence calls, sized to keep
# one command within a few minutes on a 2-core CPU.
DEFAULTS = {"tiny": (3, 10), "small": (3, 20), "original": (2, 5)}
DEFAULT_REPEATS = {"tiny": 2, "small": 2, "original": 1}
PROFILE_DEFAULTS = {"tiny": (3, 3), "small": (2, 3), "original": (1, 2)}  # (batches, repeats)


# ================================================================ worker side

def _sync(x):
    # Results come back to the host, as a user of the embeddings needs them.
    if isinstance(x, (list, tuple)):
        return [np.asarray(v) for v in x]
    return np.asarray(x)


def _mode_function(mode, model, options_file, weight_file, batch_size):
    """Return (call, takes_sentences, extra info) for an execution mode."""
    import keras

    backend = keras.backend.backend()
    if mode in ("embedder", "embedder_nocache", "embedder_noxla", "embedder_compiled"):
        import inspect

        from elmo_keras.embedder import ElmoEmbedder

        kwargs = {}
        has_cache = "token_cache_size" in inspect.signature(ElmoEmbedder).parameters
        if mode == "embedder_nocache":
            if not has_cache:
                raise ValueError("this ElmoEmbedder has no token cache to switch off")
            kwargs["token_cache_size"] = 0
        if mode == "embedder_noxla":
            kwargs["jit_compile"] = False
        embedder = ElmoEmbedder(options_file, weight_file, batch_size=batch_size, **kwargs)
        if mode == "embedder_compiled":
            # Keras's torch trainer: predict step under torch.compile.
            for m in (embedder.model, embedder._token_encoder, embedder._contextualizer):
                m.jit_compile = True
                m.predict_function = None
        info = {"jit_compile": str(embedder._contextualizer.jit_compile)}
        if has_cache:
            info["token_cache_size"] = embedder.token_cache_size
        return embedder.embed_batch, True, info, embedder
    if mode == "predict_on_batch_compiled":
        model.jit_compile = True
        model.predict_function = None
        mode = "predict_on_batch"
    if mode == "predict_on_batch":
        return (lambda ids: model.predict_on_batch(ids)["activations"]), False, \
            {"jit_compile": str(model.jit_compile)}, None
    if mode == "eager":
        return (lambda ids: _sync(model(ids, training=False)["activations"])), False, {}, None
    if backend == "tensorflow" and mode in ("tf_function", "xla"):
        import tensorflow as tf

        f = tf.function(lambda x: model(x, training=False)["activations"], jit_compile=(mode == "xla"))
        return (lambda ids: f(ids).numpy()), False, {}, None
    if backend == "jax" and mode == "jax_jit":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        @jax.jit
        def f(tv, ntv, x):
            outputs, _ = model.stateless_call(tv, ntv, x, training=False)
            return outputs["activations"]

        return (lambda ids: np.asarray(f(trainable, non_trainable, ids))), False, {}, None
    if backend == "torch" and mode == "torch_compile":
        import torch

        def forward(x):
            with torch.no_grad():
                return model(x, training=False)["activations"]

        f = torch.compile(forward)
        return (lambda ids: f(torch.as_tensor(ids)).cpu().numpy()), False, {}, None
    raise ValueError(f"mode {mode!r} is not available on the {backend} backend")


def _matmul_lib(backend):
    return {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]


def run_mode(args):
    """Worker: one execution mode, throughput then latency, then matmul FLOP/s."""
    import keras

    from elmo_keras.models.bilm_files import load_bilm

    backend = keras.backend.backend()
    options = get_options(args["config"])
    per_position = forward_flops_per_position(options)["total"]
    batch_size = args["batch_size"]
    sentences, source = common.make_sentences(batch_size * args["n_batches"], args["min_len"], args["max_len"],
                                              args["seed"])
    if args["sort"]:
        sentences.sort(key=len)
    batches = [sentences[i : i + batch_size] for i in range(0, len(sentences), batch_size)]
    rss_start = common.current_rss_mib()

    t = time.perf_counter()
    if args["mode"].startswith("embedder"):
        model = None
    else:
        model = load_bilm(args["options_file"], args["weight_file"])
    call, takes_sentences, info, embedder = _mode_function(args["mode"], model, args["options_file"],
                                                 args["weight_file"], batch_size)
    load_seconds = time.perf_counter() - t
    rss_loaded = common.current_rss_mib()
    inputs = batches if takes_sentences else [common.char_id_batch(b) for b in batches]
    shapes = [common.char_id_batch(b).shape for b in batches]

    # The embedder's token cache starts each timed pass in the same state: the
    # state after embedding as many other sentences (the frequent words
    # cached, as in a long run). This reads its private cache dict.
    restore_cache = lambda: None  # noqa: E731
    cache = getattr(embedder, "_token_vectors", None)
    if cache is not None and getattr(embedder, "token_cache_size", 0):
        others, _ = common.make_sentences(len(sentences), args["min_len"], args["max_len"], args["seed"] + 1000)
        for k in range(0, len(others), batch_size):
            embedder.embed_batch(others[k : k + batch_size])
        snapshot = collections.OrderedDict(cache)

        def restore_cache():
            cache.clear()
            cache.update(snapshot)

        info["cache_warmed_with_sentences"] = len(others)
        info["cached_tokens_at_start"] = len(snapshot)

    # Warm-up: one call per distinct padded shape (each compiles once).
    first_call, seen = [], set()
    for x, shape in zip(inputs, shapes):
        if shape not in seen:
            seen.add(shape)
            t = time.perf_counter()
            _sync(call(x))
            first_call.append(time.perf_counter() - t)

    # Each batch runs `repeats` times and its fastest run counts: other
    # processes on a shared machine only ever add time. The CPU time of that
    # run is kept too (a measure that load from other processes hardly moves).
    best, best_cpu = [float("inf")] * len(inputs), [0.0] * len(inputs)
    cpu0, wall0 = common.cpu_seconds(), time.perf_counter()
    for _ in range(args["repeats"]):
        restore_cache()
        for k, x in enumerate(inputs):
            c, t = common.cpu_seconds(), time.perf_counter()
            _sync(call(x))
            seconds = time.perf_counter() - t
            if seconds < best[k]:
                best[k], best_cpu[k] = seconds, common.cpu_seconds() - c
    wall = time.perf_counter() - wall0
    cpu_share = (common.cpu_seconds() - cpu0) / wall / os.cpu_count()
    batch_seconds = best
    words = sum(len(s) for b in batches for s in b)
    positions = sum(len(s) + 2 for b in batches for s in b)
    executed = sum(shape[0] * shape[1] for shape in shapes)
    if cache is not None and getattr(embedder, "token_cache_size", 0):
        # The cached embedder runs its LSTMs on its own (packed) rows: count
        # them, and time its two models in one more pass.
        shapes_seen, seconds = [], collections.Counter()

        def timed(model, part):
            predict = model.predict_on_batch

            def wrapper(x):
                t = time.perf_counter()
                out = predict(x)  # predict_on_batch returns numpy: finished
                seconds[part] += time.perf_counter() - t
                if part == "lstm":
                    shapes_seen.append(x["segment_ids"].shape)
                return out
            return predict, wrapper

        parts = {"char_cnn": embedder._token_encoder, "lstm": embedder._contextualizer}
        originals = {}
        for part, model in parts.items():
            originals[part], model.predict_on_batch = timed(model, part)
        restore_cache()
        t = time.perf_counter()
        for x in inputs:
            call(x)
        seconds["total"] = time.perf_counter() - t
        for part, model in parts.items():
            model.predict_on_batch = originals[part]
        executed = sum(rows * time for rows, time in shapes_seen)
        info["time_shares"] = {part: seconds[part] / seconds["total"] for part in parts}
    total, total_cpu = float(np.sum(batch_seconds)), float(np.sum(best_cpu))

    # Latency: one sentence of latency_len words.
    sentence = common.make_sentences(1, args["latency_len"], args["latency_len"], args["seed"] + 1)[0][0]
    single = [sentence] if takes_sentences else common.char_id_batch([sentence])
    _sync(call(single))
    latencies = []
    for _ in range(args["latency_runs"]):
        t = time.perf_counter()
        _sync(call(single))
        latencies.append(time.perf_counter() - t)
    peak_rss = common.peak_rss_mib()

    lib = _matmul_lib(backend)
    matmul, matmul_shapes = common.measure_matmuls(["numpy", lib], options, batch_size)
    useful = per_position * positions / total / 1e9
    useful_cpu = per_position * positions / total_cpu / 1e9
    return {
        "backend": backend, "mode": args["mode"], "info": info, "word_source": source,
        "tokens_per_s": words / total, "batch_ms": common.median_ms(batch_seconds),
        "tokens_per_cpu_s": words / total_cpu, "useful_gflops_cpu": useful_cpu,
        "useful_gflops": useful, "executed_gflops": per_position * executed / total / 1e9,
        "padding_share": 1.0 - positions / executed,
        "frac_backend_matmul": useful / matmul["wall"][lib]["large"],
        "frac_numpy_matmul": useful / matmul["wall"]["numpy"]["large"],
        "frac_cpu": useful_cpu / matmul["cpu"][lib]["large"],
        "matmul": matmul, "matmul_shapes": matmul_shapes, "matmul_lib": lib,
        "first_call_s": first_call, "load_s": load_seconds,
        "latency_ms": common.median_ms(latencies), "latency_p90_ms": 1000 * float(np.percentile(latencies, 90)),
        "latency_len": args["latency_len"], "latency_runs": args["latency_runs"],
        "peak_rss_mib": peak_rss, "rss_loaded_mib": rss_loaded, "rss_start_mib": rss_start,
        "cpu_share": cpu_share, "loadavg": os.getloadavg()[0],
    }


def _compile(fn, backend, xla=True):
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=xla)
    import jax

    return jax.jit(fn)


def _unique_rows(ids, bucket=128):
    """Unique token rows of a char-id batch, padded to a multiple of `bucket` rows, and the inverse.

    Rows are compared as raw bytes (a cache keyed by token string costs about
    the same on the host).
    """
    flat = np.ascontiguousarray(ids.reshape(-1, ids.shape[-1]))
    keys = flat.view(np.dtype((np.void, flat.dtype.itemsize * flat.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    rows = -(-len(first) // bucket) * bucket
    padded = np.zeros((rows, ids.shape[-1]), dtype=ids.dtype)
    padded[: len(first)] = flat[first]
    return padded[None], inverse.reshape(-1).astype(np.int32), len(first)


def run_profile(args):
    """Worker: timing splits of the model's parts, with the backend's compiler."""
    import keras
    from keras import ops

    from elmo_keras.models.bilm_files import load_bilm
    from elmo_keras.layers.lstm_projection import lstm_projection_step

    backend = keras.backend.backend()
    options = get_options(args["config"])
    f = forward_flops_per_position(options)
    batch_size = args["batch_size"]
    sentences, source = common.make_sentences(batch_size * args["n_batches"], args["min_len"], args["max_len"],
                                              args["seed"])
    batches = [sentences[i : i + batch_size] for i in range(0, len(sentences), batch_size)]
    ids_list = [common.char_id_batch(b) for b in batches]
    model = load_bilm(args["options_file"], args["weight_file"])
    cnn, lstm = model.get_layer("char_cnn"), model.get_layer("bilstm")
    values = lambda layer: ([v.value for v in layer.trainable_variables],  # noqa: E731
                            [v.value for v in layer.non_trainable_variables])
    model_w, cnn_w, lstm_w = values(model), values(cnn), values(lstm)
    xla = args.get("xla", True)
    c = lambda fn: _compile(fn, backend, xla)  # noqa: E731
    repeats = args["repeats"]
    units, proj, n_layers = lstm.units, lstm.projection_dim, lstm.n_layers

    def embed(w, ids):
        emb, _ = cnn.stateless_call(w[0], w[1], ids)
        return emb * ops.cast(ops.any(ids > 0, axis=-1), emb.dtype)[..., None]

    def run_lstm(w, emb, ids):
        out, _ = lstm.stateless_call(w[0], w[1], emb, mask=ops.any(ids > 0, axis=-1))
        return out

    full = c(lambda w, ids: model.stateless_call(w[0], w[1], ids, training=False)[0]["activations"])
    cnn_all = c(lambda w, ids: cnn.stateless_call(w[0], w[1], ids)[0])
    lstm_only = c(run_lstm)
    cnn_unique = c(lambda w, uids, inverse, ids: ops.reshape(
        ops.take(cnn.stateless_call(w[0], w[1], uids)[0][0], inverse, axis=0), ids.shape[:2] + (proj,)))

    def cached_model(w_cnn, w_lstm, uids, inverse, ids):
        emb = ops.take(cnn.stateless_call(w_cnn[0], w_cnn[1], uids)[0][0], inverse, axis=0)
        emb = ops.reshape(emb, ids.shape[:2] + (proj,))
        emb = emb * ops.cast(ops.any(ids > 0, axis=-1), emb.dtype)[..., None]
        out = run_lstm(w_lstm, emb, ids)
        return ops.concatenate([ops.concatenate([emb, emb], -1)[:, None], out], axis=1)

    cached = c(cached_model)

    def warm_model(w_lstm, table, inverse, ids):
        # Every token a hit of a vocabulary cache: the char-CNN is a gather.
        emb = ops.reshape(ops.take(table, inverse, axis=0), ids.shape[:2] + (proj,))
        emb = emb * ops.cast(ops.any(ids > 0, axis=-1), emb.dtype)[..., None]
        out = run_lstm(w_lstm, emb, ids)
        return ops.concatenate([ops.concatenate([emb, emb], -1)[:, None], out], axis=1)

    warm = c(warm_model)
    kernels = [lstm.kernels[k].value for k in range(n_layers)]
    biases = [lstm.biases[k].value for k in range(n_layers)]
    recurrent = [lstm.recurrent_kernels[k].value for k in range(n_layers)]
    projections = [lstm.projections[k].value for k in range(n_layers)]

    def gates_fn(kernels, biases, x):
        # What `BiLSTM._run_layer` does before its loop, for every layer.
        return [ops.einsum("zbti,zig->tzbg", x, k) + b[None, :, None, :] for k, b in zip(kernels, biases)]

    gates = c(gates_fn)

    def gates_time_major_fn(kernels, biases, x):
        # The same products with the (narrow) input moved to time-major
        # first, so that the (wide) gates come out in scan order.
        x = ops.transpose(x, (2, 0, 1, 3))
        return [ops.matmul(x, k) + b[None, :, None, :] for k, b in zip(kernels, biases)]

    gates_time_major = c(gates_time_major_fn)

    def convs_fn(w, ids):
        # CharCNN.call up to the max-pooled convolutions (no highway, no projection).
        table = ops.concatenate([ops.zeros((1, cnn.embedding_dim)), w[0]], axis=0)
        chars = ops.take(table, ops.reshape(ids, (-1, ids.shape[-1])), axis=0)
        return ops.concatenate([ops.max(ops.conv(chars, k, padding="valid"), axis=1) + b
                                for k, b in zip(w[1], w[2])], axis=-1)

    convs = c(convs_fn)
    conv_w = (cnn.char_embed.value, [k.value for k in cnn.conv_kernels], [b.value for b in cnn.conv_biases])

    def step(carry, gates_t, rk, pk, mask_t):
        h_prev, c_prev = carry
        g = gates_t + ops.matmul(h_prev, rk)
        h, cc = lstm_projection_step(g, c_prev, pk, lstm.cell_clip, lstm.proj_clip)
        return ops.where(mask_t, h, h_prev), ops.where(mask_t, cc, c_prev)

    def loop_scan(rks, pks, gates_in, step_mask):
        # The loop of `BiLSTM._run_layer`, with the same carry and outputs (h, c, t).
        outs = []
        for rk, pk, g in zip(rks, pks, gates_in):
            b = g.shape[2]
            init = (ops.zeros((2, b, proj)), ops.zeros((2, b, units)), ops.convert_to_tensor(0, "int32"))

            def body(carry, g_t, rk=rk, pk=pk):
                h, cc = step(carry[:2], g_t, rk, pk, ops.take(step_mask, carry[2], axis=0))
                return (h, cc, carry[2] + 1), (h, cc, carry[2])

            outs.append(ops.scan(body, init, g)[1][0])
        return outs

    def loop_unrolled(rks, pks, gates_in, step_mask):
        # The same arithmetic with the time loop unrolled at trace time.
        outs = []
        for rk, pk, g in zip(rks, pks, gates_in):
            b = g.shape[2]
            carry = (ops.zeros((2, b, proj)), ops.zeros((2, b, units)))
            hs = []
            for t in range(g.shape[0]):
                carry = step(carry, g[t], rk, pk, step_mask[t])
                hs.append(carry[0])
            outs.append(ops.stack(hs))
        return outs

    scan_c, unrolled_c = c(loop_scan), c(loop_unrolled)

    parts = ["full", "cnn_all", "convs", "cnn_unique", "lstm", "gates", "gates_time_major", "scan", "cached",
             "warm"]
    if args.get("unrolled"):
        parts.append("unrolled")
    rows = {k: [] for k in parts + ["unique_host"]}
    stats = {"positions": 0, "executed": 0, "unique": 0, "words": 0}
    cpu_used = wall_used = 0.0
    for ids, batch in zip(ids_list, batches):
        emb = np.asarray(c(embed)(cnn_w, ids))
        t = time.perf_counter()
        uids, inverse, n_unique = _unique_rows(ids)
        rows["unique_host"].append(time.perf_counter() - t)
        x = np.stack([emb, emb])
        step_mask = np.transpose(np.stack([ids.any(-1)] * 2), (2, 0, 1))[..., None]
        gates_in = [np.asarray(g) for g in gates(kernels, biases, x)]
        table = np.asarray(cnn_all(cnn_w, uids))[0]
        calls = {
            "warm": (warm, (lstm_w, table, inverse, ids)), "convs": (convs, (conv_w, ids)),
            "gates_time_major": (gates_time_major, (kernels, biases, x)),
            "full": (full, (model_w, ids)), "cnn_all": (cnn_all, (cnn_w, ids)),
            "cnn_unique": (cnn_unique, (cnn_w, uids, inverse, ids)), "lstm": (lstm_only, (lstm_w, emb, ids)),
            "gates": (gates, (kernels, biases, x)), "scan": (scan_c, (recurrent, projections, gates_in, step_mask)),
            "unrolled": (unrolled_c, (recurrent, projections, gates_in, step_mask)),
            "cached": (cached, (cnn_w, lstm_w, uids, inverse, ids)),
        }
        for part in parts:  # warm-up (compilation)
            fn, fn_args = calls[part]
            _sync(fn(*fn_args))
        # Round robin, fastest of `repeats` runs: load from other processes
        # then hits every part alike and only ever adds time.
        best = {part: float("inf") for part in parts}
        cpu0, wall0 = common.cpu_seconds(), time.perf_counter()
        for _ in range(repeats):
            for part in parts:
                fn, fn_args = calls[part]
                t = time.perf_counter()
                _sync(fn(*fn_args))
                best[part] = min(best[part], time.perf_counter() - t)
        cpu_used += common.cpu_seconds() - cpu0
        wall_used += time.perf_counter() - wall0
        for part in parts:
            rows[part].append(best[part])
        rows["cached"][-1] += rows["unique_host"][-1]
        stats["positions"] += sum(len(s) + 2 for s in batch)
        stats["words"] += sum(len(s) for s in batch)
        stats["executed"] += ids.shape[0] * ids.shape[1]
        stats["unique"] += n_unique
    seconds = {k: float(np.mean(v)) for k, v in rows.items()}
    cpu_share = cpu_used / wall_used / os.cpu_count()
    n = len(batches)
    executed = stats["executed"] / n
    flops = {
        "full": f["total"] * executed, "cnn_all": f["char_cnn"] * executed,
        "cnn_unique": f["char_cnn"] * stats["unique"] / n, "lstm": f["lstm"] * executed,
        "gates": f["lstm_input_gates"] * executed, "gates_time_major": f["lstm_input_gates"] * executed,
        "convs": f["char_cnn_conv"] * executed,
        "scan": (f["lstm_recurrent_gates"] + f["lstm_projection"]) * executed,
        "unrolled": (f["lstm_recurrent_gates"] + f["lstm_projection"]) * executed,
    }
    flops["cached"] = flops["cnn_unique"] + flops["lstm"]
    flops["warm"] = flops["lstm"]
    lib = "tensorflow" if backend == "tensorflow" else "jax"
    matmul, matmul_shapes = common.measure_matmuls(["numpy", lib], options, batch_size)
    return {"backend": backend, "compiler": ("XLA" if xla else "tf.function") if backend == "tensorflow"
            else "jax.jit", "seconds": seconds, "flops": flops, "n_batches": n, "word_source": source,
            "unique_share": stats["unique"] / stats["executed"],
            "unique_per_sentence_position": stats["unique"] / stats["positions"],
            "padding_share": 1 - stats["positions"] / stats["executed"],
            "words_per_batch": stats["words"] / n, "executed_per_batch": executed,
            "matmul": matmul, "matmul_shapes": matmul_shapes, "matmul_lib": lib,
            "cpu_share": cpu_share, "peak_rss_mib": common.peak_rss_mib(), "loadavg": os.getloadavg()[0]}


def worker(args):
    if args["task"] == "prepare":
        from configs import write_random_model

        options_file, weight_file = write_random_model(args["config"], args["directory"], seed=args["seed"])
        return {"options_file": options_file, "weight_file": weight_file,
                "weight_bytes": os.path.getsize(weight_file)}
    if args["task"] == "profile":
        return run_profile(args)
    return run_mode(args)


# ================================================================ parent side

MODE_COLUMNS = [
    ("backend", "backend", ""), ("mode", "mode", ""), ("tokens_per_s", "words/s", ",.0f"),
    ("batch_ms", "batch ms (median)", ",.0f"), ("useful_gflops", "useful GFLOP/s", ".1f"),
    ("frac_backend_matmul", "fraction of matmul", ".2f"), ("frac_numpy_matmul", "fraction of numpy matmul", ".2f"),
    ("tokens_per_cpu_s", "words per CPU-s", ",.0f"), ("frac_cpu", "fraction of matmul (CPU time)", ".2f"),
    ("executed_gflops", "executed GFLOP/s", ".1f"), ("padding_share", "padding share", ".2f"),
    ("first_call", "first call s", ""),
    ("latency_ms", "latency ms (1 sentence)", ",.0f"), ("latency_p90_ms", "p90 ms", ",.0f"),
    ("peak_rss_mib", "peak RSS MiB", ",.0f"), ("rss_loaded_mib", "RSS loaded MiB", ",.0f"),
    ("cpu_share", "CPU share", ".2f"),
]


def _matmul_text(results):
    lines = []
    for r in results:
        if "matmul" not in r:
            continue
        shapes = r["matmul_shapes"]
        for lib in r["matmul"]["wall"]:
            wall, cpu = r["matmul"]["wall"][lib], r["matmul"]["cpu"][lib]
            lines.append(f"| {r['backend']} | {r.get('mode', 'profile')} | {lib} | "
                         + " | ".join(f"{wall[k]:.1f} ({cpu[k]:.1f})" for k in shapes)
                         + f" | {r['matmul']['cpu_share']:.2f} |")
    if not lines:
        return ""
    shapes = next(r["matmul_shapes"] for r in results if "matmul_shapes" in r)
    header = ("| worker backend | worker | library | "
              + " | ".join(f"{k} {tuple(v)}" for k, v in shapes.items()) + " | CPU share |\n|"
              + "---|" * (4 + len(shapes)))
    return ("float32 matmul GFLOP/s (in brackets: GFLOP per CPU-second) measured in each worker, after the "
            "ELMo timing; the `fraction of matmul` denominators are the worker backend's `large` product:\n\n"
            + header + "\n" + "\n".join(lines))


def parent_modes(args, files):
    results, time_notes = [], []
    for backend in args.backends:
        modes = args.modes or MODES[backend]
        for mode in modes:
            if mode not in MODES[backend] + EXTRA_MODES[backend]:
                print(f"skip: mode {mode} is not available on {backend}")
                continue
            print(f"[{backend} / {mode}] running ...", flush=True)
            r = common.run_worker(__file__, dict(vars_for_worker(args), task="mode", mode=mode, **files), backend)
            if "error" in r:
                print(f"[{backend} / {mode}] FAILED: {r['error']}")
                results.append({"backend": backend, "mode": mode + " (failed)"})
                continue
            r["first_call"] = ", ".join(f"{s:.1f}" for s in r["first_call_s"])
            if r["info"].get("jit_compile"):
                r["mode"] += f" (jit_compile={r['info']['jit_compile']})"
            if "cached_tokens_at_start" in r["info"]:
                r["mode"] += f" (token cache: {r['info']['cached_tokens_at_start']:,} tokens at start)"
            if "time_shares" in r["info"]:
                shares = r["info"]["time_shares"]
                time_notes.append(f"{backend} `{mode}`: char-CNN on new tokens {shares['char_cnn']:.2f} of the "
                                  f"time, LSTMs {shares['lstm']:.2f}, the rest (Python, numpy) "
                                  f"{1 - sum(shares.values()):.2f} (one extra pass, timed per call).")
            results.append(r)
            print(f"[{backend} / {mode}] {r['tokens_per_s']:.0f} words/s, latency {r['latency_ms']:.0f} ms, "
                  f"peak {r['peak_rss_mib']:.0f} MiB", flush=True)
    table = common.markdown_table(results, MODE_COLUMNS)
    ok = [r for r in results if "tokens_per_s" in r]
    padding = max((r["padding_share"] for r in ok), default=float("nan"))
    notes = [
        "words/s counts the sentences' words (not `<S>`/`</S>`, not padding). Useful GFLOP/s counts "
        f"{forward_flops_per_position(get_options(args.config))['total']:,} FLOPs per sentence position "
        "(words + 2); executed GFLOP/s counts every position the LSTMs ran on (padding included; the "
        "cached `embedder` packs short sentences into shared rows and runs the char-CNN on new tokens only).",
        f"Time per batch: the fastest of {args.repeats} runs; words/s = all words / sum of those times. "
        f"Padding share of the executed positions: {padding:.2f} in batches of one sentence a row (see "
        "the column for each mode). First call: one per distinct padded "
        "shape (compilation included). CPU share: process CPU time / (wall time x logical CPUs) while "
        "timing; below ~0.9 means other processes took CPU. Words per CPU-s and the CPU-time fraction "
        "(useful FLOPs per CPU-second of ELMo over those of the matmul) are what the load of other "
        "processes hardly changes; with both cores free, words/s would be at most words per CPU-s x "
        f"{os.cpu_count()}.",
    ]
    body = table + "\n\n" + "\n".join(f"- {n}" for n in notes + time_notes) + "\n\n" + _matmul_text(ok)
    print("\n" + body)
    return body


PROFILE_PARTS = [
    ("full", "whole model"), ("cnn_all", "char-CNN, all positions"),
    ("convs", "char-CNN convolutions + max only (no highway/projection)"),
    ("cnn_unique", "char-CNN on unique tokens + gather"), ("unique_host", "np.unique of the batch (host)"),
    ("lstm", "BiLSTM (all layers, both directions)"), ("gates", "input-gate precompute (einsum, all layers)"),
    ("gates_time_major", "input-gate precompute, input made time-major first (suggestion)"),
    ("scan", "recurrent loop, ops.scan as in BiLSTM"), ("unrolled", "recurrent loop, unrolled at trace time"),
    ("cached", "model with per-batch char-CNN cache"),
    ("warm", "model with warm vocabulary cache (char-CNN = gather)"),
]


def parent_profile(args, files):
    sections = []
    for backend in args.backends:
        if backend == "torch":
            print("skip: --profile times compiled parts with XLA or jax.jit; not written for torch")
            continue
        print(f"[{backend} / profile] running ...", flush=True)
        r = common.run_worker(__file__, dict(vars_for_worker(args), task="profile", **files), backend)
        if "error" in r:
            print(f"[{backend} / profile] FAILED: {r['error']}")
            sections.append(f"{backend}: failed: {r['error'][-500:]}")
            continue
        s, fl = r["seconds"], r["flops"]
        large = r["matmul"]["wall"][r["matmul_lib"]]["large"]
        rows = []
        for key, label in PROFILE_PARTS:
            if key not in s:
                continue
            gflops = fl[key] / s[key] / 1e9 if key in fl else None
            rows.append({"part": label, "ms": 1000 * s[key], "share": s[key] / s["full"],
                         "gflops": gflops, "frac": gflops / large if gflops else None})
        rows.append({"part": "BiLSTM - gates (loop + reversals, derived)", "ms": 1000 * (s["lstm"] - s["gates"]),
                     "share": (s["lstm"] - s["gates"]) / s["full"]})
        rows.append({"part": "whole - char-CNN - BiLSTM (derived)",
                     "ms": 1000 * (s["full"] - s["cnn_all"] - s["lstm"]),
                     "share": (s["full"] - s["cnn_all"] - s["lstm"]) / s["full"]})
        table = common.markdown_table(rows, [("part", "part", ""), ("ms", "ms per batch", ",.1f"),
                                             ("share", "of whole model", ".2f"),
                                             ("gflops", "executed GFLOP/s", ".1f"),
                                             ("frac", "fraction of matmul", ".2f")])
        notes = [
            f"backend {backend}, compiled with {r['compiler']}; {r['n_batches']} batches, fastest of "
            f"{args.repeats} round-robin calls each, averaged over batches; {r['executed_per_batch']:.0f} positions per batch "
            f"({r['words_per_batch']:.0f} words, padding share {r['padding_share']:.2f}).",
            f"Input gates with the input made time-major first: {s['gates'] / s['gates_time_major']:.2f}x "
            f"faster than BiLSTM's einsum.",
            f"Unique token rows per batch: {r['unique_share']:.2f} of all positions, "
            f"{r['unique_per_sentence_position']:.2f} of sentence positions (Zipf-distributed words).",
            f"char-CNN cache speed-up, per-batch (cold) cache: {s['full'] / s['cached']:.2f}x "
            f"(whole model {1000 * s['full']:.0f} ms -> {1000 * s['cached']:.0f} ms, np.unique included).",
            f"char-CNN cache speed-up, warm vocabulary cache (every token a hit): {s['full'] / s['warm']:.2f}x "
            f"(whole model {1000 * s['full']:.0f} ms -> {1000 * s['warm']:.0f} ms).",
            (f"Unrolled vs scan recurrent loop: the unrolled loop takes {s['unrolled'] / s['scan']:.2f}x the "
             f"time of the scan." if "unrolled" in s else "Unrolled loop not measured (--unrolled)."),
            f"matmul reference ({r['matmul_lib']}, large product): {large:.1f} GFLOP/s; "
            f"recurrent-shaped product {r['matmul']['wall'][r['matmul_lib']]['recurrent']:.1f} GFLOP/s; "
            f"CPU share while timing {r['cpu_share']:.2f}, while measuring the matmul "
            f"{r['matmul']['cpu_share']:.2f}; load average {r['loadavg']:.2f}.",
        ]
        sections.append(f"**{backend}**\n\n" + table + "\n\n" + "\n".join(f"- {n}" for n in notes))
    body = "\n\n".join(sections)
    print("\n" + body)
    return body


def vars_for_worker(args):
    return {"config": args.config, "batch_size": args.batch_size, "min_len": args.min_len, "max_len": args.max_len,
            "n_batches": args.n_batches, "repeats": args.repeats, "seed": args.seed, "sort": args.sort,
            "latency_runs": args.latency_runs, "latency_len": args.latency_len, "xla": not args.no_xla,
            "unrolled": args.unrolled}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="small", choices=["tiny", "small", "original"])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--min-len", type=int, default=10, help="fewest words per sentence")
    p.add_argument("--max-len", type=int, default=40, help="most words per sentence")
    p.add_argument("--backend", default="both",
                   help="tensorflow, jax, torch, comma-separated, 'both' (tensorflow,jax) or 'all' (the three)")
    p.add_argument("--mode", default=None,
                   help="comma-separated execution modes (default: all of the backend's): "
                        + "; ".join(f"{b}: {', '.join(m + EXTRA_MODES[b])}" for b, m in MODES.items()))
    p.add_argument("--profile", action="store_true",
                   help="time the model's parts instead (char-CNN, gates, scan loop, char-CNN cache)")
    p.add_argument("--no-xla", action="store_true", help="--profile on TensorFlow: tf.function without XLA")
    p.add_argument("--unrolled", action="store_true",
                   help="--profile: also time the recurrent loop unrolled at trace time (slow to compile)")
    p.add_argument("--n-batches", type=int, default=None, help="distinct batches timed")
    p.add_argument("--repeats", type=int, default=None, help="passes over the batches")
    p.add_argument("--latency-runs", type=int, default=None, help="single-sentence calls (median)")
    p.add_argument("--latency-len", type=int, default=20, help="words of the latency sentence")
    p.add_argument("--sort", action="store_true", help="sort sentences by length before batching")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-results", action="store_true", help="do not append to RESULTS.md")
    args = p.parse_args(argv)
    n_batches, latency_runs = DEFAULTS[args.config]
    profile_batches, profile_repeats = PROFILE_DEFAULTS[args.config]
    args.n_batches = args.n_batches or (profile_batches if args.profile else n_batches)
    args.repeats = args.repeats or (profile_repeats if args.profile else DEFAULT_REPEATS[args.config])
    args.latency_runs = args.latency_runs or latency_runs
    args.backends = BACKEND_CHOICES.get(args.backend) or args.backend.split(",")
    for backend in args.backends:
        if backend not in MODES:
            p.error(f"--backend: unknown backend {backend!r}; choose from {', '.join(MODES)}, both, all")
    args.modes = args.mode.split(",") if args.mode else None
    return args


def main():
    args = parse_args()
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        files = common.run_worker(__file__, {"task": "prepare", "config": args.config, "directory": tmp,
                                             "seed": args.seed}, args.backends[0])
        if "error" in files:
            sys.exit(f"writing the random model failed: {files['error']}")
        weight_bytes = files.pop("weight_bytes")
        body = parent_profile(args, files) if args.profile else parent_modes(args, files)
    settings = {
        "configuration": f"{args.config} (random weights, {weight_bytes / 2**20:.0f} MiB hdf5)",
        "backend": ", ".join(args.backends), "precision": "float32",
        "batch": f"{args.batch_size} sentences of {args.min_len}-{args.max_len} words (uniform, seed "
                 f"{args.seed}{', sorted by length' if args.sort else ''}), {args.n_batches} batches x "
                 f"{args.repeats} passes",
        "latency sentence": f"{args.latency_len} words, median of {args.latency_runs} calls",
        "words": common.word_list()[1] + ", Zipf (s=1) frequencies",
        "wall time of the command": f"{time.time() - start:.0f} s",
    }
    print(f"\nwall time {time.time() - start:.0f} s")
    if not args.no_results:
        title = ("Where the time goes" if args.profile else "Embedding throughput, latency, memory") \
            + f": {args.config}"
        common.append_results(title, settings, body)


if __name__ == "__main__":
    if "--worker" in sys.argv:
        common.worker_main(worker)
    else:
        main()
