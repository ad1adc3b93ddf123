"""Shape ops: reshape, permute, expand, squeeze, indexing, cat/stack, pad, device moves.

Each checks its arguments against the input's shape first and names itself in the error.
"""
from __future__ import annotations

import math
import numbers
import os

import numpy as np

from .. import dtypes
from ..autograd import Function
from ..backend import array_module, device_of_array, is_device_array, transfer, xp_of
from ..tensor import Tensor, wrap_array


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
