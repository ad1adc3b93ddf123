"""Converters for the layers' ops: convolution, pooling, normalization, linear (see
converters.py for the contract)."""
from __future__ import annotations

import numpy as np

from .convert_shapes import shape_spec


def _batched(g, op, x, rank):
    """ONNX conv/pool want (N, C, H, W): an unbatched (C, H, W) input gets a batch axis."""
    return (x, False) if rank == 4 else (g.unsqueeze(x, [0]), True)


def _unbatched(g, y, added):
    return g.squeeze(y, [0]) if added else y


# ----------------------------------------------------------------------------- convolution

def conv2d(g, op):
    geom = op.params["geom"]
    x, added = _batched(g, op, op.inputs[0], len(op.in_shape(0)))
    (kh, kw), (sh, sw), (dh, dw) = geom.kernel, geom.stride, geom.dilation
    # The end padding that gives the traced output size (torch may pad rows it never reads).
    bottom = max(0, (geom.out_h - 1) * sh + dh * (kh - 1) + 1 - geom.height - geom.pad_top)
    right = max(0, (geom.out_w - 1) * sw + dw * (kw - 1) + 1 - geom.width - geom.pad_left)
    y = g.node("Conv", [x] + list(op.inputs[1:]),
               kernel_shape=[kh, kw], strides=[sh, sw], dilations=[dh, dw],
               pads=[geom.pad_top, geom.pad_left, bottom, right], group=geom.groups)
    return _unbatched(g, y, added)


def conv_transpose2d(g, op):
    geom = op.params["geom"]          # the geometry of the conv2d this op is the adjoint of
    x, added = _batched(g, op, op.inputs[0], len(op.in_shape(0)))
    (kh, kw), (sh, sw), (dh, dw) = geom.kernel, geom.stride, geom.dilation
    ph, pw = geom.pad_top, geom.pad_left
    extra_h = geom.height - ((geom.out_h - 1) * sh - 2 * ph + dh * (kh - 1) + 1)
    extra_w = geom.width - ((geom.out_w - 1) * sw - 2 * pw + dw * (kw - 1) + 1)
    y = g.node("ConvTranspose", [x] + list(op.inputs[1:]), kernel_shape=[kh, kw],
               strides=[sh, sw], dilations=[dh, dw], pads=[ph, pw, ph, pw],
               output_padding=[extra_h, extra_w], group=geom.groups)
    return _unbatched(g, y, added)


# ----------------------------------------------------------------------------- pooling

def _floor_size(size, kernel, stride, pad, dilation):
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def _window_attrs(geom, dilation=True):
    """kernel/strides/pads (and ceil_mode) of a windowed pool from its traced geometry."""
    floor = (_floor_size(geom.height, geom.kernel[0], geom.stride[0], geom.padding[0],
                         geom.dilation[0]),
             _floor_size(geom.width, geom.kernel[1], geom.stride[1], geom.padding[1],
                         geom.dilation[1]))
    attrs = dict(kernel_shape=list(geom.kernel), strides=list(geom.stride),
                 pads=[geom.padding[0], geom.padding[1], geom.padding[0], geom.padding[1]],
                 ceil_mode=int(floor != (geom.out_h, geom.out_w)))
    if dilation:
        attrs["dilations"] = list(geom.dilation)
    return attrs


def max_pool2d(g, op):
    geom = op.params["geom"]
    x, added = _batched(g, op, op.inputs[0], len(geom.in_shape))
    return _unbatched(g, g.node("MaxPool", [x], **_window_attrs(geom)), added)


def avg_pool2d(g, op):
    geom = op.params["geom"]
    attrs = _window_attrs(geom, dilation=False)
    divisor = op.params["divisor_override"]
    x, added = _batched(g, op, op.inputs[0], len(geom.in_shape))
    if divisor and attrs["ceil_mode"]:
        raise op.fail("divisor_override with ceil_mode has no ONNX form")
    count_pad = 1 if divisor else int(op.params["count_include_pad"])
    y = g.node("AveragePool", [x], count_include_pad=count_pad, **attrs)
    if divisor:       # sum of the window / divisor
        scale = geom.kernel[0] * geom.kernel[1] / divisor
        y = g.node("Mul", [y, g.const(scale, op.dtype)])
    return _unbatched(g, y, added)


def _adaptive_matrix(size, out, dtype):
    """(out, size) matrix averaging torch's adaptive windows [floor(i*n/o), ceil((i+1)*n/o))."""
    m = np.zeros((out, size), dtype=np.float64)
    for i in range(out):
        lo, hi = (i * size) // out, -((-(i + 1) * size) // out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m.astype(dtype)


