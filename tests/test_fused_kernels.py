"""The speed paths: Winograd conv2d, the ReLU kernels, the window-inside max-pool kernel
and the fused Linear op, each against a slow reference, float64 gradient checks and
PyTorch. Every fast path must give what the generic path gives."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygrad_cv as tc
from tinygrad_cv.kernels import cpu
from tinygrad_cv.nn import functional as F
from tinygrad_cv.ops import conv as conv_mod
from tinygrad_cv.ops import elementwise as ew_mod
from tinygrad_cv.ops.conv import conv2d

from tests.helpers import gradcheck, requires_torch, torch, torch_parity
from tests.test_conv_pool import ref_conv2d, ref_max_pool2d

SETTINGS = settings(max_examples=30, deadline=None)


# ============================================================================ winograd

@st.composite
def winograd_cases(draw):
    """3x3 stride-1 convolutions with enough channels to take the Winograd path."""
    n = draw(st.integers(1, 3))
    c = draw(st.integers(8, 10))
    o = draw(st.integers(8, 10))
    padding = draw(st.sampled_from([0, 1, 2, (0, 1), (2, 0), "same"]))
    ph, pw = (1, 1) if padding == "same" else conv_mod.pair(padding, "padding", "test")
    h = draw(st.integers(max(1, 3 - 2 * ph), 9))
    w = draw(st.integers(max(1, 3 - 2 * pw), 9))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, 3, 3)),
            rng.standard_normal(o), padding, (ph, ph, pw, pw))


@pytest.fixture(autouse=True)
def winograd_backward(monkeypatch):
    """These tests check the Winograd path, forward and backward (off by default, see
    ops/conv.py); the tests that compare with im2col switch it off themselves."""
    monkeypatch.setattr(conv_mod, "USE_WINOGRAD", True)
    monkeypatch.setattr(conv_mod, "WINOGRAD_BACKWARD", True)


def _winograd_taken(out):
    return getattr(out.grad_fn, "winograd", False)


@SETTINGS
@given(winograd_cases(), st.booleans())
def test_winograd_forward_matches_loop_reference(case, with_bias):
    x, w, b, padding, pads = case
    out = conv2d(tc.Tensor(x, dtype=np.float64, requires_grad=True),
                 tc.Tensor(w, dtype=np.float64), tc.Tensor(b, dtype=np.float64)
                 if with_bias else None, padding=padding)
    assert _winograd_taken(out)
    ref = ref_conv2d(x, w, b if with_bias else None, (1, 1), pads)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10, atol=1e-10)


@SETTINGS
@given(winograd_cases())
def test_winograd_gradcheck(case):
    x, w, b, padding, _ = case
    for backward in (True, False):     # Winograd backward, im2col backward
        conv_mod.WINOGRAD_BACKWARD = backward
        gradcheck(lambda x_, w_, b_: conv2d(x_, w_, b_, padding=padding), x, w, b)


def _conv_grads(x, w, b, padding, winograd, need_x=True, dtype=np.float64):
    previous = conv_mod.USE_WINOGRAD
    conv_mod.USE_WINOGRAD = winograd
    try:
        tx = tc.Tensor(x, dtype=dtype, requires_grad=need_x)
        tw = tc.Tensor(w, dtype=dtype, requires_grad=True)
        tb = tc.Tensor(b, dtype=dtype, requires_grad=True)
        out = conv2d(tx, tw, tb, padding=padding)
        assert _winograd_taken(out) == winograd
        u = np.cos(np.arange(out.numel())).reshape(out.shape)
        (out * tc.Tensor(u, dtype=dtype)).sum().backward()
        return [out.numpy(), None if tx.grad is None else tx.grad.numpy(),
                tw.grad.numpy(), tb.grad.numpy()]
    finally:
        conv_mod.USE_WINOGRAD = previous


@pytest.mark.parametrize("shape,padding", [((2, 8, 7, 9), 0), ((3, 9, 6, 5), 1),
                                           ((1, 8, 3, 3), 0), ((2, 8, 5, 4), (2, 1)),
                                           ((4, 12, 8, 8), "same")])
@pytest.mark.parametrize("need_x", [True, False])
def test_winograd_matches_im2col_path(shape, padding, need_x, monkeypatch):
    """Same outputs and gradients as im2col + GEMM, also when the batch is chunked."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((10, shape[1], 3, 3))
    b = rng.standard_normal(10)
    ref = _conv_grads(x, w, b, padding, winograd=False, need_x=need_x)
    for chunk_bytes in (conv_mod.WINOGRAD_CHUNK_BYTES, 1):   # whole batch, one sample
        monkeypatch.setattr(conv_mod, "WINOGRAD_CHUNK_BYTES", chunk_bytes)
        got = _conv_grads(x, w, b, padding, winograd=True, need_x=need_x)
        for a, r in zip(got, ref):
            if r is None:
                assert a is None
            else:
                np.testing.assert_allclose(a, r, rtol=1e-10, atol=1e-10)


