"""`predict`'s reading of pictures (tinygrad_cv/image_input.py): transparency composited
onto white, light pages inverted, the ink cropped, fitted into 20x20 and centred by
centre of mass in 28x28 as MNIST was made; blank images are errors.

The pictures are made from real MNIST test digits (skipped without TINYGRAD_CV_DATA):
enlarged or shrunk, dark ink placed off-centre on large light noisy pages, and black
ink on transparent backgrounds (RGBA, LA, palette PNG).
"""
import os

import numpy as np
import pytest
from PIL import Image

from tinygrad_cv.cli import main
from tinygrad_cv.errors import UserError
from tinygrad_cv.image_input import load_image, prepare

DATA = os.environ.get("TINYGRAD_CV_DATA")
needs_data = pytest.mark.skipif(not DATA, reason="TINYGRAD_CV_DATA is not set (real MNIST needed)")


@pytest.fixture(scope="module")
def mnist_test():
    from tinygrad_cv.datasets import MNIST
    ds = MNIST(DATA, train=False, download=False)
    return ds._images, ds._labels


def correlation(a, b):
    a = a.ravel() - a.mean()
    b = b.ravel() - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def shift_tolerant_correlation(a, b):
    """The best correlation over shifts of at most one pixel: MNIST's own centres lie
    anywhere in 14 +- 0.5 (rounding), so a one-pixel offset is no preprocessing error."""
    return max(correlation(np.roll(a, (dy, dx), axis=(0, 1)), b)
               for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def place_on_page(digit, scale, rng, page_shape=(300, 400), paper=0.92, noise=0.02):
    """A 28x28 uint8 MNIST digit resized by `scale`, as dark ink at a random place on a
    light grey noisy page; float values in [0, 1] (1 = white)."""
    side = max(2, int(round(28 * scale)))
    ink = np.asarray(Image.fromarray(digit).resize((side, side), Image.BILINEAR),
                     dtype=np.float32) / 255.0
    page = np.full(page_shape, paper, np.float32) + rng.normal(0, noise, page_shape)
    y = rng.integers(0, page_shape[0] - side)
    x = rng.integers(0, page_shape[1] - side)
    page[y:y + side, x:x + side] = np.minimum(page[y:y + side, x:x + side], 1.0 - ink)
    return np.clip(page, 0.0, 1.0)


def save_gray(page, path):
    Image.fromarray((255 * page).round().astype(np.uint8)).save(path)
    return path


@needs_data
@pytest.mark.parametrize("scale", [0.7, 1.0, 3.0, 8.0])
def test_placed_digits_come_back_as_the_mnist_digit(mnist_test, tmp_path, scale):
    images, _ = mnist_test
    rng = np.random.default_rng(int(scale * 10))
    scores = []
    for i in range(40):
        path = save_gray(place_on_page(images[i], scale, rng), tmp_path / f"page{i}.png")
        scores.append(shift_tolerant_correlation(load_image(path), images[i] / 255.0))
    scores = np.array(scores)
    assert np.median(scores) > 0.85, scores
    assert (scores > 0.8).mean() >= 0.9, scores


def _ink_rgba(digit, scale):
    """Black ink whose alpha is the digit's intensity, on a transparent page (the
    colour under the transparency is black too, as drawing programs write it)."""
    side = int(28 * scale)
    alpha = Image.fromarray(digit).resize((side, side), Image.BILINEAR)
    page = Image.new("RGBA", (side * 3, side * 2), (0, 0, 0, 0))
    ink = Image.new("RGBA", (side, side), (0, 0, 0, 255))
    ink.putalpha(alpha)
    page.paste(ink, (side // 3, side // 2))
    return page


@needs_data
@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_black_ink_on_transparent_background(mnist_test, tmp_path, mode):
    images, _ = mnist_test
    scores = []
    for i in range(20):
        rgba = _ink_rgba(images[i], 4)
        if mode == "LA":
            img = rgba.convert("LA")
        elif mode == "P":   # a palette PNG: all 256 entries black, alpha per entry
            alpha = np.asarray(rgba.getchannel("A"))
            img = Image.fromarray(alpha, mode="L").convert("P")
            img.putpalette([0, 0, 0] * 256)
            img.info["transparency"] = bytes(range(256))
        else:
            img = rgba
        path = tmp_path / f"ink{i}.png"
        img.save(path, transparency=img.info.get("transparency")) if mode == "P" else img.save(path)
        with Image.open(path) as check:
            assert check.mode == mode
        scores.append(shift_tolerant_correlation(load_image(path), images[i] / 255.0))
    scores = np.array(scores)
    assert np.median(scores) > 0.85, scores
    assert (scores > 0.8).mean() >= 0.9, scores


@needs_data
def test_predictions_on_placed_digits_match_the_originals(mnist_test, tmp_path, capsys):
    """A small MLP trained for a second: its classes for digits placed off-centre and
    small on large pages (and RGBA on transparency) are its classes for the originals."""
    import tinygrad_cv as tc
    from tinygrad_cv import models, optim
    from tinygrad_cv.data import DataLoader, TensorDataset
    from tinygrad_cv.datasets import MNIST
    from tinygrad_cv.nn import functional as F
    from tinygrad_cv.train import DATASET_STATS, weights_metadata

    mean, std = (v[0] for v in DATASET_STATS["mnist"])
    train = MNIST(DATA, train=True, download=False)
    x = (train._images[:6000].astype(np.float32) / 255.0 - mean) / std
    tc.manual_seed(0)
    model = models.MLP()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loader = DataLoader(TensorDataset(tc.tensor(x[:, None]), tc.tensor(train._labels[:6000])),
                        batch_size=64, shuffle=True, seed=0)
    for data, target in loader:
        opt.zero_grad()
        F.cross_entropy(model(data), target).backward()
        opt.step()
    weights = tmp_path / "mlp.safetensors"
    tc.save(model.state_dict(), weights, metadata=weights_metadata("mlp", "mnist"))

    images, _ = mnist_test
    count = 40
    with tc.no_grad():
        originals = (images[:count].astype(np.float32) / 255.0 - mean) / std
        expected = model(tc.tensor(originals[:, None])).argmax(dim=1).numpy()
    rng = np.random.default_rng(7)
    paths = []
    for i in range(count):
        scale = (0.8, 2.0, 5.0)[i % 3]
        path = tmp_path / f"digit{i}.png"
        if i % 4 == 3:
            _ink_rgba(images[i], scale).save(path)
        else:
            save_gray(place_on_page(images[i], scale, rng, page_shape=(240, 320)), path)
        paths.append(str(path))
    assert main(["predict", str(weights), *paths]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == count
    predicted = np.array([int(line.split(": ")[1].split(" ")[0]) for line in lines])
    agreement = (predicted == expected).mean()
    assert agreement >= 0.85, (agreement, predicted, expected)


def test_blank_images_are_errors_not_classes(tmp_path):
    for name, img in [("white.png", Image.new("L", (64, 64), 255)),
                      ("black.png", Image.new("L", (64, 64), 0)),
                      ("grey.jpg", Image.new("RGB", (64, 64), (128, 128, 128))),
                      ("clear.png", Image.new("RGBA", (64, 64), (0, 0, 0, 0)))]:
        img.save(tmp_path / name)
        with pytest.raises(UserError, match=f"{name}: the image is blank"):
            load_image(tmp_path / name)


def test_predict_reports_blank_images_and_classifies_the_others(tmp_path, capsys):
    import tinygrad_cv as tc
    from tinygrad_cv import models
    from tinygrad_cv.train import weights_metadata
    weights = tmp_path / "w.safetensors"
    tc.save(models.MLP().state_dict(), weights, metadata=weights_metadata("mlp", "mnist"))
    blank = tmp_path / "blank.png"
    Image.new("L", (50, 50), 255).save(blank)
    stroke = np.full((50, 50), 255, np.uint8)
    stroke[10:40, 22:27] = 0
    one = tmp_path / "one.png"
    Image.fromarray(stroke).save(one)
    assert main(["predict", str(weights), str(blank), str(one)]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        f"error: {blank}: the image is blank (no pixel differs from the background by 10% "
        "or more), so there is nothing to classify"]
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{one}: ")


def test_preprocessing_fits_the_ink_into_20x20_centred_by_mass():
    page = np.ones((400, 300), np.float32)      # white page
    page[30:130, 200:240] = 0.0                  # a 100 x 40 dark bar, far off-centre
    out = prepare(page)
    rows = np.flatnonzero(out.max(axis=1) > 0.5)
    cols = np.flatnonzero(out.max(axis=0) > 0.5)
    assert rows[-1] - rows[0] + 1 == 20          # the longer side fits the 20x20 box
    assert 7 <= cols[-1] - cols[0] + 1 <= 9      # 40 * 20 / 100 = 8: aspect kept
    ys, xs = np.indices(out.shape)
    assert abs((ys * out).sum() / out.sum() - 14) <= 0.5
    assert abs((xs * out).sum() / out.sum() - 14) <= 0.5


def test_fashion_style_fits_28_and_centres_the_box():
    page = np.ones((100, 200), np.float32)
    page[10:40, 20:80] = 0.0                     # 30 x 60 object
    out = prepare(page, fit=28, center="box")
    cols = np.flatnonzero(out.max(axis=0) > 0.5)
    rows = np.flatnonzero(out.max(axis=1) > 0.5)
    assert cols[0] == 0 and cols[-1] == 27
    assert rows[-1] - rows[0] + 1 == 14 and rows[0] == 7


def test_sixteen_bit_and_exif_rotated_images(tmp_path):
    values = np.full((60, 40), 65535, np.uint16)
    values[10:50, 18:22] = 0                     # a dark vertical stroke, 16-bit grey
    Image.fromarray(values).save(tmp_path / "sixteen.png")
    out = load_image(tmp_path / "sixteen.png")
    assert out.max() == 1.0 and out[14, 14] > 0.5
    tall = np.full((60, 40), 255, np.uint8)
    tall[10:50, 18:22] = 0
    img = Image.fromarray(tall)
    exif = img.getexif()
    exif[0x0112] = 6                              # "rotate 90 degrees clockwise to show"
    img.save(tmp_path / "rotated.jpg", exif=exif)
    out = load_image(tmp_path / "rotated.jpg")
    rows = np.flatnonzero(out.max(axis=1) > 0.5)
    cols = np.flatnonzero(out.max(axis=0) > 0.5)
    assert cols[-1] - cols[0] > rows[-1] - rows[0]   # shown upright: a horizontal stroke
