"""ELMo in Apache Spark: embed a DataFrame's text column, on one machine or a cluster.

Needs the `spark` extra (`pip install "elmo-keras[spark]"`: PySpark, which
carries Spark itself) and a Java 17+ runtime. The pieces:

- `embed_dataframe(df, text_column="text", ...)` (`elmo_keras.spark.dataframe`):
  the input DataFrame with new columns `tokens` (array<string>) and
  `embedding` (nested arrays of float) or `sentence_vector`; computed with
  `mapInArrow`, one `ElmoEmbedder` per Python worker process, loaded once,
  batches within the token budget. Rows whose text is null get null outputs
  and are counted (`EmbedCounters`).
- `read_text_lines(spark, patterns)`: every line of the matched text files
  with its file and 0-based line number (a line of invalid UTF-8 is skipped
  and counted).
- `elmo-keras embed-spark` (`elmo_keras.spark.cli`): the two together,
  written as Parquet.

Names load on first use, so that the `elmo-keras` command line builds its
parser without importing PySpark.

Example (with a SparkSession `spark`):

    from elmo_keras.spark import embed_dataframe

    df = spark.createDataFrame([(0, "The bank raised its rates ."), (1, None)], "id long, text string")
    embedded = embed_dataframe(df, text_column="text", layers="top", sentence_vectors=True)
    embedded.write.parquet("vectors")
"""

import importlib

_PUBLIC = {
    "embed_dataframe": "elmo_keras.spark.dataframe",
    "read_text_lines": "elmo_keras.spark.dataframe",
    "EmbedCounters": "elmo_keras.spark.dataframe",
    "ModelSpec": "elmo_keras.spark.dataframe",
    "check_java": "elmo_keras.spark.java",
    "check_text_column": "elmo_keras.spark.dataframe",
    "output_schema": "elmo_keras.spark.dataframe",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'elmo_keras.spark' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value
