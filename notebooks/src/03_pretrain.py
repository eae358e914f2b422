# %% [markdown]
# # Pretraining a small biLM
#
# ELMo's vectors come from a bidirectional language model (biLM): a forward LSTM stack predicts each word
# from the words before it, a backward stack from the words after it. `elmo_keras.training` pretrains one
# on your own text with bilm-tf's recipe, in four steps:
#
# 1. `build_vocabulary`: the word vocabulary of the corpus (the softmax predicts these words; the input
#    side reads characters, so any word can be embedded later);
# 2. `train`: `model.fit` on windows of the text, checkpointed in `save_dir` (running it again resumes);
# 3. `perplexity`: held-out perplexity, forward and backward;
# 4. `dump_weights`: the biLM as the original `options.json` + weights `.hdf5`, which `ElmoEmbedder`,
#    `Elmo`, bilm-tf and AllenNLP read.
#
# The same steps exist on the command line: `elmo-keras vocab | train | perplexity | dump-weights`.

# %% setup

# %% [markdown]
# ## A corpus
#
# Real English, small enough for a CPU, and on every machine that runs this notebook: the documentation
# strings of Python's standard library. The notebook reads the library's source files (`ast`, without
# importing them), keeps the sentences of prose paragraphs (no code examples or tables), splits punctuation
# from words with `elmo_keras.preprocessing.tokenize.tokenize_punctuation` (as the bundled model's text
# was split), and removes duplicates. One sentence in 10, chosen by a hash of its text, is held out. A
# corpus is a set of text files (shards), one sentence a line, tokens separated by spaces. (The exact
# sentences depend on the Python version.)

# %%
import ast
import collections
import json
import math
import re
import sysconfig
import tempfile
import zlib

import numpy as np

from elmo_keras.preprocessing.tokenize import tokenize_punctuation
from elmo_keras.training.train import dump_weights, perplexity, train
from elmo_keras.training.vocab import Vocabulary, build_vocabulary


def docstring_sentences(root, skip=("test", "tests", "idlelib", "turtledemo", "lib2to3", "site-packages")):
    """Tokenised prose sentences of the docstrings of the Python files under `root`."""
    for path in sorted(root.rglob("*.py")):
        if set(skip).intersection(path.relative_to(root).parts[:-1]):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for paragraph in (ast.get_docstring(node) or "").split("\n\n"):
                lines = [line.strip() for line in paragraph.splitlines()]
                if any(line.startswith((">>>", "...", "-", "*", ":")) or "  " in line for line in lines):
                    continue  # code, lists, tables
                for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z])", " ".join(lines)):
                    tokens = tokenize_punctuation(sentence)
                    if (sentence[:1].isupper() and 5 <= len(tokens) <= 40
                            and sum(token.isalpha() for token in tokens) >= 0.8 * len(tokens)):
                        yield " ".join(tokens)


WORK = pathlib.Path(tempfile.mkdtemp(prefix="elmo_keras_pretrain_"))
(WORK / "corpus").mkdir()
(WORK / "heldout").mkdir()
splits = collections.defaultdict(list)
for sentence in dict.fromkeys(docstring_sentences(pathlib.Path(sysconfig.get_paths()["stdlib"]))):
    splits["test" if zlib.crc32(sentence.encode("utf-8")) % 10 == 0 else "train"].append(sentence)
(WORK / "corpus" / "shard_0.txt").write_text("\n".join(splits["train"]) + "\n", encoding="utf-8")
(WORK / "heldout" / "heldout.txt").write_text("\n".join(splits["test"]) + "\n", encoding="utf-8")
print(f"Python {sys.version.split()[0]}: {len(splits['train'])} training and {len(splits['test'])} held-out "
      f"sentences, {sum(len(s.split()) for s in splits['train'])} training tokens")

# %% [markdown]
# ## 1. Vocabulary
#
# Words seen at least twice; the others become `<UNK>` as prediction targets. `build_vocabulary` returns
# the number of tokens in the corpus.

# %%
n_train_tokens = build_vocabulary(str(WORK / "corpus" / "*.txt"), str(WORK / "vocab.txt"), min_count=2,
                                  progress=False)
vocab = Vocabulary(str(WORK / "vocab.txt"))
print(f"{n_train_tokens} training tokens, vocabulary of {vocab.size} (with <S>, </S>, <UNK>)")
print("most frequent:", " ".join((WORK / "vocab.txt").read_text(encoding="utf-8").split()[3:20]))

# %% [markdown]
# ## 2. Training
#
# The options are the original `options.json` schema (the architecture) plus bilm-tf's training keys,
# e.g. `batch_size`, `unroll_steps` (tokens per window), `n_negative_samples_batch`; the others keep
# bilm-tf's defaults (Adagrad, learning rate 0.2, dropout 0.1). This model is tiny: the released "small"
# ELMo has LSTMs of 1024 units and 128-value projections, and trained on a billion words.

