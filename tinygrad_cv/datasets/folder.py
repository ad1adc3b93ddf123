"""`DatasetFolder` and `ImageFolder`: one sub-folder per class, as torchvision's.

    root/dog/xxx.png
    root/dog/nested/xxy.jpeg
    root/cat/123.png

Classes are the sub-folders' names, sorted; `class_to_idx` numbers them in that order;
`samples` lists `(path, class_index)` for every valid file under each class folder
(walked recursively, following links, in sorted order); `targets` are the class
indices. Files are opened only when a sample is read (`ds[i]`), with Pillow, as RGB.
The errors name the folder: a missing root, a root without class folders, a class
folder without a valid file (unless `allow_empty=True`).
"""
from __future__ import annotations

import os

import numpy as np

from ..data.dataset import Dataset, Subset
from .images import default_loader

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def has_file_allowed_extension(filename, extensions):
    """Whether `filename` ends with one of `extensions` (a string or a tuple), any case."""
    return filename.lower().endswith(extensions if isinstance(extensions, str)
                                     else tuple(extensions))


def is_image_file(filename):
    return has_file_allowed_extension(filename, IMG_EXTENSIONS)


def _check_root(directory):
    if not os.path.isdir(directory):
        what = "is not a folder" if os.path.exists(directory) else "does not exist"
        raise FileNotFoundError(f"{directory} {what}: an image folder dataset needs a "
                                "folder with one sub-folder per class")


def find_classes(directory):
    """`(classes, class_to_idx)`: the sorted names of the sub-folders of `directory`."""
    directory = os.path.expanduser(os.fspath(directory))
    _check_root(directory)
    classes = sorted(entry.name for entry in os.scandir(directory) if entry.is_dir())
    if not classes:
        raise FileNotFoundError(f"Couldn't find any class folder in {directory}: it should "
                                "hold one sub-folder of images per class")
    return classes, {name: i for i, name in enumerate(classes)}


def make_dataset(directory, class_to_idx=None, extensions=None, is_valid_file=None,
                 allow_empty=False):
    """The `(path, class_index)` samples under `directory`, as torchvision's make_dataset.

    Exactly one of `extensions` and `is_valid_file` selects the files. A class folder
    with no valid file is an error naming it, unless `allow_empty`.
    """
    directory = os.path.expanduser(os.fspath(directory))
    if class_to_idx is None:
        _, class_to_idx = find_classes(directory)
    elif not class_to_idx:
        raise ValueError("'class_to_index' must have at least one entry to collect any "
                         "samples.")
    if (extensions is None) == (is_valid_file is None):
        raise ValueError("Both extensions and is_valid_file cannot be None or not None at "
                         "the same time")
    if extensions is not None:
        def is_valid_file(path):
            return has_file_allowed_extension(path, extensions)
    instances, found = [], set()
    for target_class in sorted(class_to_idx):
        class_index = class_to_idx[target_class]
        target_dir = os.path.join(directory, target_class)
        if not os.path.isdir(target_dir):
            continue
        for root, _, names in sorted(os.walk(target_dir, followlinks=True)):
            for name in sorted(names):
                path = os.path.join(root, name)
                if is_valid_file(path):
                    instances.append((path, class_index))
                    found.add(target_class)
    empty = set(class_to_idx) - found
    if empty and not allow_empty:
        folders = ", ".join(os.path.join(directory, c) for c in sorted(empty))
        msg = (f"Found no valid file for the classes {', '.join(sorted(empty))} "
               f"(folders {folders}). ")
        if extensions is not None:
            msg += ("Supported extensions are: " + (extensions if isinstance(extensions, str)
                                                     else ", ".join(extensions)))
        raise FileNotFoundError(msg)
    return instances


