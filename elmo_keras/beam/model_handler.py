"""Beam `ModelHandler`s for ELMo: load the biLM once per worker, embed batches of token lists.

Beam's `TFModelHandlerTensor` loads with `tf.keras.models.load_model`, which
Keras 3 refuses for a SavedModel; these handlers load the model themselves.
Both give, for a batch of token lists, one float32 array per sentence of
shape (layers, tokens, 2 * projection_dim), exactly as `ElmoEmbedder` does:
layer 0 is the char-CNN vector repeated for both directions, then each LSTM
layer; an empty sentence gives (layers, 0, dim).

- `ElmoEmbedderHandler(options_file, weight_file)` (or `model="small"`, or
  nothing for the bundled model) runs an `ElmoEmbedder` (token cache, packed
  rows, XLA): the faster one on CPUs.
- `ElmoSavedModelHandler(model_dir)` calls the `tokens` signature of a
  SavedModel written by `elmo_keras.export_savedmodel` (`elmo-keras export`):
  `model_dir` is the export folder (its highest version is used) or one
  version folder.

The model a handler loads embeds under a lock, so that the threads of one
worker process share one copy of it. The handlers work with Beam's own
`RunInference` (which batches by count: pass `max_batch_size`), and with
`elmo_keras.beam.EmbedSentences`, which batches by a token budget instead.

Example:

>>> handler = ElmoEmbedderHandler("tests/data/bilm-tf/options.json", "tests/data/bilm-tf/lm_weights.hdf5")
>>> model = handler.load_model()
>>> [result.inference.shape for result in handler.run_inference([["Hello", "world"], []], model)]
[(3, 2, 32), (3, 0, 32)]

Remote files (`gs://...`, any filesystem Beam knows) are copied to a local
temporary folder on the worker before loading; `model="original"` fetches the
released model on the worker (once per machine, into its cache).
"""

import os
import shutil
import tempfile
import threading

from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from elmo_keras.preprocessing.batching import boundary_length, padded_length
from elmo_keras.preprocessing.char_dic_ids import CHAR_DIC, WORD_DIC
from elmo_keras.serving.tokens_model import load_tokens_signature, pick_savedmodel_dir

METRICS_NAMESPACE = "elmo_keras"
# Files of an imported ELMoForManyLangs model beside its options.json.
DICTIONARIES = (CHAR_DIC, WORD_DIC)


def is_local_path(path):
    """Whether `path` is on the local filesystem (no scheme, or file://)."""
    return FileSystems.get_scheme(path) in (None, "file")


def resolve_savedmodel_dir(model_dir):
    """The SavedModel folder for `model_dir`: itself, or its highest all-digit version folder.

    `model_dir` may be TF Serving's model base path (`savedmodels/elmo`, as
    `elmo-keras export` writes it) or one version folder in it
    (`savedmodels/elmo/1`), on any Beam filesystem
    (`elmo_keras.serving.tokens_model.pick_savedmodel_dir`). Raises
    FileNotFoundError naming the folder.

    >>> from elmo_keras.pretrained import DEFAULT_MODEL_DIR
    >>> os.path.basename(resolve_savedmodel_dir(os.path.join(DEFAULT_MODEL_DIR, "savedmodel")))
    '1'
    """
    def match(pattern):
        try:
            return [metadata.path for metadata in FileSystems.match([pattern])[0].metadata_list]
        except Exception:  # noqa: BLE001 - Beam raises BeamIOError for a folder that is not there
            return []

    return pick_savedmodel_dir(model_dir, FileSystems.exists, match, FileSystems.join)


def _local_copy(path, folder):
    """`path` itself if local, else a copy of the file (any Beam filesystem) in the local `folder`."""
    if is_local_path(path):
        return path
    target = os.path.join(folder, path.rstrip("/").rsplit("/", 1)[-1])
    with FileSystems.open(path) as source, open(target, "wb") as out:
        shutil.copyfileobj(source, out)
    return target


class ElmoModel:
    """What the handlers' `load_model` returns: `embed(token_lists)` under a lock.

    Attributes: `num_layers` (char-CNN layer + LSTM layers), `dim`
    (2 * projection_dim) and `time_steps(n_tokens)`, the positions a batch
    whose longest sentence has n tokens is padded to (what the token budget
    counts; default the longest + 2).
    """

    def __init__(self, embed_fn, num_layers, dim, description, time_steps=boundary_length):
        self._embed_fn = embed_fn
        self._lock = threading.Lock()
        self.num_layers = num_layers
        self.dim = dim
        self.description = description
        self.time_steps = time_steps

    def embed(self, token_lists):
        """One float32 array (num_layers, len(tokens), dim) per token list, in order."""
        token_lists = [list(tokens) for tokens in token_lists]
        if not token_lists:
            return []
        with self._lock:
            return self._embed_fn(token_lists)

    def __repr__(self):
        return f"ElmoModel({self.description}, num_layers={self.num_layers}, dim={self.dim})"


