"""More pointwise ops, torch's: square rsqrt reciprocal log1p expm1 log2 log10 sin cos sign
floor ceil trunc round (one `Unary` Function, `kind` picks the formula), the isnan-style
predicates, masked_fill and all/any."""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..autograd import Function
from ..backend import array_module, xp_of
from ..tensor import Tensor, wrap_array
from .elementwise import (_scalar_tensor, as_tensor_operand, binary_operands, cast,
                          float_operand, where)


# ----------------------------------------------------------------------------- more unary math

class Unary(Function):
    """The unary ops below share this class: `kind` picks the forward and the derivative
    (torch's: sign/floor/ceil/round/trunc have a zero gradient)."""

    _FORWARD = {
        "square": lambda xp, a: a * a,
        "rsqrt": lambda xp, a: 1 / xp.sqrt(a),
        "reciprocal": lambda xp, a: 1 / a,
        "log1p": lambda xp, a: xp.log1p(a),
        "expm1": lambda xp, a: xp.expm1(a),
        "log2": lambda xp, a: xp.log2(a),
        "log10": lambda xp, a: xp.log10(a),
        "sin": lambda xp, a: xp.sin(a),
        "cos": lambda xp, a: xp.cos(a),
        "sign": lambda xp, a: xp.sign(a),
        "floor": lambda xp, a: xp.floor(a),
        "ceil": lambda xp, a: xp.ceil(a),
        "round": lambda xp, a: xp.round(a),
        "trunc": lambda xp, a: xp.trunc(a),
    }

    @staticmethod
    def forward(ctx, a, kind):
        ctx.kind = kind
        out = Unary._FORWARD[kind](xp_of(a), a).astype(a.dtype, copy=False)
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        a, out = ctx.saved
        xp = xp_of(a)
        kind = ctx.kind
        if kind == "square":
            return grad * (2 * a)
        if kind == "rsqrt":
            return grad * (-0.5 * out * out * out)
        if kind == "reciprocal":
            return grad * (-(out * out))
        if kind == "log1p":
            return grad / (1 + a)
        if kind == "expm1":
            return grad * (out + 1)
        if kind == "log2":
            return grad / (a * np.log(2.0))
        if kind == "log10":
            return grad / (a * np.log(10.0))
        if kind == "sin":
            return grad * xp.cos(a)
        if kind == "cos":
            return grad * -xp.sin(a)
        return xp.zeros_like(grad)      # sign, floor, ceil, round, trunc


def unary(x, kind):
    return Unary.apply(float_operand(x, kind), kind=kind)


def round_(x, decimals=0):
    if decimals:
        scale = 10.0 ** decimals
        return unary(x * scale, "round") / scale
    return unary(x, "round")


def predicate(x, kind):
    """isnan / isinf / isfinite: bool tensors, no gradient."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{kind}: expected a Tensor, got {type(x).__name__}")
    xp = xp_of(x.data)
    fn = {"isnan": xp.isnan, "isinf": xp.isinf, "isfinite": xp.isfinite}[kind]
    return wrap_array(fn(x.data), x.device_str)


def masked_fill(x, mask, value):
    """`value` where `mask` (a bool tensor broadcasting to x) is True, else x; the
    gradient flows to x where the mask is False."""
    if not isinstance(mask, Tensor) or mask.dtype != np.bool_:
        raise RuntimeError(f"masked_fill only supports boolean masks, but got mask with dtype "
                           f"{getattr(mask, 'dtype', type(mask).__name__)}")
    try:
        if np.broadcast_shapes(mask.shape, x.shape) != x.shape:
            raise ValueError
    except ValueError:
        raise RuntimeError(f"masked_fill: the mask of shape {mask.shape} must broadcast to "
                           f"the tensor's shape {x.shape}") from None
    if isinstance(value, Tensor):
        if value.ndim:
            raise RuntimeError(f"masked_fill only supports a 0-dimensional value tensor, but "
                               f"got tensor with {value.ndim} dimension(s).")
        value = value.item()
    return where(mask, _scalar_tensor(value, x.dtype, x.device_str), x)


def logical_reduce(x, kind, dim=None, keepdim=False):
    """all / any (bool results, no gradient)."""
    from .reduce import reduce_axes
    axes = reduce_axes(kind, dim, x.shape)
    data = x.data.astype(bool) if x.dtype != np.bool_ else x.data
    fn = data.all if kind == "all" else data.any
    return wrap_array(xp_of(data).asarray(fn(axis=axes, keepdims=keepdim)), x.device_str)
