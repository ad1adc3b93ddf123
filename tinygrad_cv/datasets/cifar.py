"""CIFAR-10 and CIFAR-100 from their official *binary* distributions (never the pickles).

The "python version" of CIFAR that torchvision reads is a set of pickles, and loading a
pickle can run arbitrary code; the binary version holds the same images as fixed-size
records: CIFAR-10 `data_batch_1.bin`..`data_batch_5.bin` and `test_batch.bin`, each
record one label byte then 3072 pixel bytes (the red, green, blue 32x32 planes, rows in
order), class names in `batches.meta.txt`; CIFAR-100 `train.bin` and `test.bin`, each
record a coarse and a fine label byte then the pixels, class names in
`fine_label_names.txt` (targets are the fine labels, as torchvision's).

Where the files are looked for, as MNIST's (first folder holding them all wins):
`root`, `$TINYGRAD_CV_DATA`, the user cache `$XDG_CACHE_HOME/tinygrad_cv`, each as is
and with the subfolders `cifar-10-batches-bin` / `cifar-100-binary`, also under
`cifar10/` / `cifar100/`. A folder may hold the extracted files or the official archive
(`cifar-10-binary.tar.gz` / `cifar-100-binary.tar.gz`), which is then checked against
its published MD5 and read without being extracted. With `download=True` the archive
is fetched into `root` (else the cache's `cifar10/` / `cifar100/`), MD5-checked and
renamed into place, and the needed files are extracted beside it, each written to a
temporary file and renamed. The extracted files have no published checksums: their
layout is checked instead (size a multiple of the record size, labels in range).
"""
from __future__ import annotations

import os
import sys
import tarfile
from pathlib import Path

import numpy as np

from . import download
from .in_memory import InMemoryImageDataset
from .mnist import DATA_ENV_VAR, DatasetNotFoundError, cache_dir

PIXELS = 3 * 32 * 32


class CIFARFormatError(ValueError):
    """A file that is not in the CIFAR binary layout."""


