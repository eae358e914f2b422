"""elmo_keras: ELMo (deep contextualized word representations) for Keras 3.

Names load on first use, so that `import elmo_keras.training.data` (the data
pipeline) does not start Keras or TensorFlow. Yet `import elmo_keras` is enough
for `keras.saving.load_model` to find every class the package saves: they are
registered as soon as Keras is loaded (see `elmo_keras.registration`).

Example:

>>> import elmo_keras
>>> embedder = elmo_keras.ElmoEmbedder("tests/data/bilm-tf/options.json",
...                                    "tests/data/bilm-tf/lm_weights.hdf5")
>>> embedder.embed_sentence(["ELMo", "in", "Keras"]).shape
(3, 3, 32)
"""

import importlib

from elmo_keras import backends, registration

__version__ = "0.1.0"

_PUBLIC = {
    "ElmoEmbedder": "elmo_keras.embedder",
    "load_bilm": "elmo_keras.models.bilm_files",
    "save_bilm": "elmo_keras.models.bilm_files",
    "WeightFileError": "elmo_keras.io.hdf5",
    "OptionsError": "elmo_keras.io.options",
    "ElmoOptions": "elmo_keras.io.options",
    "load_options": "elmo_keras.io.options",
    "BiLSTM": "elmo_keras.layers",
    "CharCNN": "elmo_keras.layers",
    "ConcatProjectionMix": "elmo_keras.layers",
    "ElmoHead": "elmo_keras.layers",
    "Highway": "elmo_keras.layers",
    "LSTMCellWithProjection": "elmo_keras.layers",
    "ScalarMix": "elmo_keras.layers",
    "build_bilm": "elmo_keras.models.bilm",
    "Elmo": "elmo_keras.models.elmo",
    "ElmoBackbone": "elmo_keras.models.elmo_backbone",
    "ElmoTextEmbedder": "elmo_keras.models.elmo_text_embedder",
    "ElmoTextClassifier": "elmo_keras.models.elmo_text_classifier",
    "ElmoTextClassifierPreprocessor": "elmo_keras.models.elmo_text_classifier_preprocessor",
    "ElmoTokenClassifier": "elmo_keras.models.elmo_token_classifier",
    "ElmoTokenClassifierPreprocessor": "elmo_keras.models.elmo_token_classifier_preprocessor",
    "ElmoTokenizer": "elmo_keras.preprocessing.elmo_tokenizer",
    "LanguageModel": "elmo_keras.models.language_model",
    "train": "elmo_keras.training.train",
    "perplexity": "elmo_keras.training.evaluate",
    "dump_weights": "elmo_keras.training.evaluate",
    "build_vocabulary": "elmo_keras.training.vocab",
    "Vocabulary": "elmo_keras.training.vocab",
    "export_savedmodel": "elmo_keras.serving.export",
    "export_with_text_input": "elmo_keras.serving.export",
    "fetch_pretrained": "elmo_keras.pretrained",
    "batch_to_ids": "elmo_keras.preprocessing.char_ids",
    "tokens_to_char_ids": "elmo_keras.preprocessing.char_ids",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'elmo_keras' has no attribute {name!r}")
    try:
        module = importlib.import_module(_PUBLIC[name])
    except ImportError as e:
        # KERAS_BACKEND=torch without torch (say) fails deep inside `import keras`: say what to install.
        error = backends.missing_backend_error(e)
        if error is None:
            raise
        raise error from None
    value = getattr(module, name)
    globals()[name] = value
    # That import may have been the first of Keras; see `registration`.
    registration.register_if_keras_loaded()
    return value


def __dir__():
    return sorted(list(globals()) + __all__)


registration.register_on_keras_import()
