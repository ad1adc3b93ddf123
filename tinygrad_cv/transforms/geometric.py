"""Geometric transforms with torchvision's parameters: resizing, cropping, padding,
flipping, rotating. On PIL images the ones Pillow computes in torchvision (resize,
rotate) use Pillow too; the rest, and tensors, use `array_ops`' kernels."""
from __future__ import annotations

import math
import numbers
import warnings


from ..backend import xp_of
from . import array_ops as F
from . import functional as TF
from ._base import (InterpolationMode, Transform, check_probability, interpolation_name,
                    pil_filter, rng, to_chw)


def setup_size(size, name):
    """(h, w) from an int or a 1- or 2-sequence, as torchvision's _setup_size."""
    if isinstance(size, numbers.Integral):
        return int(size), int(size)
    if isinstance(size, (list, tuple)) and len(size) == 1:
        return int(size[0]), int(size[0])
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return int(size[0]), int(size[1])
    raise ValueError(f"{name}: please provide only two dimensions (h, w) for size, got "
                     f"{size!r}")


def _check_padding_mode(mode):
    if mode not in ("constant", "edge", "reflect", "symmetric"):
        raise ValueError(f"Padding mode should be either constant, edge, reflect or "
                         f"symmetric, got {mode!r}")
    return mode


def _stack(arrays):
    return xp_of(arrays[0]).stack(arrays)


class Resize(Transform):
    """Resize to `size`: an int matches the smaller edge (aspect ratio kept, the other
    edge truncated, capped by `max_size`), (h, w) is exact. Tensors: 'nearest' or
    'bilinear', antialiased when shrinking if `antialias` (torchvision's default);
    PIL images: Pillow's resize with the chosen filter (always antialiased)."""

    def __init__(self, size, interpolation=InterpolationMode.BILINEAR, max_size=None,
                 antialias=True):
        if not isinstance(size, (numbers.Integral, list, tuple)) or (
                isinstance(size, (list, tuple)) and len(size) not in (1, 2)):
            raise TypeError(f"Resize: size should be an int or a sequence of 1 or 2 ints, "
                            f"got {size!r}")
        self.size = size if isinstance(size, numbers.Integral) else list(size)
        self.interpolation = interpolation_name(interpolation)
        self.max_size = max_size
        self.antialias = antialias

    def _output_size(self, h, w):
        return F.resized_output_size(h, w, self.size, self.max_size)

    def on_pil(self, img):
        return TF.resize(img, self.size, self.interpolation, self.max_size)

    def on_array(self, chw):
        size = self._output_size(*chw.shape[-2:])
        return F.resize(chw, size, self.interpolation, bool(self.antialias))

    def __repr__(self):
        return (f"Resize(size={self.size}, interpolation={self.interpolation}, "
                f"max_size={self.max_size}, antialias={self.antialias})")


