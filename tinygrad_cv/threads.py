"""Thread count of the CPU backend, as `torch.set_num_threads` / `torch.get_num_threads`.

Two thread pools do the CPU work: Numba's (im2col, col2im, pooling kernels) and the
BLAS library under NumPy (the GEMMs). `set_num_threads(n)` sets both, the BLAS one via
`threadpoolctl`. The two never nest: kernels never call BLAS inside a parallel loop.
"""
from __future__ import annotations

import numbers

_blas_limiter = None   # the threadpoolctl limiter holding the BLAS thread count


def set_num_threads(n):
    """Use `n` threads for Numba kernels and for BLAS (e.g. GEMMs in conv and linear)."""
    global _blas_limiter
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    import numba
    from threadpoolctl import threadpool_limits

    n = int(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    import numpy  # noqa: F401  (loads the BLAS library threadpoolctl must find)
    _blas_limiter = threadpool_limits(limits=n, user_api="blas")


def get_num_threads():
    """The number of threads Numba kernels use (set together with BLAS's)."""
    import numba

    return numba.get_num_threads()
