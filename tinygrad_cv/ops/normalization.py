"""Batch normalization as one fused op with an analytic backward.

Statistics are taken per channel (dim 1) over every other dim. In training the batch
statistics normalise the input and, when running buffers are given, update them in
place (running_var with the unbiased variance, as torch). In eval the running buffers
normalise. Backward (training), with xhat the normalised input and m the count:
    dx = w * invstd * (dy - mean(dy) - xhat * mean(dy * xhat))

On the CPU (float32/float64) the Numba kernels of kernels/cpu/norm.py do it in two passes
each way, saving the input rather than xhat; elsewhere (CuPy, other dtypes) array ops.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes, memory
from ..autograd import Function
from ..backend import xp_of
from ..tensor import Tensor


def _stat_axes(x):
    return (0,) + tuple(range(2, x.ndim))


def _per_channel(v, ndim):
    """A (C,) array shaped (1, C, 1, ...) to broadcast against the input."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _uses_kernels(x):
    return isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float64)


def _update_running(running_mean, running_var, mean, var, momentum, count):
    """running = (1 - momentum) * running + momentum * batch statistic (var unbiased)."""
    if running_mean is not None:
        running_mean *= 1.0 - momentum
        running_mean += momentum * mean.astype(running_mean.dtype)
    if running_var is not None:
        running_var *= 1.0 - momentum
        running_var += (momentum * count / (count - 1)) * var.astype(running_var.dtype)


class BatchNorm(Function):
    """Inputs: x, then weight and/or bias when present (`has_weight`, `has_bias`)."""

    @staticmethod
    def forward(ctx, x, *affine, training, momentum, eps, running_mean, running_var,
                has_weight, has_bias):
        xp = xp_of(x)
        axes = _stat_axes(x)
        weight = affine[0] if has_weight else None
        bias = affine[-1] if has_bias else None
        ctx.has_weight, ctx.has_bias = has_weight, has_bias
        ctx.empty = x.size == 0
        ctx.kernels = _uses_kernels(x)
        if ctx.empty:        # an empty batch: an empty output, the running stats untouched
            ctx.save_for_backward(None, None, None)
            return xp.empty_like(x)
        if ctx.kernels:
            return _forward_kernels(ctx, x, weight, bias, training, momentum, eps,
                                    running_mean, running_var)
        if training:
            count = x.size // x.shape[1]
            mean = x.mean(axis=axes)
            centred = x - _per_channel(mean, x.ndim)
            var = (centred * centred).mean(axis=axes)
            _update_running(running_mean, running_var, mean, var, momentum, count)
        else:
            centred = x - _per_channel(running_mean.astype(x.dtype), x.ndim)
            var = running_var.astype(x.dtype)
        invstd = (1.0 / xp.sqrt(var + x.dtype.type(eps))).astype(x.dtype)
        xhat = centred * _per_channel(invstd, x.ndim)
        out = xhat * _per_channel(weight, x.ndim) if weight is not None else xhat
        if bias is not None:
            out = out + _per_channel(bias, x.ndim)
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.training = training
        return out

    @staticmethod
    def backward(ctx, grad):
        xhat, invstd, weight = ctx.saved
        if ctx.empty:
            zeros = xp_of(grad).zeros(grad.shape[1], grad.dtype)
            return (grad.copy(),) + (zeros,) * (int(ctx.has_weight) + int(ctx.has_bias))
        if ctx.kernels:
            return _backward_kernels(ctx, grad)
        axes = _stat_axes(grad)
        ndim = grad.ndim
        dbias = grad.sum(axis=axes)
        dweight = (grad * xhat).sum(axis=axes)
        dx = None
        if ctx.needs_input_grad[0]:
            scale = invstd * weight if weight is not None else invstd
            if ctx.training:
                count = grad.size // grad.shape[1]
                dx = grad - _per_channel(dbias / count, ndim) \
                    - xhat * _per_channel(dweight / count, ndim)
                dx *= _per_channel(scale, ndim)
            else:
                dx = grad * _per_channel(scale, ndim)
        grads = [dx]
        if ctx.has_weight:
            grads.append(dweight if ctx.needs_input_grad[len(grads)] else None)
        if ctx.has_bias:
            grads.append(dbias if ctx.needs_input_grad[len(grads)] else None)
        return tuple(grads)


def _three_d(a):
    """An (N, C, ...) array as its (N, C, L) view."""
    return a.reshape(a.shape[0], a.shape[1], -1) if a.ndim != 3 else a


