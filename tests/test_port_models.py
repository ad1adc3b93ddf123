"""Port test: well-known model definitions, written once as PyTorch source text and run in
both frameworks with only the imports changed; forward, every gradient and one SGD step
compared in float64.

float64, not float32, on purpose: deep ReLU + BatchNorm nets put some ReLU inputs within
rounding of zero, where torch (oneDNN) and a correct engine can legitimately disagree by a
lot in single gradient elements in float32. In float64 such ties do not occur for these
inputs, so agreement to ~1e-10 is a real check.
"""
from __future__ import annotations

import importlib
import os
import sys
import types

import numpy as np
import pytest

from tests.helpers import requires_torch, torch

TORCH_IMPORTS = "import torch\nfrom torch import nn\nimport torch.nn.functional as F\n"
OUR_IMPORTS = ("import tinygrad_cv as torch\nfrom tinygrad_cv import nn\n"
               "import tinygrad_cv.nn.functional as F\n")

UNET = '''
class DoubleConv(nn.Module):
    def __init__(self, in_channels, out_channels, mid_channels=None):
        super().__init__()
        if not mid_channels:
            mid_channels = out_channels
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True))

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, in_channels, out_channels, bilinear=True):
        super().__init__()
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode='bilinear', align_corners=True)
            self.conv = DoubleConv(in_channels, out_channels, in_channels // 2)
        else:
            self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        diffY = x2.size()[2] - x1.size()[2]
        diffX = x2.size()[3] - x1.size()[3]
        x1 = F.pad(x1, [diffX // 2, diffX - diffX // 2, diffY // 2, diffY - diffY // 2])
        x = torch.cat([x2, x1], dim=1)
        return self.conv(x)


class UNet(nn.Module):
    def __init__(self, n_channels=3, n_classes=2, bilinear=True):
        super().__init__()
        factor = 2 if bilinear else 1
        self.inc = DoubleConv(n_channels, 8)
        self.down1 = Down(8, 16)
        self.down2 = Down(16, 32 // factor)
        self.up1 = Up(32, 16 // factor, bilinear)
        self.up2 = Up(16, 8, bilinear)
        self.outc = nn.Conv2d(8, n_classes, kernel_size=1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x = self.up1(x3, x2)
        x = self.up2(x, x1)
        return self.outc(x)
'''

SE_BLOCK = '''
class SELayer(nn.Module):
    def __init__(self, channel, reduction=4):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(channel, channel // reduction, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(channel // reduction, channel, bias=False),
            nn.Sigmoid())

    def forward(self, x):
        b, c, _, _ = x.size()
        y = self.avg_pool(x).view(b, c)
        y = self.fc(y).view(b, c, 1, 1)
        return x * y.expand_as(x)


class SENet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.se = SELayer(8)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        x = self.se(F.relu(self.conv(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1)
        return self.head(x)
'''

VGG_BLOCK = '''
def vgg_block(num_convs, in_channels, out_channels):
    layers = []
    for _ in range(num_convs):
        layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
        layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU())
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


class VGGNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(vgg_block(1, 3, 8), vgg_block(2, 8, 16), nn.Flatten(),
                                 nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Dropout(0.5),
                                 nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)
'''

MODELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "tinygrad_cv", "models")


def _models_source(name):
    """One of tinygrad_cv/models' files, as its PyTorch source (our imports swapped)."""
    sys.path.insert(0, os.path.join(os.path.dirname(MODELS_DIR), os.pardir, "benchmarks"))
    try:
        import torch_models
    finally:
        sys.path.pop(0)
    return torch_models.torch_source(name)


def _module(source, imports):
    module = types.ModuleType("port_test_model")
    exec(compile(imports + source, "<port test>", "exec"), module.__dict__)  # noqa: S102
    return module


CASES = {
    "unet_bilinear": (UNET, "UNet", dict(bilinear=True), (2, 3, 16, 16)),
    "unet_transposed": (UNET, "UNet", dict(bilinear=False), (2, 3, 18, 14)),
    "se_block": (SE_BLOCK, "SENet", {}, (3, 3, 8, 8)),
    "vgg_bn_block": (VGG_BLOCK, "VGGNet", {}, (2, 3, 16, 16)),
    "resnet20": ("resnet", "ResNet20", {}, (2, 3, 32, 32)),
    "mobilenet_v2": ("mobilenet", "MobileNetV2", {}, (2, 3, 32, 32)),
}


@requires_torch
@pytest.mark.parametrize("case", list(CASES))
def test_model_ported_by_changing_imports_matches_torch(case):
    import tinygrad_cv as tc
    source, cls, kwargs, shape = CASES[case]
    if "\n" not in source:     # a file of tinygrad_cv/models, and its PyTorch twin
        torch_mod = _module(_models_source(source), "")
        ours_mod = importlib.import_module(f"tinygrad_cv.models.{source}")
    else:
        torch_mod, ours_mod = _module(source, TORCH_IMPORTS), _module(source, OUR_IMPORTS)
    torch.manual_seed(0)
    ref = getattr(torch_mod, cls)(**kwargs).double()
    ours = getattr(ours_mod, cls)(**kwargs).to(dtype=tc.float64)
    ours.load_state_dict({k: tc.Tensor(v.detach().numpy(), dtype=tc.float64)
                          for k, v in ref.state_dict().items()})
    assert list(ours.state_dict()) == list(ref.state_dict())
    ref.eval() if case == "vgg_bn_block" else ref.train()   # no dropout randomness
    ours.train(ref.training)
    x = np.random.default_rng(1).standard_normal(shape)
    y = np.random.default_rng(2).integers(0, 5, shape[0])
    xt = torch.tensor(x, requires_grad=True)
    xo = tc.Tensor(x, dtype=tc.float64, requires_grad=True)
    out_t, out_o = ref(xt), ours(xo)
    np.testing.assert_allclose(out_o.numpy(), out_t.detach().numpy(), rtol=1e-10, atol=1e-10)
    if case.startswith("unet"):
        target = np.random.default_rng(2).integers(0, 2, (shape[0],) + shape[2:])
        loss_t = torch.nn.functional.cross_entropy(out_t, torch.tensor(target))
        loss_o = tc.nn.functional.cross_entropy(out_o, tc.Tensor(target))
    else:
        loss_t = torch.nn.functional.cross_entropy(out_t, torch.tensor(y))
        loss_o = tc.nn.functional.cross_entropy(out_o, tc.Tensor(y))
    opt_t = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    opt_o = tc.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    loss_t.backward()
    loss_o.backward()
    np.testing.assert_allclose(xo.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-10)
    for (name, p), (_, pt) in zip(ours.named_parameters(), ref.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), pt.grad.numpy(), rtol=1e-9, atol=1e-10,
                                   err_msg=name)
    opt_t.step()
    opt_o.step()
    for (name, b), (_, bt) in zip(ours.state_dict().items(), ref.state_dict().items()):
        np.testing.assert_allclose(b.numpy(), bt.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=name)
