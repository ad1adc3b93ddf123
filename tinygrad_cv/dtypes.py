"""Dtypes are NumPy dtypes; this module names them and holds PyTorch's promotion rules.

PyTorch differs from NumPy in two ways that matter here: the default float is float32
(NumPy's is float64), and mixing an integer tensor with a float (tensor or Python scalar)
gives the float dtype, never float64 by accident.
"""
from __future__ import annotations

import builtins

import numpy as np

float16 = half = np.dtype("float16")
float32 = float = np.dtype("float32")
float64 = double = np.dtype("float64")
int8 = np.dtype("int8")
uint8 = np.dtype("uint8")
int16 = short = np.dtype("int16")
int32 = int = np.dtype("int32")
int64 = long = np.dtype("int64")
bool_ = np.dtype("bool")

default_float = float32

_NAMES = {
    "float16": float16, "half": float16, "float32": float32, "float": float32,
    "float64": float64, "double": float64, "int8": int8, "uint8": uint8,
    "int16": int16, "short": int16, "int32": int32, "int": int32, "int64": int64,
    "long": int64, "bool": bool_,
}


def to_dtype(spec) -> np.dtype:
    """A NumPy dtype from a dtype, a name ('float32', 'torch.float32', 'long'), or a type."""
    if spec is None:
        return None
    if isinstance(spec, np.dtype):
        return spec
    if isinstance(spec, str):
        key = spec.removeprefix("torch.").removeprefix("np.")
        if key in _NAMES:
            return _NAMES[key]
        raise TypeError(f"dtype: unknown dtype name {spec!r}")
    if spec is builtins.bool:
        return bool_
    if spec is builtins.int:
        return int64
    if spec is builtins.float:
        return float32
    try:
        return np.dtype(spec)
    except TypeError:
        raise TypeError(f"dtype: cannot interpret {spec!r} as a dtype") from None


def is_floating(dtype) -> bool:
    return np.dtype(dtype).kind == "f"


def _category(dtype) -> int:
    """0 bool, 1 integer, 2 float: the order PyTorch promotes along."""
    kind = np.dtype(dtype).kind
    return 0 if kind == "b" else (2 if kind == "f" else 1)


def promote_types(a, b) -> np.dtype:
    """The dtype of a binary op between two tensors of dtypes `a` and `b`, as PyTorch."""
    a, b = np.dtype(a), np.dtype(b)
    if a == b:
        return a
    ca, cb = _category(a), _category(b)
    if ca != cb:
        return a if ca > cb else b
    return np.promote_types(a, b)


def _combine_categories(higher, lower):
    """PyTorch's combine of a higher-priority dtype with a lower one (None = absent)."""
    if higher is None:
        return lower
    if lower is None or _category(higher) == 2:
        return higher
    if _category(higher) == 0 or _category(lower) == 2:
        return promote_types(higher, lower)
    return higher


def result_type(*operands) -> np.dtype:
    """The dtype of an op over tensors given as (dtype, ndim) pairs, as `torch.result_type`:
    dimensioned tensors outrank 0-dim ones, which count only when of a higher category
    (float32 (3,) + float64 () -> float32, but int32 (3,) + float64 () -> float64)."""
    dims = zeros = None
    for dtype, ndim in operands:
        dtype = np.dtype(dtype)
        if ndim > 0:
            dims = dtype if dims is None else promote_types(dims, dtype)
        else:
            zeros = dtype if zeros is None else promote_types(zeros, dtype)
    return _combine_categories(dims, zeros)


def scalar_result_type(tensor_dtype, scalar) -> np.dtype:
    """The dtype of `tensor op scalar`: a Python scalar never widens the tensor's dtype
    within its category, but a float scalar turns an integer/bool tensor into float32."""
    tensor_dtype = np.dtype(tensor_dtype)
    cat = _category(tensor_dtype)
    if isinstance(scalar, (builtins.bool, np.bool_)):
        scat = 0
    elif isinstance(scalar, (builtins.int, np.integer)):
        scat = 1
    else:
        scat = 2
    if scat <= cat:
        return tensor_dtype
    return default_float if scat == 2 else int64
