"""Compiled programs kept on disk, so that the next process's first vectors come without compiling them again.

- JAX: its persistent compilation cache (`jax_compilation_cache_dir`), for
  every program however quickly it compiles.
- TensorFlow: XLA's persistent cache (`--tf_xla_persistent_cache_directory`
  in `TF_XLA_FLAGS`), which TensorFlow reads once, when it is imported: it
  applies only when turned on before that.
- PyTorch: the package compiles nothing there.

The `elmo-keras` command turns it on for every subcommand, in a folder of
`$ELMO_KERAS_CACHE` (default `~/.cache/elmo_keras`): `compiled/` then one
folder per machine and software (a digest of the CPU's instruction-set flags,
the library versions and the environment variables that change compiled
code), so that a home folder shared between machines never hands one CPU
another's code. `ELMO_KERAS_COMPILATION_CACHE=0` turns it off; from Python,
call `enable_compilation_cache()` before importing Keras.

Measured on the bundled model, two sentences (`benchmarks/bench_cold_start.py`,
RESULTS.md "Cold start"): the first `embed_file` call fell from 1.5-1.9 s to
0.2-0.5 s on JAX and from 1.7-2.3 s to 1.3-1.4 s on TensorFlow with the cache
filled by an earlier process.
"""

import hashlib
import importlib.metadata
import os
import platform
import sys

from elmo_keras.backends import requested_backend

ENVIRONMENT_VARIABLE = "ELMO_KERAS_COMPILATION_CACHE"
# What else decides the code a compiler emits for this process.
_CODE_ENVIRONMENT = ("XLA_FLAGS", "TF_XLA_FLAGS", "ONEDNN_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS")
_TF_FLAG = "--tf_xla_persistent_cache_directory"
JAX_CACHE_MAX_BYTES = 2 * 2**30  # JAX evicts the least recently used programs beyond this


def _cpu_flags():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return " ".join(sorted(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def machine_digest():
    """16 hex digits naming this CPU's flags, Python, the compilers' versions and the code-changing variables."""
    parts = [_cpu_flags(), platform.machine(), sys.version.split()[0]]
    parts += [f"{n}={_version(n)}" for n in ("tensorflow", "jax", "jaxlib", "keras")]
    parts += [f"{n}={os.environ.get(n, '')}" for n in _CODE_ENVIRONMENT
              if not (n == "TF_XLA_FLAGS" and _TF_FLAG in os.environ.get(n, ""))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def default_directory():
    """`$ELMO_KERAS_CACHE/compiled/<machine_digest()>` (default cache folder `~/.cache/elmo_keras`)."""
    from elmo_keras.pretrained import default_cache_dir

    return os.path.join(default_cache_dir(), "compiled", machine_digest())


def enabled_by_environment():
    """False when `ELMO_KERAS_COMPILATION_CACHE` is 0, false, no or off."""
    return os.environ.get(ENVIRONMENT_VARIABLE, "1").strip().lower() not in ("0", "false", "no", "off")


def enable_compilation_cache(directory=None):
    """Keep compiled programs of the requested Keras backend in `directory` (default `default_directory()`).

    Returns the backend whose cache is now on, or None: PyTorch (nothing to
    keep), or TensorFlow already imported without it (it reads the setting
    only when it is imported). A `TF_XLA_FLAGS` that already names a
    persistent cache folder is left as it is.
    """
    backend, _ = requested_backend()
    if backend not in ("tensorflow", "jax"):
        return None
    directory = os.path.abspath(directory or default_directory())
    if backend == "tensorflow":
        flags = os.environ.get("TF_XLA_FLAGS", "")
        if _TF_FLAG in flags:
            return backend
        if "tensorflow" in sys.modules:
            return None
        os.makedirs(directory, exist_ok=True)
        os.environ["TF_XLA_FLAGS"] = f"{flags} {_TF_FLAG}={directory}".strip()
        return backend
    import jax

    os.makedirs(directory, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_compilation_cache_max_size", JAX_CACHE_MAX_BYTES)
    return backend
