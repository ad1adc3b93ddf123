"""Matrix product with NumPy/PyTorch semantics (1-D vectors, batched broadcasting)."""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..autograd import Function
from ..backend import check_same_device, xp_of
from .elementwise import as_tensor_operand, cast
from .movement import reshape


class MatMul(Function):
    """a @ b for ndim >= 2 with broadcast batch dims; one BLAS call each way."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return xp_of(a).matmul(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved
        xp = xp_of(grad)
        ga = xp.matmul(grad, xp.swapaxes(b, -1, -2)) if ctx.needs_input_grad[0] else None
        gb = xp.matmul(xp.swapaxes(a, -1, -2), grad) if ctx.needs_input_grad[1] else None
        return ga, gb


def matmul(a, b):
    a, b = as_tensor_operand(a, "matmul"), as_tensor_operand(b, "matmul")
    check_same_device("matmul", (a.device_str, b.device_str))
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(f"matmul: both arguments need at least 1 dimension, got shapes "
                           f"{a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[0 if b.ndim == 1 else -2]:
        k_b = b.shape[0 if b.ndim == 1 else -2]
        raise RuntimeError(f"matmul: shapes {a.shape} and {b.shape} cannot be multiplied "
                           f"({a.shape[-1]} != {k_b})")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise RuntimeError(f"matmul: batch dims of {a.shape} and {b.shape} cannot be "
                           f"broadcast together") from None
    dtype = dtypes.promote_types(a.dtype, b.dtype)
    a, b = cast(a, dtype), cast(b, dtype)
    vec_a, vec_b = a.ndim == 1, b.ndim == 1
    if vec_a:
        a = reshape(a, (1,) + a.shape)
    if vec_b:
        b = reshape(b, b.shape + (1,))
    out = MatMul.apply(a, b)
    if vec_a and vec_b:
        return reshape(out, ())
    if vec_a:
        return reshape(out, out.shape[:-2] + out.shape[-1:])
    if vec_b:
        return reshape(out, out.shape[:-1])
    return out
