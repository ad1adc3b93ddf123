"""Rosenblatt's perceptron: the first learning machine, on raw arrays.

It predicts `w . x + b > 0` and, on each mistake, moves the boundary toward the
misclassified example: `w += lr * (target - prediction) * x`. On linearly separable
data it stops making mistakes after finitely many updates (the convergence theorem).
"""
from __future__ import annotations

import numpy as np

from ..random import generator_for
from ..tensor import Tensor


def _host(x):
    return x.numpy() if isinstance(x, Tensor) else np.asarray(x)


class Perceptron:
    """A binary linear classifier trained by the perceptron rule.

    `fit(X, y)` takes X of shape (N, features) (images are flattened) and labels y in
    {0, 1} (or booleans); `predict(X)` returns 0/1 labels.
    """

    def __init__(self, in_features=784, lr=1.0, epochs=10, shuffle=True):
        self.in_features = in_features
        self.lr = lr
        self.epochs = epochs
        self.shuffle = shuffle
        self.weight = np.zeros(in_features, dtype=np.float64)
        self.bias = 0.0
        self.mistakes_per_epoch = []

    def _features(self, X):
        X = _host(X).astype(np.float64, copy=False)
        X = X.reshape(X.shape[0], -1)
        if X.shape[1] != self.in_features:
            raise ValueError(f"Perceptron: inputs have {X.shape[1]} features but the model "
                             f"expects {self.in_features}")
        return X

    def decision_function(self, X):
        """w . x + b for each row of X."""
        return self._features(X) @ self.weight + self.bias

    def predict(self, X):
        return (self.decision_function(X) > 0).astype(np.int64)

    def fit(self, X, y, epochs=None, verbose=False):
        """Run the perceptron rule for `epochs` passes (stopping early once none is wrong)."""
        X = self._features(X)
        y = _host(y).astype(np.int64).reshape(-1)
        if len(y) != len(X):
            raise ValueError(f"Perceptron.fit: {len(X)} inputs but {len(y)} labels")
        if not np.isin(y, (0, 1)).all():
            raise ValueError("Perceptron.fit: labels must be 0 or 1")
        rng = generator_for("cpu")
        self.mistakes_per_epoch = []
        for epoch in range(epochs or self.epochs):
            order = rng.permutation(len(X)) if self.shuffle else np.arange(len(X))
            mistakes = 0
            for i in order:
                predicted = 1 if X[i] @ self.weight + self.bias > 0 else 0
                if predicted != y[i]:
                    step = self.lr * (y[i] - predicted)
                    self.weight += step * X[i]
                    self.bias += step
                    mistakes += 1
            self.mistakes_per_epoch.append(mistakes)
            if verbose:
                print(f"epoch {epoch + 1}: {mistakes} mistakes")
            if mistakes == 0:
                break
        return self

    def score(self, X, y):
        """Accuracy on (X, y)."""
        return float((self.predict(X) == _host(y).reshape(-1)).mean())
