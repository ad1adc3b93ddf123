"""`default_collate`: merge a list of samples into one batch, as torch's."""
from __future__ import annotations

import numbers

import numpy as np

from ..backend import device_of_array, is_device_array, xp_of
from ..tensor import Tensor, wrap_array


def _stack_arrays(arrays):
    arrays = list(arrays)
    shapes = {tuple(a.shape) for a in arrays}
    if len(shapes) > 1:
        raise RuntimeError(f"default_collate: stack expects each sample to be of equal size, "
                           f"got shapes {sorted(shapes)}")
    return xp_of(arrays[0]).stack(arrays)


def _is_pil_image(obj):
    return hasattr(obj, "getdata") and hasattr(obj, "mode") and hasattr(obj, "size")


def default_collate(samples):
    """Merge a list of samples into a batch, field by field, as PyTorch's default_collate.

    Tensors and arrays are stacked along a new first dimension; Python ints become an
    int64 Tensor, floats a float64 Tensor (as in PyTorch), bools a bool Tensor; tuples
    and lists are collated per position (giving a list; a namedtuple stays one), dicts
    per key; strings and anything else stay a list. PIL images are converted to arrays
    first (torch rejects them; a convenience here).
    """
    if not samples:
        raise ValueError("default_collate: got an empty list of samples")
    first = samples[0]
    if isinstance(first, Tensor):
        return wrap_array(_stack_arrays(s.data for s in samples), first.device_str)
    if is_device_array(first):
        stacked = _stack_arrays(samples)
        return wrap_array(stacked, device_of_array(stacked))
    if isinstance(first, np.generic):                  # NumPy scalars keep their dtype
        return wrap_array(np.array(samples), "cpu")
    if isinstance(first, (bool, np.bool_)):
        return wrap_array(np.array(samples, dtype=np.bool_), "cpu")
    if isinstance(first, numbers.Integral):
        return wrap_array(np.array(samples, dtype=np.int64), "cpu")
    if isinstance(first, numbers.Real):
        return wrap_array(np.array(samples, dtype=np.float64), "cpu")
    if isinstance(first, (str, bytes)):
        return samples                              # as torch: the sequence as given
    if isinstance(first, dict):
        return {key: default_collate([s[key] for s in samples]) for key in first}
    if isinstance(first, (tuple, list)):
        if any(len(s) != len(first) for s in samples):
            raise RuntimeError("default_collate: each element in list of batch should be of "
                               "equal size")
        fields = [default_collate(field) for field in zip(*samples)]
        if isinstance(first, tuple) and hasattr(first, "_fields"):    # a namedtuple
            return type(first)(*fields)
        return fields
    if _is_pil_image(first):
        return default_collate([np.asarray(s) for s in samples])
    return list(samples)
