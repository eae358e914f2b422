"""keras-hub's `Backbone` as the base of `ElmoBackbone` where keras-hub is installed, plain Keras otherwise.

With the `keras-hub` extra (`pip install "elmo-keras[keras-hub]"`) the
package's backbone is a `keras_hub.models.Backbone`, so that keras-hub's
generic loaders (`keras_hub.models.Backbone.from_preset(folder)`) return it
and `save_to_preset` writes keras-hub's preset layout (`config.json`,
`model.weights.h5`, `metadata.json`). Without keras-hub, `Backbone` is a
`keras.Model` with the same constructor and config contract (`dtype`, and
`name`, `trainable` and `dtype` in `get_config`), so that every model of the
package builds, saves and loads the same either way.

What importing keras-hub costs (it imports TensorFlow and tensorflow-text
when they are installed, on every backend): measured with
`python -c "import keras; import keras_hub"` on a 2-core AMD EPYC, keras-hub
0.32.0: 0.3 s after Keras on TensorFlow, 2.0 s on PyTorch, 4.1 s on JAX.
"""

import importlib.util

import keras

KERAS_HUB_EXTRA = 'pip install "elmo-keras[keras-hub]"'



def require_keras_hub(what):
    """Return the keras_hub module; without it, ImportError naming `what` and the extra, in one line."""
    if keras_hub is None:
        raise ImportError(f"{what} needs keras-hub, which is not installed: {KERAS_HUB_EXTRA}")
    return keras_hub


if importlib.util.find_spec("keras_hub") is not None:
    import keras_hub
    # As submodules: when `import keras_hub` itself imports Keras, which loads the package's classes
    # (`elmo_keras.registration`), keras_hub's own attributes do not exist yet, its submodules do.
    from keras_hub import models as _models
    from keras_hub import tokenizers as _tokenizers

    Backbone = _models.Backbone
    Tokenizer = _tokenizers.Tokenizer
    Preprocessor = _models.Preprocessor
    TextClassifier = _models.TextClassifier
    Task = _models.Task
else:
    keras_hub = None

    class Backbone(keras.Model):
        """`keras.Model` with keras-hub `Backbone`'s `dtype` argument and config (keras-hub not installed)."""

        def __init__(self, *args, dtype=None, **kwargs):
            super().__init__(*args, **kwargs)
            if dtype is not None:
                self.dtype_policy = keras.dtype_policies.get(dtype)

        def get_config(self):
            return {"name": self.name, "trainable": self.trainable,
                    "dtype": keras.dtype_policies.serialize(self.dtype_policy)}

    class Tokenizer(keras.layers.Layer):
        """`keras.layers.Layer` with keras-hub `Tokenizer`'s `config_file` argument (keras-hub not installed)."""

        def __init__(self, *args, config_file="tokenizer.json", **kwargs):
            super().__init__(*args, **kwargs)
            self.config_file = config_file

        def get_config(self):
            return {**super().get_config(), "config_file": self.config_file}

    class Preprocessor(keras.layers.Layer):
        """Stands for keras-hub's `Preprocessor`, which the package's preprocessors need."""

        def __init__(self, *args, **kwargs):
            require_keras_hub(type(self).__name__)

    class Task(keras.Model):
        """Stands for keras-hub's `Task`, which the package's tasks need."""

        def __init__(self, *args, **kwargs):
            require_keras_hub(type(self).__name__)

    TextClassifier = Task
