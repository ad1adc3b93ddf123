"""ReLU: forward, backward and the choice of kernel, in one place.

CPU float arrays run the Numba kernels of kernels/cpu/relu.py (NumPy's select built two
boolean temporaries); CuPy and other dtypes use array ops. `relu_grad` is shared with the
layers that fuse a ReLU into their own backward.
"""
from __future__ import annotations

import numpy as np

from .. import memory
from ..autograd import Function
from ..backend import xp_of
from ..kernels import cpu
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

    CPU float arrays use the Numba kernels of kernels/cpu/relu.py (NumPy's select built
    two boolean temporaries); CuPy and other dtypes use array ops."""

    @staticmethod
    def forward(ctx, a):
        kernels = _relu_kernels(a)
        if kernels is None:
            out = xp_of(a).maximum(a, 0)
        else:
            if not (a.flags.c_contiguous or a.flags.f_contiguous):
                a = np.ascontiguousarray(a)
            out = memory.empty_like(a)      # same memory order as `a` (C or Fortran)
            kernels.relu_forward(a.ravel(order="K"), out.ravel(order="K"))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved
        owned = memory.owns_gradient(grad, 2)   # asked before the call, which references `grad`
        return relu_grad(out, grad, in_place=owned)


def relu_grad(out, grad, in_place=False):
    """ReLU's backward from its output: grad where out > 0, else 0 (torch's
    threshold_backward). `in_place`: `grad` is scratch only the caller holds, so the
    select may overwrite it."""
    kernels = _relu_kernels(grad)
    if kernels is None or grad.shape != out.shape or grad.dtype != out.dtype:
        return _masked(~(out <= 0), grad)     # as torch's threshold_backward
    if grad.strides != out.strides or not (out.flags.c_contiguous
                                           or out.flags.f_contiguous):
        out = np.ascontiguousarray(out)         # one memory order for both
        grad = np.ascontiguousarray(grad)
    elif in_place:
        kernels.relu_backward_inplace(out.ravel(order="K"), grad.ravel(order="K"))
        return grad
    grad_in = memory.empty_like(grad)
    kernels.relu_backward(out.ravel(order="K"), grad.ravel(order="K"),
                          grad_in.ravel(order="K"))
    return grad_in


def relu(x):
    return Relu.apply(x)
