"""GPU: the elmo_keras biLM on JAX next to PyTorch's cuDNN LSTM, TF32 and bfloat16.

For the GPU machine (JAX and PyTorch, no TensorFlow):

    python benchmarks/bench_gpu.py                      # original size, batch 256 x 64 tokens
    python benchmarks/bench_gpu.py --smoke --no-results # tiny sizes on CPU: checks the script runs

Rows (each in a fresh process):
- `jax biLM`: `build_bilm` on the JAX backend, char ids in, all layers out
  (`jax.jit(model.stateless_call)`).
- `jax BiLSTM`: its `BiLSTM` layer alone on token vectors (what cuDNN can be
  compared with).
- `torch cuDNN LSTM`: two `torch.nn.LSTM(P, D, num_layers=L, proj_size=P)`,
  one per direction (the backward one reads the flipped input), run one
  after the other: the same matrix products as ELMo's biLSTM, without its
  cell/projection clipping and skip connection (cuDNN has neither), so an
  upper bound of what a fused LSTM kernel gives.

Precisions: `fp32` (full float32 products), `tf32` (float32 storage, TF32
tensor-core products: JAX `jax_default_matmul_precision="tensorfloat32"`,
torch `allow_tf32`), `bf16` (JAX: Keras `mixed_bfloat16` policy, float32
variables; torch: module and input in bfloat16).

FLOPs per token are `flops.forward_flops_per_position` (the LSTM part for the
LSTM rows); the reference is a (B*T, P) x (P, 4D) matmul in the same precision,
measured in the same process.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
from configs import get_options  # noqa: E402
from flops import forward_flops_per_position  # noqa: E402


def _median_seconds(call, sync, warmup, iters):
    for _ in range(warmup):
        sync(call())
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        sync(call())
        times.append(time.perf_counter() - t)
    return float(np.median(times))


# ================================================================ JAX worker

def run_jax(args):
    import jax

    if args["precision"] == "fp32":
        jax.config.update("jax_default_matmul_precision", "highest")
    elif args["precision"] == "tf32":
        jax.config.update("jax_default_matmul_precision", "tensorfloat32")
    import jax.numpy as jnp
    import keras

    from elmo_keras.models.bilm import build_bilm

    if args["precision"] == "bf16":
        keras.config.set_dtype_policy("mixed_bfloat16")
    keras.utils.set_random_seed(0)
    options = get_options(args["config"])
    b, t = args["batch_size"], args["time_steps"]
    p, d = options["lstm"]["projection_dim"], options["lstm"]["dim"]
    model = build_bilm(options)
    lstm = model.get_layer("bilstm")
    rng = np.random.default_rng(0)
    device = jax.devices()[0]
    ids = jax.device_put(rng.integers(1, 262, (b, t, 50)).astype("int32"), device)
    compute = jnp.bfloat16 if args["precision"] == "bf16" else jnp.float32
    tokens = jax.device_put(rng.standard_normal((b, t, p)).astype("float32"), device).astype(compute)
    sync = lambda x: jax.block_until_ready(x)  # noqa: E731

    def values(layer):
        return [v.value for v in layer.trainable_variables], [v.value for v in layer.non_trainable_variables]

    if args["part"] == "bilm":
        w = values(model)
        f = jax.jit(lambda w, x: model.stateless_call(w[0], w[1], x, training=False)[0]["activations"])
        call = lambda: f(w, ids)  # noqa: E731
        per_token = forward_flops_per_position(options)["total"]
    else:
        # Through a functional model, so that the layer is called with
        # `__call__` (`stateless_call` of the layer itself skips the mixed
        # precision autocast of its variables).
        token_input = keras.Input((t, p))
        lstm_model = keras.Model(token_input, lstm(token_input))
        w = values(lstm_model)
        f = jax.jit(lambda w, x: lstm_model.stateless_call(w[0], w[1], x, training=False)[0])
        call = lambda: f(w, tokens)  # noqa: E731
        per_token = forward_flops_per_position(options)["lstm"]
    t0 = time.perf_counter()
    sync(call())
    first = time.perf_counter() - t0
    seconds = _median_seconds(call, sync, args["warmup"], args["iters"])
    a = jnp.asarray(rng.standard_normal((b * t, p)), compute)
    k = jnp.asarray(rng.standard_normal((p, 4 * d)), compute)
    mm = jax.jit(jnp.matmul)
    mm_seconds = _median_seconds(lambda: mm(a, k), sync, 2, max(3, args["iters"]))
    peak = None
    try:
        peak = device.memory_stats().get("peak_bytes_in_use")
    except Exception:  # CPU devices have no memory stats
        pass
    return {"framework": "jax", "part": f"jax {'biLM' if args['part'] == 'bilm' else 'BiLSTM'}",
            "device": f"{device.platform}: {device.device_kind}", "seconds": seconds, "first_s": first,
            "tokens_per_s": b * t / seconds, "gflops": per_token * b * t / seconds / 1e9,
            "matmul_gflops": 2 * b * t * p * 4 * d / mm_seconds / 1e9,
            "peak_mib": peak / 2**20 if peak else common.peak_rss_mib(),
            "memory_kind": "device peak" if peak else "host RSS"}


# ================================================================ torch worker

def run_torch(args):
    try:
        import torch
    except ImportError as e:
        return {"skipped": f"torch is not installed ({e})"}
    options = get_options(args["config"])
    b, t = args["batch_size"], args["time_steps"]
    p, d, layers = options["lstm"]["projection_dim"], options["lstm"]["dim"], options["lstm"]["n_layers"]
    device = torch.device("cuda" if torch.cuda.is_available() and not args["smoke"] else "cpu")
    tf32 = args["precision"] == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    dtype = torch.bfloat16 if args["precision"] == "bf16" else torch.float32
    torch.manual_seed(0)
    directions = [torch.nn.LSTM(p, d, num_layers=layers, proj_size=p, batch_first=True).to(device, dtype)
                  for _ in range(2)]
    x = torch.randn(b, t, p, device=device, dtype=dtype)

    def sync(_):
        if device.type == "cuda":
            torch.cuda.synchronize()

    @torch.inference_mode()
    def call():
        forward, _ = directions[0](x)
        backward, _ = directions[1](torch.flip(x, dims=[1]))
        return forward, backward

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    sync(call())
    first = time.perf_counter() - t0
    seconds = _median_seconds(call, sync, args["warmup"], args["iters"])
    a = torch.randn(b * t, p, device=device, dtype=dtype)
    k = torch.randn(p, 4 * d, device=device, dtype=dtype)
    with torch.inference_mode():
        mm_seconds = _median_seconds(lambda: a @ k, sync, 2, max(3, args["iters"]))
    per_token = forward_flops_per_position(options)["lstm"]
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else common.peak_rss_mib()
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    return {"framework": "torch", "part": "torch cuDNN LSTM" if device.type == "cuda" else "torch LSTM (CPU)",
            "device": f"{device.type}: {name}", "seconds": seconds, "first_s": first,
            "tokens_per_s": b * t / seconds, "gflops": per_token * b * t / seconds / 1e9,
            "matmul_gflops": 2 * b * t * p * 4 * d / mm_seconds / 1e9, "peak_mib": peak,
            "memory_kind": "device peak" if device.type == "cuda" else "host RSS"}


def worker(args):
    return run_torch(args) if args["framework"] == "torch" else run_jax(args)


# ================================================================ parent

COLUMNS = [("part", "what", ""), ("precision", "precision", ""), ("tokens_per_s", "tokens/s", ",.0f"),
           ("ms", "ms per batch", ",.1f"), ("gflops", "GFLOP/s", ",.0f"),
           ("matmul_gflops", "matmul GFLOP/s", ",.0f"), ("frac", "fraction of matmul", ".2f"),
           ("first_s", "first call s", ".1f"), ("peak_mib", "peak MiB", ",.0f"), ("memory_kind", "memory", ""),
           ("device", "device", "")]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="original", choices=["tiny", "small", "original"])
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--time-steps", type=int, default=64)
    p.add_argument("--precision", default="tf32,bf16", help="comma-separated: fp32, tf32, bf16")
    p.add_argument("--rows", default="jax-bilm,jax-bilstm,torch",
                   help="comma-separated: jax-bilm, jax-bilstm, torch")
    p.add_argument("--iters", type=int, default=10, help="timed calls (median)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--smoke", action="store_true", help="tiny sizes on CPU: check that everything runs")
    p.add_argument("--no-results", action="store_true", help="do not append to RESULTS.md")
    args = p.parse_args()
    if args.smoke:
        args.config, args.batch_size, args.time_steps, args.iters, args.warmup = "tiny", 4, 8, 2, 1
    start = time.time()
    results, notes = [], []
    for precision in args.precision.split(","):
        for row in args.rows.split(","):
            framework = "torch" if row == "torch" else "jax"
            job = {"framework": framework, "part": "bilm" if row == "jax-bilm" else "bilstm",
                   "precision": precision, "config": args.config, "batch_size": args.batch_size,
                   "time_steps": args.time_steps, "iters": args.iters, "warmup": args.warmup, "smoke": args.smoke}
            env = common.worker_env("jax")
            if not args.smoke:
                env.pop("JAX_PLATFORMS")  # use the GPU
            print(f"[{row} / {precision}] running ...", flush=True)
            r = common.run_worker(__file__, job, "jax", env=env, timeout=1200)
            if "error" in r or "skipped" in r:
                message = r.get("error") or r.get("skipped")
                print(f"[{row} / {precision}] {'FAILED' if 'error' in r else 'skipped'}: {message}")
                notes.append(f"{row} / {precision}: {message[-400:]}")
                continue
            r.update(precision=precision, ms=1000 * r["seconds"], frac=r["gflops"] / r["matmul_gflops"])
            results.append(r)
            print(f"[{row} / {precision}] {r['tokens_per_s']:,.0f} tokens/s, {r['gflops']:,.0f} GFLOP/s", flush=True)
    body = common.markdown_table(results, COLUMNS)
    options = get_options(args.config)
    f = forward_flops_per_position(options)
    notes.insert(0, f"tokens = batch x time steps (no padding). FLOPs per token: biLM {f['total']:,}, LSTM part "
                    f"{f['lstm']:,}. matmul reference: ({args.batch_size * args.time_steps}, "
                    f"{options['lstm']['projection_dim']}) x ({options['lstm']['projection_dim']}, "
                    f"{4 * options['lstm']['dim']}) in the row's precision.")
    body += "\n\n" + "\n".join(f"- {n}" for n in notes)
    print("\n" + body)
    if not args.no_results:
        devices = sorted({r["device"] for r in results})
        common.append_results(f"GPU: biLM on JAX vs cuDNN LSTM: {args.config}" + (" (smoke)" if args.smoke else ""),
                              {"device": ", ".join(devices), "configuration": f"{args.config} (random weights)",
                               "precision": args.precision,
                               "batch": f"{args.batch_size} x {args.time_steps} tokens, median of {args.iters} calls",
                               "wall time of the command": f"{time.time() - start:.0f} s"}, body)


if __name__ == "__main__":
    if "--worker" in sys.argv:
        common.worker_main(worker)
    else:
        main()