class DatasetFolder(Dataset):
    """Samples `(loader(path), class_index)` from a folder of class sub-folders.

    As `torchvision.datasets.DatasetFolder(root, loader, extensions=None, transform=None,
    target_transform=None, is_valid_file=None, allow_empty=False)`; see the module doc.
    """

    def __init__(self, root, loader, extensions=None, transform=None, target_transform=None,
                 is_valid_file=None, allow_empty=False):
        self.root = os.path.expanduser(os.fspath(root))
        self.transform = transform
        self.target_transform = target_transform
        classes, class_to_idx = self.find_classes(self.root)
        samples = self.make_dataset(self.root, class_to_idx, extensions, is_valid_file,
                                    allow_empty=allow_empty)
        self.loader = loader
        self.extensions = extensions
        self.classes = classes
        self.class_to_idx = class_to_idx
        self.samples = samples
        self.targets = [target for _, target in samples]

    @staticmethod
    def make_dataset(directory, class_to_idx, extensions=None, is_valid_file=None,
                     allow_empty=False):
        if class_to_idx is None:
            raise ValueError("The class_to_idx parameter cannot be None.")
        return make_dataset(directory, class_to_idx, extensions=extensions,
                            is_valid_file=is_valid_file, allow_empty=allow_empty)

    def find_classes(self, directory):
        return find_classes(directory)

    def __getitem__(self, index):
        path, target = self.samples[index]
        sample = self.loader(path)
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return sample, target

    def __len__(self):
        return len(self.samples)

    def __repr__(self):
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}",
                 f"    Root location: {self.root}"]
        if self.transform is not None:
            lines.append("    Transform: " + repr(self.transform).replace("\n", "\n    "))
        if self.target_transform is not None:
            lines.append(f"    Target transform: {self.target_transform!r}")
        return "\n".join(lines)


class ImageFolder(DatasetFolder):
    """Images in class sub-folders, decoded lazily with Pillow to RGB.

    As `torchvision.datasets.ImageFolder(root, transform=None, target_transform=None,
    loader=default_loader, is_valid_file=None, allow_empty=False)`: files are those with
    an extension in `IMG_EXTENSIONS`, or those `is_valid_file(path)` accepts. `ds[i]` is
    `(transform(image), target_transform(class_index))`; `imgs` is `samples`. A file
    that cannot be decoded raises `ImageFileError` naming it when it is read.
    """

    def __init__(self, root, transform=None, target_transform=None, loader=None,
                 is_valid_file=None, allow_empty=False):
        super().__init__(root, loader if loader is not None else default_loader,
                         IMG_EXTENSIONS if is_valid_file is None else None,
                         transform=transform, target_transform=target_transform,
                         is_valid_file=is_valid_file, allow_empty=allow_empty)
        self.imgs = self.samples


def image_folder_splits(root, train_transform=None, val_transform=None, val_fraction=0.2,
                        seed=0):
    """`(train, val, classes)` from a folder of images, for `train --dataset folder`.

    With `root/train/` and `root/val/` folders (each holding the same class folders)
    those are the splits; otherwise `root` holds the class folders and a seeded random
    `val_fraction` of its files (at least one) is held out, the same files seen through
    `train_transform` for training and `val_transform` for validation. An error names
    the folders when the class folders of train/ and val/ differ.
    """
    root = os.path.expanduser(os.fspath(root))
    train_dir, val_dir = os.path.join(root, "train"), os.path.join(root, "val")
    if os.path.isdir(train_dir) and os.path.isdir(val_dir):
        train = ImageFolder(train_dir, transform=train_transform)
        val = ImageFolder(val_dir, transform=val_transform)
        if val.classes != train.classes:
            raise ValueError(f"{train_dir} and {val_dir} must hold the same class folders, "
                             f"got {train.classes} and {val.classes}")
        return train, val, train.classes
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"image_folder_splits: val_fraction must be between 0 and 1, got "
                         f"{val_fraction}")
    augmented = ImageFolder(root, transform=train_transform)
    plain = ImageFolder(root, transform=val_transform)
    if len(plain) < 2:
        raise ValueError(f"{root}: {len(plain)} image(s) cannot be split into training and "
                         "validation sets")
    order = np.random.default_rng(seed).permutation(len(plain))
    n_val = min(max(1, int(round(val_fraction * len(plain)))), len(plain) - 1)
    return Subset(augmented, order[n_val:]), Subset(plain, order[:n_val]), plain.classes
