"""What every transform shares: input kinds, batches, and the basic conversions.

A transform takes what torchvision's take: a PIL image, or a tensor image (..., C, H, W)
(our Tensor); a NumPy/CuPy array is read as a PIL-style image, H x W or H x W x C.
`t.apply_batch(batch)` transforms a whole batch at once: a Tensor (N, C, H, W) or an
array (N, H, W) / (N, H, W, C) as in-memory datasets hold their images (uint8 as
stored); random transforms draw each sample's parameters separately. Arrays follow
torchvision's tensor semantics, so a batched Resize or ColorJitter may differ by a
rounding step from the same transform on each sample's PIL image (where Pillow
computes). Outputs have the kind and layout of the input. Transforms are
preprocessing: no gradient is recorded.
"""
from __future__ import annotations

import enum
import numbers

import numpy as np

from ..backend import device_of_array, is_device_array, xp_of
from ..random import generator_for
from ..tensor import Tensor, wrap_array
from . import array_ops as F


def supports_batches(transform) -> bool:
    """True when `transform` can be applied to a whole batch with `apply_batch`."""
    flag = getattr(transform, "supports_batches", None)
    if flag is not None:
        return bool(flag)
    return callable(getattr(transform, "apply_batch", None))


def rng():
    """The generator random transforms draw from: `tc.manual_seed`'s CPU generator."""
    return generator_for("cpu")


def is_pil(img):
    return hasattr(img, "getdata") and hasattr(img, "mode") and hasattr(img, "size")


def _wrap(arr) -> Tensor:
    return wrap_array(arr, device_of_array(arr))


class InterpolationMode(str, enum.Enum):
    """torchvision's interpolation names (also accepted as strings)."""
    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


_PIL_FILTERS = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "box": 4,
                "hamming": 5}
_FROM_PIL_INT = {v: k for k, v in _PIL_FILTERS.items()}


def interpolation_name(value) -> str:
    """'nearest', 'bilinear', ... from an InterpolationMode, a string or a PIL constant."""
    if isinstance(value, InterpolationMode):
        return value.value
    if isinstance(value, numbers.Integral) and int(value) in _FROM_PIL_INT:
        return _FROM_PIL_INT[int(value)]
    if isinstance(value, str) and value.lower() in {m.value for m in InterpolationMode}:
        return value.lower()
    raise TypeError(f"interpolation should be an InterpolationMode, its name or a Pillow "
                    f"filter constant, got {value!r}")


def pil_filter(name):
    return _PIL_FILTERS[name if name != "nearest-exact" else "nearest"]


class Layout:
    """How an input maps to a (..., C, H, W) array and back."""

    def __init__(self, kind, device=None, squeeze=False, pil_mode=None, palette=None):
        self.kind, self.device, self.squeeze, self.pil_mode = kind, device, squeeze, pil_mode
        self.palette = palette                      # a "P" image's palette, kept

    def restore(self, chw):
        if self.kind == "tensor":
            return wrap_array(chw, self.device)
        xp = xp_of(chw)
        hwc = xp.moveaxis(chw, -3, -1)
        if self.squeeze and hwc.shape[-1] == 1:
            hwc = hwc[..., 0]
        hwc = xp.ascontiguousarray(hwc)
        if self.kind == "pil":
            from PIL import Image
            if self.pil_mode == "P" and hwc.ndim == 2 and hwc.dtype == np.uint8:
                image = Image.fromarray(hwc, mode="P")
                image.putpalette(self.palette)
                return image
            mode = self.pil_mode if self.pil_mode in ("L", "RGB", "RGBA", "F", "I") else None
            if hwc.ndim == 3 and hwc.shape[-1] == 3:
                mode = "RGB" if hwc.dtype == np.uint8 else mode
            elif hwc.ndim == 2 and hwc.dtype == np.uint8:
                mode = "L"
            return Image.fromarray(hwc, mode=mode) if mode else Image.fromarray(hwc)
        return hwc


def to_chw(img, batch, name):
    """`(array (..., C, H, W), Layout)` of a PIL image, Tensor or HWC array (a batch
    when `batch`: N x H x W (x C) arrays, N x C x H x W Tensors)."""
    if isinstance(img, Tensor):
        if (batch and img.ndim != 4) or img.ndim < 2:
            raise ValueError(f"{name}: expected a tensor "
                             f"{'batch (N, C, H, W)' if batch else 'image (..., H, W)'}, "
                             f"got shape {tuple(img.shape)}")
        return img.data, Layout("tensor", img.device_str)
    if is_pil(img):
        arr = np.array(img)
        if img.mode == "1":
            arr = arr.astype(np.uint8) * 255
        kind, mode = "pil", img.mode
        palette = img.getpalette() if img.mode == "P" else None
    elif is_device_array(img):
        arr, kind, mode, palette = img, "array", None, None
    else:
        raise TypeError(f"{name}: expected a PIL image, a Tensor or a NumPy/CuPy array, "
                        f"got {type(img).__name__}")
    base = 3 if batch else 2
    if arr.ndim == base:
        return arr[..., None, :, :], Layout(kind, squeeze=True, pil_mode=mode,
                                            palette=palette)
    if arr.ndim == base + 1:
        return xp_of(arr).moveaxis(arr, -1, -3), Layout(kind, pil_mode=mode)
    raise ValueError(f"{name}: expected an image H x W or H x W x C"
                     f"{' batch (N, H, W[, C])' if batch else ''}, got shape {arr.shape}")


