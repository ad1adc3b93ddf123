"""torchvision.transforms.functional's deterministic operations, on PIL images and tensors.

    from tinygrad_cv.transforms import functional as TF
    TF.rotate(img, 30.0); TF.resize(img, [64, 64]); TF.hflip(img)

Each takes a PIL image or a tensor image (..., C, H, W) and returns the same kind. Where
torchvision hands PIL images to Pillow (resize, rotate, the colour adjustments,
grayscale) so do we; everything else runs the array kernels of `array_ops`.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import array_ops as A
from ._base import (ConvertImageDtype, InterpolationMode, Normalize, PILToTensor, ToTensor,
                    interpolation_name, is_pil, pil_filter, to_chw)


def _on_arrays(img, fn, name):
    chw, layout = to_chw(img, False, name)
    return layout.restore(fn(chw))


def get_dimensions(img):
    """[channels, height, width]."""
    if is_pil(img):
        return [len(img.getbands()), img.size[1], img.size[0]]
    chw, _ = to_chw(img, False, "get_dimensions")
    return [chw.shape[-3] if chw.ndim >= 3 else 1, chw.shape[-2], chw.shape[-1]]


def get_image_size(img):
    """[width, height]."""
    _, h, w = get_dimensions(img)
    return [w, h]


def get_image_num_channels(img):
    return get_dimensions(img)[0]


def to_tensor(pic):
    return ToTensor()(pic)


def pil_to_tensor(pic):
    return PILToTensor()(pic)


def to_pil_image(pic, mode=None):
    """A tensor CxHxW (floats in [0, 1] are scaled by 255) or an HxWxC array as a PIL
    image, as torchvision's to_pil_image for 1, 3 and 4 channels."""
    from PIL import Image

    from ..tensor import Tensor
    if isinstance(pic, Tensor):
        arr = pic.numpy()
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise ValueError(f"to_pil_image: pic should be 2/3 dimensional, got shape "
                             f"{arr.shape}")
        if arr.dtype.kind == "f" and mode != "F":
            arr = (arr * 255).astype(np.uint8)
        arr = np.ascontiguousarray(arr.transpose(1, 2, 0))
    else:
        arr = np.asarray(pic)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return Image.fromarray(arr, mode=mode)


def normalize(tensor, mean, std, inplace=False):
    return Normalize(mean, std, inplace)(tensor)


def convert_image_dtype(image, dtype=np.float32):
    return ConvertImageDtype(dtype)(image)


def resize(img, size, interpolation=InterpolationMode.BILINEAR, max_size=None,
           antialias=True):
    """Resize as `transforms.Resize` (an int size matches the smaller edge)."""
    name = interpolation_name(interpolation)
    if is_pil(img):
        w, h = img.size
        oh, ow = A.resized_output_size(h, w, size, max_size)
        if (oh, ow) == (h, w):
            return img
        return img.resize((ow, oh), pil_filter(name))
    return _on_arrays(img, lambda chw: A.resize(
        chw, A.resized_output_size(*chw.shape[-2:], size, max_size), name, bool(antialias)),
        "resize")


def crop(img, top, left, height, width):
    """The box at (top, left) of size (height, width); outside the image is zero."""
    if is_pil(img):
        return img.crop((left, top, left + width, top + height))
    return _on_arrays(img, lambda chw: A.crop(chw, top, left, height, width).copy(), "crop")


def center_crop(img, output_size):
    from .geometric import CenterCrop
    return CenterCrop(output_size)(img)


def resized_crop(img, top, left, height, width, size,
                 interpolation=InterpolationMode.BILINEAR, antialias=True):
    return resize(crop(img, top, left, height, width), size, interpolation,
                  antialias=antialias)


def pad(img, padding, fill=0, padding_mode="constant"):
    from .geometric import Pad
    return Pad(padding, fill, padding_mode)(img)


def hflip(img):
    return _on_arrays(img, lambda chw: A.hflip(chw).copy(), "hflip")


def vflip(img):
    return _on_arrays(img, lambda chw: A.vflip(chw).copy(), "vflip")


def _pil_fill(fill, img):
    bands = len(img.getbands())
    if fill is None:
        fill = 0
    if isinstance(fill, numbers.Real) and bands > 1:
        fill = (fill,) * bands
    if isinstance(fill, (list, tuple)):
        fill = tuple(fill) * bands if len(fill) == 1 else tuple(fill)
        if len(fill) != bands:
            raise ValueError(f"The number of elements in 'fill' does not match the number "
                             f"of channels of the image ({len(fill)} != {bands})")
    if img.mode != "F":
        fill = tuple(int(v) for v in fill) if isinstance(fill, tuple) else int(fill)
    return fill