def _forward_kernels(ctx, x, weight, bias, training, momentum, eps, running_mean,
                     running_var):
    """The CPU forward: statistics in one kernel, out = x * a + b in another."""
    from ..kernels.cpu import norm
    x = np.ascontiguousarray(x)
    x3 = _three_d(x)
    channels = x.shape[1]
    if training:
        mean, var = np.empty(channels), np.empty(channels)
        norm.channel_stats(x3, mean, var)
        _update_running(running_mean, running_var, mean, var, momentum,
                        x.size // channels)
    else:
        mean, var = running_mean.astype(np.float64), running_var.astype(np.float64)
    invstd = 1.0 / np.sqrt(var + eps)
    a = invstd * weight if weight is not None else invstd
    b = (bias - mean * a) if bias is not None else -mean * a
    out = memory.empty(x.shape, x.dtype)
    norm.scale_shift(x3, a.astype(x.dtype), b.astype(x.dtype), _three_d(out))
    ctx.save_for_backward(x, mean, invstd)
    ctx.weight = weight
    ctx.training = training
    return out


def _backward_kernels(ctx, grad):
    """The CPU backward: the two per-channel sums in one kernel, dx in another."""
    from ..kernels.cpu import norm
    x, mean, invstd = ctx.saved
    weight = ctx.weight
    grad = np.ascontiguousarray(grad)
    x3, g3 = _three_d(x), _three_d(grad)
    channels = x.shape[1]
    sum_grad, dot = np.empty(channels), np.empty(channels)
    norm.channel_grad_sums(x3, g3, mean, sum_grad, dot)
    dx = None
    if ctx.needs_input_grad[0]:
        scale = invstd * weight if weight is not None else invstd
        dx = memory.empty(x.shape, x.dtype)
        if ctx.training:
            count = x.size // channels
            k_coef, mean_grad = invstd * invstd * dot / count, sum_grad / count
        else:
            k_coef, mean_grad = np.zeros(channels), np.zeros(channels)
        dtype = x.dtype
        norm.batch_norm_input_grad(x3, g3, mean.astype(dtype), mean_grad.astype(dtype),
                                   k_coef.astype(dtype), scale.astype(dtype), _three_d(dx))
    grads = [dx]
    if ctx.has_weight:
        grads.append((dot * invstd).astype(x.dtype) if ctx.needs_input_grad[len(grads)]
                      else None)
    if ctx.has_bias:
        grads.append(sum_grad.astype(x.dtype) if ctx.needs_input_grad[len(grads)] else None)
    return tuple(grads)


def _check_vector(name, t, channels, op):
    if t is None:
        return
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor or None, got {type(t).__name__}")
    if t.shape != (channels,):
        raise ValueError(f"{op}: {name} has shape {t.shape} but the input has {channels} "
                         f"channels (expected shape ({channels},))")


def batch_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
               training=False, momentum=0.1, eps=1e-5):
    """`torch.nn.functional.batch_norm`: every check runs before any buffer is updated."""
    op = "batch_norm"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor input, got {type(input).__name__}")
    if input.ndim < 2:
        raise ValueError(f"{op}: expected an input of at least 2 dims (N, C, ...), got "
                         f"shape {input.shape}")
    if not dtypes.is_floating(input.dtype):
        raise TypeError(f"{op}: expected a floating point input, got {input.dtype}")
    channels = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_vector(name, t, channels, op)
    if not training and (running_mean is None or running_var is None):
        raise ValueError(f"{op}: running_mean and running_var are needed when not training")
    if training and input.numel() // max(channels, 1) == 1:    # torch's rule: N=0 is fine
        raise ValueError(f"{op}: expected more than 1 value per channel when training, got "
                         f"input size {input.shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != input.dtype:
            raise TypeError(f"{op}: input dtype {input.dtype} and {name} dtype {t.dtype} "
                            f"should be the same")
    for name, t in (("running_mean", running_mean), ("running_var", running_var)):
        if t is not None and t.device_str != input.device_str:
            raise RuntimeError(f"{op}: {name} is on {t.device_str} but the input is on "
                               f"{input.device_str}")
    affine = [t for t in (weight, bias) if t is not None]
    return BatchNorm.apply(
        input, *affine, training=bool(training), momentum=float(momentum), eps=float(eps),
        running_mean=running_mean.data if (running_mean is not None) else None,
        running_var=running_var.data if (running_var is not None) else None,
        has_weight=weight is not None, has_bias=bias is not None)
