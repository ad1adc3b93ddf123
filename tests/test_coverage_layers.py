"""Padding layers, PixelShuffle/PixelUnshuffle/ChannelShuffle, Dropout2d and
Upsample/F.interpolate: float64 gradient checks, torch parity of outputs and every
gradient, hypothesis-drawn interpolation geometry against a slow per-pixel loop."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygrad_cv as tc
from tinygrad_cv.nn import functional as F
from tests.helpers import gradcheck, requires_torch, torch, torch_parity

rng = np.random.default_rng(17)


def N(*shape):
    return rng.standard_normal(shape)


def F32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


# ----------------------------------------------------------------------------- padding

PAD_LAYERS = [
    ("ZeroPad2d", lambda m: m.nn.ZeroPad2d(2), (2, 3, 4, 5)),
    ("ZeroPad2d_tuple", lambda m: m.nn.ZeroPad2d((1, 0, 2, 3)), (3, 4, 5)),
    ("ZeroPad2d_crop", lambda m: m.nn.ZeroPad2d((-1, 2, 0, -2)), (1, 2, 4, 5)),
    ("ConstantPad2d", lambda m: m.nn.ConstantPad2d((1, 2, 0, 1), 3.5), (2, 2, 3, 3)),
    ("ConstantPad1d", lambda m: m.nn.ConstantPad1d(2, -1.0), (2, 3, 4)),
    ("ZeroPad1d", lambda m: m.nn.ZeroPad1d((0, 3)), (3, 4)),
    ("ReflectionPad2d", lambda m: m.nn.ReflectionPad2d(2), (2, 3, 4, 5)),
    ("ReflectionPad2d_tuple", lambda m: m.nn.ReflectionPad2d((1, 3, 2, 0)), (3, 4, 5)),
    ("ReflectionPad1d", lambda m: m.nn.ReflectionPad1d((2, 1)), (2, 3, 4)),
    ("ReplicationPad2d", lambda m: m.nn.ReplicationPad2d((3, 1, 0, 4)), (2, 2, 3, 3)),
    ("ReplicationPad1d", lambda m: m.nn.ReplicationPad1d(3), (2, 3, 2)),
    ("CircularPad2d", lambda m: m.nn.CircularPad2d(1), (1, 2, 3, 3)),
]


@requires_torch
@pytest.mark.parametrize("name,build,shape", PAD_LAYERS, ids=[p[0] for p in PAD_LAYERS])
def test_padding_layers_match_torch(name, build, shape, device):
    ours, theirs = build(tc), build(torch)
    assert repr(ours) == repr(theirs)
    torch_parity(ours, theirs, N(*shape), device=device, atol=1e-14, rtol=1e-14)


@pytest.mark.parametrize("name,build,shape", PAD_LAYERS, ids=[p[0] for p in PAD_LAYERS])
def test_padding_layers_gradcheck(name, build, shape):
    gradcheck(build(tc), N(*shape))


@requires_torch
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_functional_pad_modes_match_torch(mode):
    pad = (2, 1, 1, 2)
    torch_parity(lambda x: F.pad(x, pad, mode=mode),
                 lambda x: torch.nn.functional.pad(x, pad, mode=mode), N(2, 3, 4, 4),
                 atol=1e-14, rtol=1e-14)


def test_padding_errors():
    with pytest.raises(ValueError, match="ReflectionPad2d"):
        tc.nn.ReflectionPad2d((1, 2))
    with pytest.raises(ValueError, match="reflect padding 4 must be smaller"):
        tc.nn.ReflectionPad2d(4)(tc.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="3D .unbatched. or 4D"):
        tc.nn.ZeroPad2d(1)(tc.zeros(4, 4))


# ----------------------------------------------------------------------------- shuffles

SHUFFLES = [
    ("pixel_shuffle", lambda m, x: tF(m).pixel_shuffle(x, 2), (2, 8, 3, 4)),
    ("pixel_shuffle_3", lambda m, x: tF(m).pixel_shuffle(x, 3), (9, 2, 2)),
    ("pixel_shuffle_5d", lambda m, x: tF(m).pixel_shuffle(x, 2), (2, 1, 4, 2, 3)),
    ("pixel_unshuffle", lambda m, x: tF(m).pixel_unshuffle(x, 2), (2, 3, 4, 6)),
    ("pixel_unshuffle_3d", lambda m, x: tF(m).pixel_unshuffle(x, 3), (1, 6, 3)),
    ("channel_shuffle", lambda m, x: tF(m).channel_shuffle(x, 3), (2, 6, 2, 3)),
    ("channel_shuffle_3d", lambda m, x: tF(m).channel_shuffle(x, 2), (3, 4, 5)),
    ("PixelShuffle", lambda m, x: m.nn.PixelShuffle(2)(x), (1, 4, 2, 2)),
    ("PixelUnshuffle", lambda m, x: m.nn.PixelUnshuffle(2)(x), (1, 1, 4, 2)),
    ("ChannelShuffle", lambda m, x: m.nn.ChannelShuffle(2)(x), (2, 4, 3, 3)),
]


def tF(m):
    return torch.nn.functional if m is torch else F


@requires_torch
@pytest.mark.parametrize("name,fn,shape", SHUFFLES, ids=[s[0] for s in SHUFFLES])
def test_shuffles_match_torch(name, fn, shape, device):
    torch_parity(lambda x: fn(tc, x), lambda x: fn(torch, x), N(*shape), device=device,
                 atol=0, rtol=0)


@pytest.mark.parametrize("name,fn,shape", SHUFFLES, ids=[s[0] for s in SHUFFLES])
def test_shuffles_gradcheck(name, fn, shape):
    gradcheck(lambda x: fn(tc, x), N(*shape))


def test_shuffle_roundtrip_reprs_and_errors():
    x = tc.randn(2, 8, 3, 5)
    np.testing.assert_array_equal(F.pixel_unshuffle(F.pixel_shuffle(x, 2), 2).numpy(),
                                  x.numpy())
    with pytest.raises(RuntimeError, match="divisible by the square"):
        F.pixel_shuffle(tc.zeros(1, 6, 2, 2), 2)
    with pytest.raises(RuntimeError, match="divisible by downscale_factor"):
        F.pixel_unshuffle(tc.zeros(1, 1, 3, 4), 2)
    with pytest.raises(RuntimeError, match="divisible by groups"):
        F.channel_shuffle(tc.zeros(1, 5, 2, 2), 2)
    if torch is not None:
        for build in (lambda m: m.nn.PixelShuffle(3), lambda m: m.nn.PixelUnshuffle(2),
                      lambda m: m.nn.ChannelShuffle(4)):
            assert repr(build(tc)) == repr(build(torch))


# ----------------------------------------------------------------------------- Dropout2d

def test_dropout2d_zeroes_whole_channels_and_scales(device):
    tc.manual_seed(0)
    layer = tc.nn.Dropout2d(p=0.4)
    x = tc.ones(64, 32, 3, 3, device=device, requires_grad=True)
    y = layer(x)
    per_channel = y.numpy().reshape(64, 32, 9)
    assert np.all(per_channel.min(axis=2) == per_channel.max(axis=2))   # whole planes
    values = np.unique(per_channel)
    np.testing.assert_allclose(sorted(values), [0.0, 1 / 0.6], rtol=1e-6)
    kept = (per_channel[:, :, 0] > 0).mean()
    assert abs(kept - 0.6) < 0.04
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), y.numpy())       # grad = mask * scale
    layer.eval()
    assert layer(x) is x
    x3 = tc.ones(4, 16, 10, device=device)                       # read as (N, C, L)
    out3 = tc.nn.Dropout2d(0.5)(x3).numpy()
    assert np.all(out3.min(axis=2) == out3.max(axis=2))
    assert repr(layer) == "Dropout2d(p=0.4, inplace=False)"
    with pytest.raises(ValueError, match="between 0 and 1"):
        tc.nn.Dropout2d(1.5)
    assert np.all(F.dropout2d(tc.ones(2, 3, 2, 2), p=1.0).numpy() == 0)


# ----------------------------------------------------------------------------- interpolate

def loop_reference(x, out_size, mode, align_corners, scales):
    """F.interpolate by a loop over every output pixel of a (N, C, H, W) array, written
    from torch's documented index rules (float32 index arithmetic for the nearest modes
    and for float32 inputs, as torch's CPU kernels). Returns (out, adjoint) where
    adjoint(u) is the input gradient for an upstream gradient u."""
    n, c, h, w = x.shape
    oh, ow = out_size
    t = np.float32 if x.dtype == np.float32 else np.float64

    def taps(dst, in_size, out_n, scale):
        if mode == "nearest":
            if out_n == in_size:
                return [(dst, 1.0)]
            if out_n == 2 * in_size:
                return [(dst // 2, 1.0)]
            s = np.float32(1.0 / scale) if scale else np.float32(in_size) / np.float32(out_n)
            return [(min(int(math.floor(np.float32(dst) * s)), in_size - 1), 1.0)]
        if mode == "nearest-exact":
            s = np.float32(1.0 / scale) if scale else np.float32(in_size) / np.float32(out_n)
            return [(min(int(math.floor(np.float32((dst + 0.5) * float(s)))), in_size - 1),
                     1.0)]
        # torch copies an unchanged axis, except bicubic with a scale_factor that does
        # not give that size (the taps move: 0.8 * dst for scale 1.25 on a size-2 axis)
        if out_n == in_size and (mode != "bicubic" or not scale or scale * in_size == out_n):
            return [(dst, 1.0)]
        if align_corners:
            ratio = t(in_size - 1) / t(out_n - 1) if out_n > 1 else t(0)
            real = ratio * t(dst)
        else:
            ratio = t(1.0 / scale) if scale else t(in_size) / t(out_n)
            real = ratio * (t(dst) + t(0.5)) - t(0.5)
            if mode != "bicubic":
                real = max(real, t(0))
        if mode == "bicubic":         # Keys' cubic convolution, A = -0.75, edge-clamped taps
            a, base = t(-0.75), math.floor(real)
            frac = t(real - t(base))

            def kernel(d):
                d = abs(d)
                if d <= 1:
                    return ((a + 2) * d - (a + 3)) * d * d + 1
                return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
            return [(min(max(base - 1 + k, 0), in_size - 1), kernel(frac - t(k - 1)))
                    for k in range(4)]
        i0 = min(int(math.floor(real)), in_size - 1)
        lam = min(max(real - t(i0), t(0)), t(1))
        i1 = i0 + (1 if i0 < in_size - 1 else 0)
        return [(i0, t(1) - lam), (i1, lam)]

    rows = [taps(i, h, oh, scales[0]) for i in range(oh)]
    cols = [taps(j, w, ow, scales[1]) for j in range(ow)]
    out = np.zeros((n, c, oh, ow), x.dtype)
    for i in range(oh):
        for j in range(ow):
            acc = 0
            for hi, hw in rows[i]:
                inner = 0
                for wi, ww in cols[j]:
                    inner = inner + ww * x[:, :, hi, wi]
                acc = acc + hw * inner
            out[:, :, i, j] = acc

    def adjoint(u):
        g = np.zeros_like(x)
        for i in range(oh):
            for j in range(ow):
                for hi, hw in rows[i]:
                    for wi, ww in cols[j]:
                        g[:, :, hi, wi] += hw * ww * u[:, :, i, j]
        return g
    return out, adjoint


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 9), w=st.integers(1, 9),
       mode=st.sampled_from(["nearest", "nearest-exact", "bilinear", "bilinear-ac", "bicubic",
                             "bicubic-ac"]),
       by_size=st.booleans(), oh=st.integers(1, 13), ow=st.integers(1, 13),
       sh=st.floats(0.3, 3.5), sw=st.floats(0.3, 3.5), recompute=st.booleans(),
       f32=st.booleans(), seed=st.integers(0, 2 ** 16), dense=st.booleans())
def test_interpolate_geometry_against_loop_reference(h, w, mode, by_size, oh, ow, sh, sw,
                                                     recompute, f32, seed, dense):
    """Both CPU paths (one GEMM per axis, or gathers + scatter-add) are drawn."""
    from tinygrad_cv.ops import interpolate as interp
    saved = interp.DENSE_MAX_INPUT
    interp.DENSE_MAX_INPUT = saved if dense else 0
    try:
        _check_interpolate_geometry(h, w, mode, by_size, oh, ow, sh, sw, recompute, f32, seed)
    finally:
        interp.DENSE_MAX_INPUT = saved


def _check_interpolate_geometry(h, w, mode, by_size, oh, ow, sh, sw, recompute, f32, seed):
    align = mode.endswith("-ac")
    mode = mode[:-3] if align else mode
    if not by_size and (math.floor(h * sh) < 1 or math.floor(w * sw) < 1):
        return
    r = np.random.default_rng(seed)
    dtype = np.float32 if f32 else np.float64
    x = r.standard_normal((2, 2, h, w)).astype(dtype)
    kwargs = dict(mode=mode, align_corners=True if align else
                  (False if mode in ("bilinear", "bicubic") else None))
    if by_size:
        kwargs["size"] = (oh, ow)
        out_size, scales = (oh, ow), (None, None)
    else:
        kwargs["scale_factor"] = (sh, sw)
        kwargs["recompute_scale_factor"] = recompute
        out_size = (math.floor(h * sh), math.floor(w * sw))
        scales = (None, None) if recompute else (sh, sw)
    ref, adjoint = loop_reference(x, out_size, mode, align, scales)
    xt = tc.tensor(x, dtype=dtype, requires_grad=True)
    out = F.interpolate(xt, **kwargs)
    tol = 1e-5 if f32 else 1e-12
    np.testing.assert_allclose(out.numpy(), ref, rtol=tol, atol=tol)
    u = r.standard_normal(ref.shape).astype(dtype)
    out.backward(tc.tensor(u, dtype=dtype))
    np.testing.assert_allclose(xt.grad.numpy(), adjoint(u), rtol=tol, atol=tol)
    if torch is not None:
        xr = torch.tensor(x, requires_grad=True)
        outr = torch.nn.functional.interpolate(xr, **kwargs)
        np.testing.assert_allclose(out.numpy(), outr.detach().numpy(), rtol=tol, atol=tol)
        outr.backward(torch.tensor(u))
        # torch's bicubic backward copies the gradient whenever no size changes, although
        # its forward moved the taps by a given scale_factor: there it is not the adjoint
        # of its own forward, and ours (checked against the loop adjoint above) is
        copies = mode == "bicubic" and out_size == (h, w) and scales != (None, None)
        if not copies:
            np.testing.assert_allclose(xt.grad.numpy(), xr.grad.numpy(), rtol=tol, atol=tol)


INTERP = [
    ("nearest_x2", dict(scale_factor=2), (2, 3, 4, 5)),
    ("nearest_size", dict(size=(7, 3)), (2, 3, 4, 5)),
    ("nearest_down", dict(scale_factor=0.5), (1, 2, 7, 9)),
    ("nearest_exact", dict(size=(5, 8), mode="nearest-exact"), (1, 2, 3, 5)),
    ("bilinear_x2", dict(scale_factor=2, mode="bilinear"), (2, 3, 4, 5)),
    ("bilinear_ac", dict(scale_factor=2, mode="bilinear", align_corners=True), (2, 3, 4, 5)),
    ("bilinear_size", dict(size=(6, 3), mode="bilinear"), (1, 2, 4, 7)),
    ("bilinear_size_ac", dict(size=(1, 9), mode="bilinear", align_corners=True), (1, 2, 4, 3)),
    ("bilinear_frac", dict(scale_factor=(1.3, 0.7), mode="bilinear"), (1, 1, 6, 9)),
    ("bilinear_recompute", dict(scale_factor=1.3, mode="bilinear",
                                recompute_scale_factor=True), (1, 1, 6, 9)),
    ("linear_1d", dict(scale_factor=2.5, mode="linear"), (2, 3, 5)),
    ("nearest_1d", dict(size=7), (2, 3, 5)),
    ("trilinear", dict(scale_factor=(1.5, 2, 0.8), mode="trilinear"), (1, 2, 3, 4, 5)),
    ("bicubic_x2", dict(scale_factor=2, mode="bicubic"), (2, 3, 4, 5)),
    ("bicubic_ac", dict(size=(7, 3), mode="bicubic", align_corners=True), (1, 2, 4, 5)),
    ("bicubic_down", dict(scale_factor=0.6, mode="bicubic"), (1, 2, 7, 9)),
    ("nearest_3d", dict(scale_factor=2), (1, 1, 2, 3, 2)),
]


@requires_torch
@pytest.mark.parametrize("path", ["gemm", "gather"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,kwargs,shape", INTERP, ids=[c[0] for c in INTERP])
def test_interpolate_matches_torch(name, kwargs, shape, dtype, path, device, monkeypatch):
    if path == "gather":
        from tinygrad_cv.ops import interpolate as interp
        monkeypatch.setattr(interp, "DENSE_MAX_INPUT", 0)
    tol = dict(atol=1e-12, rtol=1e-12) if dtype == np.float64 else dict(atol=1e-5, rtol=1e-5)
    torch_parity(lambda x: F.interpolate(x, **kwargs),
                 lambda x: torch.nn.functional.interpolate(x, **kwargs),
                 N(*shape).astype(dtype), device=device, **tol)


@pytest.mark.parametrize("name,kwargs,shape", INTERP, ids=[c[0] for c in INTERP])
def test_interpolate_gradcheck(name, kwargs, shape, device):
    gradcheck(lambda x: F.interpolate(x, **kwargs), N(*shape), device=device)


@requires_torch
@pytest.mark.parametrize("build", [
    lambda m: m.nn.Upsample(scale_factor=2),
    lambda m: m.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
    lambda m: m.nn.Upsample(size=(5, 3), mode="bilinear"),
    lambda m: m.nn.Upsample(scale_factor=(2, 1.5), mode="nearest"),
    lambda m: m.nn.UpsamplingBilinear2d(scale_factor=2),
    lambda m: m.nn.UpsamplingNearest2d(size=6),
])
def test_upsample_modules_match_torch(build):
    ours, theirs = build(tc), build(torch)
    assert repr(ours) == repr(theirs)
    torch_parity(ours, theirs, N(2, 3, 4, 4), atol=1e-12, rtol=1e-12)


@requires_torch
@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_interpolate_non_finite_values_stay_local_like_torch(mode):
    x = N(1, 2, 6, 5)
    x[0, 0, 2, 3] = np.inf
    x[0, 1, 4, 0] = np.nan
    ours = F.interpolate(tc.tensor(x, dtype=tc.float64), scale_factor=2, mode=mode).numpy()
    ref = torch.nn.functional.interpolate(torch.tensor(x), scale_factor=2, mode=mode).numpy()
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(ref))
    np.testing.assert_allclose(ours[np.isfinite(ref)], ref[np.isfinite(ref)], rtol=1e-12)


def test_interpolate_errors():
    x = tc.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="align_corners option"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        F.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(ValueError, match="either size or scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="not meaningful"):
        F.interpolate(x, size=3, recompute_scale_factor=True)
    with pytest.raises(ValueError, match="same number of spatial dimensions"):
        F.interpolate(x, size=(3, 3, 3))
    with pytest.raises(NotImplementedError, match="bilinear mode needs 4D"):
        F.interpolate(tc.zeros(1, 1, 4), scale_factor=2, mode="bilinear")
    with pytest.raises(NotImplementedError, match="area"):
        F.interpolate(x, scale_factor=2, mode="area")
    with pytest.raises(RuntimeError, match="greater than 0"):
        F.interpolate(x, scale_factor=0.1)
