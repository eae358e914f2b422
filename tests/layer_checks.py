"""`run_layer_test`: what every layer of the package must do beyond its maths (as keras-hub's `TestCase`).

The maths of each layer is checked against numpy in its own tests; this checks the Keras contract on the
backend the suite runs on (`test_jax_backend.py` runs the layer tests again on JAX):
- `from_config(get_config())` gives the same config;
- a functional model around the layer gives the same outputs after a `.keras` save and load, bit for bit (the
  same computation on the same weights), and the reloaded layer has the same config;
- a layer built from the config alone, given the saved weights, gives the same outputs bit for bit.
"""

import keras
import numpy as np


def _input_like(x):
    x = np.asarray(x)
    return keras.Input(shape=x.shape[1:], dtype=str(x.dtype))


def _assert_same(expected, got):
    keras.tree.map_structure(lambda e, g: np.testing.assert_array_equal(np.asarray(g), np.asarray(e)),
                             expected, got)


def run_layer_test(layer, input_data, tmp_path):
    """Check `layer` (not yet called) on `input_data` (an array or a dict of arrays, batch first)."""
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config

    inputs = keras.tree.map_structure(_input_like, input_data)
    model = keras.Model(inputs, layer(inputs))
    expected = model.predict(input_data, verbose=0)

    path = str(tmp_path / f"{layer.name}.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded.get_layer(layer.name)) is type(layer)
    assert reloaded.get_layer(layer.name).get_config() == config
    _assert_same(expected, reloaded.predict(input_data, verbose=0))

    clone_inputs = keras.tree.map_structure(_input_like, input_data)
    clone_model = keras.Model(clone_inputs, type(layer).from_config(config)(clone_inputs))
    clone_model.set_weights(model.get_weights())
    _assert_same(expected, clone_model.predict(input_data, verbose=0))
    return expected
