"""Word-sense probe: how well does each layer's vector of a word tell its WordNet senses apart?

    python benchmarks/probe_word_sense.py
    python benchmarks/probe_word_sense.py --json                      # machine-readable
    python benchmarks/probe_word_sense.py --model-dir DIR             # DIR/options.json, DIR/weights.hdf5
    python benchmarks/probe_word_sense.py --options-file O --weight-file W

A 1-nearest-neighbour probe, per layer, on the example sentences of WordNet
3.0 (Debian's `wordnet-base`, `/usr/share/wordnet`; `--wordnet DIR` for
another copy). It shows how much the contextual layers (the LSTMs) add over
the context-free char-CNN layer (layer 0), which gives a word form the same
vector in every sentence.

Items. The data files (`data.noun`, `data.verb`, `data.adj`, `data.adv`;
format: `man 5 wndb`) are read directly. A sense is a (synset, lemma) pair;
lemmas are single words (no `_`, no punctuation such as `-`), compared in
lower case, per part of speech; adjective markers such as `(p)` are dropped.
An example sentence of a synset is a `;`-separated piece of its gloss that
holds a double quote, with the quotes stripped: exactly the sentence that
`savedmodels/default/make_corpus.py` puts in the bundled model's training
text. It is tokenised as that corpus is (`tokenize_punctuation`), and the
target is the first token whose lower case is the lemma or an inflection of
it: WordNet's exception lists (`*.exc`) plus morphy-style suffix rules
(`SUFFIX_RULES`); an example without one is skipped. A sense is kept if at
least two of its examples hold its lemma; a lemma is kept if at least two of
its senses are (same part of speech).

Score. Each kept example is a query; its nearest other example of the same
lemma and part of speech, by cosine similarity of the target token's vectors
at one layer, predicts its sense (leave one out). Equally near neighbours
(cosine within `TIE_TOLERANCE`) share the credit: the query scores the
fraction of them that have its sense, the expected accuracy of breaking the
tie at random. This matters for layer 0, where every example that uses the
same word form ties. Accuracy is the mean over all queries. The majority
baseline predicts the sense most frequent among the lemma's other examples
(ties: the lowest synset offset); leaving the query out makes it weak on
evenly split lemmas, as it is meant to be for a probe that may not look at
the query's own label. "random neighbour" is chance: a neighbour drawn at
random (what layer 0 scores where all examples share one word form).
"layers 1-n mean" is the average of the LSTM layers' vectors. The "±" is
the standard error of the mean over queries, as if they were independent
(they are not quite: indicative only).

Held out. The bundled model was trained on WordNet's glosses, so most
queries' sentences were in its training text, minus one sentence in 50 held
out by `make_corpus.is_heldout`. The "held-out queries" column scores only
the queries whose sentence is held out (their neighbours may be any example);
for another model it is just a random 1-in-50 subset.

Layer 0 is ELMo's token layer (the char-CNN vector, repeated for both
directions); layers 1..n are the LSTM layers, forward and backward
concatenated, as `ElmoEmbedder` returns them. Each distinct sentence is
embedded once, in batches.
"""

import argparse
import collections
import json
import os
import re
import shlex
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import common  # noqa: E402

MAKE_CORPUS = common.MAKE_CORPUS
DEFAULT_WORDNET = "/usr/share/wordnet"
PARTS = (("n", "noun"), ("v", "verb"), ("a", "adj"), ("r", "adv"))
MIN_EXAMPLES_PER_SENSE = 2
MIN_SENSES_PER_LEMMA = 2
TIE_TOLERANCE = 1e-6
# Morphy's detachment rules, (suffix, replacement): a token ending in the
# suffix may be an inflection of its stem + replacement.
SUFFIX_RULES = {
    "n": (("s", ""), ("es", ""), ("ies", "y"), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"),
          ("shes", "sh"), ("men", "man")),
    "v": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")),
    "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "r": (),
}
ADJECTIVE_MARKER = re.compile(r"\((?:a|p|ip)\)$")

