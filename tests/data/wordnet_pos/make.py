"""Regenerate `wordnet_pos.tsv`: is the marked word a noun or a verb here?

Source: the example sentences in the glosses of WordNet 3.0 (Debian package
`wordnet-base`, files in /usr/share/wordnet). For every noun or verb synset
with a one-word lemma that WordNet lists both as a noun and as a verb
("walk", "book", "rust"), each example sentence that contains that lemma
(or one of its inflections) gives a row: the sentence, the position of the
word, and the synset's part of speech as the label. So the word alone does
not decide the label; its use in the sentence does.

The split is by lemma (a hash of it), so no test lemma is seen in training;
each split is then balanced by dropping verb rows at random (fixed seed), so
the majority-class baseline is 50%.

    apt-get install wordnet-base
    python tests/data/wordnet_pos/make.py            # rewrites wordnet_pos.tsv

The output is the same on every run.
"""

import argparse
import collections
import hashlib
import pathlib
import random
import re

HERE = pathlib.Path(__file__).parent
TOKEN = re.compile(r"[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*|[^\sA-Za-z0-9]")
TEST_FRACTION = 0.2
SEED = 0


def read_index(wordnet_dir, pos):
    """One-word, lower-case lemmas of the `index.{pos}` file."""
    lemmas = set()
    for line in open(wordnet_dir / f"index.{pos}", encoding="utf-8"):
        if not line.startswith("  "):
            lemma = line.split(" ", 1)[0]
            if re.fullmatch("[a-z]+", lemma):
                lemmas.add(lemma)
    return lemmas


def read_exceptions(wordnet_dir, pos):
    """lemma -> irregular inflected forms, from `{pos}.exc` ("ran run")."""
    forms = collections.defaultdict(set)
    for line in open(wordnet_dir / f"{pos}.exc", encoding="utf-8"):
        inflected, *bases = line.split()
        for base in bases:
            forms[base].add(inflected)
    return forms


def inflections(lemma, pos, exceptions):
    """The lemma and the regular (and listed irregular) forms of it."""
    forms = {lemma, lemma + "s", lemma + "es"} | exceptions.get(lemma, set())
    if lemma.endswith("y"):
        forms.add(lemma[:-1] + "ies")
    if pos == "verb":
        forms |= {lemma + "d", lemma + "ed", lemma + "ing", lemma + lemma[-1] + "ed", lemma + lemma[-1] + "ing"}
        if lemma.endswith("e"):
            forms.add(lemma[:-1] + "ing")
        if lemma.endswith("y"):
            forms.add(lemma[:-1] + "ied")
    return forms


def example_rows(wordnet_dir, pos, ambiguous):
    """(label, index, lemma, tokens) for each example that uses a synset lemma."""
    exceptions = read_exceptions(wordnet_dir, pos)
    for line in open(wordnet_dir / f"data.{pos}", encoding="utf-8"):
        if line.startswith("  ") or " | " not in line:
            continue
        head, gloss = line.split(" | ", 1)
        fields = head.split()
        n_words = int(fields[3], 16)
        lemmas = [fields[4 + 2 * k].lower() for k in range(n_words)]
        lemmas = [lemma for lemma in lemmas if lemma in ambiguous]
        for example in re.findall(r'"([^"]+)"', gloss):
            tokens = TOKEN.findall(example)
            lowered = [t.lower() for t in tokens]
            for lemma in lemmas:
                forms = inflections(lemma, pos, exceptions)
                index = next((i for i, t in enumerate(lowered) if t in forms), None)
                if index is not None:
                    yield pos, index, lemma, tokens
                    break


def split_of(lemma):
    digest = hashlib.md5(lemma.encode("utf-8")).digest()
    return "test" if digest[0] < 256 * TEST_FRACTION else "train"


def make_rows(wordnet_dir):
    ambiguous = read_index(wordnet_dir, "noun") & read_index(wordnet_dir, "verb")
    seen, by_split = set(), collections.defaultdict(lambda: collections.defaultdict(list))
    for pos in ("noun", "verb"):
        for label, index, lemma, tokens in example_rows(wordnet_dir, pos, ambiguous):
            sentence = " ".join(tokens)
            if sentence in seen:
                continue
            seen.add(sentence)
            by_split[split_of(lemma)][label].append((index, lemma, sentence))
    rng = random.Random(SEED)
    rows = []
    for split in ("train", "test"):
        size = min(len(v) for v in by_split[split].values())
        split_rows = [(split, label, *row) for label in ("noun", "verb")
                      for row in rng.sample(by_split[split][label], size)]
        rng.shuffle(split_rows)
        rows.extend(split_rows)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wordnet-dir", default="/usr/share/wordnet")
    parser.add_argument("--output", default=str(HERE / "wordnet_pos.tsv"))
    args = parser.parse_args()
    rows = make_rows(pathlib.Path(args.wordnet_dir))
    with open(args.output, "w", encoding="utf-8", newline="\n") as f:
        f.write("split\tlabel\tindex\tlemma\tsentence\n")
        for row in rows:
            f.write("\t".join(map(str, row)) + "\n")
    counts = collections.Counter((r[0], r[1]) for r in rows)
    print(f"wrote {len(rows)} rows to {args.output}: {dict(sorted(counts.items()))}")


if __name__ == "__main__":
    main()
