"""Converters for shape ops: reshape, transpose, expand, cat, pad, indexing, narrow,
flip, repeat, pixel shuffle (see converters.py)."""
from __future__ import annotations

import math

import numpy as np

from .graph import INT64_MAX, INT64_MIN, host


# ----------------------------------------------------------------------------- shapes

def shape_spec(g, op, in1, in2, out1, out2):
    """The target shape (a value name) for ONNX Reshape of a value shaped in1 (in2 in the
    check trace) to out1 (out2): a dynamic axis kept in place is 0 (copy the input's
    size), one changing is -1, and any further changing one is read at run time from a
    graph input axis of the same sizes in both traces (else an error)."""
    spec, inferred = list(out1), []
    for i in (i for i, (a, b) in enumerate(zip(out1, out2)) if a != b):
        if i < len(in1) and in1[i] == out1[i] and in2[i] == out2[i]:
            spec[i] = 0
        else:
            inferred.append(i)
    for i in inferred[1:]:
        spec[i] = op.input_dim(out1[i], out2[i])
        if spec[i] is None:
            raise op.fail(f"reshaping {tuple(in1)} to {tuple(out1)} moves more than one "
                          "dynamic axis; export with fixed sizes")
    if inferred:
        spec[inferred[0]] = -1
    return shape_value(g, spec)


def shape_value(g, spec):
    """A 1-D int64 shape from ints and value names of 1-element int64 tensors."""
    if all(isinstance(v, (int, np.integer)) for v in spec):
        return g.ints(spec)
    parts, run = [], []
    for v in spec:
        if isinstance(v, str):
            if run:
                parts.append(g.ints(run))
                run = []
            parts.append(v)
        else:
            run.append(int(v))
    if run:
        parts.append(g.ints(run))
    return g.node("Concat", parts, axis=0)


def reshape(g, op):
    in1, out1 = op.in_shape(0), op.out_shape
    if len(in1) > 2 and len(out1) == 2 and out1[0] == in1[0] and \
            out1[1] == math.prod(in1[1:]) and not any(a > 0 for a in op.dynamic_in(0)):
        return g.node("Flatten", op.inputs, axis=1)
    if 0 in out1 and op.dynamic_out:
        raise op.fail(f"reshape to {tuple(out1)} (an empty axis) with a dynamic axis")
    return g.node("Reshape", [op.inputs[0], shape_spec(g, op, in1, op.in_shape2(0), out1,
                                                       op.out_shape2)])


def permute(g, op):
    return g.node("Transpose", op.inputs, perm=list(op.params["dims"]))


def expand(g, op):
    in1, out1 = op.in_shape(0), list(op.out_shape)
    lead = len(out1) - len(in1)
    spec = list(out1)
    for i in op.dynamic_out:
        if i >= lead and op.in_shape2(0)[i - lead] == op.out_shape2[i]:
            spec[i] = 1          # a dynamic axis the input already has: leave it
            continue
        # Expanded to a dynamic size (a class token to the batch): read it at run time.
        spec[i] = op.input_dim(out1[i], op.out_shape2[i])
        if spec[i] is None:
            raise op.fail(f"expand of {tuple(in1)} to {tuple(out1)} along a dynamic axis")
    return g.node("Expand", [op.inputs[0], shape_value(g, spec)])


def cat(g, op):
    return g.node("Concat", op.inputs, axis=int(op.params["axis"]))


def constant_pad(g, op):
    widths = op.params["widths"]
    pads = [lo for lo, _ in widths] + [hi for _, hi in widths]
    value = g.const(op.params["value"], op.in_dtype(0))
    return g.node("Pad", [op.inputs[0], g.ints(pads), value], mode="constant")


def index_select(g, op):
    index = host(op.params["index"])
    if not np.array_equal(index, host(op.params2["index"])):
        raise op.fail("the selected indices depend on the input's values")
    return g.node("Gather", [op.inputs[0], g.const(index.astype(np.int64))],
                  axis=int(op.params["axis"]))


def _expand_ellipsis(index, ndim):
    parts = list(index)
    if any(p is Ellipsis for p in parts):
        at = next(i for i, p in enumerate(parts) if p is Ellipsis)
        used = sum(1 for p in parts if p is not None and p is not Ellipsis)
        parts[at:at + 1] = [slice(None)] * (ndim - used)
    return parts


