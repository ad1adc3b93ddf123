"""CPU memory policy, in one place: recycled output arrays, per-thread scratch space, and
the ownership test that lets the engine write into an array instead of copying it.

Why: every training step allocates the same large activation and gradient arrays again.
A fresh multi-megabyte NumPy array is fresh memory from the OS whenever glibc has given
the previous one back, and touching it costs a page fault per 4 KiB: ~2 ms for the
MNIST CNN's 9 MB conv2 activation, more than the ReLU computed into it.

- `empty(shape, dtype, xp)`: an output array. On the CPU, large ones are views of pooled
  byte buffers; a buffer is free again once nothing but the pool references it, which
  CPython's reference count says exactly (every array using the memory holds a reference
  to the buffer through its `.base`). So a buffer is never reused while any array can
  still see it, whatever the graph, the user or a saved context keeps. On the GPU it is
  CuPy's `empty` (CuPy's memory pool already recycles).
- `workspace(shape, dtype, xp, slot)`: scratch for the duration of one kernel call (conv's
  column buffers), one per thread and slot, kept across calls up to `WORKSPACE_KEEP_BYTES`.
- `owns_gradient(arr, holders)`: an array only the engine holds may be written in place.
- `clear()`: drop every pooled buffer and workspace.

Python 3.14 may borrow references, which would break the counts, so there the pool is off
and `owns_gradient` answers False. Everything here is thread-safe: the pool is guarded by
a lock, the workspaces are per thread.
"""
from __future__ import annotations

import math
import sys
import sysconfig
import threading

import numpy as np

from .backend import xp_of

MIN_BYTES = 1 << 16
"""Smaller arrays come from NumPy directly (above it a fresh array page-faults on every
step when glibc trims its heap: benchmarks/README.md, "Decisions")."""

MAX_POOL_BYTES = 256 * 2**20
"""Total size of the pooled buffers (busy or free); beyond it arrays are not pooled."""

WORKSPACE_KEEP_BYTES = 128 * 2**20
"""Workspaces up to this size are kept for reuse; larger ones are freed after use."""

REFCOUNTS_EXACT = (hasattr(sys, "getrefcount") and sys.version_info < (3, 14)
                   and not sysconfig.get_config_var("Py_GIL_DISABLED"))
"""CPython before 3.14 (with the GIL) counts every reference an object has."""

_lock = threading.Lock()
_pool = {}          # nbytes -> list of uint8 buffers
_pooled_bytes = 0

_workspace = threading.local()
_all_slots = []               # every thread's slot dict, so clear() frees them all


# ----------------------------------------------------------------------------- outputs

def empty(shape, dtype, xp=np):
    """An uninitialised C-contiguous array of array module `xp`; on the CPU in recycled
    memory when large."""
    if xp is not np:
        return xp.empty(shape, dtype)
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if not REFCOUNTS_EXACT or nbytes < MIN_BYTES:
        return np.empty(shape, dtype)
    with _lock:
        raw = _free_buffer(nbytes)
        if raw is None:
            raw = _new_buffer(nbytes)
        return raw[:nbytes].view(dtype).reshape(shape)


def empty_like(arr):
    """`empty(arr.shape, arr.dtype)` in `arr`'s memory order: a C- or Fortran-contiguous
    array for a C- or Fortran-contiguous one (e.g. Linear's transposed-GEMM output)."""
    xp = xp_of(arr)
    if xp is not np:
        return xp.empty_like(arr)
    if arr.flags.c_contiguous or not arr.flags.f_contiguous:
        return empty(arr.shape, arr.dtype)
    return empty(arr.shape[::-1], arr.dtype).T


def _free_buffer(nbytes):
    """A free pooled buffer of exactly `nbytes`, else the smallest free one of at most
    twice that (lending it keeps the step's peak down), else None. Caller holds the lock."""
    for raw in _pool.get(nbytes, ()):
        if sys.getrefcount(raw) == 3:     # the bucket list, `raw`, getrefcount's argument
            return raw
    best = None
    for size, bucket in _pool.items():
        if nbytes < size <= 2 * nbytes and (best is None or size < best.nbytes):
            for raw in bucket:
                if sys.getrefcount(raw) == 3:
                    best = raw
                    break
    return best


