"""Samplers, random_split, ConcatDataset, default_collate and the DataLoader's torch
keywords, checked against torch.utils.data where it defines the result."""
from __future__ import annotations

import collections
import warnings

import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv.data import (BatchSampler, ConcatDataset, DataLoader, Dataset,
                              DistributedSampler, RandomSampler, SequentialSampler,
                              SubsetRandomSampler, TensorDataset, WeightedRandomSampler,
                              default_collate, random_split)
from tests.helpers import requires_torch, torch


def range_dataset(n):
    return TensorDataset(tc.Tensor(np.arange(n, dtype=np.int64)))


def test_utils_data_is_the_data_module():
    import tinygrad_cv.utils.data as utils_data
    from tinygrad_cv.utils.data import DataLoader as FromUtils
    assert utils_data is tc.data and FromUtils is DataLoader and tc.utils.data is tc.data


def test_sequential_and_random_samplers():
    ds = range_dataset(10)
    assert list(SequentialSampler(ds)) == list(range(10))
    a = list(RandomSampler(ds, generator=3))
    assert sorted(a) == list(range(10)) and a == list(RandomSampler(ds, generator=3))
    assert a != list(range(10))
    # without replacement, more samples than the dataset: whole permutations, then a cut
    long = list(RandomSampler(ds, num_samples=25, generator=0))
    assert len(long) == 25 and sorted(long[:10]) == sorted(long[10:20]) == list(range(10))
    assert len(set(long[20:])) == 5
    drawn = list(RandomSampler(ds, replacement=True, num_samples=200, generator=1))
    assert len(drawn) == 200 and len(set(drawn)) == 10 and max(drawn) == 9
    assert len(RandomSampler(ds, replacement=True, num_samples=7)) == 7
    with pytest.raises(ValueError, match="num_samples"):
        RandomSampler(ds, num_samples=0)
    with pytest.raises(TypeError, match="replacement"):
        RandomSampler(ds, replacement=1)


def test_random_sampler_without_generator_follows_manual_seed():
    ds = range_dataset(20)
    tc.manual_seed(4)
    a = list(RandomSampler(ds))
    tc.manual_seed(4)
    assert list(RandomSampler(ds)) == a


def test_subset_random_and_weighted_samplers():
    sub = list(SubsetRandomSampler([5, 7, 9, 11], generator=0))
    assert sorted(sub) == [5, 7, 9, 11]
    weights = [0.0, 1.0, 3.0, 0.0]
    draws = list(WeightedRandomSampler(weights, 4000, generator=0))
    counts = collections.Counter(draws)
    assert set(counts) == {1, 2} and 0.2 < counts[1] / 4000 < 0.3
    once = list(WeightedRandomSampler([1, 1, 1, 5], 3, replacement=False, generator=0))
    assert len(set(once)) == 3
    with pytest.raises(ValueError, match="without replacement"):
        WeightedRandomSampler([1, 0, 0], 2, replacement=False)
    with pytest.raises(ValueError, match="non-negative"):
        WeightedRandomSampler([1, -1], 2)


