"""Indexing ops: `t[index]` (ints, slices, None, Ellipsis, integer and boolean arrays) and
index_select, each with its gradient."""
from __future__ import annotations

import numbers

import numpy as np

from ..autograd import Function
from ..backend import array_module, is_device_array, transfer, xp_of
from ..tensor import Tensor, wrap_array
from .movement import normalize_dim


# ----------------------------------------------------------------------------- indexing

def _index_part(part, dev):
    """One component of an index as a list of raw index parts: Tensors, lists and tuples
    become arrays on `dev`; a bool mask becomes its nonzero coordinates (one per dim)."""
    if isinstance(part, Tensor):
        if part.device_str != dev:
            raise RuntimeError(f"__getitem__: index tensor is on {part.device_str} but the "
                               f"indexed tensor is on {dev}")
        if part.ndim == 0 and part.dtype.kind in "iu":
            return [int(part.item())]        # a 0-d integer tensor selects, as an int
        part = part.data
    elif isinstance(part, (list, tuple)):
        arr = np.asarray(part)
        part = array_module(dev).asarray(arr.astype(np.int64) if arr.size == 0 else arr)
    elif isinstance(part, np.ndarray) and dev != "cpu":
        part = transfer(part, dev)
    if is_device_array(part):
        if part.dtype.kind == "b":
            if part.ndim == 0:               # x[True] adds a dim of 1, x[False] of 0
                return [part]
            return list(part.nonzero())      # a mask is its nonzero coordinates
        if part.dtype.kind not in "iu":
            raise IndexError(f"__getitem__: index arrays must be integer or bool, got {part.dtype}")
    return [part]


def _mask_of(p):
    """The bool mask an index part stands for (Tensor, array or list of bools), or None."""
    if isinstance(p, (list, tuple)):
        p = np.asarray(p)
    if isinstance(p, Tensor) or is_device_array(p):
        return p if p.dtype.kind == "b" else None
    return None


def _check_masks(parts, shape):
    """A bool mask must match the sizes of the dims it indexes (NumPy's nonzero would not
    notice a mask of the wrong length)."""
    masks = [_mask_of(p) for p in parts]
    widths = [0 if p is None or p is Ellipsis else (m.ndim if m is not None else 1)
              for p, m in zip(parts, masks)]
    fill = len(shape) - sum(widths)
    dim = 0
    for p, m, w in zip(parts, masks, widths):
        if p is Ellipsis:
            dim += max(fill, 0)
            continue
        if m is not None and m.ndim:
            have = tuple(shape[dim:dim + m.ndim])
            if tuple(m.shape) != have:
                raise IndexError(f"__getitem__: the bool mask of shape {tuple(m.shape)} does "
                                 f"not match the indexed dims {have} (from dim {dim} of "
                                 f"tensor shape {tuple(shape)})")
        dim += w


def index_to_arrays(index, dev, shape=None):
    """A user's index (ints, slices, None, Ellipsis, Tensors, arrays, lists) for raw arrays."""
    parts = index if isinstance(index, tuple) else (index,)
    if shape is not None:
        _check_masks(parts, shape)
    out = []
    for p in parts:
        out.extend(_index_part(p, dev))
    return tuple(out)


def _is_advanced(idx):
    return any(is_device_array(p) for p in idx)


def _check_bounds(idx, shape):
    """Raise for out-of-range integer index arrays (CuPy would wrap them silently).

    GPU only, and a deliberate host sync (one min/max read per index array): the price
    of PyTorch's IndexError instead of silently wrong values. Not on the training path
    of the bundled models (losses gather targets without it)."""
    dim = 0
    for p in idx:
        if p is None or (is_device_array(p) and p.dtype.kind == "b"):
            continue
        if p is Ellipsis:
            dim += len(shape) - sum(1 for q in idx if q is not None and q is not Ellipsis)
            continue
        if is_device_array(p) and p.size and dim < len(shape):
            lo, hi = int(p.min()), int(p.max())
            if lo < -shape[dim] or hi >= shape[dim]:
                bad = hi if hi >= shape[dim] else lo
                raise IndexError(f"__getitem__: index {bad} is out of range for dim {dim} "
                                 f"of size {shape[dim]} (tensor shape {tuple(shape)})")
        dim += 1


