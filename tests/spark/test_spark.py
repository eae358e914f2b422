"""`elmo_keras.spark` and `elmo-keras embed-spark` on a real local Spark cluster.

One cluster for the whole module: `local-cluster[2,1,1024]`, a Spark master
and two executors, each its own JVM with its own Python workers, started
from the PySpark wheel (SPARK_HOME = the pyspark package folder). The model
is bilm-tf's small test model, on the TensorFlow backend. Vectors are compared
with `ElmoEmbedder`'s on the same sentences within the derived batching
tolerance (`reference_bilm.batching_tolerance`): the cluster batches the
sentences differently, so the two are not the same computation.
"""

import importlib.util
import json
import os
import subprocess
import pathlib
import sys
import time

import numpy as np
import pytest

from conftest import FIXTURE_OPTIONS, FIXTURE_WEIGHTS

import reference_bilm
from elmo_keras.spark.java import JavaNotFoundError, check_java

HAVE_PYSPARK = importlib.util.find_spec("pyspark") is not None
needs_pyspark = pytest.mark.skipif(not HAVE_PYSPARK,
                                   reason="needs PySpark: the spark extra (pip install 'elmo-keras[spark]')")
try:
    check_java()
    NO_JAVA = None
except JavaNotFoundError as error:
    NO_JAVA = str(error)


def needs_java(test):
    """PySpark (the spark extra) and a Java 17+ runtime: what a Spark session needs."""
    return needs_pyspark(pytest.mark.skipif(NO_JAVA is not None, reason=f"needs Java 17+ for Spark: {NO_JAVA}")(test))

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
MASTER = "local-cluster[2,1,1024]"
SENTENCES = [["The", "bank", "raised", "its", "rates", "."], ["She", "sat", "on", "the", "river", "bank", "."],
             [], ["Rates", "rose", "again", "."], ["a"] * 40, ["Hello", "world"], ["x", "y", "z"] * 5]


