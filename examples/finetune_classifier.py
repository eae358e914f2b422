"""Fine-tune ELMo with `model.fit` on a real task: is the marked word a noun or a verb?

The task (tests/data/wordnet_pos, from WordNet 3.0's example sentences) marks
one word in each sentence; the word is one that WordNet lists both as a noun
and as a verb ("a long walk" / "walk the dog"), so its use decides the label.
The split is by lemma: no test word is seen in training. Both splits are
balanced, so the majority-class baseline is 50%.

The model: `Elmo` (biLM frozen unless --trainable-bilm, ScalarMix trained),
then the ELMo vector of the marked word (or, with --head bilstm, of a small
BiLSTM over the ELMo vectors), then a softmax. It trains, reports held-out
accuracy against the baseline, saves a `.keras` file, loads it back and
predicts with the loaded model.

    python examples/finetune_classifier.py          # the tiny fixture biLM, < 60 s on a CPU
    python examples/finetune_classifier.py --options-file options.json --weight-file weights.hdf5 \\
        --train-size 0 --epochs 3 --learning-rate 1e-3 --output pos.keras

Reference: Peters et al., 2018, "Deep contextualized word representations".
"""

import argparse
import os
import pathlib
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data" / "wordnet_pos" / "wordnet_pos.tsv"
FIXTURE_OPTIONS = REPO / "tests" / "data" / "bilm-tf" / "options.json"
FIXTURE_WEIGHTS = REPO / "tests" / "data" / "bilm-tf" / "lm_weights.hdf5"
LABELS = ("noun", "verb")
# Batches are padded to a multiple of this many tokens, so a compiled step
# (JAX, jit_compile) sees a handful of shapes, not one per sentence length.
PAD_TO = 8


def load_wordnet_pos(split, limit=None, path=DATA):
    """Rows `(tokens, index, label)` of one split ("train" or "test").

    `limit` keeps the first rows (the file is shuffled, and the first rows of
    each split are close to balanced).
    """
    rows = []
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            row_split, label, index, _, sentence = line.rstrip("\n").split("\t")
            if row_split == split:
                rows.append((sentence.split(" "), int(index), LABELS.index(label)))
    return rows[:limit] if limit else rows