class CIFAR10(InMemoryImageDataset):
    """CIFAR-10, as `torchvision.datasets.CIFAR10` but read from the binary distribution.

    `ds[i]` is `(image, label)`: a 32x32 RGB PIL image passed through `transform`, an int
    passed through `target_transform`. `ds.data` is a uint8 NumPy array (N, 32, 32, 3),
    `ds.targets` a list of ints, `ds.classes` the class names. The DataLoader gets whole
    batches from `get_batch`: a batch-capable transform (e.g. RandomCrop + flip +
    ToTensor + Normalize) runs once per batch on the (B, 32, 32, 3) uint8 images, each
    sample with its own random draw; any other transform runs per image.
    """

    display_name = "CIFAR-10"
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    archive = "cifar-10-binary.tar.gz"
    archive_md5 = "c32a1d4ab5d03f1284b67883e8d87530"
    folder = "cifar-10-batches-bin"        # the archive's top folder
    cache_folder = "cifar10"
    split_files = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)],
                   "test": ["test_batch.bin"]}
    names_file = "batches.meta.txt"
    label_bytes = 1                        # the label is the record's last label byte
    num_classes = 10

    def __init__(self, root=None, train=True, download=True, transform=None,
                 target_transform=None):
        self.root = None if root is None else Path(root).expanduser()
        self.train = bool(train)
        self.transform = transform
        self.target_transform = target_transform
        source = self._locate(download)
        blobs = self._read_members(source)
        self.classes = self._parse_names(blobs[self.names_file], source)
        images, labels, extra = [], [], []
        for name in self.split_files[self.split]:
            im, lab, more = self._parse_records(blobs[name], f"{source}: {name}")
            images.append(im)
            labels.append(lab)
            extra.append(more)
        self.source = source
        self.data = np.concatenate(images)                     # uint8 (N, 32, 32, 3)
        self._images = self.data                               # the same array
        self._labels = np.concatenate(labels).astype(np.int64)
        self.targets = self._labels.tolist()
        self._set_extra(np.concatenate(extra) if extra[0] is not None else None)

    def _set_extra(self, extra):
        pass

    def __repr__(self):
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}",
                 f"    Source: {self.source}", f"    Split: {self.split.capitalize()}"]
        if self.transform is not None:
            lines.append("    Transform: " + repr(self.transform).replace("\n", "\n    "))
        return "\n".join(lines)

    # ------------------------------------------------------------------ finding the files
    def needed_files(self):
        return self.split_files[self.split] + [self.names_file]

    def search_folders(self):
        """Every folder looked in, in order (see the module docstring)."""
        bases = [] if self.root is None else [self.root]
        env = os.environ.get(DATA_ENV_VAR)
        if env:
            bases.append(Path(env).expanduser())
        bases.append(cache_dir())
        folders = []
        for base in bases:
            for folder in (base, base / self.folder, base / self.cache_folder,
                           base / self.cache_folder / self.folder):
                if folder not in folders:
                    folders.append(folder)
        return folders

    def download_folder(self):
        return self.root if self.root is not None else cache_dir() / self.cache_folder

    def _locate(self, allow_download):
        """The folder holding the needed files, or the path of an official archive."""
        folders = self.search_folders()
        for folder in folders:
            if all((folder / name).is_file() for name in self.needed_files()):
                return folder
            if (folder / self.archive).is_file():
                return folder / self.archive
        if not allow_download:
            raise DatasetNotFoundError(self._not_found_message(folders, None))
        target = self.download_folder()
        archive = target / self.archive
        target.mkdir(parents=True, exist_ok=True)
        print(f"Downloading {self.url} to {archive}", file=sys.stderr)
        try:
            download.download_file(self.url, archive, self.archive_md5)
        except (OSError, ValueError) as exc:
            raise DatasetNotFoundError(self._not_found_message(
                folders, f"{self.url}: {exc}")) from exc
        self._extract(archive, target / self.folder)
        return target / self.folder

    def _not_found_message(self, folders, download_error):
        what = f"{self.display_name} {'training' if self.train else 'test'} files"
        lines = [f"{self.display_name}: the {what} were not found."]
        if download_error is None:
            lines[0] += " Downloading is off (download=False)."
        else:
            lines[0] += f" Downloading them failed:\n  {download_error}"
        lines.append("Looked in these folders:")
        lines.extend(f"  {folder}" for folder in folders)
        lines.append(f"Put the official binary archive {self.archive} (or its extracted "
                     f"{self.folder}/ folder, holding {', '.join(self.needed_files())}) in "
                     f"one of them, e.g. {self.download_folder()}, or set {DATA_ENV_VAR} "
                     f"to a folder holding it. It is published at {self.url}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ reading the files
    def _archive_members(self, archive: Path, names):
        """`{name: bytes}` of the members `<folder>/<name>` of an MD5-checked archive."""
        got = download.md5_of_file(archive)
        if got != self.archive_md5:
            raise download.ChecksumError(
                f"{archive}: MD5 {got} is not the published {self.archive_md5} of the "
                f"official {self.archive}; delete it (it will be downloaded again) or "
                "replace it with the official file")
        wanted = {f"{self.folder}/{name}": name for name in names}
        blobs = {}
        try:
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar:
                    name = wanted.get(member.name.lstrip("./"))
                    if name is not None and member.isfile():
                        if name.endswith(".bin"):
                            self._check_size(member.size, f"{archive}: {name}")
                        blobs[name] = tar.extractfile(member).read()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise CIFARFormatError(f"{archive}: cannot read the archive ({exc})") from exc
        missing = [n for n in names if n not in blobs]
        if missing:
            raise CIFARFormatError(f"{archive}: the archive lacks {', '.join(missing)}")
        return blobs

    def _read_members(self, source: Path):
        names = self.needed_files()
        if source.is_file():
            return self._archive_members(source, names)
        for name in names:
            if name.endswith(".bin"):
                self._check_size((source / name).stat().st_size, f"{source}: {name}")
        return {name: (source / name).read_bytes() for name in names}

    def _check_size(self, size, where):
        """A whole, non-zero number of records, checked before a byte is read."""
        record = self.label_bytes + PIXELS
        if size == 0 or size % record:
            raise CIFARFormatError(
                f"{where}: {size} bytes is not a whole number of {record}-byte records "
                f"({self.label_bytes} label byte(s) + {PIXELS} pixel bytes): the file is "
                f"truncated or not a {self.display_name} binary file")

    def _extract(self, archive: Path, folder: Path):
        """Write every file of the dataset (both splits) from the archive into `folder`,
        each atomically (temporary file, then rename)."""
        names = sorted({n for files in self.split_files.values() for n in files}
                       | {self.names_file})
        blobs = self._archive_members(archive, names)
        folder.mkdir(parents=True, exist_ok=True)
        for name, raw in blobs.items():
            temp = folder / f".{name}.part"
            try:
                temp.write_bytes(raw)
                os.replace(temp, folder / name)
            finally:
                if temp.exists():
                    temp.unlink()

    def _parse_names(self, raw, source):
        names = [line.strip() for line in raw.decode("utf-8", "replace").splitlines()]
        names = [n for n in names if n]
        if len(names) != self.num_classes:
            raise CIFARFormatError(f"{source}: {self.names_file} lists {len(names)} class "
                                   f"names, expected {self.num_classes}")
        return names

    def _parse_records(self, raw, where):
        """`(images NHWC uint8, labels, extra labels or None)` of one binary file."""
        record = self.label_bytes + PIXELS
        self._check_size(len(raw), where)
        rows = np.frombuffer(raw, dtype=np.uint8).reshape(-1, record)
        labels = rows[:, self.label_bytes - 1]
        if labels.max() >= self.num_classes:
            bad = int(np.argmax(labels >= self.num_classes))
            raise CIFARFormatError(f"{where}: record {bad} has label {labels[bad]}, outside "
                                   f"0..{self.num_classes - 1}: not a {self.display_name} "
                                   "binary file")
        images = rows[:, self.label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        extra = rows[:, 0].astype(np.int64) if self.label_bytes == 2 else None
        return np.ascontiguousarray(images), labels.copy(), extra


class CIFAR100(CIFAR10):
    """CIFAR-100 from `cifar-100-binary.tar.gz`; targets are the 100 fine labels (as
    torchvision's) and `coarse_targets` the 20 superclass labels. See `CIFAR10`."""

    display_name = "CIFAR-100"
    url = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"
    archive = "cifar-100-binary.tar.gz"
    archive_md5 = "03b5dce01913d631647c71ecec9e9cb8"
    folder = "cifar-100-binary"
    cache_folder = "cifar100"
    split_files = {"train": ["train.bin"], "test": ["test.bin"]}
    names_file = "fine_label_names.txt"
    label_bytes = 2
    num_classes = 100

    def _set_extra(self, extra):
        self.coarse_targets = extra.tolist()
