"""Shared pieces of the benchmarks: thread setup, machine report, models, data, timing.

Nothing heavy is imported at module import time: `configure_threads` must run before
NumPy, Numba or PyTorch are imported, because BLAS and OpenMP read their thread counts
from the environment when they load.
"""
from __future__ import annotations

import os
import platform
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

MODEL_NAMES = ("mlp", "lenet5", "mnist_cnn", "resnet20", "mobilenet_v2", "vgg11_bn")
"""The benchmarked models, by the names used on the command line and in the JSON."""

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                   "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


# --------------------------------------------------------------------------- threads

def configure_threads(n):
    """Pin BLAS, OpenMP and Numba to `n` threads through the environment.

    Call this before importing numpy/numba/torch; `apply_thread_limits` then sets the
    same number through the libraries' own calls once they are imported.
    """
    for name in THREAD_ENV_VARS:
        os.environ[name] = str(n)


def apply_thread_limits(n, torch=None):
    """Set `n` threads in tinygrad_cv (when it offers a setter) and in PyTorch.

    Returns a short description of how our engine's thread count was set.
    """
    how = "environment variables only"
    setter = _our_thread_setter()
    if setter is not None:
        setter(n)
        how = f"{setter.__module__}.set_num_threads({n})"
    if torch is not None:
        torch.set_num_threads(n)
    return how


def _our_thread_setter():
    """tinygrad_cv.set_num_threads or tinygrad_cv.threads.set_num_threads, if either exists."""
    try:
        import tinygrad_cv
    except Exception:
        return None
    if hasattr(tinygrad_cv, "set_num_threads"):
        return tinygrad_cv.set_num_threads
    try:
        from tinygrad_cv import threads
    except Exception:
        return None
    return getattr(threads, "set_num_threads", None)


def import_torch():
    """PyTorch, or None when it is not installed (the benchmarks then show only ours)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


# --------------------------------------------------------------------------- machine

def cpu_model():
    """The CPU's model name from /proc/cpuinfo (or platform's guess elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module_name):
    """A module's __version__, or 'not installed'."""
    try:
        module = __import__(module_name)
    except Exception:
        return "not installed"
    return getattr(module, "__version__", "unknown")


def blas_description():
    """Which BLAS NumPy uses and its thread count, via threadpoolctl when available."""
    try:
        import numpy  # noqa: F401  (loads the BLAS so threadpoolctl can see it)
        from threadpoolctl import threadpool_info
    except Exception:
        return "unknown"
    pools = [f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads)"
             for p in threadpool_info() if p.get("user_api") == "blas"]
    return ", ".join(pools) or "unknown"


