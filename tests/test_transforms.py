"""Image transforms against torchvision 0.28 (the oracle; see tests/torchvision_oracle.py).

Deterministic transforms must match torchvision within 1/255 on PIL images and on uint8
and float32 tensors; random ones are checked with their randomness pinned (p=1, a
single-valued range) against torchvision's functional ops, and their parameter
distributions against torchvision's own get_params.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv import transforms as T
from tests.helpers import torch
from tests.torchvision_oracle import requires_torchvision, tv_functional, tv_transforms

Image = pytest.importorskip("PIL.Image")


def rgb_array(h=23, w=31, seed=0):
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, h * w * 3).reshape(h, w, 3)
    return np.clip(base + rng.integers(-60, 60, (h, w, 3)), 0, 255).astype(np.uint8)


def pil_rgb(h=23, w=31, seed=0):
    return Image.fromarray(rgb_array(h, w, seed))


def ours_tensor(arr_hwc, dtype=np.uint8):
    chw = np.ascontiguousarray(arr_hwc.transpose(2, 0, 1))
    if dtype == np.float32:
        chw = chw.astype(np.float32) / 255
    return tc.Tensor(chw)


def torch_tensor(arr_hwc, dtype=np.uint8):
    return torch.from_numpy(np.ascontiguousarray(ours_tensor(arr_hwc, dtype).numpy()))


def assert_close_images(ours, theirs, tol_levels=1.0, max_bad_fraction=0.0):
    """Compare a PIL image / Tensor to torchvision's within `tol_levels`/255."""
    a = np.asarray(ours.numpy() if isinstance(ours, tc.Tensor) else ours, dtype=np.float64)
    b = np.asarray(theirs.numpy() if hasattr(theirs, "numpy") else theirs, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = 255.0 if (isinstance(ours, tc.Tensor) and ours.dtype != np.float32
                      and ours.dtype != np.float64) or not isinstance(ours, tc.Tensor) \
        else 1.0
    tol = tol_levels * scale / 255.0 + 1e-6
    bad = np.abs(a - b) > tol
    assert bad.mean() <= max_bad_fraction, (
        f"{bad.sum()} of {bad.size} values differ by more than {tol} "
        f"(max diff {np.abs(a - b).max()})")


def both_kinds(arr):
    """(ours, theirs) input pairs: PIL, uint8 tensor, float32 tensor."""
    return [(Image.fromarray(arr), Image.fromarray(arr)),
            (ours_tensor(arr), torch_tensor(arr)),
            (ours_tensor(arr, np.float32), torch_tensor(arr, np.float32))]


# ---------------------------------------------------------------------- deterministic
@requires_torchvision
@pytest.mark.filterwarnings("ignore:Anti-alias option is always applied")
@pytest.mark.parametrize("size,kwargs", [
    (10, {}), ((15, 40), {}), (50, {}), ((7, 9), {"antialias": False}),
    (40, {"antialias": False}), (12, {"interpolation": T.InterpolationMode.NEAREST}),
    ((40, 61), {"interpolation": T.InterpolationMode.NEAREST}),
    (12, {"max_size": 14}), ([16], {}),
])
def test_resize_matches_torchvision(size, kwargs):
    arr = rgb_array()
    tv_kwargs = dict(kwargs)
    if "interpolation" in tv_kwargs:
        tv_kwargs["interpolation"] = getattr(tv_transforms.InterpolationMode,
                                             tv_kwargs["interpolation"].name)
    for ours_in, theirs_in in both_kinds(arr):
        ours = T.Resize(size, **kwargs)(ours_in)
        theirs = tv_transforms.Resize(size, **tv_kwargs)(theirs_in)
        assert_close_images(ours, theirs)


@requires_torchvision
def test_resize_pil_filters_and_grayscale():
    gray = Image.fromarray(rgb_array()[..., 0])
    for interp in ("BICUBIC", "LANCZOS", "BOX"):
        ours = T.Resize(11, interpolation=getattr(T.InterpolationMode, interp))(gray)
        theirs = tv_transforms.Resize(
            11, interpolation=getattr(tv_transforms.InterpolationMode, interp))(gray)
        assert ours.mode == theirs.mode == "L"
        assert_close_images(ours, theirs, tol_levels=0)


@requires_torchvision
@pytest.mark.parametrize("size", [10, (8, 13), (23, 31), (30, 40), (24, 30), 1])
def test_center_crop_matches_torchvision(size):
    for ours_in, theirs_in in both_kinds(rgb_array()):
        assert_close_images(T.CenterCrop(size)(ours_in),
                            tv_transforms.CenterCrop(size)(theirs_in), tol_levels=0)


@requires_torchvision
@pytest.mark.parametrize("padding", [3, (2, 5), (1, 2, 3, 4), (2, 1, -1, -2)])
@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
def test_pad_matches_torchvision(padding, mode):
    for ours_in, theirs_in in both_kinds(rgb_array(9, 11)):
        fill = 7 if ours_in.__class__.__name__ != "Tensor" or ours_in.dtype == np.uint8 \
            else 0.25
        ours = T.Pad(padding, fill=fill, padding_mode=mode)(ours_in)
        theirs = tv_transforms.Pad(padding, fill=fill, padding_mode=mode)(theirs_in)
        assert_close_images(ours, theirs, tol_levels=0)


@requires_torchvision
def test_pad_with_a_fill_per_channel_on_pil():
    img = pil_rgb(5, 6)
    assert_close_images(T.Pad(2, fill=(10, 20, 30))(img),
                        tv_transforms.Pad(2, fill=(10, 20, 30))(img), tol_levels=0)


@requires_torchvision
def test_flips_with_p_one_and_zero():
    for ours_in, theirs_in in both_kinds(rgb_array()):
        assert_close_images(T.RandomHorizontalFlip(p=1.0)(ours_in),
                            tv_functional.hflip(theirs_in), tol_levels=0)
        assert_close_images(T.RandomVerticalFlip(p=1.0)(ours_in),
                            tv_functional.vflip(theirs_in), tol_levels=0)
        assert_close_images(T.RandomHorizontalFlip(p=0.0)(ours_in), theirs_in, tol_levels=0)


@requires_torchvision
@pytest.mark.parametrize("angle", [30.0, -17.5, 90.0, 45.0])
@pytest.mark.parametrize("interp", ["NEAREST", "BILINEAR"])
@pytest.mark.parametrize("expand", [False, True])
def test_rotation_with_a_fixed_angle_matches_torchvision(angle, interp, expand):
    arr = rgb_array(20, 27)
    ours_t = T.RandomRotation((angle, angle), interpolation=getattr(T.InterpolationMode,
                                                                    interp),
                              expand=expand, fill=(10, 200, 30))
    tv_interp = getattr(tv_transforms.InterpolationMode, interp)
    pil = Image.fromarray(arr)
    assert_close_images(ours_t(pil), tv_functional.rotate(pil, angle, tv_interp, expand,
                                                          fill=[10, 200, 30]), tol_levels=0)
    for dtype, fill in ((np.uint8, [10.0, 200.0, 30.0]), (np.float32, [0.1, 0.5, 0.9])):
        ours = T.RandomRotation((angle, angle), interpolation=getattr(T.InterpolationMode,
                                                                      interp),
                                expand=expand, fill=fill)(ours_tensor(arr, dtype))
        theirs = tv_functional.rotate(torch_tensor(arr, dtype), angle, tv_interp, expand,
                                      fill=fill)
        assert_close_images(ours, theirs)


@requires_torchvision
def test_rotation_about_a_given_center():
    arr = rgb_array(16, 16)
    ours = T.RandomRotation((25, 25), center=(3, 5))(ours_tensor(arr))
    theirs = tv_functional.rotate(torch_tensor(arr), 25.0, center=[3, 5])
    assert_close_images(ours, theirs)
    pil = Image.fromarray(arr)
    assert_close_images(T.RandomRotation((25, 25), center=(3, 5))(pil),
                        tv_functional.rotate(pil, 25.0, center=[3, 5]), tol_levels=0)


@requires_torchvision
@pytest.mark.parametrize("name,factor", [("brightness", 1.4), ("brightness", 0.3),
                                         ("contrast", 0.5), ("contrast", 1.7),
                                         ("saturation", 0.2), ("saturation", 1.8),
                                         ("hue", 0.2), ("hue", -0.35)])
def test_color_jitter_with_one_fixed_factor_matches_torchvision(name, factor):
    arr = rgb_array()
    ours_t = T.ColorJitter(**{name: (factor, factor)})
    adjust = getattr(tv_functional, f"adjust_{name}")
    for ours_in, theirs_in in both_kinds(arr):
        assert_close_images(ours_t(ours_in), adjust(theirs_in, factor))


@requires_torchvision
@pytest.mark.parametrize("channels", [1, 3])
def test_grayscale_matches_torchvision(channels):
    for ours_in, theirs_in in both_kinds(rgb_array()):
        ours = T.Grayscale(channels)(ours_in)
        theirs = tv_transforms.Grayscale(channels)(theirs_in)
        assert_close_images(ours, theirs)
        if not isinstance(ours_in, tc.Tensor):
            assert ours.mode == theirs.mode


@requires_torchvision
def test_conversions_match_torchvision():
    arr = rgb_array()
    pil = Image.fromarray(arr)
    assert_close_images(T.ToTensor()(pil), tv_transforms.ToTensor()(pil), tol_levels=0)
    ours = T.PILToTensor()(pil)
    assert ours.dtype == np.uint8
    assert np.array_equal(ours.numpy(), tv_transforms.PILToTensor()(pil).numpy())
    as_float = T.ConvertImageDtype(np.float32)(ours)
    theirs_float = tv_transforms.ConvertImageDtype(torch.float32)(torch_tensor(arr))
    assert np.allclose(as_float.numpy(), theirs_float.numpy())
    back = T.ConvertImageDtype(tc.uint8)(as_float)
    theirs_back = tv_transforms.ConvertImageDtype(torch.uint8)(theirs_float)
    assert np.array_equal(back.numpy(), theirs_back.numpy())
    wide = T.ConvertImageDtype(np.int16)(ours)
    assert np.array_equal(wide.numpy(), tv_transforms.ConvertImageDtype(torch.int16)(
        torch_tensor(arr)).numpy())
    normalized = T.Normalize((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))(as_float)
    theirs_norm = tv_transforms.Normalize((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))(theirs_float)
    assert np.allclose(normalized.numpy(), theirs_norm.numpy(), atol=1e-6)


@requires_torchvision
def test_resized_crop_with_the_whole_image_is_a_resize():
    arr = rgb_array(20, 20)
    t = T.RandomResizedCrop(9, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    for ours_in, theirs_in in both_kinds(arr):
        assert_close_images(t(ours_in), tv_transforms.Resize((9, 9))(theirs_in))


# ---------------------------------------------------------------------- random draws
def test_random_draws_follow_manual_seed():
    img = ours_tensor(rgb_array())
    pipeline = T.Compose([T.RandomResizedCrop(12), T.RandomHorizontalFlip(),
                          T.ColorJitter(0.4, 0.4, 0.4, 0.1), T.RandomRotation(20),
                          T.RandomErasing(p=1.0)])
    pipeline_f = T.Compose([T.ConvertImageDtype(np.float32), pipeline])
    tc.manual_seed(5)
    a = pipeline_f(img).numpy()
    tc.manual_seed(5)
    b = pipeline_f(img).numpy()
    c = pipeline_f(img).numpy()
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def _offsets_of_crops(padded, crops, size):
    """The (top, left) at which each crop sits in `padded` (all positions checked)."""
    found = []
    h, w = padded.shape[-2:]
    for crop in crops:
        hits = [(i, j) for i in range(h - size + 1) for j in range(w - size + 1)
                if np.array_equal(padded[..., i:i + size, j:j + size], crop)]
        assert hits, "a crop that is no window of the padded image"
        found.append(hits[0])
    return found


def test_random_crop_is_a_uniform_window_of_the_padded_image():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (3, 8, 8), dtype=np.uint8)
    padded = np.pad(img, ((0, 0), (2, 2), (2, 2)), mode="reflect")
    t = T.RandomCrop(8, padding=2, padding_mode="reflect")
    tc.manual_seed(0)
    crops = [t(tc.Tensor(img)).numpy() for _ in range(400)]
    offsets = np.array(_offsets_of_crops(padded, crops, 8))
    counts = np.bincount(offsets[:, 0] * 5 + offsets[:, 1], minlength=25)
    assert counts.min() > 4 and counts.max() < 32            # 16 expected per offset


def test_random_crop_pad_if_needed_and_too_small():
    img = tc.Tensor(np.ones((1, 4, 6), np.float32))
    assert T.RandomCrop((6, 8), pad_if_needed=True)(img).shape == (1, 6, 8)
    with pytest.raises(ValueError, match="larger than input image size"):
        T.RandomCrop(7)(img)


@requires_torchvision
def test_resized_crop_parameters_follow_torchvision_distribution():
    tc.manual_seed(0)
    torch.manual_seed(0)
    ours = np.array([T.RandomResizedCrop.get_params(60, 80, (0.08, 1.0), (0.75, 4 / 3))
                     for _ in range(3000)], dtype=np.float64)
    img = torch.zeros(1, 60, 80)
    theirs = np.array([tv_transforms.RandomResizedCrop.get_params(img, [0.08, 1.0],
                                                                  [0.75, 4 / 3])
                       for _ in range(3000)], dtype=np.float64)
    assert np.allclose(ours.mean(axis=0), theirs.mean(axis=0), rtol=0.06, atol=1.0)
    assert np.allclose(ours.std(axis=0), theirs.std(axis=0), rtol=0.1, atol=1.0)


@requires_torchvision
def test_erasing_parameters_follow_torchvision_distribution():
    img = torch.zeros(3, 40, 40)
    torch.manual_seed(0)
    theirs = np.array([tv_transforms.RandomErasing.get_params(img, (0.02, 0.33), (0.3, 3.3),
                                                              [0.0])[:4]
                       for _ in range(2000)], dtype=np.float64)
    tc.manual_seed(0)
    eraser = T.RandomErasing(p=1.0)
    gen = np.random.default_rng(0)
    ours = np.array([eraser.get_params(np.zeros((3, 40, 40), np.float32), [0.0], gen)[:4]
                     for _ in range(2000)], dtype=np.float64)
    assert np.allclose(ours.mean(axis=0), theirs.mean(axis=0), rtol=0.08, atol=0.6)


def test_random_erasing_erases_one_box_with_the_value():
    tc.manual_seed(1)
    out = T.RandomErasing(p=1.0, value=(1.0, 2.0, 3.0))(tc.Tensor(np.zeros((3, 30, 30),
                                                                          np.float32))).numpy()
    for c, v in enumerate((1.0, 2.0, 3.0)):
        rows, cols = np.nonzero(out[c] == v)
        assert rows.size > 0
        box = out[c, rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert np.all(box == v) and box.size == rows.size       # one full rectangle
    with pytest.raises(TypeError, match="Tensor image"):
        T.RandomErasing()(pil_rgb())


def test_color_jitter_argument_checks():
    with pytest.raises(ValueError, match="non negative"):
        T.ColorJitter(brightness=-1)
    with pytest.raises(ValueError, match="hue"):
        T.ColorJitter(hue=0.7)
    assert T.ColorJitter(brightness=0).brightness is None


# ---------------------------------------------------------------------- batches
def test_cifar_recipe_on_a_batch_draws_per_sample_and_matches_single_images():
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)      # as CIFAR10.data
    recipe = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(),
                        T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))])
    assert T.supports_batches(recipe)
    tc.manual_seed(0)
    out = recipe.apply_batch(batch)
    assert out.shape == (64, 3, 32, 32) and out.dtype == np.float32
    x = out.numpy() * 0.25 + 0.5                                       # undo Normalize
    flips, offsets = 0, set()
    for k in range(64):
        padded = np.pad(batch[k].transpose(2, 0, 1), ((0, 0), (4, 4), (4, 4))) / 255.0
        match = None
        for i in range(9):
            for j in range(9):
                window = padded[:, i:i + 32, j:j + 32]
                for flipped in (False, True):
                    cand = window[..., ::-1] if flipped else window
                    if np.allclose(cand, x[k], atol=1e-5):
                        match = (i, j, flipped)
        assert match is not None, f"sample {k} is no crop/flip of its image"
        flips += match[2]
        offsets.add(match[:2])
    assert 15 < flips < 49 and len(offsets) > 20            # independent per-sample draws


