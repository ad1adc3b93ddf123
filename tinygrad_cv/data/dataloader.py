"""DataLoader: batches of Tensors from a dataset, gathered with one vectorised index.

For a dataset with `get_batch(indices)` (in-memory datasets: TensorDataset, MNIST, ...)
a batch costs one fancy index per field and one batch transform, with no Python loop
over samples. Any other map-style dataset works through `ds[i]` and `default_collate`.

Differences from `torch.utils.data.DataLoader`:
- `batch_size` defaults to 64 (PyTorch: 1), and `seed` gives the loader its own
  shuffling generator. With neither `seed` nor `generator`, shuffling draws from the
  global generator, so `tc.manual_seed(n)` makes the epoch orders reproducible.
- `num_workers`, `pin_memory`, `persistent_workers`, `prefetch_factor`, `timeout`,
  `worker_init_fn`, `multiprocessing_context`, `pin_memory_device` and `in_order` are
  accepted and do nothing: batches are built in the calling process (for in-memory data
  one vectorised index is faster than shipping samples between worker processes), and
  pinned host memory means nothing to NumPy/CuPy here.
"""
from __future__ import annotations

import itertools
import math
import numbers

import numpy as np

from ..backend import device_of_array, is_device_array, xp_of
from ..random import generator_for
from ..tensor import Tensor


def resolve_generator(generator=None, seed=None):
    """The NumPy Generator to shuffle with: `generator` (a Generator or an int seed),
    else a new one from `seed`, else the global CPU generator of `tc.manual_seed`."""
    if generator is not None and seed is not None:
        raise ValueError("DataLoader: pass either seed or generator, not both")
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, numbers.Integral):
        return np.random.default_rng(int(generator))
    if generator is not None and hasattr(generator, "initial_seed"):   # a torch.Generator
        return np.random.default_rng(int(generator.initial_seed()))
    if generator is not None:
        raise TypeError(f"DataLoader: generator must be a numpy.random.Generator or an int "
                        f"seed, got {type(generator).__name__}")
    if seed is not None:
        return np.random.default_rng(seed)
    return generator_for("cpu")


def _stack_arrays(arrays):
    arrays = list(arrays)
    return xp_of(arrays[0]).stack(arrays)


def default_collate(samples):
    """Merge a list of samples into a batch, field by field, as PyTorch's default_collate.

    Tensors and arrays are stacked along a new first dimension; Python ints become an
    int64 Tensor, floats a float64 Tensor (as in PyTorch), bools a bool Tensor; tuples
    and lists are collated per position (giving a list), dicts per key; strings and
    anything else stay a list. PIL images are converted to arrays first.
    """
    if not samples:
        raise ValueError("default_collate: got an empty list of samples")
    first = samples[0]
    if isinstance(first, Tensor):
        return Tensor._wrap(_stack_arrays(s.data for s in samples), first.device_str)
    if is_device_array(first):
        stacked = _stack_arrays(samples)
        return Tensor._wrap(stacked, device_of_array(stacked))
    if isinstance(first, np.generic):                  # NumPy scalars keep their dtype
        return Tensor._wrap(np.array(samples), "cpu")
    if isinstance(first, (bool, np.bool_)):
        return Tensor._wrap(np.array(samples, dtype=np.bool_), "cpu")
    if isinstance(first, numbers.Integral):
        return Tensor._wrap(np.array(samples, dtype=np.int64), "cpu")
    if isinstance(first, numbers.Real):
        return Tensor._wrap(np.array(samples, dtype=np.float64), "cpu")
    if isinstance(first, str):
        return list(samples)
    if isinstance(first, dict):
        return {key: default_collate([s[key] for s in samples]) for key in first}
    if isinstance(first, (tuple, list)):
        if any(len(s) != len(first) for s in samples):
            raise ValueError("default_collate: every sample must have the same number of fields")
        return [default_collate(list(field)) for field in zip(*samples)]
    if hasattr(first, "getdata") and hasattr(first, "mode"):       # a PIL image
        return default_collate([np.asarray(s) for s in samples])
    return list(samples)


class DataLoader:
    """Iterate over `dataset` in batches of Tensors, reshuffling every epoch if asked.

    `len(loader)` is the number of batches per epoch. See the module docstring for the
    accepted PyTorch keywords that do nothing here.
    """

    def __init__(self, dataset, batch_size=64, shuffle=False, drop_last=False, seed=None, *,
                 sampler=None, batch_sampler=None, num_workers=0, collate_fn=None,
                 pin_memory=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, prefetch_factor=None,
                 persistent_workers=False, pin_memory_device="", in_order=True):
        if batch_size is not None and (not isinstance(batch_size, numbers.Integral)
                                       or isinstance(batch_size, bool) or batch_size <= 0):
            raise ValueError(f"DataLoader: batch_size should be a positive integer or None, "
                             f"got {batch_size!r}")
        if not isinstance(num_workers, numbers.Integral) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers should be a non-negative integer, "
                             f"got {num_workers!r}")
        if timeout < 0:
            raise ValueError(f"DataLoader: timeout should be non-negative, got {timeout!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None and (shuffle or sampler is not None or drop_last):
            raise ValueError("DataLoader: batch_sampler option is mutually exclusive with "
                             "batch_size, shuffle, sampler, and drop_last")
        self.dataset = dataset
        self.batch_size = None if batch_sampler is not None else batch_size
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.collate_fn = collate_fn
        self.generator = resolve_generator(generator, seed) if (generator is not None
                                                                  or seed is not None) else None
        # Accepted for PyTorch compatibility; they change nothing (see the module docstring).
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self.pin_memory_device = pin_memory_device
        self.in_order = in_order

    # ------------------------------------------------------------------ sizes
    def _num_samples(self):
        return len(self.sampler) if self.sampler is not None else len(self.dataset)

    def __len__(self):
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = self._num_samples()
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    # ------------------------------------------------------------------ iteration
    def _epoch_order(self):
        """This epoch's sample indices: a fresh permutation when shuffling."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n, dtype=np.int64)
        gen = self.generator if self.generator is not None else generator_for("cpu")
        return gen.permutation(n).astype(np.int64, copy=False)

    def _index_batches(self):
        """Arrays of indices, one per batch, for one epoch."""
        if self.batch_sampler is not None:
            return (np.asarray(list(b), dtype=np.int64) for b in self.batch_sampler)
        if self.sampler is not None:
            return self._chunk(iter(self.sampler))
        order = self._epoch_order()
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        return (order[i:i + self.batch_size] for i in range(0, stop, self.batch_size))

    def _chunk(self, indices):
        while True:
            chunk = list(itertools.islice(indices, self.batch_size))
            if not chunk or (self.drop_last and len(chunk) < self.batch_size):
                return
            yield np.asarray(chunk, dtype=np.int64)

    def _fetch(self, indices):
        if self.collate_fn is None and hasattr(self.dataset, "get_batch"):
            return self.dataset.get_batch(indices)
        collate = self.collate_fn if self.collate_fn is not None else default_collate
        return collate([self.dataset[int(i)] for i in indices])

    def __iter__(self):
        if self.batch_size is None and self.batch_sampler is None:   # no automatic batching
            indices = iter(self.sampler) if self.sampler is not None else self._epoch_order()
            return (self.dataset[int(i)] for i in indices)
        return (self._fetch(batch) for batch in self._index_batches())

    def __repr__(self):
        return (f"DataLoader(dataset={type(self.dataset).__name__} of {len(self.dataset)}, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, batches={len(self)})")
