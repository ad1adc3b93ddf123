"""im2col / col2im: conv2d's column buffer in GEMM order, and its scatter-add adjoint."""
from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

from .dispatch import size_dispatched
from .runs import _add_run, _copy_run, _valid_range, _zero_run


@size_dispatched
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


@size_dispatched
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