def test_batch_sampler():
    assert list(BatchSampler(range(7), 3, False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(BatchSampler(range(7), 3, True)) == [[0, 1, 2], [3, 4, 5]]
    assert len(BatchSampler(range(7), 3, False)) == 3
    assert len(BatchSampler(range(7), 3, True)) == 2
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(range(3), 0, False)


@requires_torch
@pytest.mark.parametrize("n,replicas,drop_last", [(10, 3, False), (10, 3, True),
                                                  (2, 5, False), (12, 4, False),
                                                  (7, 2, True), (1, 4, False)])
def test_distributed_sampler_padding_matches_torch(n, replicas, drop_last):
    from torch.utils.data import DistributedSampler as TorchSampler
    data = list(range(n))
    for rank in range(replicas):
        ours = DistributedSampler(data, replicas, rank, shuffle=False, drop_last=drop_last)
        theirs = TorchSampler(data, replicas, rank, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


def test_distributed_sampler_shuffles_with_seed_plus_epoch():
    data = list(range(23))
    ranks = [DistributedSampler(data, 4, r, seed=1) for r in range(4)]
    first = [list(s) for s in ranks]
    assert set(sum(first, [])) == set(range(23)) and sum(len(f) for f in first) == 24
    for s in ranks:
        s.set_epoch(1)
    second = [list(s) for s in ranks]
    assert second != first and set(sum(second, [])) == set(range(23))
    assert [list(DistributedSampler(data, 4, r, seed=1)) for r in range(4)] == first
    with pytest.raises(ValueError, match="rank"):
        DistributedSampler(data, 2, 2)
    with pytest.raises(RuntimeError, match="process group"):
        DistributedSampler(data)


@requires_torch
@pytest.mark.parametrize("n,fractions", [(11, [0.3, 0.3, 0.4]), (10, [0.5, 0.5]),
                                         (7, [0.1, 0.2, 0.7]), (5, [1.0]), (3, [0.25] * 4)])
def test_random_split_fractions_round_as_torch(n, fractions):
    with warnings.catch_warnings(record=True) as ours_warned:
        warnings.simplefilter("always")
        ours = [len(p) for p in random_split(range_dataset(n), fractions, generator=0)]
    with warnings.catch_warnings(record=True) as theirs_warned:
        warnings.simplefilter("always")
        theirs = [len(p) for p in torch.utils.data.random_split(list(range(n)), fractions)]
    assert ours == theirs
    assert [str(w.message) for w in ours_warned] == [str(w.message) for w in theirs_warned]


def test_random_split_counts_and_errors():
    ds = range_dataset(10)
    parts = random_split(ds, [7, 3], generator=0)
    assert sorted(np.concatenate([p.indices for p in parts]).tolist()) == list(range(10))
    with pytest.raises(ValueError, match="sum to"):
        random_split(ds, [4, 4])


def test_concat_dataset_indexing_and_batches():
    a = TensorDataset(tc.Tensor(np.arange(3, dtype=np.int64)))
    b = TensorDataset(tc.Tensor(np.arange(10, 14, dtype=np.int64)))
    cat = ConcatDataset([a, b])
    assert len(cat) == 7 and cat.cumulative_sizes == [3, 7]
    assert [cat[i][0].item() for i in range(7)] == [0, 1, 2, 10, 11, 12, 13]
    assert cat[-1][0].item() == 13
    assert hasattr(cat, "get_batch")
    (batch,) = cat.get_batch([5, 0, 3, 2])
    assert batch.numpy().tolist() == [12, 0, 10, 2]
    assert [b[0].numpy().tolist() for b in DataLoader(cat, batch_size=4)] == [
        [0, 1, 2, 10], [11, 12, 13]]
    with pytest.raises(ValueError, match="empty"):
        ConcatDataset([])


Point = collections.namedtuple("Point", ["x", "y"])


@requires_torch
def test_default_collate_matches_torch_structure():
    from torch.utils.data import default_collate as torch_collate
    samples = [{"a": np.ones(2, np.float32) * i, "b": (i, float(i)), "p": Point(i, "s")}
               for i in range(3)]
    ours, theirs = default_collate(samples), torch_collate(samples)
    assert np.array_equal(ours["a"].numpy(), theirs["a"].numpy())
    assert isinstance(ours["b"], list) and isinstance(theirs["b"], list)
    assert ours["b"][0].dtype == np.int64 and theirs["b"][0].dtype == torch.int64
    assert ours["b"][1].dtype == np.float64 and theirs["b"][1].dtype == torch.float64
    assert isinstance(ours["p"], Point) and ours["p"].y == theirs["p"].y == ("s",) * 3
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([(1, 2), (1,)])


def test_dataloader_torch_keywords_positionally_and_samplers():
    ds = range_dataset(9)
    loader = DataLoader(ds, 4, False, None, None, 0)              # torch's positional order
    assert isinstance(loader.sampler, SequentialSampler) and len(loader) == 3
    assert isinstance(DataLoader(ds, shuffle=True).sampler, RandomSampler)
    weighted = DataLoader(ds, batch_size=5, sampler=WeightedRandomSampler([1] * 9, 10,
                                                                          generator=0))
    assert [len(b[0]) for b in weighted] == [5, 5]
    batches = DataLoader(ds, batch_sampler=BatchSampler(SequentialSampler(ds), 4, True))
    assert [b[0].numpy().tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    a = [b[0].numpy().tolist() for b in DataLoader(ds, batch_size=3, shuffle=True,
                                                   generator=np.random.default_rng(2))]
    b = [b[0].numpy().tolist() for b in DataLoader(ds, batch_size=3, shuffle=True,
                                                   generator=np.random.default_rng(2))]
    assert a == b and sorted(sum(a, [])) == list(range(9))
    with pytest.raises(ValueError, match="prefetch_factor"):
        DataLoader(ds, prefetch_factor=2)
    with pytest.raises(ValueError, match="persistent_workers"):
        DataLoader(ds, persistent_workers=True)
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, batch_sampler=[[0]], batch_size=3)


class Squares(Dataset):
    def __len__(self):
        return 5

    def __getitem__(self, i):
        return i * i


def test_dataloader_custom_collate_and_unbatched():
    assert list(DataLoader(Squares(), batch_size=2, collate_fn=sum)) == [1, 13, 16]
    assert list(DataLoader(Squares(), batch_size=None)) == [0, 1, 4, 9, 16]
