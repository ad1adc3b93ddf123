"""Depthwise convolution (groups == in_channels, out_channels = multiplier * in_channels)
as direct loops: a 3x3 depthwise layer has 9 products per output, too few for im2col's
column buffer and one tiny GEMM per channel to pay off.

Each kernel works one plane (a sample's channel) at a time: the plane is first copied
into a zeroed buffer with its padding (`_padded_plane`), so a tap is a shift with no
bounds to test; at stride 1 the rows of the padded plane are then one flat run and each
tap one long loop that LLVM vectorises (unsigned indices: no wraparound checks). The
plane stays in cache for all its taps (benchmarks/README.md, "Decisions").

Arrays: x (N, C, H, W), weight (O, 1, kh, kw) with output channel o reading input
channel o // (O // C), out / grad (N, O, OH, OW), all C-contiguous. Geometry as in
conv.py's kernels: top / left paddings, the output size given by the caller.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

from .dispatch import size_dispatched


PLANE_BLOCKS = 64
"""The stride-1 kernels work their planes in this many blocks, each with its buffers
allocated once: on 8x8 planes two allocations per plane cost as much as its taps."""


@njit(cache=True, inline="always")
def _fill_plane(flat, src, top, left, rows, cols):
    """Write the part of `src` (h, w) that falls inside the (rows, cols) plane `flat` at
    (top, left); the rest of `flat` (its zero border) is left as it is, so a buffer
    zeroed once serves every plane of the same geometry."""
    h, w = src.shape
    h = min(h, rows - top)
    w = min(w, cols - left)
    for r in range(h):
        base = uint64((top + r) * cols + left)
        for q in range(uint64(w)):
            flat[base + q] = src[r, q]


@njit(cache=True, inline="always")
def _padded_plane(src, top, left, rows, cols, extra):
    """A zeroed flat buffer of rows * cols + extra holding `src` at (top, left): the plane
    with its zero border (the `extra` zeros cover the shifts that run past the last row's
    end)."""
    flat = np.zeros(rows * cols + extra, src.dtype)
    _fill_plane(flat, src, top, left, rows, cols)
    return flat


@njit(cache=True, inline="always")
def _load_plane(flat, top, left, rows, cols, dst):
    """dst (h, w) = the window of the padded plane `flat` (rows, cols) at (top, left); the
    rows or columns of dst past the plane's end are 0."""
    h, w = dst.shape
    for r in range(h):
        inside = top + r < rows
        base = uint64((top + r) * cols + left) if inside else uint64(0)
        for q in range(w):
            if inside and left + q < cols:
                dst[r, q] = flat[base + uint64(q)]
            else:
                dst[r, q] = 0


@njit(cache=True, inline="always")
def _accumulate_taps(acc, padded, taps, cols, dil_h, dil_w, flip):
    """acc[k] += sum over taps of taps[i, j] * padded[k + i * dil_h * cols + j * dil_w]
    (taps rotated by 180 degrees when `flip`): a stride-1 correlation over whole padded
    rows, one long loop per tap."""
    kernel_h, kernel_w = taps.shape
    length = acc.shape[0]
    for i in range(kernel_h):
        for j in range(kernel_w):
            if flip:
                tap = taps[kernel_h - 1 - i, kernel_w - 1 - j]
            else:
                tap = taps[i, j]
            shift = uint64(i * dil_h * cols + j * dil_w)
            for k in range(uint64(length)):
                acc[k] += tap * padded[k + shift]


@njit(cache=True, inline="always")
def _covered_size(out_size, stride, kernel, dilation):
    """Rows (or columns) of the padded input that an output of `out_size` reads."""
    return (out_size - 1) * stride + (kernel - 1) * dilation + 1


