"""Matrix product with NumPy/PyTorch semantics (1-D vectors, batched broadcasting)."""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..autograd import Function
from ..backend import check_same_device, xp_of
from .. import memory
from .elementwise import as_tensor_operand, cast
from .movement import reshape
from .relu import relu_grad


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


class Linear(Function):
    """y = x @ W^T + b as one op (torch's F.linear), x of shape (*, in_features).

    One Function instead of transpose + matmul + broadcast add: on the MLP (batch 64)
    the three ops' Python bookkeeping (operand checks, dtype promotion, broadcasting,
    three graph nodes, a sum_to for the bias gradient) cost more than the GEMMs. The
    bias is added in place into the GEMM's output; backward is two GEMMs and a row sum.
    A following ReLU may join this node (ops/relu.py): then `ctx.relu_out` is the
    output it overwrote, and backward masks the gradient with it first.
    """

    fuses_relu = True

    @staticmethod
    def forward(ctx, x, weight, *maybe_bias):
        xp = xp_of(x)
        x2 = x.reshape(-1, x.shape[-1])
        if x.ndim == 2 and weight.flags.c_contiguous and x.shape[0] <= weight.shape[0]:
            # (W @ x^T)^T: the same products, but OpenBLAS runs this orientation faster
            # when the batch is at most out_features (benchmarks/README.md, "Decisions").
            # The result is a column-major view, which the next Linear consumes as is.
            out = _gemm(xp, weight, x2.T).T
        else:
            out = _gemm(xp, x2, weight.T)
        if maybe_bias:
            _add_bias(xp, out, maybe_bias[0])
        need = ctx.needs_input_grad
        ctx.save_for_backward(x2 if need[1] else None, weight if need[0] else None)
        ctx.x_shape = x.shape
        ctx.has_bias = bool(maybe_bias)
        ctx.relu_out = None
        return out.reshape(x.shape[:-1] + (weight.shape[0],))

    @staticmethod
    def backward(ctx, grad):
        x2, weight = ctx.saved
        if ctx.relu_out is not None:
            owned = memory.owns_gradient(grad, 2)   # asked before the call references it
            grad = relu_grad(ctx.relu_out, grad, in_place=owned)
        weight_shape = (grad.shape[-1], ctx.x_shape[-1])
        xp = xp_of(grad)
        need = ctx.needs_input_grad
        g2 = grad.reshape(-1, grad.shape[-1])
        grad_x = None
        if need[0]:
            out = memory.empty((g2.shape[0], weight.shape[1]), g2.dtype, xp)
            grad_x = xp.matmul(g2, weight, out=out).reshape(ctx.x_shape)
        grad_w = None
        if need[1]:
            out = memory.empty(weight_shape, g2.dtype, xp)
            grad_w = xp.matmul(g2.T, x2, out=out)
        if not ctx.has_bias:
            return grad_x, grad_w
        return grad_x, grad_w, (g2.sum(axis=0) if need[2] else None)


def mm(a, b):
    """`a @ b` of two matrices, as torch.mm (no broadcasting, no vectors)."""
    if a.ndim != 2 or b.ndim != 2:
        raise RuntimeError(f"mm: expected 2-D tensors, got shapes {a.shape} and {b.shape}")
    return matmul(a, b)


def bmm(a, b):
    """Batched `a @ b` of (B, n, m) and (B, m, p), as torch.bmm (no broadcasting)."""
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise RuntimeError(f"bmm: expected 3-D tensors with the same batch size, got "
                           f"shapes {a.shape} and {b.shape}")
    return matmul(a, b)


def _gemm(xp, a, b):
    """a @ b; on the CPU into recycled memory (memory.py): a fresh output page-faults where
    glibc has trimmed the heap."""
    if xp is not np:
        return xp.matmul(a, b)
    out = memory.empty((a.shape[0], b.shape[1]), np.result_type(a.dtype, b.dtype))
    return xp.matmul(a, b, out=out)


def _add_bias(xp, out, bias):
    """out += bias (per column), in place on the fresh (rows, out_features) GEMM output.
    A Fortran-ordered output (the transposed GEMM's) is a C-ordered (out_features, rows)
    array with one bias per row: the CPU epilogue kernel adds it in one pass."""
    if (xp is np and out.dtype in (np.float32, np.float64) and out.flags.f_contiguous
            and out.ndim == 2 and bias.dtype == out.dtype):
        from ..kernels import cpu
        cpu.bias_relu(out.T, bias, False)
    else:
        out += bias


def linear(x, weight, bias=None):
    """x @ weight.T + bias with one graph node; shapes and dtypes are checked by the
    caller (nn.functional.linear)."""
    tensors = (x, weight) if bias is None else (x, weight, bias)
    return Linear.apply(*tensors)
