"""The model: scikit-learn's ``MLPClassifier``, with its parameters living in one float32 buffer.

scikit-learn's stochastic optimisers update ``coefs_`` and ``intercepts_`` in place, so once
those arrays are views into one contiguous buffer, reading or replacing every weight is a
single 318 KB copy (784-100-10) and the buffer itself is what travels between processes.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.neural_network import MLPClassifier

from nncompare.job import ModelSpec

WEIGHT_DTYPE = np.float32


def make_model(spec: ModelSpec) -> MLPClassifier:
    """A fresh classifier; its own ``RandomState`` so shuffles differ from epoch to epoch."""
    return MLPClassifier(
        hidden_layer_sizes=spec.hidden_layer_sizes,
        activation=spec.activation,
        solver=spec.solver,
        batch_size=spec.batch_size,
        learning_rate_init=spec.learning_rate_init,
        alpha=spec.alpha,
        shuffle=True,
        random_state=np.random.RandomState(spec.seed),
    )


def layer_shapes(spec: ModelSpec, n_features: int, n_classes: int) -> list[tuple[int, ...]]:
    """Shapes of the parameters in scikit-learn's order: all ``coefs_``, then all ``intercepts_``."""
    n_out = 1 if n_classes == 2 else n_classes
    units = [n_features, *spec.hidden_layer_sizes, n_out]
    coefs = [(a, b) for a, b in zip(units[:-1], units[1:])]
    return coefs + [(b,) for b in units[1:]]


def n_weights(spec: ModelSpec, n_features: int, n_classes: int) -> int:
    return int(sum(np.prod(s) for s in layer_shapes(spec, n_features, n_classes)))


def bind_flat(model: MLPClassifier) -> np.ndarray:
    """Move a fitted model's parameters into one float32 buffer and make them views of it."""
    params = model.coefs_ + model.intercepts_
    flat = np.empty(sum(p.size for p in params), dtype=WEIGHT_DTYPE)
    views, offset = [], 0
    for p in params:
        view = flat[offset : offset + p.size].reshape(p.shape)
        view[...] = p
        views.append(view)
        offset += p.size
    n = len(model.coefs_)
    model.coefs_, model.intercepts_ = views[:n], views[n:]
    return flat


def prime(model: MLPClassifier, x: np.ndarray, y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Let scikit-learn set up a model without keeping what it learned; returns its flat buffer.

    Used where a model must exist before it receives weights (the evaluator, or a worker
    that replaces a lost one): a one-sample ``partial_fit`` builds every attribute, then the
    optimiser state is dropped so the next ``partial_fit`` starts it afresh.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "batch_size larger than sample size"
        model.partial_fit(x[:1], y[:1], classes=classes)
    flat = bind_flat(model)
    del model._optimizer
    model.n_iter_ = 0
    return flat


class Evaluator:
    """Test-set accuracy of a weight buffer, through scikit-learn's own ``predict``."""

    def __init__(self, spec: ModelSpec, x_test: np.ndarray, y_test: np.ndarray, classes: np.ndarray):
        self.x_test, self.y_test = x_test, y_test
        self.model = make_model(spec)
        self.flat = prime(self.model, x_test, y_test, classes)

    def accuracy(self, weights: np.ndarray) -> float:
        self.flat[...] = weights
        return float(np.mean(self.model.predict(self.x_test) == self.y_test))