Item = collections.namedtuple("Item", "pos lemma offset sentence tokens target heldout")
Item.__doc__ = """One example of one sense: `tokens[target]` is the lemma (or an inflection) in `sentence`.

`offset` is the synset offset (int), which names the sense within (pos, lemma);
`heldout` whether the sentence was held out of the bundled model's training text."""


# ---------------------------------------------------------------- WordNet

def tokenize(sentence):
    """Tokens of a sentence as the bundled model's corpus has them (`make_corpus.build`)."""
    from elmo_keras.preprocessing.split import tokenize_punctuation

    return tokenize_punctuation(re.sub(r"\s+", " ", sentence))


def parse_data_line(line):
    """`(offset, ss_type, words, gloss)` of one `data.*` line, or None for the licence header.

    >>> parse_data_line('00002 03 n 02 Bank 0 river_bank 1 000 | sloping land; "on the bank"  ')
    (2, 'n', ['Bank', 'river_bank'], 'sloping land; "on the bank"')
    """
    if line.startswith("  ") or " | " not in line:
        return None
    head, gloss = line.split(" | ", 1)
    fields = head.split()
    n_words = int(fields[3], 16)
    words = fields[4 : 4 + 2 * n_words : 2]
    return int(fields[0]), fields[2], words, gloss.strip()


def gloss_examples(gloss):
    """The example sentences of a gloss, as `make_corpus.wordnet_sentences` cuts them.

    >>> gloss_examples('a bank; "he sat on the bank"; "the bank of the river" ')
    ['he sat on the bank', 'the bank of the river']
    """
    return [piece.strip().strip('"').strip() for piece in gloss.split(";") if '"' in piece]


def word_lemma(word):
    """The lemma of a synset word in lower case, or None if it is not a single token.

    >>> word_lemma("Bank"), word_lemma("galore(ip)"), word_lemma("river_bank"), word_lemma("dead-on(a)")
    ('bank', 'galore', None, None)
    """
    lemma = ADJECTIVE_MARKER.sub("", word).lower()
    if "_" in lemma or tokenize(lemma) != [lemma]:
        return None
    return lemma


def read_exceptions(wordnet_dir):
    """{pos: {inflected: {base, ...}}} from the `*.exc` files that exist."""
    exceptions = {}
    for pos, name in PARTS:
        table = exceptions.setdefault(pos, {})
        path = os.path.join(wordnet_dir, f"{name}.exc")
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 2:
                    table.setdefault(fields[0].lower(), set()).update(b.lower() for b in fields[1:])
    return exceptions


def is_form_of(token, lemma, pos, exceptions):
    """Whether the lower-cased `token` is `lemma` or an inflection of it (exceptions, then suffix rules).

    >>> is_form_of("geese", "goose", "n", {"n": {"geese": {"goose"}}}), is_form_of("boxes", "box", "n", {})
    (True, True)
    >>> is_form_of("making", "make", "v", {}), is_form_of("banker", "bank", "n", {})
    (True, False)
    """
    if token == lemma or lemma in exceptions.get(pos, {}).get(token, ()):
        return True
    return any(len(token) > len(suffix) and token.endswith(suffix) and token[: -len(suffix)] + base == lemma
               for suffix, base in SUFFIX_RULES[pos])


def find_target(tokens, lemma, pos, exceptions):
    """Index of the first token that is a form of `lemma`, or None."""
    for index, token in enumerate(tokens):
        if is_form_of(token.lower(), lemma, pos, exceptions):
            return index
    return None


def load_is_heldout(path=MAKE_CORPUS):
    """`is_heldout(tokenised_sentence)` of the bundled model's `make_corpus.py`, imported by path."""
    return common.load_make_corpus(path).is_heldout


