"""nn.init: in-place weight initialisers with torch.nn.init's names, fans and gains.

Each one fills `tensor.data` from the tensor's device generator (so `tc.manual_seed`
makes it reproducible; `generator=` may pass another NumPy/CuPy Generator), records no
gradient, and returns the tensor.
"""
from __future__ import annotations

import math
import warnings

from ..backend import array_module
from ..random import generator_for

_LINEAR_LIKE = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                "conv_transpose2d", "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for a nonlinearity, as `torch.nn.init.calculate_gain`."""
    if nonlinearity in _LINEAR_LIKE:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor):
    """(fan_in, fan_out): dim 1 and dim 0 times the receptive field (dims 2..)."""
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer "
                         f"than 2 dimensions (got shape {tuple(shape)})")
    receptive_field = 1
    for n in shape[2:]:
        receptive_field *= n
    return shape[1] * receptive_field, shape[0] * receptive_field


def _calculate_correct_fan(tensor, mode: str):
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _fill_uniform(tensor, low, high, generator=None):
    gen = generator if generator is not None else generator_for(tensor.device_str)
    tensor.data[...] = gen.uniform(low, high, tensor.shape)
    return tensor


def _fill_normal(tensor, mean, std, generator=None):
    gen = generator if generator is not None else generator_for(tensor.device_str)
    tensor.data[...] = gen.normal(mean, std, tensor.shape)
    return tensor


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    """Fill with U(a, b)."""
    return _fill_uniform(tensor, a, b, generator)


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    """Fill with N(mean, std^2)."""
    return _fill_normal(tensor, mean, std, generator)


def constant_(tensor, val: float):
    tensor.data[...] = val
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0)


def ones_(tensor):
    return constant_(tensor, 1)


def _empty_tensor_warning(tensor) -> bool:
    if tensor.numel() == 0:
        warnings.warn("Initializing zero-element tensors is a no-op")
        return True
    return False


def kaiming_uniform_(tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator=None):
    """He uniform: U(-b, b) with b = gain * sqrt(3 / fan)."""
    if _empty_tensor_warning(tensor):
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return _fill_uniform(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator=None):
    """He normal: N(0, std^2) with std = gain / sqrt(fan)."""
    if _empty_tensor_warning(tensor):
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    return _fill_normal(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan),
                        generator)


def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    """Glorot uniform: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0) * gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return _fill_uniform(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    """Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return _fill_normal(tensor, 0.0, gain * math.sqrt(2.0 / float(fan_in + fan_out)),
                        generator)


def trunc_normal_(tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator=None):
    """Fill with N(mean, std^2) truncated to [a, b] (absolute bounds, as torch): values
    outside are redrawn until every one lies inside, an exact truncated normal (torch
    maps uniforms through the inverse CDF; the distribution is the same, the draws are
    not)."""
    if _empty_tensor_warning(tensor):
        return tensor
    if not a < b:
        raise ValueError(f"trunc_normal_: expected a < b, got a={a}, b={b}")
    gen = generator if generator is not None else generator_for(tensor.device_str)
    values = gen.normal(mean, std, tensor.shape)
    for _ in range(1000):
        outside = (values < a) | (values > b)
        count = int(outside.sum())
        if count == 0:
            break
        values[outside] = gen.normal(mean, std, count)
    else:
        raise RuntimeError(f"trunc_normal_: [{a}, {b}] holds too little of N({mean}, {std}^2) "
                           f"to sample from")
    tensor.data[...] = values
    return tensor


def orthogonal_(tensor, gain: float = 1.0, generator=None):
    """Fill with a (semi-)orthogonal matrix (Saxe et al. 2013), times `gain`: the Q of a
    QR decomposition of a normal matrix, signs fixed by R's diagonal, as torch."""
    if tensor.ndim < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    gen = generator if generator is not None else generator_for(tensor.device_str)
    flat = gen.normal(0.0, 1.0, (rows, cols))
    if rows < cols:
        flat = flat.T
    xp = array_module(tensor.device_str)
    q, r = xp.linalg.qr(flat)
    q = q * xp.sign(xp.diag(r))
    if rows < cols:
        q = q.T
    tensor.data[...] = (gain * q).reshape(tensor.shape)
    return tensor


def eye_(tensor):
    """Fill a 2-D tensor with the identity matrix."""
    if tensor.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    tensor.data[...] = array_module(tensor.device_str).eye(*tensor.shape)
    return tensor


def dirac_(tensor, groups: int = 1):
    """Fill a {3, 4, 5}-D conv weight with the Dirac delta: the convolution passes its
    first min(out, in) channels (per group) through unchanged."""
    if tensor.ndim not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    out_per_group = tensor.shape[0] // groups
    if tensor.shape[0] % groups:
        raise ValueError("dim 0 must be divisible by groups")
    tensor.data[...] = 0
    centre = tuple(n // 2 for n in tensor.shape[2:])
    for g in range(groups):
        for d in range(min(out_per_group, tensor.shape[1])):
            tensor.data[(g * out_per_group + d, d) + centre] = 1
    return tensor
