"""What `fit` and `evaluate` iterate: batches from a data position on, as one pipeline.

`_DataStream` restarts a `WindowBatcher` at a saved position and remembers the
position before every step, so a checkpoint can name the next batch although
tf.data reads ahead of the model; `_dataset` turns its batches into what Keras
iterates on the backend in use, split over the replicas of a tf.distribute strategy.
"""

import collections
import threading

import keras

from elmo_keras.training.batcher import dataset_from_generator


class _DataStream:
    """Batches from a data position on, restartable, remembering the position of every step.

    Keras may open an iterator, take a batch and open another (to build the
    model under tf.distribute), and tf.data reads ahead of the model; so each
    iteration starts its own batcher at the start position, and the position
    of a step is looked up afterwards instead of being the batcher's current one.
    """

    _KEEP = 256

    def __init__(self, make_batcher, start_step, start_state):
        self.make_batcher = make_batcher
        self.start_step = start_step
        self._positions = collections.OrderedDict([(start_step, start_state)])
        self._lock = threading.Lock()

    def batches(self):
        batcher = self.make_batcher()
        if self._positions[self.start_step] is not None:
            batcher.restore(self._positions[self.start_step])
        batches = iter(batcher)
        step = self.start_step
        while True:
            self._remember(step, batcher.state())
            batch = next(batches, None)
            if batch is None:
                return
            yield batch
            step += 1

    def _remember(self, step, state):
        with self._lock:
            self._positions[step] = state
            while len(self._positions) > self._KEEP:
                self._positions.popitem(last=False)

    def position(self, step):
        """The batcher state before the batch of `step` (counted from the start of training)."""
        with self._lock:
            if step in self._positions:
                return self._positions[step]
            known = [s for s in self._positions if s <= step]
            if not known:
                raise RuntimeError(f"no data position at or before step {step}")
            start = max(known)
            state = self._positions[start]
        batcher = self.make_batcher()
        if state is not None:
            batcher.restore(state)
        batcher.skip_batches(step - start)
        state = batcher.state()
        self._remember(step, state)
        return state


def _dataset(batches, signature, distribution, global_batch):
    """What `fit` iterates.

    On TensorFlow a tf.data pipeline that reads ahead (under tf.distribute
    split by rows over the replicas); on other backends the numpy batches as
    they come. `batches` is a generator function; every iteration of the
    pipeline calls it anew.

    Built on `batcher.dataset_from_generator`, as `make_tf_dataset` is, not
    on `make_tf_dataset` itself: that one iterates one batcher on from where
    it is, while training must restart at a saved data position on every
    iteration (`_DataStream.batches`), and this adds the split over replicas
    and the backends other than TensorFlow.
    """
    if keras.backend.backend() != "tensorflow":
        return ((batch,) for batch in batches())  # Keras wants (inputs,) from a generator
    import tensorflow as tf

    def pipeline():
        return dataset_from_generator(batches, signature)

    if distribution.strategy is None or distribution.replicas == 1:
        return pipeline().prefetch(2)
    replicas, local = distribution.replicas, distribution.local_replicas
    rows = global_batch // replicas

    def dataset_fn(context):
        # Every worker reads the same global batches and keeps the rows of
        # its own replicas, one element per local replica in replica order
        # (how tf.distribute hands a pipeline's elements to its devices), so
        # each replica always sees the same rows and carries their state.
        first = context.input_pipeline_id * local * rows

        def split(batch):
            return {name: tf.reshape(value[first:first + local * rows], (local, rows) + tuple(value.shape[1:]))
                    for name, value in batch.items()}

        return pipeline().map(split).unbatch().prefetch(2 * local)

    return distribution.strategy.distribute_datasets_from_function(dataset_fn)

