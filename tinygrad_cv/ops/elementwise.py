"""Elementwise ops: arithmetic with broadcasting, unary math, comparisons, where
(ReLU, the hot one with its own kernels, is in relu.py).

Binary ops first bring both operands to one dtype (PyTorch's promotion) and one device,
and check the shapes broadcast, so a bad call fails here with the op's name before any
work. Backward returns gradients in the broadcast shape; the engine sums them down.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import dtypes
from .. import memory
from ..autograd import Function
from ..backend import array_module, check_same_device, is_device_array, xp_of
from ..tensor import Tensor, wrap_array


# ----------------------------------------------------------------------------- operands

def _scalar_tensor(value, dtype, dev):
    return wrap_array(array_module(dev).asarray(value, dtype=dtype), dev)


def as_tensor_operand(value, op):
    """A Tensor from an op operand that is already a Tensor or an array/list."""
    if isinstance(value, Tensor):
        return value
    if is_device_array(value):
        return Tensor(value, dtype=value.dtype)
    if isinstance(value, (list, tuple)):
        return Tensor(value)
    raise TypeError(f"{op}: unsupported operand of type {type(value).__name__}")


def binary_operands(a, b, op):
    """Both operands as Tensors of one dtype and device, shapes checked to broadcast."""
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a.data.dtype == b.data.dtype \
            and a.device_str == b.device_str and a.data.shape == b.data.shape:
        return a, b                     # the common case, checked cheaply
    a_scalar = isinstance(a, (numbers.Number, np.generic)) and not isinstance(a, Tensor)
    b_scalar = isinstance(b, (numbers.Number, np.generic)) and not isinstance(b, Tensor)
    if a_scalar and b_scalar:
        raise TypeError(f"{op}: at least one operand must be a Tensor")
    if b_scalar:
        dtype = dtypes.scalar_result_type(a.dtype, b)
        return cast(a, dtype), _scalar_tensor(b, dtype, a.device_str)
    if a_scalar:
        dtype = dtypes.scalar_result_type(b.dtype, a)
        return _scalar_tensor(a, dtype, b.device_str), cast(b, dtype)
    a, b = as_tensor_operand(a, op), as_tensor_operand(b, op)
    check_same_device(op, (a.device_str, b.device_str))
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast "
                         f"together") from None
    dtype = dtypes.result_type((a.dtype, a.ndim), (b.dtype, b.ndim))
    return cast(a, dtype), cast(b, dtype)


def float_operand(x, op):
    """Integer inputs of float-valued functions (exp, sqrt, ...) compute in float32, as torch."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    return x if dtypes.is_floating(x.dtype) else cast(x, dtypes.default_float)


# ----------------------------------------------------------------------------- dtype and copy

class Cast(Function):
    @staticmethod
    def forward(ctx, a, dtype):
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad  # the engine casts it back to the input's dtype


def cast(x, dtype):
    """`x` as `dtype`, differentiably; returns `x` itself when it already has that dtype."""
    if x.dtype == dtype:
        return x
    if x.requires_grad and not dtypes.is_floating(dtype):
        return wrap_array(x.data.astype(dtype), x.device_str)  # no gradient through ints
    return Cast.apply(x, dtype=dtype)


class Clone(Function):
    @staticmethod
    def forward(ctx, a):
        return a.copy()

    @staticmethod
    def backward(ctx, grad):
        return grad


def clone(x):
    return Clone.apply(x)


# ----------------------------------------------------------------------------- arithmetic

class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, grad):
        return grad, (-grad if ctx.needs_input_grad[1] else None)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        return (grad * b if ctx.needs_input_grad[0] else None,
                grad * a if ctx.needs_input_grad[1] else None)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        with np.errstate(divide="ignore", invalid="ignore"):
            return a / b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        with np.errstate(divide="ignore", invalid="ignore"):
            ga = grad / b if ctx.needs_input_grad[0] else None
            gb = -grad * a / (b * b) if ctx.needs_input_grad[1] else None
        return ga, gb


