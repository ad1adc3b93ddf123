"""LeNet-5 (LeCun et al., 1998) for 28x28 inputs, with ReLU and max-pooling."""
from __future__ import annotations

from .. import nn


class LeNet5(nn.Module):
    """conv 1->6 5x5 (padding 2) - pool - conv 6->16 5x5 - pool - 120 - 84 - classes.

    The first convolution pads by 2 so that 28x28 MNIST digits see the original 32x32
    geometry; returns logits.
    """

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
