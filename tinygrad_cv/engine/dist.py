"""The Runner's view of the processes it runs in: the extension point for a launcher.

`LocalProcess` (launcher="none") is one process: rank 0 of 1, sums are identities.
A distributed launcher provides an object with the same four members:

    rank, world_size         ints
    is_main_process          True on the rank that logs and writes checkpoints
    sum(array) -> array      the element-wise sum of `array` over all ranks (NumPy in
                             and out), used to reduce validation loss and metric counts
    barrier()                wait for every rank

and registers it in `LAUNCHERS` ("mpi" -> a factory). The Runner writes the metrics
file, the console lines and the checkpoints only where `is_main_process`.

"mpi" is `tinygrad_cv.distributed.engine_process()` (opens the default MPI process group;
an error outside mpiexec). What else a distributed run changes in the Runner (DDP, split
loaders, per-rank random states in checkpoints, agreed stop signals) is in
distributed_run.py; see docs/distributed.md.
"""
from __future__ import annotations

import numpy as np

from ..errors import UserError


class LocalProcess:
    """A single process (no launcher)."""

    rank = 0
    world_size = 1
    is_main_process = True

    @staticmethod
    def sum(array):
        return np.asarray(array)

    @staticmethod
    def barrier():
        return None


def _mpi_process():
    try:
        from .. import distributed   # tinygrad_cv.distributed (optional extra "dist")
    except ImportError:
        raise UserError("launcher='mpi' needs tinygrad_cv.distributed and the optional extra "
                        "'dist' (mpi4py); neither is available here") from None
    factory = getattr(distributed, "engine_process", None)
    if factory is None:
        raise UserError("launcher='mpi': this tinygrad_cv.distributed has no engine_process() "
                        "for the Runner yet")
    return factory()


LAUNCHERS = {"none": LocalProcess, "mpi": _mpi_process}


def process_for(launcher):
    """The process object of a launcher name (see the module docstring)."""
    if launcher not in LAUNCHERS:
        raise UserError(f"unknown launcher {launcher!r}; expected one of {', '.join(LAUNCHERS)}")
    return LAUNCHERS[launcher]()
