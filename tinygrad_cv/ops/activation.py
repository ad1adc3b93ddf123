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
from .relu import Hardtanh   # relu6 / hardtanh below; the op lives beside ReLU


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


# ----------------------------------------------------------------------------- more activations
#
# torch's formulas, forward and backward, each op one Function. `inplace=True` (where torch
# has it) writes the result into the input's storage and returns the input tensor itself,
# now carrying the op's graph node; see `run_activation`.

from ..autograd import is_grad_enabled  # noqa: E402


def _checked_float(op, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if not dtypes.is_floating(x.dtype):
        raise TypeError(f"{op}: expected a floating point tensor, got {x.dtype}")
    return x


def run_activation(op, fn, x, inplace=False, **params):
    """`fn.apply(x, **params)`, or with `inplace` its in-place form, as torch's `op_`:

    the result is written into x's storage (every alias sees it) and x is returned,
    now the op's output in the graph. A leaf that requires grad refuses, as torch.
    Saved arrays that are x's own storage are copied first (torch saves the original
    self for such backward formulas), so the gradient stays exact. torch's version
    counter is not reproduced: overwriting a tensor that *another* op saved for its
    backward is an error in torch and wrong gradients here; the case we can see (x's
    own producer saved its output, e.g. sigmoid) raises here at once."""
    _checked_float(op, x)
    if not inplace:
        return fn.apply(x, **params)
    recording = is_grad_enabled() and x.requires_grad
    if recording and x.is_leaf:
        raise RuntimeError(f"{op}(inplace=True): a leaf Variable that requires grad is being "
                           f"used in an in-place operation (shape {x.shape})")
    if recording and any(a is x.data for a in (x.grad_fn.saved or ())):
        raise RuntimeError(f"{op}(inplace=True): the input (shape {x.shape}) was saved by "
                           f"{x.grad_fn.name()} for its backward and would be overwritten; "
                           f"use inplace=False")
    if not getattr(x.data.flags, "writeable", True):
        raise RuntimeError(f"{op}(inplace=True): the input (shape {x.shape}) is a read-only "
                           f"view (e.g. from expand); use inplace=False")
    out = fn.apply(x, **params)
    node = out.grad_fn
    if node is not None:
        node.saved = tuple(a.copy() if a is x.data else a for a in node.saved)
    x.data[...] = out.data
    if node is not None:
        x.grad_fn = node
        x.requires_grad = True
    return x


class Hardsigmoid(Function):
    """relu6(x + 3) / 6; gradient 1/6 strictly inside (-3, 3)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward((x > -3) & (x < 3))
        return xp_of(x).clip(x + 3, 0, 6) / 6

    @staticmethod
    def backward(ctx, grad):
        (inside,) = ctx.saved
        return grad * inside / 6


class Hardswish(Function):
    """x * relu6(x + 3) / 6; torch's gradient: 0 up to -3, x / 3 + 1/2 inside, 1 from 3."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * xp_of(x).clip(x + 3, 0, 6) / 6

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        xp = xp_of(x)
        return xp.where(x <= -3, 0, xp.where(x < 3, grad * (x / 3 + 0.5), grad)).astype(
            grad.dtype, copy=False)


def _sigmoid(xp, x):
    return 1 / (1 + xp.exp(-x))


class Silu(Function):
    """x * sigmoid(x)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * _sigmoid(xp_of(x), x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        s = _sigmoid(xp_of(x), x)
        return grad * s * (1 + x * (1 - s))


_ERF = []


def erf(a):
    """The error function of an array (NumPy has none): a Numba ufunc on the CPU (compiled
    on first use, cached), cupyx.scipy.special.erf on the GPU."""
    if xp_of(a) is not np:
        import cupyx.scipy.special
        return cupyx.scipy.special.erf(a)
    if not _ERF:
        import math

        import numba

        @numba.vectorize(["float32(float32)", "float64(float64)"], cache=True)
        def _erf(v):
            return math.erf(v)
        _ERF.append(_erf)
    return _ERF[0](a)


_SQRT1_2 = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327
_SQRT_2_OVER_PI = 0.7978845608028654
_KAPPA = 0.044715


class Gelu(Function):
    """x * Phi(x) ("none": Phi by erf) or torch's tanh approximation ("tanh")."""

    @staticmethod
    def forward(ctx, x, approximate):
        ctx.save_for_backward(x)
        ctx.approximate = approximate
        xp = xp_of(x)
        if approximate == "tanh":
            inner = _SQRT_2_OVER_PI * (x + _KAPPA * x * x * x)
            return (0.5 * x * (1 + xp.tanh(inner))).astype(x.dtype, copy=False)
        return (x * 0.5 * (1 + erf(x * x.dtype.type(_SQRT1_2)))).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        xp = xp_of(x)
        if ctx.approximate == "tanh":
            x_sq = x * x
            t = xp.tanh(_SQRT_2_OVER_PI * (x + _KAPPA * x_sq * x))
            left = 0.5 * x
            d = 0.5 * (1 + t) + left * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * _KAPPA * x_sq)
        else:
            cdf = 0.5 * (1 + erf(x * x.dtype.type(_SQRT1_2)))
            d = cdf + x * xp.exp(-0.5 * x * x) * _INV_SQRT_2PI
        return (grad * d).astype(grad.dtype, copy=False)