class Pow(Function):
    """a ** b with both tensors; PyTorch's zero-base and zero-exponent conventions."""

    @staticmethod
    def forward(ctx, a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            out = a ** b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b, out = ctx.saved
        ga = gb = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if ctx.needs_input_grad[0]:
                ga = grad * b * a ** (b - 1)
                ga = _where(b == 0, 0, ga)
            if ctx.needs_input_grad[1]:
                gb = grad * out * _log(a)
                gb = _where((a == 0) & (b >= 0), 0, gb)
        return ga, gb


class PowScalar(Function):
    """a ** p for a Python number p (no log of a negative base needed)."""

    @staticmethod
    def forward(ctx, a, p):
        ctx.save_for_backward(a)
        ctx.p = p
        with np.errstate(divide="ignore", invalid="ignore"):
            return a ** p

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        p = ctx.p
        if p == 0:
            return grad * 0
        with np.errstate(divide="ignore", invalid="ignore"):
            if p == 2:
                return grad * (2 * a)
            return grad * (p * a ** (p - 1))


def _masked(mask, grad):
    """`grad` where `mask`, else 0 (a select, as torch: an inf/nan grad stays out of 0s)."""
    xp = xp_of(grad)
    return xp.where(mask, grad, xp.zeros((), dtype=grad.dtype))


def _tie_split(loses, ties, grad):
    """Gradient of maximum/minimum for one input: half on ties, 0 where it loses (torch's
    formula, so NaN comparisons, neither tie nor loss, pass the gradient)."""
    xp = xp_of(grad)
    return xp.where(loses, xp.zeros((), dtype=grad.dtype), xp.where(ties, grad / 2, grad))


def _where(cond, x, y):
    return xp_of(cond).where(cond, x, y)


def _log(a):
    return xp_of(a).log(a)


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a

    @staticmethod
    def backward(ctx, grad):
        return -grad


def add(a, b):
    a, b = binary_operands(a, b, "add")
    return Add.apply(a, b)


def sub(a, b):
    a, b = binary_operands(a, b, "sub")
    if a.dtype == dtypes.bool_:
        raise TypeError("sub: subtraction of bool tensors is not supported; use logical ops")
    return Sub.apply(a, b)


def mul(a, b):
    a, b = binary_operands(a, b, "mul")
    return Mul.apply(a, b)


def div(a, b):
    """True division: integer operands give float32, as torch."""
    a, b = binary_operands(a, b, "div")
    if not dtypes.is_floating(a.dtype):
        a, b = cast(a, dtypes.default_float), cast(b, dtypes.default_float)
    return Div.apply(a, b)


def _py_scalar(v):
    """NumPy scalars as Python ones, which never widen a tensor's dtype (as in torch)."""
    return v.item() if isinstance(v, np.generic) else v


def pow(a, b):
    b = _py_scalar(b)
    if isinstance(a, Tensor) and isinstance(b, numbers.Number) and not isinstance(b, bool):
        if isinstance(b, float) and not dtypes.is_floating(a.dtype):
            a = cast(a, dtypes.default_float)
        return PowScalar.apply(a, p=b)
    a, b = binary_operands(a, b, "pow")
    return Pow.apply(a, b)


def neg(x):
    if x.dtype == dtypes.bool_:
        raise TypeError("neg: negation of a bool tensor is not supported; use ~x")
    return Neg.apply(x)


# ----------------------------------------------------------------------------- unary math

class Abs(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return xp_of(a).abs(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        return grad * xp_of(a).sign(a)


class Exp(Function):
    @staticmethod
    def forward(ctx, a):
        out = xp_of(a).exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return grad * out


class Log(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        with np.errstate(divide="ignore", invalid="ignore"):
            return xp_of(a).log(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        with np.errstate(divide="ignore", invalid="ignore"):
            return grad / a


class Sqrt(Function):
    @staticmethod
    def forward(ctx, a):
        with np.errstate(invalid="ignore"):
            out = xp_of(a).sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        with np.errstate(divide="ignore", invalid="ignore"):
            return grad / (2 * out)


class Sigmoid(Function):
    """1 / (1 + exp(-x)), computed without overflow for large |x|."""

    @staticmethod
    def forward(ctx, a):
        xp = xp_of(a)
        e = xp.exp(-xp.abs(a))
        out = xp.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return grad * out * (1 - out)


class Tanh(Function):
    @staticmethod
    def forward(ctx, a):
        out = xp_of(a).tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        return grad * (1 - out * out)


class Clamp(Function):
    """Clamp to [lo, hi]; the gradient passes where lo <= x <= hi (bounds included, as torch)."""

    @staticmethod
    def forward(ctx, a, lo, hi):
        ctx.save_for_backward(a)
        ctx.lo, ctx.hi = lo, hi
        return xp_of(a).clip(a, lo, hi)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved
        mask = True
        if ctx.lo is not None:
            mask = a >= ctx.lo
        if ctx.hi is not None:
            mask = mask & (a <= ctx.hi)
        return _masked(mask, grad)


class ClampTensor(Function):
    """Clamp to tensor bounds, min(max(x, lo), hi), with PyTorch's gradient masks:
    x where lo <= x <= hi; lo where x < lo < hi; hi where x > hi or hi < lo."""

    @staticmethod
    def forward(ctx, a, lo, hi):
        ctx.save_for_backward(a, lo, hi)
        xp = xp_of(a)
        return xp.minimum(xp.maximum(a, lo), hi)

    @staticmethod
    def backward(ctx, grad):
        a, lo, hi = ctx.saved
        need = ctx.needs_input_grad
        return (_masked((a >= lo) & (a <= hi), grad) if need[0] else None,
                _masked((a < lo) & (lo < hi), grad) if need[1] else None,
                _masked((a > hi) | (hi < lo), grad) if need[2] else None)


def _clamp_tensor(x, lo, hi):
    """clamp with at least one Tensor bound; a missing bound is the dtype's extreme."""
    bounds = [b for b in (x, lo, hi) if b is not None]
    ref = next(b for b in bounds if isinstance(b, Tensor))
    dtype = dtypes.result_type(*[(b.dtype, b.ndim) for b in bounds if isinstance(b, Tensor)])
    for b in bounds:
        if not isinstance(b, Tensor):
            dtype = dtypes.scalar_result_type(dtype, b)
    info = np.finfo(dtype) if dtypes.is_floating(dtype) else np.iinfo(dtype)
    extreme = {0: -np.inf, 1: np.inf} if dtypes.is_floating(dtype) else {0: info.min, 1: info.max}
    ts = []
    for i, b in enumerate((x, lo, hi)):
        if b is None:
            b = extreme[i - 1]
        if not isinstance(b, Tensor):
            b = _scalar_tensor(b, dtype, ref.device_str)
        ts.append(cast(b, dtype))
    try:
        np.broadcast_shapes(*[t.shape for t in ts])
    except ValueError:
        raise ValueError(f"clamp: input {ts[0].shape}, min {ts[1].shape} and max "
                         f"{ts[2].shape} cannot be broadcast together") from None
    return ClampTensor.apply(*ts)


class Maximum(Function):
    """Elementwise max; on ties each input gets half the gradient, as torch."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return xp_of(a).maximum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        return (_tie_split(a < b, a == b, grad) if ctx.needs_input_grad[0] else None,
                _tie_split(a > b, a == b, grad) if ctx.needs_input_grad[1] else None)


class Minimum(Function):
    """Elementwise min; on ties each input gets half the gradient, as torch."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return xp_of(a).minimum(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        return (_tie_split(a > b, a == b, grad) if ctx.needs_input_grad[0] else None,
                _tie_split(a < b, a == b, grad) if ctx.needs_input_grad[1] else None)


class Where(Function):
    """where(cond, a, b); `cond` is a bool tensor without gradient."""

    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        return xp_of(a).where(cond, a, b)

    @staticmethod
    def backward(ctx, grad):
        (cond,) = ctx.saved
        xp = xp_of(grad)
        zero = xp.zeros((), dtype=grad.dtype)
        return (None,
                xp.where(cond, grad, zero) if ctx.needs_input_grad[1] else None,
                xp.where(cond, zero, grad) if ctx.needs_input_grad[2] else None)


def abs(x):
    return Abs.apply(x)


def exp(x):
    return Exp.apply(float_operand(x, "exp"))


def log(x):
    return Log.apply(float_operand(x, "log"))


def sqrt(x):
    return Sqrt.apply(float_operand(x, "sqrt"))


def sigmoid(x):
    return Sigmoid.apply(float_operand(x, "sigmoid"))


def tanh(x):
    return Tanh.apply(float_operand(x, "tanh"))


def clamp(x, min=None, max=None):
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    min, max = _py_scalar(min), _py_scalar(max)
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        return _clamp_tensor(x, min, max)
    if isinstance(min, float) or isinstance(max, float):
        x = float_operand(x, "clamp")
    return Clamp.apply(x, lo=min, hi=max)


def maximum(a, b):
    a, b = binary_operands(a, b, "maximum")
    return Maximum.apply(a, b)


def minimum(a, b):
    a, b = binary_operands(a, b, "minimum")
    return Minimum.apply(a, b)


def where(condition, input, other):
    """`tc.where(condition, input, other)`: `input` where condition holds, else `other`."""
    cond = condition if isinstance(condition, Tensor) else as_tensor_operand(condition, "where")
    if cond.dtype != dtypes.bool_:
        raise TypeError(f"where: condition must be a bool tensor, got {cond.dtype}")
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        dtype = dtypes.scalar_result_type(dtypes.scalar_result_type(dtypes.bool_, input), other)
        input = _scalar_tensor(input, dtype, cond.device_str)
    a, b = binary_operands(input, other, "where")
    check_same_device("where", (cond.device_str, a.device_str))
    try:
        np.broadcast_shapes(cond.shape, a.shape, b.shape)
    except ValueError:
        raise ValueError(f"where: condition {cond.shape}, input {a.shape} and other "
                         f"{b.shape} cannot be broadcast together") from None
    return Where.apply(cond, a, b)


# ----------------------------------------------------------------------------- no-grad ops

_COMPARE = {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal",
            "gt": "greater", "ge": "greater_equal"}


def compare(op, a, b):
    """Elementwise comparison: a bool tensor, never differentiable."""
    if not isinstance(b, (Tensor, numbers.Number, np.generic)) and not is_device_array(b) \
            and not isinstance(b, (list, tuple)):
        return NotImplemented
    a, b = binary_operands(a, b, op)
    xp = array_module(a.device_str)
    return wrap_array(getattr(xp, _COMPARE[op])(a.data, b.data), a.device_str)


def logical_not(x):
    if x.dtype != dtypes.bool_:
        raise TypeError(f"invert: ~ needs a bool tensor, got {x.dtype}")
    return wrap_array(~x.data, x.device_str)


def logical(op, a, b):
    a, b = binary_operands(a, b, f"logical_{op}")
    xp = array_module(a.device_str)
    fn = xp.logical_and if op == "and" else xp.logical_or
    if a.dtype == dtypes.bool_:
        return wrap_array(fn(a.data, b.data), a.device_str)
    bitwise = xp.bitwise_and if op == "and" else xp.bitwise_or
    return wrap_array(bitwise(a.data, b.data), a.device_str)
