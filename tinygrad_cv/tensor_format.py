"""What `Tensor` does at its edges with the outside: arrays from user data (with
PyTorch's dtype defaults), the check of an assigned `.grad`, and the printed form.

Kept apart from tensor.py so that the class file holds storage, autograd and the
one-line delegations to `ops/`; nothing here imports Tensor.
"""
from __future__ import annotations

import numpy as np

from . import dtypes
from .backend import is_device_array, to_numpy


def array_from_data(data, dtype):
    """A NumPy/CuPy array from user data (not a Tensor), with PyTorch's dtype defaults."""
    if is_device_array(data):
        arr = data.copy()
    else:
        try:
            arr = np.array(data)
        except ValueError as exc:
            raise ValueError(f"Tensor: cannot build a tensor from a ragged nested sequence "
                             f"(sub-sequences of different lengths): {exc}") from None
        if arr.dtype == object:
            raise TypeError(f"Tensor: cannot build a tensor from data of type "
                            f"{type(data).__name__} (elements must be numbers)")
    if dtype is not None:
        return arr.astype(dtype, copy=False)
    if arr.dtype == np.float64:
        return arr.astype(dtypes.default_float)   # the API's float32 default
    if arr.dtype.kind in "US":
        raise TypeError(f"Tensor: cannot build a tensor from strings ({arr.dtype})")
    return arr


def check_assigned_grad(tensor, grad):
    """As torch: an assigned gradient has the tensor's shape, dtype and device, so an
    optimizer never reads one past its end or broadcasts it."""
    if grad.data.shape != tensor.data.shape:
        raise RuntimeError(f"grad: attempting to assign a gradient of shape "
                           f"{tuple(grad.data.shape)} to a tensor of shape "
                           f"{tuple(tensor.data.shape)}; the gradient and the tensor must "
                           f"have the same shape")
    if grad.data.dtype != tensor.data.dtype:
        raise RuntimeError(f"grad: attempting to assign a gradient of dtype {grad.data.dtype} "
                           f"to a tensor of dtype {tensor.data.dtype}; the gradient and the "
                           f"tensor must have the same dtype")
    if grad.device_str != tensor.device_str:
        raise RuntimeError(f"grad: attempting to assign a gradient on {grad.device_str} to a "
                           f"tensor on {tensor.device_str}; the gradient and the tensor must "
                           f"be on the same device")


def tensor_repr(t):
    """`tensor([...], shape=..., dtype=..., grad_fn=<...>)`, as close to torch's as NumPy's
    array2string allows."""
    values = to_numpy(t.data)
    fixed = values.dtype.kind == "f" and values.size and not np.all(
        np.equal(np.mod(values[np.isfinite(values)], 1), 0))
    body = np.array2string(values, separator=", ", prefix="tensor(", precision=4,
                           threshold=1000, edgeitems=3,
                           floatmode="fixed" if fixed else "maxprec")
    extras = []
    if t.ndim > 1 or t.data.size > 6:
        extras.append(f"shape={t.shape}")
    if t.dtype not in (dtypes.float32, dtypes.int64, dtypes.bool_):
        extras.append(f"dtype={t.dtype}")
    if t.device_str != "cpu":
        extras.append(f"device='{t.device_str}'")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    tail = "".join(", " + e for e in extras)
    return f"tensor({body}{tail})"