class Elu(Function):
    """torch's elu family: x * scale for x > 0, else alpha * scale * (exp(x * input_scale)
    - 1); ELU is (alpha, 1, 1), SELU (1.6733, 1.0507, 1), CELU (alpha, 1, 1 / alpha).
    The gradient at 0 takes the exponential side, as torch."""

    @staticmethod
    def forward(ctx, x, alpha, scale=1.0, input_scale=1.0):
        ctx.save_for_backward(x)
        ctx.coefs = (alpha, scale, input_scale)
        xp = xp_of(x)
        t = x.dtype.type
        positive = x * t(scale) if scale != 1.0 else x
        negative = xp.expm1(x * t(input_scale) if input_scale != 1.0 else x) * t(alpha * scale)
        return xp.where(x > 0, positive, negative)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        alpha, scale, input_scale = ctx.coefs
        xp = xp_of(x)
        t = grad.dtype.type
        inner = x * t(input_scale) if input_scale != 1.0 else x
        negative = grad * t(input_scale * alpha * scale) * xp.exp(inner)
        return xp.where(x <= 0, negative, grad * t(scale) if scale != 1.0 else grad)


class Softplus(Function):
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold."""

    @staticmethod
    def forward(ctx, x, beta, threshold):
        ctx.save_for_backward(x)
        ctx.beta, ctx.threshold = beta, threshold
        xp = xp_of(x)
        bx = x * x.dtype.type(beta)
        return xp.where(bx > threshold, x, xp.log1p(xp.exp(bx)) / x.dtype.type(beta))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        xp = xp_of(x)
        bx = x * x.dtype.type(ctx.beta)
        z = xp.exp(bx)
        return xp.where(bx > ctx.threshold, grad, grad * z / (z + 1))


class Mish(Function):
    """x * tanh(softplus(x))."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        xp = xp_of(x)
        return x * xp.tanh(xp.log1p(xp.exp(x)))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        xp = xp_of(x)
        t = xp.tanh(xp.log1p(xp.exp(x)))
        return grad * (t + x * _sigmoid(xp, x) * (1 - t * t))


class Prelu(Function):
    """x for x > 0, weight * x otherwise, with one weight or one per channel (dim 1)."""

    @staticmethod
    def forward(ctx, x, weight):
        w = weight.reshape((1, -1) + (1,) * (x.ndim - 2)) if weight.size > 1 else \
            weight.reshape(())
        ctx.save_for_backward(x, w)
        return xp_of(x).where(x > 0, x, w * x)

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved
        xp = xp_of(x)
        positive = x > 0
        dx = xp.where(positive, grad, w * grad) if ctx.needs_input_grad[0] else None
        dw = None
        if ctx.needs_input_grad[1]:
            contrib = xp.where(positive, 0, x * grad)
            shape = ctx.input_meta[1][0]
            if w.ndim:
                dw = contrib.sum(axis=(0,) + tuple(range(2, x.ndim))).reshape(shape)
            else:
                dw = contrib.sum().reshape(shape)
        return dx, dw


def hardtanh(x, min_val=-1.0, max_val=1.0, inplace=False):
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val {min_val} cannot be greater than max_val {max_val}")
    return run_activation("hardtanh", Hardtanh, x, inplace, min_val=float(min_val),
                          max_val=float(max_val))


def relu6(x, inplace=False):
    return run_activation("relu6", Hardtanh, x, inplace, min_val=0.0, max_val=6.0)


def hardsigmoid(x, inplace=False):
    return run_activation("hardsigmoid", Hardsigmoid, x, inplace)


def hardswish(x, inplace=False):
    return run_activation("hardswish", Hardswish, x, inplace)


def silu(x, inplace=False):
    return run_activation("silu", Silu, x, inplace)


