"""MNIST and Fashion-MNIST from the official IDX files, found locally or downloaded.

Where the files are looked for, in order (the first folder holding both files of the
requested split wins; each folder is tried as is and with the dataset's subfolders,
`mnist/` and `MNIST/raw/` for MNIST, `fashion-mnist/` and `FashionMNIST/raw/` for
Fashion-MNIST):
  1. `root`, when given;
  2. `$TINYGRAD_CV_DATA`, when set;
  3. the user cache, `$XDG_CACHE_HOME/tinygrad_cv` (default `~/.cache/tinygrad_cv`);
  4. system folders: Debian's `dataset-fashion-mnist` package for Fashion-MNIST.
Each file may be the official `.gz` or its decompressed twin (no `.gz` suffix).

When the files are missing and `download=True`, they are fetched from the public
mirrors into `root/MNIST/raw` (torchvision's layout) when `root` is given, else into
the cache, each checked against its published MD5 and renamed into place only then.

Every file read is checked against the MD5 of its decompressed contents, so a corrupt
file, a truncated one, or Fashion-MNIST files standing where MNIST is expected (the file
names are the same) are errors naming the file, never a silently different dataset.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..tensor import wrap_array
from . import download
from .in_memory import InMemoryImageDataset
from .idx import parse_idx, read_idx_bytes

DATA_ENV_VAR = "TINYGRAD_CV_DATA"


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are in none of the searched folders and were not downloaded."""


class FileSpec(NamedTuple):
    """One official file: its name without `.gz`, the MD5 of the `.gz` as published, and
    the MD5 of the decompressed IDX bytes (the same whatever the compression)."""
    name: str
    gz_md5: str
    content_md5: str


