"""VGG-11 with BatchNorm (Simonyan & Zisserman, 2015) for 32x32 input, as pytorch-cifar's:
conv-BN-ReLU stacks and max-pools down to 1x1, then one Linear."""
from __future__ import annotations

from .. import nn

CFG_VGG11 = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]


class VGG11BN(nn.Module):
    """`width` scales every stage: 1.0 is the original 64-512 channels; the default 0.5
    (32-256) trains in reasonable time on a CPU."""

    def __init__(self, num_classes=10, in_channels=3, width=0.5):
        super().__init__()
        layers, channels = [], in_channels
        for v in CFG_VGG11:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                out = max(8, int(v * width))
                layers += [nn.Conv2d(channels, out, kernel_size=3, padding=1),
                           nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
                channels = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        out = self.features(x)
        out = out.view(out.size(0), -1)
        out = self.classifier(out)
        return out
