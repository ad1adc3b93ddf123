"""F.affine_grid and F.grid_sample against torch (outputs, input and grid gradients, every
mode / padding_mode / align_corners), float64 gradient checks, and the PyTorch Spatial
Transformer Networks tutorial's model under both imports (one edit: its `.data.zero_()`
initialisation, since `.data` is the raw array here)."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv.nn import functional as F
from tests.helpers import gradcheck, requires_torch, torch, torch_parity

rng = np.random.default_rng(31)


def off_integer_grid(n, ho, wo, h, w, align_corners, spread=1.2):
    """Grid points whose pixel coordinates are >= 0.05 from an integer (bilinear's kinks)."""
    g = rng.uniform(-spread, spread, (n, ho, wo, 2))
    for axis, size in ((0, w), (1, h)):
        pix = (g[..., axis] + 1) / 2 * (size - 1) if align_corners else \
            ((g[..., axis] + 1) * size - 1) / 2
        frac = pix - np.floor(pix)
        pix = np.where(np.minimum(frac, 1 - frac) < 0.05, np.floor(pix) + 0.5, pix)
        g[..., axis] = pix * 2 / (size - 1) - 1 if align_corners else (pix * 2 + 1) / size - 1
    return g


CONFIGS = [(mode, pad, ac) for mode in ("bilinear", "nearest") for pad in ("zeros", "border")
           for ac in (False, True)]


@requires_torch
@pytest.mark.parametrize("mode,padding_mode,align_corners", CONFIGS)
def test_grid_sample_matches_torch(mode, padding_mode, align_corners, device):
    x = rng.standard_normal((2, 3, 5, 6))
    g = off_integer_grid(2, 4, 7, 5, 6, align_corners)
    kw = dict(mode=mode, padding_mode=padding_mode, align_corners=align_corners)
    torch_parity(lambda a, b: F.grid_sample(a, b, **kw),
                 lambda a, b: torch.nn.functional.grid_sample(a, b, **kw), x, g,
                 device=device, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("padding_mode,align_corners", [("zeros", False), ("zeros", True),
                                                        ("border", False)])
def test_grid_sample_gradcheck(padding_mode, align_corners):
    x = rng.standard_normal((1, 2, 4, 5))
    g = off_integer_grid(1, 3, 3, 4, 5, align_corners, spread=0.9)
    gradcheck(lambda a, b: F.grid_sample(a, b, padding_mode=padding_mode,
                                         align_corners=align_corners), x, g)


@requires_torch
@pytest.mark.filterwarnings("ignore:Since version 1.3.0, affine_grid")   # torch's, unit grids
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(2, 3, 4, 5), (2, 1, 1, 6)])
def test_affine_grid_matches_torch(align_corners, size):
    theta = rng.standard_normal((2, 2, 3))
    torch_parity(lambda t: F.affine_grid(t, size, align_corners=align_corners),
                 lambda t: torch.nn.functional.affine_grid(t, size,
                                                           align_corners=align_corners),
                 theta, atol=1e-13, rtol=1e-12)


def test_identity_transform_reproduces_the_image():
    x = tc.randn(2, 3, 6, 7, dtype=tc.float64)
    theta = tc.tensor(np.tile([[1.0, 0, 0], [0, 1.0, 0]], (2, 1, 1)), dtype=tc.float64)
    for ac in (False, True):
        out = F.grid_sample(x, F.affine_grid(theta, x.shape, align_corners=ac),
                            align_corners=ac)
        np.testing.assert_allclose(out.numpy(), x.numpy(), atol=1e-12)
    with pytest.raises(NotImplementedError, match="bicubic"):
        F.grid_sample(x, tc.zeros(2, 1, 1, 2, dtype=tc.float64), mode="bicubic")
    with pytest.raises(RuntimeError, match="same N"):
        F.grid_sample(x, tc.zeros(1, 1, 1, 2, dtype=tc.float64))


STN_SOURCE = '''
class Net(nn.Module):                       # PyTorch's "Spatial Transformer Networks" tutorial
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

        # Spatial transformer localization-network
        self.localization = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=7),
            nn.MaxPool2d(2, stride=2),
            nn.ReLU(True),
            nn.Conv2d(8, 10, kernel_size=5),
            nn.MaxPool2d(2, stride=2),
            nn.ReLU(True)
        )

        # Regressor for the 3 * 2 affine matrix
        self.fc_loc = nn.Sequential(
            nn.Linear(10 * 3 * 3, 32),
            nn.ReLU(True),
            nn.Linear(32, 3 * 2)
        )

        # Initialize the weights/bias with identity transformation
        # (the one edit: the tutorial writes `.weight.data.zero_()` and `.bias.data.copy_`;
        # here `.data` is the raw NumPy/CuPy array, so the same is done under no_grad)
        with torch.no_grad():
            self.fc_loc[2].weight.zero_()
            self.fc_loc[2].bias.copy_(torch.tensor([1, 0, 0, 0, 1, 0], dtype=torch.float))

    # Spatial transformer network forward function
    def stn(self, x):
        xs = self.localization(x)
        xs = xs.view(-1, 10 * 3 * 3)
        theta = self.fc_loc(xs)
        theta = theta.view(-1, 2, 3)

        grid = F.affine_grid(theta, x.size())
        x = F.grid_sample(x, grid)

        return x

    def forward(self, x):
        # transform the input
        x = self.stn(x)

        # Perform the usual forward pass
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 320)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)
'''


@requires_torch
def test_stn_tutorial_model_ports_with_one_edit():
    import warnings
    ns_t, ns_o = {}, {}
    exec("import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n" + STN_SOURCE,
         ns_t)
    exec("import tinygrad_cv as torch\nimport tinygrad_cv.nn as nn\n"
         "import tinygrad_cv.nn.functional as F\n" + STN_SOURCE, ns_o)
    torch.manual_seed(0)
    theirs = ns_t["Net"]().double().eval()
    ours = ns_o["Net"]().double().eval()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    with torch.no_grad():      # a non-identity transform, so grid_sample's grid matters
        theirs.fc_loc[2].weight.normal_(0, 0.05)
    ours.fc_loc[2].weight.data[...] = theirs.fc_loc[2].weight.detach().numpy()
    x = rng.standard_normal((3, 1, 28, 28))
    y = rng.integers(0, 10, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # torch's align_corners default warning
        out_r = theirs(torch.tensor(x))
    out = ours(tc.tensor(x, dtype=tc.float64))
    np.testing.assert_allclose(out.numpy(), out_r.detach().numpy(), rtol=1e-10, atol=1e-12)
    tc.nn.functional.nll_loss(out, tc.tensor(y)).backward()
    torch.nn.functional.nll_loss(out_r, torch.tensor(y)).backward()
    scale = max(float(p.grad.abs().max()) for p in theirs.parameters())
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-8,
                                   atol=1e-9 * scale, err_msg=name)
