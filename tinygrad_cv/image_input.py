"""A user's picture (a photo or scan of a digit, a drawing with transparency) made into a
model input the way MNIST's images were made from NIST's.

`load_image(path)` reads the file (any format Pillow reads) and returns a (28, 28)
float32 array in [0, 1], white ink on black:

1. transparency (RGBA, LA, palette or grey with a transparent colour) is composited
   onto white, so dark ink on a transparent background stays visible (converting to
   grey alone would drop the alpha channel: black ink on black);
2. grey levels; when the background (the median of the border pixels) is light, the
   image is inverted to MNIST's white-on-black; the background level becomes 0 and the
   strongest ink 1. An image with no ink (every pixel within `BLANK_CONTRAST` of the
   background) is an error, not a class;
3. the ink's bounding box is cropped and scaled, keeping its aspect ratio, so that its
   longer side is `fit` pixels (20 for MNIST; Fashion-MNIST's 28);
4. it is placed in the 28x28 frame with its centre of mass at the frame's centre
   (MNIST's rule; pixel (14, 14), where MNIST's centres lie) or, with center="box",
   its box centred (Fashion-MNIST's rule).

Files that are missing, not images, truncated or bigger than Pillow's decompression-
bomb limit raise `UserError` naming the file.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from .errors import UserError, describe_os_error

BLANK_CONTRAST = 0.1
"""Below this ink contrast (grey levels in [0, 1]) an image counts as blank."""
INK_THRESHOLD = 0.2
"""Pixels brighter than this (after normalising the ink to [0, 1]) make the bounding box;
fainter ones are paper texture, noise or JPEG ringing and are set to 0."""


def load_image(path, size=28, fit=20, center="mass"):
    """The picture at `path` as a (size, size) float32 array in [0, 1], white ink on
    black, prepared as the module docstring says."""
    gray = read_gray_on_white(path)
    return prepare(gray, size=size, fit=fit, center=center, name=os.fspath(path))


def read_gray_on_white(path):
    """The image as a float array in [0, 1] (1 = white), transparent parts white."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = os.fspath(path)
    try:
        with warnings.catch_warnings():
            # Between the limit and twice it Pillow only warns: refuse those too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(name) as img:
                img.load()
                img = ImageOps.exif_transpose(img)   # phone photos: upright as shown
                return _gray_on_white(img)
    except UnidentifiedImageError:
        raise UserError(f"{name}: not an image file (Pillow cannot identify its format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UserError(f"{name}: too many pixels, refused as a possible decompression "
                        f"bomb ({exc})") from None
    except OSError as exc:
        if exc.filename is not None:              # missing, a folder, no permission
            raise UserError(describe_os_error(exc)) from None
        raise UserError(f"{name}: cannot decode the image ({exc}); is it truncated or "
                        "corrupt?") from None
    except (ValueError, SyntaxError, EOFError) as exc:   # what Pillow's decoders raise
        raise UserError(f"{name}: cannot decode the image ({exc}); is it truncated or "
                        "corrupt?") from None


def _gray_on_white(img):
    from PIL import Image

    if img.mode in ("I", "F") or img.mode.startswith("I;"):   # 16/32-bit grey, float
        values = np.asarray(img, dtype=np.float64)
        top = 1.0 if img.mode == "F" and values.max(initial=0) <= 1 else (
            255.0 if values.max(initial=0) <= 255 else 65535.0)
        return np.clip(values / top, 0.0, 1.0).astype(np.float32)
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if has_alpha:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def _border(values):
    return np.concatenate([values[0], values[-1], values[1:-1, 0], values[1:-1, -1]])


def prepare(gray, size=28, fit=20, center="mass", name="<image>"):
    """A float grey image (1 = white) -> (size, size) float32 white ink on black."""
    from PIL import Image

    if center not in ("mass", "box"):
        raise ValueError(f"prepare: center must be 'mass' or 'box', got {center!r}")
    if not 1 <= fit <= size:
        raise ValueError(f"prepare: fit must be in 1..{size}, got {fit}")
    ink = np.asarray(gray, dtype=np.float32)
    if np.median(_border(ink)) > 0.5:     # dark ink on light paper
        ink = 1.0 - ink
    background = float(np.median(_border(ink)))
    ink = np.clip(ink - background, 0.0, None)
    peak = float(ink.max())
    if peak < BLANK_CONTRAST:
        raise UserError(f"{name}: the image is blank (no pixel differs from the background "
                        f"by {BLANK_CONTRAST:.0%} or more), so there is nothing to classify")
    ink /= peak
    ink[ink < INK_THRESHOLD] = 0.0
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]

    h, w = ink.shape
    scale = fit / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    scaled = np.asarray(Image.fromarray(ink).resize((new_w, new_h), Image.BILINEAR),
                        dtype=np.float32)
    scaled = np.clip(scaled, 0.0, None)
    scaled /= max(float(scaled.max()), 1e-12)   # thin strokes shrunk faint: full ink again

    if center == "mass":
        ys, xs = np.indices(scaled.shape)
        total = float(scaled.sum())
        cy, cx = (ys * scaled).sum() / total, (xs * scaled).sum() / total
        top, left = int(round(size / 2 - cy)), int(round(size / 2 - cx))
    else:
        top, left = (size - new_h) // 2, (size - new_w) // 2
    out = np.zeros((size, size), dtype=np.float32)
    y0, x0 = max(top, 0), max(left, 0)                       # clip to the frame
    y1, x1 = min(top + new_h, size), min(left + new_w, size)
    out[y0:y1, x0:x1] = scaled[y0 - top:y1 - top, x0 - left:x1 - left]
    return out
