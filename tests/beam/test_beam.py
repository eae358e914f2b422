"""Apache Beam: `elmo-keras embed-beam`, `EmbedSentences`, the model handlers, the shard sinks.

The fixture biLM (tests/data/bilm-tf) is the model: small and fast. Pipelines
run on Beam's local runners: the FnApiRunner (what the DirectRunner runs batch
pipelines on) in two worker processes for the command line, in memory for the
Python API, and the BundleBasedDirectRunner for the bundle retry (the
FnApiRunner does not retry a failed bundle; Dataflow and the
BundleBasedDirectRunner do).
"""

import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import FIXTURE_OPTIONS, FIXTURE_WEIGHTS
from reference_bilm import batching_tolerance

beam = pytest.importorskip("apache_beam")

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from apache_beam.io.localfilesystem import LocalFileSystem  # noqa: E402
from apache_beam.runners.portability.fn_api_runner import FnApiRunner  # noqa: E402
from apache_beam.testing.util import assert_that, equal_to  # noqa: E402

from elmo_keras import ElmoEmbedder  # noqa: E402
from elmo_keras.beam import (PARQUET_SCHEMA, ElmoEmbedderHandler, ElmoSavedModelHandler, EmbedSentences,  # noqa: E402
                             ReadLines, WriteEmbeddings, token_budget_batches)
from elmo_keras.beam.cli import _counters, pipeline_runner  # noqa: E402
from elmo_keras.beam.model_handler import ElmoModel  # noqa: E402
from elmo_keras.cli import main  # noqa: E402
from elmo_keras.preprocessing.batching import boundary_length, budget_batches, padded_length  # noqa: E402

WORDS = ("the cat sat on a mat and then ran off to see the big world of ELMo , . ! Grüße 日本語 "
         "bank river rates raised").split()
INVALID = b"caf\xe9 au lait"  # Latin-1, not UTF-8
# Beam's batches against ElmoEmbedder's: two float32 evaluations of the fixture model in other
# shapes (and graphs, for the SavedModel handler): batching_tolerance on sentences of WORDS, ~3e-6.
ATOL = batching_tolerance(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, (tuple(WORDS), tuple(WORDS[:7]), ("ELMo",)))
FAIL = "ZZFAIL"  # the token on which a test model fails


def _sentence(rng):
    return " ".join(rng.choice(WORDS, int(rng.integers(1, 36))))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Four input shards (one gzipped) with empty, blank, CRLF, unterminated and invalid UTF-8 lines.

    Returns (folder, {(path, line): text or None for the invalid line}).
    """
    folder = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(7)
    contents = {
        "part-0.txt": [_sentence(rng).encode() for _ in range(12)] + [b"", b"   "],
        "part-1.txt": [b"x" * 70 + b" long token", _sentence(rng).encode() + b"\r", INVALID]
                      + [_sentence(rng).encode() for _ in range(9)],
        "part-2.txt": [_sentence(rng).encode() for _ in range(15)] + [" ".join(["river"] * 30 + [FAIL]).encode()],
        "part-3.txt.gz": [_sentence(rng).encode() for _ in range(8)] + [b""],
    }
    lines = {}
    for name, raw_lines in contents.items():
        path = folder / name
        data = b"\n".join(raw_lines) + (b"" if name == "part-2.txt" else b"\n")  # part-2: no final newline
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        for number, raw in enumerate(raw_lines):
            lines[(str(path), number)] = None if raw == INVALID else raw.decode()
    return folder, lines


@pytest.fixture(scope="module")
def embedder():
    return ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)


@pytest.fixture(scope="module")
def reference(corpus, embedder):
    """ElmoEmbedder's (layers, tokens, dim) for every valid line, by (path, line)."""
    _, lines = corpus
    return {key: embedder.embed_sentence(text.split()) for key, text in lines.items() if text is not None}


def _select(vectors, layers):
    return {"all": vectors, "top": vectors[-1], "average": vectors.mean(axis=0)}[layers]


