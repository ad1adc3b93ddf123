"""Datasets with torchvision's names: MNIST and Fashion-MNIST from the official IDX files."""
from .download import ChecksumError
from .idx import IDXFormatError, read_idx
from .mnist import DatasetNotFoundError, FashionMNIST, MNIST

__all__ = ["MNIST", "FashionMNIST", "read_idx", "IDXFormatError", "ChecksumError",
           "DatasetNotFoundError"]
