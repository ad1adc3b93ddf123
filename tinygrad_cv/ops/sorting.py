"""sort, argsort, topk and gather: values picked along a dim by indices, with backward.

`TakeAlong` gathers `a` at integer `index` along `axis` (np.take_along_axis); backward
adds each output gradient back at its source position (repeated indices accumulate, as
torch's gather). sort/topk return (values, indices) like torch, indices int64 without a
gradient; ties are ordered stably.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..autograd import Function
from ..backend import xp_of
from ..tensor import Tensor, wrap_array
from .movement import normalize_dim

SortResult = namedtuple("SortResult", ["values", "indices"])


class TakeAlong(Function):
    @staticmethod
    def forward(ctx, a, index, axis):
        ctx.save_for_backward(index)
        ctx.axis = axis
        return xp_of(a).take_along_axis(a, index, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved
        shape, dtype = ctx.input_meta[0]
        xp = xp_of(grad)
        out = xp.zeros(shape, dtype=dtype)
        where = list(xp.indices(index.shape, sparse=True))
        where[ctx.axis] = index
        if xp is np:
            np.add.at(out, tuple(where), grad)
        else:
            import cupyx
            cupyx.scatter_add(out, tuple(where), grad)
        return out


def _take(x, index, axis):
    if not x.requires_grad:
        return wrap_array(xp_of(x.data).take_along_axis(x.data, index, axis=axis),
                            x.device_str)
    return TakeAlong.apply(x, index=index, axis=axis)


def _order(xp, data, axis, descending):
    if descending:
        if data.dtype.kind == "b":
            data = data.astype(np.int8)
        key = -data if data.dtype.kind in "fi" else data.max() - data
        return xp.argsort(key, axis=axis, kind="stable") if xp is np else \
            xp.argsort(key, axis=axis)
    return xp.argsort(data, axis=axis, kind="stable") if xp is np else \
        xp.argsort(data, axis=axis)


def sort(x, dim=-1, descending=False, stable=False):
    axis = normalize_dim("sort", dim, x.shape)
    if x.ndim == 0:
        return SortResult(x, wrap_array(xp_of(x.data).zeros((), np.int64), x.device_str))
    idx = _order(xp_of(x.data), x.data, axis, descending).astype(np.int64)
    return SortResult(_take(x, idx, axis), wrap_array(idx, x.device_str))


def argsort(x, dim=-1, descending=False, stable=False):
    return sort(x, dim, descending, stable).indices


def topk(x, k, dim=-1, largest=True, sorted=True):
    axis = normalize_dim("topk", dim, x.shape)
    size = x.shape[axis] if x.ndim else 1
    if not 0 <= k <= size:
        raise RuntimeError(f"topk: selected index k={k} out of range for dim {axis} of size "
                           f"{size} (tensor shape {x.shape})")
    order = _order(xp_of(x.data), x.data, axis, largest)
    idx = xp_of(x.data).take(order, range(k), axis=axis).astype(np.int64) if x.ndim else \
        order.astype(np.int64)
    return SortResult(_take(x, idx, axis), wrap_array(idx, x.device_str))


def gather(x, dim, index):
    """out[i][j][k] = x[index[i][j][k]][j][k] for dim 0 (and so on), as torch.gather."""
    axis = normalize_dim("gather", dim, x.shape)
    if not isinstance(index, Tensor) or index.dtype.kind not in "iu":
        raise RuntimeError(f"gather: expected an int64 index tensor, got "
                           f"{getattr(index, 'dtype', type(index).__name__)}")
    if index.ndim != x.ndim or any(i > n for d, (i, n) in enumerate(zip(index.shape, x.shape))
                                   if d != axis):
        raise RuntimeError(f"gather: index of shape {index.shape} must have the input's rank "
                           f"and no larger size except in dim {axis} (input {x.shape})")
    idx = index.data
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= x.shape[axis]):
        raise RuntimeError(f"gather: index out of range for dim {axis} of size {x.shape[axis]}")
    if tuple(idx.shape) != x.shape:
        # torch reads only the leading index.shape block of the other dims
        block = tuple(slice(0, n) if d != axis else slice(None)
                      for d, n in enumerate(idx.shape))
        from .indexing import getitem
        x = getitem(x, block)
    return _take(x, idx, axis)


class Cumsum(Function):
    """Running sum along `axis`; backward is the reversed running sum of the gradient."""

    @staticmethod
    def forward(ctx, a, axis):
        ctx.axis = axis
        return xp_of(a).cumsum(a, axis=axis).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        xp = xp_of(grad)
        flipped = xp.flip(grad, axis=ctx.axis)
        return xp.flip(xp.cumsum(flipped, axis=ctx.axis), axis=ctx.axis)


def cumsum(x, dim, dtype=None):
    axis = normalize_dim("cumsum", dim, x.shape)
    if dtype is not None:
        x = x.astype(dtype)
    elif x.dtype.kind in "biu":
        x = x.astype(np.int64)
    if x.ndim == 0:
        return x.clone()
    return Cumsum.apply(x, axis=axis)


class EmbeddingLookup(Function):
    """weight[index] for an integer index array of any shape; backward scatter-adds the
    rows' gradients, skipping `padding_idx` (torch's rule)."""

    @staticmethod
    def forward(ctx, weight, index, padding_idx):
        ctx.save_for_backward(index)
        ctx.padding_idx = padding_idx
        return xp_of(weight).take(weight, index, axis=0)

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved
        shape, dtype = ctx.input_meta[0]
        xp = xp_of(grad)
        out = xp.zeros(shape, dtype=dtype)
        rows = grad.reshape(-1, shape[1])
        flat = index.reshape(-1)
        if xp is np:
            np.add.at(out, flat, rows)
        else:
            import cupyx
            cupyx.scatter_add(out, flat, rows)
        if ctx.padding_idx is not None:
            out[ctx.padding_idx] = 0
        return out


def embedding(input, weight, padding_idx=None):
    if not isinstance(input, Tensor) or input.dtype.kind not in "iu":
        raise RuntimeError(f"embedding: expected an integer index tensor, got "
                           f"{getattr(input, 'dtype', type(input).__name__)}")
    if weight.ndim != 2:
        raise RuntimeError(f"embedding: weight must be 2-D, got shape {weight.shape}")
    idx = input.data
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= weight.shape[0]):
        raise IndexError(f"embedding: index out of range in self (indices must be in "
                         f"[0, {weight.shape[0]}), got min {int(idx.min())} max "
                         f"{int(idx.max())})")
    if padding_idx is not None and padding_idx < 0:
        padding_idx += weight.shape[0]
    return EmbeddingLookup.apply(weight, index=idx, padding_idx=padding_idx)
