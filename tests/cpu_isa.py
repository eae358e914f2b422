"""The instruction set one step below this CPU's own, for a second run of the numeric tests.

Users run the package on CPUs with and without AVX-512, so the suite runs its
numeric tests twice in CI: once as the machine is, once with oneDNN
(TensorFlow's matrix products and convolutions) and XLA's code generator
(TensorFlow with `jit_compile`, JAX) held below the machine's instruction set.
A kernel of another vector width sums in another order, so the second run
sees the float32 bits another CPU would produce.

Measured on an AMD EPYC (Zen 3, AVX2; TensorFlow 2.20, jax 0.10.2):
`ONEDNN_MAX_CPU_ISA=SSE41` changes the bits of TensorFlow's matmul, eager and
compiled, and not JAX's; `--xla_cpu_max_isa=SSE4_2` changes the bits of XLA's
tanh, exp and sigmoid and of a compiled row sum, on JAX and on TensorFlow
with XLA, and not its matmul. `TF_ENABLE_ONEDNN_OPTS=0` changed neither
there. An unknown value is ignored with a warning only, which is why
`tests/test_cpu_isa.py` checks that the lowered run's bits really differ.

    python tests/cpu_isa.py          # prints `export NAME=VALUE` lines, or nothing on a CPU without AVX

`.ci/run` evaluates that output before its second run.
"""

import pathlib

# (flag in /proc/cpuinfo, what oneDNN and XLA are held to when the CPU has it)
# from the widest down: the first flag the CPU has picks the row.
LOWER = (
    ("avx512f", "AVX2", "AVX2"),
    ("avx2", "SSE41", "SSE4_2"),
    ("avx", "SSE41", "SSE4_2"),
)


def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The instruction-set flags of the first CPU in `cpuinfo` (empty where there is none)."""
    path = pathlib.Path(cpuinfo)
    if not path.exists():
        return set()
    for line in path.read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def lower_isa_env(flags=None):
    """Environment that holds oneDNN and XLA one step below the CPU's own; {} if there is none.

    >>> lower_isa_env({"sse4_2", "avx", "avx2", "fma"})
    {'ONEDNN_MAX_CPU_ISA': 'SSE41', 'XLA_FLAGS': '--xla_cpu_max_isa=SSE4_2'}
    >>> lower_isa_env({"avx2", "avx512f"})["ONEDNN_MAX_CPU_ISA"]
    'AVX2'
    >>> lower_isa_env({"sse4_2"})
    {}
    """
    flags = cpu_flags() if flags is None else flags
    for flag, onednn, xla in LOWER:
        if flag in flags:
            return {"ONEDNN_MAX_CPU_ISA": onednn, "XLA_FLAGS": f"--xla_cpu_max_isa={xla}"}
    return {}


if __name__ == "__main__":
    for name, value in lower_isa_env().items():
        print(f"export {name}={value}")
