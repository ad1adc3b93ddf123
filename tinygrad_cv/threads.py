"""Thread count of the CPU backend, as `torch.set_num_threads` / `torch.get_num_threads`.

Two thread pools do the CPU work: the BLAS library under NumPy (the GEMMs) and Numba's
(im2col, col2im, pooling kernels; only for huge arrays, see below). `set_num_threads(n)`
sets both, the BLAS one via `threadpoolctl`. The two never nest: kernels never call BLAS
inside a parallel loop. conv2d instead splits its batch into n parts run by n threads
(`tinygrad_cv/parallel.py`), each with serial kernels and BLAS at one thread.

The pools alternate many times per training step, so idle threads must get off the
cores quickly: Numba's OpenMP layer and OpenBLAS's default 0.1 s spin-wait made a step
10-50x slower under load, while Numba's `workqueue` layer (workers sleep when idle) and a
~0.3 ms OpenBLAS spin ran steadily (benchmarks/README.md, "Decisions"); a workqueue launch
still costs ~100 us, which is why all but huge kernel calls run serially on the calling
thread (kernels/cpu/dispatch.py). So, at import, unless the
user chose otherwise through the environment:
- Numba's threading layer is set to `workqueue` (safe here: our kernels hold the GIL, so
  two Python threads never launch parallel kernels at once);
- `OPENBLAS_THREAD_TIMEOUT=20` is put in the environment, which OpenBLAS reads when it
  loads: it only takes effect if this module is imported before NumPy (PyTorch imports
  NumPy: import tinygrad_cv first). It only concerns NumPy's OpenBLAS (PyTorch uses MKL).
"""
from __future__ import annotations

import numbers
import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")

_blas_limiter = None   # the threadpoolctl limiter holding the BLAS thread count


def _prefer_sleeping_numba_threads():
    """Use Numba's workqueue layer unless NUMBA_THREADING_LAYER says otherwise."""
    if "NUMBA_THREADING_LAYER" in os.environ:
        return
    import numba

    numba.config.THREADING_LAYER = "workqueue"


_prefer_sleeping_numba_threads()


def set_num_threads(n):
    """Use `n` threads for Numba kernels and for BLAS (e.g. GEMMs in conv and linear)."""
    global _blas_limiter
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    import numba
    import numpy  # noqa: F401  (loads the BLAS library threadpoolctl must find)
    from threadpoolctl import threadpool_limits

    n = int(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    _blas_limiter = threadpool_limits(limits=n, user_api="blas")


def get_num_threads():
    """The number of threads Numba kernels use (set together with BLAS's)."""
    import numba

    return numba.get_num_threads()
