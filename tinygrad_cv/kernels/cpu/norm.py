"""Batch normalisation in two passes per tensor, forward and backward.

Arrays are (N, C, L) views of an NCHW (or NC / NCL) tensor; every per-channel sum runs in
float64, as torch's CPU kernel accumulates. Forward: `channel_stats` (mean and biased
variance), then `scale_shift` writes out = x * a[c] + b[c] (a = w * invstd, b = bias -
mean * a, torch's form). Backward: `channel_grad_sums` (sum dy, sum (x - mean) dy), then
`batch_norm_input_grad` writes dx.
"""
from __future__ import annotations

from numba import prange

from .dispatch import size_dispatched


@size_dispatched(fastmath={"reassoc"})
def channel_stats(x, mean, var):
    """mean[c] and the biased variance var[c] (float64) of x (N, C, L) over N and L; two
    passes over each channel (the second around the mean, for accuracy)."""
    n, channels, length = x.shape
    count = n * length
    for c in prange(channels):
        total = 0.0
        for i in range(n):
            for k in range(length):
                total += x[i, c, k]
        m = total / count
        squares = 0.0
        for i in range(n):
            for k in range(length):
                d = x[i, c, k] - m
                squares += d * d
        mean[c] = m
        var[c] = squares / count


@size_dispatched
def scale_shift(x, a, b, out):
    """out[:, c] = x[:, c] * a[c] + b[c] over (N, C, L) arrays (a, b in x's dtype)."""
    n, channels, length = x.shape
    for c in prange(channels):
        ac, bc = a[c], b[c]
        for i in range(n):
            for k in range(length):
                out[i, c, k] = x[i, c, k] * ac + bc


@size_dispatched(fastmath={"reassoc"})
def channel_grad_sums(x, grad, mean, sum_grad, dot):
    """sum_grad[c] = sum dy and dot[c] = sum (x - mean[c]) * dy over N and L (float64)."""
    n, channels, length = x.shape
    for c in prange(channels):
        s = 0.0
        d = 0.0
        m = mean[c]
        for i in range(n):
            for k in range(length):
                g = grad[i, c, k]
                s += g
                d += (x[i, c, k] - m) * g
        sum_grad[c] = s
        dot[c] = d


@size_dispatched
def batch_norm_input_grad(x, grad, mean, mean_grad, k_coef, scale, out):
    """dx[:, c] = (dy - mean_grad[c] - (x - mean[c]) * k_coef[c]) * scale[c] (training
    backward; all coefficients in x's dtype)."""
    n, channels, length = x.shape
    for c in prange(channels):
        m, mg, kc, sc = mean[c], mean_grad[c], k_coef[c], scale[c]
        for i in range(n):
            for k in range(length):
                out[i, c, k] = (grad[i, c, k] - mg - (x[i, c, k] - m) * kc) * sc
