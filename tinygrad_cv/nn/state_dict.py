"""Loading a state dict into a module, as `torch.nn.Module.load_state_dict`: every key,
value type and shape checked before anything is copied, torch's messages and result."""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..autograd import no_grad
from ..backend import transfer
from ..tensor import Tensor


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What `load_state_dict` returns, as torch's `_IncompatibleKeys`."""

    __slots__ = ()

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


def _shape_str(shape) -> str:
    """torch.Size-style text for a shape, so messages read like PyTorch's."""
    return f"torch.Size({list(shape)})"


def _state_value_array(value):
    """The host/device array inside a state-dict value: a Tensor, a NumPy/CuPy array,
    or anything tensor-like with `.detach().cpu().numpy()` (a torch.Tensor)."""
    if isinstance(value, Tensor):
        return value.data
    if hasattr(value, "detach") and hasattr(value, "cpu") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()          # a torch tensor, without importing torch
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return value                                  # numpy / cupy array
    if isinstance(value, (int, float, bool, np.number)):
        return np.asarray(value)
    return None


def load_state_dict(module, state_dict, strict=True, assign=False):
    """`module.load_state_dict(...)`: see `Module.load_state_dict`."""
    if not hasattr(state_dict, "keys"):
        raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
    from .lazy import is_lazy
    if assign:
        raise NotImplementedError("load_state_dict(assign=True) is not supported; "
                                  "values are always copied in place")
    missing, unexpected, errors, plan = [], [], [], []
    expected = set()
    for module_prefix, sub in module.named_modules(remove_duplicate=False):
        base = module_prefix + "." if module_prefix else ""
        optional = set(sub._optional_state_keys())
        for name, target in sub._local_state():
            key = base + name
            expected.add(key)
            if key not in state_dict:
                if name not in optional:
                    missing.append(key)
                continue
            value = _state_value_array(state_dict[key])
            if value is None:
                errors.append(f'While copying the parameter named "{key}", expected '
                              f"Tensor or array from checkpoint but received "
                              f"{type(state_dict[key])}")
                continue
            value_shape = tuple(value.shape)
            if is_lazy(target):        # a lazy module's placeholder takes the shape
                plan.append((target, value))
                continue
            if target.ndim == 0 and value_shape == (1,):
                value = value.reshape(())
                value_shape = ()
            if value_shape != target.shape:
                errors.append(f"size mismatch for {key}: copying a param with shape "
                              f"{_shape_str(value_shape)} from checkpoint, the shape in "
                              f"current model is {_shape_str(target.shape)}.")
                continue
            plan.append((target, value))
    unexpected = [key for key in state_dict.keys() if key not in expected]
    if strict:
        if unexpected:
            errors.insert(0, "Unexpected key(s) in state_dict: "
                          + ", ".join(f'"{k}"' for k in unexpected) + ". ")
        if missing:
            errors.insert(0, "Missing key(s) in state_dict: "
                          + ", ".join(f'"{k}"' for k in missing) + ". ")
    if errors:
        raise RuntimeError(f"Error(s) in loading state_dict for {module._get_name()}:\n\t"
                           + "\n\t".join(errors))
    with no_grad():
        for target, value in plan:
            if is_lazy(target):
                target.materialize(value.shape)
            target.data[...] = transfer(value, target.device_str).astype(target.dtype,
                                                                         copy=False)
    return IncompatibleKeys(missing, unexpected)
