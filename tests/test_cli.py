"""The command line end to end on a tiny run: train (with report and weights), evaluate,
predict on image files."""
import os

import numpy as np
import pytest
from PIL import Image

from tinygrad_cv.cli import load_image, main

DATA = os.environ.get("TINYGRAD_CV_DATA")
pytestmark = pytest.mark.skipif(not DATA, reason="TINYGRAD_CV_DATA is not set (real MNIST needed)")


def test_train_evaluate_predict(tmp_path, capsys):
    weights = tmp_path / "mlp.safetensors"
    report = tmp_path / "report"
    assert main(["train", "--model", "mlp", "--epochs", "1", "--limit", "2000",
                 "--optimizer", "sgd", "--lr", "0.05", "--no-progress",
                 "--data-dir", DATA, "--save", str(weights), "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "epoch  1: train loss" in out and "test accuracy" in out
    assert weights.exists()
    html = (report / "index.html").read_text()
    assert "Confusion matrix" in html and "data:image/png;base64," in html
    assert (report / "misclassified.png").exists()

    assert main(["evaluate", str(weights), "--data-dir", DATA]) == 0
    out = capsys.readouterr().out
    assert "mlp on the mnist test set" in out and "confusion matrix" in out
    accuracy = float(out.split("accuracy ")[1].split("%")[0])
    assert accuracy > 70.0        # 2000 images, one epoch: well above chance (10%)

    from tinygrad_cv.datasets import MNIST
    test = MNIST(DATA, train=False, download=False)
    paths = []
    for i in range(3):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(255 - test.data.numpy()[i]).save(path)   # dark ink on white paper
        paths.append(str(path))
    assert main(["predict", str(weights), *paths]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all("%" in line for line in lines)


def test_load_image_inverts_light_backgrounds(tmp_path):
    img = np.full((56, 56), 255, dtype=np.uint8)
    img[10:46, 26:30] = 0                             # a dark stroke on white
    path = tmp_path / "one.jpg"
    Image.fromarray(img).convert("RGB").save(path)
    pixels = load_image(path)
    assert pixels.shape == (28, 28)
    assert pixels.mean() < 0.5 and pixels[14, 14] > 0.5   # white stroke on black now


def test_model_inferred_from_weights(tmp_path, capsys):
    import tinygrad_cv as tc
    from tinygrad_cv import models
    path = tmp_path / "lenet.safetensors"
    tc.save(models.LeNet5().state_dict(), path)
    img = tmp_path / "x.png"
    stroke = np.zeros((28, 28), np.uint8)     # not blank: a blank image is an error now
    stroke[6:22, 13:15] = 255
    Image.fromarray(stroke).save(img)
    assert main(["predict", str(path), str(img)]) == 0
    assert "x.png" in capsys.readouterr().out


def test_evaluate_needs_only_the_test_files(tmp_path, capsys, monkeypatch):
    """`evaluate` reads the test split alone: a folder holding only the t10k files works
    (no other data folder is visible, and downloads would fail: no mirror is reachable)."""
    import shutil

    import tinygrad_cv as tc
    from tinygrad_cv import models
    source = os.path.join(DATA, "mnist") if os.path.isdir(os.path.join(DATA, "mnist")) else DATA
    test_only = tmp_path / "data"
    test_only.mkdir()
    for name in os.listdir(source):
        if name.startswith("t10k"):
            shutil.copy(os.path.join(source, name), test_only / name)
    assert len(os.listdir(test_only)) == 2
    monkeypatch.delenv("TINYGRAD_CV_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    def no_download(url, *args, **kwargs):
        raise OSError(f"test: no download allowed ({url})")
    monkeypatch.setattr("tinygrad_cv.datasets.download.download_file", no_download)
    path = tmp_path / "mlp.safetensors"
    tc.save(models.MLP().state_dict(), path)
    assert main(["evaluate", str(path), "--data-dir", str(test_only)]) == 0
    assert "on the mnist test set" in capsys.readouterr().out