def test_batch_transforms_equal_per_image_results_when_deterministic():
    rng = np.random.default_rng(1)
    batch = rng.integers(0, 256, (5, 20, 24, 3), dtype=np.uint8)
    for t in (T.Resize((10, 12)), T.CenterCrop(11), T.Pad((1, 2), padding_mode="edge"),
              T.Grayscale(3)):
        out = t.apply_batch(batch)
        for k in range(5):
            single = np.asarray(t(Image.fromarray(batch[k]))) if not isinstance(
                t, T.Resize) else t(batch[k])
            assert np.abs(out[k].astype(int) - np.asarray(single).astype(int)).max() <= 1
    tensors = tc.Tensor(batch.transpose(0, 3, 1, 2).astype(np.float32) / 255)
    jitter = T.ColorJitter(brightness=(1.3, 1.3))
    out = jitter.apply_batch(tensors)
    assert out.shape == (5, 3, 20, 24)
    assert np.allclose(out.numpy(), np.clip(tensors.numpy() * 1.3, 0, 1), atol=1e-6)


def test_mnist_style_gray_batches_keep_their_layout():
    batch = np.arange(2 * 6 * 6, dtype=np.uint8).reshape(2, 6, 6)
    out = T.RandomCrop(4).apply_batch(batch)
    assert out.shape == (2, 4, 4) and out.dtype == np.uint8
    assert T.Compose([T.RandomCrop(4), T.ToTensor()]).apply_batch(batch).shape == (2, 1, 4, 4)


