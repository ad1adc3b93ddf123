"""DataLoader: batches of Tensors from a dataset, with torch.utils.data's keywords.

For a dataset with `get_batch(indices)` (in-memory datasets: TensorDataset, MNIST,
CIFAR10, ...) and no `collate_fn`, a batch costs one fancy index per field and one batch
transform, with no Python loop over samples; such batches are always built in the
calling process, whatever `num_workers` says (shipping them from worker processes could
only be slower). Any other map-style dataset works through `ds[i]` and the collate
function, in `num_workers` worker processes when it is > 0 (see `workers.py`: the start
method, seeding, shared memory). With `persistent_workers=True` the workers live until
the loader and every iterator of it are garbage-collected (an iterator still running
keeps them, as in torch), or until the interpreter exits; no process or shared-memory
block is left behind.

Differences from `torch.utils.data.DataLoader`:
- `batch_size` defaults to 64 (PyTorch: 1), and `seed` gives the loader its own
  shuffling generator. With neither `seed` nor `generator`, shuffling draws from the
  global generator, so `tc.manual_seed(n)` makes the epoch orders reproducible.
- The default start method of workers is forkserver, not fork (see `workers.py`).
- `pin_memory`, `pin_memory_device` and `in_order=False` are accepted and do nothing:
  pinned host memory means nothing to NumPy/CuPy here, and batches always come in order.
"""
from __future__ import annotations

import numbers

import numpy as np

from .collate import default_collate
from .sampler import BatchSampler, RandomSampler, SequentialSampler, resolve_generator
from .workers import MultiProcessIterator, PoolHandle, WorkerPool

__all__ = ["DataLoader", "default_collate", "resolve_generator"]


class DataLoader:
    """Iterate over `dataset` in batches, reshuffling every epoch if asked.

    `len(loader)` is the number of batches per epoch. Keywords as torch's (see the module
    docstring for the differences); with `num_workers > 0`, `timeout`,
    `worker_init_fn`, `multiprocessing_context`, `prefetch_factor` (default 2) and
    `persistent_workers` act as in torch.
    """

    def __init__(self, dataset, batch_size=64, shuffle=False, sampler=None,
                 batch_sampler=None, num_workers=0, collate_fn=None, pin_memory=False,
                 drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None,
                 persistent_workers=False, pin_memory_device="", in_order=True, seed=None):
        if batch_size is not None and (not isinstance(batch_size, numbers.Integral)
                                       or isinstance(batch_size, bool) or batch_size <= 0):
            raise ValueError(f"DataLoader: batch_size should be a positive integer or None, "
                             f"got {batch_size!r}")
        if (not isinstance(num_workers, numbers.Integral) or isinstance(num_workers, bool)
                or num_workers < 0):
            raise ValueError(f"DataLoader: num_workers option should be non-negative, "
                             f"got {num_workers!r}")
        if not isinstance(timeout, numbers.Real) or timeout < 0:
            raise ValueError(f"DataLoader: timeout option should be non-negative, "
                             f"got {timeout!r}")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("DataLoader: prefetch_factor option could only be specified in "
                             "multiprocessing. let num_workers > 0 to enable multiprocessing, "
                             "otherwise set prefetch_factor to None.")
        if prefetch_factor is not None and (not isinstance(prefetch_factor, numbers.Integral)
                                            or prefetch_factor < 1):
            raise ValueError(f"DataLoader: prefetch_factor should be a positive integer, "
                             f"got {prefetch_factor!r}")
        if persistent_workers and num_workers == 0:
            raise ValueError("DataLoader: persistent_workers option needs num_workers > 0")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None and (batch_size != 64 and batch_size != 1 or shuffle
                                          or sampler is not None or drop_last):
            raise ValueError("DataLoader: batch_sampler option is mutually exclusive with "
                             "batch_size, shuffle, sampler, and drop_last")
        if batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None option disables auto-batching and "
                             "is mutually exclusive with drop_last")
        self.dataset = dataset
        self.num_workers = int(num_workers)
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = bool(persistent_workers)
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.in_order = in_order
        self.generator = resolve_generator(generator, seed) if (generator is not None
                                                                  or seed is not None) else None
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self._default_sampler = sampler is None
        if sampler is None:
            sampler = (RandomSampler(dataset, generator=self.generator) if shuffle
                       else SequentialSampler(dataset))
        self.sampler = sampler
        self.batch_size = None if batch_sampler is not None else batch_size
        self._user_batch_sampler = batch_sampler is not None
        if batch_sampler is None and batch_size is not None:
            batch_sampler = BatchSampler(sampler, batch_size, self.drop_last)
        self.batch_sampler = batch_sampler
        self.collate_fn = collate_fn
        self._epoch = 0
        self._workers = None            # the PoolHandle of persistent workers

    @property
    def _pool(self):
        """The persistent worker pool, or None."""
        return None if self._workers is None else self._workers.pool

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None

    # ------------------------------------------------------------------ sizes
    def __len__(self):
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)

    # ------------------------------------------------------------------ iteration
    def _epoch_order(self):
        """The default sampler's indices as one array (no per-index Python work)."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n, dtype=np.int64)
        gen = resolve_generator(self.generator)
        return gen.permutation(n).astype(np.int64, copy=False)

    def _index_batches(self):
        """Arrays of indices, one per batch, for one epoch (or single indices without
        automatic batching). The iterator returned never refers to the loader."""
        if not self._auto_collation:
            if self._default_sampler:
                return iter(self._epoch_order().tolist())
            return iter(self.sampler)
        if self._default_sampler and not self._user_batch_sampler:
            return _slices(self._epoch_order(), self.batch_size, self.drop_last)
        return _as_index_arrays(iter(self.batch_sampler))

    def _in_memory(self):
        return self.collate_fn is None and hasattr(self.dataset, "get_batch")

    def _fetch(self, indices):
        if self._in_memory():
            return self.dataset.get_batch(indices)
        collate = self.collate_fn if self.collate_fn is not None else default_collate
        return collate([self.dataset[int(i)] for i in indices])

    def __iter__(self):
        if self.num_workers == 0 or self._in_memory():
            if not self._auto_collation:
                return (self.dataset[int(i)] for i in self._index_batches())
            return (self._fetch(batch) for batch in self._index_batches())
        return self._multiprocess_iter()

    def _multiprocess_iter(self):
        base_seed = int(resolve_generator(self.generator).integers(0, 2 ** 62))
        handle = self._workers
        if handle is None or handle.pool.closed:
            collate = self.collate_fn if self.collate_fn is not None else default_collate
            handle = PoolHandle(WorkerPool(
                self.dataset, self.num_workers, self.multiprocessing_context, base_seed,
                self.worker_init_fn, collate, self._auto_collation))
            if self.persistent_workers:
                self._workers = handle
        self._epoch += 1
        return MultiProcessIterator(handle, _as_tasks(self._index_batches()), self._epoch,
                                    self.prefetch_factor or 2, self.timeout,
                                    keep_pool=self.persistent_workers)

    def __repr__(self):
        return (f"DataLoader(dataset={type(self.dataset).__name__} of {len(self.dataset)}, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, num_workers={self.num_workers}, "
                f"batches={len(self)})")


def _slices(order, size, drop_last):
    stop = len(order) - len(order) % size if drop_last else len(order)
    return (order[i:i + size] for i in range(0, stop, size))


def _as_index_arrays(batches):
    return (np.asarray(list(b), dtype=np.int64) for b in batches)


def _as_tasks(batches):
    """What a worker is sent per batch: a list of Python ints (or one int)."""
    return (b.tolist() if isinstance(b, np.ndarray) else int(b) for b in batches)
