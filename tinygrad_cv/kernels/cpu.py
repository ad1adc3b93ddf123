"""Numba CPU kernels for conv2d (im2col / col2im) and pooling.

Every kernel works on C-contiguous arrays whose leading axis is a "plane" = one
(sample, channel) pair, so one layout serves them all and `prange` over planes gives
each thread whole, independent planes: no write races, no atomics. The callers in
`ops/conv.py` and `ops/pool.py` reshape NCHW arrays into this form (a free view).

Geometry conventions, shared with `kernels/cuda.py`:
- `pad_h`, `pad_w` are the top / left paddings; the bottom / right paddings only change
  the output size, which the caller passes in (so asymmetric 'same' padding works too).
- Out-of-bounds input reads as 0 for im2col and is skipped by pooling (-inf padding).
- Max-pool indices are flat positions `ih * width + iw` inside the input plane, as torch.

Hot loops index flat views with unsigned (uint64) offsets: Numba then drops its
negative-index wrap-around check and LLVM vectorises the copy (measured ~5x on im2col).

Kernels compile lazily per dtype (float32 / float64; no float64 temporaries arrays are
made for float32 data) and are cached on disk (`cache=True`). They never call BLAS, so
Numba threads and BLAS threads are never nested.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

from .. import threads  # noqa: F401  (chooses Numba's threading layer before first use)


# ----------------------------------------------------------------------------- helpers

@njit(cache=True, inline="always")
def _valid_range(start, step, size, count):
    """Indices t in [lo, hi) with 0 <= start + t * step < size (step > 0), lo <= hi."""
    lo = 0
    if start < 0:
        lo = (-start + step - 1) // step
    last = size - 1 - start
    hi = last // step + 1 if last >= 0 else 0
    if hi > count:
        hi = count
    if lo > count:
        lo = count
    if hi < lo:
        hi = lo
    return lo, hi


@njit(cache=True, inline="always")
def _zero_run(flat, start, count):
    """flat[start : start + count] = 0, with an unsigned index."""
    for k in range(uint64(count)):
        flat[start + k] = 0


@njit(cache=True, inline="always")
def _copy_run(src_flat, src, src_step, dst_flat, dst, count):
    """dst_flat[dst + k] = src_flat[src + k * src_step] for k < count (unsigned)."""
    if src_step == 1:
        for k in range(uint64(count)):
            dst_flat[dst + k] = src_flat[src + k]
    else:
        step = uint64(src_step)
        for k in range(uint64(count)):
            dst_flat[dst + k] = src_flat[src + k * step]


@njit(cache=True, inline="always")
def _add_run(src_flat, src, dst_flat, dst, dst_step, count):
    """dst_flat[dst + k * dst_step] += src_flat[src + k] for k < count (unsigned)."""
    if dst_step == 1:
        for k in range(uint64(count)):
            dst_flat[dst + k] += src_flat[src + k]
    else:
        step = uint64(dst_step)
        for k in range(uint64(count)):
            dst_flat[dst + k * step] += src_flat[src + k]


# ----------------------------------------------------------------------------- conv

@njit(parallel=True, cache=True)
def im2col(x, cols, out_h, out_w, kernel_h, kernel_w, stride_h, stride_w,
           pad_h, pad_w, dil_h, dil_w):
    """Fill `cols` (planes, kernel_h*kernel_w, out_h*out_w) from `x` (planes, H, W).

    With planes = N*C, `cols` viewed as (N, C*kh*kw, out_h*out_w) is the GEMM operand of
    `weight(O, C*kh*kw) @ cols[n]`, whose result is already in NCHW order. For each
    (plane, tap, output row) one contiguous run of valid inputs is copied and the
    padded ends are zero-filled.
    """
    planes, height, width = x.shape
    x_flat = x.reshape(-1)
    cols_flat = cols.reshape(-1)
    taps = kernel_h * kernel_w
    positions = out_h * out_w
    for p in prange(planes):
        for i in range(kernel_h):
            for j in range(kernel_w):
                w_start = j * dil_w - pad_w
                ow_lo, ow_hi = _valid_range(w_start, stride_w, width, out_w)
                row_start = (p * taps + i * kernel_w + j) * positions
                for oh in range(out_h):
                    dst = uint64(row_start + oh * out_w)
                    ih = oh * stride_h + i * dil_h - pad_h
                    if ih < 0 or ih >= height:
                        _zero_run(cols_flat, dst, out_w)
                        continue
                    _zero_run(cols_flat, dst, ow_lo)
                    src = uint64((p * height + ih) * width + w_start + ow_lo * stride_w)
                    _copy_run(x_flat, src, stride_w, cols_flat, dst + uint64(ow_lo),
                              ow_hi - ow_lo)
                    _zero_run(cols_flat, dst + uint64(ow_hi), out_w - ow_hi)


@njit(parallel=True, cache=True)
def col2im(cols, dx, out_h, out_w, kernel_h, kernel_w, stride_h, stride_w,
           pad_h, pad_w, dil_h, dil_w):
    """Scatter-add `cols` (planes, kh*kw, out_h*out_w) into `dx` (planes, H, W), which
    is overwritten (no need to zero it first). The adjoint of `im2col`."""
    planes, height, width = dx.shape
    dx_flat = dx.reshape(-1)
    cols_flat = cols.reshape(-1)
    taps = kernel_h * kernel_w
    positions = out_h * out_w
    for p in prange(planes):
        _zero_run(dx_flat, uint64(p * height * width), height * width)
        for i in range(kernel_h):
            h_start = i * dil_h - pad_h
            oh_lo, oh_hi = _valid_range(h_start, stride_h, height, out_h)
            for j in range(kernel_w):
                w_start = j * dil_w - pad_w
                ow_lo, ow_hi = _valid_range(w_start, stride_w, width, out_w)
                row_start = (p * taps + i * kernel_w + j) * positions
                for oh in range(oh_lo, oh_hi):
                    ih = oh * stride_h + h_start
                    src = uint64(row_start + oh * out_w + ow_lo)
                    dst = uint64((p * height + ih) * width + w_start + ow_lo * stride_w)
                    _add_run(cols_flat, src, dx_flat, dst, stride_w, ow_hi - ow_lo)


# ----------------------------------------------------------------------------- max pool

@njit(parallel=True, cache=True)
def max_pool2d_forward(x, out, indices, kernel_h, kernel_w, stride_h, stride_w,
                       pad_h, pad_w, dil_h, dil_w):
    """Max and argmax of each window in one pass: `out`, `indices` are (planes, OH, OW).

    Padding acts as -inf (skipped). Ties keep the first maximum in scan order and NaN
    wins, as torch's CPU kernel; an all -inf window points at its first valid element.
    """
    planes, height, width = x.shape
    out_h, out_w = out.shape[1], out.shape[2]
    for p in prange(planes):
        for oh in range(out_h):
            h0 = oh * stride_h - pad_h
            i_lo, i_hi = _valid_range(h0, dil_h, height, kernel_h)
            for ow in range(out_w):
                w0 = ow * stride_w - pad_w
                j_lo, j_hi = _valid_range(w0, dil_w, width, kernel_w)
                best = -np.inf
                best_index = -1
                if i_lo < i_hi and j_lo < j_hi:
                    best_index = (h0 + i_lo * dil_h) * width + w0 + j_lo * dil_w
                for i in range(i_lo, i_hi):
                    ih = h0 + i * dil_h
                    for j in range(j_lo, j_hi):
                        iw = w0 + j * dil_w
                        value = x[p, ih, iw]
                        if value > best or value != value:
                            best = value
                            best_index = ih * width + iw
                out[p, oh, ow] = best
                indices[p, oh, ow] = best_index


@njit(parallel=True, cache=True)
def scatter_to_indices(grad_out, indices, grad_in):
    """Max-pool backward: add each output gradient into the input position its window's
    argmax names. `grad_out`, `indices`: (planes, L); `grad_in` (planes, H*W) is
    overwritten."""
    planes, size = grad_in.shape
    count = grad_out.shape[1]
    for p in prange(planes):
        for k in range(size):
            grad_in[p, k] = 0
        for k in range(count):
            index = indices[p, k]
            if index >= 0:
                grad_in[p, index] += grad_out[p, k]


# ----------------------------------------------------------------------------- avg pool

@njit(cache=True, inline="always")
def _avg_window(oh, ow, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                height, width, count_include_pad, divisor_override):
    """Clipped window bounds and divisor of one avg-pool output, torch's rules."""
    h0 = oh * stride_h - pad_h
    w0 = ow * stride_w - pad_w
    h1 = min(h0 + kernel_h, height + pad_h)
    w1 = min(w0 + kernel_w, width + pad_w)
    pool_size = (h1 - h0) * (w1 - w0)
    h0 = max(h0, 0)
    w0 = max(w0, 0)
    h1 = min(h1, height)
    w1 = min(w1, width)
    if divisor_override != 0:
        divisor = divisor_override
    elif count_include_pad:
        divisor = pool_size
    else:
        divisor = (h1 - h0) * (w1 - w0)
    return h0, h1, w0, w1, divisor


