"""An independent numpy biLM (float64 by default), written from docs/elmo-format.md.

Slow and plain on purpose: one sentence, one direction, one step at a time.
Tests compare the Keras layers against it on configurations that the bilm-tf
fixture does not cover (skip connections, tanh, active clipping, 3 layers).

`dtype=np.float32` evaluates the same arithmetic in float32. The gap between
the float32 and the float64 evaluation measures how much float32 rounding
this configuration and input amplify, from which the float32 tests derive
their tolerance.
"""

import functools
import json

import h5py
import numpy as np


FLOAT32_SENSITIVITY_FACTOR = 10
FLOAT32_ULP_FLOOR = 8


def float32_tolerance(expected, expected_float32):
    """The atol for a float32 model against the float64 reference, from the problem.

    `expected` are the float64 reference's outputs for some inputs and
    `expected_float32` the float32 reference's for the same inputs (lists of
    arrays). Their largest gap is the float32 sensitivity of this
    configuration and input: how much float32 rounding, amplified through
    the char-CNN, the highways and the LSTM recurrence, moves the outputs
    (with scale-2 random weights up to ~1e-5 at outputs of ~6, about 15 ulps).
    Any correct float32 evaluation drifts by about as much: the elementwise
    functions round alike on alike inputs, and only the summation orders of
    the products differ (numpy's BLAS, oneDNN, Eigen, XLA, the vector width
    of the CPU). The tolerance is FLOAT32_SENSITIVITY_FACTOR times that
    sensitivity, with a floor of FLOAT32_ULP_FLOOR float32 ulps of the
    largest output, for inputs that happen to round almost exactly. The
    Keras model's gap measured 0.84-1.0 times the sensitivity (both with and
    without oneDNN), so the factor 10 leaves room for other CPUs, while
    the bugs that `test_parity.test_derived_tolerance_rejects_model_bugs`
    plants (swapped gates, a lost clip or skip connection, the forget bias)
    move the outputs by at least 50 times the tolerance.
    """
    pairs = [(np.asarray(a, np.float64), np.asarray(b, np.float64))
             for a, b in zip(expected, expected_float32) if np.size(a)]
    sensitivity = max(np.abs(a - b).max() for a, b in pairs)
    magnitude = max(np.abs(a).max() for a, _ in pairs)
    floor = FLOAT32_ULP_FLOOR * np.finfo(np.float32).eps * magnitude
    return max(FLOAT32_SENSITIVITY_FACTOR * sensitivity, floor)


