"""benchmarks/bench_embed.py: its backend choices, and the torch matmul denominator of `common.py`."""

import importlib.util
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks" / "bench_embed.py"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH.parent))
    try:
        spec = importlib.util.spec_from_file_location("bench_embed", BENCH)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCH.parent))


@pytest.mark.parametrize("flag, backends", [
    ("both", ["tensorflow", "jax"]), ("all", ["tensorflow", "jax", "torch"]), ("torch", ["torch"]),
    ("torch,tensorflow", ["torch", "tensorflow"]),
])
def test_backend_choices(bench, flag, backends):
    assert bench.parse_args(["--backend", flag]).backends == backends


def test_an_unknown_backend_is_refused(bench):
    with pytest.raises(SystemExit):
        bench.parse_args(["--backend", "mxnet"])


def test_every_backend_has_modes_and_a_matmul_library(bench):
    for backend, modes in bench.MODES.items():
        assert modes[0] == "embedder" and "predict_on_batch" in modes
        assert bench._matmul_lib(backend) == backend


def test_torch_matmul_rate():
    pytest.importorskip("torch")
    sys.path.insert(0, str(BENCH.parent))
    try:
        import common
    finally:
        sys.path.remove(str(BENCH.parent))
    wall, cpu = common.matmul_gflops("torch", 64, 64, 64, min_seconds=0.01)
    assert wall > 0 and cpu > 0
