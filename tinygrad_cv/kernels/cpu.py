"""Numba CPU kernels for conv2d (im2col / col2im) and pooling.

Every kernel works on C-contiguous arrays whose leading axis is a "plane" = one
(sample, channel) pair, so one layout serves them all and `prange` over planes gives
each thread whole, independent planes: no write races, no atomics. The callers in
`ops/conv.py` and `ops/pool.py` reshape NCHW arrays into this form (a free view).

Geometry conventions, shared with `kernels/cuda.py`:
- `pad_h`, `pad_w` are the top / left paddings; the bottom / right paddings only change
  the output size, which the caller passes in (so asymmetric 'same' padding works too).
- Out-of-bounds input reads as 0 for im2col and is skipped by pooling (-inf padding).
- Max-pool indices are flat positions `ih * width + iw` inside the input plane, as torch;
  the CPU-only `max_pool2d_tiles_*` kernels (non-overlapping windows) instead keep a
  uint8 code per output, the argmax's position `i * kernel_w + j` inside its window.

Hot loops index flat views with unsigned (uint64) offsets: Numba then drops its
negative-index wrap-around check and LLVM vectorises the copy (measured ~5x on im2col).
The 2x2 max-pool tile loops are the exception: strided 2-D indexing vectorised there and
flat uint64 offsets did not (see their section).

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


@njit(parallel=True, cache=True)
def bias_relu(out, bias, relu):
    """A layer's epilogue in one pass over `out` (planes, positions), in place: out +=
    bias[plane % bias.size], then max(., 0) when `relu` (NaN passing, as torch.relu);
    an empty `bias` means none. For conv2d the planes are the (sample, channel) pairs of
    the NCHW output; for Linear the rows of its transposed (out_features, batch) output.
    Replaces a broadcast add and a ReLU pass, each a full sweep over the activation
    (9 MB for the MNIST CNN's conv2: 0.95 -> 0.48 ms)."""
    planes, positions = out.shape
    channels = bias.size
    zero = np.zeros(1, out.dtype)[0]
    for p in prange(planes):
        row = out[p]
        if channels:
            b = bias[p % channels]
            if relu:
                for k in range(positions):
                    v = row[k] + b
                    row[k] = zero if v <= 0 else v
            else:
                for k in range(positions):
                    row[k] += b
        elif relu:
            for k in range(positions):
                v = row[k]
                row[k] = zero if v <= 0 else v


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
    # -inf of the data's dtype (a float64 `-np.inf` would widen the comparisons)
    negative_infinity = np.full(1, -np.inf, x.dtype)[0]
    for p in prange(planes):
        for oh in range(out_h):
            h0 = oh * stride_h - pad_h
            i_lo, i_hi = _valid_range(h0, dil_h, height, kernel_h)
            for ow in range(out_w):
                w0 = ow * stride_w - pad_w
                j_lo, j_hi = _valid_range(w0, dil_w, width, kernel_w)
                best = negative_infinity
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
def max_pool2d_forward_inside(x, out, indices, kernel_h, kernel_w, stride_h, stride_w):
    """`max_pool2d_forward` for the common case of windows lying wholly inside the input
    (no padding, no dilation, no ceil-mode overhang): no per-window bounds, flat
    unsigned offsets, a branch-free max. Same results, ties and NaN rule. The MNIST CNN's
    2x2 pool over 64x64x24x24: 8 ms in the general kernel, 2.5 ms here (2 threads)."""
    planes, height, width = x.shape
    out_h, out_w = out.shape[1], out.shape[2]
    for p in prange(planes):
        xf = x[p].reshape(-1)
        of = out[p].reshape(-1)
        nf = indices[p].reshape(-1)
        for oh in range(out_h):
            for ow in range(out_w):
                start = uint64(oh * stride_h * width + ow * stride_w)
                best = xf[start]
                best_index = start
                for i in range(kernel_h):
                    row = start + uint64(i * width)
                    for j in range(kernel_w):
                        k = row + uint64(j)
                        value = xf[k]
                        # branch-free select: on random data an `if` mispredicts half
                        # the time (that alone cost 8 ms -> 2.5 ms here)
                        take = (value > best) | (value != value)
                        best = value if take else best
                        best_index = k if take else best_index
                o = uint64(oh * out_w + ow)
                of[o] = best
                nf[o] = best_index


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


# Windows that tile the input (kernel == stride, no padding, no dilation, every window
# inside: the 2x2 pools of LeNet and the MNIST CNN) have kernels of their own. The
# forward keeps one uint8 "code" per output, the argmax's position inside its window
# (i * kernel_w + j, so kernel_h * kernel_w <= 256): an eighth of an int64 index. The
# backward then writes each input element once, in order (the gradient at the argmax,
# 0 elsewhere): no zeroing pass, no scatter. With no gradient to compute,
# `max_pool2d_values_inside` writes the maxima only (any windows inside the input).
# The 2x2 loops use 2-D indexing with constant offsets (`xp[2 * oh, 2 * ow + 1]`), which
# LLVM vectorises by de-interleaving the even and odd columns; the same loops on flat uint64 offsets were not vectorised (2.5 ms, not 0.3).
# Measured (2 threads, float32, kernels alone, medians): the MNIST CNN's pool over
# (64, 64, 24, 24): forward 2.3 ms (`max_pool2d_forward_inside`, int64 indices) ->
# 0.33 ms (0.28 ms values only); backward 0.37-0.50 ms (`scatter_to_indices`) -> 0.32 ms.
# LeNet's (64, 16, 10, 10): forward 0.235 -> 0.044 ms, but backward 0.021 -> 0.052 ms:
# on rows shorter than a vector the selects run scalar, while the old plane zeroing
# is a vectorised memset and only a quarter of the elements are scattered.

@njit(cache=True, inline="always")
def _replaces(value, best):
    """True when `value` replaces `best`, the running max of a window scanned in order:
    greater, or NaN. So ties keep the first maximum and the last NaN wins, as torch's
    CPU kernel (and `max_pool2d_forward`). Used in selects, never in branches."""
    return (value > best) | (value != value)


@njit(cache=True, inline="always")
def _max_2x2(a, b, c, d):
    """Max and code (0..3) of the window [[a, b], [c, d]]: each row's winner first, then
    the two winners. The second row's codes all follow the first row's, so this picks
    the same element as scanning a, b, c, d in order, with four branch-free selects."""
    take = _replaces(b, a)
    top = b if take else a
    top_code = 1 if take else 0
    take = _replaces(d, c)
    bottom = d if take else c
    bottom_code = 3 if take else 2
    take = _replaces(bottom, top)
    return (bottom if take else top), (bottom_code if take else top_code)


@njit(cache=True, inline="always")
def _window_max(plane, h0, w0, kernel_h, kernel_w):
    """Max and code (i * kernel_w + j) of the window of `plane` whose top-left element
    is (h0, w0), scanned row by row."""
    best = plane[h0, w0]
    code = 0
    for i in range(kernel_h):
        for j in range(kernel_w):
            value = plane[h0 + i, w0 + j]
            take = _replaces(value, best)
            best = value if take else best
            code = i * kernel_w + j if take else code
    return best, code


@njit(cache=True, inline="always")
def _tiles_forward_2x2(xp, op, cp):
    """`max_pool2d_tiles_forward` of one plane for 2x2 windows (constant offsets: LLVM
    vectorises the row loop, de-interleaving the even and odd columns)."""
    for oh in range(op.shape[0]):
        for ow in range(op.shape[1]):
            best, code = _max_2x2(xp[2 * oh, 2 * ow], xp[2 * oh, 2 * ow + 1],
                                  xp[2 * oh + 1, 2 * ow], xp[2 * oh + 1, 2 * ow + 1])
            op[oh, ow] = best
            cp[oh, ow] = code


@njit(cache=True, inline="always")
def _tiles_backward_2x2(gp, cp, gip):
    """`max_pool2d_tiles_backward` of one plane's covered rows and columns, 2x2 windows:
    each input row written left to right, two elements per window. (2-D indexing, not
    row views: a view made per row costs two atomic reference counts inside a parallel
    loop, which doubled this kernel's time.)"""
    for oh in range(gp.shape[0]):
        for ow in range(gp.shape[1]):
            gip[2 * oh, 2 * ow] = gp[oh, ow] if cp[oh, ow] == 0 else 0
            gip[2 * oh, 2 * ow + 1] = gp[oh, ow] if cp[oh, ow] == 1 else 0
        for ow in range(gp.shape[1]):
            gip[2 * oh + 1, 2 * ow] = gp[oh, ow] if cp[oh, ow] == 2 else 0
            gip[2 * oh + 1, 2 * ow + 1] = gp[oh, ow] if cp[oh, ow] == 3 else 0


@njit(parallel=True, cache=True)
def max_pool2d_tiles_forward(x, out, codes, kernel_h, kernel_w):
    """Max pooling with windows that tile the input (stride == kernel, windows inside):
    `out` gets each window's max, `codes` (uint8, same shape) its argmax's position in
    the window, i * kernel_w + j, for `max_pool2d_tiles_backward`. Same values, ties and
    NaN rule as `max_pool2d_forward`."""
    out_h, out_w = out.shape[1], out.shape[2]
    for p in prange(x.shape[0]):
        xp, op, cp = x[p], out[p], codes[p]
        if kernel_h == 2 and kernel_w == 2:
            _tiles_forward_2x2(xp, op, cp)
            continue
        for oh in range(out_h):
            for ow in range(out_w):
                best, code = _window_max(xp, oh * kernel_h, ow * kernel_w, kernel_h,
                                         kernel_w)
                op[oh, ow] = best
                cp[oh, ow] = code


@njit(parallel=True, cache=True)
def max_pool2d_tiles_backward(grad_out, codes, grad_in, kernel_h, kernel_w):
    """Backward of `max_pool2d_tiles_forward`: writes every element of `grad_in`
    (planes, H, W) once: the window's gradient where `codes` names its argmax, 0
    elsewhere and in the bottom rows / right columns no window covers."""
    planes, out_h, out_w = grad_out.shape
    height, width = grad_in.shape[1], grad_in.shape[2]
    covered_h, covered_w = out_h * kernel_h, out_w * kernel_w
    for p in prange(planes):
        gp, cp, gip = grad_out[p], codes[p], grad_in[p]
        if kernel_h == 2 and kernel_w == 2:
            _tiles_backward_2x2(gp, cp, gip)
        else:
            for ih in range(covered_h):
                oh = ih // kernel_h
                first = (ih - oh * kernel_h) * kernel_w    # code of the row's column 0
                for ow in range(out_w):
                    g = gp[oh, ow]
                    code = cp[oh, ow]
                    for j in range(kernel_w):
                        gip[ih, ow * kernel_w + j] = g if code == first + j else 0
        for ih in range(covered_h):
            for iw in range(covered_w, width):
                gip[ih, iw] = 0
        for ih in range(covered_h, height):
            for iw in range(width):
                gip[ih, iw] = 0


@njit(parallel=True, cache=True)
def max_pool2d_values_inside(x, out, kernel_h, kernel_w, stride_h, stride_w):
    """Window maxima only (no argmax) for windows lying wholly inside the input (no
    padding, no dilation, any kernel and stride): the inference path of max pooling.
    Same values and NaN rule as `max_pool2d_forward`."""
    out_h, out_w = out.shape[1], out.shape[2]
    two_by_two = kernel_h == 2 and kernel_w == 2 and stride_h == 2 and stride_w == 2
    for p in prange(x.shape[0]):
        xp, op = x[p], out[p]
        for oh in range(out_h):
            if two_by_two:
                for ow in range(out_w):
                    best, _ = _max_2x2(xp[2 * oh, 2 * ow], xp[2 * oh, 2 * ow + 1],
                                       xp[2 * oh + 1, 2 * ow], xp[2 * oh + 1, 2 * ow + 1])
                    op[oh, ow] = best
            else:
                for ow in range(out_w):
                    best, _ = _window_max(xp, oh * stride_h, ow * stride_w, kernel_h,
                                          kernel_w)
                    op[oh, ow] = best


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


# ----------------------------------------------------------------------------- relu

@njit(parallel=True, cache=True)
def relu_forward(x, out):
    """out = max(x, 0) over flat arrays, NaN passing through (as torch.relu).

    Two threads instead of NumPy's one: ~2x on the MNIST CNN's 9 MB activations."""
    zero = np.zeros(1, x.dtype)[0]     # a zero of the data's dtype (no float64 select)
    for i in prange(x.size):
        v = x[i]
        out[i] = zero if v <= 0 else v


@njit(parallel=True, cache=True)
def relu_backward(out, grad, grad_in):
    """grad_in = grad where out > 0 else 0 (torch's threshold_backward: a select, so an
    inf/NaN gradient is zeroed where the unit was off; NaN outputs pass the gradient).

    Replaces `np.where(~(out <= 0), grad, 0)`, which built two boolean temporaries and
    took 8-16 ms on the MNIST CNN's conv2 activation (64x64x24x24); this takes ~1 ms."""
    zero = np.zeros(1, grad.dtype)[0]
    for i in prange(out.size):
        grad_in[i] = zero if out[i] <= 0 else grad[i]


@njit(parallel=True, cache=True)
def relu_inplace(x):
    """x = max(x, 0) in place (NaN passing). Its own kernel because `relu_forward(x, x)`
    is 4x slower on small arrays: with two array arguments LLVM vectorises only behind
    a runtime no-overlap check, which an in-place call fails (32 K floats: 11 us against
    3 us here)."""
    zero = np.zeros(1, x.dtype)[0]
    for i in prange(x.size):
        v = x[i]
        x[i] = zero if v <= 0 else v


@njit(parallel=True, cache=True)
def relu_backward_inplace(out, grad):
    """grad = grad where out > 0 else 0, in place: `relu_backward(out, grad, grad)`
    without the aliasing that kept it scalar (see `relu_inplace`)."""
    zero = np.zeros(1, grad.dtype)[0]
    for i in prange(out.size):
        grad[i] = zero if out[i] <= 0 else grad[i]


# ----------------------------------------------------------------------------- winograd
#
# Winograd F(2x2, 3x3) (Lavin & Gray, 2015) for 3x3, stride-1 convolutions:
#     Y_tile(2x2) = A^T [ (G g G^T) (.) (B^T d B) ] A        d: a 4x4 input tile
# with   B^T = [[1, 0,-1, 0], [0, 1, 1, 0], [0,-1, 1, 0], [0, 1, 0,-1]],
#        G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2,-1/2, 1/2], [0, 0, 1]],
#        A^T = [[1, 1, 1, 0], [0, 1,-1,-1]].
# Tiles overlap by 2; tile t = (th, tw) of sample n is column p = n*T + th*TW + tw of
# the (16, P, C) transformed-input matrix V, so the 16 products are 16 GEMMs
# V[k](P, C) @ U[k](C, O) -> M[k](P, O) (tall-skinny: BLAS's fast shape here). The
# backward passes are the exact adjoints of each linear step: dM = A dY A^T per tile,
# dU = V^T dM, dV = dM U^T, and dx = scatter-add of B dV B^T. 2.25x fewer multiplies
# than im2col + GEMM; measured on the MNIST CNN's conv2 (1 thread) GEMM time 28 ms
# against 61-71 ms for the im2col GEMMs.


@njit(cache=True, inline="always")
def _bt4(s0, s1, s2, s3, d0, d1, d2, d3, count):
    """B^T on 4 vectors: (d0, d1, d2, d3) = (s0 - s2, s1 + s2, s2 - s1, s1 - s3)."""
    for c in range(count):
        u0 = s0[c]
        u1 = s1[c]
        u2 = s2[c]
        u3 = s3[c]
        d0[c] = u0 - u2
        d1[c] = u1 + u2
        d2[c] = u2 - u1
        d3[c] = u1 - u3


@njit(cache=True, inline="always")
def _b4_add(s0, s1, s2, s3, d0, d1, d2, d3, count):
    """B on 4 vectors, accumulated: d += (s0, s1 - s2 + s3, s1 + s2 - s0, -s3)."""
    for c in range(count):
        u0 = s0[c]
        u1 = s1[c]
        u2 = s2[c]
        u3 = s3[c]
        d0[c] += u0
        d1[c] += u1 - u2 + u3
        d2[c] += u1 + u2 - u0
        d3[c] -= u3


@njit(cache=True, inline="always")
def _b4(s0, s1, s2, s3, d0, d1, d2, d3, count):
    """B on 4 vectors: (d0, d1, d2, d3) = (s0, s1 - s2 + s3, s1 + s2 - s0, -s3)."""
    for c in range(count):
        u0 = s0[c]
        u1 = s1[c]
        u2 = s2[c]
        u3 = s3[c]
        d0[c] = u0
        d1[c] = u1 - u2 + u3
        d2[c] = u1 + u2 - u0
        d3[c] = -u3


@njit(cache=True, inline="always")
def _at4(s0, s1, s2, s3, d0, d1, count):
    """A^T on 4 vectors: (d0, d1) = (s0 + s1 + s2, s1 - s2 - s3)."""
    for c in range(count):
        u1 = s1[c]
        u2 = s2[c]
        d0[c] = s0[c] + u1 + u2
        d1[c] = u1 - u2 - s3[c]


@njit(cache=True, inline="always")
def _a4(s0, s1, d0, d1, d2, d3, count):
    """A on 2 vectors: (d0, d1, d2, d3) = (s0, s0 + s1, s0 - s1, -s1)."""
    for c in range(count):
        u0 = s0[c]
        u1 = s1[c]
        d0[c] = u0
        d1[c] = u0 + u1
        d2[c] = u0 - u1
        d3[c] = -u1


# Each transform below works channel-last on one sample at a time (one thread per
# sample, so no races) and applies the 4x4 transform as two passes of 1-D transforms,
# each a loop over channels with few pointers (`_bt4` & co.), which LLVM vectorises.
# The first version computed all 16 outputs in one loop over channels (32 streams: not
# vectorised): input transform 4.3 ms -> 1.4 ms with the two passes (2 threads, MNIST
# CNN conv2, batch 64).


@njit(parallel=True, cache=True)
def winograd_input_transform(x, V, pad_h, pad_w, tiles_h, tiles_w):
    """V[k, n*T + t, c] = (B^T d B)[k] for the 4x4 input tile d of tile t of (n, c).

    `x` is (N, C, H, W); out-of-bounds input reads as 0 (the zero padding). Each sample
    is first copied into a zero-padded channel-last buffer (Hp, Wp*C); then per row of
    tiles B^T is applied down the 4 input rows, and B across each tile's 4 columns."""
    n_batch, channels, height, width = x.shape
    tiles = tiles_h * tiles_w
    hp, wp = 2 * tiles_h + 2, 2 * tiles_w + 2
    row = wp * channels
    for n in prange(n_batch):
        xs = np.zeros((hp, row), x.dtype)
        h_lo, h_hi = max(0, -pad_h), min(height, hp - pad_h)
        w_lo, w_hi = max(0, -pad_w), min(width, wp - pad_w)
        for ih in range(h_lo, h_hi):
            for iw in range(w_lo, w_hi):
                base = (iw + pad_w) * channels
                for c in range(channels):
                    xs[ih + pad_h, base + c] = x[n, c, ih, iw]
        t = np.empty((4, row), x.dtype)
        for th in range(tiles_h):
            h0 = 2 * th
            _bt4(xs[h0], xs[h0 + 1], xs[h0 + 2], xs[h0 + 3], t[0], t[1], t[2], t[3], row)
            for tw in range(tiles_w):
                p = n * tiles + th * tiles_w + tw
                a = 2 * tw * channels
                for i in range(4):
                    ti = t[i]
                    _bt4(ti[a:], ti[a + channels:], ti[a + 2 * channels:],
                         ti[a + 3 * channels:], V[4 * i, p], V[4 * i + 1, p],
                         V[4 * i + 2, p], V[4 * i + 3, p], channels)


@njit(parallel=True, cache=True)
def winograd_input_transform_adjoint(dV, dx, pad_h, pad_w, tiles_h, tiles_w):
    """dx (N, C, H, W), overwritten, = sum over tiles of B dV_tile B^T placed at the
    tile's input window (the adjoint of `winograd_input_transform`). Accumulates in a
    channel-last per-sample buffer, then copies the unpadded part out."""
    n_batch, channels, height, width = dx.shape
    tiles = tiles_h * tiles_w
    hp, wp = 2 * tiles_h + 2, 2 * tiles_w + 2
    for n in prange(n_batch):
        acc = np.zeros((hp, wp * channels), dx.dtype)
        t = np.empty((16, channels), dx.dtype)
        for th in range(tiles_h):
            h0 = 2 * th
            a0, a1, a2, a3 = acc[h0], acc[h0 + 1], acc[h0 + 2], acc[h0 + 3]
            for tw in range(tiles_w):
                p = n * tiles + th * tiles_w + tw
                for i in range(4):      # rows: v B^T
                    _b4(dV[4 * i, p], dV[4 * i + 1, p], dV[4 * i + 2, p], dV[4 * i + 3, p],
                        t[4 * i], t[4 * i + 1], t[4 * i + 2], t[4 * i + 3], channels)
                for j in range(4):      # columns: B (v B^T), added into the window
                    a = (2 * tw + j) * channels
                    _b4_add(t[j], t[4 + j], t[8 + j], t[12 + j],
                            a0[a:], a1[a:], a2[a:], a3[a:], channels)
        for c in range(channels):
            for ih in range(height):
                hh = ih + pad_h
                for iw in range(width):
                    ww = iw + pad_w
                    if hh < hp and ww < wp:
                        dx[n, c, ih, iw] = acc[hh, ww * channels + c]
                    else:
                        dx[n, c, ih, iw] = 0


@njit(parallel=True, cache=True)
def winograd_output_transform(M, bias, y, tiles_h, tiles_w, relu):
    """y[n, o, 2th + i, 2tw + j] = (A^T m A)[i, j] + bias[o], m = M[:, n*T + t, o];
    outputs past the edge (odd sizes) are dropped. `bias` has length O (zeros for none);
    with `relu` the result is max(., 0) (NaN passing, as torch.relu). Both are fused
    into the copy out (a separate ReLU pass over the MNIST CNN's 9 MB conv2 output cost
    ~0.7 ms). A row of tiles is transformed into a small channel-last buffer, then
    written out to NCHW from that cache-resident buffer."""
    n_batch, out_channels, out_h, out_w = y.shape
    tiles = tiles_h * tiles_w
    zero = np.zeros(1, y.dtype)[0]
    for n in prange(n_batch):
        buf = np.empty((2, 2 * tiles_w, out_channels), y.dtype)
        t = np.empty((8, out_channels), y.dtype)
        for th in range(tiles_h):
            for tw in range(tiles_w):
                p = n * tiles + th * tiles_w + tw
                for j in range(4):      # A^T m, column j
                    _at4(M[j, p], M[4 + j, p], M[8 + j, p], M[12 + j, p], t[j], t[4 + j],
                         out_channels)
                for r in range(2):      # (A^T m) A, row r
                    _at4(t[4 * r], t[4 * r + 1], t[4 * r + 2], t[4 * r + 3],
                         buf[r, 2 * tw], buf[r, 2 * tw + 1], out_channels)
            oh = 2 * th
            rows = min(2, out_h - oh)
            for o in range(out_channels):
                bo = bias[o]
                for r in range(rows):
                    if relu:
                        for w in range(out_w):
                            v = buf[r, w, o] + bo
                            y[n, o, oh + r, w] = zero if v <= 0 else v
                    else:
                        for w in range(out_w):
                            y[n, o, oh + r, w] = buf[r, w, o] + bo


@njit(parallel=True, cache=True)
def winograd_output_transform_adjoint(dy, dM, tiles_h, tiles_w):
    """dM[:, n*T + t, o] = A g A^T for the 2x2 output gradient g of the tile (0 past
    the edge): the adjoint of `winograd_output_transform` (without the bias). A row of
    tiles of dy is first gathered channel-last into a small buffer (zero past the
    edge)."""
    n_batch, out_channels, out_h, out_w = dy.shape
    tiles = tiles_h * tiles_w
    for n in prange(n_batch):
        buf = np.zeros((2, 2 * tiles_w, out_channels), dy.dtype)
        t = np.empty((8, out_channels), dy.dtype)
        for th in range(tiles_h):
            oh = 2 * th
            rows = min(2, out_h - oh)
            for o in range(out_channels):
                for r in range(rows):
                    for w in range(out_w):
                        buf[r, w, o] = dy[n, o, oh + r, w]
            if rows < 2:
                buf[1, :, :] = 0
            for tw in range(tiles_w):
                p = n * tiles + th * tiles_w + tw
                for r in range(2):      # g A^T, row r
                    _a4(buf[r, 2 * tw], buf[r, 2 * tw + 1],
                        t[4 * r], t[4 * r + 1], t[4 * r + 2], t[4 * r + 3], out_channels)
                for j in range(4):      # A (g A^T), column j
                    _a4(t[j], t[4 + j], dM[j, p], dM[4 + j, p], dM[8 + j, p],
                        dM[12 + j, p], out_channels)


# ----------------------------------------------------------------------------- optimizer

@njit(parallel=True, cache=True)
def sgd_update(param, grad, momentum_buffer, lr, momentum, one_minus_dampening,
               weight_decay, nesterov, maximize, first_step):
    """One torch.optim.SGD step of a flat parameter, in place and in one pass:

        g = -grad if maximize else grad;  g += weight_decay * p
        b = g (first step) or momentum * b + (1 - dampening) * g;  g = g + momentum * b
        (nesterov) or b;  p -= lr * g

    with every scalar in the parameter's dtype, so the roundings are those of the
    NumPy expressions it replaces. `momentum_buffer` is read and written only when
    `momentum != 0`. Replaces 3-4 NumPy passes and an lr * b temporary (a fresh
    parameter-sized array: page faults every step when glibc trims it)."""
    use_momentum = momentum != 0
    if use_momentum and not (first_step or nesterov or maximize or weight_decay != 0):
        # the common case as a branch-free loop LLVM can vectorise
        for i in prange(param.size):
            b = momentum * momentum_buffer[i] + one_minus_dampening * grad[i]
            momentum_buffer[i] = b
            param[i] = param[i] - lr * b
        return
    for i in prange(param.size):
        g = grad[i]
        if maximize:
            g = -g
        if weight_decay != 0:
            g = g + weight_decay * param[i]
        if use_momentum:
            if first_step:
                b = g
            else:
                b = momentum * momentum_buffer[i] + one_minus_dampening * g
            momentum_buffer[i] = b
            g = g + momentum * b if nesterov else b
        param[i] = param[i] - lr * g


# ----------------------------------------------------------------------------- small calls

SERIAL_BELOW = 1 << 24
"""Kernel calls whose largest array has fewer elements (16 M: 64 MB of float32) run a
serial twin on the calling thread; only larger ones use Numba's threads. A parallel
launch costs ~100-150 us here (the workqueue threads waking), and right after a GEMM
its second thread also competes for a core with OpenBLAS's still-spinning worker. The
2-thread ReLU lost to the serial one at every size up to 3 M floats alone (366 against
180 us) and at 10 M floats when a GEMM ran before it (1,740 against 1,384 us). Whole
training steps, same process, alternating trials (the earlier 256 K threshold against
all-serial): LeNet-5 8.1 -> 6.3 ms at batch 64 and 28.4 -> 20.1 ms at 256, MNIST CNN
60.1 -> 49.3 ms at batch 64 and 210 -> 189 ms at 256, inference 10-35% faster, the
MLP unchanged. The memory-bound kernels gain little from a second core on this machine;
the GEMMs keep BLAS's threads."""


def _serial_twin(kernel):
    """The same Python function compiled without `parallel` (prange runs as range),
    under its own name so the two never share an on-disk cache entry. It releases the
    GIL (`nogil`), so threads of `tinygrad_cv.parallel` run it at the same time."""
    import types

    py_func = kernel.py_func
    twin = types.FunctionType(py_func.__code__, py_func.__globals__,
                              py_func.__name__ + "_serial", py_func.__defaults__,
                              py_func.__closure__)
    twin.__qualname__ = py_func.__qualname__ + "_serial"
    twin.__doc__ = py_func.__doc__
    return njit(cache=True, nogil=True)(twin)


def _dispatch_by_size(kernel):
    """`kernel` for large calls, its serial twin (compiled on first use) for small ones;
    `.serial` and `.parallel` call one version whatever the size."""
    twin = []

    def serial(*args):
        if not twin:
            twin.append(_serial_twin(kernel))
        return twin[0](*args)

    def call(*args):
        largest = 0
        for a in args:
            size = getattr(a, "size", 0)
            if size > largest:
                largest = size
        if largest >= SERIAL_BELOW:
            return kernel(*args)
        return serial(*args)

    call.__name__ = kernel.py_func.__name__
    call.__doc__ = kernel.py_func.__doc__
    call.parallel = kernel
    call.serial = serial
    return call


for _name in ("im2col", "col2im", "max_pool2d_forward", "max_pool2d_forward_inside",
              "scatter_to_indices", "max_pool2d_tiles_forward", "max_pool2d_tiles_backward",
              "max_pool2d_values_inside", "avg_pool2d_forward", "avg_pool2d_backward",
              "adaptive_avg_pool2d_forward", "adaptive_avg_pool2d_backward",
              "adaptive_max_pool2d_forward", "relu_forward", "relu_backward",
              "sgd_update", "bias_relu", "relu_inplace", "relu_backward_inplace"):
    globals()[_name] = _dispatch_by_size(globals()[_name])
del _name
