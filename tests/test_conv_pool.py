"""conv2d and pooling: kernels against slow loop references, gradients, PyTorch parity,
bad-input errors.

The references below are deliberately naive (explicit loops over every output element,
zero / -inf padding done by hand) so they can be read and trusted at a glance.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import tinygrad_cv as tc
from tinygrad_cv.ops import conv as conv_mod
from tinygrad_cv.ops.conv import conv2d
from tinygrad_cv.ops.pool import (adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d,
                                  max_pool2d)
from tinygrad_cv.threads import get_num_threads, set_num_threads

from tests.helpers import gradcheck, requires_torch, torch, torch_parity

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
"""The `device` fixture is function-scoped: the same device serves every example."""


# ============================================================================ references

def ref_conv2d(x, w, b=None, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """Loop reference conv2d on (N, C, H, W); pads = (top, bottom, left, right)."""
    top, bottom, left, right = pads
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.zeros((n, c, h + top + bottom, wd + left + right), np.float64)
    xp[:, :, top:top + h, left:left + wd] = x
    oh = (xp.shape[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (xp.shape[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    og = o // groups
    out = np.zeros((n, o, oh, ow))
    for s in range(n):
        for oc in range(o):
            group = oc // og
            for a in range(oh):
                for bcol in range(ow):
                    total = 0.0
                    for ci in range(cg):
                        for i in range(kh):
                            for j in range(kw):
                                total += (xp[s, group * cg + ci, a * stride[0] + i * dilation[0],
                                             bcol * stride[1] + j * dilation[1]]
                                          * w[oc, ci, i, j])
                    out[s, oc, a, bcol] = total + (0.0 if b is None else b[oc])
    return out


def ref_output_size(size, k, s, p, d, ceil_mode):
    """Pool output size the long way: count window starts. A full window must fit in the
    padded input; ceil_mode adds one partial window when padded elements remain past the
    previous window, provided it starts inside the input (not in the right padding)."""
    span = d * (k - 1) + 1
    count = 0
    while True:
        start = count * s - p
        if start + span <= size + p:
            count += 1
            continue
        previous_end = start - s + span
        if ceil_mode and previous_end < size + p and start < size:
            count += 1
            continue
        return count


def ref_max_pool2d(x, k, s, p, d, ceil_mode):
    """Loop reference max-pool on (P, H, W) planes: values and flat argmax, first max wins."""
    planes, h, w = x.shape
    oh = ref_output_size(h, k[0], s[0], p[0], d[0], ceil_mode)
    ow = ref_output_size(w, k[1], s[1], p[1], d[1], ceil_mode)
    out = np.full((planes, oh, ow), -np.inf)
    idx = np.zeros((planes, oh, ow), np.int64)
    for q in range(planes):
        for a in range(oh):
            for b in range(ow):
                best, best_i = -np.inf, None
                for i in range(k[0]):
                    for j in range(k[1]):
                        r, c = a * s[0] - p[0] + i * d[0], b * s[1] - p[1] + j * d[1]
                        if 0 <= r < h and 0 <= c < w:
                            if best_i is None or x[q, r, c] > best:
                                best, best_i = x[q, r, c], r * w + c
                # an all-padding window (possible with dilation) gives -inf, index -1
                out[q, a, b], idx[q, a, b] = best, -1 if best_i is None else best_i
    return out, idx


def ref_avg_pool2d(x, k, s, p, ceil_mode, count_include_pad, divisor_override):
    """Loop reference avg-pool on planes, torch's divisor rules."""
    planes, h, w = x.shape
    oh = ref_output_size(h, k[0], s[0], p[0], 1, ceil_mode)
    ow = ref_output_size(w, k[1], s[1], p[1], 1, ceil_mode)
    out = np.zeros((planes, oh, ow))
    for q in range(planes):
        for a in range(oh):
            for b in range(ow):
                rows = range(a * s[0] - p[0], min(a * s[0] - p[0] + k[0], h + p[0]))
                cols = range(b * s[1] - p[1], min(b * s[1] - p[1] + k[1], w + p[1]))
                inside = [(r, c) for r in rows for c in cols if 0 <= r < h and 0 <= c < w]
                total = sum(x[q, r, c] for r, c in inside)
                if divisor_override:
                    div = divisor_override
                elif count_include_pad:
                    div = len(rows) * len(cols)
                else:
                    div = len(inside)
                out[q, a, b] = total / div if inside else 0.0
    return out


def ref_adaptive(x, out_size, reduce):
    """Loop reference adaptive pooling: windows floor(i*H/O) .. ceil((i+1)*H/O)."""
    planes, h, w = x.shape
    oh, ow = out_size
    out = np.zeros((planes, oh, ow))
    for q in range(planes):
        for a in range(oh):
            for b in range(ow):
                r0, r1 = (a * h) // oh, -((-(a + 1) * h) // oh)
                c0, c1 = (b * w) // ow, -((-(b + 1) * w) // ow)
                out[q, a, b] = reduce(x[q, r0:r1, c0:c1])
    return out


