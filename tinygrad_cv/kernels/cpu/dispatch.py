"""`@size_dispatched`: one Numba kernel compiled twice, called by the size of its arrays.

A kernel decorated with it is compiled with `parallel=True` (prange over Numba's
threads) and, on first small call, as a serial `nogil` twin (prange runs as range).
Calls whose largest array has fewer than `SERIAL_BELOW` elements run the serial twin on
the calling thread: a parallel launch costs more than a second core saves on these
memory-bound passes (benchmarks/README.md, "Decisions"). `.serial` and `.parallel` call
one version whatever the size; conv2d's batch split (tinygrad_cv/parallel.py) runs
`.serial` on several threads at once, which `nogil` allows.
"""
from __future__ import annotations

import functools
import types

from numba import njit

from ... import threads  # noqa: F401  (chooses Numba's threading layer before first use)

SERIAL_BELOW = 1 << 24
"""Element count (16 M: 64 MB of float32) from which a call uses Numba's threads."""


def _serial_twin(kernel, fastmath):
    """The same Python function compiled without `parallel`, under its own name so the
    two never share an on-disk cache entry."""
    py_func = kernel.py_func
    twin = types.FunctionType(py_func.__code__, py_func.__globals__,
                              py_func.__name__ + "_serial", py_func.__defaults__,
                              py_func.__closure__)
    twin.__qualname__ = py_func.__qualname__ + "_serial"
    twin.__doc__ = py_func.__doc__
    return njit(cache=True, nogil=True, fastmath=fastmath)(twin)


def size_dispatched(func=None, *, fastmath=False):
    """Decorator: `func` as a parallel Numba kernel with a serial twin, dispatched by size.
    `@size_dispatched(fastmath={"reassoc"})` lets LLVM reorder float sums (vectorised
    reductions), for kernels whose sums accumulate in float64; NaN and inf still follow
    IEEE (no "nnan"/"ninf" flags)."""
    if func is None:
        return lambda f: size_dispatched(f, fastmath=fastmath)
    kernel = njit(parallel=True, cache=True, fastmath=fastmath)(func)
    twin = []

    def serial(*args):
        if not twin:
            twin.append(_serial_twin(kernel, fastmath))
        return twin[0](*args)

    @functools.wraps(func)
    def call(*args):
        largest = 0
        for a in args:
            size = getattr(a, "size", 0)
            if size > largest:
                largest = size
        if largest >= SERIAL_BELOW:
            return kernel(*args)
        return serial(*args)

    call.parallel = kernel
    call.serial = serial
    return call