@pytest.fixture(scope="module")
def spark():
    """A local cluster: a master and two executors in separate JVMs, each with its own Python workers."""
    if NO_JAVA is not None:
        pytest.skip(f"needs Java 17+ for Spark: {NO_JAVA}")
    import pyspark
    from pyspark.sql import SparkSession

    os.environ["SPARK_HOME"] = os.path.dirname(pyspark.__file__)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # The workers import this module (its KillOnceEmbedder) from tests/spark/, `conftest` from tests/ (before
    # the repository root's conftest.py) and elmo_keras from this checkout.
    pythonpath = os.pathsep.join([str(HERE), str(REPO / "tests"), str(REPO),
                                  *filter(None, [os.environ.get("PYTHONPATH")])])
    session = (SparkSession.builder.master(MASTER).appName("elmo_keras tests")
               .config("spark.executorEnv.PYTHONPATH", pythonpath)
               .config("spark.executorEnv.TF_CPP_MIN_LOG_LEVEL", "3")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.task.maxFailures", "4")
               .config("spark.sql.shuffle.partitions", "4")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    deadline = time.time() + 120  # the executors register a little after the session starts
    while _executors(session) < 2 and time.time() < deadline:
        time.sleep(0.5)
    try:
        yield session
    finally:
        session.stop()


def _executors(session):
    """Executors registered with the driver (its block managers, less its own)."""
    return session.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1


@pytest.fixture(scope="module")
def expected():
    """ElmoEmbedder's vectors of SENTENCES, in this process (no Spark), and the tolerance between batchings."""
    from elmo_keras import ElmoEmbedder

    embedder = ElmoEmbedder(FIXTURE_OPTIONS, FIXTURE_WEIGHTS)
    vectors = list(embedder.embed_sentences(SENTENCES))
    atol = reference_bilm.batching_tolerance(FIXTURE_OPTIONS, FIXTURE_WEIGHTS,
                                             tuple(tuple(s) for s in SENTENCES if s))
    return vectors, atol


def _frame(spark, texts):
    return spark.createDataFrame(list(enumerate(texts)), "id long, text string").repartition(3)


@needs_java
@pytest.mark.slow
def test_cluster_has_two_executors_with_their_own_python_workers(spark):
    import pyarrow as pa

    def pids(batches):
        for batch in batches:
            yield pa.RecordBatch.from_arrays([pa.array([os.getpid()] * batch.num_rows, pa.int64())], ["pid"])

    assert spark.sparkContext.master == MASTER
    assert _executors(spark) == 2
    rows = spark.range(0, 64, numPartitions=8).mapInArrow(pids, "pid long").collect()
    assert os.getpid() not in {r.pid for r in rows}


@needs_java
@pytest.mark.slow
def test_vectors_equal_elmo_embedder_on_the_cluster(spark, expected):
    from elmo_keras.spark import EmbedCounters, embed_dataframe

    vectors, atol = expected
    df = _frame(spark, [" ".join(s) for s in SENTENCES] + [None])
    counters = EmbedCounters(spark.sparkContext)
    out = embed_dataframe(df, options_file=FIXTURE_OPTIONS, weight_file=FIXTURE_WEIGHTS, jit_compile=False,
                          layers="all",
                          counters=counters, max_tokens_per_batch=64)
    assert out.schema["embedding"].dataType.simpleString() == "array<array<array<float>>>"
    assert out.schema["tokens"].dataType.simpleString() == "array<string>"
    rows = {r.id: r for r in out.collect()}  # one action: the counters count each row once
    assert sorted(rows) == list(range(len(SENTENCES) + 1))
    for i, sentence in enumerate(SENTENCES):
        assert rows[i].tokens == sentence
        got = np.asarray(rows[i].embedding, np.float32).reshape(vectors[i].shape)
        np.testing.assert_allclose(got, vectors[i], rtol=0, atol=atol)
    assert rows[len(SENTENCES)].tokens is None and rows[len(SENTENCES)].embedding is None
    assert counters.values() == {"null_texts": 1, "sentences": len(SENTENCES),
                                 "tokens": sum(map(len, SENTENCES)), "invalid_utf8_lines": 0}


@needs_java
@pytest.mark.slow
def test_top_mix_and_sentence_vectors_on_the_cluster(spark, expected):
    from elmo_keras.io.embedding_file import sentence_vector
    from elmo_keras.spark import embed_dataframe

    vectors, atol = expected
    df = _frame(spark, [" ".join(s) for s in SENTENCES])
    weights = [0.5, 0.25, 0.25]
    top = embed_dataframe(df, options_file=FIXTURE_OPTIONS, weight_file=FIXTURE_WEIGHTS, jit_compile=False,
                          layers="top")
    mixed = embed_dataframe(df, options_file=FIXTURE_OPTIONS, weight_file=FIXTURE_WEIGHTS, jit_compile=False,
                          layers=weights,
                            sentence_vectors=True).withColumnRenamed("tokens", "mixed_tokens")
    assert mixed.schema["sentence_vector"].dataType.simpleString() == "array<float>"
    rows = top.join(mixed.select("id", "sentence_vector"), "id").collect()
    assert len(rows) == len(SENTENCES)
    for row in rows:
        want = vectors[row.id]
        np.testing.assert_allclose(np.asarray(row.embedding, np.float32).reshape(want.shape[1:]), want[-1],
                                   rtol=0, atol=atol)
        mix = np.tensordot(np.asarray(weights, np.float32), want, axes=1)
        np.testing.assert_allclose(np.asarray(row.sentence_vector, np.float32), sentence_vector(mix),
                                   rtol=0, atol=atol)
    with pytest.raises(ValueError, match="expected 3 mix weights"):
        embed_dataframe(df, options_file=FIXTURE_OPTIONS, weight_file=FIXTURE_WEIGHTS, jit_compile=False,
                          layers=[1.0, 2.0])


@needs_java
@pytest.mark.slow
def test_savedmodel_on_the_cluster(spark, expected, tmp_path_factory):
    """model_dir: a SavedModel of `elmo-keras export` (its highest version), loaded as Beam's handler loads it."""
    from elmo_keras import export_savedmodel
    from elmo_keras.spark import embed_dataframe

    folder = tmp_path_factory.mktemp("savedmodel") / "elmo"
    export_savedmodel(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, str(folder), version=3, warmup=False)
    vectors, atol = expected
    df = _frame(spark, [" ".join(s) for s in SENTENCES])
    rows = embed_dataframe(df, model_dir=str(folder), layers="all", max_tokens_per_batch=64).collect()
    assert len(rows) == len(SENTENCES)
    for row in rows:
        want = vectors[row.id]
        np.testing.assert_allclose(np.asarray(row.embedding, np.float32).reshape(want.shape), want, rtol=0,
                                   atol=atol)
    with pytest.raises(ValueError, match="not both"):
        embed_dataframe(df, model_dir=str(folder), model="small")
    with pytest.raises(FileNotFoundError, match="no SavedModel there"):
        embed_dataframe(df, model_dir=str(tmp_path_factory.mktemp("empty")))


@needs_java
def test_bad_text_column_is_named_with_its_type(spark):
    from elmo_keras.spark import embed_dataframe

    df = spark.createDataFrame([(1, "a")], "id long, text string")
    with pytest.raises(ValueError, match=r"text column 'sentence' not found; the input's columns: id, text"):
        embed_dataframe(df, text_column="sentence")
    with pytest.raises(ValueError, match=r"text column 'id' is of type bigint; expected string"):
        embed_dataframe(df, text_column="id")


class KillOnceEmbedder:
    """Wraps the embedding function: the first worker to run it dies (SIGKILL) after its first output batch."""

    def __init__(self, inner, marker):
        self.inner, self.marker = inner, marker

    def __call__(self, batches):
        import signal

        for count, batch in enumerate(self.inner(batches)):
            yield batch
            if count == 0 and not os.path.exists(self.marker):
                with open(self.marker, "w") as f:
                    f.write(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)


@needs_java
@pytest.mark.slow
def test_a_killed_python_worker_is_retried_and_every_row_appears_once(spark, tmp_path):
    from elmo_keras.spark import embed_dataframe

    n = 120
    df = spark.createDataFrame([(i, f"sentence number {i} .") for i in range(n)], "id long, text string")
    df = df.repartition(2)
    embedded = embed_dataframe(df, options_file=FIXTURE_OPTIONS, weight_file=FIXTURE_WEIGHTS, jit_compile=False,
                          layers="top",
                               sentence_vectors=True)
    # The same embedding function, wrapped to kill its own worker mid-partition, once.
    from elmo_keras.spark.dataframe import ModelSpec, _ArrowEmbedder

    spec = ModelSpec.resolve(options_file=FIXTURE_OPTIONS, weight_file=FIXTURE_WEIGHTS, jit_compile=False)
    inner = _ArrowEmbedder(spec, "text", "top", True, "whitespace", 8192, None)
    marker = tmp_path / "killed"
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "10")
    try:
        killed = df.mapInArrow(KillOnceEmbedder(inner, str(marker)), embedded.schema)
        output = tmp_path / "out.parquet"
        killed.write.parquet(str(output))
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    assert marker.exists(), "no worker was killed"
    import pyarrow.parquet as pq

    table = pq.read_table(output)
    assert sorted(table.column("id").to_pylist()) == list(range(n))  # each row exactly once
    assert all(len(v) == 32 for v in table.column("sentence_vector").to_pylist())