@size_dispatched
def depthwise_forward(x, weight, out, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    """out[n, o] = sum over taps (in row-major tap order) of weight[o, 0, i, j] times the
    shifted, strided window of x[n, o // m]."""
    n, channels, height, width = x.shape
    _, out_channels, out_h, out_w = out.shape
    kernel_h, kernel_w = weight.shape[2], weight.shape[3]
    multiplier = out_channels // channels
    rows = _covered_size(out_h, stride_h, kernel_h, dil_h)
    if stride_h == 1 and stride_w == 1:
        cols = out_w + (kernel_w - 1) * dil_w          # whole padded rows, flat
        planes = n * out_channels
        blocks = min(planes, PLANE_BLOCKS)
        for block in prange(blocks):
            padded = np.zeros(rows * cols + (kernel_w - 1) * dil_w, x.dtype)
            acc = np.empty(out_h * cols, out.dtype)
            for p in range(block * planes // blocks, (block + 1) * planes // blocks):
                b, o = p // out_channels, p % out_channels
                _fill_plane(padded, x[b, o // multiplier], pad_h, pad_w, rows, cols)
                acc[:] = 0
                _accumulate_taps(acc, padded, weight[o, 0], cols, dil_h, dil_w, False)
                _load_plane(acc, 0, 0, out_h, cols, out[b, o])
        return
    cols = _covered_size(out_w, stride_w, kernel_w, dil_w)
    step = uint64(stride_w)
    for p in prange(n * out_channels):
        b, o = p // out_channels, p % out_channels
        padded = _padded_plane(x[b, o // multiplier], pad_h, pad_w, rows, cols, 0)
        plane = out[b, o]
        plane[:] = 0
        for oh in range(out_h):
            out_row = plane[oh]
            for i in range(kernel_h):
                for j in range(kernel_w):
                    base = uint64((oh * stride_h + i * dil_h) * cols + j * dil_w)
                    tap = weight[o, 0, i, j]
                    for ow in range(uint64(out_w)):
                        out_row[ow] += tap * padded[base + ow * step]


@size_dispatched
def depthwise_input_grad(grad, weight, dx, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    """dx[n, c] (overwritten): every output gradient of c's output channels sent back
    through its taps (one thread per input plane, so no write races)."""
    n, channels, height, width = dx.shape
    _, out_channels, out_h, out_w = grad.shape
    kernel_h, kernel_w = weight.shape[2], weight.shape[3]
    multiplier = out_channels // channels
    top, left = (kernel_h - 1) * dil_h - pad_h, (kernel_w - 1) * dil_w - pad_w
    bottom, right = height + pad_h - out_h, width + pad_w - out_w
    if (stride_h == 1 and stride_w == 1 and top >= 0 and left >= 0 and bottom >= 0
            and right >= 0):
        # a full correlation of the gradient with the rotated taps, over flat rows
        cols, rows = width + (kernel_w - 1) * dil_w, height + (kernel_h - 1) * dil_h
        planes = n * channels
        blocks = min(planes, PLANE_BLOCKS)
        for block in prange(blocks):
            padded = np.zeros(rows * cols + (kernel_w - 1) * dil_w, dx.dtype)
            acc = np.empty(height * cols, dx.dtype)
            for p in range(block * planes // blocks, (block + 1) * planes // blocks):
                b, c = p // channels, p % channels
                acc[:] = 0
                for k in range(multiplier):
                    o = c * multiplier + k
                    _fill_plane(padded, grad[b, o], top, left, rows, cols)
                    _accumulate_taps(acc, padded, weight[o, 0], cols, dil_h, dil_w, True)
                _load_plane(acc, 0, 0, height, cols, dx[b, c])
        return
    # any stride: scatter into the padded input plane, then cut the padding off
    rows = _covered_size(out_h, stride_h, kernel_h, dil_h)
    cols = _covered_size(out_w, stride_w, kernel_w, dil_w)
    step = uint64(stride_w)
    for p in prange(n * channels):
        b, c = p // channels, p % channels
        padded = np.zeros(rows * cols, dx.dtype)
        for k in range(multiplier):
            o = c * multiplier + k
            for oh in range(out_h):
                grad_row = grad[b, o, oh]
                for i in range(kernel_h):
                    for j in range(kernel_w):
                        base = uint64((oh * stride_h + i * dil_h) * cols + j * dil_w)
                        tap = weight[o, 0, i, j]
                        for ow in range(uint64(out_w)):
                            padded[base + ow * step] += tap * grad_row[ow]
        _load_plane(padded, pad_h, pad_w, rows, cols, dx[b, c])


@size_dispatched(fastmath={"reassoc"})
def depthwise_weight_grad(x, grad, dw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    """dw[o, 0] (overwritten) = sum over samples and positions of grad[n, o] times the
    window of x[n, o // m]; each run of products summed in float64 (reordered so they
    vectorise), the runs added in sample and row order."""
    n, channels, height, width = x.shape
    _, out_channels, out_h, out_w = grad.shape
    kernel_h, kernel_w = dw.shape[2], dw.shape[3]
    multiplier = out_channels // channels
    rows = _covered_size(out_h, stride_h, kernel_h, dil_h)
    flat = stride_h == 1 and stride_w == 1
    cols = out_w + (kernel_w - 1) * dil_w if flat else _covered_size(out_w, stride_w,
                                                                     kernel_w, dil_w)
    step = uint64(stride_w)
    for o in prange(out_channels):
        c = o // multiplier
        acc = np.zeros((kernel_h, kernel_w), np.float64)
        padded = np.zeros(rows * cols + ((kernel_w - 1) * dil_w if flat else 0), x.dtype)
        spread = np.zeros(out_h * cols, grad.dtype)
        for b in range(n):
            _fill_plane(padded, x[b, c], pad_h, pad_w, rows, cols)
            if flat:            # the gradient spread to the padded width, zero tail columns
                _fill_plane(spread, grad[b, o], 0, 0, out_h, cols)
                for i in range(kernel_h):
                    for j in range(kernel_w):
                        shift = uint64(i * dil_h * cols + j * dil_w)
                        total = 0.0
                        for k in range(uint64(out_h * cols)):
                            total += np.float64(spread[k]) * padded[k + shift]
                        acc[i, j] += total
                continue
            for oh in range(out_h):
                grad_row = grad[b, o, oh]
                for i in range(kernel_h):
                    for j in range(kernel_w):
                        base = uint64((oh * stride_h + i * dil_h) * cols + j * dil_w)
                        total = 0.0
                        for ow in range(uint64(out_w)):
                            total += np.float64(grad_row[ow]) * padded[base + ow * step]
                        acc[i, j] += total
        for i in range(kernel_h):
            for j in range(kernel_w):
                dw[o, 0, i, j] = acc[i, j]
