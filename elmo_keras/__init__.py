"""elmo_keras: ELMo (deep contextualized word representations) for Keras 3.

Example:

>>> import elmo_keras
>>> embedder = elmo_keras.ElmoEmbedder("tests/data/bilm-tf/options.json",
...                                    "tests/data/bilm-tf/lm_weights.hdf5")
>>> embedder.embed_sentence(["ELMo", "in", "Keras"]).shape
(3, 3, 32)
"""

from elmo_keras.embedder import ElmoEmbedder
from elmo_keras.io.files import load_bilm, save_bilm
from elmo_keras.io.hdf5 import WeightFileError
from elmo_keras.io.options import OptionsError, load_options
from elmo_keras.layers import (BiLSTM, CharCNN, ConcatProjectionMix, Highway, LSTMCellWithProjection,
                               ScalarMix)
from elmo_keras.models.bilm import build_bilm
from elmo_keras.models.elmo import Elmo
from elmo_keras.preprocessing.char_ids import batch_to_ids, tokens_to_char_ids

__version__ = "0.1.0"

__all__ = [
    "BiLSTM", "CharCNN", "ConcatProjectionMix", "Elmo", "ElmoEmbedder", "Highway", "LSTMCellWithProjection",
    "OptionsError", "ScalarMix", "WeightFileError", "batch_to_ids", "build_bilm", "load_bilm", "load_options",
    "save_bilm", "tokens_to_char_ids",
]