def test_ref_output_size_matches_formula():
    """The counting reference agrees with torch's documented formula on simple cases."""
    assert ref_output_size(28, 2, 2, 0, 1, False) == 14
    assert ref_output_size(5, 2, 2, 0, 1, False) == 2
    assert ref_output_size(5, 2, 2, 0, 1, True) == 3
    assert ref_output_size(6, 3, 2, 1, 1, True) == 4
    assert ref_output_size(5, 2, 2, 1, 1, True) == 3   # a 4th would start in the padding


# ============================================================================ strategies

@st.composite
def conv_cases(draw):
    """Random conv2d geometry with a valid output: groups, strides, pads, dilations."""
    groups = draw(st.integers(1, 3))
    cg, og = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    span = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    h = max(1, span[0] - 2 * padding[0] + draw(st.integers(0, 4)))
    w = max(1, span[1] - 2 * padding[1] + draw(st.integers(0, 4)))
    n = draw(st.integers(1, 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((n, groups * cg, h, w))
    weight = rng.standard_normal((groups * og, cg, kh, kw))
    bias = rng.standard_normal(groups * og)
    return x, weight, bias, dict(stride=stride, padding=padding, dilation=dilation,
                                 groups=groups)


@st.composite
def pool_cases(draw, dilation=True):
    """Random pooling geometry obeying torch's rules (pad <= kernel / 2)."""
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    span = (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1)
    h = max(1, span[0] - 2 * p[0] + draw(st.integers(0, 4)))
    w = max(1, span[1] - 2 * p[1] + draw(st.integers(0, 4)))
    ceil_mode = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.permutation(2 * 3 * h * w).reshape(2, 3, h, w) / 7.0 - 1.0   # tie-free
    return x, k, s, p, d, ceil_mode


# ============================================================================ conv2d

@SETTINGS
@given(conv_cases(), st.sampled_from([np.float64, np.float32]))
def test_conv2d_forward_matches_loop_reference(device, case, dtype):
    x, w, b, cfg = case
    out = conv2d(tc.Tensor(x, dtype=dtype, device=device),
                 tc.Tensor(w, dtype=dtype, device=device),
                 tc.Tensor(b, dtype=dtype, device=device), **cfg)
    pads = (cfg["padding"][0],) * 2 + (cfg["padding"][1],) * 2
    ref = ref_conv2d(x.astype(dtype), w.astype(dtype), b.astype(dtype), cfg["stride"],
                     pads, cfg["dilation"], cfg["groups"])
    assert out.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(out.numpy(), ref, rtol=tol, atol=tol)


@SETTINGS
@given(conv_cases())
def test_conv2d_gradcheck_hypothesis_geometry(device, case):
    x, w, b, cfg = case
    gradcheck(lambda x_, w_, b_: conv2d(x_, w_, b_, **cfg), x, w, b, device=device)


def test_conv2d_backward_matches_reference_adjoint():
    """dx, dW, db against gradients of the loop reference by finite differences of a
    linear map: the reference is linear in x and w, so exact differences work."""
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 4, 6, 5)), rng.standard_normal((6, 2, 3, 2)), \
        rng.standard_normal(6)
    cfg = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    pads = (1, 1, 2, 2)
    u = rng.standard_normal(ref_conv2d(x, w, b, (2, 1), pads, (1, 2), 2).shape)
    tx, tw, tb = (tc.Tensor(a, dtype=np.float64, requires_grad=True) for a in (x, w, b))
    (conv2d(tx, tw, tb, **cfg) * tc.Tensor(u, dtype=np.float64)).sum().backward()

    def basis_grad(arr, which):
        grad = np.zeros_like(arr)
        for k in range(arr.size):
            e = np.zeros_like(arr)
            e.flat[k] = 1.0
            args = {"x": (e, w, None), "w": (x, e, None)}[which]
            grad.flat[k] = np.sum(u * ref_conv2d(*args, (2, 1), pads, (1, 2), 2))
        return grad

    np.testing.assert_allclose(tx.grad.numpy(), basis_grad(x, "x"), atol=1e-10)
    np.testing.assert_allclose(tw.grad.numpy(), basis_grad(w, "w"), atol=1e-10)
    np.testing.assert_allclose(tb.grad.numpy(), u.sum(axis=(0, 2, 3)), atol=1e-10)


def test_conv2d_same_and_valid_padding():
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 2, 7, 6)), rng.standard_normal((3, 2, 4, 3))
    out = conv2d(tc.Tensor(x, dtype=np.float64), tc.Tensor(w, dtype=np.float64),
                 padding="same", dilation=(2, 1))
    # total padding d*(k-1) = (6, 2): top 3, bottom 3, left 1, right 1
    np.testing.assert_allclose(out.numpy(), ref_conv2d(x, w, None, (1, 1), (3, 3, 1, 1),
                                                       (2, 1)), atol=1e-12)
    out = conv2d(tc.Tensor(x, dtype=np.float64), tc.Tensor(w[:, :, :2, :2], dtype=np.float64),
                 padding="same")
    # even kernel: total 1, torch puts the extra row/column at the bottom/right
    np.testing.assert_allclose(out.numpy(), ref_conv2d(x, w[:, :, :2, :2], None, (1, 1),
                                                       (0, 1, 0, 1)), atol=1e-12)
    assert out.shape == (1, 3, 7, 6)
    out = conv2d(tc.Tensor(x), tc.Tensor(w), padding="valid")
    assert out.shape == (1, 3, 4, 4)
    gradcheck(lambda a, b_: conv2d(a, b_, padding="same"), x, w[:, :, :2, :2])


