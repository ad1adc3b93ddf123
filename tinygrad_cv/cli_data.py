"""The datasets the CLI commands read: MNIST / Fashion-MNIST splits normalised with their
statistics, and a user's image folder with its training and validation transforms."""
from __future__ import annotations

import os

from . import transforms
from .datasets import MNIST, FashionMNIST, image_folder_splits
from .errors import UserError
from .train import DATASET_STATS

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def load_dataset(name, train, data_dir=None, download=True, mean=None, std=None):
    """The train or test split of `name`, normalised with `mean`/`std` (default: that
    dataset's). A corrupt or wrong data file is a UserError naming it."""
    default_mean, default_std = DATASET_STATS[name]
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(
        default_mean if mean is None else mean, default_std if std is None else std)])
    cls = MNIST if name == "mnist" else FashionMNIST
    try:
        return cls(root=data_dir, train=train, download=download, transform=transform)
    except ValueError as exc:   # IDXFormatError, ChecksumError: each names the file
        raise UserError(str(exc)) from None


def folder_transforms(size, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """(training, validation) transforms of `train --dataset folder`: resize, then a random
    crop and flip for training or a centre crop for validation, then normalise."""
    train_tf = transforms.Compose([
        transforms.Resize(size), transforms.RandomCrop(size, pad_if_needed=True),
        transforms.RandomHorizontalFlip(), transforms.ToTensor(),
        transforms.Normalize(mean, std)])
    val_tf = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size),
                                 transforms.ToTensor(), transforms.Normalize(mean, std)])
    return train_tf, val_tf


def load_folder(data_dir, train_tf, val_tf, val_fraction, seed):
    """(train, val, classes) of an image folder (`datasets.image_folder_splits`); a missing
    folder, one with no class folders or too few images is a UserError."""
    if not data_dir:
        raise UserError("--dataset folder needs --data-dir PATH (a folder of class folders, "
                        "or of train/ and val/)")
    if not os.path.isdir(data_dir):
        raise UserError(f"--data-dir {data_dir}: no such folder")
    try:
        return image_folder_splits(data_dir, train_tf, val_tf, val_fraction, seed)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc).splitlines()[0]) from None


def load_datasets(name, data_dir=None, download=True):
    """(train, test) datasets of `name` (see `load_dataset`)."""
    return (load_dataset(name, True, data_dir, download),
            load_dataset(name, False, data_dir, download))