class CenterCrop(Transform):
    """The central `size` crop (zero-padded first when the image is smaller)."""

    def __init__(self, size):
        self.size = setup_size(size, "CenterCrop")

    def on_array(self, chw):
        th, tw = self.size
        h, w = chw.shape[-2:]
        if tw > w or th > h:
            ltrb = [(tw - w) // 2 if tw > w else 0, (th - h) // 2 if th > h else 0,
                    (tw - w + 1) // 2 if tw > w else 0, (th - h + 1) // 2 if th > h else 0]
            chw = F.pad(chw, ltrb, 0, "constant")
            h, w = chw.shape[-2:]
            if (h, w) == (th, tw):
                return chw
        top = int(round((h - th) / 2.0))
        left = int(round((w - tw) / 2.0))
        return F.crop(chw, top, left, th, tw).copy()

    def __repr__(self):
        return f"CenterCrop(size={self.size})"


class Pad(Transform):
    """Pad by `padding` (int; (left/right, top/bottom); or (left, top, right, bottom))
    with `fill` (constant mode) or by edge / reflect / symmetric."""

    def __init__(self, padding, fill=0, padding_mode="constant"):
        self.padding = padding
        self.ltrb = F.padding_ltrb(padding)
        self.fill = fill
        self.padding_mode = _check_padding_mode(padding_mode)

    def on_pil(self, img):
        chw, layout = to_chw(img, False, "Pad")
        return layout.restore(F.pad(chw, self.ltrb, self.fill, self.padding_mode))

    def on_array(self, chw):
        return F.pad(chw, self.ltrb, self.fill, self.padding_mode, crop_first=False)

    def __repr__(self):
        return (f"Pad(padding={self.padding}, fill={self.fill}, "
                f"padding_mode={self.padding_mode})")


class RandomCrop(Transform):
    """A random `size` crop, after optional `padding` (as `Pad`) and, with
    `pad_if_needed`, padding of an image smaller than `size`. The offsets are uniform
    integers (torch.randint's range), drawn per sample on a batch."""

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0,
                 padding_mode="constant"):
        self.size = setup_size(size, "RandomCrop")
        self.padding = padding
        self.ltrb = None if padding is None else F.padding_ltrb(padding)
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = _check_padding_mode(padding_mode)

    def _padded(self, chw):
        if self.ltrb is not None:
            chw = F.pad(chw, self.ltrb, self.fill, self.padding_mode)
        th, tw = self.size
        h, w = chw.shape[-2:]
        if self.pad_if_needed and w < tw:
            chw = F.pad(chw, [tw - w, 0, tw - w, 0], self.fill, self.padding_mode)
        if self.pad_if_needed and h < th:
            chw = F.pad(chw, [0, th - h, 0, th - h], self.fill, self.padding_mode)
        h, w = chw.shape[-2:]
        if h < th or w < tw:
            raise ValueError(f"Required crop size {(th, tw)} is larger than input image "
                             f"size {(h, w)}")
        return chw

    def on_array(self, chw):
        chw = self._padded(chw)
        th, tw = self.size
        h, w = chw.shape[-2:]
        if (h, w) == (th, tw):
            return chw.copy()
        gen = rng()
        i = int(gen.integers(0, h - th + 1))
        j = int(gen.integers(0, w - tw + 1))
        return F.crop(chw, i, j, th, tw).copy()

    def on_batch(self, chw):
        chw = self._padded(chw)
        th, tw = self.size
        n, h, w = chw.shape[0], chw.shape[-2], chw.shape[-1]
        if (h, w) == (th, tw):
            return chw.copy(order="K")
        gen = rng()
        tops = gen.integers(0, h - th + 1, size=n)
        lefts = gen.integers(0, w - tw + 1, size=n)
        return crop_per_sample(chw, tops, lefts, th, tw)

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


def crop_per_sample(chw, tops, lefts, th, tw):
    """Crop sample k of an (N, C, H, W) batch at (tops[k], lefts[k]) (slices copied into
    one output in the input's memory layout: far cheaper than a 4-index gather)."""
    out = F.empty_image(chw, chw.shape[:-2] + (th, tw))
    for k, (i, j) in enumerate(zip(tops.tolist(), lefts.tolist())):
        out[k] = chw[k, ..., i:i + th, j:j + tw]
    return out


class _RandomFlip(Transform):
    def __init__(self, p=0.5):
        self.p = check_probability(p, type(self).__name__)

    def on_array(self, chw):
        return self.flip(chw).copy() if rng().random() < self.p else chw.copy()

    def on_batch(self, chw):
        chosen = rng().random(chw.shape[0]) < self.p
        out = F.empty_image(chw, chw.shape)
        for k, flip in enumerate(chosen.tolist()):
            out[k] = self.flip(chw[k]) if flip else chw[k]
        return out

    def __repr__(self):
        return f"{type(self).__name__}(p={self.p})"


class RandomHorizontalFlip(_RandomFlip):
    """Mirror left-right with probability `p` (each sample of a batch on its own)."""
    flip = staticmethod(F.hflip)


class RandomVerticalFlip(_RandomFlip):
    """Mirror top-bottom with probability `p` (each sample of a batch on its own)."""
    flip = staticmethod(F.vflip)