def rotate(img, angle, interpolation=InterpolationMode.NEAREST, expand=False, center=None,
           fill=None):
    """Rotate by `angle` degrees counter-clockwise about the centre (or `center`, (x, y)
    in pixels); uncovered pixels take `fill` (0 by default)."""
    name = interpolation_name(interpolation)
    if is_pil(img):
        return img.rotate(angle, pil_filter(name), expand, center,
                          fillcolor=_pil_fill(fill, img))
    if name not in ("nearest", "bilinear"):
        raise ValueError(f"rotate: interpolation {name!r} works on PIL images only (use "
                         "nearest or bilinear on tensors)")

    def rotate_chw(chw):
        h, w = chw.shape[-2:]
        offset = (0.0, 0.0) if center is None else (center[0] - w * 0.5,
                                                     center[1] - h * 0.5)
        matrix = A.rotation_matrix(angle, offset)
        size = A.rotated_size(matrix, w, h) if expand else (w, h)
        channels = chw.shape[-3] if chw.ndim >= 3 else 1
        values = fill
        if values is not None:
            values = [float(values)] * channels if isinstance(values, numbers.Real) else \
                [float(v) for v in values]
        return A.affine_sample(chw, matrix, size, name, values)
    return _on_arrays(img, rotate_chw, "rotate")


def _check_factor(factor, name):
    if factor < 0:
        raise ValueError(f"{name} ({factor}) is not non-negative.")
    return float(factor)


def adjust_brightness(img, brightness_factor):
    factor = _check_factor(brightness_factor, "brightness_factor")
    if is_pil(img):
        from PIL import ImageEnhance
        return ImageEnhance.Brightness(img).enhance(factor)
    return _on_arrays(img, lambda chw: A.adjust_brightness(chw, factor), "adjust_brightness")


def adjust_contrast(img, contrast_factor):
    factor = _check_factor(contrast_factor, "contrast_factor")
    if is_pil(img):
        from PIL import ImageEnhance
        return ImageEnhance.Contrast(img).enhance(factor)
    return _on_arrays(img, lambda chw: A.adjust_contrast(chw, factor), "adjust_contrast")


def adjust_saturation(img, saturation_factor):
    factor = _check_factor(saturation_factor, "saturation_factor")
    if is_pil(img):
        from PIL import ImageEnhance
        return ImageEnhance.Color(img).enhance(factor)
    return _on_arrays(img, lambda chw: A.adjust_saturation(chw, factor), "adjust_saturation")


def adjust_hue(img, hue_factor):
    if not -0.5 <= hue_factor <= 0.5:
        raise ValueError(f"hue_factor ({hue_factor}) is not in [-0.5, 0.5].")
    if is_pil(img):
        from PIL import Image
        if img.mode in {"L", "1", "I", "F"}:
            return img
        h, s, v = img.convert("HSV").split()
        np_h = np.array(h, dtype=np.uint8)
        np_h += np.int32(hue_factor * 255).astype(np.uint8)         # wraps, as wanted
        return Image.merge("HSV", (Image.fromarray(np_h, "L"), s, v)).convert(img.mode)
    return _on_arrays(img, lambda chw: A.adjust_hue(chw, hue_factor), "adjust_hue")


def rgb_to_grayscale(img, num_output_channels=1):
    if is_pil(img):
        return to_grayscale(img, num_output_channels)
    return _on_arrays(img, lambda chw: A.rgb_to_grayscale(chw, num_output_channels),
                      "rgb_to_grayscale")


def to_grayscale(img, num_output_channels=1):
    """A PIL image in "L" (or "RGB" with the gray value three times)."""
    from PIL import Image
    if num_output_channels not in (1, 3):
        raise ValueError("num_output_channels should be either 1 or 3")
    gray = img.convert("L")
    if num_output_channels == 1:
        return gray
    return Image.fromarray(np.dstack([np.array(gray)] * 3), "RGB")


def erase(img, i, j, h, w, v, inplace=False):
    """A tensor image with the box at (i, j) of size (h, w) set to `v`."""
    from ..tensor import Tensor, wrap_array
    if not isinstance(img, Tensor):
        raise TypeError(f"erase: img should be a Tensor image, got {type(img).__name__}")
    value = getattr(v, "data", v)
    if inplace:
        img.data[..., i:i + h, j:j + w] = value
        return img
    return wrap_array(A.erase(img.data, i, j, h, w, value), img.device_str)
