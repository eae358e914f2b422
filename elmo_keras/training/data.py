"""biLM pretraining batches, by their old import path: `WindowBatcher`, `make_tf_dataset`, `DataError`.

The data side of bilm-tf's `bin/train_elmo.py` lives in one module per
concern: `corpus` (the shards and the order sentences are read in), `rows`
(each batch row's pending sentences) and `batcher` (`WindowBatcher`, which
packs them into windows, and `make_tf_dataset`); see `batcher` for the
batches themselves. Like them, this module imports neither Keras nor TensorFlow.
"""

from elmo_keras.training.batcher import WindowBatcher, make_tf_dataset
from elmo_keras.training.vocab import DataError

__all__ = ["DataError", "WindowBatcher", "make_tf_dataset"]