class GetItem(Function):
    @staticmethod
    def forward(ctx, a, index):
        ctx.index = index
        return a[index]

    @staticmethod
    def backward(ctx, grad):
        shape, dtype = ctx.input_meta[0]
        xp = xp_of(grad)
        out = xp.zeros(shape, dtype=dtype)
        if _is_advanced(ctx.index):
            if xp is np:
                np.add.at(out, ctx.index, grad)   # repeated indices accumulate
            else:
                import cupyx
                cupyx.scatter_add(out, ctx.index, grad)
        else:
            out[ctx.index] = grad
        return out


def _is_int(p):
    return isinstance(p, (numbers.Integral, np.integer)) and not isinstance(p, (bool, np.bool_))


def _split_int_index(idx):
    """PyTorch applies integer (and None) indices before the advanced ones, so an int does
    not join the advanced indices' broadcast as in NumPy (`x[0, :, [1, 2]]` is (n1, 2)).
    Returns the two index tuples to apply in turn, or None when NumPy's rule agrees."""
    if not _is_advanced(idx) or not any(_is_int(p) for p in idx):
        return None
    first = tuple(p if (_is_int(p) or p is None or p is Ellipsis) else slice(None) for p in idx)
    second = tuple(slice(None) if p is None else p for p in idx if not _is_int(p))
    return first, second


def getitem(x, index):
    idx = index_to_arrays(index, x.device_str, x.shape)
    split = _split_int_index(idx)
    if split is not None:
        first = _getitem_arrays(x, split[0], index, x.shape)
        return _getitem_arrays(first, split[1], index, x.shape)
    return _getitem_arrays(x, idx, index, x.shape)


def _getitem_arrays(x, idx, index, full_shape):
    if x.device_str != "cpu":
        _check_bounds(idx, x.shape)
    try:
        if not x.requires_grad:
            out = x.data[idx]
            return wrap_array(out if is_device_array(out) else xp_of(x.data).asarray(out),
                                x.device_str)
        return GetItem.apply(x, index=idx)
    except IndexError as exc:
        raise IndexError(f"__getitem__: {exc} (tensor shape {full_shape}, index {index!r})") from None


class IndexSelect(Function):
    """Rows `index` of `axis` (repeats allowed); backward scatter-adds them back."""

    @staticmethod
    def forward(ctx, a, index, axis):
        ctx.save_for_backward(index)
        ctx.axis = axis
        return xp_of(a).take(a, index, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved
        shape, dtype = ctx.input_meta[0]
        xp = xp_of(grad)
        out = xp.zeros(shape, dtype=dtype)
        where = (slice(None),) * ctx.axis + (index,)
        if xp is np:
            np.add.at(out, where, grad)
        else:
            import cupyx
            cupyx.scatter_add(out, where, grad)
        return out


def index_select(x, dim, index):
    axis = normalize_dim("index_select", dim, x.shape)
    idx = index.data if isinstance(index, Tensor) else array_module(x.device_str).asarray(index)
    if idx.ndim == 0:
        idx = idx.reshape(1)
    if idx.ndim != 1 or idx.dtype.kind not in "iu":
        raise IndexError(f"index_select: index must be a 1-D integer tensor, got shape "
                         f"{tuple(idx.shape)} dtype {idx.dtype}")
    # An error check, and on a GPU a host sync (CuPy would wrap bad indices silently).
    if idx.size and (int(idx.min()) < -x.shape[axis] or int(idx.max()) >= x.shape[axis]):
        raise IndexError(f"index_select: index out of range for dim {axis} of size "
                         f"{x.shape[axis]} (tensor shape {x.shape})")
    return IndexSelect.apply(x, index=idx, axis=axis)
