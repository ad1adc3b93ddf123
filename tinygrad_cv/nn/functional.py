"""nn.functional: the functional form of every layer and loss, torch's names and arguments.

Thin wrappers: the work happens in the ops (`tinygrad_cv.ops.*`); this module checks
arguments and maps torch's calling conventions onto them.
"""
from __future__ import annotations

from ..ops import activation as _act
from ..ops import conv as _conv
from ..ops import conv_transpose as _conv_t
from ..ops import elementwise as _ew
from ..ops import matmul as _mm
from ..ops import pool as _pool
from ..ops import reduce as _red
from ..ops.loss import (binary_cross_entropy_with_logits, cross_entropy, mse_loss,  # noqa: F401
                        nll_loss)
from ..ops.normalization import batch_norm  # noqa: F401
from ..tensor import Tensor


def _require_tensor(op, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")


# ----------------------------------------------------------------------------- linear

def linear(input, weight, bias=None):
    """y = input @ weight.T + bias, for input (*, in_features) and weight (out, in)."""
    _check_linear("linear", input, weight, bias)
    return _mm.linear(input, weight, bias)


def _check_linear(op, input, weight, bias):
    _require_tensor(op, input)
    _require_tensor(op, weight)
    if weight.ndim != 2:
        raise ValueError(f"{op}: weight must be 2-D (out_features, in_features), got shape "
                         f"{weight.shape}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"{op}: input of shape {input.shape} has "
                         f"{input.shape[-1] if input.ndim else 0} features in its last dim, "
                         f"expected {weight.shape[1]} (weight of shape {weight.shape})")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"{op}: bias has shape {bias.shape}, expected ({weight.shape[0]},)")
    for what, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != input.dtype:   # torch: no silent promotion
            raise TypeError(f"{op}: input dtype {input.dtype} and {what} dtype {t.dtype} "
                            f"should be the same (input shape {input.shape}, weight shape "
                            f"{weight.shape})")


# ----------------------------------------------------------------------------- conv and pool

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv.conv2d(input, weight, bias, stride, padding, dilation, groups)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    return _conv_t.conv_transpose2d(input, weight, bias, stride, padding, output_padding,
                                    groups, dilation)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _pool.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode,
                       return_indices)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    return _pool.avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override)


def adaptive_avg_pool2d(input, output_size):
    return _pool.adaptive_avg_pool2d(input, output_size)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    return _pool.adaptive_max_pool2d(input, output_size, return_indices)


# ----------------------------------------------------------------------------- activations

def relu(input, inplace=False):
    return _ew.relu(input)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return _act.leaky_relu(input, negative_slope)


def sigmoid(input):
    return _ew.sigmoid(input)


def tanh(input):
    return _ew.tanh(input)


def _implicit_softmax_dim(ndim):
    """torch's legacy choice when `dim` is not given (it warns; so do we)."""
    import warnings
    warnings.warn("Implicit dimension choice for softmax has been deprecated. Change the "
                  "call to include dim=X as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    _require_tensor("softmax", input)
    if dim is None:
        dim = _implicit_softmax_dim(input.ndim)
    return _red.softmax(input, dim, dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    _require_tensor("log_softmax", input)
    if dim is None:
        dim = _implicit_softmax_dim(input.ndim)
    return _red.log_softmax(input, dim, dtype)


def dropout(input, p=0.5, training=True, inplace=False):
    return _act.dropout(input, p, training)


# ----------------------------------------------------------------------------- shapes

def flatten(input, start_dim=0, end_dim=-1):
    _require_tensor("flatten", input)
    return input.flatten(start_dim, end_dim)


def pad(input, pad, mode="constant", value=None):
    _require_tensor("pad", input)
    return input.pad(pad, mode, 0.0 if value is None else value)


__all__ = [
    "linear", "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
    "adaptive_max_pool2d", "batch_norm",
    "dropout", "relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax",
    "cross_entropy", "nll_loss", "mse_loss", "binary_cross_entropy_with_logits",
    "flatten", "pad",
]