def _read_parquet(prefix):
    paths = sorted(p for p in os.listdir(os.path.dirname(prefix)) if p.endswith(".parquet"))
    tables = [pq.read_table(os.path.join(os.path.dirname(prefix), p)) for p in paths]
    return pa.concat_tables(tables), paths


def _check_rows(rows, reference, lines, layers):
    """Every valid line exactly once, with ElmoEmbedder's vectors; the invalid line absent."""
    keys = [(row["file"], row["line"]) for row in rows]
    assert len(keys) == len(set(keys)), "a line appears twice"
    assert set(keys) == set(reference)
    for row in rows:
        key = (row["file"], row["line"])
        assert row["tokens"] == lines[key].split()
        expected = _select(reference[key], layers)
        assert list(row["shape"]) == list(expected.shape)
        np.testing.assert_allclose(np.asarray(row["embedding"], np.float32).reshape(row["shape"]), expected,
                                   rtol=0, atol=ATOL)


def _run_cli(args, cwd, timeout=300):
    return subprocess.run([sys.executable, "-m", "elmo_keras.cli", "embed-beam", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("time_steps", [boundary_length, padded_length], ids=["SavedModel", "ElmoEmbedder"])
def test_token_budget_batches_cover_every_sentence_once_within_the_budget(time_steps):
    rng = np.random.default_rng(0)
    for budget in (1, 8, 50, 4096):
        lengths = [int(n) for n in rng.integers(0, 60, 200)]
        batches = token_budget_batches(lengths, budget, time_steps)
        assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
        for batch in batches:
            # What the model pads the batch to: the longest + 2 (SavedModel), rounded up to 8 (ElmoEmbedder).
            padded = len(batch) * time_steps(max(lengths[i] for i in batch))
            assert padded <= budget or len(batch) == 1
        # Length-bucketed: batches follow each other by length.
        assert [lengths[i] for batch in batches for i in batch] == sorted(lengths)
        # The embedder's own rule with no sentence limit: one rule, not two.
        assert batches == budget_batches(lengths, None, budget, time_steps=time_steps)


def test_each_handler_budgets_the_padding_its_model_adds():
    assert ElmoEmbedderHandler(FIXTURE_OPTIONS, FIXTURE_WEIGHTS).load_model().time_steps is padded_length
    assert ElmoModel(lambda batch: batch, 3, 8, "any").time_steps is boundary_length  # e.g. a SavedModel


@pytest.mark.slow
def test_cli_two_worker_processes_parquet(corpus, reference, tmp_path):
    """The command end to end on the DirectRunner with 2 worker processes, over 4 shards."""
    folder, lines = corpus
    prefix = str(tmp_path / "out" / "vectors")
    result = _run_cli(["--input", str(folder / "part-*"), "--output", prefix, "--options-file", FIXTURE_OPTIONS,
                       "--weight-file", FIXTURE_WEIGHTS, "--max-tokens-per-batch", "96",
                       "--direct_running_mode", "multi_processing", "--direct_num_workers", "2"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["files"] == 4 and summary["lines"] == len(lines)
    assert summary["sentences"] == summary["rows"] == len(reference) and summary["invalid_utf8_lines"] == 1
    assert summary["batches"] > 4  # the token budget cut the work into many batches
    invalid = [key for key, text in lines.items() if text is None][0]
    assert f"{invalid[0]}: line {invalid[1]} " in result.stderr and "not valid UTF-8" in result.stderr
    assert "skipped 1 line(s)" in result.stderr

    table, names = _read_parquet(prefix)
    assert names == [os.path.basename(p) for p in summary["shards"]]
    assert all(name.startswith("vectors-") and "-of-" in name for name in names)
    assert table.schema.names == ["file", "line", "tokens", "embedding", "shape"]
    assert [f.type for f in table.schema] == [pa.string(), pa.int64(), pa.list_(pa.string()),
                                               pa.list_(pa.float32()), pa.list_(pa.int32())]
    rows = table.to_pylist()
    _check_rows(rows, reference, lines, "all")
    empty = [row for row in rows if not lines[(row["file"], row["line"])].strip()]
    assert len(empty) == 3 and all(row["shape"] == [3, 0, 32] and row["embedding"] == [] for row in empty)
    assert {row["file"] for row in rows} == {str(folder / name) for name in
                                             ("part-0.txt", "part-1.txt", "part-2.txt", "part-3.txt.gz")}

    # Existing shards are a finished output: refused without --overwrite, untouched.
    before = {name: os.path.getmtime(os.path.join(tmp_path, "out", name)) for name in names}
    again = _run_cli(["--input", str(folder / "part-*"), "--output", prefix, "--options-file", FIXTURE_OPTIONS,
                      "--weight-file", FIXTURE_WEIGHTS], tmp_path)
    assert again.returncode == 1
    assert "exist already" in again.stderr and "--overwrite" in again.stderr and again.stdout == ""
    assert {name: os.path.getmtime(os.path.join(tmp_path, "out", name)) for name in names} == before


@pytest.fixture(scope="module")
def savedmodel(tmp_path_factory):
    from elmo_keras import export_savedmodel

    folder = tmp_path_factory.mktemp("savedmodel") / "elmo"
    export_savedmodel(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, str(folder), version=3, warmup=False)
    return folder


@pytest.mark.slow
def test_cli_savedmodel_tfrecord_and_overwrite(corpus, reference, savedmodel, tmp_path):
    """--model-dir (the export folder), TFRecord, --layers average; --overwrite replaces all shards."""
    import tensorflow as tf

    folder, lines = corpus
    prefix = str(tmp_path / "vectors")
    common = ["--input", str(folder / "part-*"), "--output", prefix, "--model-dir", str(savedmodel),
              "--format", "tfrecord", "--layers", "average"]
    first = _run_cli(common + ["--num-shards", "3"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert len(json.loads(first.stdout)["shards"]) == 3
    second = _run_cli(common + ["--num-shards", "2", "--overwrite", "--tokenizer", "whitespace"], tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    shards = json.loads(second.stdout)["shards"]
    # The 3 shards of the first run are gone: replaced or removed as stale.
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in shards)
    assert [os.path.basename(p) for p in shards] == ["vectors-00000-of-00002.tfrecord",
                                                     "vectors-00001-of-00002.tfrecord"]
    rows = []
    for raw in tf.data.TFRecordDataset(shards):
        example = tf.train.Example.FromString(raw.numpy())
        feature = example.features.feature
        assert sorted(feature) == ["embedding", "file", "line", "shape", "tokens"]
        rows.append({"file": feature["file"].bytes_list.value[0].decode(),
                     "line": feature["line"].int64_list.value[0],
                     "tokens": [t.decode() for t in feature["tokens"].bytes_list.value],
                     "embedding": list(feature["embedding"].float_list.value),
                     "shape": list(feature["shape"].int64_list.value)})
    _check_rows(rows, reference, lines, "average")


def test_cli_rejects_bad_arguments_before_any_work(corpus, savedmodel, tmp_path, capsys):
    folder, _ = corpus
    base = ["embed-beam", "--input", str(folder / "part-*"), "--output", str(tmp_path / "v")]
    with pytest.raises(SystemExit) as exit_info:
        main(base + ["--layer", "top"])  # a typo is neither the command's nor a Beam option
    assert exit_info.value.code == 2
    assert "--layer" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(base + ["--direct_num_workers", "2", "stray"])  # a word that is no flag's value
    assert exit_info.value.code == 2
    assert "stray" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(base + ["--max-tokens-per-batch", "0"])
    assert exit_info.value.code == 2
    assert main(base + ["--model-dir", str(savedmodel), "--options-file", FIXTURE_OPTIONS,
                        "--weight-file", FIXTURE_WEIGHTS]) == 1
    assert "not both" in capsys.readouterr().err
    assert main(base + ["--model-dir", str(tmp_path)]) == 1
    assert "no SavedModel" in capsys.readouterr().err
    assert main(["embed-beam", "--input", str(folder / "nothing-*"), "--output", str(tmp_path / "v")]) == 1
    assert "no file matches" in capsys.readouterr().err
    assert main(base + ["--options-file", FIXTURE_OPTIONS, "--weight-file", str(tmp_path / "missing.hdf5")]) == 1
    assert "missing.hdf5" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_cli_module_imports_and_registers_without_beam(tmp_path):
    """`elmo-keras` builds its parser without Beam; embed-beam then says what to install."""
    code = ("import sys; sys.modules['apache_beam'] = None\n"
            "from elmo_keras.cli import build_parser, main\n"
            "assert 'embed-beam' in build_parser()._subparsers._group_actions[0].choices\n"
            f"sys.exit(main(['embed-beam', '--input', 'x', '--output', {str(tmp_path / 'v')!r}]))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "elmo-keras[beam]" in result.stderr


def test_python_api_text_input_and_runinference(embedder):
    """EmbedSentences on plain text (bytes or str); Beam's RunInference with the handler, by count."""
    from apache_beam.ml.inference.base import RunInference

    texts = ["Hello, world.", "", "the bank raised rates"]
    handler = ElmoEmbedderHandler(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, max_batch_size=2)
    expected = {t: embedder.embed_sentence(t.split()) for t in texts}
    punctuation = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, tokenizer="punctuation")

    def close_to(expected_by_key):
        def check(actual):
            assert sorted(k for k, _ in actual) == sorted(expected_by_key)
            for key, vectors in actual:
                np.testing.assert_allclose(vectors, expected_by_key[key], rtol=0, atol=ATOL)
        return check

    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        text = pipeline | beam.Create([texts[0].encode(), texts[1], texts[2]])
        records = text | EmbedSentences(handler, layers="top")
        assert_that(records | "NoFile" >> beam.Map(lambda r: (r["file"], r["line"])),
                    equal_to([(None, None)] * 3), label="no_file")
        assert_that(records | "Top" >> beam.Map(lambda r: (" ".join(r["tokens"]), r["embedding"])),
                    close_to({" ".join(t.split()): v[-1] for t, v in expected.items()}), label="top")
        split = text | "Punct" >> EmbedSentences(handler, tokenizer="punctuation", max_tokens_per_batch=1)
        assert_that(split | "PunctKeys" >> beam.Map(lambda r: (tuple(r["tokens"]), r["embedding"])),
                    close_to({("Hello", ",", "world", "."): next(punctuation.embed_texts([texts[0]])),
                              (): expected[""], tuple(texts[2].split()): expected[texts[2]]}), label="punct")
        tokens = pipeline | "Tokens" >> beam.Create([t.split() for t in texts])
        inferred = tokens | RunInference(handler)
        assert_that(inferred | beam.Map(lambda r: (" ".join(r.example), r.inference)),
                    close_to({" ".join(t.split()): v for t, v in expected.items()}), label="runinference")


def test_savedmodel_handler_equals_embedder(savedmodel, embedder):
    """Both handlers give ElmoEmbedder's vectors (the same float32 graph) for the same weights."""
    rng = np.random.default_rng(3)
    batch = [list(rng.choice(WORDS, int(n))) for n in rng.integers(0, 30, 20)] + [[]]
    for handler in (ElmoSavedModelHandler(savedmodel), ElmoSavedModelHandler(savedmodel / "3"),
                    ElmoEmbedderHandler(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)):
        model = handler.load_model()
        assert (model.num_layers, model.dim) == (3, 32)
        results = handler.run_inference(batch, model)
        assert [r.example for r in results] == batch
        for sentence, result in zip(batch, results):
            assert result.inference.dtype == np.float32
            np.testing.assert_allclose(result.inference, embedder.embed_sentence(sentence), rtol=0, atol=ATOL)


class FailingHandler(ElmoEmbedderHandler):
    """Fails the first `times` batches that hold the token FAIL; a marker file counts the failures.

    The sentence with FAIL is the longest of its file, so its batch comes
    last in its bundle: the batches before it were already embedded and
    their records written (to the sink's temporary file) when it fails.
    """

    def __init__(self, marker, times):
        super().__init__(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)
        self.marker = marker
        self.times = times

    def load_model(self):
        model = super().load_model()
        marker, times = self.marker, self.times
        embedded = []

        def embed(batch):
            failures = open(marker).read().count("\n") if os.path.exists(marker) else 0
            if any(FAIL in tokens for tokens in batch) and failures < times:
                with open(marker, "a") as f:
                    f.write(f"failed after {len(embedded)} batches\n")
                raise RuntimeError("simulated worker failure in the middle of a bundle")
            embedded.append(len(batch))
            return model.embed(batch)

        return ElmoModel(embed, model.num_layers, model.dim, "fails on FAIL")


def test_retried_bundle_gives_each_line_exactly_once(corpus, reference, tmp_path):
    """A bundle that fails after it emitted records is retried; its first attempt leaves no trace."""
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner

    folder, lines = corpus
    marker = tmp_path / "failures"
    prefix = str(tmp_path / "out" / "vectors")
    pipeline = beam.Pipeline(runner=BundleBasedDirectRunner(), options=PipelineOptions())
    (pipeline
     | ReadLines(str(folder / "part-*"), reshuffle=False)  # a file's lines in one bundle
     | EmbedSentences(FailingHandler(str(marker), times=1), max_tokens_per_batch=64)
     | WriteEmbeddings(prefix))
    result = pipeline.run()
    result.wait_until_finish()
    # This runner commits the counters of the failed attempt too (Dataflow does not): the retried
    # bundle's sentences count twice there, while the output holds each line once.
    counters = _counters(result)
    assert counters["sentences"] > len(reference) and counters["lines"] == len(lines)
    failures = marker.read_text().splitlines()
    assert len(failures) == 1 and failures[0] != "failed after 0 batches"  # it failed once, mid-bundle
    table, _ = _read_parquet(prefix)
    _check_rows(table.to_pylist(), reference, lines, "all")


def test_failed_pipeline_writes_no_shard(corpus, tmp_path):
    """The FnApiRunner does not retry: the pipeline fails, and no output shard appears."""
    folder, _ = corpus
    prefix = str(tmp_path / "vectors")
    with pytest.raises(Exception, match="simulated worker failure"):
        with beam.Pipeline(runner=FnApiRunner()) as pipeline:
            (pipeline
             | ReadLines(str(folder / "part-*"))
             | EmbedSentences(FailingHandler(str(tmp_path / "failures"), times=10**6), max_tokens_per_batch=64)
             | WriteEmbeddings(prefix))
    assert (tmp_path / "failures").exists()
    assert not [name for name in os.listdir(tmp_path) if name.startswith("vectors-")]


def test_pipeline_runner_never_uses_prism():
    from apache_beam.options.pipeline_options import PipelineOptions

    assert isinstance(pipeline_runner(PipelineOptions([])), FnApiRunner)
    assert isinstance(pipeline_runner(PipelineOptions(["--runner", "DirectRunner"])), FnApiRunner)
    assert pipeline_runner(PipelineOptions(["--runner", "DataflowRunner"])) is None


def test_parquet_schema_is_the_documented_one():
    assert PARQUET_SCHEMA.names == ["file", "line", "tokens", "embedding", "shape"]
    with pytest.raises(ValueError, match="format"):
        WriteEmbeddings("x", "csv")
    with pytest.raises(ValueError, match="layers"):
        EmbedSentences(layers="middle")
    with pytest.raises(ValueError, match="max_tokens_per_batch"):
        EmbedSentences(max_tokens_per_batch=0)


def test_embedder_handler_on_an_imported_manylangs_model(tmp_path):
    """An imported ELMoForManyLangs model (its dictionaries beside options.json) embeds through Beam as
    through ElmoEmbedder. The tolerance is the float32 sensitivity of that model (`batching_tolerance` reads
    bilm-tf's ids only): their own code in float64 and float32, as in tests/io/test_manylangs.py."""
    import manylangs_models as theirs
    from reference_bilm import float32_tolerance

    from elmo_keras.models.manylangs import import_manylangs

    folder = theirs.their_model_folder(str(tmp_path / "theirs"))
    import_manylangs(folder, str(tmp_path / "ours"))
    files = str(tmp_path / "ours" / "options.json"), str(tmp_path / "ours" / "weights.hdf5")
    sentences = theirs.SENTENCES
    their = theirs.their_embedder(folder)
    float32 = theirs.their_layers(their, sentences)
    their.model.double()
    atol = float32_tolerance(theirs.their_layers(their, sentences), float32)
    ours = ElmoEmbedder(*files)
    expected = {" ".join(s): v for s, v in zip(sentences, ours.embed_sentences(sentences))}
    expected[""] = ours.embed_sentence([])

    def close_to(actual):
        assert sorted(key for key, _ in actual) == sorted(expected)
        for key, vectors in actual:
            np.testing.assert_allclose(vectors, expected[key], rtol=0, atol=atol, err_msg=key)

    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        records = (pipeline | beam.Create(list(expected))
                   | EmbedSentences(ElmoEmbedderHandler(*files), max_tokens_per_batch=16))
        assert_that(records | beam.Map(lambda r: (" ".join(r["tokens"]), r["embedding"])), close_to)


class _FolderFileSystem(LocalFileSystem):
    """Beam filesystem `elmotest://NAME` over the local folder `ROOT/NAME`: remote storage for the tests."""

    ROOT = None

    @classmethod
    def scheme(cls):
        return "elmotest"

    def _local(self, path):
        return os.path.join(self.ROOT, path[len("elmotest://"):])

    def open(self, path, *args, **kwargs):
        return super().open(self._local(path), *args, **kwargs)

    def exists(self, path):
        return super().exists(self._local(path))


def test_embedder_handler_copies_a_remote_model_with_its_dictionaries(tmp_path, monkeypatch):
    """A model on remote storage is copied to the worker, an imported ELMoForManyLangs model's char.dic and
    word.dic with it; the copy embeds as the original folder does (the same computation: equal)."""
    import manylangs_models as theirs

    from elmo_keras.models.manylangs import import_manylangs

    monkeypatch.setattr(_FolderFileSystem, "ROOT", str(tmp_path))
    import_manylangs(theirs.their_model_folder(str(tmp_path / "theirs")), str(tmp_path / "ours"))
    handler = ElmoEmbedderHandler("elmotest://ours/options.json", "elmotest://ours/weights.hdf5")
    options_file, weight_file = handler.model_files()
    assert options_file != str(tmp_path / "ours" / "options.json")
    assert sorted(os.listdir(os.path.dirname(options_file))) == ["char.dic", "options.json", "weights.hdf5",
                                                                 "word.dic"]
    expected = ElmoEmbedder(str(tmp_path / "ours" / "options.json"), str(tmp_path / "ours" / "weights.hdf5"))
    for ours, theirs_ in zip(handler.load_model().embed(theirs.SENTENCES), expected.embed_batch(theirs.SENTENCES)):
        np.testing.assert_array_equal(ours, theirs_)
    # A bilm-tf model has no dictionaries: options and weights only.
    os.makedirs(tmp_path / "bilm")
    for source, name in ((FIXTURE_OPTIONS, "options.json"), (FIXTURE_WEIGHTS, "weights.hdf5")):
        with open(source, "rb") as f, open(tmp_path / "bilm" / name, "wb") as out:
            out.write(f.read())
    files = ElmoEmbedderHandler("elmotest://bilm/options.json", "elmotest://bilm/weights.hdf5").model_files()
    assert sorted(os.listdir(os.path.dirname(files[0]))) == ["options.json", "weights.hdf5"]
