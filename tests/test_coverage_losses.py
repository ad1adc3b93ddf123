"""L1Loss, SmoothL1Loss, HuberLoss, BCELoss and KLDivLoss (and their F.* forms) against
torch in float64: every reduction, values at the kinks, both input gradients, and a
float64 gradient check."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv.nn import functional as F
from tests.helpers import gradcheck, requires_torch, torch, torch_parity

rng = np.random.default_rng(8)


def pair(*shape):
    x = rng.standard_normal(shape)
    y = rng.standard_normal(shape)
    flat_x, flat_y = x.reshape(-1), y.reshape(-1)
    flat_y[:3] = flat_x[:3]                     # d = 0
    flat_y[3:5] = flat_x[3:5] - 1.0             # |d| = beta = delta = 1 exactly
    return x, y


def probs(*shape):
    return rng.random(shape) * 0.98 + 0.01, rng.random(shape)


def log_probs(*shape):
    z = rng.standard_normal(shape)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def tF(m):
    return torch.nn.functional if m is torch else F


LOSSES = [
    ("l1", lambda m, x, y, r: tF(m).l1_loss(x, y, reduction=r), pair),
    ("smooth_l1", lambda m, x, y, r: tF(m).smooth_l1_loss(x, y, reduction=r), pair),
    ("smooth_l1_beta", lambda m, x, y, r: tF(m).smooth_l1_loss(x, y, reduction=r, beta=0.3),
     pair),
    ("smooth_l1_beta0", lambda m, x, y, r: tF(m).smooth_l1_loss(x, y, reduction=r, beta=0.0),
     pair),
    ("huber", lambda m, x, y, r: tF(m).huber_loss(x, y, reduction=r), pair),
    ("huber_delta", lambda m, x, y, r: tF(m).huber_loss(x, y, reduction=r, delta=0.4), pair),
    ("bce", lambda m, x, y, r: tF(m).binary_cross_entropy(x, y, reduction=r), probs),
    ("kl_div", lambda m, x, y, r: tF(m).kl_div(x, y.softmax(-1) if r != "sum" else y.softmax(
        -1) * 2, reduction=r), lambda *s: (log_probs(*s), rng.standard_normal(s))),
    ("kl_div_log_target", lambda m, x, y, r: tF(m).kl_div(x, y, reduction=r, log_target=True),
     lambda *s: (log_probs(*s), log_probs(*s))),
]
REDUCTIONS = ["mean", "sum", "none"]


@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("name,fn,make", LOSSES, ids=[c[0] for c in LOSSES])
def test_losses_match_torch(name, fn, make, reduction, device):
    if reduction == "batchmean" and not name.startswith("kl_div"):
        return
    x, y = make(4, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # kl_div's "mean" warning, in both
        torch_parity(lambda a, b: fn(tc, a, b, reduction), lambda a, b: fn(torch, a, b,
                                                                           reduction),
                     x, y, device=device, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("name,fn,make", LOSSES, ids=[c[0] for c in LOSSES])
def test_losses_gradcheck(name, fn, make):
    x, y = make(3, 4)
    if name in ("l1", "smooth_l1", "smooth_l1_beta", "smooth_l1_beta0", "huber", "huber_delta"):
        x, y = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))   # off the kinks
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gradcheck(lambda a, b: fn(tc, a, b, "mean"), x, y)


@requires_torch
@pytest.mark.parametrize("name,fn", [
    ("l1_weight", lambda m, x, y, w: tF(m).l1_loss(x, y, weight=w)),
    ("huber_weight", lambda m, x, y, w: tF(m).huber_loss(x, y, weight=w, reduction="sum")),
    ("bce_weight", lambda m, x, y, w: tF(m).binary_cross_entropy(x, y.clamp(0, 1) * 0 + 0.3,
                                                                   weight=w)),
])
def test_weighted_losses_match_torch(name, fn):
    x, y = probs(4, 3)
    w = rng.random((4, 3)) + 0.5
    a, b = tc.tensor(x, dtype=tc.float64, requires_grad=True), torch.tensor(x,
                                                                            requires_grad=True)
    out = fn(tc, a, tc.tensor(y, dtype=tc.float64), tc.tensor(w, dtype=tc.float64))
    ref = fn(torch, b, torch.tensor(y), torch.tensor(w))
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-12)
    out.backward()
    ref.backward()
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12)


@requires_torch
def test_bce_clamps_logs_at_minus_100_like_torch():
    x = np.array([0.0, 1.0, 0.5, 1e-50])
    y = np.array([1.0, 0.0, 1.0, 1.0])
    ours = F.binary_cross_entropy(tc.tensor(x, dtype=tc.float64), tc.tensor(y, dtype=tc.float64),
                                  reduction="none").numpy()
    ref = torch.nn.functional.binary_cross_entropy(torch.tensor(x), torch.tensor(y),
                                                   reduction="none").numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(tc.tensor([1.5]), tc.tensor([1.0]))
    with pytest.raises(ValueError, match="same size"):
        F.binary_cross_entropy(tc.tensor([0.5, 0.5]), tc.tensor([1.0]))


@requires_torch
@pytest.mark.parametrize("build", [
    lambda m: m.nn.L1Loss(), lambda m: m.nn.SmoothL1Loss(beta=0.5),
    lambda m: m.nn.HuberLoss(reduction="sum", delta=2.0), lambda m: m.nn.BCELoss(),
    lambda m: m.nn.KLDivLoss(reduction="batchmean"),
    lambda m: m.nn.KLDivLoss(reduction="sum", log_target=True),
])
def test_loss_modules_match_torch(build):
    ours, theirs = build(tc), build(torch)
    assert repr(ours) == repr(theirs)
    if isinstance(ours, tc.nn.KLDivLoss):
        x, y = log_probs(3, 4), log_probs(3, 4)
        if not ours.log_target:
            y = np.exp(y)
    elif isinstance(ours, tc.nn.BCELoss):
        x, y = probs(3, 4)
    else:
        x, y = pair(3, 4)
    torch_parity(ours, theirs, x, y, atol=1e-12, rtol=1e-10)