def _cli(argv, capsys):
    from elmo_keras.cli import main

    code = main(["embed-spark", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _corpus(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "part-0.txt").write_bytes(b"The bank raised its rates .\n\nShe sat on the river bank .\n")
    (corpus / "part-1.txt").write_bytes(b"Rates rose again .\n\xff\xfe not UTF-8\nlast line without newline")
    return corpus


@needs_java
@pytest.mark.slow
def test_command_end_to_end_on_the_cluster(spark, tmp_path, capsys, expected):
    import pyarrow.parquet as pq

    corpus = _corpus(tmp_path)
    output = tmp_path / "vectors.parquet"
    model = ["--options-file", FIXTURE_OPTIONS, "--weight-file", FIXTURE_WEIGHTS, "--no-jit-compile"]
    code, out, err = _cli(["--input", f"{corpus}/*.txt", "--output", str(output), "--layers", "all", *model],
                          capsys)
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["rows"] == 5 and summary["invalid_utf8_lines"] == 1 and summary["master"] == MASTER
    assert "skipped 1 line(s) that are not valid UTF-8" in err
    assert (output / "_SUCCESS").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".vectors.parquet.")]  # no temporary left
    table = pq.read_table(output)
    assert {"file", "line", "text", "tokens", "embedding"} <= set(table.column_names)
    lines = sorted((pathlib.Path(f.replace("file:", "")).name, n) for f, n in
                   zip(table.column("file").to_pylist(), table.column("line").to_pylist()))
    assert lines == [("part-0.txt", 0), ("part-0.txt", 1), ("part-0.txt", 2), ("part-1.txt", 0), ("part-1.txt", 2)]
    vectors, atol = expected
    by_tokens = {tuple(t): np.asarray(e, np.float32) for t, e in
                 zip(table.column("tokens").to_pylist(), table.column("embedding").to_pylist())}
    for i in (0, 1, 2, 3):
        got = by_tokens[tuple(SENTENCES[i])].reshape(vectors[i].shape)
        np.testing.assert_allclose(got, vectors[i], rtol=0, atol=atol)

    # An existing output is refused without --overwrite, before any work; with it, replaced.
    before = sorted(p.name for p in output.iterdir())
    code, _, err = _cli(["--input", f"{corpus}/*.txt", "--output", str(output), *model], capsys)
    assert code == 1 and "exists already; pass --overwrite" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in output.iterdir()) == before
    # A table's column, as Parquet: --text-column; the replaced output holds sentence vectors now.
    source = tmp_path / "table.parquet"
    spark.createDataFrame([(1, "a b"), (2, None)], "id long, sentence string").write.parquet(str(source))
    code, out, err = _cli(["--input", str(source), "--text-column", "sentence", "--output", str(output),
                           "--sentence-vectors", "--overwrite", *model], capsys)
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["null_texts"] == 1
    assert "1 row(s) with a null text" in err
    table = pq.read_table(output)
    assert sorted(table.column_names) == ["id", "sentence", "sentence_vector", "tokens"]
    assert table.num_rows == 2