def test_winograd_float32_mnist_conv2_matches_im2col():
    """The MNIST CNN's conv2 in float32: Winograd stays within float32 rounding."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 32, 26, 26)).astype(np.float32)
    w = (rng.standard_normal((64, 32, 3, 3)) / 17).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    ref = _conv_grads(x, w, b, 0, winograd=False, dtype=np.float32)
    got = _conv_grads(x, w, b, 0, winograd=True, dtype=np.float32)
    for a, r in zip(got, ref):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-4 * np.abs(r).max())


def test_winograd_unbatched_input_and_gpu_rule():
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((8, 5, 6)), rng.standard_normal((8, 8, 3, 3))
    out = conv2d(tc.Tensor(x, dtype=np.float64), tc.Tensor(w, dtype=np.float64))
    np.testing.assert_allclose(out.numpy(), ref_conv2d(x[None], w)[0], atol=1e-10)
    geom = conv_mod.conv_geometry((1, 8, 5, 6), (8, 8, 3, 3), None, 1, 0, 1, 1)
    assert conv_mod._winograd_applies(np, geom)
    assert not conv_mod._winograd_applies(object(), geom)      # CuPy keeps im2col
    for kwargs in (dict(stride=2), dict(dilation=2), dict(groups=2)):
        g = conv_mod.conv_geometry((1, 8, 9, 9), (8, 8 // kwargs.get("groups", 1), 3, 3),
                                   None, kwargs.get("stride", 1), 0,
                                   kwargs.get("dilation", 1), kwargs.get("groups", 1))
        assert not conv_mod._winograd_applies(np, g)


@requires_torch
@pytest.mark.parametrize("padding", [0, 1])
def test_winograd_torch_parity(padding):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 16, 10, 11)).astype(np.float32)
    w = (rng.standard_normal((24, 16, 3, 3)) / 12).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    torch_parity(lambda a, c, d: conv2d(a, c, d, padding=padding),
                 lambda a, c, d: torch.nn.functional.conv2d(a, c, d, padding=padding),
                 x, w, b, atol=1e-4, rtol=1e-4)


# ============================================================================ relu

def _relu_input(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[:6] = [np.nan, 0.0, -0.0, np.inf, -np.inf, 1e-30]
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("shape", [(64, 90, 100), (64, 256)])
@pytest.mark.parametrize("parallel", [False, True])       # serial twin, parallel kernel
def test_relu_kernel_path_matches_rule(dtype, order, shape, parallel, request):
    """CPU float arrays take the Numba kernels: forward max(x, 0) with NaN passing,
    backward grad where out > 0 else 0 (NaN/inf grads zeroed where the unit is off)."""
    if parallel:
        request.getfixturevalue("parallel_kernels")
    x = np.asarray(_relu_input(shape, dtype), order=order)
    g = _relu_input(x.shape, dtype, seed=1)
    g.reshape(-1)[6:12] = [np.nan, np.inf, np.nan, -np.inf, np.nan, np.nan]
    t = tc.Tensor(x, dtype=dtype, requires_grad=True)
    out = F.relu(t)
    out.backward(tc.Tensor(g, dtype=dtype))
    expected = np.where(x <= 0, 0, x).astype(dtype)
    np.testing.assert_array_equal(out.numpy(), expected)
    np.testing.assert_array_equal(t.grad.numpy(), np.where(expected <= 0, 0, g))
    assert out.dtype == t.grad.dtype == dtype


def test_relu_kernel_and_array_paths_agree(monkeypatch):
    x = _relu_input((600_000,), np.float32)
    g = _relu_input((600_000,), np.float32, seed=4)
    results = []
    for array_ops in (False, True):                 # kernel path, then NumPy path
        if array_ops:
            monkeypatch.setattr(ew_mod, "_relu_kernels", lambda arr: None)
        t = tc.Tensor(x, requires_grad=True)
        out = F.relu(t)
        out.backward(tc.Tensor(g))
        results.append((out.numpy(), t.grad.numpy()))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@requires_torch
def test_relu_kernel_torch_parity():
    x = _relu_input((50, 100, 120), np.float32)
    g = _relu_input(x.shape, np.float32, seed=2)
    t, tt = tc.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = F.relu(t), torch.relu(tt)
    out.backward(tc.Tensor(g))
    tout.backward(torch.tensor(g))
    np.testing.assert_array_equal(out.numpy(), tout.detach().numpy())
    np.testing.assert_array_equal(t.grad.numpy(), tt.grad.numpy())


def test_relu_gradcheck_large():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(600_000)
    x[np.abs(x) < 1e-3] = 0.5                      # away from the kink
    gradcheck(F.relu, x)


# ============================================================================ max pool

@pytest.mark.parametrize("kernel,stride,h,w", [(2, 2, 24, 24), (2, 2, 7, 9), (3, 2, 9, 8),
                                               (3, 1, 5, 6), ((2, 3), (1, 2), 6, 7)])
def test_max_pool_inside_kernel_matches_general_kernel_and_reference(kernel, stride, h, w):
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 3, (5, h, w)).astype(np.float32)    # many ties
    x[0, 0, :3] = np.nan
    x[1, 1, 1] = np.nan
    x[2] = -np.inf
    kh, kw = conv_mod.pair(kernel, "k", "t")
    sh, sw = conv_mod.pair(stride, "s", "t")
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    outs = []
    for inside in (True, False):
        out = np.empty((5, oh, ow), np.float32)
        idx = np.empty((5, oh, ow), np.int64)
        if inside:
            cpu.max_pool2d_forward_inside(x, out, idx, kh, kw, sh, sw)
        else:
            cpu.max_pool2d_forward(x, out, idx, kh, kw, sh, sw, 0, 0, 1, 1)
        outs.append((out, idx))
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    # the loop reference has no NaN rule: compare the NaN-free planes with it
    ref, ref_idx = ref_max_pool2d(x[2:].astype(np.float64), (kh, kw), (sh, sw), (0, 0),
                                  (1, 1), False)
    np.testing.assert_array_equal(outs[0][0][2:], ref.astype(np.float32))
    np.testing.assert_array_equal(outs[0][1][2:], ref_idx)


# ============================================================================ linear

@pytest.mark.parametrize("x_shape", [(5, 7), (7,), (2, 3, 7)])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_linear_gradcheck(x_shape, bias):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(x_shape), rng.standard_normal((4, 7))]
    if bias:
        arrays.append(rng.standard_normal(4))
    gradcheck(lambda *t: F.linear(*t), *arrays)


@requires_torch
@pytest.mark.parametrize("x_shape", [(64, 30), (3, 5, 30), (30,)])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_linear_torch_parity(x_shape, bias):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(x_shape).astype(np.float32),
              rng.standard_normal((20, 30)).astype(np.float32)]
    if bias:
        arrays.append(rng.standard_normal(20).astype(np.float32))
    torch_parity(lambda *t: F.linear(*t), lambda *t: torch.nn.functional.linear(*t),
                 *arrays)


def test_fused_linear_is_one_node_and_skips_unneeded_grads():
    x = tc.randn(6, 5)
    w = tc.randn(3, 5, requires_grad=True)
    b = tc.randn(3)
    out = F.linear(x, w, b)
    assert out.grad_fn.name() == "LinearBackward"
    out.sum().backward()
    assert x.grad is None and b.grad is None
    np.testing.assert_allclose(w.grad.numpy(), np.ones((3, 1)) * x.numpy().sum(0),
                               rtol=1e-5)


def test_fused_linear_mixed_dtypes_promote():
    x = tc.randn(4, 5, dtype=tc.float64)
    w = tc.randn(3, 5)
    out = F.linear(x, w)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), x.numpy() @ w.numpy().astype(np.float64).T)


# ============================================================================ conv + relu

@pytest.mark.parametrize("shape,wshape,kwargs", [
    ((2, 8, 7, 6), (9, 8, 3, 3), dict(padding=1)),          # Winograd path
    ((2, 3, 7, 6), (4, 3, 3, 2), dict(stride=(2, 1))),      # im2col path
    ((6, 5, 4), (4, 6, 1, 1), {}),                           # pointwise, unbatched
])
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_relu_matches_relu_of_conv2d(shape, wshape, kwargs, bias):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(shape), rng.standard_normal(wshape)]
    if bias:
        arrays.append(rng.standard_normal(wshape[0]))
    results = []
    for fused in (True, False):
        ts = [tc.Tensor(a, dtype=np.float64, requires_grad=True) for a in arrays]
        out = (F.conv2d_relu(*ts, **kwargs) if fused
               else F.relu(F.conv2d(*ts, **kwargs)))
        u = np.sin(np.arange(out.numel())).reshape(out.shape)
        (out * tc.Tensor(u, dtype=np.float64)).sum().backward()
        results.append([out.numpy()] + [t.grad.numpy() for t in ts])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    gradcheck(lambda *t: F.conv2d_relu(*t, **kwargs), *arrays)


def test_conv2d_relu_backward_twice_with_retain_graph():
    """The fused op frees its activation early in backward, except under retain_graph:
    a second backward must still apply the ReLU mask (gradients exactly double)."""
    rng = np.random.default_rng(3)
    x = tc.Tensor(rng.standard_normal((2, 3, 6, 6)).astype(np.float32), requires_grad=True)
    w = tc.Tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
    y = F.conv2d_relu(x, w)
    y.sum().backward(retain_graph=True)
    once = x.grad.numpy().copy(), w.grad.numpy().copy()
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * once[0], rtol=1e-6)
    np.testing.assert_allclose(w.grad.numpy(), 2 * once[1], rtol=1e-6)
    mask = (y.numpy() > 0).astype(np.float32)
    assert np.abs(once[1]).sum() > 0
    np.testing.assert_allclose(once[1], _weight_grad(x, w, mask), rtol=1e-5, atol=1e-5)


def _weight_grad(x, w, upstream):
    """dL/dw of conv2d(x, w) for the upstream gradient `upstream` (plain conv2d)."""
    wt = tc.Tensor(w.numpy(), requires_grad=True)
    F.conv2d(tc.Tensor(x.numpy()), wt).backward(tc.Tensor(upstream))
    return wt.grad.numpy()


def test_conv_module_forward_relu_and_models_keep_state_dict():
    conv = tc.nn.Conv2d(8, 8, 3, padding=1)
    x = tc.randn(2, 8, 5, 5)
    np.testing.assert_array_equal(conv.forward_relu(x).numpy(), F.relu(conv(x)).numpy())
    from tinygrad_cv.models import LeNet5, MnistCNN
    assert list(MnistCNN().state_dict()) == ["conv1.weight", "conv1.bias", "conv2.weight",
                                             "conv2.bias", "fc1.weight", "fc1.bias",
                                             "fc2.weight", "fc2.bias"]
    assert "conv1.weight" in LeNet5().state_dict()


@requires_torch
def test_conv2d_relu_torch_parity():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 16, 9, 9)).astype(np.float32)
    w = (rng.standard_normal((16, 16, 3, 3)) / 12).astype(np.float32)
    b = rng.standard_normal(16).astype(np.float32)
    torch_parity(lambda a, c, d: F.conv2d_relu(a, c, d),
                 lambda a, c, d: torch.relu(torch.nn.functional.conv2d(a, c, d)),
                 x, w, b, atol=1e-4, rtol=1e-4)


# ============================================================================ buffers

def test_recycled_buffers_are_never_shared_while_in_use():
    from tinygrad_cv.ops import buffers
    shape = (512, 1024)                       # 2 MiB of float32: pooled
    a = buffers.empty(shape, np.float32)
    a[...] = 1
    view = a[:10]
    del a
    b = buffers.empty(shape, np.float32)      # the view keeps the first buffer busy
    assert not np.shares_memory(b, view)
    del view
    keep = b.base
    del b
    c = buffers.empty(shape, np.float32)      # `keep` (any reference) also blocks reuse
    assert c.base is not keep
    del keep, c
    d = buffers.empty(shape, np.float32)
    e = buffers.empty(shape, np.float32)
    assert not np.shares_memory(d, e)


def test_outputs_kept_by_the_user_are_not_overwritten():
    """Steps that reuse buffers must not change tensors (or arrays) the user kept."""
    tc.manual_seed(0)
    conv = tc.nn.Conv2d(8, 16, 3)
    x = tc.randn(32, 8, 20, 20)
    kept = [conv.forward_relu(x) for _ in range(3)]
    kept_arrays = [F.max_pool2d(k, 2).numpy() for k in kept]
    snapshot = [k.numpy().copy() for k in kept] + [a.copy() for a in kept_arrays]
    for _ in range(3):
        y = conv.forward_relu(tc.randn(32, 8, 20, 20))
        F.max_pool2d(y, 2).sum().backward()
    for k, s in zip(kept + [tc.tensor(a) for a in kept_arrays], snapshot):
        np.testing.assert_array_equal(k.numpy(), s)


# ----------------------------------------------------------------------------- linear + relu

@pytest.mark.parametrize("x_shape, out_features", [
    ((4, 7), 9),         # batch <= out_features: the transposed-GEMM (Fortran) output
    ((12, 7), 5),        # batch > out_features: the plain GEMM (C-ordered) output
    ((3, 2, 6), 4),      # more than 2-D input
    ((7,), 3),           # unbatched
])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_relu_matches_relu_of_linear(x_shape, out_features, bias):
    """The fused op gives relu(linear(...))'s values and gradients (float64, exactly) and
    passes the finite-difference check."""
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(x_shape), rng.standard_normal((out_features, x_shape[-1]))]
    if bias:
        arrays.append(rng.standard_normal(out_features))
    results = []
    for fused in (True, False):
        ts = [tc.Tensor(a, dtype=np.float64, requires_grad=True) for a in arrays]
        out = F.linear_relu(*ts) if fused else F.relu(F.linear(*ts))
        u = np.sin(np.arange(out.numel())).reshape(out.shape)
        (out * tc.Tensor(u, dtype=np.float64)).sum().backward()
        results.append([out.numpy()] + [t.grad.numpy() for t in ts])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    gradcheck(F.linear_relu, *arrays)


@requires_torch
@pytest.mark.parametrize("batch", [3, 64, 300])
def test_linear_relu_torch_parity(batch):
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal((batch, 50)).astype(np.float32),
              rng.standard_normal((20, 50)).astype(np.float32),
              rng.standard_normal(20).astype(np.float32)]
    torch_parity(F.linear_relu, lambda x, w, b: torch.relu(torch.nn.functional.linear(x, w, b)),
                 *arrays)


def test_linear_forward_relu_in_models_keeps_state_dict():
    """nn.Linear.forward_relu is relu(forward) and the models using it keep their keys."""
    tc.manual_seed(0)
    layer = tc.nn.Linear(6, 4)
    x = tc.randn(5, 6)
    np.testing.assert_array_equal(layer.forward_relu(x).numpy(), F.relu(layer(x)).numpy())
    from tinygrad_cv.models import MLP
    assert list(MLP().state_dict()) == ["layers.0.weight", "layers.0.bias", "layers.2.weight",
                                        "layers.2.bias", "layers.4.weight", "layers.4.bias"]
    with pytest.raises(ValueError, match="in_features=6"):
        layer.forward_relu(tc.randn(5, 7))


@pytest.mark.parametrize("size", [1000, 600_000])
@pytest.mark.parametrize("parallel", [False, True])      # serial twin, parallel kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place_relu_kernels_match_out_of_place(size, parallel, dtype, request):
    if parallel:
        request.getfixturevalue("parallel_kernels")
    x = _relu_input((size,), dtype)
    g = _relu_input((size,), dtype, seed=5)
    expected_fwd, expected_bwd = np.empty_like(x), np.empty_like(g)
    cpu.relu_forward(x, expected_fwd)
    cpu.relu_backward(x, g, expected_bwd)
    y = x.copy()
    cpu.relu_inplace(y)
    np.testing.assert_array_equal(y, expected_fwd)
    cpu.relu_backward_inplace(x, g)
    np.testing.assert_array_equal(g, expected_bwd)


@pytest.mark.parametrize("layer", ["relu", "conv2d_relu"])
def test_relu_backward_runs_in_place_on_the_engines_own_gradient(layer, monkeypatch):
    """When the incoming gradient is scratch only the engine holds (here: Mul's fresh
    output), ReLU's backward overwrites it instead of allocating another array."""
    calls = []
    kernel = cpu.relu_backward_inplace
    monkeypatch.setattr(cpu, "relu_backward_inplace",
                        lambda out, grad: calls.append(1) or kernel(out, grad))
    rng = np.random.default_rng(9)
    x = tc.Tensor(rng.standard_normal((2, 3, 6, 6)).astype(np.float32), requires_grad=True)
    if layer == "relu":
        y = F.relu(x)
    else:
        w = tc.Tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
                      requires_grad=True)
        y = F.conv2d_relu(x, w)
    (y * 2).sum().backward()
    assert calls == [1]
    if layer == "relu":
        np.testing.assert_array_equal(x.grad.numpy(), np.where(y.numpy() > 0, 2.0, 0.0))


def _lenet_after_two_steps():
    """LeNet-5's parameters after two SGD-momentum steps on a fixed random batch."""
    from tinygrad_cv import optim
    from tinygrad_cv.models import LeNet5
    tc.manual_seed(0)
    model = LeNet5()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(3)
    x = tc.Tensor(rng.standard_normal((32, 1, 28, 28)).astype(np.float32))
    y = tc.Tensor(rng.integers(0, 10, 32))
    for _ in range(2):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return {name: p.numpy().copy() for name, p in model.named_parameters()}


def test_parallel_and_serial_kernels_train_identically(monkeypatch):
    """Which version of a Numba kernel runs (kernels/cpu.py `SERIAL_BELOW`) never
    changes a result: every kernel's parallel loop splits independent planes or
    elements, so two LeNet-5 training steps give bit-identical parameters."""
    monkeypatch.setattr(cpu, "SERIAL_BELOW", 1 << 62)
    serial = _lenet_after_two_steps()
    monkeypatch.setattr(cpu, "SERIAL_BELOW", 1)
    parallel = _lenet_after_two_steps()
    assert serial.keys() == parallel.keys()
    for name in serial:
        np.testing.assert_array_equal(serial[name], parallel[name], err_msg=name)