def test_conv2d_unbatched_input():
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((2, 5, 5)), rng.standard_normal((3, 2, 3, 3)), \
        rng.standard_normal(3)
    out = conv2d(tc.Tensor(x, dtype=np.float64), tc.Tensor(w, dtype=np.float64),
                 tc.Tensor(b, dtype=np.float64), padding=1)
    assert out.shape == (3, 5, 5)
    np.testing.assert_allclose(out.numpy(), ref_conv2d(x[None], w, b, pads=(1, 1, 1, 1))[0],
                               atol=1e-12)
    gradcheck(lambda a, b_, c: conv2d(a, b_, c, padding=1), x, w, b)


@pytest.mark.parametrize("kernel,stride,padding", [((1, 1), 1, 0), ((1, 1), 2, 0),
                                                   ((1, 1), 1, 1)])
def test_conv2d_pointwise_paths(kernel, stride, padding):
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((2, 4, 5, 3)), rng.standard_normal((6, 2, *kernel))
    gradcheck(lambda a, b_: conv2d(a, b_, stride=stride, padding=padding, groups=2), x, w)


def test_conv2d_chunked_batch_matches_unchunked(monkeypatch):
    """A tiny column budget forces one sample per chunk; results must not change."""
    rng = np.random.default_rng(5)
    x, w, b = (rng.standard_normal(s) for s in ((5, 3, 6, 6), (4, 3, 3, 3), (4,)))

    def run():
        ts = [tc.Tensor(a, dtype=np.float64, requires_grad=True) for a in (x, w, b)]
        out = conv2d(*ts, padding=1, stride=2)
        ((out + 1) ** 2).sum().backward()
        return [out.numpy()] + [t.grad.numpy() for t in ts]

    whole = run()
    monkeypatch.setattr(conv_mod, "COLUMN_BUDGET_BYTES", 1)
    chunked = run()
    for a, b_ in zip(whole, chunked):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)


def test_conv2d_skips_input_grad_and_keeps_no_columns():
    """An input without requires_grad gets no gradient (dx work skipped), the graph keeps
    nothing column-sized, and repeated calls (workspace reuse) give identical results."""
    rng = np.random.default_rng(6)
    x = tc.Tensor(rng.standard_normal((3, 2, 6, 6)).astype(np.float32))
    w = tc.Tensor(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), requires_grad=True)
    out = conv2d(x, w)
    saved_bytes = sum(a.nbytes for a in out.grad_fn.saved if a is not None)
    assert saved_bytes <= x.data.nbytes    # the input itself, never the 9x columns
    assert out.grad_fn.saved[1] is None    # weight not kept: no dx needed
    out.sum().backward()
    assert x.grad is None and w.grad is not None
    first = w.grad.numpy().copy()
    w.grad = None
    conv2d(x, w).sum().backward()
    np.testing.assert_array_equal(first, w.grad.numpy())
    assert out.grad_fn is None or out.grad_fn.saved is None or not any(
        a is not None for a in (out.grad_fn.saved or ()))


def test_conv2d_does_not_mutate_inputs_and_grads_do_not_alias():
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((2, 4, 5, 5), (4, 4, 1, 1))]
    x, w = (tc.Tensor(a.copy(), requires_grad=True) for a in arrays)
    out = conv2d(x, w)
    out.backward(tc.Tensor(np.ones(out.shape, np.float32)))
    np.testing.assert_array_equal(x.data, arrays[0])
    np.testing.assert_array_equal(w.data, arrays[1])
    x_grad = x.grad.numpy().copy()
    conv2d(tc.Tensor(arrays[0]), tc.Tensor(arrays[1] * 3)).sum()   # reuses the workspace
    np.testing.assert_array_equal(x.grad.numpy(), x_grad)
    assert not np.shares_memory(x.grad.data, out.data)


def test_float32_stays_float32():
    rng = np.random.default_rng(8)
    x = tc.Tensor(rng.standard_normal((2, 3, 6, 6)).astype(np.float32), requires_grad=True)
    w = tc.Tensor(rng.standard_normal((2, 3, 3, 3)).astype(np.float32), requires_grad=True)
    b = tc.Tensor(np.zeros(2, np.float32), requires_grad=True)
    y = max_pool2d(conv2d(x, w, b, padding=1), 2)
    z = avg_pool2d(y, 2) + adaptive_avg_pool2d(y, 1)
    assert y.dtype == np.float32 and z.dtype == np.float32
    z.sum().backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32


# ============================================================================ pools

