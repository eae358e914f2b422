# %% [markdown]
# # ELMo in Keras: quickstart
#
# ELMo ([Peters et al., 2018](https://arxiv.org/abs/1802.05365)) gives every word a vector that depends on
# its sentence. A character CNN turns the word's bytes into a context-free vector (layer 0); a forward and a
# backward LSTM stack read the sentence and add one contextual vector per layer (layers 1, 2, ...).
#
# This notebook embeds sentences with `elmo_keras.ElmoEmbedder` and looks at one ambiguous word, *bank*:
# its layer-0 vector is the same in every sentence, its LSTM vectors are not.

# %% setup

# %% [markdown]
# ## An embedder
#
# `ElmoEmbedder()` with no arguments loads the small English model that the package ships
# (`elmo_keras.pretrained.default_model_files()` gives its `options.json` and `weights.hdf5`; its
# `MODEL_CARD.md` lies next to them): trained by the project on WordNet's definitions and examples, 2 LSTM
# layers of 256 cells with 128-value projections. For the models AllenNLP released, use
# `ElmoEmbedder.from_pretrained("small")` (or `"medium"`, `"original"`): the files are downloaded once and
# cached.

# %%
import json

import numpy as np

from elmo_keras import ElmoEmbedder

embedder = ElmoEmbedder()  # the bundled model; the same as ElmoEmbedder(MODEL_OPTIONS, MODEL_WEIGHTS)
MODEL = "bundled default model"
print(f"{MODEL}: {embedder.num_layers} layers of {embedder.dim} values")

# %% [markdown]
# `embed_sentence` takes one tokenised sentence and returns an array (layers, tokens, dim): layer 0 is the
# char-CNN vector (the same vector twice, for the forward and backward halves), then one array per LSTM
# layer, forward and backward outputs side by side. `embed_sentences` embeds many, batching sentences of
# similar length together, and yields the results in input order.

# %%
vectors = embedder.embed_sentence(["The", "bank", "raised", "rates", "."])
print("one sentence:", vectors.shape)
sentences = [["First", "sentence", "."], ["Another", "one", ",", "a", "bit", "longer", "."]]
for sentence, v in zip(sentences, embedder.embed_sentences(sentences)):
    print(f"{' '.join(sentence)!r}: {v.shape}")

# %% [markdown]
# ## One word, two senses
#
# Five sentences use *bank* as a financial institution, five as the side of a river. We take the vector of
# *bank* in each sentence, on each layer, and compare them with cosine similarity.

# %%
FINANCIAL = [
    "I deposited the cheque at the bank before noon .",
    "The bank raised its interest rates again .",
    "She asked the bank for a loan to buy a house .",
    "He works as a teller at the bank downtown .",
    "The central bank cut rates to support the economy .",
]
RIVER = [
    "We had a picnic on the bank of the river .",
    "The boat drifted towards the muddy bank .",
    "Fishermen lined the river bank at dawn .",
    "The flood washed away part of the bank and the trees on it .",
    "Reeds grow thickly along the bank of the stream .",
]
tokenised = [s.split() for s in FINANCIAL + RIVER]
# (layers, sentences, dim): the vector of "bank" in each sentence.
bank = np.stack([v[:, s.index("bank")] for s, v in zip(tokenised, embedder.embed_sentences(tokenised))], axis=1)
unit = bank / np.linalg.norm(bank, axis=-1, keepdims=True)
similarity = unit @ unit.transpose(0, 2, 1)  # (layers, 10, 10)
print("vectors of 'bank':", bank.shape)

# %%
n = len(FINANCIAL)
pairs = np.triu_indices(n, k=1)
summary = {}
for layer, s in enumerate(similarity):
    within = np.concatenate([s[:n, :n][pairs], s[n:, n:][pairs]])
    summary[layer] = {"within": float(within.mean()), "across": float(s[:n, n:].mean())}
    name = "char-CNN" if layer == 0 else "LSTM"
    print(f"layer {layer} ({name}): same sense {summary[layer]['within']:.4f}, "
          f"other sense {summary[layer]['across']:.4f}")

# %% [markdown]
# Layer 0 sees only the characters of *bank*, so all ten vectors are identical (similarity 1). The LSTM
# layers have read the sentence, so the vectors differ, and two uses of the same sense are more alike than
# uses of different senses.

# %%
import matplotlib.pyplot as plt

labels = [f"money {k + 1}" for k in range(n)] + [f"river {k + 1}" for k in range(n)]
fig, axes = plt.subplots(1, len(similarity), figsize=(5 * len(similarity), 4.4))
for layer, (ax, s) in enumerate(zip(axes, similarity)):
    low = min(float(s.min()), 0.999)  # layer 0 is all ones: give its colour scale some range
    image = ax.imshow(s, vmin=low, vmax=1.0, cmap="viridis")
    ax.set_title("layer 0 (char-CNN)" if layer == 0 else f"layer {layer} (LSTM)")
    ax.set_xticks(range(2 * n), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(2 * n), labels, fontsize=8)
    ax.axhline(n - 0.5, color="white", lw=1)
    ax.axvline(n - 0.5, color="white", lw=1)
    fig.colorbar(image, ax=ax, fraction=0.046)
fig.suptitle(f"Cosine similarity of the vectors of 'bank' ({MODEL})")
fig.tight_layout()
plt.show()

# %%
layers = list(summary)
width = 0.38
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.bar(np.arange(len(layers)) - width / 2, [summary[k]["within"] for k in layers], width, label="same sense")
ax.bar(np.arange(len(layers)) + width / 2, [summary[k]["across"] for k in layers], width, label="other sense")
ax.set_xticks(range(len(layers)), ["0: char-CNN"] + [f"{k}: LSTM" for k in layers[1:]])
lowest = min(min(v.values()) for v in summary.values())
ax.set_ylim(lowest - 0.25 * (1 - lowest) - 1e-3, 1 + 0.05 * (1 - lowest) + 1e-4)
ax.set_ylabel("mean cosine similarity")
ax.set_title("'bank': same sense vs other sense, per layer")
ax.legend(loc="lower left")
fig.tight_layout()
plt.show()

# %% [markdown]
# The numbers of the plots, as JSON (the notebook test reads this line):

# %%
assert np.allclose(similarity[0], 1.0, atol=1e-5), "layer 0 must not depend on the context"
BANK_SIMILARITY = {"model": MODEL, "layers": {str(k): {key: round(v, 6) for key, v in values.items()}
                                              for k, values in summary.items()}}
print(json.dumps(BANK_SIMILARITY))
