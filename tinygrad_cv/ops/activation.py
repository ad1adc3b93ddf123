"""Activation ops not in the core: leaky_relu, and dropout's mask multiply.

(relu, sigmoid, tanh, softmax and log_softmax live in the core elementwise/reduce ops.)
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from .. import memory
from ..autograd import Function
from ..backend import xp_of
from ..random import generator_for
from ..tensor import Tensor


class LeakyRelu(Function):
    """y = x for x > 0, else slope * x; the gradient at 0 is `slope`, as in torch."""

    @staticmethod
    def forward(ctx, x, negative_slope):
        positive = x > 0
        ctx.save_for_backward(positive)
        ctx.negative_slope = negative_slope
        return xp_of(x).where(positive, x, x * x.dtype.type(negative_slope))

    @staticmethod
    def backward(ctx, grad):
        (positive,) = ctx.saved
        xp = xp_of(grad)
        return xp.where(positive, grad, grad * grad.dtype.type(ctx.negative_slope))


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"leaky_relu: expected a Tensor, got {type(x).__name__}")
    if not dtypes.is_floating(x.dtype):
        raise TypeError(f"leaky_relu: expected a floating point tensor, got {x.dtype}")
    return LeakyRelu.apply(x, negative_slope=float(negative_slope))


class MaskMultiply(Function):
    """y = x * keep * scale for a constant boolean keep-mask (dropout's). The mask is
    kept as booleans (a quarter of a float32 mask's memory, saved until backward) and
    applied as a multiply by 0/1 then by `scale`: bit-identical to x * (keep * scale)."""

    @staticmethod
    def forward(ctx, x, keep, scale):
        ctx.save_for_backward(keep)
        ctx.scale = scale
        xp = xp_of(x)
        out = xp.multiply(x, keep, out=memory.empty(x.shape, x.dtype, xp))
        out *= x.dtype.type(scale)
        return out

    @staticmethod
    def backward(ctx, grad):
        (keep,) = ctx.saved
        scale = grad.dtype.type(ctx.scale)
        if memory.owns_gradient(grad, 2) and grad.shape == keep.shape:
            np.multiply(grad, keep, out=grad)    # the engine's own array: in place
        else:
            grad = grad * keep
        grad *= scale
        return grad


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p).

    The keep-mask comes from the device's seeded generator (`tc.manual_seed`). Identity
    when not training or p == 0; all zeros when p == 1.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not isinstance(x, Tensor):
        raise TypeError(f"dropout: expected a Tensor, got {type(x).__name__}")
    if not training or p == 0.0:
        return x
    if not dtypes.is_floating(x.dtype):
        raise TypeError(f"dropout: expected a floating point tensor, got {x.dtype}")
    xp = xp_of(x.data)
    if p == 1.0:
        return MaskMultiply.apply(x, keep=xp.zeros(x.shape, dtype=bool), scale=0.0)
    keep = _keep_mask(xp, generator_for(x.device_str), x.shape, p)
    return MaskMultiply.apply(x, keep=keep, scale=1.0 / (1.0 - p))


MASK_CHUNK = 1 << 16
"""Uniforms drawn per chunk when building a dropout mask on the CPU."""


def _keep_mask(xp, gen, shape, p):
    """uniform[0, 1) >= p as booleans. On the CPU the mask lands in recycled memory (a
    fresh array of this size page-faults on every step: ~750 faults per MNIST CNN step
    with MALLOC_MMAP_MAX_=0) and the uniforms are drawn a cache-sized chunk at a time,
    never as a whole float32 array (9 MB at batch 256); the generator's stream is the
    same as one big draw."""
    if xp is not np:
        return gen.random(shape, dtype=xp.float32) >= p
    keep = memory.empty(shape, np.bool_)
    flat = keep.reshape(-1)
    uniforms = np.empty(min(MASK_CHUNK, flat.size), np.float32)
    threshold = np.float32(p)
    for start in range(0, flat.size, MASK_CHUNK):
        chunk = uniforms[:min(MASK_CHUNK, flat.size - start)]
        gen.random(chunk.size, dtype=np.float32, out=chunk)
        np.greater_equal(chunk, threshold, out=flat[start:start + chunk.size])
    return keep

