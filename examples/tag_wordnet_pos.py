"""Tag tokens with `ElmoTokenClassifier` (keras-hub's idiom: tokens in, `fit`, a label per token out).

The data (tests/data/wordnet_pos, from WordNet 3.0's example sentences) labels
one token in each sentence as a noun or a verb; the word is one that WordNet
lists as both ("a long walk" / "walk the dog"), so its context decides. The
other tokens have no label (-1): the loss and the accuracy count labelled
tokens only. The split is by lemma (no test word is seen in training) and
balanced (majority baseline 50%).

It trains the tagger twice on the same data and prints held-out accuracy:
ELMo (a trained mix of the char-CNN and LSTM layers) and, as the baseline
without context, the char-CNN layer alone (the mix fixed on layer 0). Then it
saves the ELMo tagger as a keras-hub preset, loads it back and predicts with
the loaded tagger.

    python examples/tag_wordnet_pos.py                    # the bundled model
    python examples/tag_wordnet_pos.py --model original   # a released model
"""

import argparse
import json
import tempfile
import time

import numpy as np

# The sibling example reads the data set (run as a script, this folder is on sys.path).
from finetune_classifier import LABELS, load_wordnet_pos
CHAR_CNN_ONLY = [0.0, -30.0, -30.0]  # softmax weights e^-30 on the LSTM layers: layer 0 alone


def tagging_arrays(rows):
    """Tokens (n, longest) padded with "", labels (n, longest): the marked token's label, -1 elsewhere."""
    width = max(len(tokens) for tokens, _, _ in rows)
    tokens = np.full((len(rows), width), "", dtype=object)
    labels = np.full((len(rows), width), -1, dtype="int32")
    for k, (words, index, label) in enumerate(rows):
        tokens[k, : len(words)] = words
        labels[k, index] = label
    return tokens, labels


def marked_accuracy(tagger, tokens, labels, batch_size):
    scores = tagger.predict(tokens, batch_size=batch_size, verbose=0)
    rows, cols = np.nonzero(labels >= 0)
    return float(np.mean(scores[rows, cols].argmax(-1) == labels[rows, cols]))


def train(model, train_data, test_data, epochs, batch_size, seed, **task_kwargs):
    import keras

    from elmo_keras import ElmoTokenClassifier

    keras.utils.set_random_seed(seed)
    tagger = ElmoTokenClassifier.from_preset(model, num_classes=len(LABELS), **task_kwargs)
    start = time.perf_counter()
    tagger.fit(*train_data, epochs=epochs, batch_size=batch_size, verbose=0)
    seconds = time.perf_counter() - start
    return tagger, marked_accuracy(tagger, *test_data, batch_size), seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="a preset: default, a released name or a folder")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train-size", type=int, default=0, help="training rows (0: all 6,610)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    train_data = tagging_arrays(load_wordnet_pos("train", args.train_size or None))
    test_data = tagging_arrays(load_wordnet_pos("test"))
    common = dict(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    tagger, elmo_accuracy, elmo_seconds = train(args.model, train_data, test_data, **common)
    _, baseline_accuracy, baseline_seconds = train(args.model, train_data, test_data, **common,
                                                   scalar_mix_weights=CHAR_CNN_ONLY, trainable_mix=False)

    from elmo_keras import ElmoTokenClassifier

    with tempfile.TemporaryDirectory() as folder:
        tagger.save_to_preset(folder + "/tagger")
        reloaded = ElmoTokenClassifier.from_preset(folder + "/tagger")
        reloaded_accuracy = marked_accuracy(reloaded, *test_data, args.batch_size)
    result = {"model": args.model, "train_rows": len(train_data[0]), "test_rows": len(test_data[0]),
              "epochs": args.epochs, "elmo_accuracy": round(elmo_accuracy, 4),
              "char_cnn_only_accuracy": round(baseline_accuracy, 4), "majority_baseline": 0.5,
              "reloaded_preset_accuracy": round(reloaded_accuracy, 4),
              "train_seconds": [round(elmo_seconds, 1), round(baseline_seconds, 1)]}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