class RandomResizedCrop(Transform):
    """A crop of random area (`scale` of the image) and aspect ratio (`ratio`, drawn
    log-uniformly), resized to `size`; torchvision's 10 tries, then its centre-crop
    fallback."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0),
                 interpolation=InterpolationMode.BILINEAR, antialias=True):
        self.size = setup_size(size, "RandomResizedCrop")
        if not isinstance(scale, (list, tuple)) or len(scale) != 2:
            raise TypeError("Scale should be a sequence of two numbers")
        if not isinstance(ratio, (list, tuple)) or len(ratio) != 2:
            raise TypeError("Ratio should be a sequence of two numbers")
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            warnings.warn("Scale and ratio should be of kind (min, max)")
        self.scale = tuple(float(s) for s in scale)
        self.ratio = tuple(float(r) for r in ratio)
        self.interpolation = interpolation_name(interpolation)
        self.antialias = antialias

    @staticmethod
    def get_params(height, width, scale, ratio, gen=None):
        """(top, left, h, w) of a random crop, as torchvision's get_params."""
        gen = gen if gen is not None else rng()
        area = height * width
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(10):
            target_area = area * gen.uniform(scale[0], scale[1])
            aspect = math.exp(gen.uniform(log_ratio[0], log_ratio[1]))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                i = int(gen.integers(0, height - h + 1))
                j = int(gen.integers(0, width - w + 1))
                return i, j, h, w
        in_ratio = width / height
        if in_ratio < min(ratio):
            w, h = width, int(round(width / min(ratio)))
        elif in_ratio > max(ratio):
            h, w = height, int(round(height * max(ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def on_pil(self, img):
        i, j, h, w = self.get_params(img.size[1], img.size[0], self.scale, self.ratio)
        crop = img.crop((j, i, j + w, i + h))
        return crop.resize((self.size[1], self.size[0]), pil_filter(self.interpolation))

    def on_array(self, chw):
        i, j, h, w = self.get_params(*chw.shape[-2:], self.scale, self.ratio)
        return F.resize(F.crop(chw, i, j, h, w), self.size, self.interpolation,
                        bool(self.antialias))

    def on_batch(self, chw):
        return _stack([self.on_array(sample) for sample in chw])

    def __repr__(self):
        return (f"RandomResizedCrop(size={self.size}, scale={self.scale}, "
                f"ratio={self.ratio}, interpolation={self.interpolation})")


class RandomRotation(Transform):
    """Rotate by an angle drawn uniformly from `degrees` ((-d, d) for a number),
    counter-clockwise, about the centre (or `center`, (x, y) in pixels); the corners
    left uncovered take `fill`. `expand` enlarges the output to hold the whole image."""

    def __init__(self, degrees, interpolation=InterpolationMode.NEAREST, expand=False,
                 center=None, fill=0):
        if isinstance(degrees, numbers.Real):
            if degrees < 0:
                raise ValueError("If degrees is a single number, it must be positive.")
            degrees = (-float(degrees), float(degrees))
        elif not isinstance(degrees, (list, tuple)) or len(degrees) != 2:
            raise ValueError("If degrees is a sequence, it must be of len 2.")
        self.degrees = (float(degrees[0]), float(degrees[1]))
        self.interpolation = interpolation_name(interpolation)
        if self.interpolation not in ("nearest", "bilinear", "bicubic"):
            raise ValueError(f"RandomRotation: interpolation {self.interpolation!r} is not "
                             "supported (nearest, bilinear; bicubic on PIL images)")
        self.expand = bool(expand)
        self.center = center
        if fill is None:
            fill = 0
        if not isinstance(fill, (numbers.Real, list, tuple)):
            raise TypeError("Fill should be either a sequence or a number.")
        self.fill = fill

    def get_angle(self):
        return float(rng().uniform(self.degrees[0], self.degrees[1]))

    def on_pil(self, img):
        return TF.rotate(img, self.get_angle(), self.interpolation, self.expand, self.center,
                         self.fill)

    def rotate(self, chw, angle):
        if self.interpolation == "bicubic":
            raise ValueError("RandomRotation: bicubic interpolation works on PIL images "
                             "only (use nearest or bilinear on tensors)")
        h, w = chw.shape[-2:]
        offset = (0.0, 0.0)
        if self.center is not None:
            offset = (self.center[0] - w * 0.5, self.center[1] - h * 0.5)
        matrix = F.rotation_matrix(angle, offset)
        size = F.rotated_size(matrix, w, h) if self.expand else (w, h)
        channels = chw.shape[-3] if chw.ndim >= 3 else 1
        fill = self.fill
        fill = [float(fill)] * channels if isinstance(fill, numbers.Real) else \
            [float(v) for v in fill]
        return F.affine_sample(chw, matrix, size, self.interpolation, fill)

    def on_array(self, chw):
        return self.rotate(chw, self.get_angle())

    def on_batch(self, chw):
        if self.expand:
            raise ValueError("RandomRotation(expand=True) gives each sample its own size, "
                             "so it cannot transform a batch; use it per image")
        return _stack([self.rotate(sample, self.get_angle()) for sample in chw])

    def __repr__(self):
        return (f"RandomRotation(degrees={self.degrees}, interpolation="
                f"{self.interpolation}, expand={self.expand}, fill={self.fill})")


__all__ = ["Resize", "CenterCrop", "Pad", "RandomCrop", "RandomHorizontalFlip",
           "RandomVerticalFlip", "RandomResizedCrop", "RandomRotation"]