@SETTINGS
@given(pool_cases())
def test_max_pool2d_matches_loop_reference(device, case):
    x, k, s, p, d, ceil_mode = case
    out, idx = max_pool2d(tc.Tensor(x, dtype=np.float64, device=device), k, s, p, d, ceil_mode,
                          return_indices=True)
    ref, ref_idx = ref_max_pool2d(x.reshape(6, *x.shape[2:]), k, s, p, d, ceil_mode)
    np.testing.assert_array_equal(out.numpy().reshape(ref.shape), ref)
    np.testing.assert_array_equal(idx.numpy().reshape(ref.shape), ref_idx)
    assert idx.dtype == np.int64 and idx.shape == out.shape
    assume(np.all(ref_idx >= 0))    # -inf outputs have no finite-difference gradient
    gradcheck(lambda a: max_pool2d(a, k, s, p, d, ceil_mode), x, device=device)


@SETTINGS
@given(pool_cases(dilation=False), st.booleans(), st.sampled_from([None, 1, 3]))
def test_avg_pool2d_matches_loop_reference(device, case, count_include_pad, divisor):
    x, k, s, p, _, ceil_mode = case
    out = avg_pool2d(tc.Tensor(x, dtype=np.float64, device=device), k, s, p, ceil_mode, count_include_pad,
                     divisor)
    ref = ref_avg_pool2d(x.reshape(6, *x.shape[2:]), k, s, p, ceil_mode, count_include_pad,
                         divisor)
    np.testing.assert_allclose(out.numpy().reshape(ref.shape), ref, atol=1e-12)
    gradcheck(lambda a: avg_pool2d(a, k, s, p, ceil_mode, count_include_pad, divisor), x,
              device=device)


@SETTINGS
@given(st.integers(1, 7), st.integers(1, 7), st.integers(1, 4), st.integers(1, 4),
       st.integers(0, 2**16))
def test_adaptive_pools_match_loop_reference(device, h, w, oh, ow, seed):
    x = np.random.default_rng(seed).permutation(2 * h * w).reshape(1, 2, h, w) / 5.0
    out = adaptive_avg_pool2d(tc.Tensor(x, dtype=np.float64, device=device), (oh, ow))
    np.testing.assert_allclose(out.numpy()[0], ref_adaptive(x[0], (oh, ow), np.mean),
                               atol=1e-12)
    out = adaptive_max_pool2d(tc.Tensor(x, dtype=np.float64, device=device), (oh, ow))
    np.testing.assert_array_equal(out.numpy()[0], ref_adaptive(x[0], (oh, ow), np.max))
    gradcheck(lambda a: adaptive_avg_pool2d(a, (oh, ow)), x, device=device)
    gradcheck(lambda a: adaptive_max_pool2d(a, (oh, ow)), x, device=device)


def test_pools_accept_unbatched_input_and_none_output_size():
    x = np.random.default_rng(9).permutation(3 * 6 * 5).reshape(3, 6, 5).astype(np.float64)
    t = tc.Tensor(x, dtype=np.float64)
    assert max_pool2d(t, 2).shape == (3, 3, 2)
    assert avg_pool2d(t, 3, 1, 1).shape == (3, 6, 5)
    assert adaptive_avg_pool2d(t, (None, 2)).shape == (3, 6, 2)
    assert adaptive_max_pool2d(t, 1).shape == (3, 1, 1)
    gradcheck(lambda a: max_pool2d(a, 2, 1), x)


def test_max_pool2d_window_entirely_in_padding():
    """Dilation can put every tap of a window in the padding: torch outputs -inf and a
    zero gradient there; we do the same, with index -1 (torch's index is arbitrary)."""
    x = tc.Tensor(np.ones((1, 1, 1, 1)), dtype=np.float64, requires_grad=True)
    out, idx = max_pool2d(x, 2, 1, 1, 2, return_indices=True)
    assert out.numpy().item() == -np.inf and idx.numpy().item() == -1
    out.backward(tc.Tensor(np.ones(out.shape), dtype=np.float64))
    assert x.grad.numpy().item() == 0.0


def test_max_pool2d_ties_go_to_first_index_and_padding_is_minus_inf():
    x = tc.Tensor(np.full((1, 1, 4, 4), -5.0), requires_grad=True)
    out, idx = max_pool2d(x, 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(out.numpy(), -5.0)            # padding never wins
    np.testing.assert_array_equal(idx.numpy()[0, 0], [[0, 1], [4, 5]])
    out.sum().backward()
    expected = np.zeros((4, 4))
    expected.flat[[0, 1, 4, 5]] = 1
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], expected)


# ============================================================================ PyTorch parity

CONV_CONFIGS = [
    dict(),
    dict(stride=2, padding=1),
    dict(stride=(2, 1), padding=(0, 2), dilation=(2, 1)),
    dict(padding="same", dilation=2),
    dict(groups=2, padding=1),
]


