"""LayerNorm, GroupNorm, InstanceNorm1d/2d and BatchNorm's affine=/track_running_stats=
options: float64 gradient checks of the functional forms, then each module against
torch.nn in float64 (outputs, input and parameter gradients to ~1e-10, running buffers
over several steps, eval mode, state-dict keys)."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv.nn import functional as F
from tests.helpers import gradcheck, requires_torch, torch

rng = np.random.default_rng(5)


def N(*shape):
    return rng.standard_normal(shape) * 1.5 + 0.3


GRADCHECKS = [
    ("layer_norm", lambda x: F.layer_norm(x, (4,)), [N(3, 4)]),
    ("layer_norm_affine", lambda x, w, b: F.layer_norm(x, (3, 4), w, b, 1e-3),
     [N(2, 3, 4), N(3, 4), N(3, 4)]),
    ("layer_norm_weight_only", lambda x, w: F.layer_norm(x, 5, w), [N(2, 2, 5), N(5)]),
    ("group_norm", lambda x, w, b: F.group_norm(x, 2, w, b), [N(2, 4, 3, 3), N(4), N(4)]),
    ("group_norm_1group", lambda x: F.group_norm(x, 1), [N(3, 2, 5)]),
    ("group_norm_2d_input", lambda x, w, b: F.group_norm(x, 3, w, b), [N(4, 6), N(6), N(6)]),
    ("instance_norm", lambda x: F.instance_norm(x), [N(2, 3, 4, 4)]),
    ("instance_norm_affine", lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
     [N(2, 3, 5), N(3), N(3)]),
]


@pytest.mark.parametrize("name,fn,arrays", GRADCHECKS, ids=[g[0] for g in GRADCHECKS])
def test_gradcheck(name, fn, arrays, device):
    gradcheck(fn, *arrays, device=device)


def twins(build):
    """The same module in both frameworks, float64, torch's init perturbed (so affine
    parameters are not ones/zeros) and copied into ours."""
    theirs = build(torch).double()
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(torch.tensor(rng.standard_normal(tuple(p.shape))) * 0.3)
    ours = build(tc).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def compare_step(ours, theirs, x, train=True, tol=1e-10):
    ours.train(train)
    theirs.train(train)
    a = tc.tensor(x, dtype=tc.float64, requires_grad=True)
    b = torch.tensor(x, requires_grad=True)
    out, ref = ours(a), theirs(b)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=tol, atol=tol)
    up = rng.standard_normal(ref.shape)
    (out * tc.tensor(up, dtype=tc.float64)).sum().backward()
    (ref * torch.tensor(up)).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=tol, atol=tol)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=tol, atol=tol,
                                   err_msg=name)
        p.grad, q.grad = None, None
    for (name, buf), ref_buf in zip(ours.named_buffers(), theirs.buffers()):
        np.testing.assert_allclose(buf.numpy(), ref_buf.numpy(), rtol=tol, atol=tol,
                                   err_msg=name)


MODULES = [
    ("LayerNorm", lambda m: m.nn.LayerNorm(6), (4, 6)),
    ("LayerNorm_2d", lambda m: m.nn.LayerNorm([3, 4], eps=1e-3), (2, 5, 3, 4)),
    ("LayerNorm_no_affine", lambda m: m.nn.LayerNorm(4, elementwise_affine=False), (3, 2, 4)),
    ("LayerNorm_no_bias", lambda m: m.nn.LayerNorm(4, bias=False), (3, 4)),
    ("GroupNorm", lambda m: m.nn.GroupNorm(2, 6), (3, 6, 4, 4)),
    ("GroupNorm_per_channel", lambda m: m.nn.GroupNorm(4, 4, eps=1e-3), (2, 4, 3, 5)),
    ("GroupNorm_no_affine", lambda m: m.nn.GroupNorm(1, 3, affine=False), (2, 3, 7)),
    ("GroupNorm_no_bias", lambda m: m.nn.GroupNorm(3, 6, bias=False), (2, 6, 2, 2)),
    ("InstanceNorm2d", lambda m: m.nn.InstanceNorm2d(3), (2, 3, 5, 4)),
    ("InstanceNorm2d_affine", lambda m: m.nn.InstanceNorm2d(3, affine=True), (2, 3, 4, 4)),
    ("InstanceNorm2d_unbatched", lambda m: m.nn.InstanceNorm2d(3, affine=True), (3, 4, 4)),
    ("InstanceNorm1d", lambda m: m.nn.InstanceNorm1d(4, affine=True), (3, 4, 6)),
    ("BatchNorm2d_no_affine", lambda m: m.nn.BatchNorm2d(3, affine=False), (4, 3, 3, 3)),
    ("BatchNorm2d_no_stats", lambda m: m.nn.BatchNorm2d(3, track_running_stats=False),
     (4, 3, 3, 3)),
    ("BatchNorm1d_no_stats_no_affine",
     lambda m: m.nn.BatchNorm1d(5, affine=False, track_running_stats=False), (6, 5)),
    ("BatchNorm1d_3d_momentum_none", lambda m: m.nn.BatchNorm1d(2, momentum=None), (4, 2, 3)),
]


@requires_torch
@pytest.mark.parametrize("name,build,shape", MODULES, ids=[m[0] for m in MODULES])
def test_module_matches_torch_train_and_eval(name, build, shape):
    ours, theirs = twins(build)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    for _ in range(3):
        compare_step(ours, theirs, N(*shape), train=True)
    compare_step(ours, theirs, N(*shape), train=False)


@requires_torch
@pytest.mark.parametrize("build", [
    lambda m: m.nn.InstanceNorm2d(3, track_running_stats=True),
    lambda m: m.nn.InstanceNorm2d(3, momentum=0.3, affine=True, track_running_stats=True),
    lambda m: m.nn.InstanceNorm1d(2, track_running_stats=True),
])
def test_instance_norm_running_stats_match_torch(build):
    ours, theirs = twins(build)
    shape = (3, 3, 4, 5) if isinstance(ours, tc.nn.InstanceNorm2d) else (4, 2, 6)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for _ in range(4):
        compare_step(ours, theirs, N(*shape), train=True)
    compare_step(ours, theirs, N(*shape), train=False)     # eval uses the running stats
    assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item()


def test_float32_runs_and_bad_inputs_raise_before_any_change():
    ln = tc.nn.LayerNorm(4)
    assert ln(tc.randn(2, 4)).dtype == np.float32
    with pytest.raises(RuntimeError, match=r"normalized_shape=\[4\]"):
        ln(tc.randn(2, 5))
    with pytest.raises(ValueError, match="divisible"):
        tc.nn.GroupNorm(3, 4)
    with pytest.raises(ValueError, match="expected an input"):
        tc.nn.GroupNorm(2, 4)(tc.randn(2, 6, 3))
    inorm = tc.nn.InstanceNorm2d(3, affine=True, track_running_stats=True)
    before = inorm.running_mean.numpy().copy()
    with pytest.raises(ValueError, match="num_features"):
        inorm(tc.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match="4D input"):
        inorm(tc.randn(2, 3))
    np.testing.assert_array_equal(inorm.running_mean.numpy(), before)
    with pytest.raises(ValueError, match="more than 1 spatial"):
        F.instance_norm(tc.randn(2, 3, 1, 1))
