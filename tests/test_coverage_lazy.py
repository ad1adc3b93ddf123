"""Lazy modules (LazyLinear, LazyConv2d, LazyBatchNorm1d/2d) against torch's: shapes from
the first input, the class they become, placeholders kept by identity, state dicts, and a
d2l-style LeNet built from lazy layers matching torch for forward, backward and a step."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cv as tc
from tests.helpers import requires_torch, torch

rng = np.random.default_rng(3)


@requires_torch
@pytest.mark.parametrize("build,shape", [
    (lambda m: m.nn.LazyLinear(3), (2, 5)),
    (lambda m: m.nn.LazyLinear(4, bias=False), (2, 3, 6)),
    (lambda m: m.nn.LazyConv2d(4, 3, padding=1), (2, 3, 6, 6)),
    (lambda m: m.nn.LazyConv2d(6, (3, 2), stride=2, groups=2, bias=False), (1, 4, 7, 7)),
    (lambda m: m.nn.LazyConv2d(2, 3), (3, 5, 5)),
    (lambda m: m.nn.LazyBatchNorm2d(), (4, 3, 2, 2)),
    (lambda m: m.nn.LazyBatchNorm2d(affine=False, momentum=0.3), (4, 3, 2, 2)),
    (lambda m: m.nn.LazyBatchNorm1d(), (5, 3)),
])
def test_lazy_layer_materializes_like_torch(build, shape):
    ours, theirs = build(tc), build(torch)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    held = [p for p in ours.parameters()]
    x = rng.standard_normal(shape)
    theirs(torch.tensor(x, dtype=torch.float32))
    ours(tc.tensor(x))
    assert type(ours).__name__ == type(theirs).__name__      # Linear, Conv2d, BatchNorm2d
    assert repr(ours) == repr(theirs)
    assert [p is q for p, q in zip(held, ours.parameters())] == [True] * len(held)
    for (name, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert a.shape == tuple(b.shape), name
    # identical numbers once the weights agree (torch's random init copied over)
    ours.double()
    theirs.double()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    a = tc.tensor(x, dtype=tc.float64, requires_grad=True)
    b = torch.tensor(x, requires_grad=True)
    out, ref = ours(a), theirs(b)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    (out * out).sum().backward()
    (ref * ref).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10, atol=1e-12)
    for p, q in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_optimizer_built_before_the_first_forward_trains_the_materialized_params():
    layer = tc.nn.LazyLinear(2)
    opt = tc.optim.SGD(layer.parameters(), lr=0.1, momentum=0.9)
    x = tc.randn(4, 3)
    layer(x).sum().backward()
    before = layer.weight.numpy().copy()
    opt.step()
    assert layer.weight.shape == (2, 3)
    assert not np.allclose(layer.weight.numpy(), before)


@requires_torch
def test_load_state_dict_into_an_unmaterialized_lazy_module_takes_the_shapes():
    torch.manual_seed(0)
    src = torch.nn.Linear(5, 3)
    lazy = tc.nn.LazyLinear(3)
    lazy.load_state_dict({k: v.detach().numpy() for k, v in src.state_dict().items()})
    assert lazy.weight.shape == (3, 5)
    out = lazy(tc.ones(2, 5))
    assert isinstance(lazy, tc.nn.Linear) and lazy.in_features == 5
    np.testing.assert_allclose(out.numpy(), src(torch.ones(2, 5)).detach().numpy(), rtol=1e-6)
    bn = tc.nn.LazyBatchNorm2d()
    ref_bn = torch.nn.BatchNorm2d(4)
    bn.load_state_dict({k: v.numpy() for k, v in ref_bn.state_dict().items()})
    bn(tc.randn(2, 4, 3, 3))
    assert bn.num_features == 4 and bn.running_mean.shape == (4,)


def test_lazy_errors():
    with pytest.raises(ValueError, match="LazyConv2d"):
        tc.nn.LazyConv2d(3, 3)(tc.zeros(2, 3))
    with pytest.raises(ValueError, match="divisible by groups"):
        tc.nn.LazyConv2d(4, 1, groups=2)(tc.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="4D"):
        tc.nn.LazyBatchNorm2d()(tc.zeros(2, 3))


def d2l_lenet(m):
    """d2l.ai's LeNet (chapter 7.6) as written there with lazy layers."""
    nn = m.nn
    return nn.Sequential(
        nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.LazyLinear(120), nn.Sigmoid(),
        nn.LazyLinear(84), nn.Sigmoid(),
        nn.LazyLinear(10))


def d2l_bn_lenet(m):
    """d2l's BatchNorm LeNet (chapter 8.5, concise version)."""
    nn = m.nn
    return nn.Sequential(
        nn.LazyConv2d(6, kernel_size=5), nn.LazyBatchNorm2d(), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.LazyConv2d(16, kernel_size=5), nn.LazyBatchNorm2d(), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(),
        nn.LazyLinear(120), nn.LazyBatchNorm1d(), nn.Sigmoid(),
        nn.LazyLinear(84), nn.LazyBatchNorm1d(), nn.Sigmoid(),
        nn.LazyLinear(10))


@requires_torch
@pytest.mark.parametrize("build", [d2l_lenet, d2l_bn_lenet], ids=["lenet", "bn_lenet"])
def test_d2l_lazy_lenet_matches_torch_forward_backward_and_step(build):
    x = rng.standard_normal((4, 1, 28, 28))
    y = rng.integers(0, 10, 4)
    ours, theirs = build(tc), build(torch)
    ours(tc.zeros(1 if build is d2l_lenet else 2, 1, 28, 28))     # d2l's dry run
    theirs(torch.zeros(1 if build is d2l_lenet else 2, 1, 28, 28))
    ours.double()
    theirs.double()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    opt = tc.optim.SGD(ours.parameters(), lr=0.1)
    ref = torch.optim.SGD(theirs.parameters(), lr=0.1)
    for _ in range(2):
        loss = tc.nn.functional.cross_entropy(ours(tc.tensor(x, dtype=tc.float64)),
                                              tc.tensor(y))
        loss_r = torch.nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
        np.testing.assert_allclose(loss.item(), loss_r.item(), rtol=1e-12)
        opt.zero_grad()
        ref.zero_grad()
        loss.backward()
        loss_r.backward()
        for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-9, atol=1e-12,
                                       err_msg=name)
        opt.step()
        ref.step()
    for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
