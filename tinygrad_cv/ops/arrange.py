"""Ops that join, pad, repeat or rearrange tensors: cat/stack, pad, flip, repeat/tile,
unbind, pixel/channel shuffle, tril/triu, roll, meshgrid."""
from __future__ import annotations

import numbers

import numpy as np

from .. import dtypes
from ..autograd import Function
from ..backend import array_module, xp_of
from ..tensor import Tensor
from .indexing import IndexSelect
from .movement import Narrow, _int_arg, expand, normalize_dim, reshape, squeeze, unsqueeze


# ----------------------------------------------------------------------------- cat / stack

class Cat(Function):
    @staticmethod
    def forward(ctx, *arrays, axis):
        ctx.axis = axis
        ctx.sizes = [a.shape[axis] for a in arrays]
        return xp_of(arrays[0]).concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        bounds = np.cumsum(ctx.sizes)[:-1].tolist()    # host ints: no device array made
        parts = xp_of(grad).split(grad, bounds, axis=ctx.axis)
        return tuple(p if need else None for p, need in zip(parts, ctx.needs_input_grad))


def _same_dtype(tensors, op):
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = dtypes.promote_types(dtype, t.dtype)
    from .elementwise import cast
    return [cast(t, dtype) for t in tensors]


def cat(tensors, dim=0):
    """Concatenate along an existing dim; all other dims must match."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty sequence of tensors")
    if not all(isinstance(t, Tensor) for t in tensors):
        raise TypeError("cat: expected a sequence of Tensors")
    ref = tensors[0]
    if ref.ndim == 0:
        raise ValueError("cat: zero-dimensional tensors cannot be concatenated")
    axis = normalize_dim("cat", dim, ref.shape)
    for i, t in enumerate(tensors[1:], 1):
        if t.ndim != ref.ndim or any(a != b for j, (a, b) in enumerate(zip(t.shape, ref.shape))
                                     if j != axis):
            raise ValueError(f"cat: tensor {i} has shape {t.shape} but tensor 0 has shape "
                             f"{ref.shape}; they must match except in dim {axis}")
    return Cat.apply(*_same_dtype(tensors, "cat"), axis=axis)


def stack(tensors, dim=0):
    """Join same-shaped tensors along a new dim."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    ref = tensors[0]
    for i, t in enumerate(tensors[1:], 1):
        if t.shape != ref.shape:
            raise ValueError(f"stack: tensor {i} has shape {t.shape} but tensor 0 has shape "
                             f"{ref.shape}; all must be equal")
    axis = normalize_dim("stack", dim, ref.shape, extra=1)
    return Cat.apply(*[unsqueeze(t, axis) for t in _same_dtype(tensors, "stack")], axis=axis)


# ----------------------------------------------------------------------------- pad

class ConstantPad(Function):
    """Constant padding; negative amounts crop, as torch's F.pad.

    Along each dim, input position i lands at output position i + lo; the part of the
    input that survives cropping is copied, the rest of the output is `value`.
    """

    @staticmethod
    def forward(ctx, a, widths, value):
        out_shape = tuple(n + lo + hi for (lo, hi), n in zip(widths, a.shape))
        ctx.src, ctx.dst = _pad_overlap(widths, a.shape)
        out = xp_of(a).full(out_shape, value, dtype=a.dtype)
        out[ctx.dst] = a[ctx.src]
        return out

    @staticmethod
    def backward(ctx, grad):
        shape, dtype = ctx.input_meta[0]
        out = xp_of(grad).zeros(shape, dtype=dtype)
        out[ctx.src] = grad[ctx.dst]
        return out


def _pad_overlap(widths, shape):
    """Slices of the input that survive padding/cropping, and where they land."""
    src, dst = [], []
    for (lo, hi), n in zip(widths, shape):
        start, stop = max(0, -lo), n - max(0, -hi)
        src.append(slice(start, max(start, stop)))
        dst.append(slice(start + lo, max(start, stop) + lo))
    return tuple(src), tuple(dst)


