"""An independent float64 numpy biLM, written from docs/elmo-format.md.

Slow and plain on purpose: one sentence, one direction, one step at a time.
Tests compare the Keras layers against it on configurations that the bilm-tf
fixture does not cover (skip connections, tanh, active clipping, 3 layers).
"""

import h5py
import numpy as np


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class ReferenceBiLM:
    def __init__(self, options, weight_file):
        self.options = options
        with h5py.File(weight_file, "r") as f:
            self.w = {}
            f.visititems(lambda name, obj: self.w.__setitem__(name, np.asarray(obj, np.float64))
                         if isinstance(obj, h5py.Dataset) else None)
        self.state = {}

    def char_cnn(self, ids):
        """ids: (n_tokens, 50) shifted ids -> (n_tokens, P)."""
        cnn = self.options["char_cnn"]
        table = np.concatenate([np.zeros((1, self.w["char_embed"].shape[1])), self.w["char_embed"]])
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
        h, c = self.state.get((d, layer, row), (np.zeros(wp.shape[1]), np.zeros(units)))
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
        return np.stack(layers)
