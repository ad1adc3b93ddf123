"""Vector norms (torch.linalg.vector_norm, Tensor.norm) as one op with torch's backward.

For ord p the norm is (sum |x|^p)^(1/p) over `dim` (all elements when None); inf and -inf
are the largest and smallest |x|, 0 counts the non-zeros. Backward (torch's rules): where
the norm is 0 the gradient is 0 (not NaN), as it is at zero elements for any p; for +-inf the gradient is shared equally by
the elements that attain the extreme.
"""
from __future__ import annotations

import math
import numbers

from .. import dtypes
from ..autograd import Function
from ..backend import xp_of
from ..tensor import Tensor
from .movement import normalize_dim


class VectorNorm(Function):
    @staticmethod
    def forward(ctx, x, ord, axes, keepdim):
        xp = xp_of(x)
        a = xp.abs(x)
        if ord == math.inf:
            norm = a.max(axis=axes, keepdims=True)
        elif ord == -math.inf:
            norm = a.min(axis=axes, keepdims=True)
        elif ord == 0:
            norm = (a != 0).sum(axis=axes, keepdims=True).astype(x.dtype)
        elif ord == 1:
            norm = a.sum(axis=axes, keepdims=True)
        elif ord == 2:
            norm = xp.sqrt((x * x).sum(axis=axes, keepdims=True))
        else:
            norm = ((a ** ord).sum(axis=axes, keepdims=True)) ** (1.0 / ord)
        ctx.save_for_backward(x, norm)
        ctx.ord, ctx.axes, ctx.keepdim = ord, axes, keepdim
        return norm if keepdim else norm.reshape(tuple(
            n for i, n in enumerate(norm.shape) if i not in axes))

    @staticmethod
    def backward(ctx, grad):
        x, norm = ctx.saved
        xp = xp_of(x)
        g = grad.reshape(norm.shape)
        p = ctx.ord
        if p == 0:
            return xp.zeros_like(x)
        if p in (math.inf, -math.inf):
            hit = xp.abs(x) == norm
            count = hit.sum(axis=ctx.axes, keepdims=True)
            return xp.sign(x) * hit * (g / count)
        if p == 1:
            return xp.sign(x) * g
        safe = xp.where(norm == 0, 1, norm)
        if p == 2:
            scale = xp.where(norm == 0, 0, g / safe)
            return x * scale
        scale = xp.where(norm == 0, 0, g / safe ** (p - 1))
        a = xp.abs(x)
        # x |x|^(p-2) is 0 at x = 0 (torch's value; the power alone is inf for p < 2)
        return xp.where(a == 0, 0, x * xp.where(a == 0, 1, a) ** (p - 2)) * scale


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    op = "vector_norm"
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if not dtypes.is_floating(x.dtype):
        raise TypeError(f"{op}: expected a floating point input, got {x.dtype}")
    if dtype is not None:
        x = x.astype(dtype)
    if isinstance(ord, str):
        if ord != "fro":
            raise ValueError(f"{op}: unsupported norm type {ord!r}")
        ord = 2
    ord = float(ord)
    if dim is None:
        axes = tuple(range(x.ndim))
    else:
        dims = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
        axes = tuple(sorted({normalize_dim(op, d, x.shape) for d in dims}))
    return VectorNorm.apply(x, ord=ord, axes=axes, keepdim=bool(keepdim))


# ----------------------------------------------------------------------------- einsum

def _einsum_parts(equation, n):
    """(input subscripts, output subscripts) of an einsum equation, spaces removed and
    the implicit output (letters seen once, sorted; a leading ... kept) made explicit."""
    equation = equation.replace(" ", "")
    if "->" in equation:
        lhs, out = equation.split("->")
    else:
        lhs = equation
        letters = lhs.replace(",", "").replace("...", "")
        out = ("..." if "..." in lhs else "") + "".join(
            sorted(c for c in set(letters) if letters.count(c) == 1))
    ins = lhs.split(",")
    if len(ins) != n:
        raise ValueError(f"einsum(): the equation {equation!r} has {len(ins)} operands but "
                         f"{n} tensors were given")
    return ins, out


class Einsum(Function):
    """einsum forward by the array module; the gradient of operand i is the einsum of the
    output gradient with the other operands into operand i's subscripts (letters only
    operand i has are summed in forward, so their gradient is broadcast back)."""

    @staticmethod
    def forward(ctx, *arrays, equation):
        ctx.save_for_backward(*arrays)
        ctx.equation = equation
        return xp_of(arrays[0]).einsum(equation, *arrays)

    @staticmethod
    def backward(ctx, grad):
        arrays = ctx.saved
        xp = xp_of(grad)
        ins, out = _einsum_parts(ctx.equation, len(arrays))
        grads = []
        for i, subs in enumerate(ins):
            if not ctx.needs_input_grad[i]:
                grads.append(None)
                continue
            others = [s for j, s in enumerate(ins) if j != i]
            seen = set(out.replace("...", "")) | set("".join(others).replace("...", ""))
            letters = subs.replace("...", "")
            if len(set(letters)) != len(letters):
                raise NotImplementedError(f"einsum backward: repeated subscripts within one "
                                          f"operand ({subs!r}) are not supported")
            kept = "".join(c for c in subs if c in seen or c == ".")
            spec = ",".join([out] + others) + "->" + kept
            g = xp.einsum(spec, grad, *[a for j, a in enumerate(arrays) if j != i])
            if kept != subs:           # letters summed only in this operand: broadcast back
                shape = arrays[i].shape
                offset = arrays[i].ndim - len(letters)
                positions = [offset + letters.index(c) for c in letters if c not in seen]
                for p in positions:
                    g = xp.expand_dims(g, p)
                g = xp.broadcast_to(g, shape)
            grads.append(g)
        return tuple(grads)


def einsum(equation, *operands):
    """torch.einsum(equation, *operands) (operands may also be given as one list)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands or not all(isinstance(t, Tensor) for t in operands):
        raise TypeError("einsum(): expected Tensor operands")
    _einsum_parts(equation, len(operands))
    from .elementwise import cast
    dtype = operands[0].dtype
    for t in operands[1:]:
        dtype = dtypes.promote_types(dtype, t.dtype)
    return Einsum.apply(*[cast(t, dtype) for t in operands], equation=equation)
