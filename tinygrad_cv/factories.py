"""Tensor factories, as torch's: zeros, ones, empty, full, rand, randn, randint, arange,
eye, linspace, randperm, the *_like forms, tensor, from_numpy, as_tensor, and a few
tensor-level helpers (allclose, isclose, bernoulli). Each checks its size before
allocating (ops/movement.py `check_new_shape`). Also bound as `Tensor.zeros` etc."""
from __future__ import annotations

import math
import numbers

import numpy as np

from . import dtypes
from .backend import (array_module, canonical_device, device_of_array, is_device_array,
                      transfer)
from .ops import movement as _mv
from .random import generator_for
from .tensor import Tensor, wrap_array


def _factory_args(shape, size=None):
    """`zeros(2, 3)`, `zeros((2, 3))`, `zeros([2, 3])` and `zeros(size=(2, 3))` all mean
    shape (2, 3)."""
    return _mv.shape_args(shape if size is None else (size,))


def _new_array(op, shape, dtype, device, make):
    """`make(xp, shape)` for the device's array module, after the shared size check (no
    negative sizes, no overflowing or impossible byte counts) and with an out-of-memory
    failure named as ours."""
    dev = canonical_device(device)
    _mv.check_new_shape(op, shape, dtype, dev)
    xp = array_module(dev)
    return _mv.allocate(op, shape, dtype, lambda: make(xp, shape))


def _make(arr, dtype, device, requires_grad):
    dev = canonical_device(device)
    t = wrap_array(transfer(arr, dev), dev)
    if requires_grad:
        t.requires_grad_(True)
    return t


def zeros(*shape, size=None, dtype=None, device=None, requires_grad=False):
    dtype = dtypes.to_dtype(dtype) or dtypes.default_float
    arr = _new_array("zeros", _factory_args(shape, size), dtype, device,
                     lambda xp, s: xp.zeros(s, dtype))
    return _make(arr, dtype, device, requires_grad)


def ones(*shape, size=None, dtype=None, device=None, requires_grad=False):
    dtype = dtypes.to_dtype(dtype) or dtypes.default_float
    arr = _new_array("ones", _factory_args(shape, size), dtype, device,
                     lambda xp, s: xp.ones(s, dtype))
    return _make(arr, dtype, device, requires_grad)