def extract_items(wordnet_dir=DEFAULT_WORDNET, is_heldout=None,
                  min_examples=MIN_EXAMPLES_PER_SENSE, min_senses=MIN_SENSES_PER_LEMMA):
    """The probe's examples: a list of `Item`, ordered by part of speech, lemma, synset offset, gloss order.

    `is_heldout` (a function of the space-joined tokens; default: the bundled
    model's `make_corpus.is_heldout`) marks the held-out sentences.
    """
    if is_heldout is None:
        is_heldout = load_is_heldout()
    exceptions = read_exceptions(wordnet_dir)
    items = []
    for pos, name in PARTS:
        path = os.path.join(wordnet_dir, f"data.{name}")
        if not os.path.exists(path):
            continue
        senses = collections.defaultdict(dict)  # lemma -> {offset: [(sentence, tokens, target)]}
        with open(path, encoding="utf-8") as f:
            for line in f:
                parsed = parse_data_line(line)
                if parsed is None:
                    continue
                offset, _, words, gloss = parsed
                examples = [(s, tokenize(s)) for s in dict.fromkeys(gloss_examples(gloss))]
                for lemma in dict.fromkeys(filter(None, map(word_lemma, words))):
                    found = []
                    for sentence, tokens in examples:
                        target = find_target(tokens, lemma, pos, exceptions)
                        if target is not None:
                            found.append((sentence, tokens, target))
                    if len(found) >= min_examples:
                        senses[lemma][offset] = found
        for lemma in sorted(senses):
            if len(senses[lemma]) < min_senses:
                continue
            for offset in sorted(senses[lemma]):
                for sentence, tokens, target in senses[lemma][offset]:
                    items.append(Item(pos, lemma, offset, sentence, tuple(tokens), target,
                                      bool(is_heldout(" ".join(tokens)))))
    return items


# ---------------------------------------------------------------- scoring

def _group_indices(groups):
    indices = collections.defaultdict(list)
    for index, group in enumerate(groups):
        indices[group].append(index)
    return [np.asarray(v) for v in indices.values()]


