"""Image kernels on NumPy/CuPy arrays laid out (..., C, H, W), torchvision's tensor maths.

Every function keeps the input's dtype: integer images are computed in float32 and
rounded (resizing, rotating with bilinear) or truncated (colour blends), as torchvision
does for uint8 tensors. Leading dimensions (a batch) are carried through, so one call
transforms a whole batch with the same parameters.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..backend import xp_of


def max_value(dtype):
    """The value of full intensity: 1.0 for floats, the integer type's maximum else."""
    dtype = np.dtype(dtype)
    return 1.0 if dtype.kind == "f" else float(np.iinfo(dtype).max)


def _compute_type(dtype):
    """The float type integer images are computed in (float32), floats keep theirs."""
    dtype = np.dtype(dtype)
    return dtype.type if dtype.kind == "f" else np.float32


def _to_dtype(x, dtype, rounding):
    """Cast float results back to an integer `dtype` by rounding or truncation."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return x.astype(dtype, copy=False)
    xp = xp_of(x)
    if rounding:
        x = xp.rint(x)
    info = np.iinfo(dtype)
    return xp.clip(x, info.min, info.max).astype(dtype)


def empty_image(like, shape, dtype=None):
    """An uninitialised (..., C, H, W) array laid out in memory as `like` is: channels
    last when `like` is a channels-last view (a batch of H x W x C images), so results
    go back to that layout without a transposing copy."""
    xp = xp_of(like)
    dtype = like.dtype if dtype is None else dtype
    if like.ndim >= 3 and like.shape[-3] > 1 and like.strides[-3] < like.strides[-1]:
        buf = xp.empty(tuple(shape[:-3]) + (shape[-2], shape[-1], shape[-3]), dtype=dtype)
        return xp.moveaxis(buf, -1, -3)
    return xp.empty(tuple(shape), dtype=dtype)


# ---------------------------------------------------------------------- geometry
def crop(x, top, left, height, width):
    """`x[..., top:top+height, left:left+width]`, zero-padded where it leaves the image."""
    h, w = x.shape[-2:]
    right, bottom = left + width, top + height
    if left < 0 or top < 0 or right > w or bottom > h:
        ltrb = [max(-left + min(0, right), 0), max(-top + min(0, bottom), 0),
                max(right - max(w, left), 0), max(bottom - max(h, top), 0)]
        inner = x[..., max(top, 0):max(bottom, 0), max(left, 0):max(right, 0)]
        return pad(inner, ltrb, 0, "constant")
    return x[..., top:bottom, left:right]


def padding_ltrb(padding):
    """torchvision's padding argument (int, 1-, 2- or 4-sequence) as [left, top, right,
    bottom]."""
    if isinstance(padding, numbers.Integral):
        return [int(padding)] * 4
    padding = [int(p) for p in padding]
    if len(padding) == 1:
        return padding * 4
    if len(padding) == 2:
        return [padding[0], padding[1], padding[0], padding[1]]
    if len(padding) == 4:
        return padding
    raise ValueError(f"Padding must be an int or a 1, 2, or 4 element tuple, not a "
                     f"{len(padding)} element tuple")


def _crop_negative(x, ltrb):
    left, top, right, bottom = ltrb
    h, w = x.shape[-2:]
    return x[..., max(-top, 0):h - max(-bottom, 0), max(-left, 0):w - max(-right, 0)]


def pad(x, ltrb, fill=0, mode="constant", crop_first=True):
    """Pad the last two axes by [left, top, right, bottom] (negative values crop).

    Modes as torchvision: constant (with `fill`, a number or one value per channel),
    edge, reflect (mirror without repeating the edge), symmetric (repeating it).
    Negative sides are cropped before padding (torchvision's PIL path and symmetric
    mode), or after it with `crop_first=False` (its tensor path for the other modes,
    where torch's pad mirrors the uncropped image)."""
    if min(ltrb) < 0:
        positive = [max(p, 0) for p in ltrb]
        if crop_first or mode == "symmetric":
            return pad(_crop_negative(x, ltrb), positive, fill, mode)
        return _crop_negative(pad(x, positive, fill, mode), ltrb)
    left, top, right, bottom = ltrb
    xp = xp_of(x)
    if mode == "constant":
        h, w = x.shape[-2:]
        out = empty_image(x, x.shape[:-2] + (h + top + bottom, w + left + right))
        values = np.asarray(fill, dtype=np.float64).reshape(-1)
        if values.size > 1:
            if x.ndim < 3 or x.shape[-3] != values.size:
                raise ValueError(f"pad: fill has {values.size} values but the image of shape "
                                 f"{tuple(x.shape)} has not that many channels")
            out[...] = xp.asarray(values.astype(x.dtype)).reshape(-1, 1, 1)
        else:
            out[...] = values[0] if values.size else 0
        out[..., top:top + h, left:left + w] = x
        return out
    np_mode = {"edge": "edge", "reflect": "reflect", "symmetric": "symmetric"}.get(mode)
    if np_mode is None:
        raise ValueError(f"Padding mode should be either constant, edge, reflect or "
                         f"symmetric, got {mode!r}")
    h, w = x.shape[-2:]
    if mode == "reflect" and (max(top, bottom) >= max(h, 1) or max(left, right) >= max(w, 1)):
        raise ValueError(f"Pad: reflect padding {list(ltrb)} must be smaller than the image "
                         f"size {h}x{w} on each side")
    if h == 0 or w == 0:
        raise ValueError(f"Pad: cannot pad an empty image ({h}x{w}) in {mode} mode")
    widths = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    return xp.pad(x, widths, mode=np_mode)


def hflip(x):
    return x[..., ::-1]


def vflip(x):
    return x[..., ::-1, :]


def _nearest_indices(out_size, in_size):
    """torch's 'nearest' source indices: floor(i * in / out) in float32."""
    if out_size == in_size:
        return np.arange(out_size)
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.floor(np.arange(out_size, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(src, in_size - 1)


def _linear_weights(out_size, in_size, antialias):
    """The (out, in) float64 matrix of bilinear resampling along one axis (torch's
    align_corners=False; with `antialias`, the triangle filter widened by the scale when
    shrinking, as torch's and Pillow's antialiased bilinear)."""
    scale = in_size / out_size
    weights = np.zeros((out_size, in_size), dtype=np.float64)
    if antialias:
        support = scale if scale >= 1.0 else 1.0
        inv = 1.0 / scale if scale >= 1.0 else 1.0
        for i in range(out_size):
            center = scale * (i + 0.5)
            lo = max(int(center - support + 0.5), 0)
            hi = min(int(center + support + 0.5), in_size)
            j = np.arange(lo, hi)
            w = np.maximum(0.0, 1.0 - np.abs((j - center + 0.5) * inv))
            total = w.sum()
            weights[i, lo:hi] = w / total if total > 0 else 0
        return weights
    src = np.maximum(scale * (np.arange(out_size) + 0.5) - 0.5, 0.0)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, in_size - 1)
    i0 = np.minimum(i0, in_size - 1)
    frac = src - i0
    rows = np.arange(out_size)
    np.add.at(weights, (rows, i0), 1.0 - frac)
    np.add.at(weights, (rows, i1), frac)
    return weights


def resize(x, size, interpolation="bilinear", antialias=True):
    """Resize the last two axes to `size` = (height, width): 'nearest' or 'bilinear'
    (antialiased when shrinking if `antialias`), as torchvision on tensors."""
    oh, ow = size
    h, w = x.shape[-2:]
    if (oh, ow) == (h, w):
        return x.copy()
    xp = xp_of(x)
    if interpolation == "nearest":
        rows = xp.asarray(_nearest_indices(oh, h))
        cols = xp.asarray(_nearest_indices(ow, w))
        return x[..., rows[:, None], cols[None, :]]
    if interpolation != "bilinear":
        raise ValueError(f"resize: interpolation {interpolation!r} is not supported on "
                         "tensors here (nearest or bilinear; PIL images support all of "
                         "Pillow's filters)")
    compute = _compute_type(x.dtype)
    wh = xp.asarray(_linear_weights(oh, h, antialias), dtype=compute)
    ww = xp.asarray(_linear_weights(ow, w, antialias), dtype=compute)
    y = x.astype(compute, copy=False)
    y = xp.matmul(y, ww.T)                       # (..., h, ow)
    y = xp.matmul(wh, y)                         # (..., oh, ow)
    return _to_dtype(y, x.dtype, rounding=True)


def resized_output_size(height, width, size, max_size=None):
    """torchvision's rule: an int (or 1-sequence) matches the smaller edge keeping the
    aspect ratio (the longer edge truncated), capped by `max_size`; (h, w) is exact."""
    if isinstance(size, numbers.Integral) or len(size) == 1:
        requested = int(size if isinstance(size, numbers.Integral) else size[0])
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = requested, int(requested * long / short)
        if max_size is not None:
            if max_size <= requested:
                raise ValueError(f"max_size = {max_size} must be strictly greater than the "
                                 f"requested size for the smaller edge size = {size}")
            if new_long > max_size:
                new_short, new_long = int(max_size * new_short / new_long), max_size
        return (new_long, new_short) if width <= height else (new_short, new_long)
    if max_size is not None:
        raise ValueError("max_size should only be passed if size specifies the length of "
                         "the smaller edge, i.e. size should be an int or a sequence of "
                         f"length 1, got size={size}")
    return int(size[0]), int(size[1])


def rotation_matrix(angle, center_offset=(0.0, 0.0)):
    """torchvision's inverse affine matrix of a rotation by `angle` degrees
    (counter-clockwise) about the image centre shifted by `center_offset` (x, y)."""
    rot = math.radians(-angle)
    cx, cy = center_offset
    a, b, c, d = math.cos(rot), -math.sin(rot), math.sin(rot), math.cos(rot)
    m = [d, -b, 0.0, -c, a, 0.0]
    m[2] += m[0] * (-cx) + m[1] * (-cy) + cx
    m[5] += m[3] * (-cx) + m[4] * (-cy) + cy
    return m


def rotated_size(matrix, w, h):
    """The (width, height) that holds the whole rotated image (torchvision's rule)."""
    pts = np.array([[-0.5 * w, -0.5 * h, 1.0], [-0.5 * w, 0.5 * h, 1.0],
                    [0.5 * w, 0.5 * h, 1.0], [0.5 * w, -0.5 * h, 1.0]], dtype=np.float32)
    theta = np.asarray(matrix, dtype=np.float32).reshape(2, 3)
    new = pts @ theta.T
    lo = new.min(axis=0) + np.array([w * 0.5, h * 0.5], dtype=np.float32)
    hi = new.max(axis=0) + np.array([w * 0.5, h * 0.5], dtype=np.float32)
    tol = 1e-4
    cmax = np.ceil(np.trunc(hi / tol) * tol)
    cmin = np.floor(np.trunc(lo / tol) * tol)
    size = cmax - cmin
    return int(size[0]), int(size[1])


def affine_sample(x, matrix, out_size, interpolation="nearest", fill=0):
    """Sample `x` at the inverse-affine `matrix` image of every output pixel (torch's
    affine grid and grid_sample, align_corners=False, zero padding), then paint the
    outside with `fill` as torchvision does."""
    xp = xp_of(x)
    h, w = x.shape[-2:]
    ow, oh = out_size
    compute = _compute_type(x.dtype)
    xs = np.linspace(-ow * 0.5 + 0.5, ow * 0.5 - 0.5, ow, dtype=np.float32)
    ys = np.linspace(-oh * 0.5 + 0.5, oh * 0.5 - 0.5, oh, dtype=np.float32)
    # torch's order of float32 operations: the matrix is divided by half the size first
    m = np.asarray(matrix, dtype=np.float32).reshape(2, 3)
    m = m / np.array([[0.5 * w], [0.5 * h]], dtype=np.float32)
    gx = (xs[None, :] * m[0, 0] + ys[:, None] * m[0, 1]) + m[0, 2]
    gy = (xs[None, :] * m[1, 0] + ys[:, None] * m[1, 1]) + m[1, 2]
    one, two = np.float32(1), np.float32(2)
    ix = ((gx + one) * np.float32(w) - one) / two   # source pixel coordinates
    iy = ((gy + one) * np.float32(h) - one) / two
    src = x.astype(compute, copy=False)
    fill_values = np.asarray(fill if fill is not None else 0, dtype=np.float64).reshape(-1)
    fill_arr = xp.asarray(fill_values.astype(compute))
    if x.ndim >= 3 and fill_values.size > 1:
        fill_arr = fill_arr.reshape(-1, 1, 1)
    if interpolation == "nearest":
        cx = np.rint(ix).astype(np.int64)
        cy = np.rint(iy).astype(np.int64)
        inside = (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
        out = src[..., xp.asarray(np.clip(cy, 0, h - 1)), xp.asarray(np.clip(cx, 0, w - 1))]
        mask = xp.asarray(inside)
        out = xp.where(mask, out, fill_arr if fill is not None else 0)
    elif interpolation == "bilinear":
        x0 = np.floor(ix).astype(np.int64)
        y0 = np.floor(iy).astype(np.int64)
        fx = (ix - x0).astype(compute)
        fy = (iy - y0).astype(compute)
        out = 0
        coverage = 0
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                yy, xx = y0 + dy, x0 + dx
                ok = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
                weight = xp.asarray(np.where(ok, wy * wx, 0).astype(compute))
                vals = src[..., xp.asarray(np.clip(yy, 0, h - 1)),
                           xp.asarray(np.clip(xx, 0, w - 1))]
                out = out + vals * weight
                coverage = coverage + weight
        if fill is not None:
            out = out * coverage + (1 - coverage) * fill_arr
    else:
        raise ValueError(f"rotate: interpolation {interpolation!r} is not supported on "
                         "tensors (nearest or bilinear)")
    return _to_dtype(out, x.dtype, rounding=True)


# ---------------------------------------------------------------------- colour
def rgb_to_grayscale(x, num_output_channels=1):
    """0.2989 R + 0.587 G + 0.114 B (truncated for integer images), as torchvision."""
    if x.ndim < 3 or x.shape[-3] not in (1, 3):
        raise TypeError(f"Grayscale: expected an image with 1 or 3 channels (..., C, H, W), "
                        f"got shape {tuple(x.shape)}")
    if num_output_channels not in (1, 3):
        raise ValueError("num_output_channels should be either 1 or 3")
    xp = xp_of(x)
    if x.shape[-3] == 3:
        compute = _compute_type(x.dtype)
        r, g, b = (x[..., k, :, :].astype(compute) for k in range(3))
        gray = (compute(0.2989) * r + compute(0.587) * g + compute(0.114) * b)
        gray = _to_dtype(gray, x.dtype, rounding=False)[..., None, :, :]
    else:
        gray = x.copy()
    if num_output_channels == 3:
        return xp.broadcast_to(gray, gray.shape[:-3] + (3,) + gray.shape[-2:]).copy()
    return gray


def _blend(x1, x2, ratio):
    xp = xp_of(x1)
    compute = _compute_type(x1.dtype)
    out = compute(ratio) * x1.astype(compute) + compute(1.0 - ratio) * x2.astype(compute)
    return _to_dtype(xp.clip(out, 0, max_value(x1.dtype)), x1.dtype, rounding=False)


def adjust_brightness(x, factor):
    return _blend(x, xp_of(x).zeros_like(x), factor)


def adjust_contrast(x, factor):
    compute = _compute_type(x.dtype)
    gray = rgb_to_grayscale(x) if x.shape[-3] == 3 else x
    mean = gray.astype(compute).mean(axis=(-3, -2, -1), keepdims=True)
    return _blend(x, mean, factor)


def adjust_saturation(x, factor):
    if x.shape[-3] == 1:
        return x.copy()
    return _blend(x, rgb_to_grayscale(x), factor)


def _rgb_to_hsv(img):
    xp = xp_of(img)
    r, g, b = img[..., 0, :, :], img[..., 1, :, :], img[..., 2, :, :]
    maxc, minc = img.max(axis=-3), img.min(axis=-3)
    eqc = maxc == minc
    cr = maxc - minc
    ones = xp.ones_like(maxc)
    s = cr / xp.where(eqc, ones, maxc)
    div = xp.where(eqc, ones, cr)
    rc, gc, bc = (maxc - r) / div, (maxc - g) / div, (maxc - b) / div
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = xp.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)
    return h.astype(img.dtype), s, maxc


def _hsv_to_rgb(h, s, v):
    xp = xp_of(h)
    i = xp.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.astype(np.int32) % 6
    p = xp.clip(v * (1.0 - s), 0.0, 1.0)
    q = xp.clip(v * (1.0 - s * f), 0.0, 1.0)
    t = xp.clip(v * (1.0 - s * (1.0 - f)), 0.0, 1.0)
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    channels = []
    for c in range(3):
        out = xp.zeros_like(v)
        for k, triple in enumerate(choices):
            out = xp.where(i == k, triple[c], out)
        channels.append(out)
    return xp.stack(channels, axis=-3)


def adjust_hue(x, factor):
    """Rotate the hue by `factor` turns (in [-0.5, 0.5]) in HSV space, as torchvision."""
    if not -0.5 <= factor <= 0.5:
        raise ValueError(f"hue_factor ({factor}) is not in [-0.5, 0.5].")
    if x.shape[-3] == 1:
        return x.copy()
    img = convert_image_dtype(x, np.float32)
    h, s, v = _rgb_to_hsv(img)
    h = (h + np.float32(factor)) % np.float32(1.0)
    return convert_image_dtype(_hsv_to_rgb(h, s, v).astype(np.float32), x.dtype)


def convert_image_dtype(x, dtype):
    """Change the dtype and rescale, as torchvision's convert_image_dtype: ints to floats
    divide by the int maximum; floats to ints multiply by (maximum + 1 - 0.001) and
    truncate; ints to ints rescale by powers of two."""
    dtype = np.dtype(dtype)
    src = x.dtype
    if src == dtype:
        return x
    if src.kind == "f":
        if dtype.kind == "f":
            return x.astype(dtype)
        if (src == np.float32 and dtype in (np.int32, np.int64)) or (
                src == np.float64 and dtype == np.int64):
            raise RuntimeError(f"The cast from {src} to {dtype} cannot be performed safely.")
        scaled = x * (max_value(dtype) + 1.0 - 1e-3)
        return scaled.astype(dtype)
    if dtype.kind == "f":
        return (x.astype(dtype) / dtype.type(max_value(src))).astype(dtype)
    in_max, out_max = int(max_value(src)), int(max_value(dtype))
    if in_max > out_max:
        factor = (in_max + 1) // (out_max + 1)
        return (x // factor).astype(dtype)
    factor = (out_max + 1) // (in_max + 1)
    return x.astype(dtype) * dtype.type(factor)


def erase(x, top, left, height, width, value):
    """A copy of `x` with the box [top:top+h, left:left+w] set to `value` (broadcast)."""
    out = x.copy()
    out[..., top:top + height, left:left + width] = value
    return out
