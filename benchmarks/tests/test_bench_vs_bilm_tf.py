"""benchmarks/bench_vs_bilm_tf.py: its text is the bundled corpus's held-out text, and a tiny run matches bilm-tf."""

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks" / "bench_vs_bilm_tf.py"
MAKE_CORPUS = REPO / "savedmodels" / "default" / "make_corpus.py"
BILM_TF = REPO.parent / "shared" / "peers" / "bilm-tf"
WORDNET = pathlib.Path("/usr/share/wordnet")
IMPLEMENTATIONS = ("bilm-tf", "bilm-tf sorted", "AllenNLP", "elmo_keras TF", "elmo_keras JAX", "elmo_keras PyTorch",
                   "elmo_keras TF stream", "elmo_keras JAX stream", "elmo_keras PyTorch stream")
ELMO_KERAS = {impl for impl in IMPLEMENTATIONS if impl.startswith("elmo_keras")}


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH.parent))
    try:
        yield _load(BENCH, "bench_vs_bilm_tf")
    finally:
        sys.path.remove(str(BENCH.parent))


def _synthetic_wordnet(directory, n_synsets=600):
    """WordNet data files: a licence header, then `offset lex ss_type w_cnt word lex_id p_cnt | gloss` lines."""
    words = ["bank", "river", "money", "slope", "canoe", "boat", "water", "land", "account", "deposit", "edge",
             "shore", "loan", "side", "current", "stream", "hill", "field", "coin", "trade"]
    for p, part in enumerate(("noun", "verb", "adj", "adv")):
        lines = ["  1 This software and database is being provided to you, the LICENSEE, by",
                 "  2 Princeton University under the following license. | not a gloss"]
        for k in range(n_synsets // 4):
            i = p * 1000 + k
            definition = " ".join(words[(i * j + 3) % len(words)] for j in range(1, 4 + i % 6))
            example = f"\"the {words[i % len(words)]}'s {words[(i // 3) % len(words)]}, on the {words[k % 7]}!\""
            gloss = f"{definition}; {example}" if k % 2 else definition
            if k % 9 == 0:
                gloss += "; two words"  # too short: left out
            if k % 11 == 0:
                gloss += f"; {definition}"  # a duplicate: kept once
            lines.append(f"{i:08d} 03 {part[0]} 01 {words[i % len(words)]} 0 000 | {gloss}  ")
        (directory / f"data.{part}").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_text_is_the_corpus_heldout_text(bench, tmp_path):
    """The timed sentences are exactly make_corpus.build's heldout/heldout.txt, in order; warm-up ones are training."""
    wordnet, out = tmp_path / "wordnet", tmp_path / "corpus"
    wordnet.mkdir()
    _synthetic_wordnet(wordnet)
    make_corpus = _load(MAKE_CORPUS, "make_corpus_for_test")
    make_corpus.build(str(out), wordnet_dir=str(wordnet), python_docs_dir="")
    written = (out / "heldout" / "heldout.txt").read_text(encoding="utf-8").splitlines()
    written = [line for line in written if line]
    heldout, train = bench.wordnet_split(str(wordnet))
    assert len(written) >= 3, "the synthetic folder should give a few held-out sentences"
    assert [" ".join(s) for s in heldout] == written
    shards = [(out / "train" / f"shard_{k:02d}.txt").read_text(encoding="utf-8").splitlines()
              for k in range(make_corpus.N_SHARDS)]
    interleaved = [shard[i] for i in range(max(map(len, shards))) for shard in shards if i < len(shard) and shard[i]]
    assert [" ".join(s) for s in train] == interleaved
    assert not set(map(tuple, heldout)) & set(map(tuple, train))
    assert any("'" in s and "," in s for s in heldout + train)  # punctuation split off: its own tokens

    args = bench.parse_args(["--config", "tiny", "--wordnet", str(wordnet), "--sentences", "2", "--batch-size", "3"])
    timed, warmup, source = bench.load_text(args)
    assert timed == heldout[:2] and warmup == train[:3] and "WordNet" in source


def test_text_file(bench, tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("the bank of the river\n\n  a loan ,  from the bank \nthird line here\n", encoding="utf-8")
    args = bench.parse_args(["--text", str(path), "--sentences", "2", "--batch-size", "4",
                             "--wordnet", str(tmp_path / "absent")])
    timed, warmup, _ = bench.load_text(args)
    assert timed == [["the", "bank", "of", "the", "river"], ["a", "loan", ",", "from", "the", "bank"]]
    assert warmup == [["third", "line", "here"]]
    assert bench.text_stats(timed) == {"sentences": 2, "words": 11, "types": 8, "longest": 6}
    assert len(bench.latency_sentence(warmup)) == bench.LATENCY_WORDS


def test_impl_choice(bench):
    assert bench.parse_args(["--impl", "jax,bilm-tf"]).impls == ["bilm-tf", "elmo_keras JAX"]
    assert bench.parse_args(["--impl", "tf-stream,bilm-tf-sorted"]).impls == ["bilm-tf sorted",
                                                                              "elmo_keras TF stream"]
    assert bench.parse_args([]).impls == list(IMPLEMENTATIONS)
    assert bench.parse_args(["--impl", "allennlp,torch-stream"]).impls == ["AllenNLP", "elmo_keras PyTorch stream"]
    with pytest.raises(SystemExit):
        bench.parse_args(["--impl", "mxnet"])


def test_allennlp_skips_saying_why(bench, tmp_path):
    """AllenNLP runs only where its stand-ins and a Python importing it are present; otherwise the reason."""
    args = bench.parse_args(["--allennlp-shim", str(tmp_path), "--allennlp-python", sys.executable])
    assert str(tmp_path) in bench.allennlp_missing_reason(args)
    (tmp_path / "allennlp_shim.py").write_text("")
    args = bench.parse_args(["--allennlp-shim", str(tmp_path), "--allennlp-python", str(tmp_path / "python")])
    assert "no Python at" in bench.allennlp_missing_reason(args)
    if importlib.util.find_spec("allennlp") is None:
        args = bench.parse_args(["--allennlp-shim", str(tmp_path), "--allennlp-python", sys.executable])
        assert "does not import allennlp" in bench.allennlp_missing_reason(args)


def test_compare(bench):
    import numpy as np

    reference = [np.ones((3, 2, 4), np.float32), -2 * np.ones((3, 1, 4), np.float32)]
    other = [reference[0] + 1e-6, reference[1].copy()]
    diff, scale = bench.compare(other, reference)
    assert diff == pytest.approx(1e-6, rel=0.1) and scale == 2.0
    assert bench.compare([reference[0][:, :1]] + other[1:], reference)[0] == float("inf")  # other positions
    assert bench.compare(other[:1], reference)[0] == float("inf")


@pytest.mark.slow
@pytest.mark.skipif(not (BILM_TF / "bilm" / "model.py").exists(), reason=f"bilm-tf not at {BILM_TF}")
@pytest.mark.skipif(not WORDNET.is_dir(), reason="WordNet (Debian wordnet-base) not installed")
@pytest.mark.skipif(importlib.util.find_spec("tf_keras") is None, reason="bilm-tf needs tf_keras")
def test_tiny_run_matches_bilm_tf():
    """A tiny run: every implementation timed, and elmo_keras's outputs are bilm-tf's to float32 rounding."""
    proc = subprocess.run([sys.executable, str(BENCH), "--config", "tiny", "--sentences", "64", "--batch-size", "32",
                           "--latency-runs", "1", "--bilm-tf", str(BILM_TF)], cwd=REPO, capture_output=True,
                          text=True, timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    rows = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| implementation")]
    allennlp = "skip: AllenNLP:" not in out  # it runs where its venv is set up (../shared/peers/allennlp/README.md)
    assert [row.split("|")[1].strip() for row in rows] == [i for i in IMPLEMENTATIONS if allennlp or i != "AllenNLP"]
    for row in rows:
        words_per_s = float(row.split("|")[2].strip().replace(",", ""))
        assert words_per_s > 0
    diffs = dict(re.findall(r"^- ((?:elmo_keras|AllenNLP)[\w ]*?): max abs difference from bilm-tf (\S+) ", out, re.M))
    # Every row but bilm-tf's is checked against it; the sorted bilm-tf row holds other sentences first.
    assert set(diffs) == ELMO_KERAS | ({"AllenNLP"} if allennlp else set()), out[-3000:]
    for impl, diff in diffs.items():
        assert float(diff) < 1e-4, f"{impl}: {diff}"
    assert "text: 64 sentences" in out
