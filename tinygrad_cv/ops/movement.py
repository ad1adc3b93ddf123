"""Shape ops: reshape, permute, expand, squeeze, narrow/split/chunk, device moves (indexing
is in indexing.py; cat, pad, flip, repeat and the like in arrange.py).

Each checks its arguments against the input's shape first and names itself in the error.
"""
from __future__ import annotations

import math
import numbers
import os

import numpy as np

from ..autograd import Function
from ..backend import array_module, device_of_array, transfer, xp_of
from ..tensor import Tensor


# ----------------------------------------------------------------------------- argument checks

def normalize_dim(op, dim, ndim, extra=0):
    """A dim in [-(ndim+extra), ndim+extra-1] as a non-negative axis, else IndexError.

    `ndim` may be the tensor's shape (a tuple), so the error can name it."""
    shape = tuple(ndim) if isinstance(ndim, (tuple, list)) else None
    ndim = len(shape) if shape is not None else ndim
    if isinstance(dim, bool) or not isinstance(dim, (numbers.Integral,)):
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__}")
    size = ndim + extra
    lo, hi = (-1, 0) if size == 0 else (-size, size - 1)
    if not lo <= dim <= hi:
        of = f"shape {shape}" if shape is not None else f"{ndim} dimensions"
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor of {of} "
                         f"(expected a dim in [{lo}, {hi}])")
    return int(dim) % size if size else 0