def machine_info(threads, device, torch=None):
    """A dict describing the machine, versions and settings of this run."""
    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "numba": _version("numba"),
        "torch": torch.__version__ if torch is not None else "not installed",
        "blas": blas_description(),
        "threads": threads,
        "device": device,
        "MALLOC_MMAP_MAX_": os.environ.get("MALLOC_MMAP_MAX_", "unset"),
        "load_average_1min": _load_average(),
    }
    if device == "cuda":
        info["cupy"] = _version("cupy")
        if torch is not None and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _load_average():
    """The 1-minute load average when the run starts (other work makes timings noisy)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def print_machine_info(info):
    """Print the header of a benchmark run."""
    print(f"machine : {info['cpu']}, {info['cores']} cores ({info['platform']})")
    if "gpu" in info:
        print(f"gpu     : {info['gpu']}")
    versions = (f"python {info['python']}, numpy {info['numpy']}, numba {info['numba']}, "
                f"torch {info['torch']}")
    if "cupy" in info:
        versions += f", cupy {info['cupy']}"
    print(f"versions: {versions}")
    print(f"blas    : {info['blas']}")
    print(f"threads : {info['threads']} (ours: {info.get('thread_setting', '?')})")
    print(f"device  : {info['device']}")
    print(f"MALLOC_MMAP_MAX_: {info['MALLOC_MMAP_MAX_']}")
    print(f"load    : {info['load_average_1min']} (1-minute load average at start; "
          f"anything near or above the core count means noisy timings)")
    load, cores = info["load_average_1min"], info["cores"] or 1
    if load is not None and info["threads"] > 1 and load >= cores:
        print(f"WARNING: the machine is busy (load {load} on {cores} cores): multi-threaded "
              f"BLAS/OpenMP steps wait for descheduled threads and can run 10-100x slower "
              f"than on a quiet machine, in both frameworks; compare with --threads 1")


# --------------------------------------------------------------------------- models

def build_ours(name, device="cpu"):
    """Our model `name` (fresh PyTorch-style initialisation) on `device`."""
    import importlib

    import torch_models
    module_file, class_name = torch_models.MODULES[name]
    module = importlib.import_module(f"tinygrad_cv.models.{module_file}")
    model = getattr(module, class_name)()
    if device != "cpu":
        model.to(device)
    return model


def build_torch(name, torch, device="cpu", weights_from=None):
    """The PyTorch twin of model `name`; weights copied from our model when given.

    Copying goes through NumPy arrays of the state dict, so both frameworks start from
    bit-identical float32 weights and do the same work.
    """
    import torch_models
    model = torch_models.build(name)
    if weights_from is not None:
        state = {key: torch.from_numpy(_to_numpy(value).copy())
                 for key, value in weights_from.state_dict().items()}
        model.load_state_dict(state)
    return model.to(device)


def _to_numpy(value):
    """A tinygrad_cv tensor (on any device) as a host NumPy array."""
    array = value.numpy() if hasattr(value, "numpy") else value
    if hasattr(array, "get"):  # a CuPy array
        array = array.get()
    return array


def outputs_log_probs(name):
    """True when the model ends in log_softmax (train with nll_loss, else cross_entropy)."""
    return name == "mnist_cnn"


# --------------------------------------------------------------------------- data

def input_shape(name):
    """One image's shape for model `name`: CIFAR's 3x32x32 or MNIST's 1x28x28."""
    import torch_models
    return (3, 32, 32) if name in torch_models.CIFAR_MODELS else (1, 28, 28)


def synthetic_batch(batch_size, seed=0, name="mnist_cnn"):
    """Float32 images (N, *input_shape(name)) and int64 labels in [0, 10), fixed seed."""
    import numpy as np
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batch_size,) + input_shape(name)).astype(np.float32)
    labels = rng.integers(0, 10, size=batch_size).astype(np.int64)
    return images, labels


# --------------------------------------------------------------------------- timing

def synchronizer(framework, device, torch=None):
    """A function that waits for queued GPU work of `framework` (a no-op on CPU)."""
    if device != "cuda":
        return lambda: None
    if framework == "torch":
        return torch.cuda.synchronize
    import tinygrad_cv
    return tinygrad_cv.cuda.synchronize


def timed(fn, sync):
    """Seconds taken by `fn()`, with the device synchronised before both clock reads."""
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def median_call_seconds(fn, reps, warmup=3):
    """Median wall time of `fn()` in seconds over `reps` calls, after `warmup` untimed
    calls (CPU only: nothing is synchronised)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return median(times)


def median(values):
    """The median of a non-empty list of numbers."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return 0.5 * (ordered[middle - 1] + ordered[middle])


def peak_rss_mb():
    """This process's peak resident set size so far, in MiB.

    On Linux this reads VmHWM from /proc/self/status rather than `ru_maxrss`: a child
    started by a large parent inherits the parent's `ru_maxrss` through fork and exec
    (measured here: a 100 MiB child reported the 370 MiB of its parent), while VmHWM
    belongs to the child's own address space. Elsewhere it falls back to `ru_maxrss`.
    """
    value = _proc_status_mb("VmHWM:")
    return ru_maxrss_mb() if value is None else value


def ru_maxrss_mb():
    """getrusage's ru_maxrss in MiB (it counts a forked parent's peak too; see above)."""
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.platform == "darwin":  # bytes on macOS, KiB on Linux
        peak /= 1024
    return peak / 1024


def _proc_status_mb(field):
    """A memory field (in kB) of /proc/self/status as MiB, or None when unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def current_rss_mb():
    """This process's current resident set size in MiB (Linux; else the peak)."""
    value = _proc_status_mb("VmRSS:")
    return peak_rss_mb() if value is None else value
