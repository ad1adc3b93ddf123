"""The CNN of pytorch/examples `mnist/main.py`, layer for layer and line for line."""
from __future__ import annotations

from .. import flatten, nn
from ..nn import functional as F


class MnistCNN(nn.Module):
    """conv 1->32 3x3, conv 32->64 3x3, max-pool 2, dropout, 9216->128, dropout, 128->10.

    Returns log-probabilities (log_softmax), as the original, so train it with
    `F.nll_loss`. Its state dict has the original's keys (conv1.weight, ..., fc2.bias).
    """

    def __init__(self, in_channels=1, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output
