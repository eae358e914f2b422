"""Add-one unigram perplexity on held-out text: the scale for a biLM's held-out perplexity.

Counts the training shards' words (words outside the vocabulary as `<UNK>`, one
`</S>` per sentence), smooths by one over the vocabulary, and scores bilm-tf's
targets of the held-out sentences: every word (or `<UNK>`) and `</S>`, the same
targets `elmo-keras perplexity` scores.

    python benchmarks/unigram_perplexity.py vocab.txt 'corpus/train/*.txt' 'corpus/heldout/*.txt'

Example:

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> for name, text in [("v", "<S>\\n</S>\\n<UNK>\\na\\n"), ("t", "a a b\\n"), ("h", "a\\n")]:
...     _ = open(os.path.join(d, name), "w").write(text)
>>> r = unigram_perplexity(os.path.join(d, "v"), os.path.join(d, "t"), os.path.join(d, "h"))
>>> r["targets"], round(r["unigram_perplexity"], 3)   # p(a) = 3/8, p(</S>) = 2/8
(2, 3.266)
"""

import collections
import glob
import json
import math
import sys


def _sentences(pattern):
    for path in sorted(glob.glob(pattern)):
        with open(path, encoding="utf-8") as f:
            for line in f:
                words = line.split()
                if words:
                    yield words


def unigram_perplexity(vocab_file, train_pattern, heldout_pattern):
    """{"unigram_perplexity": float, "targets": int} of the held-out sentences."""
    with open(vocab_file, encoding="utf-8") as f:
        vocab = [line.split()[0] for line in f if line.strip()]
    known = set(vocab)
    counts = collections.Counter()
    for words in _sentences(train_pattern):
        counts.update(w if w in known else "<UNK>" for w in words)
        counts["</S>"] += 1
    total = sum(counts.values()) + len(vocab)
    nll, n = 0.0, 0
    for words in _sentences(heldout_pattern):
        for w in words + ["</S>"]:
            nll -= math.log((counts[w if w in known else "<UNK>"] + 1) / total)
            n += 1
    return {"unigram_perplexity": math.exp(nll / n), "targets": n}


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__.split("\n\n")[2])
    print(json.dumps(unigram_perplexity(*sys.argv[1:])))