def cache_dir() -> Path:
    """The user cache folder: `$XDG_CACHE_HOME/tinygrad_cv`, default `~/.cache/tinygrad_cv`."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "tinygrad_cv"


def _find_file(folder: Path, name: str):
    """`folder/name.gz` or, failing that, the decompressed `folder/name`; else None."""
    for candidate in (folder / (name + ".gz"), folder / name):
        if candidate.is_file():
            return candidate
    return None


class MNIST(InMemoryImageDataset):
    """The MNIST handwritten digits, as `torchvision.datasets.MNIST`.

    `ds[i]` is `(image, label)`: the image is a 28x28 grayscale PIL image (a uint8 NumPy
    array when Pillow is not installed) passed through `transform`, the label an int
    passed through `target_transform`. `ds.data` is a uint8 Tensor (N, 28, 28),
    `ds.targets` an int64 Tensor (N,). The DataLoader gets whole batches from
    `get_batch`, applying a batch-capable transform (`transforms.ToTensor`,
    `Normalize`, `Compose` of them) once per batch, any other transform per image;
    without a transform, batches hold the uint8 (B, 28, 28) images.
    """

    display_name = "MNIST"
    mirrors = (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    )
    files = {
        "train": (FileSpec("train-images-idx3-ubyte", "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                           "6bbc9ace898e44ae57da46a324031adb"),
                  FileSpec("train-labels-idx1-ubyte", "d53e105ee54ea40749a09fcbcd1e9432",
                           "a25bea736e30d166cdddb491f175f624")),
        "test": (FileSpec("t10k-images-idx3-ubyte", "9fb629c4189551a2d022fa330f9573f3",
                          "2646ac647ad5339dbf082846283269ea"),
                 FileSpec("t10k-labels-idx1-ubyte", "ec29112dd5afa0611ce80d1b7f02629c",
                          "27ae3e4e09519cfbb04c329615203637")),
    }
    subfolders = ("mnist", "MNIST/raw")       # the first is where the cache downloads go
    torchvision_folder = "MNIST/raw"          # where downloads go under a given root
    system_folders = ()
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five",
               "6 - six", "7 - seven", "8 - eight", "9 - nine"]

    def __init__(self, root=None, train=True, download=True, transform=None,
                 target_transform=None):
        self.root = None if root is None else Path(root).expanduser()
        self.train = bool(train)
        self.transform = transform
        self.target_transform = target_transform
        images_path, labels_path = self._locate_files(download)
        image_spec, label_spec = self.files[self.split]
        images = self._read_checked(images_path, image_spec)
        labels = self._read_checked(labels_path, label_spec)
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise ValueError(f"{self.display_name}: {images_path} (shape {images.shape}) and "
                             f"{labels_path} (shape {labels.shape}) do not pair up")
        self.images_path, self.labels_path = images_path, labels_path
        self._images = images                              # uint8 (N, 28, 28)
        self._labels = labels.astype(np.int64)             # int64 (N,)
        self.data = wrap_array(self._images, "cpu")
        self.targets = wrap_array(self._labels, "cpu")

    def __repr__(self):
        lines = [f"Dataset {type(self).__name__}",
                 f"    Number of datapoints: {len(self)}",
                 f"    Files: {self.images_path}, {self.labels_path}",
                 f"    Split: {self.split.capitalize()}"]
        if self.transform is not None:
            lines.append("    Transform: " + repr(self.transform).replace("\n", "\n    "))
        if self.target_transform is not None:
            lines.append(f"    Target transform: {self.target_transform!r}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ finding the files
    def search_folders(self):
        """Every folder looked in, in order (see the module docstring)."""
        bases = []
        if self.root is not None:
            bases.append(self.root)
        env = os.environ.get(DATA_ENV_VAR)
        if env:
            bases.append(Path(env).expanduser())
        bases.append(cache_dir())
        folders = []
        for base in bases:
            folders.append(base)
            folders.extend(base / sub for sub in self.subfolders)
        folders.extend(Path(p) for p in self.system_folders)
        unique = []
        for folder in folders:
            if folder not in unique:
                unique.append(folder)
        return unique

    def download_folder(self) -> Path:
        if self.root is not None:
            return self.root / self.torchvision_folder
        return cache_dir() / self.subfolders[0]

    def _locate_files(self, allow_download):
        names = [spec.name for spec in self.files[self.split]]
        folders = self.search_folders()
        for folder in folders:
            paths = [_find_file(folder, name) for name in names]
            if all(paths):
                return paths
        if not allow_download:
            raise DatasetNotFoundError(self._not_found_message(folders, names, None))
        target = self.download_folder()
        errors = self._download(target)
        paths = [_find_file(target, name) for name in names]
        if errors or not all(paths):
            raise DatasetNotFoundError(self._not_found_message(folders, names, errors))
        return paths

    def _download(self, target: Path):
        """Fetch this split's missing files into `target`; the errors of a file that no
        mirror served (an empty list on success). Stops at the first such file."""
        for spec in self.files[self.split]:
            if _find_file(target, spec.name):
                continue
            destination = target / (spec.name + ".gz")
            errors = []
            for mirror in self.mirrors:
                url = mirror + spec.name + ".gz"
                print(f"Downloading {url} to {destination}", file=sys.stderr)
                try:
                    download.download_file(url, destination, spec.gz_md5)
                    break
                except (OSError, ValueError) as exc:
                    errors.append(f"{url}: {exc}")
            else:
                return errors
        return []

    def _not_found_message(self, folders, names, download_errors):
        what = f"{self.display_name} {'training' if self.train else 'test'} files"
        lines = [f"{self.display_name}: the {what} were not found."]
        if download_errors is None:
            lines[0] += " Downloading is off (download=False)."
        else:
            lines[0] += " Downloading them failed:"
            lines.extend(f"  {err}" for err in download_errors)
        lines.append("Looked in these folders:")
        lines.extend(f"  {folder}" for folder in folders)
        lines.append("Put these files (the official .gz files, or decompressed) in one of "
                     f"them, e.g. {self.download_folder()}:")
        lines.extend(f"  {name}.gz" for name in names)
        lines.append(f"or set {DATA_ENV_VAR} to a folder holding them. They are published "
                     f"at {self.mirrors[0]}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ reading the files
    def _read_checked(self, path: Path, spec: FileSpec) -> np.ndarray:
        """Parse one IDX file and check its decompressed contents against `spec`."""
        raw = read_idx_bytes(path)
        array = parse_idx(raw, str(path))
        got = download.md5_of_bytes(raw)
        if got != spec.content_md5:
            known = _describe_known_contents(got)
            hint = f"; it holds {known}" if known else ""
            raise download.ChecksumError(
                f"{path}: its contents are not the official {self.display_name} "
                f"{spec.name} (MD5 of the decompressed bytes {got}, expected "
                f"{spec.content_md5}){hint}. Delete it (it will be downloaded again) or "
                "replace it with the official file")
        return array


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST, as `torchvision.datasets.FashionMNIST`; see `MNIST`."""

    display_name = "Fashion-MNIST"
    mirrors = (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    )
    files = {
        "train": (FileSpec("train-images-idx3-ubyte", "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                           "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
                  FileSpec("train-labels-idx1-ubyte", "25c81989df183df01b3e8a0aad5dffbe",
                           "9018921c3c673c538a1fc5bad174d6f9")),
        "test": (FileSpec("t10k-images-idx3-ubyte", "bef4ecab320f06d8554ea6380940ec79",
                          "8181f5470baa50b63fa0f6fddb340f0a"),
                 FileSpec("t10k-labels-idx1-ubyte", "bb300cfdad3c16e7a12a480ee83cd310",
                          "15d484375f8d13e6eb1aabb0c3f46965")),
    }
    subfolders = ("fashion-mnist", "FashionMNIST/raw")
    torchvision_folder = "FashionMNIST/raw"
    system_folders = ("/usr/share/datasets/fashion-mnist",)    # Debian: dataset-fashion-mnist
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]


def _describe_known_contents(content_md5: str):
    """'Fashion-MNIST train-images-idx3-ubyte' for a known file's contents, else None."""
    for dataset in (MNIST, FashionMNIST):
        for specs in dataset.files.values():
            for spec in specs:
                if spec.content_md5 == content_md5:
                    return f"{dataset.display_name} {spec.name}"
    return None
