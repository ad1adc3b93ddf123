"""`F.affine_grid` and `F.grid_sample` (spatial transformer networks), 2-D, as torch.

grid_sample reads `input` (N, C, H, W) at the normalised (x, y) in [-1, 1] of each grid
point (N, Ho, Wo, 2): bilinear (four corner taps) or nearest, with `padding_mode`
"zeros" (taps outside read 0) or "border" (coordinates clamped), and `align_corners` as
torch (-1/+1 are the corner pixels' centres when True, their outer edges when False).
Backward gives the input gradient (each tap's weight times the output gradient, added
back) and the grid gradient (bilinear only; the weights' derivatives times the tapped
values), torch's formulas including the border clamp's zero gradient outside.
affine_grid is built from differentiable ops (a constant base grid times theta).
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..autograd import Function
from ..backend import xp_of
from ..tensor import Tensor, wrap_array


def _unnormalize(xp, coord, size, align_corners):
    """Pixel coordinate of a normalised one, and d pixel / d normalised."""
    if align_corners:
        return (coord + 1) / 2 * (size - 1), (size - 1) / 2
    return ((coord + 1) * size - 1) / 2, size / 2


def _clip(xp, coord, size):
    """Border padding: clamp into [0, size - 1]; the gradient is 0 outside, as torch."""
    inside = (coord >= 0) & (coord <= size - 1)
    return xp.clip(coord, 0, size - 1), inside


class GridSample(Function):
    @staticmethod
    def forward(ctx, inp, grid, mode, padding_mode, align_corners):
        xp = xp_of(inp)
        n, c, h, w = inp.shape
        ho, wo = grid.shape[1:3]
        ix, sx = _unnormalize(xp, grid[..., 0], w, align_corners)
        iy, sy = _unnormalize(xp, grid[..., 1], h, align_corners)
        gx_scale = xp.full(ix.shape, sx, dtype=inp.dtype)
        gy_scale = xp.full(iy.shape, sy, dtype=inp.dtype)
        if padding_mode == "border":
            ix, inside_x = _clip(xp, ix, w)
            iy, inside_y = _clip(xp, iy, h)
            gx_scale = gx_scale * inside_x
            gy_scale = gy_scale * inside_y
        flat = inp.reshape(n, c, h * w)
        if mode == "nearest":
            taps = [(xp.rint(ix).astype(np.int64), xp.rint(iy).astype(np.int64),
                     xp.ones(ix.shape, inp.dtype))]
        else:
            x0 = xp.floor(ix).astype(np.int64)
            y0 = xp.floor(iy).astype(np.int64)
            fx, fy = ix - x0, iy - y0
            taps = [(x0, y0, (1 - fx) * (1 - fy)), (x0 + 1, y0, fx * (1 - fy)),
                    (x0, y0 + 1, (1 - fx) * fy), (x0 + 1, y0 + 1, fx * fy)]
        out = xp.zeros((n, c, ho * wo), dtype=inp.dtype)
        saved_taps = []
        for tx, ty, weight in taps:
            valid = (tx >= 0) & (tx < w) & (ty >= 0) & (ty < h)
            index = (xp.clip(ty, 0, h - 1) * w + xp.clip(tx, 0, w - 1)).reshape(n, 1, -1)
            weight = (weight * valid).astype(inp.dtype).reshape(n, 1, -1)
            values = xp.take_along_axis(flat, xp.broadcast_to(index, (n, c, index.shape[2])),
                                        axis=2)
            out += values * weight
            saved_taps.append((index, weight, valid.reshape(n, 1, -1)))
        ctx.save_for_backward(inp, ix, iy, gx_scale, gy_scale)
        ctx.taps, ctx.mode = saved_taps, mode
        return out.reshape(n, c, ho, wo)

    @staticmethod
    def backward(ctx, grad):
        inp, ix, iy, gx_scale, gy_scale = ctx.saved
        xp = xp_of(grad)
        n, c, h, w = inp.shape
        g = grad.reshape(n, c, -1)
        grads = [None, None]
        if ctx.needs_input_grad[0]:
            gin = xp.zeros(n * c * h * w, dtype=grad.dtype)
            base = (xp.arange(n * c) * (h * w)).reshape(n, c, 1)
            for index, weight, _ in ctx.taps:
                where = (base + index).reshape(-1)
                contrib = (g * weight).reshape(-1)
                if xp is np:
                    gin += np.bincount(where, weights=contrib, minlength=gin.size)
                else:
                    import cupyx
                    cupyx.scatter_add(gin, where, contrib)
            grads[0] = gin.reshape(inp.shape)
        if ctx.needs_input_grad[1]:
            if ctx.mode == "nearest":
                grads[1] = xp.zeros(ix.shape + (2,), dtype=grad.dtype)
            else:
                flat = inp.reshape(n, c, h * w)
                x0, y0 = xp.floor(ix), xp.floor(iy)
                fx, fy = (ix - x0).reshape(n, 1, -1), (iy - y0).reshape(n, 1, -1)
                # d weight / d ix and / d iy of the four taps (nw, ne, sw, se)
                dwx = [-(1 - fy), (1 - fy), -fy, fy]
                dwy = [-(1 - fx), -fx, (1 - fx), fx]
                gix = xp.zeros((n, 1, fx.shape[2]), dtype=grad.dtype)
                giy = xp.zeros_like(gix)
                for (index, _, valid), ddx, ddy in zip(ctx.taps, dwx, dwy):
                    values = xp.take_along_axis(
                        flat, xp.broadcast_to(index, (n, c, index.shape[2])), axis=2) * valid
                    gv = (g * values).sum(axis=1, keepdims=True)
                    gix += gv * ddx
                    giy += gv * ddy
                grads[1] = xp.stack([gix.reshape(ix.shape) * gx_scale,
                                     giy.reshape(iy.shape) * gy_scale], axis=-1)
        return tuple(grads)


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    op = "grid_sample"
    for name, t in (("input", input), ("grid", grid)):
        if not isinstance(t, Tensor) or not dtypes.is_floating(t.dtype):
            raise TypeError(f"{op}: {name} must be a floating point Tensor")
    if mode not in ("bilinear", "nearest"):
        raise NotImplementedError(f"{op}: mode={mode!r} is not supported by tinygrad_cv "
                                  f"(bilinear, nearest)")
    if padding_mode not in ("zeros", "border"):
        raise NotImplementedError(f"{op}: padding_mode={padding_mode!r} is not supported by "
                                  f"tinygrad_cv (zeros, border)")
    if input.ndim != 4 or grid.ndim != 4 or grid.shape[-1] != 2 or \
            grid.shape[0] != input.shape[0]:
        raise RuntimeError(f"{op}: expected input (N, C, H, W) and grid (N, Ho, Wo, 2) with "
                           f"the same N, got {input.shape} and {grid.shape}")
    if grid.dtype != input.dtype:
        raise RuntimeError(f"{op}: grid is {grid.dtype} but input is {input.dtype}")
    return GridSample.apply(input, grid, mode=mode, padding_mode=padding_mode,
                            align_corners=bool(align_corners))


def affine_grid(theta, size, align_corners=None):
    """The sampling grid (N, H, W, 2) of the affine maps `theta` (N, 2, 3) for an output
    of `size` (N, C, H, W), as torch.nn.functional.affine_grid."""
    op = "affine_grid"
    if not isinstance(theta, Tensor) or not dtypes.is_floating(theta.dtype):
        raise TypeError(f"{op}: theta must be a floating point Tensor")
    size = tuple(int(s) for s in size)
    if len(size) != 4 or theta.shape != (size[0], 2, 3):
        raise ValueError(f"{op}: expected theta of shape (N, 2, 3) and a 4-D size (N, C, H, W) "
                         f"with the same N, got theta {theta.shape} and size {size}")
    n, _, h, w = size
    xp = xp_of(theta.data)

    def line(steps):
        if steps <= 1:
            return xp.zeros(max(steps, 1), dtype=theta.dtype)
        coords = xp.linspace(-1, 1, steps, dtype=theta.dtype)
        return coords if align_corners else coords * (steps - 1) / steps
    xs, ys = line(w), line(h)
    base = xp.stack([xp.broadcast_to(xs[None, :], (h, w)), xp.broadcast_to(ys[:, None], (h, w)),
                     xp.ones((h, w), dtype=theta.dtype)], axis=-1).reshape(1, h * w, 3)
    base_t = wrap_array(xp.ascontiguousarray(xp.broadcast_to(base, (n, h * w, 3))),
                          theta.device_str)
    return (base_t @ theta.transpose(1, 2)).reshape(n, h, w, 2)
