"""Build the training text of the bundled default model from WordNet 3.0.

Source: Debian's `wordnet-base` package (`/usr/share/wordnet/data.*`),
WordNet 3.0, Copyright 2006 by Princeton University, under the WordNet 3.0
licence (permissive; see LICENSE.wordnet beside this file). Every synset's
gloss gives its definition and its quoted example sentences; each becomes one
sentence, tokenised by splitting punctuation from words. One sentence in 50
(chosen by a hash of its text) is held out.

    python savedmodels/default/make_corpus.py /usr/share/wordnet OUT_DIR
    # -> OUT_DIR/train/shard_00.txt ... and OUT_DIR/heldout/heldout.txt
"""

import hashlib
import os
import re
import sys

from elmo_keras.preprocessing.tokenize import tokenize_punctuation

PARTS = ("noun", "verb", "adj", "adv")
N_SHARDS = 8


def gloss_sentences(data_file):
    """Yield the definitions and example sentences of a WordNet data file."""
    with open(data_file, encoding="utf-8") as f:
        for line in f:
            if line.startswith("  ") or " | " not in line:  # the licence header
                continue
            gloss = line.split(" | ", 1)[1].strip()
            for piece in gloss.split(";"):
                piece = piece.strip().strip('"').strip()
                if len(piece.split()) >= 3:
                    yield piece


def is_heldout(sentence):
    return int(hashlib.sha1(sentence.encode("utf-8")).hexdigest(), 16) % 50 == 0


def main(wordnet_dir, out_dir):
    seen, train, heldout = set(), [], []
    for part in PARTS:
        for sentence in gloss_sentences(os.path.join(wordnet_dir, f"data.{part}")):
            tokens = " ".join(tokenize_punctuation(re.sub(r"\s+", " ", sentence)))
            if tokens in seen:
                continue
            seen.add(tokens)
            (heldout if is_heldout(tokens) else train).append(tokens)
    os.makedirs(os.path.join(out_dir, "train"), exist_ok=True)
    os.makedirs(os.path.join(out_dir, "heldout"), exist_ok=True)
    for k in range(N_SHARDS):
        with open(os.path.join(out_dir, "train", f"shard_{k:02d}.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(train[k::N_SHARDS]) + "\n")
    with open(os.path.join(out_dir, "heldout", "heldout.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(heldout) + "\n")
    n_train = sum(len(s.split()) for s in train)
    n_heldout = sum(len(s.split()) for s in heldout)
    print(f"{len(train)} training sentences ({n_train} tokens), {len(heldout)} held out ({n_heldout} tokens)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
