"""tinygrad_cv.nn.parallel: `DistributedDataParallel` over MPI, as torch.nn.parallel."""
from .distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
