"""Opening image files with Pillow, with one clear error per bad file.

`pil_loader(path)` decodes a file fully and converts it to RGB, as torchvision's. A file
that is not an image, is corrupt or truncated, or has more pixels than Pillow's
decompression-bomb limit (`PIL.Image.MAX_IMAGE_PIXELS`, ~89 megapixels by default; set
it to None to lift it) raises `ImageFileError` naming the file, where Pillow would raise
one of several exception types, or only warn, or (for a truncated file) fail later.
"""
from __future__ import annotations

import os
import warnings


class ImageFileError(OSError):
    """An image file that cannot be used: not an image, corrupt, truncated, or too large."""


def _pillow():
    try:
        from PIL import Image
    except ImportError as exc:             # pragma: no cover  (Pillow is a dependency)
        raise ImportError("reading image files needs Pillow: pip install pillow") from exc
    return Image


def open_image(path):
    """The fully decoded PIL image in `path` (its own mode); `ImageFileError` if unusable."""
    Image = _pillow()
    path = os.fspath(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open(path, "rb") as f:
                image = Image.open(f)
                _check_pixels(image, path, Image.MAX_IMAGE_PIXELS)
                image.load()
    except ImageFileError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageFileError(f"{path}: the image is larger than Pillow's decompression-bomb "
                             f"limit ({exc}); raise PIL.Image.MAX_IMAGE_PIXELS if the file "
                             "is trusted") from exc
    except Image.UnidentifiedImageError as exc:
        raise ImageFileError(f"{path}: not an image file Pillow can read") from exc
    except FileNotFoundError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageFileError(f"{path}: corrupt or truncated image file ({exc})") from exc
    return image


def _check_pixels(image, path, limit):
    width, height = image.size
    if limit is not None and width * height > limit:
        raise ImageFileError(f"{path}: the image is {width}x{height} = {width * height} "
                             f"pixels, larger than Pillow's decompression-bomb limit "
                             f"PIL.Image.MAX_IMAGE_PIXELS = {limit}; raise it if the file "
                             "is trusted")


def pil_loader(path):
    """The image in `path` as an RGB PIL image (torchvision's `pil_loader`)."""
    image = open_image(path)
    return image if image.mode == "RGB" else image.convert("RGB")


def default_loader(path):
    """torchvision's default loader: Pillow, RGB."""
    return pil_loader(path)
