"""Reductions over one, several or all dims; softmax, log_softmax and logsumexp.

Softmax-family ops subtract the (detached) max first, so logits of +-1e4 stay finite.
A full `max()`/`min()` shares the gradient evenly among tied elements; `max(dim)` sends
it to the one index it returns (the first maximum), as PyTorch.
"""
from __future__ import annotations

import builtins

import numpy as np

from .. import dtypes
from ..autograd import Function
from ..backend import xp_of
from ..tensor import Tensor, wrap_array
from .elementwise import cast, float_operand
from .movement import normalize_dim


def reduce_axes(op, dim, shape):
    """`dim` (None, int, or a tuple/list of ints) as a sorted tuple of axes; None = all."""
    ndim = len(shape) if isinstance(shape, (tuple, list)) else shape
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        return tuple(range(ndim))
    if isinstance(dim, (tuple, list)):
        axes = tuple(sorted(normalize_dim(op, d, shape) for d in dim))
        if len(set(axes)) != len(axes):
            raise ValueError(f"{op}: dim {tuple(dim)} names a dimension twice")
        return axes if ndim else ()
    axis = normalize_dim(op, dim, shape)
    return (axis,) if ndim else ()      # a 0-d tensor accepts dim 0/-1 and reduces nothing


def _keep_shape(shape, axes):
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _expand_grad(grad, in_shape, axes, keepdim):
    """A reduced gradient broadcast back over the input's shape (a view, no copy)."""
    if not keepdim:
        grad = grad.reshape(_keep_shape(in_shape, axes))
    return xp_of(grad).broadcast_to(grad, in_shape)