def adaptive_avg_pool2d(g, op):
    geom = op.params["geom"]
    h, w, oh, ow = geom.height, geom.width, geom.out_h, geom.out_w
    if any(a >= len(geom.in_shape) - 2 for a in op.dynamic_in(0)):
        raise op.fail("adaptive pooling over a dynamic spatial axis cannot be exported")
    x, added = _batched(g, op, op.inputs[0], len(geom.in_shape))
    if (oh, ow) == (1, 1):
        y = g.node("GlobalAveragePool", [x])
    elif h % oh == 0 and w % ow == 0:
        k = [h // oh, w // ow]
        y = g.node("AveragePool", [x], kernel_shape=k, strides=k)
    else:             # uneven windows: rows then columns as products with averaging matrices
        y = g.node("MatMul", [g.const(_adaptive_matrix(h, oh, op.dtype)), x])
        y = g.node("MatMul", [y, g.const(_adaptive_matrix(w, ow, op.dtype).T)])
    return _unbatched(g, y, added)


def adaptive_max_pool2d(g, op):
    geom = op.params["geom"]
    h, w, oh, ow = geom.height, geom.width, geom.out_h, geom.out_w
    x, added = _batched(g, op, op.inputs[0], len(geom.in_shape))
    if (oh, ow) == (1, 1):
        y = g.node("GlobalMaxPool", [x])
    elif h % oh == 0 and w % ow == 0:
        k = [h // oh, w // ow]
        y = g.node("MaxPool", [x], kernel_shape=k, strides=k)
    else:
        raise op.fail(f"adaptive max pooling from {h}x{w} to {oh}x{ow} (uneven windows) has "
                      "no ONNX form")
    return _unbatched(g, y, added)


# ----------------------------------------------------------------------------- normalization

def _per_channel_shape(rank):
    return [1, -1] + [1] * (rank - 2)


def batch_norm(g, op):
    p = op.params
    x = op.inputs[0]
    rank = len(op.in_shape(0))
    channels = op.in_shape(0)[1]
    dtype = op.dtype
    rest = list(op.inputs[1:])
    scale = rest.pop(0) if p["has_weight"] else g.const(np.ones(channels, dtype))
    bias = rest.pop(0) if p["has_bias"] else g.const(np.zeros(channels, dtype))
    if not p["training"]:
        mean = op.array_input(p["running_mean"], dtype)
        var = op.array_input(p["running_var"], dtype)
        return g.node("BatchNormalization", [x, scale, bias, mean, var],
                      epsilon=float(p["eps"]))
    # Batch statistics (a BatchNorm without running stats): the biased variance, as torch.
    axes = [0] + list(range(2, rank))
    mean = g.reduce("ReduceMean", x, axes, True)
    centred = g.node("Sub", [x, mean])
    var = g.reduce("ReduceMean", g.node("Mul", [centred, centred]), axes, True)
    std = g.node("Sqrt", [g.node("Add", [var, g.const(p["eps"], dtype)])])
    shape = g.ints(_per_channel_shape(rank))
    y = g.node("Mul", [g.node("Div", [centred, std]), g.node("Reshape", [scale, shape])])
    return g.node("Add", [y, g.node("Reshape", [bias, shape])])


# ----------------------------------------------------------------------------- linear algebra

def linear(g, op):
    x, weight = op.inputs[0], op.inputs[1]
    bias = op.inputs[2] if len(op.inputs) > 2 else None
    if len(op.in_shape(0)) == 2:
        return g.node("Gemm", [x, weight, bias], transB=1)
    y = g.node("MatMul", [x, g.node("Transpose", [weight], perm=[1, 0])])
    return g.node("Add", [y, bias]) if bias is not None else y


def group_stat_norm(g, op):
    """LayerNorm / GroupNorm / InstanceNorm: rows of `group_shape` normalised by their own
    mean and biased variance, then the affine in `affine_shape` (see ops/norms.py)."""
    p, p2 = op.params, op.params2
    x, dtype = op.inputs[0], op.in_dtype(0)
    shape_of_x = g.node("Shape", [x])
    rows = g.node("Reshape", [x, shape_spec(g, op, op.in_shape(0), op.in_shape2(0),
                                            p["group_shape"], p2["group_shape"])])
    mean = g.reduce("ReduceMean", rows, [-1], True)
    centred = g.node("Sub", [rows, mean])
    var = g.reduce("ReduceMean", g.node("Mul", [centred, centred]), [-1], True)
    std = g.node("Sqrt", [g.node("Add", [var, g.const(p["eps"], dtype)])])
    y = g.node("Div", [centred, std])
    y = g.node("Reshape", [y, shape_spec(g, op, p["group_shape"], p2["group_shape"],
                                         p["affine_shape"], p2["affine_shape"])])
    rest, param_shape = list(op.inputs[1:]), g.ints(p["param_shape"])
    if p["has_weight"]:
        y = g.node("Mul", [y, g.node("Reshape", [rest.pop(0), param_shape])])
    if p["has_bias"]:
        y = g.node("Add", [y, g.node("Reshape", [rest.pop(0), param_shape])])
    return g.node("Reshape", [y, shape_of_x])
