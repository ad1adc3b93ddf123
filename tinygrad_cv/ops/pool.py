"""Pooling ops: max_pool2d, avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d.

Each op validates its geometry once (torch's rules and output-size formula), then runs
one kernel over "planes" (sample x channel) of a contiguous (planes, H, W) view; the
kernels live in `kernels/cpu.py` and `kernels/cuda.py`. Max pooling computes max and
argmax in one pass with no im2col, keeps only the argmax for backward, and sends each
gradient to that one position (torch's rule). The argmax is kept as a flat position in
the input plane (int64, torch's `return_indices` format), except on the CPU when the
windows tile the input (kernel == stride, no padding, e.g. 2x2 stride 2): there it is a
uint8 position inside the window and the backward writes each input element once.
With no gradient to compute (grad mode off, or an input not requiring grad) and no
indices asked for, the CPU computes only the maxima of windows inside the input.
Inputs may be 4-D (N, C, H, W) or unbatched 3-D (C, H, W), as in torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..autograd import Function
from ..kernels import kernels_for
from .. import memory
from ..backend import xp_of
from .conv import check_float_dtype, pair


@dataclass(frozen=True)
class PoolGeometry:
    """Shapes of one pooling call, validated before any work."""

    in_shape: tuple
    planes: int
    height: int
    width: int
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    out_h: int
    out_w: int

    @property
    def out_shape(self):
        return self.in_shape[:-2] + (self.out_h, self.out_w)

    def window_args(self):
        """kernel, stride, padding (and dilation for max) arguments of the kernels."""
        return (*self.kernel, *self.stride, *self.padding)


def _check_input(op, shape):
    if len(shape) not in (3, 4):
        raise ValueError(f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, "
                         f"got shape {tuple(shape)}")
    if any(s == 0 for s in shape[-3:]):
        raise ValueError(f"{op}: expected an input with non-zero channel and spatial "
                         f"sizes, got shape {tuple(shape)}")


def pool_output_size(size, kernel, stride, pad, dilation, ceil_mode):
    """torch's pooling output length: floor (or ceil) division, and with ceil_mode the
    last window must start inside the input or the left padding."""
    span = dilation * (kernel - 1) + 1
    extra = stride - 1 if ceil_mode else 0
    out = (size + 2 * pad - span + extra) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def pool_geometry(op, shape, kernel_size, stride, padding, dilation, ceil_mode):
    """Validate a windowed pooling call (torch's checks) and compute its output size."""
    _check_input(op, shape)
    kernel = pair(kernel_size, "kernel_size", op)
    stride = kernel if stride is None or stride == () or stride == [] else pair(
        stride, "stride", op)
    padding = pair(padding, "padding", op)
    dilation = pair(dilation, "dilation", op)
    if min(kernel) < 1:
        raise ValueError(f"{op}: kernel_size must be greater than zero, got {kernel}")
    if min(stride) < 1:
        raise ValueError(f"{op}: stride must be greater than zero, got {stride}")
    if min(dilation) < 1:
        raise ValueError(f"{op}: dilation must be greater than zero, got {dilation}")
    if min(padding) < 0 or padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: pad should be at most half of kernel size, but got "
                         f"padding={padding} and kernel_size={kernel}")
    height, width = shape[-2], shape[-1]
    out_h = pool_output_size(height, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    out_w = pool_output_size(width, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"{op}: given input of shape {tuple(shape)}, kernel_size={kernel},"
                         f" stride={stride}, padding={padding}, dilation={dilation}: the "
                         f"output size ({out_h}, {out_w}) is too small")
    planes = math.prod(shape[:-2])
    return PoolGeometry(tuple(shape), planes, height, width, kernel, stride, padding,
                        dilation, out_h, out_w)


def adaptive_geometry(op, shape, output_size):
    """Validate an adaptive pooling call; `None` in output_size keeps that input size."""
    _check_input(op, shape)
    if isinstance(output_size, (int, np.integer)) or output_size is None:
        output_size = (output_size, output_size)
    if not isinstance(output_size, (tuple, list)) or len(output_size) != 2:
        raise TypeError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
    out_h, out_w = (shape[-2 + i] if s is None else s for i, s in enumerate(output_size))
    if not all(isinstance(s, (int, np.integer)) and s >= 1 for s in (out_h, out_w)):
        raise ValueError(f"{op}: output_size must be positive ints, got {output_size!r}")
    planes = math.prod(shape[:-2])
    return PoolGeometry(tuple(shape), planes, shape[-2], shape[-1], None, None, None, None,
                        int(out_h), int(out_w))


def _planes(xp, x, geom):
    """The input as a contiguous (planes, H, W) array."""
    return xp.ascontiguousarray(x).reshape(geom.planes, geom.height, geom.width)


def _max_pool_backward(ctx, grad):
    """Shared max-pool backward: each output gradient goes to its window's argmax."""
    geom = ctx.geom
    indices, = ctx.saved
    xp = xp_of(grad)
    grad_in = memory.empty(geom.in_shape, grad.dtype, xp)   # returned as is: not a view, so
    kernels_for(xp).scatter_to_indices(              # the next backward may reuse it
        xp.ascontiguousarray(grad).reshape(geom.planes, geom.out_h * geom.out_w),
        indices.reshape(geom.planes, geom.out_h * geom.out_w),
        grad_in.reshape(geom.planes, geom.height * geom.width))
    return grad_in



def _windows_inside(geom):
    """No padding, no dilation and every window wholly inside the input (no ceil-mode
    overhang): the case of the `max_pool2d_forward_inside` and
    `max_pool2d_values_inside` kernels (no per-window bounds)."""
    return (geom.padding == (0, 0) and geom.dilation == (1, 1)
            and (geom.out_h - 1) * geom.stride[0] + geom.kernel[0] <= geom.height
            and (geom.out_w - 1) * geom.stride[1] + geom.kernel[1] <= geom.width)


def _windows_tile(geom):
    """Windows inside the input that never overlap nor leave gaps (kernel == stride), with
    at most 256 elements (their argmax fits a uint8 code): the `max_pool2d_tiles_*` case."""
    return (_windows_inside(geom) and geom.kernel == geom.stride
            and geom.kernel[0] * geom.kernel[1] <= 256)


class MaxPool2d(Function):
    """Windowed max pooling; the argmax is kept for backward (and `indices_sink`).

    CPU fast paths, for windows inside the input: without a gradient to compute (and no
    indices asked for), the maxima only; with one, when the windows tile the input, the
    argmax as a uint8 code within its window and a backward writing each input element
    once. Every other case, and CuPy, keeps int64 flat indices and scatters."""

    @staticmethod
    def forward(ctx, x, geom, indices_sink=None):
        xp = xp_of(x)
        ctx.geom = geom
        ctx.tiles = False
        planes = _planes(xp, x, geom)
        out = memory.empty((geom.planes, geom.out_h, geom.out_w), x.dtype, xp)
        kernels = kernels_for(xp)
        if xp is np and indices_sink is None and _windows_inside(geom):
            if not ctx.needs_input_grad[0]:                   # inference: maxima only
                kernels.max_pool2d_values_inside(planes, out, *geom.kernel, *geom.stride)
                return out.reshape(geom.out_shape)
            if _windows_tile(geom):
                codes = memory.empty((geom.planes, geom.out_h, geom.out_w), np.uint8, xp)
                kernels.max_pool2d_tiles_forward(planes, out, codes, *geom.kernel)
                ctx.save_for_backward(codes)
                ctx.tiles = True
                return out.reshape(geom.out_shape)
        indices = memory.empty((geom.planes, geom.out_h, geom.out_w), np.int64, xp)
        if _windows_inside(geom):
            kernels.max_pool2d_forward_inside(planes, out, indices, *geom.kernel,
                                              *geom.stride)
        else:
            kernels.max_pool2d_forward(planes, out, indices, *geom.window_args(),
                                       *geom.dilation)
        if indices_sink is not None:
            indices_sink.append(indices.reshape(geom.out_shape))
        ctx.save_for_backward(indices)
        return out.reshape(geom.out_shape)

    @staticmethod
    def backward(ctx, grad):
        """Tiles: `max_pool2d_tiles_backward` from the codes; otherwise the scatter."""
        if not ctx.tiles:
            return _max_pool_backward(ctx, grad)
        geom = ctx.geom
        codes, = ctx.saved
        grad_in = memory.empty(geom.in_shape, grad.dtype, np)   # returned as is (not a view)
        kernels_for(np).max_pool2d_tiles_backward(
            np.ascontiguousarray(grad).reshape(geom.planes, geom.out_h, geom.out_w), codes,
            grad_in.reshape(geom.planes, geom.height, geom.width), *geom.kernel)
        return grad_in


class AdaptiveMaxPool2d(Function):
    """Adaptive max pooling with argmax; same backward as MaxPool2d."""

    @staticmethod
    def forward(ctx, x, geom, indices_sink=None):
        xp = xp_of(x)
        out = xp.empty((geom.planes, geom.out_h, geom.out_w), x.dtype)
        indices = xp.empty((geom.planes, geom.out_h, geom.out_w), np.int64)
        kernels_for(xp).adaptive_max_pool2d_forward(_planes(xp, x, geom), out, indices)
        if indices_sink is not None:
            indices_sink.append(indices.reshape(geom.out_shape))
        ctx.save_for_backward(indices)
        ctx.geom = geom
        return out.reshape(geom.out_shape)

    backward = staticmethod(_max_pool_backward)


class AvgPool2d(Function):
    """Windowed average pooling with torch's divisor rules."""

    @staticmethod
    def forward(ctx, x, geom, count_include_pad, divisor_override):
        xp = xp_of(x)
        out = xp.empty((geom.planes, geom.out_h, geom.out_w), x.dtype)
        kernels_for(xp).avg_pool2d_forward(_planes(xp, x, geom), out, *geom.window_args(),
                                           count_include_pad, divisor_override)
        ctx.geom = geom
        ctx.divisor = (count_include_pad, divisor_override)
        return out.reshape(geom.out_shape)

    @staticmethod
    def backward(ctx, grad):
        geom = ctx.geom
        xp = xp_of(grad)
        grad_in = xp.empty((geom.planes, geom.height, geom.width), grad.dtype)
        kernels_for(xp).avg_pool2d_backward(
            xp.ascontiguousarray(grad).reshape(geom.planes, geom.out_h, geom.out_w),
            grad_in, *geom.window_args(), *ctx.divisor)
        return grad_in.reshape(geom.in_shape)


class AdaptiveAvgPool2d(Function):
    """Adaptive average pooling (torch's floor/ceil window bounds)."""

    @staticmethod
    def forward(ctx, x, geom):
        xp = xp_of(x)
        out = xp.empty((geom.planes, geom.out_h, geom.out_w), x.dtype)
        kernels_for(xp).adaptive_avg_pool2d_forward(_planes(xp, x, geom), out)
        ctx.geom = geom
        return out.reshape(geom.out_shape)

    @staticmethod
    def backward(ctx, grad):
        geom = ctx.geom
        xp = xp_of(grad)
        grad_in = xp.empty((geom.planes, geom.height, geom.width), grad.dtype)
        kernels_for(xp).adaptive_avg_pool2d_backward(
            xp.ascontiguousarray(grad).reshape(geom.planes, geom.out_h, geom.out_w), grad_in)
        return grad_in.reshape(geom.in_shape)


# ----------------------------------------------------------------------------- public

def _with_indices(out, sink, dev):
    return out, out._derived(sink[0], dev)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling as `torch.nn.functional.max_pool2d` (padding acts as -inf;
    `stride=None` means `kernel_size`; indices are flat positions in each input plane)."""
    op = "max_pool2d"
    geom = pool_geometry(op, input.shape, kernel_size, stride, padding, dilation,
                         bool(ceil_mode))
    check_float_dtype(op, input.data)
    sink = [] if return_indices else None
    out = MaxPool2d.apply(input, geom=geom, indices_sink=sink)
    return _with_indices(out, sink, input.device_str) if return_indices else out


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """2-D average pooling as `torch.nn.functional.avg_pool2d`."""
    op = "avg_pool2d"
    geom = pool_geometry(op, input.shape, kernel_size, stride, padding, 1, bool(ceil_mode))
    check_float_dtype(op, input.data)
    if divisor_override is not None:
        if not isinstance(divisor_override, (int, np.integer)) or divisor_override == 0:
            raise ValueError(f"{op}: divisor_override must be a non-zero int, got "
                             f"{divisor_override!r}")
    return AvgPool2d.apply(input, geom=geom, count_include_pad=bool(count_include_pad),
                           divisor_override=int(divisor_override or 0))


def adaptive_avg_pool2d(input, output_size):
    """Adaptive 2-D average pooling as `torch.nn.functional.adaptive_avg_pool2d`."""
    op = "adaptive_avg_pool2d"
    geom = adaptive_geometry(op, input.shape, output_size)
    check_float_dtype(op, input.data)
    return AdaptiveAvgPool2d.apply(input, geom=geom)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Adaptive 2-D max pooling as `torch.nn.functional.adaptive_max_pool2d`."""
    op = "adaptive_max_pool2d"
    geom = adaptive_geometry(op, input.shape, output_size)
    check_float_dtype(op, input.data)
    sink = [] if return_indices else None
    out = AdaptiveMaxPool2d.apply(input, geom=geom, indices_sink=sink)
    return _with_indices(out, sink, input.device_str) if return_indices else out
