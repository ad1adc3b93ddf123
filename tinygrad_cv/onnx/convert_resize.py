"""The interpolate converter: one ONNX Resize where one reproduces torch's indices and
weights exactly, else gathers with them (see converters.py)."""
from __future__ import annotations

import math

import numpy as np


# ----------------------------------------------------------------------------- resize

def _onnx_linear_plan(in_size, out_size, scale, align_corners):
    """Source positions (idx0, lam1) of ONNX Resize linear for one axis, computed as
    onnxruntime does (float32)."""
    dst = np.arange(out_size, dtype=np.float32)
    if align_corners:
        real = dst * np.float32((in_size - 1) / (out_size - 1)) if out_size > 1 else dst * 0
    else:
        real = (dst + np.float32(0.5)) / np.float32(scale) - np.float32(0.5)
        if out_size == 1:
            real = dst * 0
        real = np.maximum(real, 0)
    idx0 = np.minimum(np.floor(real).astype(np.int64), in_size - 1)
    lam1 = np.clip(real - idx0, 0, 1)
    return idx0, lam1


def _recovered_scale(in_size, out_size, plan):
    """The scale torch used (scale_factor or out/in), from a half-pixel linear plan."""
    idx0, _, _, lam1 = plan
    last = out_size - 1
    real = float(idx0[last]) + float(lam1[last])
    if out_size > 1 and 0 < real and idx0[last] < in_size - 1:
        return (last + 0.5) / (real + 0.5)
    return out_size / in_size


def _resize_axis_attrs(in_size, out_size, plan, scale=None):
    """(mode, transform, rounding, scale) of an ONNX Resize giving exactly this axis'
    plan with that scale (default: the one torch used), or None when none does."""
    idx0, idx1, w0, w1 = plan
    if idx1 is None:            # nearest: asymmetric + floor, or half_pixel + round (exact)
        dst = np.arange(out_size, dtype=np.float32)
        scale = np.float32(out_size / in_size if scale is None else scale)
        for transform, rounding, src in (
                ("asymmetric", "floor", np.floor(dst / scale)),
                ("half_pixel", "round_prefer_ceil", np.floor((dst + 0.5) / scale))):
            if np.array_equal(np.minimum(src.astype(np.int64), in_size - 1), idx0):
                return "nearest", transform, rounding, float(scale)
        return None
    if scale is None:
        scale = _recovered_scale(in_size, out_size, plan)
    for align in (True, False):
        ref0, ref1 = _onnx_linear_plan(in_size, out_size, scale, align)
        if np.array_equal(ref0, idx0) and np.allclose(ref1, w1, atol=1e-5):
            return "linear", "align_corners" if align else "pytorch_half_pixel", None, scale
    return None


def _one_resize(attrs):
    return all(a is not None for a in attrs) and len({a[:3] for a in attrs}) == 1


def _gather_axis(g, x, axis, plan, dtype, rank):
    """One axis resized by its plan as gathers and weights (an exact fallback)."""
    idx0, idx1, w0, w1 = plan
    first = g.node("Gather", [x, g.const(np.asarray(idx0, np.int64))], axis=axis)
    if idx1 is None:
        return first
    shape = [-1] + [1] * (rank - 1 - axis)
    a = g.node("Mul", [first, g.const(np.asarray(w0, dtype).reshape(shape))])
    second = g.node("Gather", [x, g.const(np.asarray(idx1, np.int64))], axis=axis)
    return g.node("Add", [a, g.node("Mul", [second, g.const(np.asarray(w1, dtype)
                                                            .reshape(shape))])])


def _pair_plan(op, taps):
    """(idx0, idx1, w0, w1) from one axis' taps of ops/interpolate.py `axis_plan` (one tap:
    a nearest or identity axis, idx1 None; two: linear); four taps (bicubic) refuse."""
    if len(taps) == 1:
        return taps[0][0], None, None, None
    if len(taps) == 2:
        (idx0, w0), (idx1, w1) = taps
        return idx0, idx1, w0, w1
    raise op.fail("bicubic interpolation has no exact ONNX Resize here")


def interpolate(g, op):
    """One ONNX Resize when every axis matches one (nearest, bilinear with either
    align_corners): by scales when they give the traced sizes, else by sizes; otherwise
    per-axis gathers with torch's exact indices and weights."""
    plans = [_pair_plan(op, taps) for taps in op.params["plans"]]
    in_shape, rank, dtype = op.in_shape(0), len(op.in_shape(0)), op.in_dtype(0)
    first = rank - len(plans)
    if any(a >= first for a in op.dynamic_in(0)):
        raise op.fail("resizing a dynamic spatial axis cannot be exported")
    sizes = [(in_shape[first + k], op.out_shape[first + k]) for k in range(len(plans))]
    attrs = [_resize_axis_attrs(n, m, plan) for (n, m), plan in zip(sizes, plans)]
    if _one_resize(attrs) and all(math.floor(n * float(np.float32(a[3]))) == m
                                  for (n, m), a in zip(sizes, attrs)):
        mode, transform, rounding, _ = attrs[0]
        scales = g.const(np.asarray([1.0] * first + [a[3] for a in attrs], np.float32))
        return g.node("Resize", [op.inputs[0], None, scales], mode=mode,
                      coordinate_transformation_mode=transform, nearest_mode=rounding)
    attrs = [_resize_axis_attrs(n, m, plan, m / n) for (n, m), plan in zip(sizes, plans)]
    if _one_resize(attrs):
        mode, transform, rounding, _ = attrs[0]
        lead = g.node("Slice", [g.node("Shape", [op.inputs[0]]), g.ints([0]), g.ints([first])])
        target = g.node("Concat", [lead, g.ints([m for _, m in sizes])], axis=0)
        return g.node("Resize", [op.inputs[0], None, None, target], mode=mode,
                      coordinate_transformation_mode=transform, nearest_mode=rounding)
    x = op.inputs[0]
    for k in reversed(range(len(plans))):
        x = _gather_axis(g, x, first + k, plans[k], dtype, rank)
    return x
