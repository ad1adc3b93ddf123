"""Image transforms with torchvision's names: `Compose`, `ToTensor`, `Normalize`.

Each transform works on one image (`t(img)`, torchvision's semantics) and, through
`t.apply_batch(batch)`, on a whole batch whose first dimension is the sample index. An
in-memory dataset applies its transform once per batch when `supports_batches(t)` holds,
which is what makes the DataLoader fast; any other callable still works per sample.
Transforms are preprocessing: they compute on raw arrays and record no gradient.
"""
from __future__ import annotations

import numbers

import numpy as np

from .backend import device_of_array, is_device_array, xp_of
from .tensor import Tensor


def supports_batches(transform) -> bool:
    """True when `transform` can be applied to a whole batch with `apply_batch`."""
    flag = getattr(transform, "supports_batches", None)
    if flag is not None:
        return bool(flag)
    return callable(getattr(transform, "apply_batch", None))


def _raw_array(pic, name):
    """The raw array behind a Tensor, a NumPy/CuPy array or a PIL image."""
    if isinstance(pic, Tensor):
        return pic.data
    if is_device_array(pic):
        return pic
    if hasattr(pic, "getdata") and hasattr(pic, "mode"):            # a PIL image
        arr = np.array(pic)
        return arr.astype(np.uint8) * 255 if pic.mode == "1" else arr
    raise TypeError(f"{name}: expected a PIL image, a NumPy/CuPy array or a Tensor, "
                    f"got {type(pic).__name__}")


def _wrap(arr) -> Tensor:
    return Tensor._wrap(arr, device_of_array(arr))


class Compose:
    """Apply `transforms` in order, as `torchvision.transforms.Compose`."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    @property
    def supports_batches(self):
        return all(supports_batches(t) for t in self.transforms)

    def apply_batch(self, batch):
        for t in self.transforms:
            if not supports_batches(t):
                raise TypeError(f"Compose.apply_batch: {t!r} works on single images only")
            batch = t.apply_batch(batch)
        return batch

    def __repr__(self):
        lines = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"{type(self).__name__}({lines}\n)"


class ToTensor:
    """PIL image or array HxW / HxWxC -> Tensor CxHxW; uint8 becomes float32 in [0, 1].

    As torchvision: other dtypes keep their values and dtype (only the layout changes).
    `apply_batch` takes NxHxW / NxHxWxC and returns NxCxHxW.
    """

    def __call__(self, pic):
        arr = _raw_array(pic, "ToTensor")
        if arr.ndim == 2:
            arr = arr[None, :, :]
        elif arr.ndim == 3:
            arr = arr.transpose(2, 0, 1)
        else:
            raise ValueError(f"ToTensor: expected an HxW or HxWxC image, got shape {arr.shape}")
        return _wrap(self._scale(arr))

    def apply_batch(self, batch):
        arr = _raw_array(batch, "ToTensor.apply_batch")
        if arr.ndim == 3:
            arr = arr[:, None, :, :]
        elif arr.ndim == 4:
            arr = arr.transpose(0, 3, 1, 2)
        else:
            raise ValueError(f"ToTensor.apply_batch: expected an NxHxW or NxHxWxC batch, "
                             f"got shape {arr.shape}")
        return _wrap(self._scale(arr))

    @staticmethod
    def _scale(arr):
        xp = xp_of(arr)
        if arr.dtype != np.uint8:
            return xp.ascontiguousarray(arr)
        out = xp.ascontiguousarray(arr, dtype=np.float32)
        return xp.divide(out, np.float32(255), out=out)

    def __repr__(self):
        return "ToTensor()"


class Normalize:
    """`(x - mean[c]) / std[c]` per channel, as `torchvision.transforms.Normalize`.

    Works on a float image CxHxW and on a batch NxCxHxW alike (any ...xCxHxW). A mean
    or std of one value applies to every channel. Returns a new Tensor unless
    `inplace=True`.
    """

    def __init__(self, mean, std, inplace=False):
        self.mean = tuple(float(m) for m in _as_sequence(mean))
        self.std = tuple(float(s) for s in _as_sequence(std))
        self.inplace = inplace
        if any(s == 0 for s in self.std):
            raise ValueError(f"Normalize: std {self.std} contains a zero, which would "
                             "divide by zero")

    def __call__(self, tensor):
        arr = _raw_array(tensor, "Normalize")
        if arr.dtype.kind != "f":
            raise TypeError(f"Normalize: input should be a float tensor, got {arr.dtype} "
                            "(apply ToTensor first)")
        if arr.ndim < 3:
            raise ValueError(f"Normalize: expected a tensor image of shape (..., C, H, W), "
                             f"got shape {tuple(arr.shape)}")
        channels = arr.shape[-3]
        for name, values in (("mean", self.mean), ("std", self.std)):
            if len(values) not in (1, channels):
                raise ValueError(f"Normalize: {name} has {len(values)} values but the input "
                                 f"of shape {tuple(arr.shape)} has {channels} channels")
        xp = xp_of(arr)
        mean = xp.asarray(self.mean, dtype=arr.dtype).reshape(-1, 1, 1)
        std = xp.asarray(self.std, dtype=arr.dtype).reshape(-1, 1, 1)
        if self.inplace:
            xp.subtract(arr, mean, out=arr)
            xp.divide(arr, std, out=arr)
            return tensor if isinstance(tensor, Tensor) else _wrap(arr)
        out = xp.subtract(arr, mean)
        return _wrap(xp.divide(out, std, out=out))

    def apply_batch(self, batch):
        return self(batch)

    def __repr__(self):
        return f"Normalize(mean={self.mean}, std={self.std})"


def _as_sequence(values):
    if isinstance(values, numbers.Real):
        return (values,)
    return tuple(np.asarray(values, dtype=np.float64).reshape(-1).tolist())
