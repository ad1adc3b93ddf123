"""`F.interpolate`: nearest, nearest-exact, (bi/tri)linear and bicubic resizing, with
backward.

Every mode here is separable: resizing a (N, C, d1, ..., dk) input is one 1-D resize per
spatial axis, each output position reading one source position (nearest), a weighted
pair of neighbours (linear) or four (bicubic, torch's cubic kernel with A = -0.75 and
edge-clamped taps). `axis_plan` computes, per axis, the source indices and
weights exactly as torch's CPU kernels do, in the input's float type (float32 for
float32 inputs, as torch's index arithmetic), including torch's special cases. The op
applies the axes last to first (torch's kernel blends along W inside H); backward runs
the adjoints in reverse order, adding each output's gradient to its sources. On the CPU
small axes run as one GEMM with the axis' interpolation matrix (see DENSE_MAX_INPUT).
"""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from ..autograd import Function
from ..backend import xp_of
from ..tensor import Tensor

LINEAR_MODES = {"linear": 1, "bilinear": 2, "trilinear": 3, "bicubic": 2}
NEAREST_MODES = ("nearest", "nearest-exact")


def _scale_value(t, scale, in_size, out_size):
    """torch's compute_scales_value: 1/scale_factor when one was given, else in/out."""
    if scale is not None and scale > 0:
        return t(1.0 / scale)
    return t(in_size) / t(out_size)


def axis_plan(in_size, out_size, mode, align_corners, scale, dtype):
    """The taps of one axis: a tuple of (source index, weight) host arrays of length
    out_size (weight None for the nearest modes: one tap of weight 1)."""
    dst = np.arange(out_size)
    if mode == "nearest":
        if out_size == in_size:
            return ((dst, None),)
        if out_size == 2 * in_size:
            return ((dst >> 1, None),)
        s = _scale_value(np.float32, scale, in_size, out_size)
        src = np.floor(dst.astype(np.float32) * s).astype(np.int64)
        return ((np.minimum(src, in_size - 1), None),)
    if mode == "nearest-exact":
        s = _scale_value(np.float32, scale, in_size, out_size)
        src = np.floor(((dst + 0.5) * np.float64(s)).astype(np.float32)).astype(np.int64)
        return ((np.minimum(src, in_size - 1), None),)
    t = np.dtype(dtype).type
    cubic = mode == "bicubic"
    # torch copies an axis whose size does not change, except for bicubic, where a given
    # scale_factor still moves the taps (scale 1.25 on a size-2 axis reads 0.8 * dst)
    natural = scale is None or scale <= 0 or scale * in_size == out_size
    if out_size == in_size and (natural or not cubic):
        return ((dst, np.ones(out_size, dtype)),)
    if align_corners:
        ratio = t(in_size - 1) / t(out_size - 1) if out_size > 1 else t(0)
        real = ratio * dst.astype(dtype)
    else:
        ratio = _scale_value(t, scale, in_size, out_size)
        real = ratio * (dst.astype(dtype) + t(0.5)) - t(0.5)
        if not cubic:
            real = np.where(real < 0, t(0), real)
    if cubic:
        return _cubic_taps(real, in_size, t)
    idx0 = np.minimum(np.floor(real).astype(np.int64), in_size - 1)
    lam1 = np.clip(real - idx0.astype(dtype), t(0), t(1)).astype(dtype)
    idx1 = idx0 + (idx0 < in_size - 1)
    return ((idx0, (t(1) - lam1).astype(dtype)), (idx1, lam1))


CUBIC_A = -0.75
"""torch's (and OpenCV's) cubic convolution coefficient."""


def _cubic_taps(real, in_size, t):
    """Four taps at floor(real) - 1 .. + 2 (clamped to the edge, as torch), weighted by
    the cubic convolution kernel of the fractional part."""
    base = np.floor(real)
    frac = (real - base).astype(real.dtype)
    a = t(CUBIC_A)

    def near(x):      # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):       # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    one = t(1)
    weights = (far(frac + one), near(frac), near(one - frac), far(one - frac + one))
    base = base.astype(np.int64)
    return tuple((np.clip(base - 1 + k, 0, in_size - 1), w.astype(real.dtype))
                 for k, w in enumerate(weights))


