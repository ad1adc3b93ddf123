"""tinygrad_cv.distributed: data-parallel training over MPI, torch.distributed's API.

    import tinygrad_cv.distributed as dist
    dist.init_process_group(backend="mpi")          # launched by: mpiexec -n N python train.py
    model = nn.parallel.DistributedDataParallel(model)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)        # in place, on every rank

Collectives work on host memory (CUDA tensors go through a host copy: no CUDA-aware MPI
is assumed). Needs the optional `dist` extra (mpi4py + the mpich wheel); importing this
package does not import mpi4py, only `init_process_group` does. While a group is open,
every wait on other ranks is bounded by its timeout and an uncaught exception in any
rank aborts the whole job (faults.py). See docs/distributed.md.
"""
from .collectives import ReduceOp, Work, all_gather, all_reduce, barrier, broadcast
from .engine import EngineProcess, engine_process
from .faults import DistributedTimeoutError
from .group import (DEFAULT_TIMEOUT_S, destroy_process_group, environment_world_size,
                    get_backend, get_local_rank, get_local_world_size, get_rank,
                    get_world_size, init_process_group, is_available, is_initialized,
                    is_main_process, is_mpi_available)

__all__ = [
    "init_process_group", "destroy_process_group", "is_available", "is_mpi_available",
    "is_initialized", "get_backend", "get_rank", "get_world_size", "get_local_rank",
    "get_local_world_size", "is_main_process", "environment_world_size", "ReduceOp", "Work",
    "all_reduce", "broadcast", "all_gather", "barrier", "DistributedTimeoutError",
    "DEFAULT_TIMEOUT_S", "engine_process", "EngineProcess",
]
