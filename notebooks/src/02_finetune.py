# %% [markdown]
# # Fine-tuning ELMo with `model.fit`
#
# A downstream model uses ELMo through the `elmo_keras.Elmo` layer: the biLM stays frozen, and the layer
# learns a `ScalarMix`, a softmax-weighted sum of the biLM's layers, for the task.
#
# The task: one word of each sentence is marked; is it used as a noun or as a verb here? Every marked word
# can be both ("a long walk" / "we walk to school"), so only the context decides. The notebook makes its
# own data: short sentences from templates, a noun template or a verb template filled with one of 40 such
# words. The held-out sentences use other words and other templates than the training sentences, so a model
# must judge a context it has not seen around a word it has not seen. Both splits are balanced: guessing
# gets 50%. (`examples/finetune_classifier.py` trains the same kind of model on WordNet's own example
# sentences, which the repository keeps with its tests.)

# %% setup

# %%
import logging
import tempfile

import keras
import numpy as np

from elmo_keras import Elmo, batch_to_ids

LABELS = ("noun", "verb")
# Words that are nouns and verbs. The last 10 occur only in held-out sentences.
WORDS = ("walk book fish run play watch cook dream plan paint call visit sleep dance drink swim study work "
         "answer change help jump laugh look move rest ride shop smile talk travel wait wish test race climb "
         "guess hope kiss cry").split()
# {w} is the marked word; the other slots are filled at random. The last 3 of each kind are held out.
NOUN_TEMPLATES = ["the {w} was {adj}", "it was a {adj} {w}", "we talked about the {w} {when}",
                  "her {w} took an hour", "that {w} made them {feel}", "nobody liked the {w}",
                  "after the {w} we went home", "a {w} like that is {adj}", "his last {w} was {adj}",
                  "they remember the {w} {when}"]
VERB_TEMPLATES = ["we {w} {when}", "they often {w} together", "i want to {w} now", "you should {w} more",
                  "let us {w} {when}", "people {w} when they are {feel}", "did you {w} {when} ?",
                  "they will {w} after dinner", "we never {w} alone", "i could {w} all day"]
FILLERS = {"adj": "good long short strange quiet loud great sad".split(),
           "when": ["today", "yesterday", "again", "tonight", "later", "every morning"],
           "feel": "happy tired sad calm angry".split()}
TRAIN_ROWS = 400 if SMALL else 2000
HELD_OUT_ROWS = 300 if SMALL else 1000
EPOCHS = 3 if SMALL else 8
WORK = tempfile.mkdtemp(prefix="elmo_keras_finetune_")
keras.utils.set_random_seed(0)
logging.getLogger("tensorflow").setLevel(logging.ERROR)  # no retracing warnings when shapes change


def make_rows(words, templates_by_label, n, rng):
    """`n` rows (tokens, index of the marked word, label), half of each label."""
    rows = []
    for k in range(n):
        label = k % 2
        template = templates_by_label[label][rng.integers(len(templates_by_label[label]))]
        fill = {slot: values[rng.integers(len(values))] for slot, values in FILLERS.items()}
        tokens = template.format(w="WORD", **fill).split()
        index = tokens.index("WORD")
        tokens[index] = words[rng.integers(len(words))]
        rows.append((tokens, index, label))
    return [rows[k] for k in rng.permutation(n)]


rng = np.random.default_rng(0)
train_rows = make_rows(WORDS[:30], (NOUN_TEMPLATES[:7], VERB_TEMPLATES[:7]), TRAIN_ROWS, rng)
held_out_rows = make_rows(WORDS[30:], (NOUN_TEMPLATES[7:], VERB_TEMPLATES[7:]), HELD_OUT_ROWS, rng)
for tokens, index, label in train_rows[:4] + held_out_rows[:2]:
    print(f"{LABELS[label]:5s}", " ".join(f"[{t}]" if k == index else t for k, t in enumerate(tokens)))
print(f"{len(train_rows)} training sentences, {len(held_out_rows)} held-out sentences; "
      f"verbs: {np.mean([r[2] for r in train_rows]):.0%} and {np.mean([r[2] for r in held_out_rows]):.0%}")

# %% [markdown]
# `encode` turns the rows into the model inputs: `char_ids` (sentences, tokens + 2, 50), the character ids
# of every token with the sentence boundaries `<S>` and `</S>` (`elmo_keras.batch_to_ids`), and
# `target_mask` (sentences, tokens), True at the marked word. Sentences are padded to a multiple of 8
# tokens, so that the compiled training step sees few shapes.

