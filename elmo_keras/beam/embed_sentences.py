"""`EmbedSentences`: a Beam PTransform from sentences to ELMo vectors, batched by a token budget.

Input: a PCollection of `(file, line, text)` (what `elmo_keras.beam.ReadLines`
gives) or of plain `text`; `text` is `str` or UTF-8 `bytes`. Output: one
record per sentence, a dict:

- `file` (str) and `line` (int, 0-based): as in the input; None for plain text;
- `tokens` (list of str): the sentence split by `tokenizer` (`str.split()` by
  default, as `elmo-keras embed`; "punctuation" also splits punctuation off);
- `embedding` (float32 numpy array): (layers, tokens, dim) for `layers="all"`,
  (tokens, dim) for `"top"` (the last layer) and `"average"` (their mean).
  An empty or all-whitespace line is an empty sentence: (layers, 0, dim).

A line that is not valid UTF-8 (bytes input) is skipped, counted in the Beam
counter `elmo_keras:invalid_utf8_lines` and logged as a warning naming its file
and line; the other lines go on. Counters `sentences`, `tokens` and `batches`
(namespace `elmo_keras`) count the work done (a runner that commits the
metrics of failed attempts, as Beam's BundleBasedDirectRunner does, counts a
retried bundle's work twice; the output still has each sentence once).

Batching: within a bundle, sentences are collected up to `sort_window` batches'
worth of tokens, sorted by length and cut into batches whose padded size,
sentences x the time steps the model pads the longest sentence to (the
longest + 2 boundary tokens for a SavedModel, rounded up to a multiple of 8
for `ElmoEmbedder`), is at most `max_tokens_per_batch` (a longer sentence is
a batch of its own): `elmo_keras.preprocessing.batching.budget_batches`, the
rule `ElmoEmbedder` applies too. Each batch
goes through the model handler's model (`elmo_keras.beam.ElmoEmbedderHandler`
by default: the bundled model), loaded once per worker process and shared by
its threads. Stateless: a sentence's vectors never depend on its batch, so a
retried bundle gives the same vectors.

Example (runs on the DirectRunner):

>>> import apache_beam as beam
>>> from apache_beam.runners.portability.fn_api_runner import FnApiRunner
>>> from apache_beam.testing.util import assert_that, equal_to
>>> from elmo_keras.beam import ElmoEmbedderHandler
>>> handler = ElmoEmbedderHandler("tests/data/bilm-tf/options.json", "tests/data/bilm-tf/lm_weights.hdf5")
>>> with beam.Pipeline(runner=FnApiRunner()) as pipeline:
...     shapes = (pipeline
...               | beam.Create([("a.txt", 0, "Hello world ."), ("a.txt", 1, b""), ("a.txt", 2, b"\\xff")])
...               | EmbedSentences(handler, layers="top", max_tokens_per_batch=64)
...               | beam.Map(lambda record: (record["line"], record["embedding"].shape)))
...     _ = assert_that(shapes, equal_to([(0, (3, 32)), (1, (0, 32))]))  # line 2 is skipped: not UTF-8
"""

import logging

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils import shared
from apache_beam.utils.windowed_value import WindowedValue

from elmo_keras.arguments import check_positive_int
from elmo_keras.preprocessing.batching import DEFAULT_MAX_TOKENS_PER_BATCH, boundary_length, budget_batches
from elmo_keras.preprocessing.split import check_splitter, split_sentence

METRICS_NAMESPACE = "elmo_keras"
LAYERS = ("all", "top", "average")
# Sentences are sorted by length over this many batches' worth of tokens.
DEFAULT_SORT_WINDOW = 16

_LOGGER = logging.getLogger(__name__)


def token_budget_batches(lengths, max_tokens, time_steps=boundary_length):
    """Cut sentences of `lengths` tokens into batches of similar length; return lists of indices.

    `elmo_keras.preprocessing.batching.budget_batches` with no sentence
    limit: sentences are taken shortest first (ties in input order); a batch
    grows while its padded size, sentences x `time_steps(longest)` (by
    default the longest + 2), stays within `max_tokens`. A sentence too long
    for the budget is a batch of its own.

    >>> token_budget_batches([5, 1, 3, 0, 8], 24)
    [[3, 1, 2], [0, 4]]
    >>> token_budget_batches([30, 2], 16)
    [[1], [0]]
    """
    check_positive_int(max_tokens, "max_tokens")
    return budget_batches(lengths, None, max_tokens, time_steps=time_steps)


class _Pending:
    """A sentence waiting for its batch."""

    __slots__ = ("file", "line", "tokens", "timestamp")

    def __init__(self, file, line, tokens, timestamp):
        self.file, self.line, self.tokens, self.timestamp = file, line, tokens, timestamp


