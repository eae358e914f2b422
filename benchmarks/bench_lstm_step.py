"""The BiLSTM's recurrent loop alone on JAX: what its step costs, and what would change it.

    python benchmarks/bench_lstm_step.py --batch 40 64 --config small

Runs `lax.scan` over the step `BiLSTM._run_layer` performs (both directions
batched, recurrent product, cell, projection, clipping, mask) with random
weights, and variants of it: the sigmoid computed through `tanh`, only `h`
returned per step (the TF backend's `scan` needs outputs shaped like the
carry, so the layer also returns `c`), and the cell's elementwise work left
out (a bound). Prints wall time per step and GFLOP/s of the two products,
next to numpy's float32 matmul measured in the same process. JAX only.

With `--gates`, times instead the input-gate products that precede the loop,
in the layout `BiLSTM._run_layer` uses (time-major input, broadcast over the
direction axis) and in three others.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
from configs import get_options  # noqa: E402

VARIANTS = ("layer", "sigmoid_via_tanh", "h_only", "no_cell")


def time_loop(variant, batch, time_steps, projection_dim, units, repeats=7):
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    kernel = jnp.asarray(rng.normal(size=(2, projection_dim, 4 * units)).astype("float32") * 0.05)
    projection = jnp.asarray(rng.normal(size=(2, units, projection_dim)).astype("float32") * 0.05)
    gates_in = jnp.asarray(rng.normal(size=(time_steps, 2, batch, 4 * units)).astype("float32"))
    mask = jnp.ones((time_steps, 2, batch, 1), bool)

    def sigmoid(x):
        return 0.5 * jnp.tanh(0.5 * x) + 0.5 if variant == "sigmoid_via_tanh" else jax.nn.sigmoid(x)

    def step(carry, g):
        h, c, t = carry
        gates = g + jnp.matmul(h, kernel)
        if variant == "no_cell":
            new_c, out = c, gates[..., :units]
        else:
            i, j, f, o = jnp.split(gates, 4, axis=-1)
            new_c = jnp.clip(sigmoid(f + 1.0) * c + sigmoid(i) * jnp.tanh(j), -3.0, 3.0)
            out = sigmoid(o) * jnp.tanh(new_c)
        new_h = jnp.clip(jnp.matmul(out, projection), -3.0, 3.0)
        new_h = jnp.where(mask[t], new_h, h)
        new_c = jnp.where(mask[t], new_c, c)
        ys = new_h if variant == "h_only" else (new_h, new_c, t)
        return (new_h, new_c, t + 1), ys

    init = (jnp.zeros((2, batch, projection_dim)), jnp.zeros((2, batch, units)), 0)
    return best_seconds(jax.jit(lambda g: jax.lax.scan(step, init, g)[1]), (gates_in,), repeats)


def best_seconds(function, args, repeats):
    """Fastest wall time of `function(*args)` over `repeats` calls, after one (compiling) call."""
    import jax

    jax.block_until_ready(function(*args))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(*args))
        best = min(best, time.perf_counter() - start)
    return best


GATE_LAYOUTS = {
    # What BiLSTM._run_layer does: make the projection-wide input time-major first.
    "time_major_input": lambda jnp, x, w: jnp.matmul(jnp.transpose(x, (2, 0, 1, 3)), w),
    # The former layout: the 4 x units-wide output is transposed.
    "einsum_time_major_output": lambda jnp, x, w: jnp.einsum("zbti,zig->tzbg", x, w),
    "per_direction_then_stack": lambda jnp, x, w: jnp.stack([jnp.reshape(jnp.matmul(
        jnp.reshape(jnp.transpose(x[z], (1, 0, 2)), (-1, x.shape[3])), w[z]),
        (x.shape[2], x.shape[1], -1)) for z in range(2)], axis=1),
    # One large product per direction (time x batch rows), then a block transpose.
    "batched_then_transpose": lambda jnp, x, w: jnp.transpose(jnp.reshape(jnp.matmul(
        jnp.reshape(jnp.transpose(x, (0, 2, 1, 3)), (2, -1, x.shape[3])), w),
        (2, x.shape[2], x.shape[1], -1)), (1, 0, 2, 3)),
}


def time_gates(layout, batch, time_steps, projection_dim, units, repeats=5):
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, batch, time_steps, projection_dim)).astype("float32"))
    w = jnp.asarray(rng.normal(size=(2, projection_dim, 4 * units)).astype("float32"))
    return best_seconds(jax.jit(lambda x, w: GATE_LAYOUTS[layout](jnp, x, w)), (x, w), repeats)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="small", choices=["tiny", "small", "original"])
    p.add_argument("--batch", type=int, nargs="+", default=[40, 64], help="rows per step")
    p.add_argument("--time-steps", type=int, default=48)
    p.add_argument("--gates", action="store_true", help="time the input-gate products instead")
    p.add_argument("--no-results", action="store_true", help="do not append to RESULTS.md")
    args = p.parse_args()
    lstm = get_options(args.config)["lstm"]
    units, projection_dim = lstm["dim"], lstm["projection_dim"]
    numpy_matmul = common.matmul_gflops("numpy", 2560, 1024, 4096)[0]
    if args.gates:
        return gates_main(args, units, projection_dim, numpy_matmul)
    rows = []
    for batch in args.batch:
        flops = args.time_steps * 2 * batch * (projection_dim * 4 * units + units * projection_dim) * 2
        for variant in VARIANTS:
            seconds = time_loop(variant, batch, args.time_steps, projection_dim, units)
            rows.append({"batch": batch, "variant": variant, "us_per_step": 1e6 * seconds / args.time_steps,
                         "gflops": flops / seconds / 1e9, "fraction": flops / seconds / 1e9 / numpy_matmul})
    report(rows, [("variant", "variant", ""), ("us_per_step", "us per step", ",.0f")],
           f"BiLSTM recurrent step on JAX: {args.config}",
           f"numpy float32 matmul (2560 x 1024 x 4096) in the same process: {numpy_matmul:.1f} GFLOP/s; "
           f"{args.time_steps} steps, both directions, units {units}, projection {projection_dim}.",
           append=not args.no_results)


def report(rows, columns, title, note, append=True):
    """Print the table and append it to RESULTS.md."""
    columns = [("batch", "batch", "")] + columns + [
        ("gflops", "GFLOP/s", ".1f"), ("fraction", "fraction of numpy matmul", ".2f")]
    body = common.markdown_table(rows, columns) + f"\n\n- {note}"
    print(body)
    if append:
        common.append_results(title, {"backend": "jax", "precision": "float32"}, body)


def gates_main(args, units, projection_dim, numpy_matmul):
    rows = []
    for batch in args.batch:
        flops = 2 * batch * args.time_steps * projection_dim * 4 * units * 2
        for layout in GATE_LAYOUTS:
            seconds = time_gates(layout, batch, args.time_steps, projection_dim, units)
            rows.append({"batch": batch, "layout": layout, "ms": 1e3 * seconds, "gflops": flops / seconds / 1e9,
                         "fraction": flops / seconds / 1e9 / numpy_matmul})
    report(rows, [("layout", "layout", ""), ("ms", "ms", ",.1f")],
           f"BiLSTM input-gate products on JAX: {args.config}",
           f"numpy float32 matmul in the same process: {numpy_matmul:.1f} GFLOP/s; input (2, batch, "
           f"{args.time_steps}, {projection_dim}) to gates ({args.time_steps}, 2, batch, {4 * units}).",
           append=not args.no_results)


if __name__ == "__main__":
    main()
