"""`engine_process()`: the training engine's view of an MPI job (`Runner(launcher="mpi")`).

The Runner (tinygrad_cv/engine/dist.py) needs `rank`, `world_size`, `is_main_process`,
`sum(array)` and `barrier()`; this module provides them over the default process group,
which `engine_process()` opens unless the script already has. It adds the few
agreements the engine's distributed run needs (engine/distributed_run.py): one rank's
integer for all (`broadcast_int`, the seed), the largest of the ranks' integers (`max`,
"did any rank get a stop signal?") and every rank's bytes (`all_gather_bytes`, the
per-rank random states a checkpoint keeps). Every wait is bounded by the group's
timeout (faults.py).
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import UserError
from . import collectives
from .faults import wait_all
from .group import current_group, init_process_group, is_available, is_initialized

LAUNCHED_BY_MPIEXEC = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_SIZE")
"""Variables an MPI launcher sets in every rank (MPICH's hydra: PMI_*, Open MPI: OMPI_*,
PMIx-based launchers: PMIX_RANK)."""

RUN_COMMAND = "mpiexec -n N python -m tinygrad_cv train CONFIG --launcher mpi"


def launched_by_mpiexec() -> bool:
    """True when an MPI launcher started this process (read from the environment, without
    importing MPI)."""
    return any(name in os.environ for name in LAUNCHED_BY_MPIEXEC)


class EngineProcess:
    """One rank of the job, as the Runner sees it (see engine/dist.py's contract)."""

    def __init__(self):
        group = current_group()
        self._group = group
        self.rank = group.rank
        self.world_size = group.size

    @property
    def is_main_process(self) -> bool:
        return self.rank == 0

    def _allreduce(self, array, op, what):
        g = self._group
        send = np.array(array, order="C", copy=True).reshape(-1)   # 0-d arrays too
        out = np.empty_like(send)
        wait_all(g, [g.comm.Iallreduce(send, out, op=op)], what)
        return out.reshape(np.shape(array))

    def sum(self, array):
        """The element-wise sum of `array` over all ranks (a NumPy array, on every rank)."""
        arr = np.asarray(array)
        if arr.dtype.kind == "b":
            arr = arr.astype(np.int64)
        if arr.dtype.kind not in "iuf":
            raise TypeError(f"engine_process().sum: expected a numeric NumPy array, got "
                            f"dtype {arr.dtype}")
        return self._allreduce(arr, self._group.MPI.SUM,
                               f"summing a {arr.dtype} array of shape {arr.shape} over the "
                               f"ranks (validation metrics)")

    def max(self, value: int) -> int:
        """The largest of the ranks' integers, on every rank."""
        out = self._allreduce(np.array([int(value)], dtype=np.int64), self._group.MPI.MAX,
                              "agreeing whether any rank was asked to stop")
        return int(out[0])

    def broadcast_int(self, value: int, src: int = 0) -> int:
        """Rank `src`'s integer, on every rank."""
        g = self._group
        buf = np.array([int(value)], dtype=np.int64)
        wait_all(g, [g.comm.Ibcast(buf, root=src)], f"broadcasting an integer from rank {src}")
        return int(buf[0])

    def all_gather_bytes(self, payload: bytes, what: str):
        """Every rank's `payload`, in rank order, on every rank."""
        return collectives.all_gather_bytes(payload, what)

    def barrier(self):
        collectives.barrier()


def engine_process(timeout=None) -> EngineProcess:
    """The Runner's process object for `launcher="mpi"`: opens the default process group
    (unless open already) and returns this rank's `EngineProcess`.

    Raises UserError when mpi4py is missing or when the process was not started by an
    MPI launcher (a plain `python -m tinygrad_cv train ... --launcher mpi` would otherwise
    be a silent world of one)."""
    if not is_initialized():
        if not is_available():
            raise UserError("launcher='mpi' needs mpi4py and an MPI library: pip install "
                            "'tinygrad_cv[dist]' (mpi4py and the mpich wheel), then run: "
                            + RUN_COMMAND)
        if not launched_by_mpiexec():
            raise UserError("launcher='mpi': this process was not started by mpiexec (no "
                            f"{'/'.join(LAUNCHED_BY_MPIEXEC)} in the environment); run: "
                            + RUN_COMMAND)
        init_process_group(backend="mpi", timeout=timeout)
    return EngineProcess()
