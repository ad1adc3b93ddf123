"""conv_transpose2d: the adjoint of conv2d, built from conv's blocks (ops/conv.py).

A transposed convolution of x (N, Cin, H, W) with weight (Cin, Cout/g, kh, kw) is the
gradient of a conv2d with that weight with respect to its input: the conv maps a
(N, Cout, H_out, W_out) image to (N, Cin, H, W), and this op runs it backwards. So

    forward   y  = conv_input_grad(x, W)          (W^T x, then col2im)
    backward  dx = conv_forward(dy, W)            (im2col, then W dy)
              dW = conv_weight_grad(dy, x)

with the conv's geometry built directly: its input is the output here (H_out = (H - 1) *
stride - 2 * padding + dilation * (k - 1) + output_padding + 1) and its output size is
H, so output_padding only extends the conv's input, never its windows.
"""
from __future__ import annotations

from ..autograd import Function
from ..backend import xp_of
from .conv import (ConvGeometry, add_channel_bias, channel_sum, check_operand_dtypes,
                   conv_forward, conv_input_grad, conv_weight_grad, pair)

OP = "conv_transpose2d"


def conv_transpose_geometry(input_shape, weight_shape, bias_shape, stride, padding,
                            output_padding, groups, dilation):
    """The conv2d geometry this transposed convolution is the adjoint of; raises on a bad
    call before any work."""
    if len(input_shape) not in (3, 4):
        raise ValueError(f"{OP}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got "
                         f"shape {tuple(input_shape)}")
    if len(weight_shape) != 4:
        raise ValueError(f"{OP}: expected a 4-D weight (in_channels, out_channels/groups, kH, "
                         f"kW), got shape {tuple(weight_shape)}")
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{OP}: groups must be a positive int, got {groups!r}")
    batched = len(input_shape) == 4
    n, c_in, h, w = input_shape if batched else (1, *input_shape)
    if weight_shape[0] != c_in:
        raise ValueError(f"{OP}: input has {c_in} channels but the weight expects "
                         f"in_channels={weight_shape[0]} (input shape {tuple(input_shape)}, "
                         f"weight shape {tuple(weight_shape)})")
    if c_in % groups:
        raise ValueError(f"{OP}: in_channels={c_in} is not divisible by groups={groups}")
    c_out = weight_shape[1] * groups
    if bias_shape is not None and tuple(bias_shape) != (c_out,):
        raise ValueError(f"{OP}: bias must have shape ({c_out},), got {tuple(bias_shape)}")
    kh, kw = weight_shape[2], weight_shape[3]
    stride = pair(stride, "stride", OP)
    padding = pair(padding, "padding", OP)
    output_padding = pair(output_padding, "output_padding", OP)
    dilation = pair(dilation, "dilation", OP)
    if min(stride) < 1 or min(dilation) < 1 or min(padding) < 0 or min(output_padding) < 0:
        raise ValueError(f"{OP}: stride and dilation must be positive, padding and "
                         f"output_padding non-negative; got stride={stride}, "
                         f"padding={padding}, output_padding={output_padding}, "
                         f"dilation={dilation}")
    for op_, s, d in zip(output_padding, stride, dilation):
        if op_ >= max(s, d):
            raise ValueError(f"{OP}: output_padding must be smaller than either stride or "
                             f"dilation, got output_padding={output_padding}, "
                             f"stride={stride}, dilation={dilation}")
    out_h = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1
    out_w = (w - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(f"{OP}: the output would be {out_h}x{out_w} for input shape "
                         f"{tuple(input_shape)}, weight shape {tuple(weight_shape)}, "
                         f"stride={stride}, padding={padding}")
    return ConvGeometry(batched, n, c_out, out_h, out_w, c_in, (kh, kw), stride, padding[0],
                        padding[1], dilation, groups, h, w)


class ConvTranspose2d(Function):
    """Inputs: x, weight, then the bias when present; `geom` is the adjoint conv2d's."""

    @staticmethod
    def forward(ctx, x, weight, *maybe_bias, geom):
        xp = xp_of(x)
        x4 = xp.ascontiguousarray(x.reshape(geom.batch, geom.out_channels, geom.out_h,
                                            geom.out_w))
        out = conv_input_grad(x4, weight, geom)
        if maybe_bias:
            add_channel_bias(xp, out, maybe_bias[0])
        ctx.geom, ctx.has_bias = geom, bool(maybe_bias)
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        ctx.save_for_backward(x4 if need_w else None, weight if need_x else None)
        return out if geom.batched else out[0]

    @staticmethod
    def backward(ctx, grad):
        geom = ctx.geom
        x4, weight = ctx.saved
        xp = xp_of(grad)
        need = ctx.needs_input_grad
        grad4 = xp.ascontiguousarray(grad).reshape(geom.batch, geom.in_channels,
                                                   geom.height, geom.width)
        grad_x = conv_forward(grad4, weight, None, geom) if need[0] else None
        grad_w = conv_weight_grad(grad4, x4, geom) if need[1] else None
        if grad_x is not None and not geom.batched:
            grad_x = grad_x[0]
        if not ctx.has_bias:
            return grad_x, grad_w
        return grad_x, grad_w, (channel_sum(grad4) if need[2] else None)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    """`torch.nn.functional.conv_transpose2d` over an (N, C, H, W) or (C, H, W) input."""
    geom = conv_transpose_geometry(input.shape, weight.shape,
                                   None if bias is None else bias.shape, stride, padding,
                                   output_padding, groups, dilation)
    check_operand_dtypes(OP, input, weight, bias)
    tensors = (input, weight) if bias is None else (input, weight, bias)
    return ConvTranspose2d.apply(*tensors, geom=geom)
