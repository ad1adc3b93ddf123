"""Colour transforms (ColorJitter, Grayscale) and RandomErasing, torchvision's semantics.

On PIL images ColorJitter uses Pillow's ImageEnhance and an HSV hue shift, Grayscale
Pillow's "L" conversion, as torchvision does; tensors use `array_ops`' kernels.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..backend import xp_of
from . import array_ops as F
from . import functional as TF
from ._base import Transform, check_probability, rng


def _check_range(value, name, center=1.0, bound=(0.0, float("inf")), clip_first_on_zero=True):
    """torchvision's ColorJitter._check_input: a number v gives [center - v, center + v]."""
    if isinstance(value, numbers.Real):
        if value < 0:
            raise ValueError(f"If {name} is a single number, it must be non negative.")
        value = [center - float(value), center + float(value)]
        if clip_first_on_zero:
            value[0] = max(value[0], 0.0)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        value = [float(value[0]), float(value[1])]
    else:
        raise TypeError(f"{name} should be a single number or a list/tuple with length 2.")
    if not bound[0] <= value[0] <= value[1] <= bound[1]:
        raise ValueError(f"{name} values should be between {bound}, but got {value}.")
    if value[0] == value[1] == center:
        return None
    return tuple(value)


class ColorJitter(Transform):
    """Random brightness, contrast, saturation and hue changes, applied in a random order.

    Each of brightness/contrast/saturation is a number v (factor drawn from
    [max(0, 1 - v), 1 + v]) or a (min, max) range; hue is h in [0, 0.5] (shift drawn from
    [-h, h]) or a range within [-0.5, 0.5]. Draws as torchvision's get_params: the order
    (a permutation of 4), then one uniform factor per enabled adjustment.
    """

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0):
        self.brightness = _check_range(brightness, "brightness")
        self.contrast = _check_range(contrast, "contrast")
        self.saturation = _check_range(saturation, "saturation")
        self.hue = _check_range(hue, "hue", center=0.0, bound=(-0.5, 0.5),
                                clip_first_on_zero=False)

    def get_params(self):
        gen = rng()
        order = gen.permutation(4).tolist()
        factors = [None if r is None else float(gen.uniform(r[0], r[1]))
                   for r in (self.brightness, self.contrast, self.saturation, self.hue)]
        return order, factors

    def on_pil(self, img):
        order, factors = self.get_params()
        adjust = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation,
                  TF.adjust_hue)
        for k in order:
            if factors[k] is not None:
                img = adjust[k](img, factors[k])
        return img

    def _apply(self, chw, order, factors):
        kernels = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation, F.adjust_hue)
        for k in order:
            if factors[k] is not None:
                chw = kernels[k](chw, factors[k])
        return chw

    def on_array(self, chw):
        if chw.ndim < 3 or chw.shape[-3] not in (1, 3):
            raise TypeError(f"ColorJitter: expected an image with 1 or 3 channels, got shape "
                            f"{tuple(chw.shape)}")
        order, factors = self.get_params()
        return self._apply(chw, order, factors)

    def on_batch(self, chw):
        return xp_of(chw).stack([self.on_array(sample) for sample in chw])

    def __repr__(self):
        return (f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, "
                f"saturation={self.saturation}, hue={self.hue})")


class Grayscale(Transform):
    """Convert to grayscale with `num_output_channels` 1 or 3 (the gray value repeated)."""

    def __init__(self, num_output_channels=1):
        if num_output_channels not in (1, 3):
            raise ValueError("num_output_channels should be either 1 or 3")
        self.num_output_channels = num_output_channels

    def on_pil(self, img):
        return TF.to_grayscale(img, self.num_output_channels)

    def on_array(self, chw):
        return F.rgb_to_grayscale(chw, self.num_output_channels)

    def __repr__(self):
        return f"Grayscale(num_output_channels={self.num_output_channels})"


