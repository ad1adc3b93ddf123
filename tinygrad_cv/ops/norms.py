"""Layer, group and instance normalisation as one op with an analytic backward.

All three normalise groups of elements with their own mean and (biased) variance, then
apply a per-feature affine. `GroupStatNorm` sees the input twice: as `group_shape`
(B, G, M), where each of the B*G rows of M elements is one group, and as `affine_shape`,
against which the weight and bias broadcast as `param_shape`. With xhat the normalised
rows and g the gradient reaching xhat (dy * weight):
    dx = invstd * (g - mean(g) - xhat * mean(g * xhat))      (means over a row)
BatchNorm (statistics over the batch, running buffers) is ops/normalization.py.
"""
from __future__ import annotations

import math
import numbers

from .. import dtypes
from ..autograd import Function
from ..backend import xp_of
from ..tensor import Tensor


class GroupStatNorm(Function):
    """Inputs: x, then weight and/or bias when present (`has_weight`, `has_bias`)."""

    @staticmethod
    def forward(ctx, x, *affine, group_shape, affine_shape, param_shape, eps, has_weight,
                has_bias):
        xp = xp_of(x)
        weight = affine[0] if has_weight else None
        bias = affine[-1] if has_bias else None
        rows = x.reshape(group_shape)
        mean = rows.mean(axis=-1, keepdims=True)
        centred = rows - mean
        var = (centred * centred).mean(axis=-1, keepdims=True)
        invstd = (1.0 / xp.sqrt(var + x.dtype.type(eps))).astype(x.dtype, copy=False)
        xhat = centred * invstd
        out = xhat.reshape(affine_shape)
        if weight is not None:
            out = out * weight.reshape(param_shape)
        if bias is not None:
            out = out + bias.reshape(param_shape)
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.shapes = (group_shape, affine_shape, param_shape)
        ctx.has_weight, ctx.has_bias = has_weight, has_bias
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad):
        xhat, invstd, weight = ctx.saved
        group_shape, affine_shape, param_shape = ctx.shapes
        g = grad.reshape(affine_shape)
        axes = tuple(i for i, n in enumerate(param_shape) if n == 1)
        grads = [None]
        if ctx.needs_input_grad[0]:
            gx = (g * weight.reshape(param_shape) if weight is not None else g)
            gx = gx.reshape(group_shape)
            dx = gx - gx.mean(axis=-1, keepdims=True) \
                - xhat * (gx * xhat).mean(axis=-1, keepdims=True)
            dx *= invstd
            grads[0] = dx.reshape(grad.shape)
        index = 1
        if ctx.has_weight:
            need = ctx.needs_input_grad[index]
            grads.append((g * xhat.reshape(affine_shape)).sum(axis=axes).reshape(
                ctx.input_meta[index][0]) if need else None)
            index += 1
        if ctx.has_bias:
            need = ctx.needs_input_grad[index]
            grads.append(g.sum(axis=axes).reshape(ctx.input_meta[index][0]) if need else None)
        return tuple(grads)


def _check_input(op, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor input, got {type(x).__name__}")
    if not dtypes.is_floating(x.dtype):
        raise TypeError(f"{op}: expected a floating point input, got {x.dtype}")


def _check_param(op, name, t, shape, x):
    if t is None:
        return
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor or None, got {type(t).__name__}")
    if t.shape != tuple(shape):
        raise ValueError(f"{op}: {name} has shape {t.shape}, expected {tuple(shape)} for an "
                         f"input of shape {x.shape}")
    if t.device_str != x.device_str:
        raise RuntimeError(f"{op}: {name} is on {t.device_str} but the input is on "
                           f"{x.device_str}")


def _run(x, weight, bias, eps, group_shape, affine_shape, param_shape):
    affine = [t for t in (weight, bias) if t is not None]
    return GroupStatNorm.apply(x, *affine, group_shape=group_shape, affine_shape=affine_shape,
                               param_shape=param_shape, eps=float(eps),
                               has_weight=weight is not None, has_bias=bias is not None)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """`F.layer_norm`: normalise over the last len(normalized_shape) dims."""
    op = "layer_norm"
    _check_input(op, input)
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(int(n) for n in normalized_shape)
    k = len(normalized_shape)
    if k == 0 or input.ndim < k or input.shape[input.ndim - k:] != normalized_shape:
        raise RuntimeError(f"{op}: Given normalized_shape={list(normalized_shape)}, expected "
                           f"input with shape [*, {', '.join(map(str, normalized_shape))}], but "
                           f"got input of size {list(input.shape)}")
    _check_param(op, "weight", weight, normalized_shape, input)
    _check_param(op, "bias", bias, normalized_shape, input)
    m = math.prod(normalized_shape)
    b = input.numel() // m if m else 0
    return _run(input, weight, bias, eps, (b, 1, m), (b, m), (1, m))


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """`F.group_norm`: input (N, C, *) normalised over each of `num_groups` channel groups."""
    op = "group_norm"
    _check_input(op, input)
    if input.ndim < 2:
        raise RuntimeError(f"{op}: expected an input of at least 2 dims (N, C, *), got shape "
                           f"{input.shape}")
    n, c = input.shape[:2]
    if num_groups <= 0 or c % num_groups:
        raise RuntimeError(f"{op}: expected the {c} channels of the input (shape "
                           f"{input.shape}) to be divisible by num_groups={num_groups}")
    _check_param(op, "weight", weight, (c,), input)
    _check_param(op, "bias", bias, (c,), input)
    spatial = math.prod(input.shape[2:])
    return _run(input, weight, bias, eps, (n, num_groups, c // num_groups * spatial),
                (n, c, spatial), (1, c, 1))


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """`F.instance_norm`: each (sample, channel) plane normalised by its own statistics
    (`use_input_stats`), which also update the running buffers when given (their average
    over the batch, the variance unbiased, as torch); otherwise the running statistics
    normalise, as batch norm in eval mode."""
    op = "instance_norm"
    _check_input(op, input)
    if input.ndim < 3:
        raise RuntimeError(f"{op}: expected an input of at least 3 dims (N, C, *), got shape "
                           f"{input.shape}")
    n, c = input.shape[:2]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_param(op, name, t, (c,), input)
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError(f"{op}: running_mean and running_var are needed when "
                             f"use_input_stats=False")
        from .normalization import batch_norm
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    spatial = math.prod(input.shape[2:])
    if spatial <= 1:
        raise ValueError(f"{op}: expected more than 1 spatial element when training, got "
                         f"input of size {input.shape}")
    out = _run(input, weight, bias, eps, (n, c, spatial), (n, c, spatial), (1, c, 1))
    if running_mean is not None or running_var is not None:
        mean, var = _plane_stats(input.data)
        m = float(momentum)
        if running_mean is not None:
            rm = running_mean.data
            rm *= 1.0 - m
            rm += m * mean.mean(axis=0).astype(rm.dtype)
        if running_var is not None:
            rv = running_var.data
            rv *= 1.0 - m
            rv += m * (var * (spatial / (spatial - 1))).mean(axis=0).astype(rv.dtype)
    return out


def _plane_stats(x):
    """Per (sample, channel) mean and biased variance, shaped (N, C)."""
    rows = x.reshape(x.shape[0], x.shape[1], -1)
    mean = rows.mean(axis=-1)
    centred = rows - mean[..., None]
    return mean, (centred * centred).mean(axis=-1)