def _along(shape_len, axis, w):
    """A weight vector shaped to broadcast along `axis` of an array of `shape_len` dims."""
    return w.reshape((-1,) + (1,) * (shape_len - 1 - axis))


def _resize_axis(xp, a, axis, taps):
    out = None
    for idx, w in taps:
        part = xp.take(a, idx, axis=axis)
        if w is not None:
            part *= _along(a.ndim, axis, w)
        if out is None:
            out = part
        else:
            out += part
    return out


def _scatter_axis(xp, grad, axis, idx, weight, out):
    """out[..., idx[j], ...] += weight[j] * grad[..., j, ...] along `axis`."""
    g = grad * _along(grad.ndim, axis, weight) if weight is not None else grad
    if xp is np and (idx.size < 2 or np.all(np.diff(idx) >= 0)):
        starts = np.flatnonzero(np.r_[True, np.diff(idx) != 0])
        sums = np.add.reduceat(g, starts, axis=axis)
        where = (slice(None),) * axis + (idx[starts],)
        out[where] += sums
    elif xp is np:
        np.add.at(out, (slice(None),) * axis + (idx,), g)
    else:
        import cupyx
        cupyx.scatter_add(out, (slice(None),) * axis + (idx,), g)


DENSE_MAX_INPUT = 256
"""On the CPU, an axis whose input size is at most this is resized by one GEMM with its
(out, in) interpolation matrix, forward and backward, instead of gathers and a
segmented scatter-add (np.add.reduceat). x2 upsampling with backward, float32, CPU time
on one thread (wall clocks were too noisy on the shared machine), gathers vs GEMM:
(4, 64, 64, 64) bilinear 161 vs 40 ms, nearest 71 vs 39 ms; (2, 32, 128, 128) bilinear
171 vs 57 ms; (1, 16, 256, 256) bilinear 210 vs 102 ms, nearest 90 vs 101 ms. A GEMM's
cost grows with the input size, hence the bound. Non-finite values take the gather path
(0 * inf would spread NaN along a whole row of the GEMM)."""


def dense_matrix(taps, in_size, dtype):
    """The (out, in) matrix of one axis' resize."""
    rows = np.arange(taps[0][0].size)
    mat = np.zeros((rows.size, in_size), dtype)
    for idx, w in taps:
        np.add.at(mat, (rows, idx), 1 if w is None else w)
    return mat


def _dense_applies(xp, a, axis, plan, in_size):
    return (xp is np and axis >= a.ndim - 2 and in_size <= DENSE_MAX_INPUT
            and a.dtype in (np.float32, np.float64) and bool(np.isfinite(a).all()))


def _dense_axis(a, axis, mat):
    """Multiply `a` along `axis` (one of the last two) by `mat` (out, in)."""
    if axis == a.ndim - 1:
        return a @ np.ascontiguousarray(mat.T)
    return np.matmul(mat, a)


