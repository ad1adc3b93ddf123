"""ReLU forward/backward (out of place and in place), the bias + ReLU epilogue that
conv2d and Linear share, and hardtanh (ReLU6) forward/backward."""
from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

from .dispatch import size_dispatched


@size_dispatched
def bias_relu(out, bias, relu):
    """A layer's epilogue in one pass over `out` (planes, positions), in place: out +=
    bias[plane % bias.size], then max(., 0) when `relu` (NaN passing, as torch.relu);
    an empty `bias` means none. For conv2d the planes are the (sample, channel) pairs of
    the NCHW output; for Linear the rows of its transposed (out_features, batch) output.
    Replaces a broadcast add and a ReLU pass, each a full sweep over the activation."""
    planes, positions = out.shape
    channels = bias.size
    zero = np.zeros(1, out.dtype)[0]
    for p in prange(planes):
        row = out[p]
        if channels:
            b = bias[p % channels]
            if relu:
                for k in range(positions):
                    v = row[k] + b
                    row[k] = zero if v <= 0 else v
            else:
                for k in range(positions):
                    row[k] += b
        elif relu:
            for k in range(positions):
                v = row[k]
                row[k] = zero if v <= 0 else v


@size_dispatched
def relu_forward(x, out):
    """out = max(x, 0) over flat arrays, NaN passing through (as torch.relu).

    Two threads instead of NumPy's one: ~2x on the MNIST CNN's 9 MB activations."""
    zero = np.zeros(1, x.dtype)[0]     # a zero of the data's dtype (no float64 select)
    for i in prange(x.size):
        v = x[i]
        out[i] = zero if v <= 0 else v


@size_dispatched
def relu_backward(out, grad, grad_in):
    """grad_in = grad where out > 0 else 0 (torch's threshold_backward: a select, so an
    inf/NaN gradient is zeroed where the unit was off; NaN outputs pass the gradient).

    Replaces `np.where(~(out <= 0), grad, 0)`, which built two boolean temporaries."""
    zero = np.zeros(1, grad.dtype)[0]
    for i in prange(out.size):
        grad_in[i] = zero if out[i] <= 0 else grad[i]


@size_dispatched
def relu_inplace(x):
    """x = max(x, 0) in place (NaN passing). Its own kernel because `relu_forward(x, x)`
    is 4x slower on small arrays: with two array arguments LLVM vectorises only behind
    a runtime no-overlap check, which an in-place call fails."""
    zero = np.zeros(1, x.dtype)[0]
    for i in prange(x.size):
        v = x[i]
        x[i] = zero if v <= 0 else v


@size_dispatched
def relu_backward_inplace(out, grad):
    """grad = grad where out > 0 else 0, in place: `relu_backward(out, grad, grad)`
    without the aliasing that kept it scalar (see `relu_inplace`)."""
    zero = np.zeros(1, grad.dtype)[0]
    for i in prange(out.size):
        grad[i] = zero if out[i] <= 0 else grad[i]


@size_dispatched
def hardtanh_forward(x, out, lo, hi):
    """out = clamp(x, lo, hi) over flat arrays, NaN passing (ReLU6 is (0, 6)): one pass,
    where NumPy's clip and the boolean mask torch's backward needs took four."""
    for i in prange(x.size):
        v = x[i]
        out[i] = lo if v < lo else (hi if v > hi else v)


@size_dispatched
def hardtanh_backward(out, grad, grad_in, lo, hi):
    """grad_in = grad where lo < out < hi else 0 (torch's hardtanh_backward: a select;
    from the output, since lo < clamp(x) < hi exactly when lo < x < hi)."""
    zero = np.zeros(1, grad.dtype)[0]
    for i in prange(out.size):
        v = out[i]
        grad_in[i] = grad[i] if (v > lo and v < hi) else zero