def shape_args(args):
    """`f(2, 3)`, `f((2, 3))` and `f([2, 3])` as the tuple (2, 3)."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = args[0]
    out = []
    for n in args:
        if isinstance(n, Tensor):
            n = n.item()
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise TypeError(f"shape: expected integer sizes, got {args!r}")
        out.append(int(n))
    return tuple(out)


MAX_BYTES = 2 ** 63 - 1
"""The largest byte count a tensor may have (a signed 64-bit size, as torch and NumPy)."""


def _human_bytes(n):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024


def _host_memory_bytes():
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_new_shape(op, shape, dtype=None, device="cpu"):
    """The one size check of every tensor factory (and, without dtype, of reshape): a
    negative size, or a shape whose byte count overflows 64 bits or (on the CPU) exceeds
    the machine's memory, raises RuntimeError naming `op` before anything is allocated.
    Returns the element count."""
    for n in shape:
        if n < 0:
            raise RuntimeError(f"{op}: trying to create tensor with negative dimension {n}: "
                               f"{list(shape)}")
    itemsize = np.dtype(dtype).itemsize if dtype is not None else 1
    if math.prod(n for n in shape if n) * itemsize > MAX_BYTES:
        raise RuntimeError(f"{op}: trying to create tensor with shape {list(shape)}, which is "
                           f"too large: its size overflows a 64-bit integer")
    numel = math.prod(shape)
    memory = _host_memory_bytes() if dtype is not None and device == "cpu" else None
    if memory is not None and numel * itemsize > memory:
        raise RuntimeError(f"{op}: trying to create tensor with shape {list(shape)} of "
                           f"{np.dtype(dtype).name}, which is too large: "
                           f"{_human_bytes(numel * itemsize)}, more than this machine's "
                           f"{_human_bytes(memory)} of memory")
    return numel


def allocate(op, shape, dtype, make):
    """`make()` (an array of `shape` and `dtype`), with an out-of-memory failure reported
    as ours: the op, the shape and the bytes asked for."""
    try:
        return make()
    except MemoryError:
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        raise MemoryError(f"{op}: not enough memory to create a tensor of shape "
                          f"{list(shape)} and dtype {np.dtype(dtype).name} "
                          f"({_human_bytes(nbytes)})") from None


# ----------------------------------------------------------------------------- reshape family

class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        return a.reshape(shape)

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.input_meta[0][0])


def _resolve_shape(op, shape, size, in_shape):
    """The target shape of reshape/view with its -1 filled in, checked as torch does."""
    for i, n in enumerate(shape):
        if n < -1:
            raise RuntimeError(f"{op}: invalid shape dimension {n} at index {i} of shape "
                               f"{list(shape)}")
    unknown = [i for i, n in enumerate(shape) if n == -1]
    if len(unknown) > 1:
        raise RuntimeError(f"{op}: only one dimension can be inferred, got shape {list(shape)}")
    if math.prod(n for n in shape if n > 0) > MAX_BYTES:
        raise RuntimeError(f"{op}: shape {list(shape)} is too large: its number of elements "
                           f"overflows a 64-bit integer")
    known = math.prod(n for n in shape if n != -1)
    if unknown:
        if known == 0 and size == 0:
            raise RuntimeError(f"{op}: cannot reshape tensor of 0 elements into shape "
                               f"{list(shape)} because the unspecified dimension size -1 can "
                               f"be any value and is ambiguous")
        if known == 0 or size % known:
            raise RuntimeError(f"{op}: shape {shape} is invalid for an input of shape "
                               f"{in_shape} ({size} elements)")
        shape = tuple(size // known if n == -1 else n for n in shape)
    elif known != size:
        raise RuntimeError(f"{op}: shape {shape} is invalid for an input of shape "
                           f"{in_shape} ({size} elements)")
    return shape


def reshape(x, shape, op="reshape"):
    shape = _resolve_shape(op, tuple(shape), x.numel(), x.shape)
    return Reshape.apply(x, shape=shape)     # a new (view) tensor even for the same shape


def flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return reshape(x, (1,), "flatten")
    s = normalize_dim("flatten", start_dim, x.shape)
    e = normalize_dim("flatten", end_dim, x.shape)
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = x.shape[:s] + (math.prod(x.shape[s:e + 1]),) + x.shape[e + 1:]
    return reshape(x, shape, "flatten")


def squeeze(x, dim=None):
    if dim is None:
        return reshape(x, tuple(n for n in x.shape if n != 1), "squeeze")
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    axes = {normalize_dim("squeeze", d, x.shape) for d in dims}
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if not (i in axes and n == 1)),
                   "squeeze")


def unsqueeze(x, dim):
    axis = normalize_dim("unsqueeze", dim, x.shape, extra=1)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:], "unsqueeze")


class Permute(Function):
    @staticmethod
    def forward(ctx, a, dims):
        ctx.dims = dims
        return a.transpose(dims)

    @staticmethod
    def backward(ctx, grad):
        return grad.transpose(tuple(np.argsort(ctx.dims)))


def permute(x, dims):
    dims = tuple(normalize_dim("permute", d, x.shape) for d in dims)
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of the {x.ndim} dims "
                         f"of a tensor of shape {x.shape}")
    return Permute.apply(x, dims=dims)


def transpose(x, dim0, dim1):
    if x.ndim == 0:
        normalize_dim("transpose", dim0, x.shape)
        normalize_dim("transpose", dim1, x.shape)
        return permute(x, ())
    a = normalize_dim("transpose", dim0, x.shape)
    b = normalize_dim("transpose", dim1, x.shape)
    dims = list(range(x.ndim))
    dims[a], dims[b] = dims[b], dims[a]
    return permute(x, dims)


class Expand(Function):
    @staticmethod
    def forward(ctx, a, shape):
        return xp_of(a).broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, grad):
        return grad  # the engine's sum_to reduces it to the input's shape


def expand(x, sizes):
    if len(sizes) < x.ndim:
        raise RuntimeError(f"expand: the number of sizes {sizes} must be at least the tensor's "
                           f"number of dims ({x.shape})")
    lead = len(sizes) - x.ndim
    shape = []
    for i, n in enumerate(sizes):
        if i < lead:
            if n < 0:
                raise RuntimeError(f"expand: size -1 is not allowed for a new leading dim "
                                   f"({sizes} from {x.shape})")
            shape.append(n)
            continue
        have = x.shape[i - lead]
        if n == -1 or n == have:
            shape.append(have)
        elif have == 1:
            shape.append(n)
        else:
            raise RuntimeError(f"expand: cannot expand shape {x.shape} to {sizes} "
                               f"(dim {i}: size {have} is not 1)")
    return Expand.apply(x, shape=tuple(shape))


# ----------------------------------------------------------------------------- devices

class ToDevice(Function):
    output_device_param = "device"

    @staticmethod
    def forward(ctx, a, device):
        ctx.source = device_of_array(a)
        return transfer(a, device)

    @staticmethod
    def backward(ctx, grad):
        return transfer(grad, ctx.source)


def to_device(x, dev):
    if x.device_str == dev:
        return x
    array_module(dev)  # raises a clear error when cuda is not usable
    return ToDevice.apply(x, device=dev)


# ----------------------------------------------------------------------------- narrow / split / chunk

class Narrow(Function):
    """`length` entries of `axis` from `start` (a view, as torch's narrow); backward
    places the gradient back into zeros of the input's shape."""

    @staticmethod
    def forward(ctx, a, axis, start, length):
        ctx.where = (slice(None),) * axis + (slice(start, start + length),)
        return a[ctx.where]

    @staticmethod
    def backward(ctx, grad):
        shape, dtype = ctx.input_meta[0]
        out = xp_of(grad).zeros(shape, dtype=dtype)
        out[ctx.where] = grad
        return out


def _int_arg(op, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{op}: {name} must be an int, got {type(value).__name__}")
    return int(value)


def narrow(x, dim, start, length):
    axis = normalize_dim("narrow", dim, x.shape)
    size = x.shape[axis]
    start = _int_arg("narrow", "start", start)
    length = _int_arg("narrow", "length", length)
    if start < 0:
        start += size
    if not 0 <= start <= size or length < 0 or start + length > size:
        raise IndexError(f"narrow: start {start} and length {length} are out of range for "
                         f"dim {axis} of size {size} (tensor shape {x.shape})")
    return Narrow.apply(x, axis=axis, start=start, length=length)


def split(x, split_size_or_sections, dim=0):
    """torch.split: pieces of `split_size` along `dim` (the last may be smaller), or pieces
    of the listed sizes (which must sum to the dim's size). Each piece is a view."""
    axis = normalize_dim("split", dim, x.shape)
    size = x.shape[axis]
    if isinstance(split_size_or_sections, (list, tuple)):
        sections = [_int_arg("split", "split sizes", s) for s in split_size_or_sections]
        if any(s < 0 for s in sections) or sum(sections) != size:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to "
                               f"{size} (input tensor's size at dimension {axis}), but got "
                               f"split_sizes={sections}")
    else:
        step = _int_arg("split", "split_size", split_size_or_sections)
        if step < 0 or (step == 0 and size != 0):
            raise RuntimeError(f"split: split_size can only be 0 if the dimension size is 0, "
                               f"and must not be negative, but got split_size={step} for "
                               f"dim {axis} of size {size}")
        count = max(1, -(-size // step)) if step else 1
        sections = [min(step, size - i * step) for i in range(count)]
    out, start = [], 0
    for length in sections:
        out.append(Narrow.apply(x, axis=axis, start=start, length=length))
        start += length
    return tuple(out)


def chunk(x, chunks, dim=0):
    """torch.chunk: at most `chunks` pieces of ceil(size / chunks) along `dim`."""
    chunks = _int_arg("chunk", "chunks", chunks)
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    axis = normalize_dim("chunk", dim, x.shape)
    size = x.shape[axis]
    step = -(-size // chunks)
    if step == 0:   # an empty dim: torch returns `chunks` empty pieces
        return tuple(Narrow.apply(x, axis=axis, start=0, length=0) for _ in range(chunks))
    return split(x, step, axis)
