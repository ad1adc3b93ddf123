"""CIFAR-10/100 from the binary layout, on small files the tests write (never a download)."""
from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cv import transforms as T
from tinygrad_cv.data import DataLoader
from tinygrad_cv.datasets import (CIFAR10, CIFAR100, ChecksumError, CIFARFormatError,
                                  DatasetNotFoundError, download)

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck"]


def records(images_hwc, *label_columns):
    """The binary records: label byte(s), then the R, G, B planes row by row."""
    planes = images_hwc.transpose(0, 3, 1, 2).reshape(len(images_hwc), -1)
    labels = np.stack(label_columns, axis=1).astype(np.uint8)
    return np.concatenate([labels, planes], axis=1).tobytes()


def write_cifar10(folder: Path, per_batch=3, seed=0):
    """Five training batches and a test batch of `per_batch` records each; returns the
    (images, labels) of the training and test splits."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    splits = {"train": ([], []), "test": ([], [])}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        images = rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch)
        (folder / name).write_bytes(records(images, labels))
        split = splits["test" if name.startswith("test") else "train"]
        split[0].append(images)
        split[1].append(labels)
    (folder / "batches.meta.txt").write_text("\n".join(CIFAR10_NAMES) + "\n\n")
    return {k: (np.concatenate(v[0]), np.concatenate(v[1])) for k, v in splits.items()}


def write_cifar100(folder: Path, n=4, seed=1):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split in ("train", "test"):
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        coarse, fine = rng.integers(0, 20, n), rng.integers(0, 100, n)
        (folder / f"{split}.bin").write_bytes(records(images, coarse, fine))
        out[split] = (images, coarse, fine)
    (folder / "fine_label_names.txt").write_text("\n".join(f"class{i}" for i in range(100)))
    (folder / "coarse_label_names.txt").write_text("\n".join(f"super{i}" for i in range(20)))
    return out


def tar_gz(source_folder: Path, archive: Path, arcname: str):
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source_folder, arcname=arcname)
    return hashlib.md5(archive.read_bytes()).hexdigest()


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No environment folder, an empty cache, and no network."""
    monkeypatch.delenv("TINYGRAD_CV_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def refuse(*args, **kwargs):
        raise OSError("network disabled in tests")
    monkeypatch.setattr(download, "download_file", refuse)
    return tmp_path


def test_cifar10_reads_the_binary_layout(isolated):
    written = write_cifar10(isolated / "root" / "cifar-10-batches-bin")
    train = CIFAR10(isolated / "root", train=True, download=False)
    images, labels = written["train"]
    assert train.data.shape == (15, 32, 32, 3) and train.data.dtype == np.uint8
    assert np.array_equal(train.data, images) and train.targets == labels.tolist()
    assert train.classes == CIFAR10_NAMES and train.class_to_idx["cat"] == 3
    image, label = train[4]
    assert image.mode == "RGB" and image.size == (32, 32) and label == labels[4]
    assert np.array_equal(np.asarray(image), images[4])
    test = CIFAR10(isolated / "root", train=False, download=False)
    assert np.array_equal(test.data, written["test"][0]) and len(test) == 3


def test_cifar10_batches_with_the_recipe_and_per_sample_transforms(isolated):
    write_cifar10(isolated / "cifar-10-batches-bin")
    recipe = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                        T.Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))])
    ds = CIFAR10(isolated, transform=recipe, download=False)
    x, y = next(iter(DataLoader(ds, batch_size=8)))
    assert x.shape == (8, 3, 32, 32) and x.dtype == np.float32 and y.dtype == np.int64
    plain = CIFAR10(isolated, transform=T.Compose([T.ToTensor()]), download=False)
    x_fast, _ = next(iter(DataLoader(plain, batch_size=4)))
    slow = CIFAR10(isolated, transform=lambda im: T.ToTensor()(im), download=False)
    x_slow, _ = next(iter(DataLoader(slow, batch_size=4)))
    assert np.array_equal(x_fast.numpy(), x_slow.numpy())


