"""ReLU (and ReLU6 / hardtanh, its clipped form): forward, backward and the choice of
kernel, in one place.

CPU float arrays run the Numba kernels of kernels/cpu/relu.py (NumPy's select built two
boolean temporaries); CuPy and other dtypes use array ops. `relu_grad` is shared with the
ops that fuse a ReLU into their own backward.

A ReLU whose input nobody else can see runs in place (see `relu`): on a Linear's or a
conv's output it becomes part of that op's graph node (`fuses_relu` ops: their backward
applies the mask first, so the step has one node and one array less, as a hand-fused
`relu(linear(x))`); on any other op's output it overwrites the array and keeps its own
node. "Nobody else" is proved by reference counts, so this is CPython < 3.14 only.
"""
from __future__ import annotations

import sys
import weakref

import numpy as np

from .. import memory
from ..autograd import Context, Function, current_observer, is_grad_enabled
from ..backend import xp_of
from ..kernels import cpu
from ..tensor import Tensor
from .elementwise import _masked


def _relu_kernels(arr):
    """kernels/cpu for a float32/float64 NumPy array, else None (NumPy/CuPy ops). Any
    size: the kernels' serial twins beat NumPy on small arrays too."""
    if isinstance(arr, np.ndarray) and arr.dtype in (np.float32, np.float64):
        return cpu
    return None


class Relu(Function):
    """max(x, 0); the derivative at 0 is 0, as PyTorch (NaN passes forward; backward is
    torch's threshold_backward select: grad where out > 0, else 0, NaN grads included).
    `in_place`: `a` is scratch only this op sees (see `relu`)."""

    @staticmethod
    def forward(ctx, a, in_place=False):
        kernels = _relu_kernels(a)
        if in_place:                        # `a` is scratch only this op sees: see relu()
            kernels.relu_inplace(a.ravel(order="K"))
            out = a
        elif kernels is None:
            out = xp_of(a).maximum(a, 0)
        else:
            a, out = _flat_operands(a)
            kernels.relu_forward(a.ravel(order="K"), out.ravel(order="K"))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        owned = memory.owns_gradient(grad, 2)   # asked before the call, which references `grad`
        return relu_grad(out, grad, in_place=owned)


class Hardtanh(Function):
    """clamp(x, lo, hi); the gradient is 1 strictly inside (lo, hi), 0 elsewhere (torch)."""

    @staticmethod
    def forward(ctx, x, min_val, max_val):
        lo, hi = x.dtype.type(min_val), x.dtype.type(max_val)
        ctx.bounds = (lo, hi)
        if _relu_kernels(x) is not None:
            x, out = _flat_operands(x)
            cpu.hardtanh_forward(x.ravel(order="K"), out.ravel(order="K"), lo, hi)
        else:
            out = xp_of(x).clip(x, lo, hi)
        ctx.save_for_backward(out)      # the output, which the next layer holds anyway
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        lo, hi = ctx.bounds
        flats = _flat_pair(out, grad)
        if flats is None:
            return _masked((out > lo) & (out < hi), grad)
        out, grad, _ = flats
        grad_in = memory.empty_like(grad)
        cpu.hardtanh_backward(out.ravel(order="K"), grad.ravel(order="K"),
                              grad_in.ravel(order="K"), lo, hi)
        return grad_in


def _flat_operands(a):
    """`a` (copied to C order when it is neither C- nor Fortran-contiguous) and a recycled
    output of its shape and memory order: what the flat kernels run on."""
    if not (a.flags.c_contiguous or a.flags.f_contiguous):
        a = np.ascontiguousarray(a)
    return a, memory.empty_like(a)


def _flat_pair(out, grad):
    """(out, grad, copied): a backward's saved output and gradient in one memory order
    for the flat kernels, copied to C order when their layouts differ; None where the
    kernels do not apply (not a CPU float array, or another shape or dtype)."""
    if _relu_kernels(grad) is None or grad.shape != out.shape or grad.dtype != out.dtype:
        return None
    if grad.strides != out.strides or not (out.flags.c_contiguous
                                           or out.flags.f_contiguous):
        return np.ascontiguousarray(out), np.ascontiguousarray(grad), True
    return out, grad, False


def relu_grad(out, grad, in_place=False):
    """ReLU's backward from its output: grad where out > 0, else 0 (torch's
    threshold_backward). `in_place`: `grad` is scratch only the caller holds, so the
    select may overwrite it."""
    flats = _flat_pair(out, grad)
    if flats is None:
        return _masked(~(out <= 0), grad)     # as torch's threshold_backward
    out, grad, copied = flats
    if in_place and not copied:
        cpu.relu_backward_inplace(out.ravel(order="K"), grad.ravel(order="K"))
        return grad
    grad_in = memory.empty_like(grad)
    cpu.relu_backward(out.ravel(order="K"), grad.ravel(order="K"), grad_in.ravel(order="K"))
    return grad_in


def relu(x, holders=0):
    """max(x, 0). `holders`: how many references to `x` the calling frames hold beyond
    this function's own (their parameters, an args tuple), all of them temporaries that
    die when the call returns; with exactly those and nothing else reaching `x` or its
    array, the ReLU runs in place (module docstring). Callers that cannot vouch for their
    references pass 0, which never matches, so nothing is overwritten."""
    if holders and _exclusive(x, holders + 3):   # + our parameter, `x` below, the argument
        ctx = x.grad_fn
        if ctx is None:                     # no graph (no_grad, or no input needs grad)
            cpu.relu_inplace(x.data.ravel(order="K"))
            return x
        if (getattr(ctx.fn, "fuses_relu", False) and type(ctx) is Context
                and ctx.__dict__.get("relu_out", False) is None
                and sys.getrefcount(ctx) == 3):     # x.grad_fn, `ctx`, the argument
            cpu.relu_inplace(x.data.ravel(order="K"))
            ctx.relu_out = x.data           # its backward masks the gradient first
            return x
        return Relu.apply(x, in_place=True)
    return Relu.apply(x)


def _exclusive(x, count):
    """True when `x` is a plain CPU float Tensor produced by an op, that exactly `count`
    references reach (no weak ones), whose array only `x` holds, and no op observer runs:
    then overwriting its array changes nothing anyone can see."""
    if type(x) is not Tensor or sys.getrefcount(x) != count or weakref.getweakrefcount(x):
        return False
    arr = x.data
    if (_relu_kernels(arr) is None or not arr.flags.writeable or x.requires_grad
            != (x.grad_fn is not None) or current_observer() is not None
            or (x.grad_fn is not None and not is_grad_enabled())):
        return False
    if not (arr.flags.c_contiguous or arr.flags.f_contiguous):
        return False
    return memory.sole_owner(arr, holders=2)    # x.data, `arr`
