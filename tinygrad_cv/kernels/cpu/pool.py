"""Max, average and adaptive pooling kernels (forward and backward).

Max-pool indices are flat positions `ih * width + iw` inside the input plane, as torch;
the `max_pool2d_tiles_*` kernels (non-overlapping windows, CPU only) instead keep a
uint8 code per output, the argmax's position `i * kernel_w + j` inside its window.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

from .dispatch import size_dispatched
from .runs import _valid_range


@size_dispatched
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


@size_dispatched
def max_pool2d_forward_inside(x, out, indices, kernel_h, kernel_w, stride_h, stride_w):
    """`max_pool2d_forward` for the common case of windows lying wholly inside the input
    (no padding, no dilation, no ceil-mode overhang): no per-window bounds, flat
    unsigned offsets, a branch-free max. Same results, ties and NaN rule (benchmarks/README.md,
    "Decisions")."""
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
                        # the time
                        take = (value > best) | (value != value)
                        best = value if take else best
                        best_index = k if take else best_index
                o = uint64(oh * out_w + ow)
                of[o] = best
                nf[o] = best_index


@size_dispatched
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
# LLVM vectorises by de-interleaving the even and odd columns (flat uint64 offsets did not
# vectorise here). Measurements: benchmarks/README.md, "Decisions".

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


@size_dispatched
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


@size_dispatched
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


@size_dispatched
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


@size_dispatched
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


@size_dispatched
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


@size_dispatched
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


@size_dispatched
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


@size_dispatched
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