@functools.lru_cache(maxsize=None)
def batching_tolerance(options_file, weight_file, sentences):
    """The atol between two float32 evaluations of one model that batch the same sentences differently.

    Packed rows against one sentence a row, a token budget against none, a
    request padded beside longer ones against one alone: the arithmetic is
    the same, only the kernels' blocking and so the summation order of the
    products differ with the shapes (and with the CPU's vector width). Each
    evaluation lies within about the float32 sensitivity of the exact value,
    so the two differ by up to about twice that: `float32_tolerance` (10x
    the sensitivity, at least 8 ulps) covers it, measured on `sentences`
    (a tuple of token tuples, boundaries left out as the embedder leaves
    them out). The sensitivity does not grow with the sentence's length:
    on the fixture model 2.8e-7 at 40 and at 300 tokens, 3.4e-7 at 1,000.
    Identical shapes and inputs are one computation and are compared bit
    for bit instead.
    """
    from elmo_keras import batch_to_ids

    with open(options_file, encoding="utf-8") as f:
        options = json.load(f)
    per_dtype = []
    for dtype in (np.float64, np.float32):
        reference = ReferenceBiLM(options, weight_file, dtype=dtype)
        per_dtype.append([reference.sentence(batch_to_ids([list(s)])[0])[:, 1:-1] for s in sentences])
    return float32_tolerance(*per_dtype)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class ReferenceBiLM:
    def __init__(self, options, weight_file, dtype=np.float64):
        self.options = options
        self.dtype = np.dtype(dtype)
        with h5py.File(weight_file, "r") as f:
            self.w = {}
            f.visititems(lambda name, obj: self.w.__setitem__(name, np.asarray(obj, self.dtype))
                         if isinstance(obj, h5py.Dataset) else None)
        self.state = {}

    def char_cnn(self, ids):
        """ids: (n_tokens, 50) shifted ids -> (n_tokens, P)."""
        cnn = self.options["char_cnn"]
        table = np.concatenate([np.zeros((1, self.w["char_embed"].shape[1]), self.dtype), self.w["char_embed"]])
        out = []
        for token in ids:
            emb = table[token]  # (50, E)
            feats = []
            for i, (width, num) in enumerate(cnn["filters"]):
                kernel = self.w[f"CNN/W_cnn_{i}"][0]  # (width, E, num)
                conv = np.stack([np.einsum("ke,ken->n", emb[p:p + width], kernel)
                                 for p in range(len(token) - width + 1)])
                conv = conv + self.w[f"CNN/b_cnn_{i}"]
                pooled = conv.max(axis=0)
                feats.append(np.maximum(pooled, 0) if cnn["activation"] == "relu" else np.tanh(pooled))
            x = np.concatenate(feats)
            for k in range(cnn.get("n_highway", 0)):
                g = _sigmoid(x @ self.w[f"CNN_high_{k}/W_carry"] + self.w[f"CNN_high_{k}/b_carry"])
                t = np.maximum(x @ self.w[f"CNN_high_{k}/W_transform"] + self.w[f"CNN_high_{k}/b_transform"], 0)
                x = g * t + (1 - g) * x
            if "CNN_proj/W_proj" in self.w:
                x = x @ self.w["CNN_proj/W_proj"] + self.w["CNN_proj/b_proj"]
            out.append(x)
        return np.stack(out)

    def _lstm(self, d, layer, xs, row):
        lstm = self.options["lstm"]
        prefix = f"RNN_{d}/RNN/MultiRNNCell/Cell{layer}/LSTMCell/"
        w, b, wp = self.w[prefix + "W_0"], self.w[prefix + "B"], self.w[prefix + "W_P_0"]
        units = wp.shape[0]
        h, c = self.state.get((d, layer, row), (np.zeros(wp.shape[1], self.dtype),
                                                   np.zeros(units, self.dtype)))
        outs = []
        for x in xs:
            z = np.concatenate([x, h]) @ w + b
            i, j, f, o = np.split(z, 4)
            c = _sigmoid(f + 1.0) * c + _sigmoid(i) * np.tanh(j)
            if lstm.get("cell_clip"):
                c = np.clip(c, -lstm["cell_clip"], lstm["cell_clip"])
            h = (_sigmoid(o) * np.tanh(c)) @ wp
            if lstm.get("proj_clip"):
                h = np.clip(h, -lstm["proj_clip"], lstm["proj_clip"])
            outs.append(h)
        self.state[(d, layer, row)] = (h, c)
        return np.stack(outs)

    def sentence(self, ids, row=0, stateful=False):
        """ids: (n_tokens + 2, 50) with boundaries -> (layers, n_tokens + 2, 2P)."""
        if not stateful:
            self.state = {}
        emb = self.char_cnn(ids)
        layers = [np.concatenate([emb, emb], axis=-1)]
        per_dir = []
        for d in range(2):
            x = emb if d == 0 else emb[::-1]
            outs = []
            for layer in range(self.options["lstm"]["n_layers"]):
                y = self._lstm(d, layer, x, row)
                if self.options["lstm"].get("use_skip_connections") and layer > 0:
                    y = y + x
                outs.append(y if d == 0 else y[::-1])
                x = y
            per_dir.append(outs)
        for fwd, bwd in zip(*per_dir):
            layers.append(np.concatenate([fwd, bwd], axis=-1))
        out = np.stack(layers)
        assert out.dtype == self.dtype, out.dtype  # No silent promotion to float64.
        return out