def _new_buffer(nbytes):
    """A fresh byte buffer, pooled while the pool is under its cap. Caller holds the lock."""
    global _pooled_bytes
    raw = np.empty(nbytes, np.uint8)
    if _pooled_bytes + nbytes <= MAX_POOL_BYTES:
        _pool.setdefault(nbytes, []).append(raw)
        _pooled_bytes += nbytes
    return raw


def is_exclusive_view(arr):
    """True when `arr` is the only array using its pooled buffer."""
    base = arr.base
    if base is None or type(base) is not np.ndarray or base.base is not None:
        return False
    with _lock:
        bucket = _pool.get(base.nbytes)
        if bucket is None or not any(raw is base for raw in bucket):
            return False
        # references: the bucket list, arr.base, the local `base`, getrefcount's argument
        return sys.getrefcount(base) == 4


def owns_gradient(arr, holders):
    """True when `arr` is a NumPy array whose memory only `holders` references reach (the
    caller's variables: e.g. the engine's and a backward's parameter), no tensor, no other
    node, no view. Such an array is the engine's own scratch: it can become a leaf's
    `.grad` without a copy, or a backward can write its result into it."""
    if not (REFCOUNTS_EXACT and type(arr) is np.ndarray and arr.flags.writeable
            and sys.getrefcount(arr) <= holders + 2):
        return False
    return arr.base is None or is_exclusive_view(arr)


def sole_owner(arr, holders):
    """True when `holders` references (the caller's) are all that reach `arr`'s memory:
    `arr` is a NumPy array with exactly that many references, owning its data or a view
    of a NumPy array (a pooled buffer or another owner) that no other array or object
    references. NumPy makes every view point at the owner of the memory, so any other
    view of it would show in the owner's count."""
    if not (REFCOUNTS_EXACT and type(arr) is np.ndarray
            and sys.getrefcount(arr) == holders + 2):     # + our parameter and argument
        return False
    base = arr.base
    if base is None:
        return True
    if type(base) is not np.ndarray or base.base is not None:
        return False
    with _lock:
        bucket = _pool.get(base.nbytes, ())
        pooled = any(raw is base for raw in bucket)
        # arr.base, the local `base`, getrefcount's argument (+ the bucket list if pooled)
        return sys.getrefcount(base) == 3 + pooled


# ----------------------------------------------------------------------------- scratch

def workspace(shape, dtype, xp=np, slot="columns"):
    """Scratch for one kernel call: on the CPU this thread's workspace `slot`, reused across
    calls (no page faults after the first); on the GPU a fresh array from CuPy's pool.
    The caller must be done with it before asking for the same slot again."""
    if xp is not np:
        return xp.empty(shape, dtype=dtype)
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    return _scratch_bytes(nbytes, slot).view(dtype).reshape(shape)


def _scratch_bytes(nbytes, slot):
    slots = getattr(_workspace, "slots", None)
    if slots is None:
        slots = _workspace.slots = {}
        with _lock:
            _all_slots.append(slots)
    buffer = slots.get(slot)
    if buffer is None or buffer.nbytes < nbytes:
        # page-aligned: the kernels' unit-stride rows then never straddle an extra cache
        # line, whatever address malloc gives
        raw = np.empty(nbytes + 4096, dtype=np.uint8)
        offset = (-raw.ctypes.data) % 4096
        buffer = raw[offset:offset + nbytes]
        if nbytes <= WORKSPACE_KEEP_BYTES:
            slots[slot] = buffer
    return buffer[:nbytes]


def clear():
    """Drop every pooled buffer and every thread's workspaces (memory in use by live arrays
    stays theirs); call it when no op is running."""
    global _pooled_bytes
    with _lock:
        _pool.clear()
        _pooled_bytes = 0
        for slots in _all_slots:
            slots.clear()