class RandomErasing(Transform):
    """With probability `p`, erase a random box of a tensor image (area a `scale`
    fraction, aspect ratio log-uniform in `ratio`) with `value`: a number, one value per
    channel, or "random" (standard normal noise). Tensors only, as torchvision."""

    def __init__(self, p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0, inplace=False):
        self.p = check_probability(p, "RandomErasing")
        if not isinstance(value, (numbers.Real, str, tuple, list)):
            raise TypeError("Argument value should be either a number or str or a sequence")
        if isinstance(value, str) and value != "random":
            raise ValueError("If value is str, it should be 'random'")
        if not isinstance(scale, (tuple, list)) or not isinstance(ratio, (tuple, list)):
            raise TypeError("Scale and ratio should be sequences")
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError("Scale and ratio should be of kind (min, max)")
        if scale[0] < 0 or scale[1] > 1:
            raise ValueError("Scale should be between 0 and 1")
        self.scale = tuple(float(s) for s in scale)
        self.ratio = tuple(float(r) for r in ratio)
        self.value = value
        self.inplace = inplace

    def __call__(self, img):
        from ._base import is_pil
        if is_pil(img):
            raise TypeError("RandomErasing: img should be a Tensor image (apply ToTensor "
                            "first), got a PIL image")
        return super().__call__(img)

    def _values(self, channels):
        if isinstance(self.value, str):
            return None
        values = [float(self.value)] if isinstance(self.value, numbers.Real) else \
            [float(v) for v in self.value]
        if len(values) not in (1, channels):
            raise ValueError(f"If value is a sequence, it should have either a single value "
                             f"or {channels} (number of input channels)")
        return values

    def get_params(self, chw, values, gen):
        c, img_h, img_w = chw.shape[-3], chw.shape[-2], chw.shape[-1]
        area = img_h * img_w
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            erase_area = area * gen.uniform(self.scale[0], self.scale[1])
            aspect = math.exp(gen.uniform(log_ratio[0], log_ratio[1]))
            h = int(round(math.sqrt(erase_area * aspect)))
            w = int(round(math.sqrt(erase_area / aspect)))
            if not (h < img_h and w < img_w):
                continue
            if values is None:
                v = gen.standard_normal((c, h, w)).astype(np.float32)
            else:
                v = np.asarray(values, dtype=np.float32)[:, None, None]
            i = int(gen.integers(0, img_h - h + 1))
            j = int(gen.integers(0, img_w - w + 1))
            return i, j, h, w, v
        return None

    def _erase_into(self, out, sample_index, chw):
        gen = rng()
        if not gen.random() < self.p:
            return
        params = self.get_params(chw, self._values(chw.shape[-3]), gen)
        if params is not None:
            i, j, h, w, v = params
            target = out if sample_index is None else out[sample_index]
            target[..., i:i + h, j:j + w] = xp_of(out).asarray(v).astype(out.dtype)

    def on_array(self, chw):
        if chw.ndim < 3:
            raise ValueError(f"RandomErasing: expected a tensor image (..., C, H, W), got "
                             f"shape {tuple(chw.shape)}")
        out = chw if self.inplace else chw.copy()
        self._erase_into(out, None, chw)
        return out

    def on_batch(self, chw):
        out = chw if self.inplace else chw.copy()
        for k in range(chw.shape[0]):
            self._erase_into(out, k, chw[k])
        return out

    def __repr__(self):
        return (f"RandomErasing(p={self.p}, scale={self.scale}, ratio={self.ratio}, "
                f"value={self.value})")


class RandomGrayscale(Transform):
    """Grayscale with probability `p`, keeping the number of channels (as torchvision)."""

    def __init__(self, p=0.1):
        self.p = check_probability(p, "RandomGrayscale")

    def on_pil(self, img):
        if rng().random() < self.p:
            return TF.to_grayscale(img, 3 if img.mode == "RGB" else 1)
        return img

    def on_array(self, chw):
        if rng().random() < self.p:
            return F.rgb_to_grayscale(chw, chw.shape[-3])
        return chw.copy()

    def on_batch(self, chw):
        chosen = rng().random(chw.shape[0]) < self.p
        out = chw.copy()
        if chosen.any() and chw.shape[1] == 3:
            idx = np.nonzero(chosen)[0]
            out[idx] = F.rgb_to_grayscale(chw[idx], 3)
        return out

    def __repr__(self):
        return f"RandomGrayscale(p={self.p})"
