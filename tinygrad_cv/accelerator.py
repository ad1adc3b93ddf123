"""`tc.accelerator`, as `torch.accelerator`: the one accelerator kind here is CUDA."""
from .backend import cuda_is_available, device


def is_available() -> bool:
    return cuda_is_available()


def current_accelerator():
    """`device('cuda')` when a GPU is usable, else None (as torch)."""
    return device("cuda") if cuda_is_available() else None
