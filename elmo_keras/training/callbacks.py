"""The Keras callback of `train`: step count, progress bar, TensorBoard scalars, checkpoints."""

import collections
import os
import sys
import time

import keras
import numpy as np

from elmo_keras.training.checkpoint import save_checkpoint


class _Monitor(keras.callbacks.Callback):
    """Counts steps; shows progress, writes TensorBoard scalars and checkpoints.

    Args:
        optimizer, save_dir, distribution: what a checkpoint needs.
        step: int. The step count training starts from.
        total_steps: int. Where it ends (for the progress bar).
        checkpoint_every: int. Steps between checkpoints.
        tokens_per_step: int. Token positions per step, all replicas.
        progress: bool. Show a tqdm bar.
        log_every: int. Steps between TensorBoard scalars.

    `stream` (the `_DataStream` of the running fit call) is set by `train`.
    """

    def __init__(self, optimizer, save_dir, distribution, step, total_steps, checkpoint_every, tokens_per_step,
                 progress, log_every):
        super().__init__()
        self.optimizer = optimizer
        self.save_dir = save_dir
        self.distribution = distribution
        self.step = self.saved_step = step
        self.total_steps = total_steps
        self.checkpoint_every = checkpoint_every
        self.tokens_per_step = tokens_per_step
        self.log_every = log_every
        self.stream = None
        self.bar = self.writer = None
        if distribution.is_chief and progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total_steps, initial=step, desc="training", unit="step", file=sys.stderr)
        if distribution.is_chief:
            try:
                import tensorflow as tf

                self.writer = tf.summary.create_file_writer(os.path.join(save_dir, "logs", "train"))
            except ImportError:
                pass
        self._rate_start = None
        self._shown = 0.0

    def save(self, model):
        """Checkpoint `model` at the current step (on the chief)."""
        if self.distribution.is_chief:
            save_checkpoint(model, self.optimizer, self.save_dir, self.step, self.stream.position(self.step),
                            self.distribution)
        self.saved_step = self.step

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        # Plain floats (over several workers a step's logs are 1-element vectors).
        logs = {name: float(np.mean(value)) for name, value in (logs or {}).items()}
        now = time.time()
        if self._rate_start is None:  # timed from the end of the first step, which compiles
            self._rate_start = (now, self.step)
        start_time, start_step = self._rate_start
        tokens_per_second = (self.step - start_step) * self.tokens_per_step / max(now - start_time, 1e-9)
        if self.bar is not None:
            self.bar.update(1)
            if now - self._shown > 0.5 or self.step == self.total_steps:
                self._shown = now
                self.bar.set_postfix(collections.OrderedDict([
                    ("loss", f"{logs.get('loss', float('nan')):.3f}"),
                    ("ppl_fwd", f"{logs.get('forward_perplexity', float('nan')):.1f}"),
                    ("ppl_bwd", f"{logs.get('backward_perplexity', float('nan')):.1f}"),
                    ("tokens/s", f"{tokens_per_second:.0f}")]))
        if self.writer is not None and self.step % self.log_every == 0:
            import tensorflow as tf

            with self.writer.as_default(step=self.step):
                for name in ("loss", "forward_perplexity", "backward_perplexity"):
                    if name in logs:
                        tf.summary.scalar(name, logs[name])
                tf.summary.scalar("tokens_per_second", tokens_per_second)
        if self.step % self.checkpoint_every == 0:
            # `self.model` (not a reference kept elsewhere): on JAX, reading it
            # puts the state of the running epoch back into the variables.
            self.save(self.model)

    def close(self):
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()
