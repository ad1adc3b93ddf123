"""Data pipeline: IDX reader, MNIST/Fashion-MNIST lookup and download, DataLoader, transforms.

Never touches the network: every test runs with the downloader replaced (see the
autouse fixture). The real-data tests run when $TINYGRAD_CV_DATA points at a folder
with mnist/ and fashion-mnist/ (e.g. export TINYGRAD_CV_DATA=/path/to/shared/data).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv import transforms as T
from tinygrad_cv.data import (DataLoader, Dataset, Subset, TensorDataset, default_collate,
                              random_split)
from tinygrad_cv.datasets import (MNIST, ChecksumError, DatasetNotFoundError, FashionMNIST,
                                  IDXFormatError, read_idx)
from tinygrad_cv.datasets import download
from tinygrad_cv.datasets.mnist import FileSpec

REAL_DATA = os.environ.get("TINYGRAD_CV_DATA")

REAL_DOWNLOAD_FILE = download.download_file      # the autouse fixture replaces it

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


# ---------------------------------------------------------------------------- helpers
def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """An IDX file's bytes, written by hand: 0, 0, type code, ndim, sizes, big-endian data."""
    big_endian = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
                  0x0E: ">f8"}[type_code]
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(
        struct.pack(">I", n) for n in array.shape)
    return header + array.astype(big_endian).tobytes()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def write_tiny_dataset(folder: Path, compress=True, seed=0):
    """Write a tiny MNIST-shaped dataset (6 train, 4 test samples); return its FileSpecs."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    contents = {
        "train-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (6, 28, 28))),
        "train-labels-idx1-ubyte": idx_bytes(np.array([0, 1, 2, 3, 4, 5])),
        "t10k-images-idx3-ubyte": idx_bytes(rng.integers(0, 256, (4, 28, 28))),
        "t10k-labels-idx1-ubyte": idx_bytes(np.array([9, 8, 7, 6])),
    }
    specs = {}
    for name, raw in contents.items():
        packed = gzip.compress(raw, mtime=0)
        if compress:
            (folder / (name + ".gz")).write_bytes(packed)
        else:
            (folder / name).write_bytes(raw)
        specs[name] = FileSpec(name, md5(packed), md5(raw))
    return {"train": (specs["train-images-idx3-ubyte"], specs["train-labels-idx1-ubyte"]),
            "test": (specs["t10k-images-idx3-ubyte"], specs["t10k-labels-idx1-ubyte"])}


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """No test downloads anything; data folders point inside tmp_path."""
    def refuse(*args, **kwargs):
        raise URLError("network disabled in tests")
    monkeypatch.setattr(download, "urlopen", refuse)
    monkeypatch.setattr(download, "download_file", refuse)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """An MNIST subclass whose checksums are those of a tiny dataset the test writes."""
    monkeypatch.delenv("TINYGRAD_CV_DATA", raising=False)
    server = tmp_path / "server"
    specs = write_tiny_dataset(server)

    class TinyMNIST(MNIST):
        files = specs
        mirrors = ("https://mirror-a.invalid/", "https://mirror-b.invalid/")
        system_folders = ()

    TinyMNIST.server = server
    return TinyMNIST


def copy_tiny(tiny, folder: Path, compress=True):
    folder.mkdir(parents=True, exist_ok=True)
    for name in os.listdir(tiny.server):
        data = (tiny.server / name).read_bytes()
        if compress:
            (folder / name).write_bytes(data)
        else:
            (folder / name[:-3]).write_bytes(gzip.decompress(data))


# ---------------------------------------------------------------------------- IDX reader
@pytest.mark.parametrize("compress", [False, True])
def test_idx_reads_good_files(tmp_path, compress):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = idx_bytes(images)
    path = tmp_path / ("x.idx.gz" if compress else "x.idx")
    path.write_bytes(gzip.compress(raw) if compress else raw)
    out = read_idx(path)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, images)
    assert out.flags.writeable


@pytest.mark.parametrize("type_code,dtype", [(0x09, np.int8), (0x0B, np.int16),
                                             (0x0C, np.int32), (0x0D, np.float32),
                                             (0x0E, np.float64)])
def test_idx_reads_every_type_code_big_endian(tmp_path, type_code, dtype):
    values = np.array([[-3, 1, 258], [70000 if dtype in (np.int32, np.float64) else 7, 0, -1]])
    values = values.astype(dtype)
    (tmp_path / "v.idx").write_bytes(idx_bytes(values, type_code))
    out = read_idx(tmp_path / "v.idx")
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, values)


def test_idx_truncated_data_is_an_error_naming_the_file(tmp_path):
    raw = idx_bytes(np.zeros((5, 28, 28), np.uint8))
    path = tmp_path / "short-images-idx3-ubyte"
    path.write_bytes(raw[:-100])
    with pytest.raises(IDXFormatError, match="short-images-idx3-ubyte.*truncated"):
        read_idx(path)


def test_idx_truncated_gzip_is_an_error_naming_the_file(tmp_path):
    packed = gzip.compress(idx_bytes(np.arange(5000, dtype=np.int32) % 256 * 7919 % 256))
    path = tmp_path / "cut.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(IDXFormatError, match="cut.gz.*truncated"):
        read_idx(path)


def test_idx_corrupt_gzip_is_an_error_naming_the_file(tmp_path):
    packed = bytearray(gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8))))
    packed[-6] ^= 0xFF                                   # break the CRC32 trailer
    path = tmp_path / "bad.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(IDXFormatError, match="bad.gz.*corrupt"):
        read_idx(path)


@pytest.mark.parametrize("header", [b"\x12\x34\x08\x01", b"\x00\x00\x42\x01", b"PK\x03\x04"])
def test_idx_wrong_magic_is_an_error_naming_the_file(tmp_path, header):
    path = tmp_path / "not-idx"
    path.write_bytes(header + struct.pack(">I", 3) + b"abc")
    with pytest.raises(IDXFormatError, match="not-idx.*bad magic"):
        read_idx(path)


def test_idx_trailing_bytes_and_short_header_are_errors(tmp_path):
    path = tmp_path / "long"
    path.write_bytes(idx_bytes(np.arange(4, dtype=np.uint8)) + b"\x00")
    with pytest.raises(IDXFormatError, match="long.*unexpected bytes"):
        read_idx(path)
    path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">I", 10))
    with pytest.raises(IDXFormatError, match="truncated header"):
        read_idx(path)


# ---------------------------------------------------------------------------- real files
needs_real_data = pytest.mark.skipif(
    not REAL_DATA or not Path(REAL_DATA, "mnist").is_dir(),
    reason="set TINYGRAD_CV_DATA to a folder with mnist/ and fashion-mnist/ IDX files")


@pytest.fixture
def real_data(monkeypatch):
    monkeypatch.setenv("TINYGRAD_CV_DATA", REAL_DATA)


@needs_real_data
def test_real_mnist(real_data):
    train = MNIST(download=False)
    test = MNIST(train=False, download=False)
    assert len(train) == 60000 and len(test) == 10000
    assert train.data.shape == (60000, 28, 28) and train.data.dtype == np.uint8
    assert train.targets.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(train.targets.numpy()), MNIST_TRAIN_COUNTS)
    assert np.bincount(test.targets.numpy(), minlength=10).sum() == 10000
    image, label = train[0]
    assert label == 5 and isinstance(label, int)                # the famous first "5"
    assert np.asarray(image).shape == (28, 28) and np.asarray(image).dtype == np.uint8
    assert train.images_path.parent == Path(REAL_DATA, "mnist")


@needs_real_data
def test_real_fashion_mnist(real_data):
    train = FashionMNIST(download=False)
    test = FashionMNIST(train=False, download=False)
    assert len(train) == 60000 and len(test) == 10000
    np.testing.assert_array_equal(np.bincount(train.targets.numpy()), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(test.targets.numpy()), [1000] * 10)
    assert len(train.classes) == 10 and train.classes[9] == "Ankle boot"


@needs_real_data
def test_fashion_files_where_mnist_is_expected_are_named(tmp_path, monkeypatch):
    monkeypatch.delenv("TINYGRAD_CV_DATA")
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (tmp_path / name).symlink_to(Path(REAL_DATA, "fashion-mnist", name))
    with pytest.raises(ChecksumError, match=r"t10k-images.*Fashion-MNIST t10k-images"):
        MNIST(root=tmp_path, train=False, download=False)


# ---------------------------------------------------------------------------- search order
def test_root_comes_before_the_environment_folder(tiny, tmp_path, monkeypatch):
    copy_tiny(tiny, tmp_path / "root")
    copy_tiny(tiny, tmp_path / "env" / "mnist")
    monkeypatch.setenv("TINYGRAD_CV_DATA", str(tmp_path / "env"))
    ds = tiny(root=tmp_path / "root", download=False)
    assert ds.images_path == tmp_path / "root" / "train-images-idx3-ubyte.gz"
    assert tiny(download=False).images_path.parent == tmp_path / "env" / "mnist"


@pytest.mark.parametrize("subfolder", ["", "mnist", "MNIST/raw"])
def test_root_and_its_subfolders(tiny, tmp_path, subfolder):
    copy_tiny(tiny, tmp_path / "root" / subfolder)
    ds = tiny(root=tmp_path / "root", train=False, download=False)
    assert ds.images_path.parent == tmp_path / "root" / subfolder
    assert len(ds) == 4 and ds.targets.numpy().tolist() == [9, 8, 7, 6]


def test_environment_then_cache_then_system_folders(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGRAD_CV_DATA", str(tmp_path / "empty-env"))
    copy_tiny(tiny, tmp_path / "cache" / "tinygrad_cv" / "mnist")
    copy_tiny(tiny, tmp_path / "system")
    monkeypatch.setattr(tiny, "system_folders", (str(tmp_path / "system"),))
    assert tiny(root=tmp_path / "no-root", download=False).images_path.parent == \
        tmp_path / "cache" / "tinygrad_cv" / "mnist"
    for name in os.listdir(tmp_path / "cache" / "tinygrad_cv" / "mnist"):
        os.remove(tmp_path / "cache" / "tinygrad_cv" / "mnist" / name)
    assert tiny(download=False).images_path.parent == tmp_path / "system"


def test_fashion_mnist_searches_its_own_folders_and_debians(tmp_path, monkeypatch):
    monkeypatch.delenv("TINYGRAD_CV_DATA", raising=False)
    debian = Path("/usr/share/datasets/fashion-mnist")
    if (debian / "t10k-images-idx3-ubyte.gz").is_file():     # package dataset-fashion-mnist
        assert FashionMNIST(train=False, download=False).images_path.parent == debian
        return
    with pytest.raises(DatasetNotFoundError) as info:
        FashionMNIST(root=tmp_path, train=False, download=False)
    message = str(info.value)
    assert f"  {debian}\n" in message and f"  {tmp_path / 'fashion-mnist'}\n" in message
    assert f"  {tmp_path / 'FashionMNIST' / 'raw'}\n" in message
    assert f"  {tmp_path / 'mnist'}\n" not in message


def test_decompressed_files_are_found_too(tiny, tmp_path):
    copy_tiny(tiny, tmp_path / "root", compress=False)
    ds = tiny(root=tmp_path / "root", download=False)
    assert ds.images_path.name == "train-images-idx3-ubyte" and len(ds) == 6


def test_truncated_file_in_a_folder_is_an_error_naming_it(tiny, tmp_path):
    copy_tiny(tiny, tmp_path / "root")
    path = tmp_path / "root" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(IDXFormatError, match=str(path)):
        tiny(root=tmp_path / "root", download=False)


def test_other_contents_are_a_checksum_error_naming_the_file(tiny, tmp_path):
    write_tiny_dataset(tmp_path / "root", seed=1)        # valid IDX, different pixels
    with pytest.raises(ChecksumError, match="train-images-idx3-ubyte.gz.*not the official"):
        tiny(root=tmp_path / "root", download=False)


# ---------------------------------------------------------------------------- offline, download
def test_offline_error_names_folders_and_files(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGRAD_CV_DATA", str(tmp_path / "env"))
    with pytest.raises(DatasetNotFoundError) as info:
        tiny(root=tmp_path / "root")
    message = str(info.value)
    for folder in (tmp_path / "root", tmp_path / "root" / "MNIST" / "raw", tmp_path / "env",
                   tmp_path / "env" / "mnist", tmp_path / "cache" / "tinygrad_cv" / "mnist"):
        assert f"  {folder}\n" in message
    assert "train-images-idx3-ubyte.gz" in message and "train-labels-idx1-ubyte.gz" in message
    assert "https://mirror-a.invalid/train-images-idx3-ubyte.gz" in message
    assert "network disabled" in message and "TINYGRAD_CV_DATA" in message


def test_download_false_never_downloads(tiny, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(download, "download_file", lambda *a, **k: calls.append(a))
    with pytest.raises(DatasetNotFoundError, match="download=False"):
        tiny(train=False, download=False)
    assert calls == []


@pytest.mark.parametrize("use_root", [False, True])
def test_download_when_missing_then_reuse(tiny, tmp_path, monkeypatch, use_root):
    calls = []

    def fake_download(url, destination, md5, progress=True):
        calls.append(url)
        if "mirror-a" in url:                                 # the first mirror is down
            raise URLError("mirror-a is down")
        data = (tiny.server / url.rsplit("/", 1)[1]).read_bytes()
        assert hashlib.md5(data).hexdigest() == md5
        Path(destination).parent.mkdir(parents=True, exist_ok=True)
        Path(destination).write_bytes(data)

    monkeypatch.setattr(download, "download_file", fake_download)
    root = tmp_path / "root" if use_root else None
    ds = tiny(root=root, train=True)
    expected = (tmp_path / "root" / "MNIST" / "raw" if use_root
                else tmp_path / "cache" / "tinygrad_cv" / "mnist")
    assert ds.images_path.parent == expected and len(ds) == 6
    assert sorted(os.listdir(expected)) == ["train-images-idx3-ubyte.gz",
                                            "train-labels-idx1-ubyte.gz"]
    assert len(calls) == 4                                   # 2 files x (a fails, b works)
    tiny(root=root, train=True)
    assert len(calls) == 4                                   # found: no new download


class FakeResponse(io.BytesIO):
    def __init__(self, data):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def test_download_file_verifies_md5_and_writes_atomically(tmp_path, monkeypatch):
    payload = os.urandom(200_000)
    monkeypatch.setattr(download, "urlopen", lambda request, timeout: FakeResponse(payload))
    target = tmp_path / "sub" / "file.gz"
    REAL_DOWNLOAD_FILE("https://x.invalid/file.gz", target, md5(payload), progress=False)
    assert target.read_bytes() == payload and os.listdir(target.parent) == ["file.gz"]

    target.unlink()
    with pytest.raises(ChecksumError, match="does not match"):
        REAL_DOWNLOAD_FILE("https://x.invalid/file.gz", target, "0" * 32, progress=False)
    assert os.listdir(target.parent) == []                   # no file, no leftover .part


# ---------------------------------------------------------------------------- the dataset object
def test_mnist_sample_and_batch_paths_agree(tiny, tmp_path):
    copy_tiny(tiny, tmp_path / "root")
    transform = T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])
    ds = tiny(root=tmp_path / "root", download=False, transform=transform,
              target_transform=lambda y: y + 10)
    image, label = ds[2]
    assert image.shape == (1, 28, 28) and image.dtype == np.float32 and label == 12
    images, labels = ds.get_batch(np.array([2, 0]))
    assert images.shape == (2, 1, 28, 28) and images.dtype == np.float32
    np.testing.assert_array_equal(images.numpy()[0], image.numpy())
    assert labels.dtype == np.int64 and labels.numpy().tolist() == [12, 10]

    raw = tiny(root=tmp_path / "root", download=False)
    image, label = raw[1]
    np.testing.assert_array_equal(np.asarray(image), raw.data.numpy()[1])
    assert "Number of datapoints: 6" in repr(raw)


def test_mnist_per_sample_transform_fallback(tiny, tmp_path):
    copy_tiny(tiny, tmp_path / "root")
    calls = []

    def per_sample(img):                                     # no apply_batch: per sample
        calls.append(1)
        return np.asarray(img, dtype=np.float32)[None] / 255

    ds = tiny(root=tmp_path / "root", download=False, transform=per_sample)
    fast = tiny(root=tmp_path / "root", download=False, transform=T.ToTensor())
    slow_batch, _ = next(iter(DataLoader(ds, batch_size=4)))
    fast_batch, _ = next(iter(DataLoader(fast, batch_size=4)))
    assert len(calls) == 4
    np.testing.assert_allclose(slow_batch.numpy(), fast_batch.numpy(), rtol=1e-6)


# ---------------------------------------------------------------------------- DataLoader
def range_dataset(n):
    return TensorDataset(int64_tensor(np.arange(n)), float32_tensor(np.arange(n) * 0.5))


def int64_tensor(a):
    return tc.Tensor(np.asarray(a, dtype=np.int64))


def float32_tensor(a):
    return tc.Tensor(np.asarray(a, dtype=np.float32))


def epoch_indices(loader):
    return [batch[0].numpy().tolist() for batch in loader]


@pytest.mark.parametrize("n,batch_size,drop_last,sizes", [
    (10, 3, False, [3, 3, 3, 1]), (10, 3, True, [3, 3, 3]), (9, 3, False, [3, 3, 3]),
    (9, 3, True, [3, 3, 3]), (2, 64, True, []), (0, 4, False, [])])
def test_batch_sizes_and_len(n, batch_size, drop_last, sizes):
    loader = DataLoader(range_dataset(n), batch_size=batch_size, drop_last=drop_last)
    assert [len(b) for b in epoch_indices(loader)] == sizes
    assert len(loader) == len(sizes)


def test_sequential_order_dtypes_and_shapes():
    loader = DataLoader(range_dataset(7), batch_size=4)
    (a, b), (c, d) = list(loader)
    assert a.numpy().tolist() == [0, 1, 2, 3] and c.numpy().tolist() == [4, 5, 6]
    assert a.dtype == np.int64 and b.dtype == np.float32 and b.shape == (4,)
    assert isinstance(a, tc.Tensor) and a.device == "cpu"


def test_batches_are_moved_to_the_device_by_the_caller_once_per_batch(device):
    """The loader yields CPU tensors; `.to(device)` once per batch moves them (the
    training loop's pattern), and the transforms then run on that device."""
    loader = DataLoader(range_dataset(7), batch_size=4)
    seen = []
    for a, b in loader:
        assert a.device == "cpu" and b.device == "cpu"
        a, b = a.to(device), b.to(device)
        assert a.device == device and b.device == device
        seen += a.numpy().tolist()
    assert seen == list(range(7))
    images = tc.Tensor(np.full((2, 1, 3, 3), 0.75, np.float32), device=device)
    out = T.Normalize((0.5,), (0.25,))(images)
    assert out.device == device and np.allclose(out.numpy(), 1.0)


def test_shuffle_covers_every_sample_once_and_reshuffles_each_epoch():
    loader = DataLoader(range_dataset(100), batch_size=16, shuffle=True, seed=3)
    first, second = epoch_indices(loader), epoch_indices(loader)
    for epoch in (first, second):
        assert sorted(sum(epoch, [])) == list(range(100))
        assert [len(b) for b in epoch] == [16] * 6 + [4]
    assert first != second and sum(first, []) != list(range(100))


def test_shuffle_seed_reproduces_the_sequence_of_epochs():
    a = DataLoader(range_dataset(50), batch_size=8, shuffle=True, seed=7)
    b = DataLoader(range_dataset(50), batch_size=8, shuffle=True, seed=7)
    c = DataLoader(range_dataset(50), batch_size=8, shuffle=True, seed=8)
    epochs_a = [epoch_indices(a) for _ in range(3)]
    assert epochs_a == [epoch_indices(b) for _ in range(3)]
    assert epochs_a[0] != epoch_indices(c)
    gen = DataLoader(range_dataset(50), batch_size=8, shuffle=True,
                     generator=np.random.default_rng(7))
    assert epoch_indices(gen) == epochs_a[0]


def test_shuffle_without_seed_follows_manual_seed():
    loader = DataLoader(range_dataset(50), batch_size=50, shuffle=True)
    tc.manual_seed(123)
    first = [epoch_indices(loader) for _ in range(2)]
    tc.manual_seed(123)
    assert [epoch_indices(loader) for _ in range(2)] == first
    assert first[0] != first[1]


def test_drop_last_with_shuffle_drops_one_partial_batch():
    loader = DataLoader(range_dataset(10), batch_size=4, shuffle=True, drop_last=True, seed=0)
    batches = epoch_indices(loader)
    assert [len(b) for b in batches] == [4, 4] and len(set(sum(batches, []))) == 8


class CountingTensorDataset(TensorDataset):
    calls = 0

    def __getitem__(self, index):
        CountingTensorDataset.calls += 1
        return super().__getitem__(index)


def test_in_memory_datasets_are_batched_without_per_sample_calls():
    ds = CountingTensorDataset(tc.Tensor(np.zeros((20, 3), np.float32)), int64_tensor(range(20)))
    assert sum(len(y) for _, y in DataLoader(ds, batch_size=6, shuffle=True, seed=0)) == 20
    assert CountingTensorDataset.calls == 0


class PlainDataset(Dataset):
    """A map-style dataset with no get_batch: the per-sample path."""

    def __len__(self):
        return 5

    def __getitem__(self, i):
        return np.full((2, 2), i, np.float32), i, {"name": f"s{i}", "weight": 0.5 * i}


def test_generic_dataset_uses_default_collate():
    x, y, extra = next(iter(DataLoader(PlainDataset(), batch_size=3)))
    assert x.shape == (3, 2, 2) and x.dtype == np.float32
    assert y.dtype == np.int64 and y.numpy().tolist() == [0, 1, 2]
    assert extra["name"] == ["s0", "s1", "s2"] and extra["weight"].dtype == np.float64
    custom = DataLoader(PlainDataset(), batch_size=2, collate_fn=lambda samples: len(samples))
    assert list(custom) == [2, 2, 1]


def test_torch_keywords_samplers_and_unbatched_mode():
    ds = range_dataset(6)
    loader = DataLoader(ds, batch_size=4, num_workers=4, pin_memory=True,
                        persistent_workers=True, prefetch_factor=2, timeout=0)
    assert len(loader) == 2 and loader.dataset is ds
    assert epoch_indices(DataLoader(ds, batch_size=2, sampler=[5, 4, 3])) == [[5, 4], [3]]
    assert epoch_indices(DataLoader(ds, batch_sampler=[[1, 2, 3], [0]])) == [[1, 2, 3], [0]]
    samples = list(DataLoader(ds, batch_size=None))
    assert len(samples) == 6 and samples[2][0].item() == 2
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, shuffle=True, sampler=[0, 1])
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(ValueError, match="size mismatch"):
        TensorDataset(int64_tensor(range(3)), int64_tensor(range(4)))


