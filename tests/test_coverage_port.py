"""Port test: well-known building blocks written once, in PyTorch style, as source text;
the same text runs under `import torch` and under `import tinygrad_cv as torch` (the only
change), and the two models are compared for forward, every parameter gradient and one
optimizer step.

Float64 on purpose: deep ReLU + BatchNorm nets in float32 put some ReLU inputs within
rounding of zero, where torch (oneDNN) and a correct engine can legitimately disagree by a
lot in one gradient element; in float64 the two agree to ~1e-10.
"""
from __future__ import annotations

import numpy as np

from tests.helpers import requires_torch, torch

TORCH_IMPORTS = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n"
OUR_IMPORTS = ("import tinygrad_cv as torch\nimport tinygrad_cv.nn as nn\n"
               "import tinygrad_cv.nn.functional as F\n")

SOURCE = '''
class SEBlock(nn.Module):
    def __init__(self, c, r=4):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Linear(c, c // r, bias=False), nn.ReLU(inplace=True),
                                nn.Linear(c // r, c, bias=False), nn.Sigmoid())

    def forward(self, x):
        b, c, _, _ = x.size()
        y = self.pool(x).view(b, c)
        y = self.fc(y).view(b, c, 1, 1)
        return x * y.expand_as(x)


class InvertedResidual(nn.Module):          # MobileNetV2
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers += [nn.Conv2d(inp, hidden, 1, 1, 0, bias=False), nn.BatchNorm2d(hidden),
                       nn.ReLU6(inplace=True)]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
                   nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
                   nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class BasicBlock(nn.Module):                 # ResNet
    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class DoubleConv(nn.Module):                 # milesial's U-Net
    def __init__(self, in_channels, out_channels, mid_channels=None):
        super().__init__()
        if not mid_channels:
            mid_channels = out_channels
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid_channels), nn.ReLU(inplace=True),
            nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.double_conv(x)


class Up(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode='bilinear', align_corners=True)
        self.conv = DoubleConv(in_channels, out_channels, in_channels // 2)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        diffY = x2.size()[2] - x1.size()[2]
        diffX = x2.size()[3] - x1.size()[3]
        x1 = F.pad(x1, [diffX // 2, diffX - diffX // 2, diffY // 2, diffY - diffY // 2])
        x = torch.cat([x2, x1], dim=1)
        return self.conv(x)


class TinyUNet(nn.Module):
    def __init__(self, n_channels=3, n_classes=2):
        super().__init__()
        self.inc = DoubleConv(n_channels, 8)
        self.down1 = nn.Sequential(nn.MaxPool2d(2), DoubleConv(8, 16))
        self.up1 = Up(24, 8)
        self.outc = nn.Conv2d(8, n_classes, kernel_size=1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        return self.outc(self.up1(x2, x1))


class VGGBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(cin, cout, kernel_size=3, padding=1), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True), nn.Conv2d(cout, cout, kernel_size=3, padding=1),
            nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(kernel_size=2, stride=2))

    def forward(self, x):
        return self.features(x)


class MBV3Block(nn.Module):                  # MobileNetV3: hardswish, hard-sigmoid SE
    # (torch's float64 F.hardsigmoid backward rounds 1/6 to float32; relu6(x + 3) / 6 is
    # the same function without that, so the comparison stays at float64 precision)
    def __init__(self, c, hidden):
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(c, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
                                    nn.Hardswish(inplace=True))
        self.dw = nn.Sequential(nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden, bias=False),
                                nn.BatchNorm2d(hidden), nn.Hardswish(inplace=True))
        self.se_reduce = nn.Conv2d(hidden, hidden // 4, 1)
        self.se_expand = nn.Conv2d(hidden // 4, hidden, 1)
        self.project = nn.Sequential(nn.Conv2d(hidden, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        h = self.dw(self.expand(x))
        s = F.adaptive_avg_pool2d(h, 1)
        s = F.relu6(self.se_expand(F.relu(self.se_reduce(s))) + 3.0) / 6.0   # hard sigmoid
        return x + self.project(h * s)


class ShuffleUnit(nn.Module):                # ShuffleNetV2, stride 1
    def __init__(self, c):
        super().__init__()
        half = c // 2
        self.branch = nn.Sequential(
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True),
            nn.Conv2d(half, half, 3, 1, 1, groups=half, bias=False), nn.BatchNorm2d(half),
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True))
        self.shuffle = nn.ChannelShuffle(2)

    def forward(self, x):
        x1, x2 = x.chunk(2, dim=1)
        return self.shuffle(torch.cat((x1, self.branch(x2)), dim=1))


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim, layer_scale_init_value=1e-1):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(layer_scale_init_value * torch.ones((dim)))

    def forward(self, x):
        shortcut = x
        x = self.dwconv(x)
        x = x.permute(0, 2, 3, 1)
        x = self.pwconv2(self.act(self.pwconv1(self.norm(x))))
        x = self.gamma * x
        return shortcut + x.permute(0, 3, 1, 2)


class GNBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, padding_mode='reflect')
        self.gn = nn.GroupNorm(4, c)
        self.act = nn.SiLU(inplace=True)
        self.inorm = nn.InstanceNorm2d(c, affine=True)
        self.drop = nn.Dropout2d(0.0)

    def forward(self, x):
        y = self.act(self.gn(self.conv(x)))
        y = F.mish(self.inorm(y)) + F.elu(y, alpha=0.5)
        return self.drop(F.softplus(y, beta=2.0)) - F.gelu(x, approximate='tanh')


class SRHead(nn.Module):                     # ESPCN-style sub-pixel upsampling
    def __init__(self, c, r=2):
        super().__init__()
        self.conv = nn.Conv2d(c, 3 * r * r, 3, padding=1)
        self.shuffle = nn.PixelShuffle(r)
        self.act = nn.PReLU(3)
        self.pad = nn.ReplicationPad2d(1)

    def forward(self, x):
        y = self.act(self.shuffle(self.conv(x)))
        return F.interpolate(self.pad(y), size=(9, 11), mode='nearest')


class Zoo(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16),
                                  nn.ReLU(inplace=True))
        self.res = BasicBlock(16, 16)
        self.res_down = BasicBlock(16, 24, stride=2)
        self.se = SEBlock(24)
        self.ir = InvertedResidual(24, 24, 1, 4)
        self.ir_down = InvertedResidual(24, 32, 2, 2)
        self.mbv3 = MBV3Block(32, 48)
        self.shuffle = ShuffleUnit(32)
        self.convnext = ConvNeXtBlock(32)
        self.gn = GNBlock(32)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Dropout(0.0),
                                  nn.Linear(32, 10))

    def forward(self, x):
        x = self.se(self.res_down(self.res(self.stem(x))))
        x = self.gn(self.convnext(self.shuffle(self.mbv3(self.ir_down(self.ir(x))))))
        return self.head(x)
'''


