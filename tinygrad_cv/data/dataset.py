"""Datasets: the map-style `Dataset` protocol, `TensorDataset`, `Subset`, `ConcatDataset`,
`random_split`.

A dataset held in memory may also define `get_batch(indices)`, returning a whole batch
(a list of Tensors, one per field) from one vectorised index per field. The DataLoader
uses it instead of fetching and collating samples one by one.
"""
from __future__ import annotations

import bisect
import math
import warnings

import numpy as np

from ..backend import array_module, xp_of
from ..tensor import Tensor, wrap_array


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
        return tuple(wrap_array(t.data[index], t.device_str) for t in self.tensors)

    def get_batch(self, indices):
        batch = []
        for t in self.tensors:
            index = array_module(t.device_str).asarray(indices)
            batch.append(wrap_array(t.data[index], t.device_str))
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

    def __getattr__(self, name):
        # `get_batch` only when the wrapped dataset is in memory (has one): a Subset of
        # files must load sample by sample, in worker processes when asked.
        if name == "get_batch" and hasattr(self.__dict__.get("dataset"), "get_batch"):
            return self._get_batch
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _get_batch(self, indices):
        return self.dataset.get_batch(self.indices[np.asarray(indices, dtype=np.int64)])


def random_split(dataset, lengths, generator=None):
    """Split `dataset` into non-overlapping random `Subset`s of the given lengths.

    As torch: `lengths` are counts summing to `len(dataset)`, or fractions summing to 1,
    which become `floor(len * fraction)` each with the remainder handed out one by one
    to the parts in order (round-robin). `generator` is a NumPy Generator or an int seed;
    None draws from the global generator that `tc.manual_seed` seeds.
    """
    from .sampler import resolve_generator
    total = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        for frac in lengths:
            if not 0 <= frac <= 1:
                raise ValueError(f"random_split: fraction {frac} is not between 0 and 1")
        counts = [int(math.floor(total * frac)) for frac in lengths]
        for i in range(total - sum(counts)):
            counts[i % len(counts)] += 1
        for i, n in enumerate(counts):
            if n == 0:
                warnings.warn(f"Length of split at index {i} is 0. This might result in an "
                              "empty dataset.")
        lengths = counts
    if any(n < 0 or int(n) != n for n in lengths) or sum(lengths) != total:
        raise ValueError(f"random_split: lengths {lengths} must be non-negative integers that "
                         f"sum to the dataset's length {total} (or fractions summing to 1)")
    order = resolve_generator(generator, owner="random_split").permutation(total)
    parts, start = [], 0
    for n in lengths:
        parts.append(Subset(dataset, order[start:start + int(n)]))
        start += int(n)
    return parts


class ConcatDataset(Dataset):
    """The samples of several datasets one after the other, as torch's ConcatDataset.

    `cumulative_sizes[k]` is the number of samples in the first k+1 datasets. When every
    part has `get_batch`, so does the concatenation (one gather per part).
    """

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self):
        return self.cumulative_sizes[-1]

    def _locate(self, index):
        if index < 0:
            if -index > len(self):
                raise ValueError("ConcatDataset: absolute value of index should not exceed "
                                 "dataset length")
            index += len(self)
        part = bisect.bisect_right(self.cumulative_sizes, index)
        start = self.cumulative_sizes[part - 1] if part > 0 else 0
        return part, index - start

    def __getitem__(self, index):
        part, inner = self._locate(int(index))
        return self.datasets[part][inner]

    def __getattr__(self, name):
        if name == "get_batch" and all(hasattr(d, "get_batch") for d in self.__dict__.get(
                "datasets", [None])):
            return self._get_batch
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _get_batch(self, indices):
        indices = np.asarray(indices, dtype=np.int64)
        starts = np.concatenate([[0], self.cumulative_sizes[:-1]]).astype(np.int64)
        parts = np.searchsorted(self.cumulative_sizes, indices, side="right")
        pieces, positions = [], []
        for k in np.unique(parts).tolist():
            where = np.nonzero(parts == k)[0]
            pieces.append(self.datasets[k].get_batch(indices[where] - starts[k]))
            positions.append(where)
        if len(pieces) == 1:
            return pieces[0]
        inverse = np.argsort(np.concatenate(positions), kind="stable")
        fields = []
        for column in zip(*pieces):
            xp = xp_of(column[0].data)
            joined = xp.concatenate([c.data for c in column])
            fields.append(wrap_array(joined[xp.asarray(inverse)], column[0].device_str))
        return fields