def test_subset_and_random_split():
    ds = range_dataset(10)
    sub = Subset(ds, [9, 3, 5])
    assert len(sub) == 3 and sub[0][0].item() == 9
    assert epoch_indices(DataLoader(sub, batch_size=2)) == [[9, 3], [5]]
    parts = random_split(ds, [7, 3], generator=0)
    assert [len(p) for p in parts] == [7, 3]
    assert sorted(np.concatenate([p.indices for p in parts]).tolist()) == list(range(10))
    assert [len(p) for p in random_split(ds, [0.5, 0.3, 0.2], generator=0)] == [5, 3, 2]
    with pytest.raises(ValueError, match="sum to"):
        random_split(ds, [4, 4])


def test_default_collate_stacks_tensors():
    batch = default_collate([(tc.Tensor(np.ones(3, np.float32)), True)] * 2)
    assert batch[0].shape == (2, 3) and batch[1].dtype == np.bool_


# ---------------------------------------------------------------------------- transforms
def test_to_tensor_matches_hand_computation():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    out = T.ToTensor()(image)
    assert out.shape == (1, 5, 7) and out.dtype == np.float32
    np.testing.assert_array_equal(out.numpy()[0], image.astype(np.float32) / np.float32(255))
    assert out.numpy().min() >= 0 and out.numpy().max() <= 1

    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(T.ToTensor()(rgb).numpy(),
                                  rgb.transpose(2, 0, 1).astype(np.float32) / 255)
    floats = rng.random((4, 4))
    kept = T.ToTensor()(floats)
    assert kept.dtype == np.float64 and np.array_equal(kept.numpy()[0], floats)


