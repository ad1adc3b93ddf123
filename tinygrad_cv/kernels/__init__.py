"""Compute kernels behind conv2d, pooling and ReLU: `cpu` (Numba, a package by family)
and `gpu` (CuPy) twins.

Both modules expose the same functions with the same arguments, so an op picks one with
`kernels_for(xp)` and the rest of its code is shared. Importing this package imports
neither Numba kernels' compiled code nor CuPy; each module loads on first use.
"""
from __future__ import annotations

import numpy as np


def kernels_for(xp):
    """The kernel module for array module `xp`: `cpu` for numpy, `gpu` for cupy."""
    if xp is np:
        from . import cpu
        return cpu
    from . import gpu
    return gpu