def _pad_widths(op, pad, ndim):
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > ndim:
        raise ValueError(f"{op}: padding {pad} must have an even length of at most "
                         f"2 * ndim = {2 * ndim}")
    widths = [(0, 0)] * ndim
    for i in range(len(pad) // 2):
        widths[ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return widths


def _wrap_index(mode, n, lo, hi, xp):
    """Source positions (length lo + n + hi) of a reflect/replicate/circular pad."""
    pos = np.arange(-lo, n + hi)
    if mode == "replicate":
        pos = np.clip(pos, 0, n - 1)
    elif mode == "circular":
        pos = pos % n
    else:  # reflect, edge not repeated
        period = 2 * (n - 1)
        pos = np.abs(pos) % period if period else np.zeros_like(pos)
        pos = np.where(pos >= n, period - pos, pos)
    return xp.asarray(pos)


def pad(x, pad, mode="constant", value=0.0):
    """`F.pad`: `pad` lists (left, right) amounts from the last dim backwards."""
    widths = _pad_widths("pad", pad, x.ndim)
    if mode == "constant":
        for (lo, hi), n in zip(widths, x.shape):
            if n + lo + hi < 0:
                raise ValueError(f"pad: padding {tuple(pad)} would give a negative size "
                                 f"for input shape {x.shape}")
        return ConstantPad.apply(x, widths=widths, value=value)
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"pad: unknown mode {mode!r}; expected constant, reflect, "
                         f"replicate or circular")
    out = x
    xp = array_module(x.device_str)
    for axis, ((lo, hi), n) in enumerate(zip(widths, x.shape)):
        if lo == hi == 0:
            continue
        if min(lo, hi) < 0:
            raise ValueError(f"pad: negative padding needs mode='constant' (got {mode})")
        if mode == "reflect" and max(lo, hi) >= n:
            raise ValueError(f"pad: reflect padding {max(lo, hi)} must be smaller than the "
                             f"size {n} of dim {axis} (input shape {x.shape})")
        if mode == "circular" and max(lo, hi) > n:
            raise ValueError(f"pad: circular padding {max(lo, hi)} must not exceed the size "
                             f"{n} of dim {axis} (input shape {x.shape})")
        out = IndexSelect.apply(out, index=_wrap_index(mode, n, lo, hi, xp), axis=axis)
    return out



# ----------------------------------------------------------------------------- flip / repeat

class Flip(Function):
    """Reverse the order along `axes` (a copy, as torch.flip); backward flips back."""

    @staticmethod
    def forward(ctx, a, axes):
        ctx.axes = axes
        xp = xp_of(a)
        return xp.ascontiguousarray(xp.flip(a, axis=axes))

    @staticmethod
    def backward(ctx, grad):
        return xp_of(grad).flip(grad, axis=ctx.axes)


def flip(x, dims):
    dims = (dims,) if isinstance(dims, numbers.Integral) else tuple(dims)
    axes = tuple(normalize_dim("flip", d, x.shape) for d in dims)
    if len(set(axes)) != len(axes):
        raise RuntimeError(f"flip: dims {dims} has a dim appearing more than once")
    return Flip.apply(x, axes=axes)


class Repeat(Function):
    """torch's `repeat` (NumPy's tile): the input tiled `sizes[i]` times along dim i, with
    leading dims added when `sizes` is longer. Backward sums the copies."""

    @staticmethod
    def forward(ctx, a, sizes):
        ctx.sizes = sizes
        padded = (1,) * (len(sizes) - a.ndim) + a.shape
        ctx.padded = padded
        return xp_of(a).tile(a.reshape(padded), sizes)

    @staticmethod
    def backward(ctx, grad):
        split_shape = []
        for r, s in zip(ctx.sizes, ctx.padded):
            split_shape += [r, s]
        summed = grad.reshape(split_shape).sum(axis=tuple(range(0, len(split_shape), 2)))
        return summed.reshape(ctx.input_meta[0][0])


def repeat(x, sizes):
    sizes = tuple(sizes)
    if len(sizes) < x.ndim:
        raise RuntimeError(f"repeat: number of dimensions of repeat dims {sizes} can not be "
                           f"smaller than number of dimensions of tensor (shape {x.shape})")
    if any(s < 0 for s in sizes):
        raise RuntimeError(f"repeat: repeats must be non-negative, got {sizes}")
    return Repeat.apply(x, sizes=sizes)


# ----------------------------------------------------------------------------- pixel / channel shuffle

class ReshapePermute(Function):
    """reshape(split_shape) -> transpose(perm) -> reshape(out_shape) as one op (the output
    is a contiguous copy); backward runs the inverse rearrangement."""

    @staticmethod
    def forward(ctx, a, split_shape, perm, out_shape):
        ctx.perm = perm
        ctx.permuted_shape = tuple(split_shape[i] for i in perm)
        return xp_of(a).ascontiguousarray(a.reshape(split_shape).transpose(perm)).reshape(
            out_shape)

    @staticmethod
    def backward(ctx, grad):
        back = grad.reshape(ctx.permuted_shape).transpose(tuple(np.argsort(ctx.perm)))
        return xp_of(grad).ascontiguousarray(back).reshape(ctx.input_meta[0][0])


def _positive_int(op, name, value):
    value = _int_arg(op, name, value)
    if value <= 0:
        raise ValueError(f"{op}: {name} must be greater than 0, but got {value}")
    return value


def pixel_shuffle(x, upscale_factor):
    """(*, C * r * r, H, W) -> (*, C, H * r, W * r), as torch.nn.functional.pixel_shuffle."""
    r = _positive_int("pixel_shuffle", "upscale_factor", upscale_factor)
    if x.ndim < 3:
        raise RuntimeError(f"pixel_shuffle expects input to have at least 3 dimensions, but "
                           f"got input with {x.ndim} dimension(s) (shape {x.shape})")
    *lead, c, h, w = x.shape
    if c % (r * r):
        raise RuntimeError(f"pixel_shuffle expects its input's 'channel' dimension to be "
                           f"divisible by the square of upscale_factor, but input.size(-3)={c} "
                           f"is not divisible by {r * r}")
    k = len(lead)
    split = (*lead, c // (r * r), r, r, h, w)
    perm = tuple(range(k)) + (k, k + 3, k + 1, k + 4, k + 2)
    return ReshapePermute.apply(x, split_shape=split, perm=perm,
                                out_shape=(*lead, c // (r * r), h * r, w * r))


def pixel_unshuffle(x, downscale_factor):
    """(*, C, H * r, W * r) -> (*, C * r * r, H, W), the inverse of pixel_shuffle."""
    r = _positive_int("pixel_unshuffle", "downscale_factor", downscale_factor)
    if x.ndim < 3:
        raise RuntimeError(f"pixel_unshuffle expects input to have at least 3 dimensions, "
                           f"but got input with {x.ndim} dimension(s) (shape {x.shape})")
    *lead, c, h, w = x.shape
    if h % r or w % r:
        raise RuntimeError(f"pixel_unshuffle expects height and width to be divisible by "
                           f"downscale_factor, but input.size(-2)={h} and input.size(-1)={w} "
                           f"with downscale_factor={r}")
    k = len(lead)
    split = (*lead, c, h // r, r, w // r, r)
    perm = tuple(range(k)) + (k, k + 2, k + 4, k + 1, k + 3)
    return ReshapePermute.apply(x, split_shape=split, perm=perm,
                                out_shape=(*lead, c * r * r, h // r, w // r))


def channel_shuffle(x, groups):
    """(N, C, *) with C = g * k: channel order (g, k) becomes (k, g) (ShuffleNet)."""
    g = _positive_int("channel_shuffle", "groups", groups)
    if x.ndim < 3:
        raise RuntimeError(f"channel_shuffle expects input to have at least 3 dimensions, "
                           f"but got input with {x.ndim} dimension(s) (shape {x.shape})")
    n, c, *rest = x.shape
    if c % g:
        raise RuntimeError(f"Number of channels must be divisible by groups. Got {c} channels "
                           f"and {g} groups.")
    split = (n, g, c // g, *rest)
    perm = (0, 2, 1) + tuple(range(3, x.ndim + 1))
    return ReshapePermute.apply(x, split_shape=split, perm=perm, out_shape=x.shape)


def unbind(x, dim=0):
    """The slices of `dim` as a tuple of tensors with that dim removed."""
    axis = normalize_dim("unbind", dim, x.shape)
    return tuple(squeeze(Narrow.apply(x, axis=axis, start=i, length=1), axis)
                 for i in range(x.shape[axis]))


def tile(x, dims):
    """torch.tile: `repeat` with `dims` left-padded with ones to the tensor's rank."""
    dims = tuple(dims)
    return repeat(x, (1,) * max(0, x.ndim - len(dims)) + dims)


# ----------------------------------------------------------------------------- tril / triu / roll / meshgrid

class TriangleMask(Function):
    """tril / triu of the last two dims: a constant 0/1 mask multiply (gradient masked)."""

    @staticmethod
    def forward(ctx, a, diagonal, upper):
        xp = xp_of(a)
        rows, cols = a.shape[-2:]
        keep = (xp.triu if upper else xp.tril)(xp.ones((rows, cols), dtype=bool), diagonal)
        ctx.save_for_backward(keep)
        return xp.where(keep, a, 0).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (keep,) = ctx.saved
        return xp_of(grad).where(keep, grad, 0).astype(grad.dtype, copy=False)


def _triangle(x, diagonal, upper):
    if x.ndim < 2:
        raise RuntimeError(f"{'triu' if upper else 'tril'}: input tensor must have at least 2 "
                           f"dimensions, got shape {x.shape}")
    return TriangleMask.apply(x, diagonal=int(diagonal), upper=upper)


def tril(x, diagonal=0):
    return _triangle(x, diagonal, False)


def triu(x, diagonal=0):
    return _triangle(x, diagonal, True)


class Roll(Function):
    @staticmethod
    def forward(ctx, a, shifts, axes):
        ctx.shifts, ctx.axes = shifts, axes
        return xp_of(a).roll(a, shifts, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        back = tuple(-s for s in ctx.shifts) if ctx.axes is not None else -ctx.shifts
        return xp_of(grad).roll(grad, back, axis=ctx.axes)


def roll(x, shifts, dims=None):
    """torch.roll: shift elements cyclically along `dims` (the flattened tensor when None)."""
    if dims is None:
        if not isinstance(shifts, numbers.Integral):
            raise RuntimeError("roll: with dims=None, shifts must be one int")
        return Roll.apply(x, shifts=int(shifts), axes=None)
    shifts = (shifts,) if isinstance(shifts, numbers.Integral) else tuple(shifts)
    dims = (dims,) if isinstance(dims, numbers.Integral) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"roll: shifts {shifts} and dims {dims} should have the same size")
    axes = tuple(normalize_dim("roll", d, x.shape) for d in dims)
    return Roll.apply(x, shifts=tuple(int(s) for s in shifts), axes=axes)


def meshgrid(*tensors, indexing=None):
    """Coordinate grids from 1-D tensors; `indexing` "ij" (torch's default) or "xy".
    Each grid is an expand of a reshape, so gradients flow back to the 1-D inputs."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    indexing = "ij" if indexing is None else indexing
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    for t in tensors:
        if t.ndim > 1:
            raise RuntimeError(f"meshgrid: expects all tensors to be 0-D or 1-D, got shape "
                               f"{t.shape}")
    tensors = [t.reshape(-1) for t in tensors]
    swap = indexing == "xy" and len(tensors) >= 2
    if swap:
        tensors[0], tensors[1] = tensors[1], tensors[0]
    shape = tuple(t.shape[0] for t in tensors)
    grids = []
    for i, t in enumerate(tensors):
        view = [1] * len(shape)
        view[i] = shape[i]
        grids.append(expand(reshape(t, view), shape))
    if swap:        # "xy": the grids of (y, x, ...) in "ij" order, first two swapped
        grids[0], grids[1] = grids[1], grids[0]
    return tuple(grids)
