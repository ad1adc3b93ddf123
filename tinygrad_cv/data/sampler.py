"""Samplers: which sample indices an epoch visits, as `torch.utils.data`'s samplers.

Random samplers draw from a NumPy Generator: their own `generator` (a Generator or an
int seed), else the global CPU generator that `tc.manual_seed` seeds. The index
sequences therefore follow torch's rules (sizes, repetition, padding) but not its
random numbers (torch's generator is a different algorithm).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..random import generator_for


def resolve_generator(generator=None, seed=None, owner="DataLoader"):
    """The NumPy Generator to draw with: `generator` (a Generator or an int seed), else a
    new one from `seed`, else the global CPU generator of `tc.manual_seed`."""
    if generator is not None and seed is not None:
        raise ValueError(f"{owner}: pass either seed or generator, not both")
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    if generator is not None and hasattr(generator, "initial_seed"):   # a torch.Generator
        return np.random.default_rng(int(generator.initial_seed()))
    if generator is not None:
        raise TypeError(f"{owner}: generator must be a numpy.random.Generator or an int "
                        f"seed, got {type(generator).__name__}")
    if seed is not None:
        return np.random.default_rng(seed)
    return generator_for("cpu")


def _positive_int(value, name, owner):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{owner}: {name} should be a positive integer value, "
                         f"but got {name}={value!r}")
    return int(value)


class Sampler:
    """Base class: iterating yields dataset indices; `len` is how many."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """A random order of the dataset; with `replacement`, `num_samples` independent draws.

    Without replacement and `num_samples > len(data_source)`, whole permutations follow
    one another and the last is cut short (torch's rule). A `generator` of None draws
    from the global generator each epoch.
    """

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        if not isinstance(replacement, bool):
            raise TypeError(f"RandomSampler: replacement should be a boolean value, "
                            f"but got replacement={replacement!r}")
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        _positive_int(self.num_samples, "num_samples", "RandomSampler")

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        gen = resolve_generator(self.generator, owner="RandomSampler")
        if self.replacement:
            yield from gen.integers(0, n, size=self.num_samples).tolist()
            return
        for _ in range(self.num_samples // n):
            yield from gen.permutation(n).tolist()
        yield from gen.permutation(n)[:self.num_samples % n].tolist()

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given `indices` in a random order, drawn afresh each epoch."""

    def __init__(self, indices, generator=None):
        self.indices = indices
        self.generator = generator

    def __iter__(self):
        gen = resolve_generator(self.generator, owner="SubsetRandomSampler")
        for i in gen.permutation(len(self.indices)).tolist():
            yield self.indices[i]

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """`num_samples` indices in [0, len(weights)) drawn with probabilities ~ `weights`.

    As torch.multinomial: weights need not sum to one; without replacement an index is
    drawn at most once, so `num_samples` may not exceed the number of non-zero weights.
    """

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        _positive_int(num_samples, "num_samples", "WeightedRandomSampler")
        if not isinstance(replacement, bool):
            raise ValueError(f"WeightedRandomSampler: replacement should be a boolean value, "
                             f"but got replacement={replacement!r}")
        w = np.asarray(getattr(weights, "data", weights), dtype=np.float64)
        if w.ndim != 1 or w.size == 0:
            raise ValueError(f"WeightedRandomSampler: weights should be a non-empty 1-d "
                             f"sequence, got shape {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("WeightedRandomSampler: weights must be finite, non-negative "
                             "and not all zero")
        if not replacement and num_samples > np.count_nonzero(w):
            raise ValueError(f"WeightedRandomSampler: cannot draw {num_samples} samples "
                             f"without replacement from {np.count_nonzero(w)} non-zero "
                             "weights")
        self.weights = w
        self.num_samples = int(num_samples)
        self.replacement = replacement
        self.generator = generator

    def __iter__(self):
        gen = resolve_generator(self.generator, owner="WeightedRandomSampler")
        p = self.weights / self.weights.sum()
        draws = gen.choice(len(p), size=self.num_samples, replace=self.replacement, p=p)
        return iter(draws.tolist())

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Group the indices of `sampler` into lists of `batch_size` (the last one shorter
    unless `drop_last`)."""

    def __init__(self, sampler, batch_size, drop_last):
        _positive_int(batch_size, "batch_size", "BatchSampler")
        if not isinstance(drop_last, bool):
            raise ValueError(f"BatchSampler: drop_last should be a boolean value, "
                             f"but got drop_last={drop_last!r}")
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.drop_last = drop_last

    def __iter__(self):
        batch = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return math.ceil(len(self.sampler) / self.batch_size)


def _process_group():
    """(world size, rank) of the initialised process group, else an error."""
    try:
        from .. import distributed as dist
        ready = dist.is_initialized()
    except (ImportError, AttributeError):
        ready = False
    if not ready:
        raise RuntimeError("DistributedSampler: num_replicas and rank were not given and no "
                           "process group is initialised (call tinygrad_cv.distributed."
                           "init_process_group() first, or pass num_replicas= and rank=)")
    return dist.get_world_size(), dist.get_rank()


class DistributedSampler(Sampler):
    """This rank's share of the dataset, as `torch.utils.data.DistributedSampler`.

    Every rank sees `num_samples = ceil(len / num_replicas)` indices: the (shuffled with
    `seed + epoch`) order is padded by repeating its start so that it divides evenly,
    or, with `drop_last`, cut to the largest multiple of `num_replicas`. Rank r takes
    positions r, r + num_replicas, ... Call `set_epoch(e)` before each epoch to reshuffle.
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0,
                 drop_last=False):
        if num_replicas is None or rank is None:
            world, own = _process_group()
            num_replicas = world if num_replicas is None else num_replicas
            rank = own if rank is None else rank
        _positive_int(num_replicas, "num_replicas", "DistributedSampler")
        if not isinstance(rank, numbers.Integral) or rank < 0 or rank >= num_replicas:
            raise ValueError(f"DistributedSampler: invalid rank {rank}, rank should be in "
                             f"the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.epoch = 0
        self.drop_last = bool(drop_last)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        n = len(dataset)
        if self.drop_last and n % self.num_replicas != 0:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            indices = np.random.default_rng(self.seed + self.epoch).permutation(n).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:
            padding = self.total_size - len(indices)
            if padding <= len(indices):
                indices += indices[:padding]
            else:
                indices += (indices * math.ceil(padding / len(indices)))[:padding]
        else:
            indices = indices[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """Shuffle with `seed + epoch` from now on (every rank must call it alike)."""
        self.epoch = int(epoch)