@needs_pyspark
def test_command_errors_before_any_work(tmp_path, capsys, monkeypatch):
    corpus = _corpus(tmp_path)
    model = ["--options-file", FIXTURE_OPTIONS, "--weight-file", FIXTURE_WEIGHTS]
    started = time.time()
    code, _, err = _cli(["--input", f"{tmp_path}/nothing/*.txt", "--output", str(tmp_path / "o"), *model], capsys)
    if NO_JAVA is None:
        assert code == 1 and "nothing/*.txt: no file matches the input" in err
        code, _, err = _cli(["--input", str(tmp_path / "missing.parquet"), "--text-column", "text", "--output",
                             str(tmp_path / "o"), *model], capsys)
        assert code == 1 and "missing.parquet: input Parquet path not found" in err
        (tmp_path / "o").mkdir()
        code, _, err = _cli(["--input", f"{corpus}/*.txt", "--output", str(tmp_path / "o"), *model], capsys)
        assert code == 1 and "exists already; pass --overwrite to replace it" in err
    # No Java: one line saying what to install.
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java"))
    code, _, err = _cli(["--input", f"{corpus}/*.txt", "--output", str(tmp_path / "p"), *model], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "Spark needs Java" in err and "install a Java 17+ runtime" in err
    monkeypatch.delenv("JAVA_HOME")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(JavaNotFoundError, match="no `java` on PATH and JAVA_HOME is not set"):
        check_java()
    assert time.time() - started < 30  # nothing started
    assert not (tmp_path / "p").exists()


def test_command_registers_without_pyspark_and_says_what_to_install(tmp_path):
    """`elmo-keras` builds its parser without PySpark; embed-spark then names the extra."""
    code = ("import sys; sys.modules['pyspark'] = None\n"
            "from elmo_keras.cli import build_parser, main\n"
            "assert 'embed-spark' in build_parser()._subparsers._group_actions[0].choices\n"
            f"sys.exit(main(['embed-spark', '--input', 'x', '--output', {str(tmp_path / 'v')!r}]))\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                            cwd=REPO)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "embed-spark needs PySpark: pip install 'elmo-keras[spark]'" in result.stderr


def test_parser_builds_without_pyspark_and_layers_parse():
    from elmo_keras.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["embed-spark", "--input", "a", "--output", "b", "--layers", "0.2,0.3,0.5"])
    assert args.layers == [0.2, 0.3, 0.5] and args.func.__module__ == "elmo_keras.spark.cli"
    with pytest.raises(SystemExit):
        parser.parse_args(["embed-spark", "--input", "a", "--output", "b", "--layers", "bottom"])