def gelu(x, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return run_activation("gelu", Gelu, x, False, approximate=approximate)


def elu(x, alpha=1.0, inplace=False):
    return run_activation("elu", Elu, x, inplace, alpha=float(alpha))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(x, inplace=False):
    return run_activation("selu", Elu, x, inplace, alpha=_SELU_ALPHA, scale=_SELU_SCALE)


def celu(x, alpha=1.0, inplace=False):
    if alpha == 0:
        raise ValueError("celu: ZeroDivisionError, alpha cannot be 0")
    return run_activation("celu", Elu, x, inplace, alpha=float(alpha),
                          input_scale=1.0 / float(alpha))


def softplus(x, beta=1.0, threshold=20.0):
    return run_activation("softplus", Softplus, x, False, beta=float(beta),
                          threshold=float(threshold))


def mish(x, inplace=False):
    return run_activation("mish", Mish, x, inplace)


def prelu(x, weight):
    _checked_float("prelu", x)
    if not isinstance(weight, Tensor):
        raise TypeError(f"prelu: weight must be a Tensor, got {type(weight).__name__}")
    channels = x.shape[1] if x.ndim >= 2 else 1
    if weight.numel() != 1 and (weight.ndim != 1 or weight.numel() != channels):
        raise ValueError(f"prelu: weight of shape {weight.shape} has {weight.numel()} "
                         f"parameters but the input of shape {x.shape} has {channels} "
                         f"channels (expected 1 or {channels})")
    if weight.dtype != x.dtype:
        raise TypeError(f"prelu: weight is {weight.dtype} but the input is {x.dtype}")
    return Prelu.apply(x, weight)


def feature_dropout(x, p=0.5, training=True, op="dropout2d"):
    """Channel-wise dropout (torch's feature_dropout): each (sample, channel) of an
    (N, C, *) input is zeroed as a whole with probability p, the rest scaled by 1/(1-p)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    _checked_float(op, x)
    if x.ndim < 2:
        raise RuntimeError(f"{op}: feature dropout needs an input of at least 2 dims "
                           f"(N, C, *), got shape {x.shape}")
    if not training or p == 0.0:
        return x
    xp = xp_of(x.data)
    mask_shape = x.shape[:2] + (1,) * (x.ndim - 2)
    if p == 1.0:
        return MaskMultiply.apply(x, keep=xp.zeros(mask_shape, dtype=bool), scale=0.0)
    keep = generator_for(x.device_str).random(mask_shape) >= p
    return MaskMultiply.apply(x, keep=keep, scale=1.0 / (1.0 - p))



class LogSigmoid(Function):
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), stable for large |x|."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        xp = xp_of(x)
        return xp.minimum(x, 0) - xp.log1p(xp.exp(-xp.abs(x)))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        xp = xp_of(x)
        z = xp.exp(-xp.abs(x))
        negative = x < 0
        return grad * (negative - xp.where(negative, 1, -1) * (z / (1 + z)))


class Softsign(Function):
    """x / (1 + |x|)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x / (1 + xp_of(x).abs(x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved
        d = 1 + xp_of(x).abs(x)
        return grad / (d * d)


class Tanhshrink(Function):
    """x - tanh(x)."""

    @staticmethod
    def forward(ctx, x):
        t = xp_of(x).tanh(x)
        ctx.save_for_backward(t)
        return x - t

    @staticmethod
    def backward(ctx, grad):
        (t,) = ctx.saved
        return grad * t * t


class Threshold(Function):
    """x where x > threshold, else `value`; the gradient flows where x > threshold."""

    @staticmethod
    def forward(ctx, x, threshold, value):
        keep = x > threshold
        ctx.save_for_backward(keep)
        return xp_of(x).where(keep, x, x.dtype.type(value))

    @staticmethod
    def backward(ctx, grad):
        (keep,) = ctx.saved
        return grad * keep


class Shrink(Function):
    """hardshrink (x where |x| > lambd, else 0) or softshrink (x -+ lambd outside
    [-lambd, lambd], else 0); the gradient is 1 outside the closed interval."""

    @staticmethod
    def forward(ctx, x, lambd, soft):
        xp = xp_of(x)
        outside = (x < -lambd) | (x > lambd)
        ctx.save_for_backward(outside)
        if not soft:
            return xp.where(outside, x, 0).astype(x.dtype, copy=False)
        t = x.dtype.type(lambd)
        return xp.where(x > lambd, x - t, xp.where(x < -lambd, x + t, 0)).astype(
            x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        (outside,) = ctx.saved
        return grad * outside


def logsigmoid(x):
    return run_activation("logsigmoid", LogSigmoid, x)


def softsign(x):
    return run_activation("softsign", Softsign, x)


def tanhshrink(x):
    return run_activation("tanhshrink", Tanhshrink, x)


def threshold(x, threshold, value, inplace=False):
    return run_activation("threshold", Threshold, x, inplace, threshold=float(threshold),
                          value=float(value))


def hardshrink(x, lambd=0.5):
    return run_activation("hardshrink", Shrink, x, lambd=float(lambd), soft=False)


def softshrink(x, lambd=0.5):
    if lambd < 0:
        raise RuntimeError(f"softshrink: lambda must be greater or equal to 0, but found to "
                           f"be {lambd}.")
    return run_activation("softshrink", Shrink, x, lambd=float(lambd), soft=True)


def glu(x, dim=-1):
    """a * sigmoid(b) for the two halves (a, b) of `dim`."""
    _checked_float("glu", x)
    from .movement import chunk, normalize_dim
    axis = normalize_dim("glu", dim, x.shape)
    if x.shape[axis] % 2:
        raise RuntimeError(f"glu: Halving dimension must be even, but dimension {axis} is "
                           f"size {x.shape[axis]}")
    a, b = chunk(x, 2, axis)
    return a * b.sigmoid()
