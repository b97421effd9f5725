"""The model's weights in one buffer: the layer layout scikit-learn uses."""

from __future__ import annotations

from nncompare.job import ModelSpec
from nncompare.model import layer_shapes, n_weights


def test_layer_layout_of_784_100_10():
    spec = ModelSpec()
    assert layer_shapes(spec, 784, 10) == [(784, 100), (100, 10), (100,), (10,)]
    assert n_weights(spec, 784, 10) == 79510  # 318,040 bytes as float32