@njit(parallel=True, cache=True)
def avg_pool2d_forward(x, out, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                       count_include_pad, divisor_override):
    """Window means into `out` (planes, OH, OW); `divisor_override` 0 means none."""
    planes, height, width = x.shape
    out_h, out_w = out.shape[1], out.shape[2]
    for p in prange(planes):
        for oh in range(out_h):
            for ow in range(out_w):
                h0, h1, w0, w1, divisor = _avg_window(
                    oh, ow, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                    height, width, count_include_pad, divisor_override)
                if h0 >= h1 or w0 >= w1:
                    out[p, oh, ow] = 0
                    continue
                total = x[p, h0, w0] - x[p, h0, w0]  # a zero of the data's dtype
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        total += x[p, ih, iw]
                out[p, oh, ow] = total / divisor


@njit(parallel=True, cache=True)
def avg_pool2d_backward(grad_out, grad_in, kernel_h, kernel_w, stride_h, stride_w,
                        pad_h, pad_w, count_include_pad, divisor_override):
    """Spread each output gradient evenly over its window; `grad_in` is overwritten."""
    planes, height, width = grad_in.shape
    out_h, out_w = grad_out.shape[1], grad_out.shape[2]
    for p in prange(planes):
        for ih in range(height):
            for iw in range(width):
                grad_in[p, ih, iw] = 0
        for oh in range(out_h):
            for ow in range(out_w):
                h0, h1, w0, w1, divisor = _avg_window(
                    oh, ow, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                    height, width, count_include_pad, divisor_override)
                if h0 >= h1 or w0 >= w1:
                    continue
                share = grad_out[p, oh, ow] / divisor
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        grad_in[p, ih, iw] += share