class Sum(Function):
    @staticmethod
    def forward(ctx, a, axes, keepdim):
        ctx.axes, ctx.keepdim = axes, keepdim
        return a.sum(axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        return _expand_grad(grad, ctx.input_meta[0][0], ctx.axes, ctx.keepdim)


class Mean(Function):
    @staticmethod
    def forward(ctx, a, axes, keepdim):
        ctx.axes, ctx.keepdim = axes, keepdim
        if a.size == 0:    # nan without NumPy's "mean of empty slice" warning
            return a.sum(axis=axes, keepdims=keepdim) / a.dtype.type(0)
        return a.mean(axis=axes, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        shape = ctx.input_meta[0][0]
        count = int(np.prod([shape[i] for i in ctx.axes]))
        return _expand_grad(grad / count if count else grad, shape, ctx.axes, ctx.keepdim)


class Var(Function):
    """Variance with `correction` (1 = unbiased, as torch's default)."""

    @staticmethod
    def forward(ctx, a, axes, correction, keepdim):
        mean = a.mean(axis=axes, keepdims=True)
        centered = a - mean
        count = int(np.prod([a.shape[i] for i in axes]))
        denom = builtins.max(count - correction, 0)
        ctx.save_for_backward(centered)
        ctx.axes, ctx.keepdim, ctx.denom = axes, keepdim, denom
        with np.errstate(divide="ignore", invalid="ignore"):
            return (centered * centered).sum(axis=axes, keepdims=keepdim) / a.dtype.type(denom)

    @staticmethod
    def backward(ctx, grad):
        return _var_grad(ctx, grad, ctx.saved[0])


def _var_grad(ctx, grad, centered):
    if not ctx.keepdim:
        grad = grad.reshape(_keep_shape(centered.shape, ctx.axes))
    with np.errstate(divide="ignore", invalid="ignore"):
        return grad * centered * centered.dtype.type(2.0 / ctx.denom if ctx.denom else np.inf)


class Std(Function):
    """sqrt(var); where the std is 0 the gradient is 0 (PyTorch's rule), not nan."""

    @staticmethod
    def forward(ctx, a, axes, correction, keepdim):
        out = xp_of(a).sqrt(Var.forward(ctx, a, axes, correction, keepdim))
        ctx.save_for_backward(ctx.saved[0], out)
        return out

    @staticmethod
    def backward(ctx, grad):
        centered, out = ctx.saved
        xp = xp_of(centered)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = xp.where(out == 0, xp.zeros((), dtype=centered.dtype), grad / (2 * out))
        return _var_grad(ctx, g, centered)


class MaxAll(Function):
    """Max (or min) of all elements; tied elements share the gradient evenly."""

    @staticmethod
    def forward(ctx, a, mode):
        out = a.max() if mode == "max" else a.min()
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved
        xp = xp_of(a)
        mask = (a == out) | (xp.isnan(a) & xp.isnan(out))
        share = grad / mask.sum().astype(a.dtype)
        return xp.where(mask, share, xp.zeros((), dtype=a.dtype))


class GatherDim(Function):
    """Pick one element per slice along `axis` (the index of max/min along a dim)."""

    @staticmethod
    def forward(ctx, a, index, axis, keepdim):
        xp = xp_of(a)
        ctx.save_for_backward(index)
        ctx.axis, ctx.keepdim = axis, keepdim
        out = xp.take_along_axis(a, index, axis=axis)
        return out if keepdim else out.squeeze(axis)

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved
        shape = ctx.input_meta[0][0]
        xp = xp_of(grad)
        if not ctx.keepdim:
            grad = xp.expand_dims(grad, ctx.axis)
        positions = xp.arange(shape[ctx.axis]).reshape(
            [-1 if i == ctx.axis else 1 for i in range(len(shape))])
        return xp.where(positions == index, grad, xp.zeros((), dtype=grad.dtype))


class LogSumExp(Function):
    @staticmethod
    def forward(ctx, a, axes, keepdim):
        xp = xp_of(a)
        m = a.max(axis=axes, keepdims=True) if a.size else xp.zeros((), dtype=a.dtype)
        m = xp.where(xp.isfinite(m), m, xp.zeros((), dtype=a.dtype))
        out = xp.log(xp.exp(a - m).sum(axis=axes, keepdims=True)) + m
        ctx.save_for_backward(a, out)
        ctx.axes, ctx.keepdim = axes, keepdim
        return out if keepdim else out.squeeze(axes)

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved
        if not ctx.keepdim:
            grad = grad.reshape(out.shape)
        return grad * xp_of(a).exp(a - out)


class Softmax(Function):
    @staticmethod
    def forward(ctx, a, axis):
        xp = xp_of(a)
        e = xp.exp(a - (a.max(axis=axis, keepdims=True) if a.size else 0))
        e /= e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(e)
        ctx.axis = axis
        return e

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return out * (grad - (grad * out).sum(axis=ctx.axis, keepdims=True))


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx, a, axis):
        xp = xp_of(a)
        shifted = a - (a.max(axis=axis, keepdims=True) if a.size else 0)
        out = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(out)
        ctx.axis = axis
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return grad - xp_of(out).exp(out) * grad.sum(axis=ctx.axis, keepdims=True)


# ----------------------------------------------------------------------------- entry points

def _needs_float(x, op):
    if not dtypes.is_floating(x.dtype):
        raise TypeError(f"{op}: expected a floating point tensor, got dtype {x.dtype}")


def sum(x, dim=None, keepdim=False, dtype=None):
    if dtype is not None:
        x = cast(x, dtypes.to_dtype(dtype))
    axes = reduce_axes("sum", dim, x.shape)
    if x.dtype.kind in "bui":          # integer sums are int64 (or `dtype`), with no gradient
        return wrap_array(x.data.sum(axis=axes, keepdims=keepdim,
                                       dtype=np.int64 if dtype is None else x.dtype),
                            x.device_str)
    return Sum.apply(x, axes=axes, keepdim=keepdim)


def mean(x, dim=None, keepdim=False, dtype=None):
    if dtype is not None:
        x = cast(x, dtypes.to_dtype(dtype))
    _needs_float(x, "mean")
    return Mean.apply(x, axes=reduce_axes("mean", dim, x.shape), keepdim=keepdim)


def correction_of(unbiased, correction):
    """torch's var/std: `correction` wins, else `unbiased` (True -> 1), else 1."""
    if correction is not None:
        return correction
    if unbiased is not None:
        return 1 if unbiased else 0
    return 1


def var(x, dim=None, correction=1, keepdim=False):
    _needs_float(x, "var")
    if isinstance(dim, bool):  # torch's var(unbiased) overload
        dim, correction = None, int(dim)
    return Var.apply(x, axes=reduce_axes("var", dim, x.shape), correction=correction,
                     keepdim=keepdim)


def std(x, dim=None, correction=1, keepdim=False):
    _needs_float(x, "std")
    if isinstance(dim, bool):  # torch's std(unbiased) overload
        dim, correction = None, int(dim)
    return Std.apply(x, axes=reduce_axes("std", dim, x.shape), correction=correction,
                     keepdim=keepdim)


def _check_nonempty(x, op, axis=None):
    """max/argmax need something to pick: the whole tensor, or the reduced `axis`."""
    if x.data.size == 0 if axis is None or x.ndim == 0 else x.shape[axis] == 0:
        where = "" if axis is None else f" along dim {axis}"
        raise RuntimeError(f"{op}: cannot reduce an empty tensor of shape {x.shape}{where}")


def amax_all(x, mode):
    _check_nonempty(x, mode)
    if not dtypes.is_floating(x.dtype):
        data = x.data.max() if mode == "max" else x.data.min()
        return wrap_array(data, x.device_str)
    return MaxAll.apply(x, mode=mode)


def max_dim(x, dim, keepdim, mode):
    """(values, indices) of the max (or min) along `dim`."""
    axis = normalize_dim(mode, dim, x.shape)
    _check_nonempty(x, mode, axis)
    xp = xp_of(x.data)
    data = x.data.reshape(1) if x.ndim == 0 else x.data
    index = (data.argmax if mode == "max" else data.argmin)(axis=axis if x.ndim else 0)
    index = xp.expand_dims(index, axis if x.ndim else 0).astype(np.int64)
    if x.ndim == 0:
        return x.clone(), wrap_array(xp.zeros((), dtype=np.int64), x.device_str)
    indices = index if keepdim else index.squeeze(axis)
    if dtypes.is_floating(x.dtype):
        values = GatherDim.apply(x, index=index, axis=axis, keepdim=keepdim)
    else:
        values = xp.take_along_axis(x.data, index, axis=axis)
        values = wrap_array(values if keepdim else values.squeeze(axis), x.device_str)
    return values, wrap_array(indices, x.device_str)


def max(x, dim=None, keepdim=False):
    """`tc.max(x)`, `tc.max(x, dim)` -> (values, indices), or `tc.max(x, other)`."""
    return x.max(dim, keepdim)


def min(x, dim=None, keepdim=False):
    return x.min(dim, keepdim)


def argext(x, dim, keepdim, op):
    """argmax/argmin: int64 indices of the first extreme value (flat when dim is None)."""
    fn = x.data.argmax if op == "argmax" else x.data.argmin
    if dim is None:
        _check_nonempty(x, op)
        out = fn()
        if keepdim:
            out = xp_of(x.data).asarray(out).reshape((1,) * x.ndim)
        return wrap_array(xp_of(x.data).asarray(out, dtype=np.int64), x.device_str)
    axis = normalize_dim(op, dim, x.shape)
    _check_nonempty(x, op, axis)
    if x.ndim == 0:
        return wrap_array(xp_of(x.data).zeros((), dtype=np.int64), x.device_str)
    out = fn(axis=axis, keepdims=keepdim).astype(np.int64)
    return wrap_array(out, x.device_str)


def argmax(x, dim=None, keepdim=False):
    return argext(x, dim, keepdim, "argmax")


def argmin(x, dim=None, keepdim=False):
    return argext(x, dim, keepdim, "argmin")


def logsumexp(x, dim=None, keepdim=False):
    x = float_operand(x, "logsumexp")
    return LogSumExp.apply(x, axes=reduce_axes("logsumexp", dim, x.shape), keepdim=keepdim)


def _softmax_axis(op, x, dim):
    if dim is None:
        raise TypeError(f"{op}: dim must be given (which dimension sums to one)")
    if x.ndim == 0:
        normalize_dim(op, dim, x.shape)
        return None
    return normalize_dim(op, dim, x.shape)


def softmax(x, dim=None, dtype=None):
    x = float_operand(x, "softmax")
    if dtype is not None:
        x = cast(x, dtypes.to_dtype(dtype))
    return Softmax.apply(x, axis=_softmax_axis("softmax", x, dim))


def log_softmax(x, dim=None, dtype=None):
    x = float_operand(x, "log_softmax")
    if dtype is not None:
        x = cast(x, dtypes.to_dtype(dtype))
    return LogSoftmax.apply(x, axis=_softmax_axis("log_softmax", x, dim))


# ----------------------------------------------------------------------------- amax / amin

class AmaxDims(Function):
    """torch.amax / amin over `axes`: tied elements share the gradient evenly (as torch's
    amax, unlike max(dim), which sends it to one index)."""

    @staticmethod
    def forward(ctx, a, axes, keepdim, mode):
        out = (a.max if mode == "max" else a.min)(axis=axes, keepdims=True)
        ctx.save_for_backward(a, out)
        ctx.axes, ctx.keepdim = axes, keepdim
        return out if keepdim else out.reshape(
            tuple(n for i, n in enumerate(out.shape) if i not in axes))

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved
        xp = xp_of(a)
        g = grad.reshape(out.shape)
        mask = (a == out) | (xp.isnan(a) & xp.isnan(out))
        count = mask.sum(axis=ctx.axes, keepdims=True).astype(a.dtype)
        return xp.where(mask, g / count, xp.zeros((), dtype=a.dtype))


def amax(x, dim=None, keepdim=False, mode="max"):
    op = "amax" if mode == "max" else "amin"
    axes = reduce_axes(op, dim, x.shape)
    _check_nonempty(x, op)
    if not dtypes.is_floating(x.dtype):
        data = (x.data.max if mode == "max" else x.data.min)(axis=axes, keepdims=keepdim)
        return wrap_array(xp_of(x.data).asarray(data), x.device_str)
    return AmaxDims.apply(x, axes=axes, keepdim=bool(keepdim), mode=mode)