# %%
def encode(rows, pad_to=8):
    length = -(-max(len(tokens) for tokens, _, _ in rows) // pad_to) * pad_to
    char_ids = batch_to_ids([tokens for tokens, _, _ in rows])
    char_ids = np.pad(char_ids, ((0, 0), (0, length + 2 - char_ids.shape[1]), (0, 0)))
    target_mask = np.zeros((len(rows), length), dtype=bool)
    target_mask[np.arange(len(rows)), [index for _, index, _ in rows]] = True
    labels = np.array([label for _, _, label in rows], dtype="int32")
    return {"char_ids": char_ids, "target_mask": target_mask}, labels


x_train, y_train = encode(train_rows)
x_held_out, y_held_out = encode(held_out_rows)
print({name: value.shape for name, value in x_train.items()}, y_train.shape)

# %% [markdown]
# ## The model
#
# `Elmo.from_files` builds the layer from the biLM's `options.json` and weights `.hdf5`. We use the
# package's bundled model (`MODEL_OPTIONS`, `MODEL_WEIGHTS` from the set-up cell), small enough to train on
# a CPU in minutes; with a released model (`elmo_keras.pretrained.fetch_pretrained("small")` returns its two
# files) every step is slower. The layer returns the mixed representations, without the sentence
# boundaries, and their mask. The classifier takes the vector of the marked word (the average over the one position that
# `target_mask` lets through), a small relu layer and a softmax.

# %%
def build_classifier(elmo, hidden=32):
    char_ids = keras.Input((None, 50), dtype="int32", name="char_ids")
    target_mask = keras.Input((None,), dtype="bool", name="target_mask")
    out = elmo(char_ids)
    word = keras.layers.GlobalAveragePooling1D(name="marked_word")(out["elmo_representations"][0],
                                                                   mask=target_mask)
    word = keras.layers.Dense(hidden, activation="relu", name="hidden")(word)
    probabilities = keras.layers.Dense(len(LABELS), activation="softmax", name="classes")(word)
    model = keras.Model({"char_ids": char_ids, "target_mask": target_mask}, probabilities, name="pos_classifier")
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


elmo = Elmo.from_files(MODEL_OPTIONS, MODEL_WEIGHTS, dropout=0.0, name="elmo")
model = build_classifier(elmo)
model.summary()

# %% [markdown]
# ## Training, with the held-out sentences as validation data
#
# Nothing is tuned on the held-out split; it only shows how well the model does on words and contexts it
# has not seen.

# %%
history = model.fit(x_train, y_train, validation_data=(x_held_out, y_held_out), epochs=EPOCHS, batch_size=32,
                    verbose=2)

# %%
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
epochs = np.arange(1, EPOCHS + 1)
for ax, metric in zip(axes, ("loss", "accuracy")):
    ax.plot(epochs, history.history[metric], "o-", label="training")
    ax.plot(epochs, history.history[f"val_{metric}"], "o-", label="held-out")
    ax.set_xlabel("epoch")
    ax.set_title(metric)
    ax.legend()
axes[1].axhline(0.5, color="grey", ls=":", label="guessing")
axes[1].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# Which layers did the task use? The `ScalarMix` weights (after the softmax) and its scale:

# %%
mix = elmo.scalar_mixes[0]
weights = keras.ops.convert_to_numpy(keras.ops.softmax(mix.layer_weights))
print("mix weights:", ", ".join(f"layer {k} {w:.2f}" for k, w in enumerate(weights)),
      f"; scale {float(keras.ops.convert_to_numpy(mix.scale)):.2f}")

# %% [markdown]
# ## Does the context help?
#
# The same classifier, but with the mix fixed on layer 0, the char-CNN vector of the word alone: it sees
# the spelling of the word, not its sentence.

# %%
keras.utils.set_random_seed(0)
char_cnn_only = Elmo.from_files(MODEL_OPTIONS, MODEL_WEIGHTS, dropout=0.0, name="elmo",
                                scalar_mix_parameters=[20.0, -20.0, -20.0])
baseline = build_classifier(char_cnn_only)
baseline.fit(x_train, y_train, epochs=EPOCHS, batch_size=32, verbose=0)
accuracy = model.evaluate(x_held_out, y_held_out, batch_size=128, verbose=0)[1]
accuracy_layer0 = baseline.evaluate(x_held_out, y_held_out, batch_size=128, verbose=0)[1]
print(f"held-out accuracy: all layers {accuracy:.3f}, char-CNN layer only {accuracy_layer0:.3f}, guessing 0.500")

# %% [markdown]
# ## Save, reload, predict
#
# The `.keras` file holds the whole model, the biLM weights included; loading it needs `elmo_keras`
# imported (the layers are registered as serializable) but not the original files.

# %%
path = f"{WORK}/pos_classifier.keras"
model.save(path)
reloaded = keras.models.load_model(path)
before = model.predict(x_held_out, batch_size=128, verbose=0)
after = reloaded.predict(x_held_out, batch_size=128, verbose=0)
print(f"saved and reloaded pos_classifier.keras; same predictions: {np.array_equal(before, after)}")
assert np.array_equal(before, after)

# %% [markdown]
# Sentences of our own, not made from the templates, through the reloaded model:

# %%
examples = [("They went for a walk", 4), ("We walk to school", 1), ("She read the book", 3),
            ("Please book a table", 1), ("The fish swam away", 1), ("They fish in the lake", 1)]
x_demo, _ = encode([(sentence.split(), index, 0) for sentence, index in examples])
for (sentence, index), p in zip(examples, reloaded.predict(x_demo, verbose=0)):
    marked = " ".join(f"[{t}]" if k == index else t for k, t in enumerate(sentence.split()))
    print(f"{marked:28s} {LABELS[int(np.argmax(p))]} ({p.max():.2f})")
