"""A multi-layer perceptron: flatten, then Linear + ReLU layers, then a Linear to classes."""
from __future__ import annotations

from .. import nn


class MLP(nn.Module):
    """784 -> hidden sizes (ReLU after each) -> num_classes; returns logits."""

    def __init__(self, in_features=784, hidden_sizes=(256, 128), num_classes=10):
        super().__init__()
        self.flatten = nn.Flatten()
        layers, width = [], in_features
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        x = self.flatten(x)
        return self.layers(x)
