"""Inline Numba helpers shared by the conv and pooling kernels: valid index ranges and
unsigned-offset runs (copy, add, zero) that LLVM vectorises."""
from __future__ import annotations

from numba import njit, uint64


@njit(cache=True, inline="always")
def _valid_range(start, step, size, count):
    """Indices t in [lo, hi) with 0 <= start + t * step < size (step > 0), lo <= hi."""
    lo = 0
    if start < 0:
        lo = (-start + step - 1) // step
    last = size - 1 - start
    hi = last // step + 1 if last >= 0 else 0
    if hi > count:
        hi = count
    if lo > count:
        lo = count
    if hi < lo:
        hi = lo
    return lo, hi


@njit(cache=True, inline="always")
def _zero_run(flat, start, count):
    """flat[start : start + count] = 0, with an unsigned index."""
    for k in range(uint64(count)):
        flat[start + k] = 0


@njit(cache=True, inline="always")
def _copy_run(src_flat, src, src_step, dst_flat, dst, count):
    """dst_flat[dst + k] = src_flat[src + k * src_step] for k < count (unsigned)."""
    if src_step == 1:
        for k in range(uint64(count)):
            dst_flat[dst + k] = src_flat[src + k]
    else:
        step = uint64(src_step)
        for k in range(uint64(count)):
            dst_flat[dst + k] = src_flat[src + k * step]


@njit(cache=True, inline="always")
def _add_run(src_flat, src, dst_flat, dst, dst_step, count):
    """dst_flat[dst + k * dst_step] += src_flat[src + k] for k < count (unsigned)."""
    if dst_step == 1:
        for k in range(uint64(count)):
            dst_flat[dst + k] += src_flat[src + k]
    else:
        step = uint64(dst_step)
        for k in range(uint64(count)):
            dst_flat[dst + k * step] += src_flat[src + k]