def test_cifar100_fine_and_coarse_labels(isolated):
    written = write_cifar100(isolated / "root" / "cifar-100-binary")
    ds = CIFAR100(isolated / "root", train=False, download=False)
    images, coarse, fine = written["test"]
    assert np.array_equal(ds.data, images) and ds.targets == fine.tolist()
    assert ds.coarse_targets == coarse.tolist() and ds.classes[7] == "class7"
    assert len(ds.classes) == 100 and ds[1][1] == fine[1]


def test_archive_is_read_in_place_after_its_md5(isolated, monkeypatch):
    write_cifar10(isolated / "src" / "cifar-10-batches-bin")
    archive = isolated / "root" / "cifar-10-binary.tar.gz"
    archive.parent.mkdir()
    md5 = tar_gz(isolated / "src" / "cifar-10-batches-bin", archive, "cifar-10-batches-bin")
    with pytest.raises(ChecksumError, match=str(archive)):
        CIFAR10(isolated / "root", download=False)          # not the published archive
    monkeypatch.setattr(CIFAR10, "archive_md5", md5)
    ds = CIFAR10(isolated / "root", download=False)
    assert len(ds) == 15 and not (isolated / "root" / "cifar-10-batches-bin").exists()


def test_download_checks_md5_then_extracts_atomically(isolated, monkeypatch):
    write_cifar100(isolated / "src" / "cifar-100-binary")
    built = isolated / "built.tar.gz"
    md5 = tar_gz(isolated / "src" / "cifar-100-binary", built, "cifar-100-binary")
    monkeypatch.setattr(CIFAR100, "archive_md5", md5)
    calls = []

    def fake_download(url, destination, expected_md5, progress=True):
        calls.append((url, expected_md5))
        Path(destination).write_bytes(built.read_bytes())
    monkeypatch.setattr(download, "download_file", fake_download)
    ds = CIFAR100(isolated / "root", train=True)
    assert calls == [(CIFAR100.url, md5)] and len(ds) == 4
    folder = isolated / "root" / "cifar-100-binary"
    assert sorted(p.name for p in folder.iterdir()) == ["fine_label_names.txt", "test.bin",
                                                        "train.bin"]
    CIFAR100(isolated / "root", train=False)                  # found: no second download
    assert len(calls) == 1


def test_offline_message_lists_the_folders_in_search_order(isolated, monkeypatch):
    env = isolated / "env"
    monkeypatch.setenv("TINYGRAD_CV_DATA", str(env))
    with pytest.raises(DatasetNotFoundError) as info:
        CIFAR10(isolated / "root", download=False)
    text = str(info.value)
    assert "download=False" in text and "cifar-10-binary.tar.gz" in text
    order = [text.index(str(p)) for p in (isolated / "root", env, isolated / "cache")]
    assert order == sorted(order)
    with pytest.raises(DatasetNotFoundError, match="network disabled"):
        CIFAR10(isolated / "root")
    write_cifar10(env / "cifar10" / "cifar-10-batches-bin")
    assert len(CIFAR10(isolated / "root", download=False)) == 15   # the environment's


def test_bad_files_are_errors_naming_them(isolated):
    folder = isolated / "cifar-10-batches-bin"
    write_cifar10(folder)
    (folder / "data_batch_3.bin").write_bytes(b"\x01" * 3073 * 2 + b"\x00" * 10)
    with pytest.raises(CIFARFormatError, match="data_batch_3.bin: 6156 bytes is not a whole"):
        CIFAR10(isolated, download=False)
    (folder / "data_batch_3.bin").write_bytes(b"\x0b" + b"\x00" * 3072)
    with pytest.raises(CIFARFormatError, match="data_batch_3.bin: record 0 has label 11"):
        CIFAR10(isolated, download=False)
    write_cifar10(folder)
    (folder / "batches.meta.txt").write_text("cat\ndog\n")
    with pytest.raises(CIFARFormatError, match="batches.meta.txt lists 2 class names"):
        CIFAR10(isolated, download=False)


def test_no_pickle_is_ever_loaded(isolated, monkeypatch):
    import pickle
    write_cifar10(isolated / "cifar-10-batches-bin")

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle used")
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    assert len(CIFAR10(isolated, download=False)) == 15
