"""Tensor: one array of its device's array module, plus what autograd needs.

The class holds storage, device, dtype, grad and the node that made it (`grad_fn`).
Every computing method is a one-line delegation to a function in `ops/`, where the
op's forward and backward live.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from . import dtypes
from .autograd import AccumulateGrad, is_grad_enabled, no_grad, run_backward
from .backend import (array_module, canonical_device, device_of_array,
                      is_device_array, to_numpy, transfer)
from .backend import device as Device
from .random import generator_for
from .tensor_format import array_from_data, check_assigned_grad, tensor_repr

ReductionResult = namedtuple("ReductionResult", ["values", "indices"])


def wrap_array(arr, device: str, grad_fn=None) -> "Tensor":
    """The one internal constructor: a Tensor around the raw NumPy/CuPy array `arr` on
    `device` ("cpu", "cuda:0"), with no copy and no checks. Ops' outputs, batches and
    optimizer state are made by it; users call `Tensor(...)` or the factories."""
    if isinstance(arr, np.generic):
        arr = np.asarray(arr)
    t = object.__new__(Tensor)
    t.data = arr
    t.device_str = device
    t._grad = None
    t.grad_fn = grad_fn
    t._acc = None
    t.requires_grad = grad_fn is not None
    return t


class Tensor:
    """An n-dimensional array with reverse-mode autograd, on "cpu" (NumPy) or "cuda" (CuPy)."""

    __slots__ = ("data", "requires_grad", "_grad", "grad_fn", "device_str", "_acc", "__weakref__")
    __array_priority__ = 1000     # `ndarray op Tensor` defers to the Tensor ...
    __array_ufunc__ = None        # ... instead of NumPy broadcasting over it elementwise

    def __init__(self, data, requires_grad=False, dtype=None, device=None):
        dtype = dtypes.to_dtype(dtype)
        if isinstance(data, Tensor):
            arr = data.data.copy() if dtype is None else data.data.astype(dtype)
        else:
            arr = array_from_data(data, dtype)
        dev = canonical_device(device) if device is not None else device_of_array(arr)
        self.data = transfer(arr, dev)
        self.device_str = dev
        self._grad = None
        self.grad_fn = None
        self._acc = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    def _derived(self, arr, device=None, grad_fn=None):
        """A new plain Tensor (never a Parameter) around an op's output or a gradient, on
        this tensor's device unless `device` says otherwise. The autograd engine makes
        every tensor through this method, so it never imports this module."""
        return wrap_array(arr, self.device_str if device is None else device, grad_fn)

    def _node(self):
        """This tensor's graph node: its grad_fn, or (a leaf) its AccumulateGrad."""
        if self.grad_fn is not None:
            return self.grad_fn
        if self._acc is None:
            self._acc = AccumulateGrad(self)
        return self._acc

    # ------------------------------------------------------------------ attributes
    @property
    def grad(self):
        """The gradient backward accumulated (or the user assigned), or None."""
        return self._grad

    @grad.setter
    def grad(self, value):
        # As torch: a gradient must be None or a Tensor of this tensor's shape, dtype and
        # device, so an optimizer never reads one past its end or broadcasts it.
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"grad: assigned grad expected to be a Tensor or None but got "
                                f"grad of type {type(value).__name__}")
            check_assigned_grad(self, value)
        self._grad = value

    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        return Device(self.device_str)

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def is_cuda(self):
        return self.device_str != "cpu"

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self):
        return self.transpose(-2, -1)

    def dim(self):
        return self.data.ndim

    def numel(self):
        return int(self.data.size)

    def size(self, dim=None):
        if dim is None:
            return self.shape
        return self.shape[_mv.normalize_dim("size", dim, self.shape)]

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def element_size(self):
        return self.data.itemsize

    # ------------------------------------------------------------------ conversion
    def numpy(self):
        """A host NumPy array (shares memory on "cpu", as torch does; copies from a GPU)."""
        return to_numpy(self.data)

    def item(self):
        if self.data.size != 1:
            raise RuntimeError(f"item: a Tensor with {self.data.size} elements cannot be "
                               f"converted to a Python scalar (shape {self.shape})")
        return to_numpy(self.data).reshape(()).item()

    def tolist(self): return to_numpy(self.data).tolist()

    def to(self, *args, dtype=None, device=None, non_blocking=False, copy=False):
        """`to(device)`, `to(dtype)`, `to(device, dtype)`: a differentiable move/cast."""
        for a in args:
            if isinstance(a, (str, Device)):
                device = a
            elif isinstance(a, Tensor):
                device, dtype = a.device_str, a.dtype
            else:
                dtype = a
        out = self
        if dtype is not None:
            out = _ew.cast(out, dtypes.to_dtype(dtype))
        if device is not None:
            out = _mv.to_device(out, canonical_device(device))
        return out.clone() if copy and out is self else out

    def cpu(self): return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else
                       (f"cuda:{device}" if isinstance(device, int) else device))

    def astype(self, dtype):
        return _ew.cast(self, dtypes.to_dtype(dtype))

    type = astype

    def float(self): return self.astype(dtypes.float32)
    def double(self): return self.astype(dtypes.float64)
    def half(self): return self.astype(dtypes.float16)
    def long(self): return self.astype(dtypes.int64)
    def int(self): return self.astype(dtypes.int32)
    def bool(self): return self.astype(dtypes.bool_)

    def detach(self):
        """A new tensor sharing storage, cut from the graph."""
        return wrap_array(self.data, self.device_str)

    def clone(self): return _ew.clone(self)

    def contiguous(self): return self

    def requires_grad_(self, requires_grad=True):
        if requires_grad and not dtypes.is_floating(self.dtype):
            raise RuntimeError(f"requires_grad_: only tensors of floating point dtype can "
                               f"require gradients, got {self.dtype}")
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("requires_grad_: you can only change requires_grad of leaf "
                               "tensors; use detach() for a non-leaf")
        self.requires_grad = bool(requires_grad)
        return self

    # ------------------------------------------------------------------ autograd
    def backward(self, gradient=None, retain_graph=None, create_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's `.grad`, as torch's backward."""
        if create_graph:
            raise NotImplementedError("backward: create_graph=True (double backward) is not "
                                      "supported by tinygrad_cv")
        retain_graph = bool(retain_graph)
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad and has no "
                               "grad_fn (no input of the computation had requires_grad=True)")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward: grad can be implicitly created only for "
                                   f"scalar outputs, but this tensor has shape {self.shape}; "
                                   f"pass gradient= of that shape")
            grad = array_module(self.device_str).ones_like(self.data)
        else:
            g = gradient if isinstance(gradient, Tensor) else Tensor(gradient, dtype=self.dtype,
                                                                       device=self.device_str)
            if g.shape != self.shape:
                raise RuntimeError(f"backward: gradient has shape {g.shape} but the tensor "
                                   f"has shape {self.shape}")
            if g.device_str != self.device_str:
                raise RuntimeError(f"backward: gradient is on {g.device_str} but the tensor "
                                   f"is on {self.device_str}")
            grad = g.data.astype(self.dtype, copy=False)  # the engine copies if it must
        run_backward(self._node(), grad, retain_graph=retain_graph)

    def register_hook(self, hook):
        """Call `hook(grad)` with this tensor's gradient during backward; a non-None
        result replaces it. Returns a handle with `remove()`. See tensor_hooks.py."""
        from .tensor_hooks import register_hook
        return register_hook(self, hook)

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in `.grad` after backward."""
        from .tensor_hooks import retain_grad
        retain_grad(self)

    @property
    def retains_grad(self):
        fn = getattr(self.grad_fn, "fn", None)
        return getattr(fn, "retain", None) is not None

    def zero_(self):
        self._check_inplace("zero_")
        self.data[...] = 0
        return self

    def fill_(self, value):
        self._check_inplace("fill_")
        self.data[...] = value
        return self

    def copy_(self, src):
        self._check_inplace("copy_")
        src = src.data if isinstance(src, Tensor) else src
        src = transfer(array_module(self.device_str).asarray(src) if not is_device_array(src)
                       else src, self.device_str)
        if tuple(src.shape) != self.shape and np.broadcast_shapes(src.shape, self.shape) != self.shape:
            raise RuntimeError(f"copy_: cannot copy a tensor of shape {tuple(src.shape)} "
                               f"into one of shape {self.shape}")
        self.data[...] = src
        return self

    def uniform_(self, a=0.0, b=1.0):
        self._check_inplace("uniform_")
        self.data[...] = generator_for(self.device_str).uniform(a, b, self.shape)
        return self

    def normal_(self, mean=0.0, std=1.0):
        self._check_inplace("normal_")
        self.data[...] = generator_for(self.device_str).normal(mean, std, self.shape)
        return self

    def _inplace(self, op, fn, other):
        """`self op= other`: writes into self's storage (seen by every alias, as torch).

        A leaf requiring grad refuses (outside no_grad); a non-leaf in the graph gets the
        out-of-place result instead, so its gradient stays correct."""
        if self.requires_grad and is_grad_enabled():
            if self.is_leaf:
                self._check_inplace(op)
            return fn(self, other)
        with no_grad():
            result = fn(self, other)
        if result.shape != self.shape:
            raise RuntimeError(f"{op}: the result of shape {result.shape} cannot be written "
                               f"in place into a tensor of shape {self.shape}")
        if dtypes._category(result.dtype) > dtypes._category(self.dtype):
            raise RuntimeError(f"{op}: result type {result.dtype} can't be cast to the "
                               f"in-place tensor's dtype {self.dtype}")
        self.data[...] = result.data
        return self

    def __iadd__(self, other): return self._inplace("__iadd__", _ew.add, other)
    def __isub__(self, other): return self._inplace("__isub__", _ew.sub, other)
    def __imul__(self, other): return self._inplace("__imul__", _ew.mul, other)
    def __itruediv__(self, other): return self._inplace("__itruediv__", _ew.div, other)
    def __ipow__(self, other): return self._inplace("__ipow__", _ew.pow, other)

    def add_(self, other, alpha=1):
        return self._inplace("add_", _ew.add, other if alpha == 1 else other * alpha)

    def sub_(self, other, alpha=1):
        return self._inplace("sub_", _ew.sub, other if alpha == 1 else other * alpha)

    def mul_(self, other): return self._inplace("mul_", _ew.mul, other)
    def div_(self, other): return self._inplace("div_", _ew.div, other)

    def _check_inplace(self, op):
        if self.requires_grad and is_grad_enabled():
            kind = "a leaf tensor that requires grad" if self.is_leaf else "a tensor in the graph"
            raise RuntimeError(f"{op}: in-place operation on {kind}; wrap it in "
                               f"`with tc.no_grad():` or use .data")

    def __setitem__(self, index, value):
        self._check_inplace("__setitem__")
        value = value.data if isinstance(value, Tensor) else value
        self.data[_ix.index_to_arrays(index, self.device_str)] = value

    # ------------------------------------------------------------------ printing
    def __repr__(self): return tensor_repr(self)

    __str__ = __repr__

    def __format__(self, spec):
        if self.data.size == 1 and spec:
            return format(self.item(), spec)
        return repr(self) if not spec else format(repr(self), spec)

    def __bool__(self):
        if self.data.size != 1:
            raise RuntimeError(f"bool value of a Tensor with {self.data.size} elements is "
                               f"ambiguous (shape {self.shape})")
        return bool(self.item())

    def __float__(self): return float(self.item())
    def __int__(self): return int(self.item())

    def __index__(self):
        if not np.issubdtype(self.dtype, np.integer) or self.data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    __hash__ = object.__hash__

    def __array__(self, dtype=None, copy=None):
        """`np.asarray(tensor)` (and `np.array([t0, t1])`) give the host values."""
        arr = to_numpy(self.data)
        return arr.astype(dtype, copy=False) if dtype is not None else arr

    # ------------------------------------------------------------------ arithmetic
    def __add__(self, other): return _ew.add(self, other)
    def __radd__(self, other): return _ew.add(other, self)
    def __sub__(self, other): return _ew.sub(self, other)
    def __rsub__(self, other): return _ew.sub(other, self)
    def __mul__(self, other): return _ew.mul(self, other)
    def __rmul__(self, other): return _ew.mul(other, self)
    def __truediv__(self, other): return _ew.div(self, other)
    def __rtruediv__(self, other): return _ew.div(other, self)
    def __pow__(self, other): return _ew.pow(self, other)
    def __rpow__(self, other): return _ew.pow(other, self)
    def __matmul__(self, other): return _mm.matmul(self, other)
    def __rmatmul__(self, other): return _mm.matmul(other, self)
    def __neg__(self): return _ew.neg(self)
    def __pos__(self): return self
    def __abs__(self): return _ew.abs(self)

    def __eq__(self, other): return _ew.compare("eq", self, other)
    def __ne__(self, other): return _ew.compare("ne", self, other)
    def __lt__(self, other): return _ew.compare("lt", self, other)
    def __le__(self, other): return _ew.compare("le", self, other)
    def __gt__(self, other): return _ew.compare("gt", self, other)
    def __ge__(self, other): return _ew.compare("ge", self, other)
    def __invert__(self): return _ew.logical_not(self)
    def __and__(self, other): return _ew.logical("and", self, other)
    def __or__(self, other): return _ew.logical("or", self, other)
    def __rand__(self, other): return _ew.logical("and", other, self)
    def __ror__(self, other): return _ew.logical("or", other, self)

    def add(self, other): return _ew.add(self, other)
    def sub(self, other): return _ew.sub(self, other)
    def mul(self, other): return _ew.mul(self, other)
    def div(self, other): return _ew.div(self, other)
    def pow(self, exponent): return _ew.pow(self, exponent)
    def matmul(self, other): return _mm.matmul(self, other)
    def eq(self, other): return _ew.compare("eq", self, other)
    def ne(self, other): return _ew.compare("ne", self, other)
    def lt(self, other): return _ew.compare("lt", self, other)
    def le(self, other): return _ew.compare("le", self, other)
    def gt(self, other): return _ew.compare("gt", self, other)
    def ge(self, other): return _ew.compare("ge", self, other)
    def neg(self): return _ew.neg(self)
    def abs(self): return _ew.abs(self)

    # ------------------------------------------------------------------ elementwise
    def exp(self): return _ew.exp(self)
    def log(self): return _ew.log(self)
    def sqrt(self): return _ew.sqrt(self)
    def relu(self): return _relu.relu(self)
    def sigmoid(self): return _ew.sigmoid(self)
    def tanh(self): return _ew.tanh(self)
    def clamp(self, min=None, max=None): return _ew.clamp(self, min, max)
    clip = clamp
    def maximum(self, other): return _ew.maximum(self, other)
    def minimum(self, other): return _ew.minimum(self, other)
    def where(self, condition, other): return _ew.where(condition, self, other)

    # ------------------------------------------------------------------ reductions
    def sum(self, dim=None, keepdim=False, *, dtype=None): return _red.sum(self, dim, keepdim, dtype)
    def mean(self, dim=None, keepdim=False, *, dtype=None): return _red.mean(self, dim, keepdim, dtype)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return _red.var(self, dim, _red.correction_of(unbiased, correction), keepdim)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return _red.std(self, dim, _red.correction_of(unbiased, correction), keepdim)

    def max(self, dim=None, keepdim=False):
        """Full max (ties share the gradient), `max(dim)` -> (values, indices), or `max(other)`."""
        if isinstance(dim, Tensor):
            return _ew.maximum(self, dim)
        if dim is None:
            return _red.amax_all(self, "max")
        return ReductionResult(*_red.max_dim(self, dim, keepdim, "max"))

    def min(self, dim=None, keepdim=False):
        if isinstance(dim, Tensor):
            return _ew.minimum(self, dim)
        if dim is None:
            return _red.amax_all(self, "min")
        return ReductionResult(*_red.max_dim(self, dim, keepdim, "min"))

    def argmax(self, dim=None, keepdim=False): return _red.argext(self, dim, keepdim, "argmax")
    def argmin(self, dim=None, keepdim=False): return _red.argext(self, dim, keepdim, "argmin")
    def logsumexp(self, dim, keepdim=False): return _red.logsumexp(self, dim, keepdim)
    def softmax(self, dim, dtype=None): return _red.softmax(self, dim, dtype)
    def log_softmax(self, dim, dtype=None): return _red.log_softmax(self, dim, dtype)

    # ------------------------------------------------------------------ shape
    def reshape(self, *shape): return _mv.reshape(self, _mv.shape_args(shape))
    def view(self, *shape): return _mv.reshape(self, _mv.shape_args(shape), op="view")
    def view_as(self, other): return _mv.reshape(self, other.shape, op="view_as")
    def reshape_as(self, other): return _mv.reshape(self, other.shape, op="reshape_as")
    def flatten(self, start_dim=0, end_dim=-1): return _mv.flatten(self, start_dim, end_dim)
    def squeeze(self, dim=None): return _mv.squeeze(self, dim)
    def unsqueeze(self, dim): return _mv.unsqueeze(self, dim)
    def transpose(self, dim0, dim1): return _mv.transpose(self, dim0, dim1)
    def t(self):
        if self.ndim > 2:
            raise RuntimeError(f"t: expects a tensor with <= 2 dimensions, got shape {self.shape}")
        return self.T
    def permute(self, *dims): return _mv.permute(self, _mv.shape_args(dims))
    def expand(self, *sizes): return _mv.expand(self, _mv.shape_args(sizes))
    def expand_as(self, other): return _mv.expand(self, other.shape)
    def pad(self, pad, mode="constant", value=0.0): return _ar.pad(self, pad, mode, value)
    def __getitem__(self, index): return _ix.getitem(self, index)
    def index_select(self, dim, index): return _ix.index_select(self, dim, index)
    def narrow(self, dim, start, length): return _mv.narrow(self, dim, start, length)
    def split(self, split_size, dim=0): return _mv.split(self, split_size, dim)
    def chunk(self, chunks, dim=0): return _mv.chunk(self, chunks, dim)
    def repeat(self, *sizes): return _ar.repeat(self, _mv.shape_args(sizes))

    def flip(self, *dims):
        """Reverse along `dims` (`flip(0, 1)` or `flip((0, 1))`), as torch."""
        return _ar.flip(self, dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list))
                        else dims)

    def unbind(self, dim=0): return _ar.unbind(self, dim)

    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        """The vector p-norm over `dim` (all elements when None), as torch's Tensor.norm."""
        return _la.vector_norm(self, 2 if p == "fro" or p is None else p, dim, keepdim,
                           dtype=dtype)
    def tile(self, *dims): return _ar.tile(self, _mv.shape_args(dims))

    # ------------------------------------------------------------------ more math
    def square(self): return _un.unary(self, "square")
    def rsqrt(self): return _un.unary(self, "rsqrt")
    def reciprocal(self): return _un.unary(self, "reciprocal")
    def log1p(self): return _un.unary(self, "log1p")
    def expm1(self): return _un.unary(self, "expm1")
    def log2(self): return _un.unary(self, "log2")
    def log10(self): return _un.unary(self, "log10")
    def sin(self): return _un.unary(self, "sin")
    def cos(self): return _un.unary(self, "cos")
    def sign(self): return _un.unary(self, "sign")
    def floor(self): return _un.unary(self, "floor")
    def ceil(self): return _un.unary(self, "ceil")
    def trunc(self): return _un.unary(self, "trunc")
    def round(self, decimals=0): return _un.round_(self, decimals)
    def isnan(self): return _un.predicate(self, "isnan")
    def isinf(self): return _un.predicate(self, "isinf")
    def isfinite(self): return _un.predicate(self, "isfinite")
    def all(self, dim=None, keepdim=False): return _un.logical_reduce(self, "all", dim, keepdim)
    def any(self, dim=None, keepdim=False): return _un.logical_reduce(self, "any", dim, keepdim)
    def masked_fill(self, mask, value): return _un.masked_fill(self, mask, value)

    def masked_fill_(self, mask, value):
        self._check_inplace("masked_fill_")
        with no_grad():
            self.data[...] = _un.masked_fill(self, mask, value).data
        return self

    def sort(self, dim=-1, descending=False, stable=False): return _sort.sort(self, dim, descending, stable)
    def argsort(self, dim=-1, descending=False, stable=False): return _sort.argsort(self, dim, descending, stable)
    def topk(self, k, dim=-1, largest=True, sorted=True): return _sort.topk(self, k, dim, largest, sorted)
    def gather(self, dim, index): return _sort.gather(self, dim, index)
    def cumsum(self, dim, dtype=None): return _sort.cumsum(self, dim, dtype)

    def tril(self, diagonal=0): return _ar.tril(self, diagonal)
    def triu(self, diagonal=0): return _ar.triu(self, diagonal)
    def roll(self, shifts, dims=None): return _ar.roll(self, shifts, dims)
    def clamp_min(self, min): return _ew.clamp(self, min, None)
    def clamp_max(self, max): return _ew.clamp(self, None, max)

    def amax(self, dim=None, keepdim=False):
        """The largest value over `dim` (all when None); ties share the gradient."""
        return _red.amax(self, dim, keepdim, "max")

    def amin(self, dim=None, keepdim=False):
        return _red.amax(self, dim, keepdim, "min")

    def mm(self, mat2): return _mm.mm(self, mat2)
    def bmm(self, mat2): return _mm.bmm(self, mat2)

    # in-place forms: as `x += y`, a non-leaf in the graph gets the out-of-place result
    def clamp_(self, min=None, max=None):
        return self._inplace("clamp_", lambda a, _: _ew.clamp(a, min, max), None)

    def relu_(self): return self._inplace("relu_", lambda a, _: _relu.relu(a), None)
    def sigmoid_(self): return self._inplace("sigmoid_", lambda a, _: _ew.sigmoid(a), None)
    def tanh_(self): return self._inplace("tanh_", lambda a, _: _ew.tanh(a), None)
    def exp_(self): return self._inplace("exp_", lambda a, _: _ew.exp(a), None)
    def sqrt_(self): return self._inplace("sqrt_", lambda a, _: _ew.sqrt(a), None)
    def neg_(self): return self._inplace("neg_", lambda a, _: _ew.neg(a), None)
    def abs_(self): return self._inplace("abs_", lambda a, _: _ew.abs(a), None)
    def pow_(self, exponent): return self._inplace("pow_", _ew.pow, exponent)

    # ------------------------------------------------------------------ torch conveniences
    def nelement(self): return self.numel()
    def ndimension(self): return self.ndim
    def type_as(self, other): return self.astype(other.dtype)

    def is_contiguous(self, memory_format=None): return bool(self.data.flags.c_contiguous)

    def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
        return Tensor(data, requires_grad=requires_grad, dtype=dtype or self.dtype,
                      device=device or self.device_str)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        return zeros(*size, dtype=dtype or self.dtype, device=device or self.device_str,
                     requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        return ones(*size, dtype=dtype or self.dtype, device=device or self.device_str,
                    requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        return empty(*size, dtype=dtype or self.dtype, device=device or self.device_str,
                     requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
        return full(size, fill_value, dtype=dtype or self.dtype,
                    device=device or self.device_str, requires_grad=requires_grad)

    def bernoulli_(self, p=0.5, generator=None):
        """Fill in place with 1 (probability p, a number or a tensor of probabilities) or 0,
        from the seeded device generator."""
        self._check_inplace("bernoulli_")
        probs = p.data if isinstance(p, Tensor) else p
        gen = generator if generator is not None else generator_for(self.device_str)
        self.data[...] = gen.random(self.shape) < probs
        return self


# The factories build Tensors, so they live in factories.py, imported once the class exists.
from .factories import (  # noqa: E402,F401
    allclose, arange, as_tensor, bernoulli, empty, empty_like, eye, from_numpy, full, full_like,
    is_tensor, isclose, linspace, numel, ones, ones_like, rand, rand_like, randint, randn,
    randn_like, randperm, tensor, zeros, zeros_like)

for _name in ("zeros", "ones", "empty", "full", "rand", "randn", "randint", "arange", "eye",
              "zeros_like", "ones_like", "full_like", "rand_like", "randn_like"):
    setattr(Tensor, _name, staticmethod(globals()[_name]))
del _name

# ops import Tensor from this module, so they are bound after the class exists.
from .ops import arrange as _ar, indexing as _ix, unary as _un  # noqa: E402
from .ops import linalg as _la, relu as _relu, sorting as _sort  # noqa: E402
from .ops import elementwise as _ew, matmul as _mm, movement as _mv, reduce as _red  # noqa: E402