def test_lambda_and_errors():
    t = T.Lambda(lambda img: img)
    assert not T.supports_batches(T.Compose([t, T.ToTensor()]))
    with pytest.raises(TypeError, match="callable"):
        T.Lambda(3)
    with pytest.raises(TypeError, match="PIL image, a Tensor"):
        T.CenterCrop(3)([1, 2, 3])
    with pytest.raises(ValueError, match="Padding mode"):
        T.Pad(1, padding_mode="wrap")


# ---------------------------------------------------------------------- functional
@requires_torchvision
def test_functional_ops_match_torchvision():
    from tinygrad_cv.transforms import functional as TF
    arr = rgb_array(18, 25)
    for ours_in, theirs_in in both_kinds(arr):
        pairs = [
            (TF.resize(ours_in, [9, 30]), tv_functional.resize(theirs_in, [9, 30])),
            (TF.crop(ours_in, -2, 3, 10, 30), tv_functional.crop(theirs_in, -2, 3, 10, 30)),
            (TF.center_crop(ours_in, [7, 8]), tv_functional.center_crop(theirs_in, [7, 8])),
            (TF.pad(ours_in, [1, 2], padding_mode="symmetric"),
             tv_functional.pad(theirs_in, [1, 2], padding_mode="symmetric")),
            (TF.hflip(ours_in), tv_functional.hflip(theirs_in)),
            (TF.vflip(ours_in), tv_functional.vflip(theirs_in)),
            (TF.rotate(ours_in, 33.0, expand=True), tv_functional.rotate(theirs_in, 33.0,
                                                                        expand=True)),
            (TF.resized_crop(ours_in, 2, 3, 10, 12, [6, 6]),
             tv_functional.resized_crop(theirs_in, 2, 3, 10, 12, [6, 6])),
            (TF.adjust_contrast(ours_in, 0.6), tv_functional.adjust_contrast(theirs_in, 0.6)),
            (TF.adjust_hue(ours_in, 0.1), tv_functional.adjust_hue(theirs_in, 0.1)),
            (TF.rgb_to_grayscale(ours_in), tv_functional.rgb_to_grayscale(theirs_in)),
        ]
        for ours, theirs in pairs:
            assert_close_images(ours, theirs)
        assert TF.get_dimensions(ours_in) == tv_functional.get_dimensions(theirs_in)
        assert TF.get_image_size(ours_in) == tv_functional.get_image_size(theirs_in)
    float_img = ours_tensor(arr, np.float32)
    pil = T.functional.to_pil_image(float_img)
    theirs = tv_functional.to_pil_image(torch_tensor(arr, np.float32))
    assert pil.mode == theirs.mode == "RGB"
    assert np.array_equal(np.asarray(pil), np.asarray(theirs))
    erased = T.functional.erase(float_img, 1, 2, 3, 4, 0.5)
    theirs = tv_functional.erase(torch_tensor(arr, np.float32), 1, 2, 3, 4,
                                 torch.tensor(0.5))
    assert np.array_equal(erased.numpy(), theirs.numpy())