def encode(rows, pad_to=PAD_TO):
    """Model inputs and labels for `rows`.

    Returns `({"char_ids": (n, T + 2, 50) int32, "target_mask": (n, T) bool},
    labels (n,) int32)`, with T the longest sentence rounded up to `pad_to`.
    `target_mask` is True at the marked word, in the positions of the ELMo
    representations (sentence boundaries removed).
    """
    from elmo_keras import batch_to_ids

    length = -(-max(len(tokens) for tokens, _, _ in rows) // pad_to) * pad_to
    char_ids = batch_to_ids([tokens for tokens, _, _ in rows])
    char_ids = np.pad(char_ids, ((0, 0), (0, length + 2 - char_ids.shape[1]), (0, 0)))
    target_mask = np.zeros((len(rows), length), dtype=bool)
    target_mask[np.arange(len(rows)), [index for _, index, _ in rows]] = True
    labels = np.array([label for _, _, label in rows], dtype="int32")
    return {"char_ids": char_ids, "target_mask": target_mask}, labels


def build_classifier(elmo, head="target", hidden=32, num_classes=len(LABELS)):
    """A word classifier over ELMo: the vector of the marked word, then softmax.

    Args:
        elmo: `elmo_keras.Elmo`.
        head: str. "target": the ELMo vector of the marked word, a relu layer
            and the softmax. "bilstm": a BiLSTM (`hidden` units a direction)
            over all ELMo vectors first, so the head reads context too.
        hidden: int. Width of the relu layer or of the BiLSTM.
        num_classes: int.

    The model takes `char_ids` (batch, T + 2, 50) int32 and `target_mask`
    (batch, T) bool, and returns class probabilities in float32 (also under a
    mixed precision policy).
    """
    import keras

    char_ids = keras.Input((None, 50), dtype="int32", name="char_ids")
    target_mask = keras.Input((None,), dtype="bool", name="target_mask")
    out = elmo(char_ids)
    vectors = out["elmo_representations"][0]
    if head == "bilstm":
        vectors = keras.layers.Bidirectional(
            keras.layers.LSTM(hidden, return_sequences=True), name="bilstm")(vectors, mask=out["mask"])
    elif head != "target":
        raise ValueError(f"head must be 'target' or 'bilstm', got {head!r}")
    # Averaging over the one position that the target mask lets through picks
    # the marked word's vector.
    word = keras.layers.GlobalAveragePooling1D(name="marked_word")(vectors, mask=target_mask)
    if head == "target":
        word = keras.layers.Dense(hidden, activation="relu", name="hidden")(word)
    probabilities = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="classes")(word)
    return keras.Model({"char_ids": char_ids, "target_mask": target_mask}, probabilities, name="pos_classifier")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--options-file", default=str(FIXTURE_OPTIONS), help="biLM options.json")
    parser.add_argument("--weight-file", default=str(FIXTURE_WEIGHTS), help="biLM weights .hdf5")
    parser.add_argument("--data", default=str(DATA), help="the wordnet_pos.tsv file")
    parser.add_argument("--train-size", type=int, default=2000, help="training rows (0: all 6610)")
    parser.add_argument("--test-size", type=int, default=0, help="held-out rows (0: all 1458)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    parser.add_argument("--head", choices=("target", "bilstm"), default="target")
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout on the ELMo vectors")
    parser.add_argument("--trainable-bilm", action="store_true", help="fine-tune the biLM too")
    parser.add_argument("--jit-compile", action="store_true")
    parser.add_argument("--mixed-precision", action="store_true", help="mixed_bfloat16 policy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help=".keras file to write (default: a temporary one)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import keras

    from elmo_keras import Elmo

    keras.utils.set_random_seed(args.seed)
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    start = time.perf_counter()
    x_train, y_train = encode(load_wordnet_pos("train", args.train_size, args.data))
    x_test, y_test = encode(load_wordnet_pos("test", args.test_size, args.data))
    elmo = Elmo.from_files(args.options_file, args.weight_file, dropout=args.dropout,
                           trainable_backbone=args.trainable_bilm, name="elmo")
    model = build_classifier(elmo, head=args.head)
    model.compile(keras.optimizers.Adam(args.learning_rate), "sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=args.jit_compile)
    print(f"{len(y_train)} training and {len(y_test)} held-out sentences; "
          f"{sum(int(np.prod(w.shape)) for w in model.trainable_weights)} trainable parameters")
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, verbose=2)
    _, accuracy = model.evaluate(x_test, y_test, batch_size=128, verbose=0)
    baseline = np.bincount(y_test).max() / len(y_test)
    print(f"held-out accuracy {accuracy:.3f} (majority class {baseline:.3f})")

    with tempfile.TemporaryDirectory() as tmp:
        path = args.output or os.path.join(tmp, "pos_classifier.keras")
        model.save(path)
        reloaded = keras.models.load_model(path)
        same = np.array_equal(model.predict(x_test, batch_size=128, verbose=0),
                              reloaded.predict(x_test, batch_size=128, verbose=0))
        print(f"saved {path}; reloaded model predicts the same: {same}")
    sentences = [(["They", "went", "for", "a", "walk"], 4), (["We", "walk", "to", "school"], 1),
                 (["She", "read", "the", "book"], 3), (["Please", "book", "a", "table"], 1)]
    x_demo, _ = encode([(tokens, index, 0) for tokens, index in sentences])
    for (tokens, index), p in zip(sentences, reloaded.predict(x_demo, verbose=0)):
        marked = " ".join(f"[{t}]" if k == index else t for k, t in enumerate(tokens))
        print(f"  {marked:32s} {LABELS[int(np.argmax(p))]} ({p.max():.2f})")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return accuracy, baseline


if __name__ == "__main__":
    main()