def build(imports):
    namespace = {}
    exec(imports + SOURCE, namespace)
    return namespace


def twin_models(make):
    """The same model in both frameworks, float64, torch's initial weights in ours."""
    import tinygrad_cv as tc
    ours_ns, theirs_ns = build(OUR_IMPORTS), build(TORCH_IMPORTS)
    torch.manual_seed(0)
    theirs = make(theirs_ns).double()
    ours = make(ours_ns).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    return tc, ours, theirs


def compare(tc, ours, theirs, inputs, loss_fn, steps=2):
    opt = tc.optim.SGD(ours.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    ref = torch.optim.SGD(theirs.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    for step in range(steps):
        out = ours(*[tc.tensor(a, dtype=tc.float64) for a in inputs])
        out_r = theirs(*[torch.tensor(a) for a in inputs])
        np.testing.assert_allclose(out.numpy(), out_r.detach().numpy(), rtol=1e-10,
                                   atol=1e-11, err_msg=f"forward, step {step}")
        loss, loss_r = loss_fn(tc, out), loss_fn(torch, out_r)
        opt.zero_grad()
        ref.zero_grad()
        loss.backward()
        loss_r.backward()
        # float64 rounding, amplified through ~40 layers, measured against the largest
        # gradient (a BN bias feeding another BN has a gradient that is 0 in theory and
        # ~1e-17 of rounding in both frameworks)
        scale = max(float(np.abs(q.grad.numpy()).max()) for q in theirs.parameters())
        for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-8,
                                       atol=1e-8 * scale, err_msg=f"grad of {name}, step {step}")
        opt.step()
        ref.step()
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)
    ours.eval()
    theirs.eval()
    out = ours(*[tc.tensor(a, dtype=tc.float64) for a in inputs])
    with torch.no_grad():
        out_r = theirs(*[torch.tensor(a) for a in inputs])
    np.testing.assert_allclose(out.numpy(), out_r.numpy(), rtol=1e-9, atol=1e-11,
                               err_msg="eval forward")


def _ce(m, out):
    target = m.tensor(np.arange(out.shape[0]) % out.shape[1])
    return m.nn.functional.cross_entropy(out, target)


def _sq(m, out):
    return ((out + 1) ** 2).mean()


@requires_torch
def test_block_zoo_ports_unchanged():
    rng = np.random.default_rng(0)
    tc, ours, theirs = twin_models(lambda ns: ns["Zoo"]())
    compare(tc, ours, theirs, [rng.standard_normal((3, 3, 16, 16))], _ce)


@requires_torch
def test_unet_with_bilinear_upsample_pad_and_cat_ports_unchanged():
    rng = np.random.default_rng(1)
    tc, ours, theirs = twin_models(lambda ns: ns["TinyUNet"]())
    compare(tc, ours, theirs, [rng.standard_normal((2, 3, 11, 13))], _sq)


@requires_torch
def test_vgg_block_and_subpixel_head_port_unchanged():
    rng = np.random.default_rng(2)
    tc, ours, theirs = twin_models(
        lambda ns: ns["nn"].Sequential(ns["VGGBlock"](3, 8), ns["SRHead"](8)))
    compare(tc, ours, theirs, [rng.standard_normal((2, 3, 8, 10))], _sq)
