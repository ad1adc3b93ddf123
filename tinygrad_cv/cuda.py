"""`tc.cuda`: is a CUDA GPU usable through CuPy? (never imports cupy at package import)."""
from .backend import cuda_is_available


def is_available() -> bool:
    return cuda_is_available()


def device_count() -> int:
    if not cuda_is_available():
        return 0
    import cupy
    return cupy.cuda.runtime.getDeviceCount()


def synchronize() -> None:
    """Wait for queued GPU work (for timing); a no-op without a GPU."""
    if cuda_is_available():
        import cupy
        cupy.cuda.get_current_stream().synchronize()
