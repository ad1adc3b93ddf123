"""The newer activations (ReLU6 Hardtanh Hardsigmoid Hardswish SiLU GELU ELU Softplus
PReLU Mish): float64 gradient checks, torch parity of outputs and gradients (float64 to
1e-10, including torch's rules at the kinks), `inplace=True` semantics, reprs."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv.nn import functional as F
from tests.helpers import gradcheck, requires_torch, torch, torch_parity

rng = np.random.default_rng(21)


def K(*shape, scale=3.0):
    """Normal values (x scale) at least 0.05 from every kink (0, +-3, 6, +-1)."""
    a = rng.standard_normal(shape) * scale
    for kink in (0.0, 3.0, -3.0, 6.0, 1.0, -1.0):
        a = np.where(np.abs(a - kink) < 0.05, kink + 0.3, a)
    return a


KINKS = np.array([-4.0, -3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 5.0, 6.0, 7.0, 25.0, -30.0])


def rtol64(name):
    """torch's float64 hardsigmoid backward multiplies by float32(1/6), and its celu
    backward uses float32(1/alpha) (derivatives.yaml: `1.0/alpha.toFloat()`): relative
    errors of ~3e-8 and ~1e-7 off the exact values that we use (and that the gradient
    checks confirm)."""
    return {"hardsigmoid": 5e-8, "celu": 3e-7}.get(name, 1e-10)


def tF(m):
    return torch.nn.functional if m is torch else F


ACTS = [
    ("relu6", lambda m, x: tF(m).relu6(x)),
    ("hardtanh", lambda m, x: tF(m).hardtanh(x)),
    ("hardtanh_args", lambda m, x: tF(m).hardtanh(x, -2.0, 0.5)),
    ("hardsigmoid", lambda m, x: tF(m).hardsigmoid(x)),
    ("hardswish", lambda m, x: tF(m).hardswish(x)),
    ("silu", lambda m, x: tF(m).silu(x)),
    ("gelu", lambda m, x: tF(m).gelu(x)),
    ("gelu_tanh", lambda m, x: tF(m).gelu(x, approximate="tanh")),
    ("elu", lambda m, x: tF(m).elu(x)),
    ("elu_alpha", lambda m, x: tF(m).elu(x, alpha=0.3)),
    ("softplus", lambda m, x: tF(m).softplus(x)),
    ("softplus_beta", lambda m, x: tF(m).softplus(x, beta=2.0, threshold=3.0)),
    ("mish", lambda m, x: tF(m).mish(x)),
    ("selu", lambda m, x: tF(m).selu(x)),
    ("celu", lambda m, x: tF(m).celu(x, alpha=0.7)),
    ("logsigmoid", lambda m, x: tF(m).logsigmoid(x)),
    ("softsign", lambda m, x: tF(m).softsign(x)),
    ("tanhshrink", lambda m, x: tF(m).tanhshrink(x)),
    ("threshold", lambda m, x: tF(m).threshold(x, 1.0, -2.0)),
    ("hardshrink", lambda m, x: tF(m).hardshrink(x, 1.0)),
    ("softshrink", lambda m, x: tF(m).softshrink(x, 1.0)),
    ("hardshrink_default", lambda m, x: tF(m).hardshrink(x * 5.0)),
    ("glu", lambda m, x: tF(m).glu(x.reshape(-1, 2) if x.ndim == 1 and x.shape[0] % 2 == 0
                                   else x[..., :4] if x.ndim > 1 else x[:32], dim=-1)),
    ("softmin", lambda m, x: tF(m).softmin(x, dim=-1)),
]
IDS = [a[0] for a in ACTS]


@pytest.mark.parametrize("name,fn", ACTS, ids=IDS)
def test_gradcheck(name, fn, device):
    gradcheck(lambda x: fn(tc, x), K(4, 5), device=device)


@requires_torch
@pytest.mark.parametrize("name,fn", ACTS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_torch_parity_including_kinks(name, fn, dtype, device):
    x = np.concatenate([KINKS, K(20)]).astype(dtype)
    tol = dict(atol=1e-12, rtol=1e-10) if dtype == np.float64 else dict(atol=2e-6, rtol=2e-5)
    if dtype == np.float64:
        tol["rtol"] = rtol64(name)
    torch_parity(lambda t: fn(tc, t), lambda t: fn(torch, t), x, device=device, **tol)


@requires_torch
@pytest.mark.parametrize("shape,num", [((4, 3, 2, 2), 3), ((4, 3, 2, 2), 1), ((5, 2), 2),
                                       ((6,), 1), ((2, 3, 4), 3)])
def test_prelu_parity_and_gradcheck(shape, num, device):
    x = np.concatenate([np.zeros(3), K(int(np.prod(shape)) - 3)]).reshape(shape)
    w = rng.random(num) * 0.5
    torch_parity(lambda a, b: F.prelu(a, b), lambda a, b: torch.nn.functional.prelu(a, b),
                 x, w, device=device, atol=1e-12, rtol=1e-10)
    gradcheck(lambda a, b: F.prelu(a, b), K(*shape), w, device=device)


def test_prelu_module_and_errors():
    layer = tc.nn.PReLU(3, init=0.1)
    np.testing.assert_array_equal(layer.weight.numpy(), np.full(3, 0.1, np.float32))
    assert [n for n, _ in layer.named_parameters()] == ["weight"]
    with pytest.raises(ValueError, match="3 parameters but the input"):
        layer(tc.zeros(2, 4))


INPLACE = [
    ("relu6", lambda m, x, ip: tF(m).relu6(x, inplace=ip)),
    ("hardtanh", lambda m, x, ip: tF(m).hardtanh(x, -0.5, 2.0, inplace=ip)),
    ("hardsigmoid", lambda m, x, ip: tF(m).hardsigmoid(x, inplace=ip)),
    ("hardswish", lambda m, x, ip: tF(m).hardswish(x, inplace=ip)),
    ("silu", lambda m, x, ip: tF(m).silu(x, inplace=ip)),
    ("elu", lambda m, x, ip: tF(m).elu(x, 0.7, inplace=ip)),
    ("mish", lambda m, x, ip: tF(m).mish(x, inplace=ip)),
    ("selu", lambda m, x, ip: tF(m).selu(x, inplace=ip)),
    ("celu", lambda m, x, ip: tF(m).celu(x, 1.5, inplace=ip)),
    ("threshold", lambda m, x, ip: tF(m).threshold(x, 1.0, 0.5, inplace=ip)),
]


@requires_torch
@pytest.mark.parametrize("name,fn", INPLACE, ids=[a[0] for a in INPLACE])
def test_inplace_writes_the_input_and_keeps_gradients_exact(name, fn, device):
    a = np.concatenate([KINKS, K(11)]).reshape(4, 6)
    ours = tc.tensor(a, dtype=tc.float64, device=device, requires_grad=True)
    theirs = torch.tensor(a, requires_grad=True)
    h, ht = ours * 1.5, theirs * 1.5             # non-leaf inputs, as after a conv or bn
    out, out_t = fn(tc, h, True), fn(torch, ht, True)
    assert out is h and out_t is ht
    np.testing.assert_allclose(h.numpy(), ht.detach().numpy(), rtol=1e-12, atol=1e-14)
    ((out + 1) ** 2).sum().backward()
    ((out_t + 1) ** 2).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=rtol64(name),
                               atol=1e-12)
    # the same values as the out-of-place form
    ref = fn(tc, tc.tensor(a * 1.5, dtype=tc.float64, device=device), False)
    np.testing.assert_allclose(h.numpy(), ref.numpy(), rtol=1e-15)


@pytest.mark.parametrize("name,fn", INPLACE, ids=[a[0] for a in INPLACE])
def test_inplace_refuses_a_leaf_and_works_without_grad(name, fn):
    leaf = tc.tensor([-1.0, 2.0, 7.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        fn(tc, leaf, True)
    np.testing.assert_array_equal(leaf.numpy(), [-1.0, 2.0, 7.0])   # unchanged
    plain = tc.tensor([-1.0, 2.0, 7.0])
    alias = plain.numpy()
    assert fn(tc, plain, True) is plain
    np.testing.assert_array_equal(alias, fn(tc, tc.tensor([-1.0, 2.0, 7.0]), False).numpy())
    with tc.no_grad():
        assert fn(tc, leaf, True) is leaf


def test_inplace_over_an_output_its_producer_saved_raises():
    x = tc.randn(3, requires_grad=True)
    s = x.sigmoid()          # sigmoid's backward needs its output
    with pytest.raises(RuntimeError, match="saved by"):
        F.silu(s, inplace=True)


def test_inplace_modules_chain_in_a_network():
    net = tc.nn.Sequential(tc.nn.Linear(3, 4), tc.nn.Hardswish(inplace=True),
                           tc.nn.Linear(4, 4), tc.nn.ReLU6(inplace=True), tc.nn.Linear(4, 1))
    ref = tc.nn.Sequential(net[0], tc.nn.Hardswish(), net[2], tc.nn.ReLU6(), net[4])
    x = tc.randn(5, 3)
    net(x).sum().backward()
    grads = [p.grad.numpy().copy() for p in net.parameters()]
    net.zero_grad()
    ref(x).sum().backward()
    for g, p in zip(grads, ref.parameters()):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-6)


@requires_torch
@pytest.mark.parametrize("build", [
    lambda m: m.nn.ReLU6(), lambda m: m.nn.ReLU6(inplace=True), lambda m: m.nn.Hardtanh(-2, 3),
    lambda m: m.nn.Hardswish(), lambda m: m.nn.Hardsigmoid(inplace=True),
    lambda m: m.nn.SiLU(), lambda m: m.nn.SiLU(inplace=True), lambda m: m.nn.GELU(),
    lambda m: m.nn.GELU(approximate="tanh"), lambda m: m.nn.ELU(alpha=0.5, inplace=True),
    lambda m: m.nn.Softplus(beta=2, threshold=10), lambda m: m.nn.PReLU(4),
    lambda m: m.nn.Mish(),
])
def test_reprs_match_torch(build):
    assert repr(build(tc)) == repr(build(torch))


MODULES = [
    ("relu6", lambda m: m.nn.ReLU6()), ("hardtanh", lambda m: m.nn.Hardtanh(-0.5, 2.0)),
    ("hardsigmoid", lambda m: m.nn.Hardsigmoid()), ("hardswish", lambda m: m.nn.Hardswish()),
    ("silu", lambda m: m.nn.SiLU()), ("gelu", lambda m: m.nn.GELU()),
    ("gelu_tanh", lambda m: m.nn.GELU("tanh")), ("elu", lambda m: m.nn.ELU(0.4)),
    ("softplus", lambda m: m.nn.Softplus(1.5, 2.0)), ("mish", lambda m: m.nn.Mish()),
    ("prelu", lambda m: m.nn.PReLU(init=0.3)),
    ("selu", lambda m: m.nn.SELU()), ("celu", lambda m: m.nn.CELU(2.0)),
    ("logsigmoid", lambda m: m.nn.LogSigmoid()), ("softsign", lambda m: m.nn.Softsign()),
    ("tanhshrink", lambda m: m.nn.Tanhshrink()), ("threshold", lambda m: m.nn.Threshold(0.5, 3)),
    ("hardshrink", lambda m: m.nn.Hardshrink(0.7)), ("softshrink", lambda m: m.nn.Softshrink()),
    ("glu", lambda m: m.nn.GLU(dim=1)), ("softmin", lambda m: m.nn.Softmin(dim=0)),
]


@requires_torch
@pytest.mark.parametrize("name,build", MODULES, ids=[m[0] for m in MODULES])
def test_modules_match_torch_modules(name, build):
    ours, theirs = build(tc).double(), build(torch).double()
    x = K(3, 4)
    torch_parity(ours, theirs, x, atol=1e-12, rtol=rtol64(name))


@requires_torch
def test_softmax2d_and_dropout1d():
    x = K(2, 3, 4, 5)
    torch_parity(tc.nn.Softmax2d(), torch.nn.Softmax2d(), x, atol=1e-12, rtol=1e-10)
    torch_parity(tc.nn.Softmax2d(), torch.nn.Softmax2d(), x[0], atol=1e-12, rtol=1e-10)
    tc.manual_seed(1)
    out = tc.nn.Dropout1d(0.5)(tc.ones(8, 16, 6)).numpy()
    assert np.all(out.min(axis=2) == out.max(axis=2)) and 0 < (out[:, :, 0] == 0).mean() < 1
    unbatched = tc.nn.Dropout1d(0.5)(tc.ones(16, 6)).numpy()       # (C, L): per channel
    assert np.all(unbatched.min(axis=1) == unbatched.max(axis=1))
    with pytest.raises(RuntimeError, match="2D or 3D"):
        F.dropout1d(tc.ones(2, 3, 4, 5))
    with pytest.raises(RuntimeError, match="Halving dimension must be even"):
        F.glu(tc.ones(3, 5))


def test_inplace_on_a_read_only_view_raises_clearly():
    view = tc.ones(3).expand(2, 3)
    with pytest.raises(RuntimeError, match="read-only"):
        F.silu(view, inplace=True)
