"""The lowered instruction set of CI's second run really changes the float32 bits.

`tests/cpu_isa.py` picks the settings; here two child processes compute the
same products, one as the machine is and one under those settings, and the
bits must differ (oneDNN: TensorFlow's matmul; XLA: its compiled tanh, exp,
sigmoid and row sum). An unknown setting would be ignored with a warning
only, so the warning is checked for too.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from cpu_isa import lower_isa_env

pytest.importorskip("tensorflow")

LOWER = lower_isa_env()
pytestmark = pytest.mark.skipif(not LOWER, reason="this CPU has no AVX: there is no instruction set below its own")

PROBE = r"""
import hashlib, json
import numpy as np
import tensorflow as tf

rng = np.random.default_rng(0)
a = rng.standard_normal((67, 301)).astype("float32")
b = rng.standard_normal((301, 129)).astype("float32")
v = rng.standard_normal((7, 4099)).astype("float32")


def digest(x):
    return hashlib.sha256(np.asarray(x).tobytes()).hexdigest()


xla = tf.function(lambda x: (tf.tanh(x), tf.exp(x), tf.sigmoid(x), tf.reduce_sum(x, axis=1)), jit_compile=True)
print(json.dumps({"onednn": digest(tf.matmul(a, b)), "xla": [digest(y) for y in xla(v)]}))
"""


def _probe(env):
    """The probe's digests and its stderr, in a child process with exactly these ISA settings."""
    base = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "XLA_FLAGS")}
    result = subprocess.run([sys.executable, "-c", PROBE], env={**base, "TF_CPP_MIN_LOG_LEVEL": "1", **env},
                            capture_output=True, text=True, timeout=300, cwd=pathlib.Path(__file__).parent)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


@pytest.fixture(scope="module")
def probes():
    return _probe({}), _probe(LOWER)


def test_lowered_onednn_changes_tensorflow_matmul_bits(probes):
    (own, _), (lowered, _) = probes
    assert own["onednn"] != lowered["onednn"], f"ONEDNN_MAX_CPU_ISA={LOWER['ONEDNN_MAX_CPU_ISA']} changed nothing"


def test_lowered_xla_is_accepted_and_changes_bits_where_the_cpu_shows_it(probes):
    (own, _), (lowered, stderr) = probes
    assert "Unknown CPU ISA" not in stderr, stderr[-2000:]
    if LOWER["XLA_FLAGS"].endswith("=AVX2") and own["xla"] == lowered["xla"]:
        # Both have FMA: XLA's polynomials and its row sum give the same bits on AVX2 and AVX-512.
        pytest.skip("XLA gives the same bits held to AVX2 as with AVX-512 on these operations")
    assert own["xla"] != lowered["xla"], f"{LOWER['XLA_FLAGS']} changed nothing"
