"""Depthwise convolution (groups == in_channels, out_channels = multiplier * in_channels)
as direct loops: a 3x3 depthwise layer has 9 products per output, too few for im2col's
column buffer and one tiny GEMM per channel to pay off.

Arrays: x (N, C, H, W), weight (O, 1, kh, kw) with output channel o reading input
channel o // (O // C), out / grad (N, O, OH, OW). Geometry as in conv.py's kernels: top /
left paddings, the output size given by the caller.
"""
from __future__ import annotations

from numba import prange

from .dispatch import size_dispatched
from .runs import _valid_range


@size_dispatched
def depthwise_forward(x, weight, out, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    """out[n, o] = sum over taps of weight[o, 0] * the window of x[n, o // m]."""
    n, channels, height, width = x.shape
    _, out_channels, out_h, out_w = out.shape
    kernel_h, kernel_w = weight.shape[2], weight.shape[3]
    multiplier = out_channels // channels
    for p in prange(n * out_channels):
        b, o = p // out_channels, p % out_channels
        c = o // multiplier
        for oh in range(out_h):
            h0 = oh * stride_h - pad_h
            i_lo, i_hi = _valid_range(h0, dil_h, height, kernel_h)
            for ow in range(out_w):
                w0 = ow * stride_w - pad_w
                j_lo, j_hi = _valid_range(w0, dil_w, width, kernel_w)
                acc = out.dtype.type(0)
                for i in range(i_lo, i_hi):
                    ih = h0 + i * dil_h
                    for j in range(j_lo, j_hi):
                        acc += x[b, c, ih, w0 + j * dil_w] * weight[o, 0, i, j]
                out[b, o, oh, ow] = acc


@size_dispatched
def depthwise_input_grad(grad, weight, dx, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    """dx[n, c] (overwritten): every output gradient of c's output channels sent back
    through its taps, gathered per input pixel (no write races)."""
    n, channels, height, width = dx.shape
    _, out_channels, out_h, out_w = grad.shape
    kernel_h, kernel_w = weight.shape[2], weight.shape[3]
    multiplier = out_channels // channels
    for p in prange(n * channels):
        b, c = p // channels, p % channels
        for ih in range(height):
            for iw in range(width):
                acc = dx.dtype.type(0)
                for i in range(kernel_h):
                    th = ih + pad_h - i * dil_h
                    if th < 0 or th % stride_h:
                        continue
                    oh = th // stride_h
                    if oh >= out_h:
                        continue
                    for j in range(kernel_w):
                        tw = iw + pad_w - j * dil_w
                        if tw < 0 or tw % stride_w:
                            continue
                        ow = tw // stride_w
                        if ow >= out_w:
                            continue
                        for k in range(multiplier):
                            o = c * multiplier + k
                            acc += grad[b, o, oh, ow] * weight[o, 0, i, j]
                dx[b, c, ih, iw] = acc


@size_dispatched
def depthwise_weight_grad(x, grad, dw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w):
    """dw[o, 0] (overwritten) = sum over samples and positions of grad[n, o] times the
    window of x[n, o // m]; sums in float64."""
    n, channels, height, width = x.shape
    _, out_channels, out_h, out_w = grad.shape
    kernel_h, kernel_w = dw.shape[2], dw.shape[3]
    multiplier = out_channels // channels
    for o in prange(out_channels):
        c = o // multiplier
        for i in range(kernel_h):
            for j in range(kernel_w):
                acc = 0.0
                for b in range(n):
                    for oh in range(out_h):
                        ih = oh * stride_h - pad_h + i * dil_h
                        if ih < 0 or ih >= height:
                            continue
                        for ow in range(out_w):
                            iw = ow * stride_w - pad_w + j * dil_w
                            if 0 <= iw < width:
                                acc += grad[b, o, oh, ow] * x[b, c, ih, iw]
                dw[o, 0, i, j] = acc