def empty(*shape, size=None, dtype=None, device=None, requires_grad=False):
    dtype = dtypes.to_dtype(dtype) or dtypes.default_float
    arr = _new_array("empty", _factory_args(shape, size), dtype, device,
                     lambda xp, s: xp.empty(s, dtype))
    return _make(arr, dtype, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    if dtype is None:
        dtype = dtypes.scalar_result_type(dtypes.bool_, fill_value)
    dtype = dtypes.to_dtype(dtype)
    arr = _new_array("full", _factory_args((size,)), dtype, device,
                     lambda xp, s: xp.full(s, fill_value, dtype))
    return _make(arr, dtype, device, requires_grad)


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    return zeros(t.shape, dtype=dtype or t.dtype, device=device or t.device_str,
                 requires_grad=requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    return ones(t.shape, dtype=dtype or t.dtype, device=device or t.device_str,
                requires_grad=requires_grad)


def full_like(t, fill_value, dtype=None, device=None, requires_grad=False):
    return full(t.shape, fill_value, dtype=dtype or t.dtype, device=device or t.device_str,
                requires_grad=requires_grad)


def _sampling_dtype(dtype):
    return dtype if dtype in (dtypes.float32, dtypes.float64) else dtypes.float64


def rand(*shape, size=None, dtype=None, device=None, requires_grad=False):
    """Uniform [0, 1) samples from the generator `manual_seed` controls."""
    dtype = dtypes.to_dtype(dtype) or dtypes.default_float
    dev = canonical_device(device)
    arr = _new_array("rand", _factory_args(shape, size), _sampling_dtype(dtype), dev,
                     lambda xp, s: generator_for(dev).random(s, dtype=_sampling_dtype(dtype)))
    return _make(arr.astype(dtype, copy=False), dtype, dev, requires_grad)


def randn(*shape, size=None, dtype=None, device=None, requires_grad=False):
    """Standard normal samples from the generator `manual_seed` controls."""
    dtype = dtypes.to_dtype(dtype) or dtypes.default_float
    dev = canonical_device(device)
    arr = _new_array("randn", _factory_args(shape, size), _sampling_dtype(dtype), dev,
                     lambda xp, s: generator_for(dev).standard_normal(
                         s, dtype=_sampling_dtype(dtype)))
    return _make(arr.astype(dtype, copy=False), dtype, dev, requires_grad)


def rand_like(t, dtype=None, device=None, requires_grad=False):
    return rand(t.shape, dtype=dtype or t.dtype, device=device or t.device_str,
                requires_grad=requires_grad)


def randn_like(t, dtype=None, device=None, requires_grad=False):
    return randn(t.shape, dtype=dtype or t.dtype, device=device or t.device_str,
                 requires_grad=requires_grad)


def randint(low, high=None, size=(), dtype=None, device=None):
    if high is None:
        low, high = 0, low
    if not low < high:
        raise RuntimeError(f"randint: expects 'low' to be less than 'high', but got "
                           f"low={low} >= high={high}")
    dev = canonical_device(device)
    arr = _new_array("randint", _factory_args((size,)), dtypes.int64, dev,
                     lambda xp, s: generator_for(dev).integers(low, high, size=s))
    return _make(arr.astype(dtypes.to_dtype(dtype) or dtypes.int64), None, dev, False)


def _arange_length(start, end, step):
    """The element count of arange(start, end, step), checked as torch checks it."""
    values = (start, end, step)
    if not all(isinstance(v, numbers.Real) for v in values):
        raise TypeError(f"arange: start, end and step must be numbers, got {values!r}")
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if not all(math.isfinite(v) for v in values):
        raise RuntimeError(f"arange: unsupported range: {start} -> {end} (step {step})")
    if (end - start) * step < 0:
        raise RuntimeError(f"arange: upper bound and lower bound inconsistent with step sign "
                           f"(start {start}, end {end}, step {step})")
    if all(isinstance(v, numbers.Integral) for v in values):
        return -(-(int(end) - int(start)) // int(step))      # exact for big integers
    return max(0, math.ceil((end - start) / step))


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    if end is None:
        start, end = 0, start
    start, end, step = (v.item() if isinstance(v, Tensor) else v for v in (start, end, step))
    if dtype is None:
        is_int = all(isinstance(v, numbers.Integral) for v in (start, end, step))
        dtype = dtypes.int64 if is_int else dtypes.default_float
    dtype = dtypes.to_dtype(dtype)
    length = _arange_length(start, end, step)
    arr = _new_array("arange", (length,), dtype, device,
                     lambda xp, s: xp.arange(start, end, step).astype(dtype))
    return _make(arr, dtype, device, requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    dtype = dtypes.to_dtype(dtype) or dtypes.default_float
    for name, value in (("n", n), ("m", m)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"eye: {name} must be an int, got {type(value).__name__}")
        if value < 0:
            raise RuntimeError(f"eye: {name} must be greater or equal to 0, got {value}")
    shape = (int(n), int(n if m is None else m))
    arr = _new_array("eye", shape, dtype, device, lambda xp, s: xp.eye(s[0], s[1], dtype=dtype))
    return _make(arr, dtype, device, requires_grad)


def from_numpy(ndarray):
    """`torch.from_numpy`: a CPU tensor sharing memory with `ndarray` (writes through
    either are seen by both) and keeping its dtype (float64 stays float64)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray (got {type(ndarray).__name__})")
    if ndarray.dtype.kind not in "biuf" or ndarray.dtype.itemsize > 8:
        raise TypeError(f"from_numpy: can't convert np.ndarray of type {ndarray.dtype}; the "
                        f"supported types are float64, float32, float16, int64, int32, "
                        f"int16, int8, uint8 and bool")
    if not ndarray.dtype.isnative:
        raise ValueError(f"from_numpy: the array's byte order is not native ({ndarray.dtype})")
    return wrap_array(ndarray, "cpu")


def as_tensor(data, dtype=None, device=None):
    """`torch.as_tensor`: a Tensor as is (cast/moved if asked), a CPU ndarray of the same
    dtype shared without a copy (its dtype kept, float64 included), anything else copied
    with torch.tensor's dtype rules."""
    dtype = dtypes.to_dtype(dtype)
    if isinstance(data, Tensor):
        out = data if dtype is None else data.astype(dtype)
        return out if device is None else out.to(device)
    if is_device_array(data):
        arr = data if dtype is None else data.astype(dtype, copy=False)
        dev = canonical_device(device) if device is not None else device_of_array(arr)
        return wrap_array(transfer(arr, dev), dev)
    return Tensor(data, dtype=dtype, device=device)


def is_tensor(obj):
    return isinstance(obj, Tensor)


def numel(t):
    return t.numel()


def empty_like(t, dtype=None, device=None, requires_grad=False):
    return empty(t.shape, dtype=dtype or t.dtype, device=device or t.device_str,
                 requires_grad=requires_grad)


def bernoulli(input, generator=None):
    """0/1 draws with the probabilities in `input` (same shape and dtype)."""
    gen = generator if generator is not None else generator_for(input.device_str)
    arr = (gen.random(input.shape) < input.data).astype(input.dtype)
    return wrap_array(arr, input.device_str)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    """`steps` evenly spaced values from start to end inclusive (float32 by default)."""
    if steps < 0:
        raise RuntimeError(f"linspace: number of steps must be non-negative, got {steps}")
    dtype = dtypes.to_dtype(dtype) or dtypes.default_float
    dev = canonical_device(device)
    arr = array_module(dev).linspace(float(start), float(end), int(steps)).astype(dtype)
    return _make(arr, dtype, dev, requires_grad)


def randperm(n, dtype=None, device=None, requires_grad=False, generator=None):
    """A random permutation of 0..n-1 (int64), from the seeded device generator."""
    dev = canonical_device(device)
    gen = generator if generator is not None else generator_for(dev)
    arr = gen.permutation(int(n)).astype(dtypes.to_dtype(dtype) or dtypes.int64)
    return _make(arr, None, dev, requires_grad)


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(isclose(input, other, rtol, atol, equal_nan).data.all())


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    other_data = other.data if isinstance(other, Tensor) else other
    xp = array_module(input.device_str)
    return wrap_array(xp.isclose(input.data, other_data, rtol=rtol, atol=atol,
                                   equal_nan=equal_nan), input.device_str)


def tensor(data, dtype=None, device=None, requires_grad=False):
    """`torch.tensor`: a new leaf tensor copying `data`."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)