@requires_torch
@pytest.mark.parametrize("cfg", CONV_CONFIGS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_torch_parity(device, cfg, dtype):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((3, 4, 9, 8)).astype(dtype)
    w = rng.standard_normal((6, 4 // cfg.get("groups", 1), 3, 2)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    tol = dict(atol=1e-4, rtol=1e-4) if dtype == np.float32 else dict(atol=1e-10, rtol=1e-10)
    torch_parity(lambda *a: conv2d(*a, **cfg),
                 lambda *a: torch.nn.functional.conv2d(*a, **cfg), x, w, b, device=device, **tol)
    torch_parity(lambda *a: conv2d(*a, **cfg),
                 lambda *a: torch.nn.functional.conv2d(*a, **cfg), x[0], w, device=device, **tol)


@requires_torch
def test_conv2d_mnist_layer_torch_parity_float32(device):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((8, 32, 26, 26)).astype(np.float32)
    w = (rng.standard_normal((64, 32, 3, 3)) * 0.05).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    torch_parity(conv2d, torch.nn.functional.conv2d, x, w, b, atol=1e-4, rtol=1e-3,
                 device=device)


POOL_CONFIGS = [
    ("max_pool2d", dict(kernel_size=2)),
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True)),
    ("max_pool2d", dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0))),
    ("avg_pool2d", dict(kernel_size=2)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                        count_include_pad=False)),
    ("avg_pool2d", dict(kernel_size=(2, 3), padding=1, divisor_override=4)),
    ("adaptive_avg_pool2d", dict(output_size=(3, 5))),
    ("adaptive_avg_pool2d", dict(output_size=1)),
    ("adaptive_max_pool2d", dict(output_size=(4, 3))),
]
OURS = dict(max_pool2d=max_pool2d, avg_pool2d=avg_pool2d,
            adaptive_avg_pool2d=adaptive_avg_pool2d, adaptive_max_pool2d=adaptive_max_pool2d)


@requires_torch
@pytest.mark.parametrize("name,cfg", POOL_CONFIGS)
@pytest.mark.parametrize("batched", [True, False])
def test_pool_torch_parity(device, name, cfg, batched):
    shape = (2, 3, 9, 7) if batched else (3, 9, 7)
    x = np.random.default_rng(12).permutation(int(np.prod(shape))).reshape(shape)
    x = (x / 10.0).astype(np.float32)
    theirs = getattr(torch.nn.functional, name)
    torch_parity(lambda a: OURS[name](a, **cfg), lambda a: theirs(a, **cfg), x,
                 atol=1e-6, rtol=1e-5, device=device)


@requires_torch
def test_max_pool2d_indices_and_ties_match_torch():
    x = np.round(np.random.default_rng(13).standard_normal((2, 3, 8, 7))).astype(np.float32)
    for cfg in (dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)):
        _, ours = max_pool2d(tc.Tensor(x), return_indices=True, **cfg)
        _, theirs = torch.nn.functional.max_pool2d(torch.tensor(x), return_indices=True,
                                                   **cfg)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
        torch_parity(lambda a: max_pool2d(a, **cfg),
                     lambda a: torch.nn.functional.max_pool2d(a, **cfg), x)


# ============================================================================ max pool fast paths
# Non-overlapping windows (kernel == stride, no padding, windows inside) take the CPU
# "tiles" kernels: a uint8 argmax code per output and a write-once backward. Without a
# gradient to compute, windows inside the input take `max_pool2d_values_inside`. On
# cuda these tests run the general kernels, which must give the same answers.