def getitem(g, op):
    """Basic indexing: slices (one Slice), then ints (Gather, last axis first), then None
    (Unsqueeze). Index arrays and masks cannot be exported."""
    parts = _expand_ellipsis(op.params["index"], len(op.in_shape(0)))
    if any(not (p is None or isinstance(p, (slice, int, np.integer))) for p in parts):
        raise op.fail("indexing with index arrays or masks cannot be exported")
    x = op.inputs[0]
    starts, ends, axes, steps, ints, new_axes = [], [], [], [], [], []
    axis = out_pos = 0
    for p in parts:
        if p is None:
            new_axes.append(out_pos)
            out_pos += 1
            continue
        if isinstance(p, slice):
            step = 1 if p.step is None else int(p.step)
            if p != slice(None):
                starts.append((0 if step > 0 else -1) if p.start is None else int(p.start))
                ends.append((INT64_MAX if step > 0 else INT64_MIN) if p.stop is None
                            else int(p.stop))
                axes.append(axis)
                steps.append(step)
            out_pos += 1
        else:
            ints.append((axis, int(p)))
        axis += 1
    if axes:
        x = g.node("Slice", [x, g.ints(starts), g.ints(ends), g.ints(axes), g.ints(steps)])
    for axis, i in sorted(ints, reverse=True):
        x = g.node("Gather", [x, g.const(np.int64(i))], axis=axis)
    if new_axes:
        x = g.unsqueeze(x, new_axes)
    return x if x != op.inputs[0] else g.node("Identity", [x])


def reshape_permute(g, op):
    """pixel_shuffle / pixel_unshuffle / channel_shuffle: reshape, transpose, reshape."""
    p, p2 = op.params, op.params2
    split = g.node("Reshape", [op.inputs[0], shape_spec(
        g, op, op.in_shape(0), op.in_shape2(0), p["split_shape"], p2["split_shape"])])
    moved = g.node("Transpose", [split], perm=list(p["perm"]))
    perm = list(p["perm"])
    moved1 = [p["split_shape"][i] for i in perm]
    moved2 = [p2["split_shape"][i] for i in perm]
    return g.node("Reshape", [moved, shape_spec(g, op, moved1, moved2, op.out_shape,
                                                 op.out_shape2)])


def narrow(g, op):
    axis, start, length = op.params["axis"], op.params["start"], op.params["length"]
    if axis in op.dynamic_in(0):
        raise op.fail("narrowing a dynamic axis cannot be exported")
    return g.node("Slice", [op.inputs[0], g.ints([start]), g.ints([start + length]),
                            g.ints([axis])])


def flip(g, op):
    axes = list(op.params["axes"])
    n = len(axes)
    return g.node("Slice", [op.inputs[0], g.ints([-1] * n), g.ints([INT64_MIN] * n),
                            g.ints(axes), g.ints([-1] * n)])


def repeat(g, op):
    sizes = list(op.params["sizes"])
    x = op.inputs[0]
    lead = len(sizes) - len(op.in_shape(0))
    if lead:
        x = g.unsqueeze(x, list(range(lead)))
    return g.node("Tile", [x, g.ints(sizes)])


def roll(g, op):
    """torch.roll: per axis, the last `shift` entries moved to the front (Slice + Concat);
    with no axes, over the flattened tensor."""
    shifts, axes = op.params["shifts"], op.params["axes"]
    x, shape = op.inputs[0], op.in_shape(0)
    if axes is None:
        flat = g.node("Reshape", [x, g.ints([-1])])
        n = math.prod(shape)
        rolled = _roll_axis(g, flat, 0, int(shifts) % n if n else 0)
        return g.node("Reshape", [rolled, g.node("Shape", [x])])
    shifts = shifts if isinstance(shifts, (tuple, list)) else (shifts,)
    axes = axes if isinstance(axes, (tuple, list)) else (axes,)
    for s, a in zip(shifts, axes):
        a = a % len(shape)
        if a in op.dynamic_in(0):
            raise op.fail("roll along a dynamic axis cannot be exported")
        x = _roll_axis(g, x, a, int(s) % shape[a] if shape[a] else 0)
    return x if x != op.inputs[0] else g.node("Identity", [x])


def _roll_axis(g, x, axis, shift):
    if shift == 0:
        return x
    tail = g.node("Slice", [x, g.ints([-shift]), g.ints([INT64_MAX]), g.ints([axis])])
    head = g.node("Slice", [x, g.ints([0]), g.ints([-shift]), g.ints([axis])])
    return g.node("Concat", [tail, head], axis=axis)