class Transform:
    """Base class: subclasses define `on_array(chw)`; random ones also `on_batch`, which
    draws parameters per sample; `on_pil(img)` where Pillow gives torchvision's result."""

    supports_batches = True

    def __call__(self, img):
        if is_pil(img):
            return self.on_pil(img)
        chw, layout = to_chw(img, False, type(self).__name__)
        return layout.restore(self.on_array(chw))

    def apply_batch(self, batch):
        chw, layout = to_chw(batch, True, type(self).__name__ + ".apply_batch")
        return layout.restore(self.on_batch(chw))

    def on_pil(self, img):
        chw, layout = to_chw(img, False, type(self).__name__)
        return layout.restore(self.on_array(chw))

    def on_array(self, chw):
        raise NotImplementedError

    def on_batch(self, chw):
        return self.on_array(chw)                 # deterministic: same op on every sample

    def __repr__(self):
        return f"{type(self).__name__}()"


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


class Lambda:
    """Apply a user function, as torchvision's Lambda (per image; not batched)."""

    supports_batches = False

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Argument lambd should be callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, img):
        return self.lambd(img)

    def __repr__(self):
        return f"{type(self).__name__}()"


def _raw_array(pic, name):
    """The raw array behind a Tensor, a NumPy/CuPy array or a PIL image."""
    if isinstance(pic, Tensor):
        return pic.data
    if is_device_array(pic):
        return pic
    if is_pil(pic):
        arr = np.array(pic)
        return arr.astype(np.uint8) * 255 if pic.mode == "1" else arr
    raise TypeError(f"{name}: expected a PIL image, a NumPy/CuPy array or a Tensor, "
                    f"got {type(pic).__name__}")


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
        if isinstance(batch, Tensor) and batch.ndim == 4:
            raise TypeError("ToTensor.apply_batch: the batch is already a tensor (N, C, H, "
                            "W); put ToTensor before tensor transforms")
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


class PILToTensor:
    """PIL image (or HxWxC array) -> Tensor CxHxW with the same dtype and values."""

    def __call__(self, pic):
        arr = _raw_array(pic, "PILToTensor")
        arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
        return _wrap(xp_of(arr).ascontiguousarray(arr))

    def apply_batch(self, batch):
        arr = _raw_array(batch, "PILToTensor.apply_batch")
        arr = arr[:, None] if arr.ndim == 3 else arr.transpose(0, 3, 1, 2)
        return _wrap(xp_of(arr).ascontiguousarray(arr))

    def __repr__(self):
        return "PILToTensor()"


class ConvertImageDtype(Transform):
    """Convert a tensor image to `dtype`, rescaling values as torchvision (uint8 255 ->
    float 1.0, float 1.0 -> uint8 255)."""

    def __init__(self, dtype):
        self.dtype = np.dtype(getattr(dtype, "numpy_dtype", dtype))

    def on_array(self, chw):
        return F.convert_image_dtype(chw, self.dtype)

    def __repr__(self):
        return f"ConvertImageDtype(dtype={self.dtype})"


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


def check_probability(p, name):
    if not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: probability p should be a number between 0 and 1, "
                         f"got {p!r}")
    return float(p)


class RandomApply:
    """Apply the list of `transforms` (in order) with probability `p`, else nothing."""

    def __init__(self, transforms, p=0.5):
        self.transforms = list(transforms)
        self.p = check_probability(p, "RandomApply")

    def __call__(self, img):
        if self.p < rng().random():
            return img
        for t in self.transforms:
            img = t(img)
        return img

    supports_batches = False

    def __repr__(self):
        return f"RandomApply(p={self.p}, transforms={self.transforms!r})"


class RandomChoice:
    """Apply one of `transforms`, picked with probabilities `p` (uniform by default)."""

    supports_batches = False

    def __init__(self, transforms, p=None):
        self.transforms = list(transforms)
        if p is not None and len(p) != len(self.transforms):
            raise ValueError(f"Length of p doesn't match the number of transforms: "
                             f"{len(p)} != {len(self.transforms)}")
        self.p = None if p is None else [float(v) / sum(p) for v in p]

    def __call__(self, img):
        k = int(rng().choice(len(self.transforms), p=self.p))
        return self.transforms[k](img)

    def __repr__(self):
        return f"RandomChoice(transforms={self.transforms!r}, p={self.p})"


class RandomOrder:
    """Apply `transforms` in a random order."""

    supports_batches = False

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, img):
        for k in rng().permutation(len(self.transforms)).tolist():
            img = self.transforms[k](img)
        return img

    def __repr__(self):
        return f"RandomOrder(transforms={self.transforms!r})"


class ToPILImage:
    """A tensor CxHxW (floats scaled by 255) or an HxWxC array as a PIL image."""

    supports_batches = False

    def __init__(self, mode=None):
        self.mode = mode

    def __call__(self, pic):
        from .functional import to_pil_image
        return to_pil_image(pic, self.mode)

    def __repr__(self):
        return f"ToPILImage(mode={self.mode})"