def tile_input(shape, dtype, fill, seed=20):
    """Integers (many ties), all equal, standard normal, or integers with NaNs (some
    windows with two NaNs: the last one wins, as torch)."""
    rng = np.random.default_rng(seed)
    if fill == "equal":
        return np.full(shape, 2.0, dtype)
    if fill == "normal":
        return rng.standard_normal(shape).astype(dtype)
    x = rng.integers(-3, 3, shape).astype(dtype)
    if fill == "nan":
        x.reshape(-1)[rng.choice(x.size, x.size // 8, replace=False)] = np.nan
        x[..., 0, :2] = np.nan
        x[..., 1, 1] = np.nan
    return x


def expected_grad(planes_shape, ref_idx, upstream):
    """Each output's gradient at its flat argmax, zero elsewhere (windows don't overlap)."""
    planes = planes_shape[0]
    grad = np.zeros((planes, planes_shape[1] * planes_shape[2]), upstream.dtype)
    np.put_along_axis(grad, ref_idx.reshape(planes, -1), upstream.reshape(planes, -1), axis=1)
    return grad


TILE_CASES = [      # input shape, kernel_size (= stride), dtype
    ((2, 3, 8, 8), 2, np.float32),
    ((2, 3, 7, 7), 2, np.float64),        # last row and column dropped
    ((1, 2, 9, 11), 3, np.float64),       # 3x3 stride 3, two columns dropped
    ((3, 7, 6), 2, np.float32),           # unbatched (C, H, W), last row dropped
    ((2, 2, 6, 9), (2, 3), np.float32),   # rectangular windows
    ((1, 2, 3, 4), 1, np.float64),        # 1x1: the identity
]


@pytest.mark.parametrize("shape,kernel,dtype", TILE_CASES)
@pytest.mark.parametrize("fill", ["integers", "equal"])
def test_max_pool2d_tiles_match_loop_reference(device, shape, kernel, dtype, fill):
    x = tile_input(shape, dtype, fill)
    k = conv_mod.pair(kernel, "kernel_size", "test")
    planes = x.reshape(-1, *shape[-2:])
    ref, ref_idx = ref_max_pool2d(planes.astype(np.float64), k, k, (0, 0), (1, 1), False)
    t = tc.Tensor(x, dtype=dtype, device=device, requires_grad=True)
    out = max_pool2d(t, kernel)
    assert out.dtype == dtype and out.shape == shape[:-2] + ref.shape[1:]
    np.testing.assert_array_equal(out.numpy().reshape(ref.shape), ref.astype(dtype))
    upstream = np.random.default_rng(21).standard_normal(out.shape).astype(dtype)
    out.backward(tc.Tensor(upstream, dtype=dtype, device=device))
    np.testing.assert_array_equal(t.grad.numpy().reshape(len(planes), -1),
                                  expected_grad(planes.shape, ref_idx, upstream))
    with tc.no_grad():                                   # the inference path
        np.testing.assert_array_equal(max_pool2d(t, kernel).numpy(), out.numpy())
    plain = tc.Tensor(x, dtype=dtype, device=device)     # no grad needed: same path
    np.testing.assert_array_equal(max_pool2d(plain, kernel).numpy(), out.numpy())


TILE_TORCH_CASES = [      # input shape, kernel_size (= stride), dtype, fill
    ((64, 16, 10, 10), 2, np.float32, "normal"),      # LeNet-5's second pool
    ((4, 64, 32, 32), 2, np.float32, "integers"),     # large (parallel: see the test)
    ((2, 3, 8, 8), 2, np.float32, "equal"),
    ((2, 3, 7, 7), 2, np.float64, "nan"),
    ((2, 3, 9, 10), 3, np.float32, "nan"),
    ((2, 9, 8), 3, np.float64, "integers"),
    ((2, 2, 6, 9), (2, 3), np.float64, "nan"),
]


@requires_torch
@pytest.mark.parametrize("shape,kernel,dtype,fill", TILE_TORCH_CASES)
def test_max_pool2d_tiles_match_torch(device, shape, kernel, dtype, fill, request):
    """Values, input gradient (it names the argmax: ties and NaNs), the no-grad values
    and `return_indices` (torch's flat positions) all equal torch's, exactly. The
    large case runs the parallel kernels."""
    if shape[0] * shape[1] >= 256:
        request.getfixturevalue("parallel_kernels")
    x = tile_input(shape, dtype, fill)
    t = tc.Tensor(x, dtype=dtype, device=device, requires_grad=True)
    out = max_pool2d(t, kernel)
    upstream = np.random.default_rng(22).standard_normal(out.shape).astype(dtype)
    out.backward(tc.Tensor(upstream, dtype=dtype, device=device))
    theirs_in = torch.tensor(x, requires_grad=True)
    theirs = torch.nn.functional.max_pool2d(theirs_in, kernel)
    theirs.backward(torch.tensor(upstream))
    np.testing.assert_array_equal(out.numpy(), theirs.detach().numpy())
    np.testing.assert_array_equal(t.grad.numpy(), theirs_in.grad.numpy())
    with tc.no_grad():
        np.testing.assert_array_equal(max_pool2d(t, kernel).numpy(), out.numpy())
        _, ours_idx = max_pool2d(t, kernel, return_indices=True)
    _, theirs_idx = torch.nn.functional.max_pool2d(torch.tensor(x), kernel,
                                                   return_indices=True)
    np.testing.assert_array_equal(ours_idx.numpy(), theirs_idx.numpy())
    assert ours_idx.dtype == np.int64


@requires_torch
@pytest.mark.parametrize("cfg", [dict(kernel_size=3, stride=2), dict(kernel_size=3, stride=1),
                                 dict(kernel_size=(2, 3), stride=(1, 2))])
def test_max_pool2d_inference_path_overlapping_windows_match_torch(device, cfg):
    """No grad and windows inside but overlapping: maxima only, as torch's."""
    x = tile_input((2, 3, 9, 8), np.float32, "nan")
    with tc.no_grad():
        out = max_pool2d(tc.Tensor(x, device=device), **cfg)
    theirs = torch.nn.functional.max_pool2d(torch.tensor(x), **cfg)
    np.testing.assert_array_equal(out.numpy(), theirs.numpy())


@pytest.mark.parametrize("kernel", [2, 3, (2, 3)])
def test_max_pool2d_tiles_gradcheck(device, kernel):
    x = np.random.default_rng(23).permutation(2 * 3 * 7 * 9).reshape(2, 3, 7, 9) / 10.0
    gradcheck(lambda a: max_pool2d(a, kernel), x, device=device)


@pytest.mark.parametrize("kernel,stride,h,w", [((2, 2), (2, 2), 7, 9), ((3, 3), (3, 3), 10, 11),
                                               ((2, 3), (2, 3), 6, 8), ((1, 1), (1, 1), 3, 4),
                                               ((3, 3), (2, 2), 9, 8), ((2, 3), (1, 2), 6, 7)])
@pytest.mark.parametrize("parallel", [False, True])
def test_max_pool2d_fast_kernels_match_general_kernels(kernel, stride, h, w, parallel):
    """The tiles and values kernels against `max_pool2d_forward` / `scatter_to_indices`,
    serial twin and parallel kernel alike; the backward writes every input element
    (including the rows and columns no window covers: grad_in starts as NaN)."""
    from tinygrad_cv.kernels import cpu
    run = (lambda k: k.parallel) if parallel else (lambda k: k)
    (kh, kw), (sh, sw) = kernel, stride
    x = tile_input((5, h, w), np.float32, "nan")
    x[2] = -np.inf
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.empty((5, oh, ow), np.float32)
    indices = np.empty((5, oh, ow), np.int64)
    cpu.max_pool2d_forward(x, out, indices, kh, kw, sh, sw, 0, 0, 1, 1)
    values = np.full_like(out, 7.0)
    run(cpu.max_pool2d_values_inside)(x, values, kh, kw, sh, sw)
    np.testing.assert_array_equal(values, out)
    if kernel != stride:
        return
    tiles_out = np.full_like(out, 7.0)
    codes = np.full(out.shape, 255, np.uint8)
    run(cpu.max_pool2d_tiles_forward)(x, tiles_out, codes, kh, kw)
    np.testing.assert_array_equal(tiles_out, out)
    rows = np.arange(oh)[:, None] * kh + codes // kw        # codes -> flat positions
    cols = np.arange(ow) * kw + codes % kw
    np.testing.assert_array_equal(rows * w + cols, indices)
    grad_out = np.random.default_rng(24).standard_normal(out.shape).astype(np.float32)
    grad_in = np.full(x.shape, np.nan, np.float32)
    run(cpu.max_pool2d_tiles_backward)(grad_out, codes, grad_in, kh, kw)
    expected = np.empty((5, h * w), np.float32)
    cpu.scatter_to_indices(grad_out.reshape(5, -1), indices.reshape(5, -1), expected)
    np.testing.assert_array_equal(grad_in.reshape(5, -1), expected)


@pytest.mark.parametrize("kwargs,grad,expected", [
    (dict(kernel_size=2), True, ["max_pool2d_tiles_forward", "max_pool2d_tiles_backward"]),
    (dict(kernel_size=2), False, ["max_pool2d_values_inside"]),
    (dict(kernel_size=2, return_indices=True), True,
     ["max_pool2d_forward_inside", "scatter_to_indices"]),
    (dict(kernel_size=2, return_indices=True), False, ["max_pool2d_forward_inside"]),
    (dict(kernel_size=3, stride=2), True, ["max_pool2d_forward_inside", "scatter_to_indices"]),
    (dict(kernel_size=3, stride=2), False, ["max_pool2d_values_inside"]),
    (dict(kernel_size=2, padding=1), False, ["max_pool2d_forward"]),
    (dict(kernel_size=2, ceil_mode=True), True, ["max_pool2d_forward", "scatter_to_indices"]),
])
def test_max_pool2d_cpu_path_choice(monkeypatch, kwargs, grad, expected):
    """Which CPU kernels each kind of call runs (so the tests above test the fast paths)."""
    from tinygrad_cv.kernels import cpu
    calls = []

    def spy(name):
        kernel = getattr(cpu, name)

        def call(*args):
            calls.append(name)
            return kernel(*args)
        return call

    for name in ("max_pool2d_forward", "max_pool2d_forward_inside", "scatter_to_indices",
                 "max_pool2d_tiles_forward", "max_pool2d_tiles_backward",
                 "max_pool2d_values_inside"):
        monkeypatch.setattr(cpu, name, spy(name))
    x = tc.Tensor(np.random.default_rng(25).standard_normal((2, 3, 7, 7)), requires_grad=grad)
    out = max_pool2d(x, **kwargs)
    out = out[0] if kwargs.get("return_indices") else out
    if grad:
        out.sum().backward()
    assert calls == expected


# ============================================================================ errors

def _t(*shape):
    return tc.Tensor(np.zeros(shape, np.float32))


@pytest.mark.parametrize("x_shape,w_shape,kwargs,match", [
    ((1, 3, 8, 8), (4, 1, 3, 3), {}, r"conv2d: input has 3 channels but weight expects 1"),
    ((1, 4, 8, 8), (6, 1, 3, 3), dict(groups=2), r"input has 4 channels but weight expects 2"),
    ((1, 4, 8, 8), (5, 2, 3, 3), dict(groups=2), r"conv2d: out_channels=5 .* groups=2"),
    ((8, 8), (4, 1, 3, 3), {}, r"conv2d: expected a 3-D .* or 4-D .* got shape \(8, 8\)"),
    ((1, 1, 1, 8, 8), (4, 1, 3, 3), {}, r"conv2d: expected a 3-D"),
    ((1, 1, 8, 8), (4, 1, 3), {}, r"conv2d: expected a 4-D weight"),
    ((1, 1, 2, 8), (4, 1, 3, 3), {}, r"conv2d: kernel size .*\(3, 3\) is larger than the "
                                     r"padded input \(2, 8\)"),
    ((1, 1, 4, 4), (4, 1, 3, 3), dict(dilation=2), r"larger than the padded input"),
    ((1, 1, 8, 8), (4, 1, 3, 3), dict(stride=0), r"conv2d: stride and dilation"),
    ((1, 1, 8, 8), (4, 1, 3, 3), dict(padding=-1), r"conv2d: padding must be non-negative"),
    ((1, 1, 8, 8), (4, 1, 3, 3), dict(padding="same", stride=2), r"strided"),
    ((1, 1, 8, 8), (4, 1, 3, 3), dict(padding="full"), r"conv2d: padding must be"),
    ((1, 1, 8, 8), (4, 1, 3, 3), dict(groups=0), r"conv2d: groups must be"),
])
def test_conv2d_bad_input_errors(x_shape, w_shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        conv2d(_t(*x_shape), _t(*w_shape), **kwargs)


def test_conv2d_bad_bias_and_dtype_errors():
    with pytest.raises(ValueError, match=r"conv2d: bias must have shape \(4,\)"):
        conv2d(_t(1, 1, 5, 5), _t(4, 1, 3, 3), _t(3))
    with pytest.raises(TypeError, match=r"conv2d: input dtype float32 and weight dtype "
                                        r"float64"):
        conv2d(_t(1, 1, 5, 5), tc.Tensor(np.zeros((4, 1, 3, 3)), dtype=np.float64))
    with pytest.raises(TypeError, match=r"conv2d: expected a float32 or float64 input"):
        conv2d(tc.Tensor(np.zeros((1, 1, 5, 5), np.int64)), _t(4, 1, 3, 3))


def test_conv2d_error_changes_nothing():
    w = tc.Tensor(np.ones((4, 1, 3, 3), np.float32), requires_grad=True)
    with pytest.raises(ValueError):
        conv2d(_t(1, 3, 8, 8), w).sum().backward()
    assert w.grad is None
    np.testing.assert_array_equal(w.numpy(), 1.0)


@pytest.mark.parametrize("call,match", [
    (lambda: max_pool2d(_t(1, 1, 8, 8), 3, padding=2), r"max_pool2d: pad should be at most "
                                                       r"half of kernel size"),
    (lambda: avg_pool2d(_t(1, 1, 8, 8), 2, padding=(0, 2)), r"avg_pool2d: pad should be"),
    (lambda: max_pool2d(_t(8, 8), 2), r"max_pool2d: expected a 3-D"),
    (lambda: avg_pool2d(_t(1, 1, 1, 8, 8), 2), r"avg_pool2d: expected a 3-D"),
    (lambda: max_pool2d(_t(1, 1, 2, 2), 3), r"max_pool2d: .* output size .* too small"),
    (lambda: max_pool2d(_t(1, 1, 8, 8), 0), r"kernel_size must be greater than zero"),
    (lambda: max_pool2d(_t(1, 1, 8, 8), 2, stride=0), r"stride must be greater than zero"),
    (lambda: avg_pool2d(_t(1, 1, 8, 8), 2, divisor_override=0), r"divisor_override"),
    (lambda: adaptive_avg_pool2d(_t(1, 1, 8, 8), 0), r"adaptive_avg_pool2d: output_size"),
    (lambda: adaptive_max_pool2d(_t(1, 0, 8, 8), 2), r"non-zero"),
])
def test_pool_bad_input_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_pool_rejects_bad_argument_types():
    with pytest.raises(TypeError, match=r"max_pool2d: kernel_size must be an int or a pair"):
        max_pool2d(_t(1, 1, 8, 8), (2, 2, 2))
    with pytest.raises(TypeError, match=r"avg_pool2d: expected a float32 or float64"):
        avg_pool2d(tc.Tensor(np.zeros((1, 1, 4, 4), np.int64)), 2)


# ============================================================================ threads, imports

def test_set_num_threads_round_trip():
    before = get_num_threads()
    try:
        set_num_threads(1)
        assert get_num_threads() == 1
    finally:
        set_num_threads(before)
    with pytest.raises(ValueError, match="set_num_threads"):
        set_num_threads(0)


def test_importing_ops_and_cuda_kernels_never_imports_cupy(tmp_path):
    """A poisoned `cupy` on the path proves nothing imports it at import time."""
    (tmp_path / "cupy").mkdir()
    (tmp_path / "cupy" / "__init__.py").write_text("raise RuntimeError('cupy imported')\n")
    code = textwrap.dedent("""
        import tinygrad_cv
        from tinygrad_cv.ops import conv, pool
        from tinygrad_cv.kernels import gpu, kernels_for
        import numpy as np
        assert kernels_for(np).__name__.endswith('cpu')
    """)
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), root]))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
