"""After training: held-out perplexity, and the trained biLM as the original weight files.

bilm-tf's `bin/run_test.py` (`perplexity`) and `bin/dump_weights.py`
(`dump_weights`), reading a `train` save_dir (`options.json` + `checkpoint.h5`).
"""

import math
import os
import sys

from elmo_keras.models.bilm_files import save_bilm
from elmo_keras.models.language_model import LanguageModel
from elmo_keras.training.batcher import WindowBatcher
from elmo_keras.training.checkpoint import load_checkpoint
from elmo_keras.training.distribution import _Distribution
from elmo_keras.training.options import OPTIONS_FILE, TrainingOptions
from elmo_keras.training.stream import _dataset
from elmo_keras.training.vocab import Vocabulary


def _saved_options(save_dir, vocab_size=None):
    return TrainingOptions.from_json(os.path.join(save_dir, OPTIONS_FILE), n_tokens_vocab=vocab_size)


def perplexity(save_dir, vocab_file, test_prefix, batch_size=128, progress=False):
    """Held-out perplexity of a trained biLM (bilm-tf's `bin/run_test.py`).

    One pass over every sentence of `test_prefix` in file order: `batch_size`
    rows, each a continuous stream whose LSTM state is carried from window to
    window, full softmax. Every token, `</S>` included, is a target once,
    except the first `<S>` of each row.

    Args:
        save_dir: str. A `train` save_dir (options.json + checkpoint.h5).
        vocab_file: str. The training vocabulary.
        test_prefix: str. Glob of held-out shards.
        batch_size: int. Rows per batch (any; only throughput changes).
        progress: bool. Show Keras's progress bar.

    Returns a dict: `forward` and `backward` (exp of each direction's mean
    loss), `average` (exp of the mean of both, the number bilm-tf prints) and
    `tokens` (targets per direction).

    Example (after the module docstring's run):

        perplexity("run", "tests/data/bilm-tf/train/vocab.txt", "tests/data/bilm-tf/train/data.txt",
                   batch_size=2)
        # {'forward': 17.2, 'backward': 17.0, 'average': 17.1, 'tokens': 142}
    """
    vocab = Vocabulary(vocab_file)
    options = _saved_options(save_dir, vocab.size)
    model = LanguageModel(options, batch_size=batch_size)
    model.compile()
    load_checkpoint(model, save_dir, parts=("trainable",))
    def make_batcher():
        return WindowBatcher(test_prefix, vocab, batch_size=batch_size, unroll_steps=options.unroll_steps,
                             max_characters_per_token=options.char_cnn.max_characters_per_token,
                             shuffle=False, epochs=1)

    tokens = {}

    def batches():
        tokens.clear()  # an iteration that starts again counts again
        for batch in make_batcher():
            tokens["n"] = tokens.get("n", 0.0) + float(batch["perplexity_weights"].sum())
            yield batch

    probe = make_batcher()
    steps = probe.skip_batches(sys.maxsize)  # a pass without arrays: Keras wants the length
    data = _dataset(batches, probe.output_signature(), _Distribution(), batch_size)
    result = model.evaluate(data, steps=steps, return_dict=True, verbose=1 if progress else 0)
    forward, backward = float(result["forward_perplexity"]), float(result["backward_perplexity"])
    return {"forward": forward, "backward": backward,
            "average": float(math.exp(0.5 * (math.log(forward) + math.log(backward)))),
            "tokens": int(round(tokens.get("n", 0.0)))}


def dump_weights(save_dir, options_file, weight_file):
    """Write a trained biLM as the original options + weights files (bilm-tf's `bin/dump_weights.py`).

    The weights are the checkpoint's values bit for bit; `options_file` is the
    training options with `char_cnn.n_characters` 262, as prediction code
    requires. Both files appear atomically. `load_bilm(options_file,
    weight_file)` then gives the activations of the trained CharCNN + BiLSTM.

    Example (after the module docstring's run):

        dump_weights("run", "elmo_options.json", "elmo_weights.hdf5")
        embedder = elmo_keras.ElmoEmbedder("elmo_options.json", "elmo_weights.hdf5")
    """
    options = _saved_options(save_dir)
    model = LanguageModel(options, batch_size=1)
    load_checkpoint(model, save_dir, parts=("trainable",))
    save_bilm(model, options_file, weight_file, options=options)
