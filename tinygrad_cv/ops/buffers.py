"""Recycled output arrays for the hot CPU ops (conv, pooling, ReLU, Linear).

Why: every training step allocates the same large activation and gradient arrays again.
A fresh multi-megabyte NumPy array is fresh memory from the OS whenever glibc has given
the previous one back (always with its default mmap threshold, and at the heap's top
with MALLOC_MMAP_MAX_=0), and touching it costs a page fault per 4 KiB: ~2 ms for the
MNIST CNN's 9 MB conv2 activation, more than the ReLU computed into it.

How: `empty(shape, dtype)` hands out a view of a pooled byte buffer. A buffer is free
again once nothing but the pool references it -- CPython's reference count says so
exactly: every tensor, view or NumPy array still using the memory holds a reference to
the buffer (a view's `.base`). So a buffer is never reused while any array can still see
it, whatever the graph, the user or a saved context keeps. Python 3.14 may borrow
references, which would break that count, so there (and for small arrays and CuPy) it
is plain `empty`. The pool keeps at most `MAX_POOL_BYTES`; `clear()` empties it.
"""
from __future__ import annotations

import math
import sys

import numpy as np

MIN_BYTES = 1 << 16
"""Smaller arrays come from NumPy directly. Above it, a fresh array from a trimmed heap
(glibc with MALLOC_MMAP_MAX_=0 trims whenever 128 KiB lie free at the top) page-faults
on every step: the MLP's 784x256 weight gradient (800 KiB) cost ~50 faults a step.
64 KiB rather than 256 KiB also catches the MLP's and LeNet-5's mid-size activations
and gradients: faults per MLP training step 84 -> 8 and LeNet-5's 137 -> 10 (batch
64), and in alternating trials LeNet-5's step 6.1 -> 5.1 ms under both malloc
settings, the MLP's 1.29 -> 1.15 ms under MALLOC_MMAP_MAX_=0 (unchanged under the
default malloc, as was inference)."""

MAX_POOL_BYTES = 256 * 2**20
"""Total size of the pooled buffers (busy or free); beyond it arrays are not pooled. The
MNIST CNN at batch 256 pools ~160 MB (its activations and gradients); a 64 MB cap left
~2,000 page faults a step."""

_ENABLED = hasattr(sys, "getrefcount") and sys.version_info < (3, 14)
_pool = {}          # nbytes -> list of uint8 buffers
_pooled_bytes = 0


def empty(shape, dtype):
    """An uninitialised C-contiguous NumPy array, in recycled memory when large."""
    global _pooled_bytes
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if not _ENABLED or nbytes < MIN_BYTES:
        return np.empty(shape, dtype)
    bucket = _pool.setdefault(nbytes, [])
    for raw in bucket:
        # references: the bucket list, this loop variable, getrefcount's argument
        if sys.getrefcount(raw) == 3:
            return raw.view(dtype).reshape(shape)
    raw = _free_larger(nbytes)
    if raw is not None:
        return raw[:nbytes].view(dtype).reshape(shape)
    raw = np.empty(nbytes, np.uint8)
    if _pooled_bytes + nbytes <= MAX_POOL_BYTES:
        bucket.append(raw)
        _pooled_bytes += nbytes
    return raw.view(dtype).reshape(shape)


def _free_larger(nbytes):
    """The smallest free pooled buffer of more than `nbytes` and at most twice that, or
    None. Lending it (its first `nbytes`) instead of allocating keeps the step's peak
    down: e.g. conv2's input gradient (22 MB at batch 256) takes the 38 MB buffer that
    its ReLU mask has just left."""
    best = None
    for size, bucket in _pool.items():
        if nbytes < size <= 2 * nbytes and (best is None or size < best.nbytes):
            for raw in bucket:
                if sys.getrefcount(raw) == 3:     # the bucket, `raw`, the argument
                    best = raw
                    break
    return best


def is_exclusive_view(arr):
    """True when `arr` is the only array using its pooled buffer (its base is a pool
    buffer referenced by nothing but the pool and `arr` itself)."""
    base = arr.base
    if base is None or type(base) is not np.ndarray or base.base is not None:
        return False
    bucket = _pool.get(base.nbytes)
    if bucket is None or not any(raw is base for raw in bucket):
        return False
    # references: the bucket list, arr.base, the local `base`, getrefcount's argument
    return sys.getrefcount(base) == 4


def clear():
    """Drop every pooled buffer (memory in use by live arrays stays theirs)."""
    global _pooled_bytes
    _pool.clear()
    _pooled_bytes = 0
