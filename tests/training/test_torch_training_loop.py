"""On the PyTorch backend an `Elmo` layer is a `torch.nn.Module`: a plain PyTorch loop trains its mix.

Runs only with KERAS_BACKEND=torch; `test_torch_backend.py` runs it in a child process on that backend.
"""

import keras
import numpy as np
import pytest
from keras.ops import convert_to_numpy as to_numpy

from conftest import FIXTURE_OPTIONS, FIXTURE_WEIGHTS
from elmo_keras import Elmo, batch_to_ids

if keras.backend.backend() != "torch":
    pytest.skip("needs the PyTorch backend (KERAS_BACKEND=torch): test_torch_backend.py runs it there",
                allow_module_level=True)

import torch  # noqa: E402  (the backend is PyTorch: torch is installed)

SENTENCES = [["The", "bank", "raised", "rates", "."], ["We", "sat", "by", "the", "river", "bank"], ["Hi"]]


def test_sgd_in_a_torch_loop_trains_the_mix_and_leaves_the_bilm_frozen():
    ids = batch_to_ids(SENTENCES)
    elmo = Elmo.from_files(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, dropout=0.0)
    # The target: the same biLM under another (fixed) mix of its layers.
    fixed = Elmo.from_files(FIXTURE_OPTIONS, FIXTURE_WEIGHTS, dropout=0.0, scalar_mix_parameters=[2.0, 0.0, -2.0])
    with torch.no_grad():
        target = fixed(ids)["elmo_representations"][0]
    elmo(ids)  # builds the layer: its variables become parameters of the module

    assert isinstance(elmo, torch.nn.Module)
    trainable = [p for p in elmo.parameters() if p.requires_grad]
    assert len(trainable) == 2 == len(elmo.trainable_weights)  # the mix's layer weights and scale
    frozen_before = [to_numpy(w).copy() for w in elmo.bilm.weights]
    mix_before = [to_numpy(w).copy() for w in elmo.trainable_weights]

    optimizer = torch.optim.SGD(trainable, lr=1.0)
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        representation = elmo(ids, training=True)["elmo_representations"][0]
        loss = torch.mean((representation - target) ** 2)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    assert all(later < earlier for earlier, later in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.6 * losses[0], losses
    # No gradient reaches the frozen biLM, and its weights are the loaded ones, bit for bit.
    assert all(p.grad is None for p in elmo.parameters() if not p.requires_grad)
    for before, w in zip(frozen_before, elmo.bilm.weights):
        np.testing.assert_array_equal(to_numpy(w), before, err_msg=w.path)
    # The optimizer stepped the Keras variables themselves.
    for before, w in zip(mix_before, elmo.trainable_weights):
        assert np.abs(to_numpy(w) - before).max() > 1e-3, w.path