@requires_torchvision
def test_random_apply_choice_order_grayscale_and_to_pil():
    arr = rgb_array()
    pil = Image.fromarray(arr)
    assert_close_images(T.RandomGrayscale(p=1.0)(pil), tv_transforms.Grayscale(3)(pil),
                        tol_levels=0)
    assert_close_images(T.RandomGrayscale(p=1.0)(ours_tensor(arr)),
                        tv_transforms.Grayscale(3)(torch_tensor(arr)))
    batch = T.RandomGrayscale(p=1.0).apply_batch(arr[None].repeat(3, 0))
    assert_close_images(batch[1], tv_transforms.Grayscale(3)(pil))
    assert T.RandomApply([T.CenterCrop(4)], p=0.0)(pil) is pil
    assert T.RandomApply([T.CenterCrop(4)], p=1.0)(pil).size == (4, 4)
    tc.manual_seed(0)
    sizes = [T.RandomChoice([T.CenterCrop(2), T.CenterCrop(3)], p=[3, 1])(pil).size[0]
             for _ in range(400)]
    assert 0.65 < sizes.count(2) / 400 < 0.85
    orders = {T.RandomOrder([T.CenterCrop(10), T.Resize(4)])(pil).size for _ in range(50)}
    assert orders == {(4, 4), (10, 10)}     # crop then resize, or resize then pad-crop
    tensor = T.ToTensor()(pil)
    ours = T.ToPILImage()(tensor)
    theirs = tv_transforms.ToPILImage()(tv_transforms.ToTensor()(pil))
    assert ours.mode == theirs.mode and np.array_equal(np.asarray(ours), np.asarray(theirs))
