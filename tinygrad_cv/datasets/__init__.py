"""Datasets with torchvision's names: MNIST and Fashion-MNIST from the official IDX files,
CIFAR-10/100 from the official binary files, and folders of your own images."""
from .cifar import CIFAR10, CIFAR100, CIFARFormatError
from .download import ChecksumError
from .folder import (IMG_EXTENSIONS, DatasetFolder, ImageFolder, find_classes,
                     has_file_allowed_extension, image_folder_splits, make_dataset)
from .idx import IDXFormatError, read_idx
from .images import ImageFileError, default_loader, pil_loader
from .mnist import DatasetNotFoundError, FashionMNIST, MNIST

__all__ = ["MNIST", "FashionMNIST", "CIFAR10", "CIFAR100", "ImageFolder", "DatasetFolder",
           "IMG_EXTENSIONS", "image_folder_splits", "find_classes", "make_dataset", "has_file_allowed_extension",
           "default_loader", "pil_loader", "read_idx", "IDXFormatError", "ChecksumError",
           "DatasetNotFoundError", "CIFARFormatError", "ImageFileError"]
