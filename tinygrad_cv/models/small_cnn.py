"""A small convolutional network for a user's own images (`train --dataset folder`)."""
from .. import nn


class SmallCNN(nn.Module):
    """Three conv blocks (conv-BN-ReLU-pool), global average pooling, a linear head.

    Takes (N, in_channels, H, W) images of any size of at least 8x8 and returns
    (N, num_classes) scores.
    """

    def __init__(self, num_classes, in_channels=3, width=32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width),
            nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width),
            nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.BatchNorm2d(4 * width),
            nn.ReLU(), nn.MaxPool2d(2),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(4 * width, num_classes)

    def forward(self, x):
        x = self.features(x)
        x = self.pool(x).flatten(1)
        return self.head(x)