def test_to_tensor_on_a_batch_and_on_pil_images():
    rng = np.random.default_rng(1)
    batch = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    out = T.ToTensor().apply_batch(batch)
    assert out.shape == (3, 1, 28, 28) and out.dtype == np.float32
    for i in range(3):
        np.testing.assert_array_equal(out.numpy()[i], T.ToTensor()(batch[i]).numpy())
    Image = pytest.importorskip("PIL.Image")
    np.testing.assert_array_equal(T.ToTensor()(Image.fromarray(batch[0])).numpy(),
                                  out.numpy()[0])


def test_normalize_per_sample_and_per_batch_match_hand_computation():
    rng = np.random.default_rng(2)
    batch = rng.random((4, 3, 5, 5)).astype(np.float32)
    mean, std = (0.5, 0.25, 0.1), (0.2, 0.4, 0.8)
    expected = (batch - np.array(mean, np.float32)[:, None, None]) / \
        np.array(std, np.float32)[:, None, None]
    norm = T.Normalize(mean, std)
    np.testing.assert_allclose(norm.apply_batch(batch).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(norm(tc.Tensor(batch[1])).numpy(), expected[1], rtol=1e-6)
    original = tc.Tensor(batch.copy())
    norm(original)
    np.testing.assert_array_equal(original.numpy(), batch)       # input untouched
    assert T.Normalize(mean, std, inplace=True)(original) is original
    np.testing.assert_allclose(original.numpy(), expected, rtol=1e-6)


def test_normalize_errors():
    with pytest.raises(ValueError, match="2 values.*3 channels"):
        T.Normalize((0.1, 0.2), (1, 1))(np.zeros((3, 4, 4), np.float32))
    with pytest.raises(TypeError, match="float"):
        T.Normalize((0.1,), (1,))(np.zeros((1, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="zero"):
        T.Normalize((0.1,), (0.0,))


def test_compose_mnist_pipeline_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    batch = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    pipeline = T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])
    assert T.supports_batches(pipeline)
    ours = pipeline.apply_batch(batch).numpy()
    theirs = (torch.from_numpy(batch).unsqueeze(1).float().div(255)
              .sub(torch.tensor([0.1307]).view(-1, 1, 1)).div(torch.tensor([0.3081]).view(-1, 1, 1)))
    np.testing.assert_array_equal(ours, theirs.numpy())
    np.testing.assert_array_equal(pipeline(batch[4]).numpy(), ours[4])
    assert not T.supports_batches(T.Compose([T.ToTensor(), lambda x: x]))
    assert "Normalize(mean=(0.1307,), std=(0.3081,))" in repr(pipeline)