class _EmbedDoFn(beam.DoFn):
    """Decode, split, collect per window, batch by token budget, embed, emit records."""

    def __init__(self, model_handler, layers, max_tokens_per_batch, tokenizer, sort_window):
        self._handler = model_handler
        self._layers = layers
        self._max_tokens = max_tokens_per_batch
        self._tokenizer = tokenizer
        self._window_tokens = max_tokens_per_batch * sort_window
        self._shared_model = shared.Shared()
        self._invalid = Metrics.counter(METRICS_NAMESPACE, "invalid_utf8_lines")
        self._sentences = Metrics.counter(METRICS_NAMESPACE, "sentences")
        self._tokens = Metrics.counter(METRICS_NAMESPACE, "tokens")
        self._batches = Metrics.counter(METRICS_NAMESPACE, "batches")
        self._batch_tokens = Metrics.distribution(METRICS_NAMESPACE, "batch_padded_tokens")

    def setup(self):
        from elmo_keras.embedder import select_layers

        self._select_layers = select_layers
        self._model = self._shared_model.acquire(self._handler.load_model)

    def start_bundle(self):
        self._pending = {}  # window -> [list of _Pending, padded tokens]

    def process(self, element, window=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
        if isinstance(element, (str, bytes)):
            file, line, text = None, None, element
        else:
            file, line, text = element
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as error:
                self._invalid.inc()
                where = "a sentence" if line is None else f"line {line} (0-based: line {line + 1} counting from 1)"
                _LOGGER.warning("%s: %s: not valid UTF-8 (%s at byte %d); the line is skipped",
                                file, where, error.reason, error.start)
                return
        tokens = split_sentence(text, self._tokenizer)
        buffer = self._pending.setdefault(window, [[], 0])
        buffer[0].append(_Pending(file, line, tokens, timestamp))
        buffer[1] += boundary_length(len(tokens))
        if buffer[1] >= self._window_tokens:
            del self._pending[window]
            yield from self._embed(buffer[0], window)

    def finish_bundle(self):
        pending, self._pending = self._pending, {}
        for window, (sentences, _) in pending.items():
            yield from self._embed(sentences, window)

    def _embed(self, sentences, window):
        time_steps = self._model.time_steps
        for batch in token_budget_batches([len(s.tokens) for s in sentences], self._max_tokens, time_steps):
            members = [sentences[i] for i in batch]
            vectors = self._model.embed([s.tokens for s in members])
            self._batches.inc()
            self._batch_tokens.update(len(members) * time_steps(max(len(s.tokens) for s in members)))
            for sentence, embedding in zip(members, vectors):
                self._sentences.inc()
                self._tokens.inc(len(sentence.tokens))
                record = {"file": sentence.file, "line": sentence.line, "tokens": sentence.tokens,
                          "embedding": self._select_layers(embedding, self._layers)}
                if self._layers == "top":
                    record["embedding"] = record["embedding"].copy()  # not a view of all layers
                yield WindowedValue(record, sentence.timestamp, (window,))


class EmbedSentences(beam.PTransform):
    """Embed sentences with ELMo; see the module docstring for input and output.

    Args:
        model_handler: `ElmoEmbedderHandler` or `ElmoSavedModelHandler` (any
            handler whose `load_model()` gives an object with
            `embed(token_lists)`); None for the bundled default model.
        layers: "all" (default), "top" or "average".
        max_tokens_per_batch: int. The budget of padded token positions per
            model call (default 8192, as `ElmoEmbedder`'s).
        tokenizer: "whitespace" (default), "punctuation" or "moses[:LANG]"
            (`elmo_keras.preprocessing.split`; Moses needs sacremoses on the workers).
        sort_window: int. Batches' worth of tokens sorted together by length.
    """

    def __init__(self, model_handler=None, layers="all", max_tokens_per_batch=DEFAULT_MAX_TOKENS_PER_BATCH,
                 tokenizer="whitespace", sort_window=DEFAULT_SORT_WINDOW, label=None):
        super().__init__(label)
        if layers not in LAYERS:
            raise ValueError(f"layers: expected one of {LAYERS}, found {layers!r}")
        check_positive_int(max_tokens_per_batch, "max_tokens_per_batch")
        check_positive_int(sort_window, "sort_window")
        self.tokenizer = check_splitter(tokenizer)
        if model_handler is None:
            from elmo_keras.beam.model_handler import ElmoEmbedderHandler

            model_handler = ElmoEmbedderHandler()
        self.model_handler = model_handler
        self.layers = layers
        self.max_tokens_per_batch = max_tokens_per_batch
        self.sort_window = sort_window

    def expand(self, pcoll):
        return pcoll | "Embed" >> beam.ParDo(_EmbedDoFn(self.model_handler, self.layers, self.max_tokens_per_batch,
                                                         self.tokenizer, self.sort_window))