# %%
STEPS = 200 if SMALL else 1000
options = {
    "lstm": {"dim": 64 if SMALL else 128, "projection_dim": 32 if SMALL else 64, "n_layers": 2},
    "char_cnn": {"embedding": {"dim": 8}, "filters": [[1, 16], [2, 16], [3, 32], [4, 32], [5, 64]],
                 "n_highway": 1},
    "batch_size": 32,
    "unroll_steps": 20,
    # Sampled softmax: each step scores 512 random words instead of the whole vocabulary.
    "n_negative_samples_batch": 512,
}
(WORK / "options.json").write_text(json.dumps(options), encoding="utf-8")
steps_per_epoch = n_train_tokens // (options["batch_size"] * options["unroll_steps"])
EPOCHS = -(-STEPS // steps_per_epoch)  # enough epochs for STEPS steps; training stops at max_steps=STEPS
print(f"{STEPS} steps of {options['batch_size']} x {options['unroll_steps']} tokens "
      f"({STEPS / steps_per_epoch:.1f} passes over the corpus)")

# %%
import time

start = time.perf_counter()
result = train(str(WORK / "options.json"), str(WORK / "vocab.txt"), str(WORK / "corpus" / "*.txt"),
               str(WORK / "run"), epochs=EPOCHS, max_steps=STEPS, log_every=10, progress=False)
print(f"trained in {time.perf_counter() - start:.0f} s:", {k: round(v, 3) for k, v in result.items()})
print("save_dir:", sorted(p.name for p in (WORK / "run").iterdir()))

# %% [markdown]
# `train` writes `options.json` (all training options), `checkpoint.h5` (weights, optimizer, step count,
# data position: calling `train` again with a larger `max_steps` continues from there) and TensorBoard
# logs under `logs/train`, every `log_every` steps: `loss`, `forward_perplexity`, `backward_perplexity`
# and `tokens_per_second`. The values are Keras's running means since the start of the epoch, computed with
# the sampled softmax (lower than true perplexities) and with dropout on. We read the logs back:

# %%
import tensorflow as tf
from tensorflow.core.util import event_pb2

curves = collections.defaultdict(list)
for log_file in sorted((WORK / "run" / "logs" / "train").glob("events.out.tfevents.*")):
    for record in tf.data.TFRecordDataset(str(log_file)):
        event = event_pb2.Event.FromString(record.numpy())
        for value in event.summary.value:
            curves[value.tag].append((event.step, float(tf.make_ndarray(value.tensor))))
print({tag: len(points) for tag, points in curves.items()})

# %%
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
steps, loss = zip(*curves["loss"])
axes[0].plot(steps, loss)
axes[0].set_title("training loss (mean of both directions)")
for tag, label in (("forward_perplexity", "forward"), ("backward_perplexity", "backward")):
    steps, values = zip(*curves[tag])
    axes[1].plot(steps, values, label=label)
axes[1].set_yscale("log")
axes[1].set_title("training perplexity (sampled softmax)")
axes[1].legend()
for ax in axes:
    ax.set_xlabel("step")
    for epoch_end in range(steps_per_epoch, STEPS, steps_per_epoch):
        ax.axvline(epoch_end, color="grey", lw=0.5, ls=":")  # the running means restart here
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Held-out perplexity
#
# `perplexity` reads the held-out text once, in order, with the full softmax over the vocabulary: the
# number to compare between models. For scale: a unigram model (each word's frequency in the training
# text, same vocabulary and `<UNK>`) on the same targets.

# %%
held_out = perplexity(str(WORK / "run"), str(WORK / "vocab.txt"), str(WORK / "heldout" / "*.txt"), batch_size=64)
print(f"biLM: forward {held_out['forward']:.1f}, backward {held_out['backward']:.1f}, "
      f"average {held_out['average']:.1f} over {held_out['tokens']} targets")


def stream_ids(sentences):
    """Token ids of the text as the biLM reads it: <S> words </S>, sentence after sentence."""
    return np.concatenate([vocab.encode(sentence) for sentence in sentences])


counts = np.bincount(stream_ids(splits["train"]), minlength=vocab.size) + 1.0  # add-one: no zero probability
log_p = np.log(counts / counts.sum())
targets = stream_ids(splits["test"])
targets = targets[targets != vocab.bos]  # the targets perplexity counts: each word and </S>
unigram = math.exp(-log_p[targets].mean())
print(f"unigram model: {unigram:.1f}")

# %% [markdown]
# ## 4. The biLM as ELMo files
#
# `dump_weights` writes the trained biLM in the original format. `ElmoEmbedder` (or `Elmo.from_files`,
# or `elmo-keras embed`) uses it like any released model.

# %%
from elmo_keras import ElmoEmbedder

dump_weights(str(WORK / "run"), str(WORK / "elmo_options.json"), str(WORK / "elmo_weights.hdf5"))
embedder = ElmoEmbedder(str(WORK / "elmo_options.json"), str(WORK / "elmo_weights.hdf5"))
print(f"{embedder.num_layers} layers of {embedder.dim} values;",
      f"weights file {(WORK / 'elmo_weights.hdf5').stat().st_size / 1e6:.1f} MB")

noun = "he took a long walk after lunch".split()
verb = "we walk the dog after lunch".split()
a, b = embedder.embed_sentences([noun, verb])
print("embeddings:", a.shape, b.shape)
for layer in range(embedder.num_layers):
    x, y = a[layer, noun.index("walk")], b[layer, verb.index("walk")]
    print(f"layer {layer}: cosine similarity of 'walk' (noun) and 'walk' (verb): "
          f"{x @ y / np.linalg.norm(x) / np.linalg.norm(y):.3f}")
