"""The speed paths: the ReLU kernels, the window-inside max-pool kernel, the one-node
Linear op and the recycled memory, each against a slow reference, float64 gradient
checks and PyTorch. Every fast path must give what the generic path gives."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv.kernels import cpu
from tinygrad_cv.nn import functional as F
from tinygrad_cv.ops import conv as conv_mod
from tinygrad_cv.ops import relu as relu_mod

from tests.helpers import gradcheck, requires_torch, torch, torch_parity
from tests.test_conv_pool import ref_max_pool2d

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
            monkeypatch.setattr(relu_mod, "_relu_kernels", lambda arr: None)
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


def test_linear_mixed_dtypes_are_an_error_as_in_torch():
    x = tc.randn(4, 5, dtype=tc.float64)
    w = tc.randn(3, 5)
    with pytest.raises(TypeError, match="linear: input dtype float64 and weight dtype float32"):
        F.linear(x, w)


# ============================================================================ models

def test_models_keep_pytorch_state_dict_keys():
    from tinygrad_cv.models import MLP, LeNet5, MnistCNN
    assert list(MnistCNN().state_dict()) == ["conv1.weight", "conv1.bias", "conv2.weight",
                                             "conv2.bias", "fc1.weight", "fc1.bias",
                                             "fc2.weight", "fc2.bias"]
    assert "conv1.weight" in LeNet5().state_dict()
    assert list(MLP().state_dict()) == ["layers.0.weight", "layers.0.bias", "layers.2.weight",
                                        "layers.2.bias", "layers.4.weight", "layers.4.bias"]


# ============================================================================ buffers

def test_recycled_buffers_are_never_shared_while_in_use():
    from tinygrad_cv import memory as buffers
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
    kept = [F.relu(conv(x)) for _ in range(3)]
    kept_arrays = [F.max_pool2d(k, 2).numpy() for k in kept]
    snapshot = [k.numpy().copy() for k in kept] + [a.copy() for a in kept_arrays]
    for _ in range(3):
        y = F.relu(conv(tc.randn(32, 8, 20, 20)))
        F.max_pool2d(y, 2).sum().backward()
    for k, s in zip(kept + [tc.tensor(a) for a in kept_arrays], snapshot):
        np.testing.assert_array_equal(k.numpy(), s)


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


@pytest.mark.parametrize("layer", ["relu", "conv2d+relu"])
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
        y = F.relu(F.conv2d(x, w))
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
    """Which version of a Numba kernel runs (kernels/cpu/dispatch.py `SERIAL_BELOW`) never
    changes a result: every kernel's parallel loop splits independent planes or
    elements, so two LeNet-5 training steps give bit-identical parameters."""
    from tinygrad_cv.kernels.cpu import dispatch
    monkeypatch.setattr(dispatch, "SERIAL_BELOW", 1 << 62)
    serial = _lenet_after_two_steps()
    monkeypatch.setattr(dispatch, "SERIAL_BELOW", 1)
    parallel = _lenet_after_two_steps()
    assert serial.keys() == parallel.keys()
    for name in serial:
        np.testing.assert_array_equal(serial[name], parallel[name], err_msg=name)


# ============================================================================ batch norm

@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (6, 3), (5, 3, 7)])
@pytest.mark.parametrize("parallel", [False, True])
def test_batch_norm_kernels_match_the_array_path(training, affine, shape, parallel,
                                                 monkeypatch, request):
    """The two-pass CPU kernels (kernels/cpu/norm.py) against the NumPy expressions, in
    float64: output, running statistics and every gradient."""
    from tinygrad_cv.ops import normalization as norm_mod
    if parallel:
        request.getfixturevalue("parallel_kernels")
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape) * 3 + 1
    u = rng.standard_normal(shape)
    results = []
    for kernels in (True, False):
        monkeypatch.setattr(norm_mod, "_uses_kernels", lambda a, k=kernels: k)
        bn = tc.nn.BatchNorm1d(3, affine=affine, dtype=tc.float64) if len(shape) < 4 \
            else tc.nn.BatchNorm2d(3, affine=affine, dtype=tc.float64)
        bn.running_mean.data[...] = [0.5, -1.0, 2.0]
        bn.running_var.data[...] = [1.5, 0.5, 2.0]
        if affine:
            bn.weight.data[...] = [1.5, -0.5, 2.0]
            bn.bias.data[...] = [0.1, 0.2, -0.3]
        bn.train(training)
        xt = tc.Tensor(x, dtype=tc.float64, requires_grad=True)
        out = bn(xt)
        (out * tc.Tensor(u, dtype=tc.float64)).sum().backward()
        grads = [p.grad.numpy() for p in bn.parameters()]
        results.append([out.numpy(), xt.grad.numpy(), bn.running_mean.numpy(),
                        bn.running_var.numpy()] + grads)
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11)


# ============================================================================ depthwise conv

@pytest.mark.parametrize("multiplier", [1, 2])
@pytest.mark.parametrize("kwargs", [dict(padding=1), dict(stride=2, padding=1),
                                    dict(stride=(2, 1), padding=(0, 2), dilation=(1, 2)),
                                    dict(padding="same"),
                                    # unread last rows/columns; padding past the taps
                                    dict(stride=2), dict(padding=3),
                                    dict(stride=3, padding=2, dilation=2)])
@pytest.mark.parametrize("split", [False, True])
def test_depthwise_kernels_match_the_grouped_gemm_path(multiplier, kwargs, split,
                                                       monkeypatch):
    """groups == in_channels takes kernels/cpu/depthwise.py; the grouped im2col + GEMM path
    gives the same output and gradients (float64), split across threads or not."""
    monkeypatch.setattr(conv_mod, "SPLIT_MIN_FLOPS", 0 if split else 1 << 62)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5, 4, 9, 8))
    w = rng.standard_normal((4 * multiplier, 1, 3, 3))
    b = rng.standard_normal(4 * multiplier)
    results = []
    for depthwise in (True, False):
        monkeypatch.setattr(conv_mod, "_depthwise_on_cpu", lambda xp, geom, d=depthwise: d)
        ts = [tc.Tensor(a, dtype=tc.float64, requires_grad=True) for a in (x, w, b)]
        out = F.conv2d(*ts, groups=4, **kwargs)
        u = np.cos(np.arange(out.numel())).reshape(out.shape)
        (out * tc.Tensor(u, dtype=tc.float64)).sum().backward()
        results.append([out.numpy()] + [t.grad.numpy() for t in ts])
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kwargs", [dict(kernel=3, padding=1), dict(kernel=3, stride=2),
                                    dict(kernel=1), dict(kernel=2, stride=2, dilation=1)])
@pytest.mark.parametrize("split", [False, True])
def test_side_by_side_conv_matches_the_per_sample_path(kwargs, split, monkeypatch):
    """Few output positions put a chunk's samples side by side in one GEMM (conv.py's
    FEW_POSITIONS); output, dx and dW equal the per-sample GEMMs' (float64), in chunks,
    split across threads or not."""
    monkeypatch.setattr(conv_mod, "SPLIT_MIN_FLOPS", 0 if split else 1 << 62)
    monkeypatch.setattr(conv_mod, "COLUMN_BUDGET_BYTES", 3000)   # several chunks
    kwargs = dict(kwargs)
    kernel = kwargs.pop("kernel")
    rng = np.random.default_rng(8)
    x = rng.standard_normal((7, 5, 4, 4))
    w = rng.standard_normal((6, 5, kernel, kernel))
    b = rng.standard_normal(6)
    results = []
    for few in (1 << 30, 0):
        monkeypatch.setattr(conv_mod, "FEW_POSITIONS", few)
        ts = [tc.Tensor(a, dtype=tc.float64, requires_grad=True) for a in (x, w, b)]
        out = F.conv2d(*ts, **kwargs)
        assert out.shape[2] * out.shape[3] <= 16
        u = np.cos(np.arange(out.numel())).reshape(out.shape)
        (out * tc.Tensor(u, dtype=tc.float64)).sum().backward()
        results.append([out.numpy()] + [t.grad.numpy() for t in ts])
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_depthwise_conv_gradcheck():
    rng = np.random.default_rng(7)
    gradcheck(lambda x, w: F.conv2d(x, w, stride=2, padding=1, groups=3),
              rng.standard_normal((2, 3, 5, 6)), rng.standard_normal((6, 1, 3, 3)))


# ============================================================================ hardtanh / relu6

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bounds", [(0.0, 6.0), (-1.0, 1.0), (0.5, 0.5)])
@pytest.mark.parametrize("layout", ["c", "f", "strided"])
def test_hardtanh_kernels_match_the_array_ops(dtype, bounds, layout, monkeypatch):
    """The Numba clamp and its select (kernels/cpu/relu.py) give the values and gradients
    of NumPy's clip and torch's select formula: NaN passes forward, the bounds themselves
    get gradient 0, a NaN / inf gradient is zeroed outside."""
    from tinygrad_cv.ops import relu as relu_mod
    lo, hi = bounds
    rng = np.random.default_rng(9)
    base = rng.standard_normal((6, 10)) * 4
    base[0, :4] = [lo, hi, np.nan, -np.inf]
    x = {"c": base, "f": np.asfortranarray(base), "strided": base[:, ::2]}[layout]
    grad = rng.standard_normal(x.shape)
    grad[1, :3] = [np.nan, np.inf, -np.inf]
    grad[0, 3] = np.nan                     # at -inf input: outside, so 0
    results = []
    for kernels in (True, False):
        if not kernels:
            monkeypatch.setattr(relu_mod, "_relu_kernels", lambda arr: None)
        t = tc.Tensor(x.astype(dtype), dtype=dtype, requires_grad=True)
        out = F.hardtanh(t, lo, hi)
        out.backward(tc.Tensor(grad.astype(dtype), dtype=dtype))
        results.append((out.numpy(), t.grad.numpy()))
    (out_k, grad_k), (out_a, grad_a) = results
    np.testing.assert_array_equal(out_k, out_a)
    np.testing.assert_array_equal(grad_k, grad_a)
    want = np.where((x > lo) & (x < hi), grad, 0).astype(dtype)
    np.testing.assert_array_equal(grad_k, want)