def nearest_neighbour_scores(vectors, groups, labels, tolerance=TIE_TOLERANCE):
    """Leave-one-out 1-NN score of each query, in [0, 1]: float array (n,).

    The query's nearest other example of its group (cosine similarity)
    predicts its label; equally near ones (within `tolerance`) share the
    credit. A query alone in its group scores 0.

    >>> v = np.array([[1, 0], [1, .1], [0, 1], [.1, 1]], dtype=float)
    >>> nearest_neighbour_scores(v, ["g"] * 4, [1, 1, 2, 2]).tolist()
    [1.0, 1.0, 1.0, 1.0]
    >>> nearest_neighbour_scores(np.ones((4, 2)), ["g"] * 4, [1, 1, 2, 2]).round(3).tolist()
    [0.333, 0.333, 0.333, 0.333]
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    labels = np.asarray(labels)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms > 0, norms, 1.0)
    scores = np.zeros(len(vectors))
    for members in _group_indices(groups):
        if len(members) < 2:
            continue
        sims = unit[members] @ unit[members].T
        np.fill_diagonal(sims, -np.inf)
        nearest = sims >= sims.max(axis=1, keepdims=True) - tolerance
        same = labels[members][None, :] == labels[members][:, None]
        scores[members] = (nearest & same).sum(axis=1) / nearest.sum(axis=1)
    return scores


def majority_scores(groups, labels):
    """Leave-one-out majority baseline: 1.0 where the most frequent label among the
    group's other examples (ties: the lowest label) is the query's, else 0.0.

    >>> majority_scores(["g"] * 5, [1, 1, 1, 3, 3]).tolist()
    [1.0, 1.0, 1.0, 0.0, 0.0]
    >>> majority_scores(["g"] * 4, [2, 2, 1, 1]).tolist()
    [0.0, 0.0, 0.0, 0.0]
    """
    labels = list(labels)
    scores = np.zeros(len(labels))
    for members in _group_indices(groups):
        counts = collections.Counter(labels[i] for i in members)
        for i in members:
            counts[labels[i]] -= 1
            best = min(counts, key=lambda label: (-counts[label], label))
            scores[i] = float(best == labels[i] and counts[best] > 0)
            counts[labels[i]] += 1
    return scores


def summarise(scores, heldout):
    """{"all": accuracy, "heldout": accuracy over the held-out queries (None if none)}, with standard errors."""
    heldout = np.asarray(heldout, dtype=bool)

    def stats(values):
        if not len(values):
            return None, None
        return float(values.mean()), float(values.std() / np.sqrt(len(values)))

    (acc, se), (acc_h, se_h) = stats(scores), stats(scores[heldout])
    return {"all": acc, "all_se": se, "heldout": acc_h, "heldout_se": se_h}


def score_layers(layer_vectors, items, lstm_mean=True):
    """Rows of the result table: {name: summary} for each layer, the LSTM mean and two baselines.

    `layer_vectors`: array (layers, n_items, dim), layer 0 the char-CNN.
    """
    groups = [(item.pos, item.lemma) for item in items]
    labels = [item.offset for item in items]
    heldout = [item.heldout for item in items]
    rows = {}
    for layer, vectors in enumerate(layer_vectors):
        name = "layer 0 (char-CNN)" if layer == 0 else f"layer {layer}"
        rows[name] = summarise(nearest_neighbour_scores(vectors, groups, labels), heldout)
    n_lstm = len(layer_vectors) - 1
    if lstm_mean and n_lstm > 1:
        mean = np.mean(layer_vectors[1:], axis=0)
        rows[f"layers 1-{n_lstm} mean"] = summarise(nearest_neighbour_scores(mean, groups, labels), heldout)
    rows["majority baseline"] = summarise(majority_scores(groups, labels), heldout)
    # All vectors equal: every neighbour ties, so a query scores the share of its sense among the others.
    rows["random neighbour"] = summarise(nearest_neighbour_scores(np.ones((len(items), 1)), groups, labels), heldout)
    return rows


def counts(items):
    """Lemmas, senses and examples (all and held-out) of the items, also per part of speech."""
    out = {"lemmas": len({(i.pos, i.lemma) for i in items}),
           "senses": len({(i.pos, i.lemma, i.offset) for i in items}),
           "examples": len(items), "heldout_examples": sum(i.heldout for i in items),
           "sentences": len({i.tokens for i in items}), "by_pos": {}}
    for pos, _ in PARTS:
        part = [i for i in items if i.pos == pos]
        if part:
            out["by_pos"][pos] = {"lemmas": len({i.lemma for i in part}),
                                  "senses": len({(i.lemma, i.offset) for i in part}), "examples": len(part)}
    return out


# ---------------------------------------------------------------- embedding

def embed_targets(embedder, items, batch_size=64):
    """Vectors of each item's target token at every layer: float32 (layers, n_items, dim).

    Each distinct sentence is embedded once, with `embed_sentences`.
    """
    by_sentence = collections.defaultdict(list)
    for index, item in enumerate(items):
        by_sentence[item.tokens].append((index, item.target))
    sentences = list(by_sentence)
    out = np.zeros((embedder.num_layers, len(items), embedder.dim), dtype=np.float32)
    for tokens, embedding in zip(sentences, embedder.embed_sentences(sentences, batch_size=batch_size)):
        for index, target in by_sentence[tokens]:
            out[:, index] = embedding[:, target]
    return out


def model_files(args):
    if args.model_dir:
        return os.path.join(args.model_dir, "options.json"), os.path.join(args.model_dir, "weights.hdf5")
    if args.options_file or args.weight_file:
        if not (args.options_file and args.weight_file):
            raise SystemExit("probe_word_sense.py: pass both --options-file and --weight-file")
        return args.options_file, args.weight_file
    from elmo_keras.pretrained import default_model_files

    return default_model_files()


def markdown_table(rows):
    def cell(acc, se):
        return "-" if acc is None else f"{acc:.3f} ± {se:.3f}"

    lines = ["| | accuracy, all queries | accuracy, held-out queries |", "|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {cell(r['all'], r['all_se'])} | {cell(r['heldout'], r['heldout_se'])} |")
    return "\n".join(lines)


def best_lstm_gain(rows):
    """(best LSTM layer, its accuracy minus layer 0's in points) on all queries and on held-out ones."""
    layers = [name for name in rows if re.fullmatch(r"layer \d+", name)]
    if not layers:
        return None
    best = max(layers, key=lambda name: rows[name]["all"])
    base = rows["layer 0 (char-CNN)"]
    gain = {"layer": best, "all_points": 100 * (rows[best]["all"] - base["all"])}
    if base["heldout"] is not None:
        gain["heldout_points"] = 100 * (rows[best]["heldout"] - base["heldout"])
    return gain


def run(options_file, weight_file, wordnet_dir=DEFAULT_WORDNET, batch_size=64, max_lemmas=None,
        lstm_mean=True):
    """Extract, embed and score; return the result as a dict (what `--json` prints)."""
    from elmo_keras.io.digest import file_digest

    start = time.perf_counter()
    items = extract_items(wordnet_dir)
    if max_lemmas is not None:
        keep = list(dict.fromkeys((i.pos, i.lemma) for i in items))[:max_lemmas]
        items = [i for i in items if (i.pos, i.lemma) in set(keep)]
    if not items:
        raise SystemExit(f"probe_word_sense.py: no lemma with two senses of two examples in {wordnet_dir}")
    extracted = time.perf_counter()
    from elmo_keras.embedder import ElmoEmbedder

    embedder = ElmoEmbedder(options_file, weight_file, batch_size=batch_size)
    vectors = embed_targets(embedder, items, batch_size=batch_size)
    embedded = time.perf_counter()
    rows = score_layers(vectors, items, lstm_mean=lstm_mean)
    return {
        "command": command_line(),
        "options_file": options_file, "options_sha256": file_digest(options_file)[:16],
        "weight_file": weight_file, "weights_sha256": file_digest(weight_file)[:16],
        "wordnet_dir": wordnet_dir, "counts": counts(items), "rows": rows, "best_lstm_gain": best_lstm_gain(rows),
        "seconds": {"extract": extracted - start, "embed": embedded - extracted,
                    "score": time.perf_counter() - embedded, "total": time.perf_counter() - start},
    }


def command_line():
    script = os.path.relpath(os.path.abspath(sys.argv[0]), REPO) if sys.argv[0] else "probe_word_sense.py"
    return "python " + shlex.join([script] + sys.argv[1:])


def report(result):
    c, s = result["counts"], result["seconds"]
    by_pos = ", ".join(f"{pos}: {v['lemmas']} lemmas / {v['senses']} senses / {v['examples']} examples"
                       for pos, v in c["by_pos"].items())
    lines = [f"command: `{result['command']}`",
             f"model: {result['options_file']} (sha256 {result['options_sha256']}), "
             f"{result['weight_file']} (sha256 {result['weights_sha256']})",
             f"WordNet: {result['wordnet_dir']}: {c['lemmas']} lemmas, {c['senses']} senses, "
             f"{c['examples']} examples ({c['heldout_examples']} held-out queries), "
             f"{c['sentences']} distinct sentences ({by_pos})", "",
             markdown_table(result["rows"]), ""]
    gain = result["best_lstm_gain"]
    if gain:
        held = f", {gain['heldout_points']:+.1f} on held-out queries" if "heldout_points" in gain else ""
        lines.append(f"best LSTM layer ({gain['layer']}) minus layer 0: {gain['all_points']:+.1f} points{held}")
    lines.append(f"time: {s['total']:.0f} s (extract {s['extract']:.0f} s, embed {s['embed']:.0f} s, "
                 f"score {s['score']:.1f} s)")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--options-file")
    parser.add_argument("--weight-file")
    parser.add_argument("--model-dir", help="a folder with options.json and weights.hdf5")
    parser.add_argument("--wordnet", default=DEFAULT_WORDNET, help="folder of WordNet's data.* and *.exc files")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-lemmas", type=int, help="only the first N lemmas (a quick check)")
    parser.add_argument("--no-lstm-mean", action="store_true", help="leave out the mean of the LSTM layers")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of markdown")
    args = parser.parse_args(argv)
    if args.model_dir and (args.options_file or args.weight_file):
        parser.error("--model-dir or --options-file/--weight-file, not both")
    options_file, weight_file = model_files(args)
    result = run(options_file, weight_file, wordnet_dir=args.wordnet, batch_size=args.batch_size,
                 max_lemmas=args.max_lemmas, lstm_mean=not args.no_lstm_mean)
    print(json.dumps(result, indent=2) if args.json else report(result))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
