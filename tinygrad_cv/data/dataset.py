"""Datasets: the map-style `Dataset` protocol, `TensorDataset`, `Subset`, `random_split`.

A dataset held in memory may also define `get_batch(indices)`, returning a whole batch
(a list of Tensors, one per field) from one vectorised index per field. The DataLoader
uses it instead of fetching and collating samples one by one.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import array_module
from ..tensor import Tensor


class Dataset:
    """A map-style dataset, as `torch.utils.data.Dataset`: `ds[i]` and `len(ds)`."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


def _as_tensor(value) -> Tensor:
    return value if isinstance(value, Tensor) else Tensor(value)


class TensorDataset(Dataset):
    """Samples are the i-th rows of tensors sharing their first dimension.

    `ds[i]` is a tuple of Tensors; batches are gathered with one fancy index per tensor
    on its own device. Batches are new tensors that do not track gradients.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: needs at least one tensor")
        self.tensors = tuple(_as_tensor(t) for t in tensors)
        sizes = [t.shape[0] if t.ndim > 0 else None for t in self.tensors]
        if None in sizes or len(set(sizes)) != 1:
            shapes = ", ".join(str(t.shape) for t in self.tensors)
            raise ValueError(f"TensorDataset: size mismatch between tensors: every tensor "
                             f"needs the same first dimension, got shapes {shapes}")

    def __len__(self):
        return self.tensors[0].shape[0]

    def __getitem__(self, index):
        return tuple(Tensor._wrap(t.data[index], t.device_str) for t in self.tensors)

    def get_batch(self, indices):
        batch = []
        for t in self.tensors:
            index = array_module(t.device_str).asarray(indices)
            batch.append(Tensor._wrap(t.data[index], t.device_str))
        return batch


class Subset(Dataset):
    """The samples of `dataset` at `indices`, as `torch.utils.data.Subset`."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, index):
        return self.dataset[int(self.indices[index])]

    def get_batch(self, indices):
        inner = self.indices[np.asarray(indices, dtype=np.int64)]
        if hasattr(self.dataset, "get_batch"):
            return self.dataset.get_batch(inner)
        from .dataloader import default_collate
        return default_collate([self.dataset[int(i)] for i in inner])


def random_split(dataset, lengths, generator=None):
    """Split `dataset` into non-overlapping random `Subset`s of the given lengths.

    `lengths` are ints summing to `len(dataset)` or floats summing to 1 (the remainder
    of the rounding goes to the first parts round-robin, as PyTorch does).
    `generator` is a NumPy Generator or an int seed; None draws from the global
    generator that `tc.manual_seed` seeds.
    """
    from .dataloader import resolve_generator
    total = len(dataset)
    lengths = list(lengths)
    all_counts = all(isinstance(n, (int, np.integer)) for n in lengths)
    if not all_counts and math.isclose(sum(lengths), 1.0):
        counts = [int(math.floor(total * frac)) for frac in lengths]
        for i in range(total - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if sum(lengths) != total or any(n < 0 for n in lengths):
        raise ValueError(f"random_split: lengths {lengths} must be non-negative and sum to "
                         f"the dataset's length {total}")
    order = resolve_generator(generator).permutation(total)
    parts, start = [], 0
    for n in lengths:
        parts.append(Subset(dataset, order[start:start + int(n)]))
        start += int(n)
    return parts