# ----------------------------------------------------------------------------- adaptive

@njit(cache=True, inline="always")
def _adaptive_bounds(index, in_size, out_size):
    """torch's adaptive window [start, end): floor(i*in/out) .. ceil((i+1)*in/out)."""
    start = (index * in_size) // out_size
    end = ((index + 1) * in_size + out_size - 1) // out_size
    return start, end


@njit(parallel=True, cache=True)
def adaptive_avg_pool2d_forward(x, out):
    """Adaptive average pooling of `x` (planes, H, W) into `out` (planes, OH, OW)."""
    planes, height, width = x.shape
    out_h, out_w = out.shape[1], out.shape[2]
    for p in prange(planes):
        for oh in range(out_h):
            h0, h1 = _adaptive_bounds(oh, height, out_h)
            for ow in range(out_w):
                w0, w1 = _adaptive_bounds(ow, width, out_w)
                total = x[p, h0, w0] - x[p, h0, w0]
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        total += x[p, ih, iw]
                out[p, oh, ow] = total / ((h1 - h0) * (w1 - w0))


@njit(parallel=True, cache=True)
def adaptive_avg_pool2d_backward(grad_out, grad_in):
    """Spread each output gradient over its adaptive window; `grad_in` is overwritten."""
    planes, height, width = grad_in.shape
    out_h, out_w = grad_out.shape[1], grad_out.shape[2]
    for p in prange(planes):
        for ih in range(height):
            for iw in range(width):
                grad_in[p, ih, iw] = 0
        for oh in range(out_h):
            h0, h1 = _adaptive_bounds(oh, height, out_h)
            for ow in range(out_w):
                w0, w1 = _adaptive_bounds(ow, width, out_w)
                share = grad_out[p, oh, ow] / ((h1 - h0) * (w1 - w0))
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        grad_in[p, ih, iw] += share


@njit(parallel=True, cache=True)
def adaptive_max_pool2d_forward(x, out, indices):
    """Adaptive max pooling with argmax (flat plane positions), torch's tie/NaN rule."""
    planes, height, width = x.shape
    out_h, out_w = out.shape[1], out.shape[2]
    for p in prange(planes):
        for oh in range(out_h):
            h0, h1 = _adaptive_bounds(oh, height, out_h)
            for ow in range(out_w):
                w0, w1 = _adaptive_bounds(ow, width, out_w)
                best = -np.inf
                best_index = h0 * width + w0
                for ih in range(h0, h1):
                    for iw in range(w0, w1):
                        value = x[p, ih, iw]
                        if value > best or value != value:
                            best = value
                            best_index = ih * width + iw
                out[p, oh, ow] = best
                indices[p, oh, ow] = best_index
