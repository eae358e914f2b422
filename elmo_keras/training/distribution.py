"""Where training steps run: a tf.distribute strategy, a keras.distribution, or one device.

`train` turns its `strategy` argument into a `_Distribution` (which strategy,
how many replicas, here and over all workers, and whether this process is the
chief that writes files), and works around what `fit` cannot do under a
strategy by itself.
"""

import contextlib
import json
import os

import keras


class _Distribution:
    """Where the steps run: the tf.distribute strategy or keras distribution, if any."""

    def __init__(self, strategy=None, keras_distribution=None):
        self.strategy = strategy
        self.keras_distribution = keras_distribution
        self.replicas = strategy.num_replicas_in_sync if strategy is not None else 1

    @property
    def local_replicas(self):
        if self.strategy is None:
            return 1
        return len(self.strategy.extended.worker_devices)

    @property
    def multi_worker(self):
        return self.local_replicas != self.replicas

    @property
    def is_chief(self):
        resolver = getattr(self.strategy, "cluster_resolver", None)
        if resolver is None:
            return True
        cluster = resolver.cluster_spec().as_dict()
        if not cluster:
            return True
        task_type, task_id = resolver.task_type, resolver.task_id
        return task_type == "chief" or (task_type == "worker" and task_id == 0 and "chief" not in cluster)

    def scope(self):
        if self.strategy is not None:
            return self.strategy.scope()
        if self.keras_distribution is not None:
            return self.keras_distribution.scope()
        return contextlib.nullcontext()


def _resolve_distribution(strategy):
    """Turn the `strategy` argument of `train` into a `_Distribution`."""
    if strategy == "none" or strategy is False:
        return _Distribution()
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if isinstance(strategy, tf.distribute.Strategy):
            return _Distribution(strategy=strategy)
        if strategy not in (None, "auto"):
            raise ValueError(f"strategy must be None, 'auto', 'none' or a tf.distribute.Strategy, found {strategy!r}")
        tf_config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
        workers = sum(len(v) for k, v in tf_config.get("cluster", {}).items() if k in ("chief", "worker"))
        if workers > 1:
            return _Distribution(strategy=tf.distribute.MultiWorkerMirroredStrategy())
        if len(tf.config.list_logical_devices("GPU")) > 1:
            return _Distribution(strategy=tf.distribute.MirroredStrategy())
        return _Distribution()
    if isinstance(strategy, (keras.distribution.DataParallel, keras.distribution.ModelParallel)):
        return _Distribution(keras_distribution=strategy)
    if strategy not in (None, "auto"):
        raise ValueError(f"strategy must be None, 'auto', 'none' or a keras.distribution DataParallel or ModelParallel "
                         f"on the {backend} backend, found {strategy!r}")
    if backend == "jax" and len(keras.distribution.list_devices()) > 1:
        return _Distribution(keras_distribution=keras.distribution.DataParallel())
    return _Distribution()


def _fit_under_strategy(model, distribution):
    """Work around two Keras (3.15) limits of `fit` under tf.distribute.

    - Before fitting under a strategy Keras peeks at a batch and reduces it
      over replicas, to build the model; the reduction fails for dict batches
      with `MultiWorkerMirroredStrategy`. The model is built already, and
      `fit` inside the strategy's scope takes the scope's strategy when the
      model has none of its own.
    - Over several workers Keras averages each step's logs along axis 0,
      which scalars do not have (tensorflow/tensorflow#72388); the step
      returns them as 1-element vectors, and the average is a scalar again.
    """
    if distribution.strategy is None:
        return
    model._distribute_strategy = None
    if distribution.multi_worker:
        train_step = model.train_step

        def train_step_with_vector_logs(data):
            return {name: keras.ops.reshape(value, (1,)) for name, value in train_step(data).items()}

        model.train_step = train_step_with_vector_logs

