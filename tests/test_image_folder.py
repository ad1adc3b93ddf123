"""ImageFolder / DatasetFolder against torchvision's, and bad image files.

The image folders are generated in tmp_path: a few tiny PNG/JPEG files per class.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv import transforms as T
from tinygrad_cv.data import DataLoader
from tinygrad_cv.datasets import (IMG_EXTENSIONS, DatasetFolder, ImageFileError, ImageFolder,
                                  pil_loader)
from tests.torchvision_oracle import requires_torchvision, torchvision

Image = pytest.importorskip("PIL.Image")


def write_image(path, color, size=(12, 10), mode="RGB"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    arr = np.zeros((size[1], size[0], 3), np.uint8) + np.asarray(color, np.uint8)
    img = Image.fromarray(arr)
    img = img.convert(mode) if mode != "RGB" else img
    img.save(path)


def make_tree(root):
    """Classes 'cat', 'dog', 'Zebra' (sorted: uppercase first), nested files, decoys."""
    write_image(root / "dog" / "b.png", (200, 10, 10))
    write_image(root / "dog" / "a.JPG", (190, 20, 20))
    write_image(root / "dog" / "nested" / "c.jpeg", (180, 30, 30), mode="L")
    write_image(root / "cat" / "x.bmp", (10, 200, 10))
    write_image(root / "cat" / "y.png", (20, 190, 20), mode="RGBA")
    (root / "cat" / "notes.txt").write_text("not an image")
    write_image(root / "Zebra" / "z.webp", (10, 10, 200))
    (root / "README").write_text("a file at the top is not a class")
    return root


def test_image_folder_layout_and_lazy_rgb_decoding(tmp_path):
    root = make_tree(tmp_path / "data")
    ds = ImageFolder(root)
    assert ds.classes == ["Zebra", "cat", "dog"]
    assert ds.class_to_idx == {"Zebra": 0, "cat": 1, "dog": 2}
    names = [os.path.relpath(p, root) for p, _ in ds.samples]
    assert names == ["Zebra/z.webp", "cat/x.bmp", "cat/y.png", "dog/a.JPG", "dog/b.png",
                     "dog/nested/c.jpeg"]
    assert ds.targets == [0, 1, 1, 2, 2, 2] and ds.imgs is ds.samples and len(ds) == 6
    image, label = ds[5]
    assert image.mode == "RGB" and image.size == (12, 10) and label == 2
    assert ImageFolder(root).samples == ds.samples            # nothing decoded up front


@requires_torchvision
def test_image_folder_matches_torchvision(tmp_path):
    root = make_tree(tmp_path / "data")
    ours, theirs = ImageFolder(root), torchvision.datasets.ImageFolder(str(root))
    assert ours.classes == theirs.classes and ours.class_to_idx == theirs.class_to_idx
    assert ours.samples == theirs.samples and ours.targets == theirs.targets
    assert IMG_EXTENSIONS == torchvision.datasets.folder.IMG_EXTENSIONS
    for i in range(len(ours)):
        assert np.array_equal(np.asarray(ours[i][0]), np.asarray(theirs[i][0]))

    def only_png(path):
        return path.endswith(".png")
    a = ImageFolder(root, is_valid_file=only_png, allow_empty=True)
    b = torchvision.datasets.ImageFolder(str(root), is_valid_file=only_png,
                                         allow_empty=True)
    assert a.samples == b.samples and a.classes == b.classes


def test_dataset_folder_with_its_own_loader_and_extensions(tmp_path):
    for cls, text in (("a", "one"), ("b", "two")):
        (tmp_path / cls).mkdir()
        (tmp_path / cls / f"{text}.txt").write_text(text)
    ds = DatasetFolder(tmp_path, loader=lambda p: open(p).read(), extensions=(".txt",),
                       target_transform=lambda y: y * 10)
    assert [ds[i] for i in range(2)] == [("one", 0), ("two", 10)]
    with pytest.raises(ValueError, match="Both extensions and is_valid_file"):
        DatasetFolder(tmp_path, loader=open)


def test_folder_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "missing")):
        ImageFolder(tmp_path / "missing")
    (tmp_path / "flat").mkdir()
    write_image(tmp_path / "flat" / "a.png", (1, 2, 3))
    with pytest.raises(FileNotFoundError, match="Couldn't find any class folder in .*flat"):
        ImageFolder(tmp_path / "flat")
    root = make_tree(tmp_path / "data")
    (root / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"classes empty \(folders .*data/empty\)"):
        ImageFolder(root)
    ds = ImageFolder(root, allow_empty=True)
    assert "empty" in ds.classes and ds.class_to_idx["empty"] == 3


def bomb_limit(monkeypatch, pixels):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pixels)


def test_bad_image_files_raise_one_error_naming_the_file(tmp_path, monkeypatch):
    good = tmp_path / "good.jpg"
    write_image(good, (5, 6, 7), size=(64, 48))
    raw = good.read_bytes()
    cases = {"text.png": b"hello, not an image", "random.jpg": bytes(range(256)) * 4,
             "truncated.jpg": raw[: len(raw) // 2], "empty.png": b""}
    png = tmp_path / "ok.png"
    write_image(png, (1, 2, 3), size=(40, 30))
    cases["truncated.png"] = png.read_bytes()[:60]
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ImageFileError, match=str(tmp_path / name)):
            pil_loader(tmp_path / name)
    bomb_limit(monkeypatch, 2000)             # 64x48 = 3072 pixels: Pillow only warns
    with pytest.raises(ImageFileError, match="decompression-bomb limit"):
        pil_loader(good)
    bomb_limit(monkeypatch, 1000)             # over twice the limit: Pillow's own error
    with pytest.raises(ImageFileError, match=str(good)):
        pil_loader(good)
    bomb_limit(monkeypatch, None)
    assert pil_loader(good).size == (64, 48)


def test_bad_file_inside_a_folder_is_named_when_read(tmp_path):
    root = make_tree(tmp_path / "data")
    (root / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ds = ImageFolder(root)
    index = [os.path.basename(p) for p, _ in ds.samples].index("broken.png")
    with pytest.raises(ImageFileError, match="broken.png"):
        ds[index]


def test_image_folder_through_the_dataloader_with_workers(tmp_path):
    root = tmp_path / "data"
    for k in range(8):
        write_image(root / ("ab"[k % 2]) / f"{k}.png", (k * 30, 0, 0), size=(20, 16))
    tf = T.Compose([T.Resize((8, 8)), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize((0.5,) * 3, (0.5,) * 3)])
    ds = ImageFolder(root, transform=tf)
    serial = [(x.numpy(), y.numpy()) for x, y in DataLoader(ds, batch_size=3)]
    parallel = [(x.numpy(), y.numpy()) for x, y in DataLoader(ds, batch_size=3,
                                                              num_workers=2)]
    assert [y.tolist() for _, y in parallel] == [y.tolist() for _, y in serial]
    for (xs, _), (xp, _) in zip(serial, parallel):
        assert xp.shape == xs.shape and xp.dtype == np.float32
        # flips differ between processes; the content, up to a flip, does not
        for a, b in zip(xs, xp):
            assert np.allclose(a, b) or np.allclose(a, b[..., ::-1])
    assert isinstance(parallel[0][0], np.ndarray) and tc.Tensor(parallel[0][0]).ndim == 4


def test_subset_of_files_loads_per_sample_and_of_tensors_per_batch(tmp_path):
    from tinygrad_cv.data import Subset, TensorDataset
    root = make_tree(tmp_path / "data")
    assert not hasattr(Subset(ImageFolder(root), [0, 1]), "get_batch")
    assert hasattr(Subset(TensorDataset(tc.Tensor(np.arange(4))), [0, 1]), "get_batch")


def test_train_folder_example_end_to_end(tmp_path):
    import importlib.util
    path = os.path.join(os.path.dirname(__file__), "..", "examples", "train_folder.py")
    spec = importlib.util.spec_from_file_location("train_folder_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.write_demo(str(tmp_path / "demo"), per_class=6, size=20)
    for split in ("train", "val"):                    # the train/ + val/ layout
        for cls in ("circle", "square"):
            (tmp_path / "split" / split / cls).mkdir(parents=True)
            for name in sorted(os.listdir(tmp_path / "demo" / cls))[:3]:
                os.link(tmp_path / "demo" / cls / name, tmp_path / "split" / split / cls / name)
    weights = tmp_path / "w.safetensors"
    accuracy = example.main(["--data-dir", str(tmp_path / "split"), "--epochs", "1",
                             "--image-size", "16", "--batch-size", "4", "--workers", "0",
                             "--save", str(weights)])
    assert 0.0 <= accuracy <= 1.0
    meta = tc.serialization.load_metadata(weights)
    assert meta["classes"] == ["circle", "square"] and meta["input_size"] == [3, 16, 16]
    accuracy = example.main(["--data-dir", str(tmp_path / "demo"), "--epochs", "1",
                             "--image-size", "16", "--batch-size", "8", "--workers", "2"])
    assert 0.0 <= accuracy <= 1.0


def test_image_folder_splits_for_the_command_line(tmp_path):
    from tinygrad_cv.datasets import image_folder_splits
    root = make_tree(tmp_path / "data")
    train, val, classes = image_folder_splits(root, val_fraction=0.34, seed=1)
    assert classes == ["Zebra", "cat", "dog"] and (len(train), len(val)) == (4, 2)
    picked = sorted(train.indices.tolist() + val.indices.tolist())
    assert picked == list(range(6))
    again = image_folder_splits(root, val_fraction=0.34, seed=1)[1]
    assert again.indices.tolist() == val.indices.tolist()
    for split in ("train", "val"):
        make_tree(tmp_path / "split" / split)
    train, val, classes = image_folder_splits(tmp_path / "split")
    assert len(train) == len(val) == 6 and classes == ["Zebra", "cat", "dog"]
    (tmp_path / "split" / "val" / "extra").mkdir()
    write_image(tmp_path / "split" / "val" / "extra" / "e.png", (1, 1, 1))
    with pytest.raises(ValueError, match="same class folders"):
        image_folder_splits(tmp_path / "split")