class _ElmoHandler(ModelHandler):
    """What both handlers share: token lists in, `PredictionResult(tokens, array)` out."""

    def run_inference(self, batch, model, inference_args=None):
        """Embed `batch` (token lists) with the loaded `model`; one `PredictionResult` per sentence."""
        self.validate_inference_args(inference_args)
        return [PredictionResult(tokens, vectors) for tokens, vectors in zip(batch, model.embed(batch))]

    def validate_inference_args(self, inference_args):
        if inference_args:
            raise ValueError(f"{type(self).__name__} takes no inference_args, found {sorted(inference_args)}")

    def get_num_bytes(self, batch):
        return sum(len(token.encode("utf-8")) for tokens in batch for token in tokens)

    def get_metrics_namespace(self):
        return METRICS_NAMESPACE


class ElmoEmbedderHandler(_ElmoHandler):
    """Load an `ElmoEmbedder` from the original options/weights files on each worker.

    Args:
        options_file, weight_file: the original `options.json` and weights
            `.hdf5` (local or on any Beam filesystem); with neither and no
            `model`, the bundled default model.
        model: str or None. A released model name (`small`, `medium`,
            `original`, `original_5.5b`), fetched on the worker into its cache.
        jit_compile, token_cache_size, pack_sentences: as in `ElmoEmbedder`.
        **batching_kwargs: `min_batch_size`, `max_batch_size`, ... for Beam's
            `RunInference` (sentences per batch); `EmbedSentences` ignores them.
    """

    def __init__(self, options_file=None, weight_file=None, model=None, jit_compile=True,
                 token_cache_size=100_000, pack_sentences="auto", **batching_kwargs):
        from elmo_keras.pretrained import check_model_choice

        super().__init__(**batching_kwargs)
        check_model_choice(options_file, weight_file, model)
        self.options_file = options_file
        self.weight_file = weight_file
        self.model = model
        self.jit_compile = jit_compile
        self.token_cache_size = token_cache_size
        self.pack_sentences = pack_sentences

    def model_files(self):
        """(options_file, weight_file) on this machine: fetched, copied or the bundled ones."""
        from elmo_keras.pretrained import resolve_model_files

        options_file, weight_file = resolve_model_files(self.options_file, self.weight_file, self.model,
                                                        progress=False)
        if is_local_path(options_file) and is_local_path(weight_file):
            return options_file, weight_file
        folder = tempfile.mkdtemp(prefix="elmo_keras_model_")
        if not is_local_path(options_file):
            # An imported ELMoForManyLangs model reads its dictionaries from beside options.json.
            remote_folder = options_file.rstrip("/").rsplit("/", 1)[0]
            for name in DICTIONARIES:
                if FileSystems.exists(FileSystems.join(remote_folder, name)):
                    _local_copy(FileSystems.join(remote_folder, name), folder)
        return _local_copy(options_file, folder), _local_copy(weight_file, folder)

    def load_model(self):
        from elmo_keras.embedder import ElmoEmbedder

        options_file, weight_file = self.model_files()
        embedder = ElmoEmbedder(options_file, weight_file, jit_compile=self.jit_compile,
                                token_cache_size=self.token_cache_size, pack_sentences=self.pack_sentences)
        return ElmoModel(embedder.embed_batch, embedder.num_layers, embedder.dim,
                         f"ElmoEmbedder({weight_file})", time_steps=padded_length)


class ElmoSavedModelHandler(_ElmoHandler):
    """Load a SavedModel of `elmo_keras.export_savedmodel` with `tf.saved_model.load`; call `tokens`.

    The `tokens` signature takes the tokens padded with "" and their counts,
    and gives `word_emb` (the char-CNN vector) and `lstm_outputs1..n`; the
    handler stacks them as `ElmoEmbedder` does (layer 0 = `word_emb` twice).

    Args:
        model_dir: the export folder (TF Serving's base path; its highest
            version is used) or one version folder in it; local or on any
            filesystem TensorFlow reads.
        **batching_kwargs: `min_batch_size`, `max_batch_size`, ... for Beam's
            `RunInference`.

    Example:

    >>> import os
    >>> from elmo_keras.pretrained import DEFAULT_MODEL_DIR
    >>> handler = ElmoSavedModelHandler(os.path.join(DEFAULT_MODEL_DIR, "savedmodel"))
    >>> model = handler.load_model()
    >>> [v.shape for v in model.embed([["The", "bank", "."], []])]
    [(3, 3, 256), (3, 0, 256)]
    """

    def __init__(self, model_dir, **batching_kwargs):
        super().__init__(**batching_kwargs)
        self.model_dir = os.fspath(model_dir)

    def load_model(self):
        export_dir = resolve_savedmodel_dir(self.model_dir)
        embed, num_layers, dim = load_tokens_signature(export_dir)
        return ElmoModel(embed, num_layers, dim, f"SavedModel({export_dir})")
