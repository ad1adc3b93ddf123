"""PyTorch reference twins of tinygrad_cv.models, layer for layer and key for key.

Each class has the architecture and the state-dict keys of our model of the same name, so
weights copy across one array at a time. Imported only when PyTorch is installed.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class MLP(nn.Module):
    """784 -> 256 -> ReLU -> 128 -> ReLU -> 10 (logits)."""

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
        return self.layers(self.flatten(x))


class LeNet5(nn.Module):
    """conv 1->6 5x5 pad 2 - pool - conv 6->16 5x5 - pool - 120 - 84 - 10 (logits), ReLU."""

    def __init__(self, in_channels=1, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, kernel_size=5, padding=2)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.pool2 = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.pool1(self.relu(self.conv1(x)))
        x = self.pool2(self.relu(self.conv2(x)))
        x = x.flatten(1)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)


class MnistCNN(nn.Module):
    """The Net of pytorch/examples mnist/main.py (returns log-probabilities)."""

    def __init__(self, in_channels=1, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


MODELS = {"mlp": MLP, "lenet5": LeNet5, "mnist_cnn": MnistCNN}


def build(name):
    """A freshly initialised PyTorch model by its command-line name."""
    return MODELS[name]()
