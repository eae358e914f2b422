"""Build the training text of the bundled default model, in one command.

Sources (both installable from Debian; each keeps its licence beside this file):

- WordNet 3.0 (`apt-get install wordnet-base`, `/usr/share/wordnet/data.*`),
  Copyright 2006 by Princeton University, WordNet 3.0 licence (LICENSE.wordnet).
  Every synset's gloss gives its definition and its quoted example sentences;
  each becomes one sentence.
- The Python 3.11 documentation (`apt-get install python3.11-doc`,
  `/usr/share/doc/python3.11/html`), Copyright Python Software Foundation,
  PSF License Agreement (LICENSE.python). The prose paragraphs (`<p>`) of every
  page except the indexes and the changelog, split into sentences; code blocks
  are not read.

Every sentence is tokenised by splitting punctuation from words
(`elmo_keras.preprocessing.split.tokenize_punctuation`), duplicates are removed,
and one sentence in 50 (chosen by a hash of its text) is held out, per source:

    python savedmodels/default/make_corpus.py OUT_DIR
    # -> OUT_DIR/train/shard_00.txt ..., OUT_DIR/heldout/heldout.txt (WordNet),
    #    OUT_DIR/heldout_python/heldout.txt (Python docs)

``--wordnet DIR`` and ``--python-docs DIR`` name other install locations;
``--python-docs ''`` builds the WordNet-only corpus of the first bundled model.
The output folder must not exist (or pass ``--overwrite``).

Example (a WordNet file of two synsets):

>>> import os, tempfile
>>> d = tempfile.mkdtemp()
>>> with open(os.path.join(d, "data.noun"), "w") as f:
...     _ = f.write("  1 header\\n00001 03 n 01 bank 0 000 | sloping land beside water; "
...                 '"they pulled the canoe up on the bank"\\n')
>>> list(wordnet_sentences(d))
['sloping land beside water', 'they pulled the canoe up on the bank']
"""

import argparse
import hashlib
import html.parser
import os
import re
import shutil
import sys

PARTS = ("noun", "verb", "adj", "adv")
N_SHARDS = 8
HELD_OUT_ONE_IN = 50
# Pages whose paragraphs are lists, not prose.
SKIPPED_PAGES = ("genindex", "py-modindex", "search.html", "whatsnew/changelog.html",
                 "_sources", "_static", "_images", "_downloads")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])")
MIN_TOKENS, MAX_TOKENS = 3, 80


def wordnet_sentences(wordnet_dir):
    """Yield the definitions and example sentences of WordNet's data files."""
    for part in PARTS:
        path = os.path.join(wordnet_dir, f"data.{part}")
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("  ") or " | " not in line:  # the licence header
                    continue
                gloss = line.split(" | ", 1)[1].strip()
                for piece in gloss.split(";"):
                    piece = piece.strip().strip('"').strip()
                    if len(piece.split()) >= MIN_TOKENS:
                        yield piece


class _Paragraphs(html.parser.HTMLParser):
    """Collects the text of every <p> element that is not inside <pre>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.paragraphs, self._depth, self._pre, self._parts = [], 0, 0, []

    def handle_starttag(self, tag, attrs):
        if tag == "pre":
            self._pre += 1
        elif tag == "p":
            self._depth += 1
            self._parts = []

    def handle_endtag(self, tag):
        if tag == "pre":
            self._pre = max(0, self._pre - 1)
        elif tag == "p" and self._depth:
            self._depth -= 1
            self.paragraphs.append("".join(self._parts))

    def handle_data(self, data):
        if self._depth and not self._pre:
            self._parts.append(data)


def python_doc_sentences(html_dir):
    """Yield the prose sentences of the Python documentation's HTML pages."""
    pages = []
    for root, dirs, files in os.walk(html_dir):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, html_dir).replace(os.sep, "/")
            if name.endswith(".html") and not any(rel.startswith(s) for s in SKIPPED_PAGES):
                pages.append(path)
    for path in pages:
        parser = _Paragraphs()
        with open(path, encoding="utf-8", errors="replace") as f:
            parser.feed(f.read())
        for paragraph in parser.paragraphs:
            paragraph = re.sub(r"\s+", " ", paragraph.replace("\u00b6", "")).strip()
            for sentence in SENTENCE_END.split(paragraph):
                if MIN_TOKENS <= len(sentence.split()) <= MAX_TOKENS:
                    yield sentence


def is_heldout(sentence):
    return int(hashlib.sha1(sentence.encode("utf-8")).hexdigest(), 16) % HELD_OUT_ONE_IN == 0


def _write_lines(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def build(out_dir, wordnet_dir="/usr/share/wordnet",
          python_docs_dir="/usr/share/doc/python3.11/html"):
    """Write the corpus to out_dir; return {source: (train_sents, train_tokens, heldout_sents, heldout_tokens)}."""
    from elmo_keras.preprocessing.split import tokenize_punctuation

    sources = [("wordnet", "heldout", wordnet_sentences(wordnet_dir))]
    if python_docs_dir:
        sources.append(("python-docs", "heldout_python", python_doc_sentences(python_docs_dir)))
    seen, train, counts = set(), [], {}
    os.makedirs(os.path.join(out_dir, "train"))
    for name, heldout_dir, sentences in sources:
        heldout, n_train, n_train_tokens = [], 0, 0
        for sentence in sentences:
            tokens = " ".join(tokenize_punctuation(re.sub(r"\s+", " ", sentence)))
            if tokens in seen:
                continue
            seen.add(tokens)
            if is_heldout(tokens):
                heldout.append(tokens)
            else:
                train.append(tokens)
                n_train += 1
                n_train_tokens += len(tokens.split())
        if not n_train:
            raise SystemExit(f"make_corpus.py: no {name} text found (is its package installed?)")
        os.makedirs(os.path.join(out_dir, heldout_dir))
        _write_lines(os.path.join(out_dir, heldout_dir, "heldout.txt"), heldout)
        counts[name] = (n_train, n_train_tokens, len(heldout), sum(len(s.split()) for s in heldout))
    for k in range(N_SHARDS):
        _write_lines(os.path.join(out_dir, "train", f"shard_{k:02d}.txt"), train[k::N_SHARDS])
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--wordnet", default="/usr/share/wordnet")
    parser.add_argument("--python-docs", default="/usr/share/doc/python3.11/html")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    if os.path.exists(args.out_dir):
        if not args.overwrite:
            parser.error(f"{args.out_dir} exists; pass --overwrite to rebuild it")
        shutil.rmtree(args.out_dir)
    tmp = args.out_dir.rstrip("/") + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    counts = build(tmp, args.wordnet, args.python_docs)
    os.replace(tmp, args.out_dir)
    for name, (s, t, hs, ht) in counts.items():
        print(f"{name}: {s} training sentences ({t} tokens), {hs} held out ({ht} tokens)")


if __name__ == "__main__":
    main(sys.argv[1:])
