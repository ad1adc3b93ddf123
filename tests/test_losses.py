"""Losses: every loss and reduction against PyTorch, float64 gradient checks, stability
with huge logits, and clear errors for bad targets."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv import nn
from tinygrad_cv.nn import functional as F
from tests.helpers import gradcheck, requires_torch, torch_parity

try:
    import torch
    import torch.nn.functional as TF
except ImportError:
    torch = TF = None

REDUCTIONS = ["mean", "sum", "none"]
rng = np.random.default_rng(0)


def _logits(*shape, scale=2.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _labels(n_classes, *shape, ignore_some=False):
    labels = rng.integers(0, n_classes, size=shape).astype(np.int64)
    if ignore_some:
        labels.reshape(-1)[::3] = -100
    return labels


def _tc_weight(w, device="cpu"):
    return None if w is None else tc.Tensor(w, device=device)


def _th_weight(w):
    return None if w is None else torch.tensor(w)


# ----------------------------------------------------------------------------- cross-entropy

@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_some", [False, True])
def test_cross_entropy_matches_torch(reduction, label_smoothing, weighted, ignore_some, device):
    n, c = 7, 5
    w = rng.uniform(0.2, 2.0, c).astype(np.float32) if weighted else None
    kwargs = dict(reduction=reduction, label_smoothing=label_smoothing)
    torch_parity(lambda x, t: F.cross_entropy(x, t, weight=_tc_weight(w, device), **kwargs),
                 lambda x, t: TF.cross_entropy(x, t, weight=_th_weight(w), **kwargs),
                 _logits(n, c), _labels(c, n, ignore_some=ignore_some), device=device)


@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_spatial_targets_match_torch(reduction, device):
    w = rng.uniform(0.5, 1.5, 4).astype(np.float32)
    torch_parity(lambda x, t: F.cross_entropy(x, t, weight=_tc_weight(w, device),
                                              reduction=reduction, label_smoothing=0.1),
                 lambda x, t: TF.cross_entropy(x, t, weight=_th_weight(w), reduction=reduction,
                                               label_smoothing=0.1),
                 _logits(2, 4, 3, 5), _labels(4, 2, 3, 5, ignore_some=True), device=device)


@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
def test_cross_entropy_probability_targets_match_torch(reduction, label_smoothing, device):
    probs = rng.dirichlet(np.ones(6), size=4).astype(np.float32)
    w = rng.uniform(0.5, 1.5, 6).astype(np.float32)
    kwargs = dict(reduction=reduction, label_smoothing=label_smoothing)
    # Gradients flow into both the logits and the (float) target, in both frameworks.
    torch_parity(lambda x, p: F.cross_entropy(x, p, weight=_tc_weight(w, device), **kwargs),
                 lambda x, p: TF.cross_entropy(x, p, weight=_th_weight(w), **kwargs),
                 _logits(4, 6), probs, device=device)


@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_unbatched_matches_torch(reduction, device):
    torch_parity(lambda x, t: F.cross_entropy(x, t, reduction=reduction),
                 lambda x, t: TF.cross_entropy(x, t, reduction=reduction),
                 _logits(5), np.array(3, dtype=np.int64), device=device)


@requires_torch
def test_cross_entropy_module_matches_torch(device):
    w = rng.uniform(0.5, 1.5, 5).astype(np.float32)
    ours = nn.CrossEntropyLoss(weight=tc.Tensor(w, device=device), ignore_index=2, label_smoothing=0.05)
    theirs = torch.nn.CrossEntropyLoss(weight=torch.tensor(w), ignore_index=2,
                                       label_smoothing=0.05)
    torch_parity(ours, theirs, _logits(9, 5), _labels(5, 9), device=device)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    assert repr(ours) == repr(theirs) == "CrossEntropyLoss()"


@requires_torch
def test_cross_entropy_all_ignored_mean_is_nan_like_torch(device):
    x, t = _logits(3, 4), np.full(3, -100, dtype=np.int64)
    ours = F.cross_entropy(tc.Tensor(x, device=device), tc.Tensor(t, device=device)).item()
    theirs = TF.cross_entropy(torch.tensor(x), torch.tensor(t)).item()
    assert np.isnan(ours) and np.isnan(theirs)


def test_cross_entropy_backward_is_softmax_minus_onehot_over_n(device):
    x = tc.Tensor(_logits(6, 4), requires_grad=True, device=device)
    t = _labels(4, 6)
    F.cross_entropy(x, tc.Tensor(t, device=device)).backward()
    softmax = np.exp(x.numpy()) / np.exp(x.numpy()).sum(1, keepdims=True)
    expected = (softmax - np.eye(4)[t]) / 6
    np.testing.assert_allclose(x.grad.numpy(), expected, atol=1e-6)


@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_huge_logits_finite_and_correct(reduction, device):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0], [3.0, 1e4, -1e4]], dtype=np.float32)
    t = np.array([0, 2, 1], dtype=np.int64)
    xt = tc.Tensor(x, requires_grad=True, device=device)
    loss = F.cross_entropy(xt, tc.Tensor(t, device=device), reduction=reduction, label_smoothing=0.1)
    loss.sum().backward()
    assert np.all(np.isfinite(loss.numpy())) and np.all(np.isfinite(xt.grad.numpy()))
    torch_parity(lambda a, b: F.cross_entropy(a, b, reduction=reduction, label_smoothing=0.1),
                 lambda a, b: TF.cross_entropy(a, b, reduction=reduction, label_smoothing=0.1),
                 x, t, rtol=1e-5, atol=1e-3, device=device)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_gradcheck(reduction, device):
    w = tc.Tensor(rng.uniform(0.5, 1.5, 4), dtype=np.float64, device=device)
    t = _labels(4, 5, ignore_some=True)
    gradcheck(lambda x, tt: F.cross_entropy(x, tt, weight=w, reduction=reduction,
                                            label_smoothing=0.2),
              rng.standard_normal((5, 4)), t, device=device)
    gradcheck(lambda x, p: F.cross_entropy(x, p, reduction=reduction, label_smoothing=0.1),
              rng.standard_normal((3, 4, 2)), rng.dirichlet(np.ones(4), size=(3, 2)).transpose(0, 2, 1),
              device=device)


# ----------------------------------------------------------------------------- nll

@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_matches_torch(reduction, weighted, device):
    w = rng.uniform(0.2, 2.0, 5).astype(np.float32) if weighted else None
    logp = np.log(rng.dirichlet(np.ones(5), size=8)).astype(np.float32)
    torch_parity(lambda x, t: F.nll_loss(x, t, weight=_tc_weight(w, device), reduction=reduction),
                 lambda x, t: TF.nll_loss(x, t, weight=_th_weight(w), reduction=reduction),
                 logp, _labels(5, 8, ignore_some=True), device=device)
    torch_parity(lambda x, t: nn.NLLLoss(reduction=reduction)(x, t),
                 lambda x, t: torch.nn.NLLLoss(reduction=reduction)(x, t),
                 _logits(2, 5, 3), _labels(5, 2, 3), device=device)


def test_nll_loss_gradcheck(device):
    gradcheck(lambda x, t: F.nll_loss(x, t, reduction="sum"), rng.standard_normal((6, 3)),
              _labels(3, 6, ignore_some=True), device=device)


def test_log_softmax_then_nll_equals_cross_entropy(device):
    x, t = tc.Tensor(_logits(5, 4), device=device), tc.Tensor(_labels(4, 5), device=device)
    np.testing.assert_allclose(F.nll_loss(F.log_softmax(x, dim=1), t).item(),
                               F.cross_entropy(x, t).item(), rtol=1e-6)


# ----------------------------------------------------------------------------- mse / bce

@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_matches_torch(reduction, device):
    torch_parity(lambda a, b: F.mse_loss(a, b, reduction=reduction),
                 lambda a, b: TF.mse_loss(a, b, reduction=reduction),
                 _logits(4, 3), _logits(4, 3), device=device)
    torch_parity(lambda a, b: nn.MSELoss(reduction=reduction)(a, b),
                 lambda a, b: torch.nn.MSELoss(reduction=reduction)(a, b),
                 _logits(2, 3, 2), _logits(2, 3, 2), device=device)


@requires_torch
def test_mse_loss_broadcasting_warns_and_matches_torch(device):
    with pytest.warns(UserWarning, match="different to the input size"):
        torch_parity(F.mse_loss, TF.mse_loss, _logits(4, 1), _logits(4), device=device)


def test_mse_loss_gradcheck(device):
    gradcheck(lambda a, b: F.mse_loss(a, b), rng.standard_normal((3, 4)),
              rng.standard_normal((3, 4)), device=device)


@requires_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("with_weight", [False, True])
@pytest.mark.parametrize("with_pos_weight", [False, True])
def test_bce_with_logits_matches_torch(reduction, with_weight, with_pos_weight, device):
    w = rng.uniform(0.5, 2.0, (1, 3)).astype(np.float32) if with_weight else None
    pw = rng.uniform(0.5, 3.0, 3).astype(np.float32) if with_pos_weight else None
    y = rng.integers(0, 2, (5, 3)).astype(np.float32)
    y[0] = 0.3   # soft targets too
    torch_parity(
        lambda x, t: F.binary_cross_entropy_with_logits(x, t, _tc_weight(w, device),
                                                        reduction=reduction,
                                                        pos_weight=_tc_weight(pw, device)),
        lambda x, t: TF.binary_cross_entropy_with_logits(x, t, _th_weight(w),
                                                         reduction=reduction,
                                                         pos_weight=_th_weight(pw)),
        _logits(5, 3), y, device=device)
    ours = nn.BCEWithLogitsLoss(weight=_tc_weight(w, device), reduction=reduction,
                                pos_weight=_tc_weight(pw, device))
    theirs = torch.nn.BCEWithLogitsLoss(weight=_th_weight(w), reduction=reduction,
                                        pos_weight=_th_weight(pw))
    torch_parity(ours, theirs, _logits(5, 3), y, device=device)
    assert list(ours.state_dict()) == list(theirs.state_dict())


@requires_torch
def test_bce_with_logits_huge_logits_finite_and_correct(device):
    x = np.array([1e4, -1e4, 1e4, -1e4, 0.0], dtype=np.float32)
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.5], dtype=np.float32)
    pw = np.array([2.0], dtype=np.float32)
    torch_parity(lambda a, b: F.binary_cross_entropy_with_logits(a, b, pos_weight=tc.Tensor(pw, device=device)),
                 lambda a, b: TF.binary_cross_entropy_with_logits(a, b, pos_weight=torch.tensor(pw)),
                 x, y, rtol=1e-5, atol=1e-3, device=device)


def test_bce_with_logits_gradcheck(device):
    w = rng.uniform(0.5, 2.0, (1, 3))
    pw = rng.uniform(0.5, 3.0, 3)
    gradcheck(lambda x, y, ww, p: F.binary_cross_entropy_with_logits(x, y, ww, pos_weight=p),
              rng.standard_normal((4, 3)), rng.uniform(0, 1, (4, 3)), w, pw, device=device)


# ----------------------------------------------------------------------------- errors

@pytest.mark.parametrize("bad", [10, -1, 57])
def test_out_of_range_target_raises_before_computing(bad, device):
    x = tc.Tensor(_logits(3, 10), requires_grad=True, device=device)
    t = tc.Tensor(np.array([1, bad, 2], dtype=np.int64), device=device)
    with pytest.raises(IndexError, match=f"target {bad} is out of bounds.*10 classes"):
        F.cross_entropy(x, t)
    with pytest.raises(IndexError, match="nll_loss"):
        nn.NLLLoss()(x, t)
    assert x.grad is None


def test_target_shape_and_dtype_errors():
    x = tc.Tensor(_logits(4, 3))
    with pytest.raises(ValueError, match=r"expected target of shape \(4,\).*\(5,\)"):
        F.cross_entropy(x, tc.Tensor(np.zeros(5, dtype=np.int64)))
    with pytest.raises(ValueError, match="probability targets"):
        F.cross_entropy(x, tc.Tensor(np.zeros((4, 2), dtype=np.float32)))
    with pytest.raises(ValueError, match="weight has shape"):
        F.cross_entropy(x, tc.Tensor(np.zeros(4, dtype=np.int64)), weight=tc.ones(4))
    with pytest.raises(ValueError, match="reduction"):
        nn.CrossEntropyLoss(reduction="avg")
    with pytest.raises(ValueError, match="same as input size"):
        F.binary_cross_entropy_with_logits(x, tc.zeros(4, 1))


@requires_torch
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_minus_inf_logit_of_another_class_keeps_the_loss_finite_as_torch(reduction):
    import torch
    Tensor = tc.Tensor
    """A -inf logit (a masked class) in a non-target position: torch's losses gather the
    target entry, so they stay finite; 0 * -inf must not turn them into NaN."""
    z = np.array([[1.0, -np.inf, 2.0], [0.5, 0.2, -np.inf]], np.float32)
    t = np.array([0, 1])
    for ours, theirs in ((F.cross_entropy, torch.nn.functional.cross_entropy),
                         (F.nll_loss, torch.nn.functional.nll_loss)):
        x = Tensor(z, requires_grad=True)
        loss = ours(x, Tensor(t), reduction=reduction)
        xt = torch.tensor(z, requires_grad=True)
        expected = theirs(xt, torch.tensor(t), reduction=reduction)
        assert np.isfinite(loss.numpy()).all()
        np.testing.assert_allclose(loss.numpy(), expected.detach().numpy(), rtol=1e-6)
        loss.sum().backward()
        expected.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-6, atol=1e-7)
