"""Devices: "cpu" runs on NumPy, "cuda" on CuPy (imported lazily, only when asked for).

Everything that needs to know which array module a tensor lives on asks this module,
so ops never import cupy themselves.
"""
from __future__ import annotations

import numpy as np

_cupy = None          # the cupy module once imported successfully
_cupy_error = None    # why importing cupy (or finding a GPU) failed, if it did


class device:
    """A device, as `torch.device`: `device("cpu")`, `device("cuda")`, `device("cuda:1")`.

    Compares equal to its string form, so `t.device == "cpu"` works.
    """

    __slots__ = ("type", "index")

    def __init__(self, spec="cpu", index=None):
        if isinstance(spec, device):
            spec, index = spec.type, spec.index if index is None else index
        if not isinstance(spec, str):
            raise TypeError(f"device: expected a string like 'cpu' or 'cuda:0', got {spec!r}")
        name, _, num = spec.partition(":")
        if name not in ("cpu", "cuda"):
            raise ValueError(f"device: unknown device type {spec!r}; expected 'cpu' or 'cuda[:N]'")
        if num:
            if not num.isdigit():
                raise ValueError(f"device: bad device index in {spec!r}")
            index = int(num)
        if name == "cpu":
            index = None
        elif index is None:
            index = 0
        self.type = name
        self.index = index

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device(type='{self.type}'" + ("" if self.index is None else f", index={self.index}") + ")"

    def __eq__(self, other):
        if isinstance(other, (str, device)):
            try:
                other = device(other)
            except (TypeError, ValueError):
                return False
            return self.type == other.type and self.index == other.index
        return NotImplemented

    def __hash__(self):
        return hash(str(self))


def canonical_device(spec) -> str:
    """'cpu', 'cuda' -> 'cuda:0', device objects and None (-> 'cpu') to the canonical string."""
    if spec is None:
        return "cpu"
    return str(device(spec))


def _import_cupy():
    global _cupy, _cupy_error
    if _cupy is not None:
        return _cupy
    if _cupy_error is not None:
        raise RuntimeError(_cupy_error)
    try:
        import cupy
    except ImportError as exc:
        _cupy_error = (f"device 'cuda' needs CuPy, which is not installed ({exc}); "
                       "install it with: pip install -e '.[gpu]'")
        raise RuntimeError(_cupy_error) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing, no GPU, ...
        count, why = 0, f"{type(exc).__name__}: {exc}"
    else:
        why = "no CUDA device was found"
    if count == 0:
        _cupy_error = f"device 'cuda' was asked for, but CuPy cannot use a GPU here ({why})"
        raise RuntimeError(_cupy_error)
    _cupy = cupy
    return cupy


def cuda_is_available() -> bool:
    """True when CuPy imports and sees at least one GPU. Never raises."""
    try:
        _import_cupy()
        return True
    except RuntimeError:
        return False


def array_module(dev: str):
    """The array module (numpy or cupy) for a canonical device string."""
    if dev == "cpu":
        return np
    return _import_cupy()


def xp_of(arr):
    """The array module (numpy or cupy) a raw array belongs to."""
    if isinstance(arr, (np.ndarray, np.generic)):
        return np
    return _import_cupy()


def device_of_array(arr) -> str:
    """The canonical device of a raw array: NumPy arrays live on 'cpu'."""
    if isinstance(arr, np.ndarray) or np.isscalar(arr):
        return "cpu"
    if _cupy is not None and isinstance(arr, _cupy.ndarray):
        return f"cuda:{arr.device.id}"
    mod = type(arr).__module__
    if mod.startswith("cupy"):
        cp = _import_cupy()
        return f"cuda:{cp.asarray(arr).device.id}"
    return "cpu"


def is_device_array(obj) -> bool:
    """True for a NumPy array or (once cupy is imported) a CuPy array."""
    if isinstance(obj, np.ndarray):
        return True
    return _cupy is not None and isinstance(obj, _cupy.ndarray) or type(obj).__module__.startswith("cupy")


def transfer(arr, dev: str):
    """Move a raw array to the canonical device `dev` (a no-op when it is already there)."""
    src = device_of_array(arr)
    if src == dev:
        return arr
    if dev == "cpu":
        return _import_cupy().asnumpy(arr)
    cp = _import_cupy()
    with cp.cuda.Device(int(dev.split(":")[1])):
        return cp.asarray(arr)


def to_numpy(arr) -> np.ndarray:
    """A host NumPy array for any raw array (copies only when it lives on a GPU)."""
    if isinstance(arr, np.ndarray):
        return arr
    if device_of_array(arr) == "cpu":
        return np.asarray(arr)
    return _import_cupy().asnumpy(arr)


def check_same_device(op: str, devices) -> str:
    """Raise if `devices` (canonical strings of an op's tensor inputs) are not all the same."""
    devices = list(devices)
    first = devices[0]
    for d in devices[1:]:
        if d != first:
            raise RuntimeError(f"{op}: expected all tensors on the same device, "
                               f"but found tensors on {first} and {d}")
    return first
