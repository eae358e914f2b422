"""ELMo in Apache Beam pipelines: embed text at any scale, on any Beam runner.

Needs the `beam` extra (`pip install "elmo-keras[beam]"`). The pieces:

- `ElmoEmbedderHandler`, `ElmoSavedModelHandler` (`elmo_keras.beam.model_handler`):
  Beam `ModelHandler`s that load the biLM once per worker process, from the
  original options/weights (an `ElmoEmbedder` inside) or from a SavedModel of
  `elmo_keras.export_savedmodel` (its `tokens` signature). Both also work with
  Beam's own `RunInference` (batched by count).
- `EmbedSentences` (`elmo_keras.beam.embed_sentences`): sentences in, one record
  per sentence out, batched by a token budget among sentences of similar length.
- `ReadLines`, `WriteEmbeddings` (`elmo_keras.beam.files`): every line of the
  matched files with its file and 0-based line number; Parquet or TFRecord shards out.
- `elmo-keras embed-beam` (`elmo_keras.beam.cli`): the three together as a command.

Names load on first use, so that the `elmo-keras` command line builds its
parser without importing Beam.

Example (the DirectRunner; any runner's flags go to `PipelineOptions`):

    import apache_beam as beam
    from elmo_keras.beam import ElmoEmbedderHandler, EmbedSentences, ReadLines, WriteEmbeddings

    with beam.Pipeline() as pipeline:
        (pipeline
         | ReadLines("corpus/*.txt")
         | EmbedSentences(ElmoEmbedderHandler(), layers="top")
         | WriteEmbeddings("vectors/part", "parquet"))
"""

import importlib

_PUBLIC = {
    "ElmoEmbedderHandler": "elmo_keras.beam.model_handler",
    "ElmoSavedModelHandler": "elmo_keras.beam.model_handler",
    "resolve_savedmodel_dir": "elmo_keras.beam.model_handler",
    "EmbedSentences": "elmo_keras.beam.embed_sentences",
    "token_budget_batches": "elmo_keras.beam.embed_sentences",
    "ReadLines": "elmo_keras.beam.files",
    "WriteEmbeddings": "elmo_keras.beam.files",
    "PARQUET_SCHEMA": "elmo_keras.beam.files",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'elmo_keras.beam' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value