class Interpolate(Function):
    """Resize the trailing spatial axes with one host plan per axis (see axis_plan)."""

    @staticmethod
    def forward(ctx, x, plans):
        xp = xp_of(x)
        ctx.host_plans = plans
        ctx.plans = [tuple((xp.asarray(idx), None if w is None else xp.asarray(w))
                           for idx, w in taps) for taps in plans]
        ctx.matrices = {}
        out = x
        first_axis = x.ndim - len(plans)
        for k in reversed(range(len(plans))):
            axis = first_axis + k
            if _dense_applies(xp, out, axis, plans[k], x.shape[axis]):
                mat = dense_matrix(plans[k], x.shape[axis], x.dtype)
                ctx.matrices[k] = mat
                out = _dense_axis(out, axis, mat)
            else:
                out = _resize_axis(xp, out, axis, ctx.plans[k])
        return out

    @staticmethod
    def backward(ctx, grad):
        xp = xp_of(grad)
        shape = ctx.input_meta[0][0]
        first_axis = len(shape) - len(ctx.plans)
        g = grad
        for k in range(len(ctx.plans)):
            axis = first_axis + k
            mat = ctx.matrices.get(k)
            if mat is not None and _dense_applies(xp, g, axis, None, shape[axis]):
                g = _dense_axis(g, axis, np.ascontiguousarray(mat.T))
                continue
            taps = ctx.plans[k] if xp is not np else ctx.host_plans[k]
            out_shape = g.shape[:axis] + (shape[axis],) + g.shape[axis + 1:]
            acc = xp.zeros(out_shape, dtype=g.dtype)
            for idx, w in taps:
                _scatter_axis(xp, g, axis, idx, w, acc)
            g = acc
        return g


def _per_axis(name, value, k, spatial):
    if isinstance(value, (list, tuple)):
        if len(value) != k:
            raise ValueError(f"Input and output must have the same number of spatial "
                             f"dimensions, but got input with spatial dimensions of "
                             f"{list(spatial)} and {name} of {list(value)}. Please provide "
                             f"input tensor in (N, C, d1, d2, ...,dK) format and {name} in "
                             f"(o1, o2, ...,oK) format.")
        return list(value)
    return [value] * k


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """torch.nn.functional.interpolate for modes nearest, nearest-exact, linear (3-D),
    bilinear and bicubic (4-D) and trilinear (5-D), with torch's size / scale_factor /
    recompute_scale_factor / align_corners semantics."""
    op = "interpolate"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor input, got {type(input).__name__}")
    if not dtypes.is_floating(input.dtype):
        raise TypeError(f"{op}: expected a floating point input, got {input.dtype}")
    if mode not in NEAREST_MODES and mode not in LINEAR_MODES:
        if mode == "area":
            raise NotImplementedError(f"{op}: mode={mode!r} is not supported by tinygrad_cv "
                                      f"(nearest, nearest-exact, linear, bilinear, bicubic, "
                                      f"trilinear)")
        raise ValueError(f"{op}: unknown mode {mode!r}")
    if antialias:
        raise NotImplementedError(f"{op}: antialias=True is not supported by tinygrad_cv")
    if mode in NEAREST_MODES:
        if align_corners is not None:
            raise ValueError("align_corners option can only be set with the interpolating "
                             "modes: linear | bilinear | bicubic | trilinear")
    elif align_corners is None:
        align_corners = False
    k = input.ndim - 2
    if k < 1:
        raise ValueError(f"{op}: expected an input (N, C, d1, ...), got shape {input.shape}")
    if mode in LINEAR_MODES and LINEAR_MODES[mode] != k:
        raise NotImplementedError(f"Got {input.ndim}D input, but {mode} mode needs "
                                  f"{LINEAR_MODES[mode] + 2}D input")
    spatial = input.shape[2:]
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is None and scale_factor is None:
        raise ValueError("either size or scale_factor should be defined")
    if size is not None:
        if recompute_scale_factor:
            raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
        out_sizes = [int(s) for s in _per_axis("output size", size, k, spatial)]
        scales = [None] * k
    else:
        scales = [float(s) for s in _per_axis("scale_factor", scale_factor, k, spatial)]
        out_sizes = [int(math.floor(float(n) * s)) for n, s in zip(spatial, scales)]
        if recompute_scale_factor:
            scales = [None] * k
    if any(n <= 0 for n in spatial) or any(n <= 0 for n in out_sizes):
        raise RuntimeError(f"{op}: input and output sizes should be greater than 0, but got "
                           f"input {tuple(spatial)} output {tuple(out_sizes)}")
    plans = tuple(axis_plan(n_in, n_out, mode, align_corners, s, input.dtype)
                  for n_in, n_out, s in zip(spatial, out_sizes, scales))
    return Interpolate.apply(input, plans=plans)
