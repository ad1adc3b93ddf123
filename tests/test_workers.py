"""DataLoader worker processes: order, seeding, errors, dead workers, no leaks.

Few and small: each test starts real processes (forkserver), about a second each.
"""
from __future__ import annotations

import os
import random
import signal
import sys
import time

import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv.data import DataLoader, Dataset, TensorDataset, get_worker_info


class Images(Dataset):
    """Sample i: a 64x64x3 uint8 image filled with i (big enough for shared memory)."""

    def __init__(self, n=30, fail_at=None, die_at=None, sleep_s=0.0):
        self.n, self.fail_at, self.die_at, self.sleep_s = n, fail_at, die_at, sleep_s

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise KeyError(f"no sample {i}")
        if i == self.die_at:
            os._exit(3)
        if self.sleep_s:
            time.sleep(self.sleep_s)
        return np.full((64, 64, 3), i, np.uint8), i


class Draws(Dataset):
    """What a worker knows: its id and seed, and one draw of each generator."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        info = get_worker_info()
        return (info.id, info.seed, float(np.random.rand()), random.random(),
                float(tc.rand(1).item()), INIT_MARK.get("worker"))


INIT_MARK = {}


def mark_worker(worker_id):
    INIT_MARK["worker"] = worker_id + 100


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pids, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return not any(alive(p) for p in pids)


def shm_blocks():
    """Python's shared memory blocks (named psm_*; other programs have their own)."""
    if not os.path.isdir("/dev/shm"):
        return set()
    return {name for name in os.listdir("/dev/shm") if name.startswith("psm_")}


def test_batches_in_order_through_shared_memory_and_no_leak_after_early_break():
    before = shm_blocks()
    loader = DataLoader(Images(30), batch_size=4, num_workers=2)
    expected = [b[1].numpy().tolist() for b in DataLoader(Images(30), batch_size=4)]
    batches = list(loader)
    assert [b[1].numpy().tolist() for b in batches] == expected
    for images, labels in batches:
        assert images.shape[1:] == (64, 64, 3) and images.dtype == np.uint8
        assert np.array_equal(images.numpy()[:, 0, 0, 0], labels.numpy())
    it = iter(loader)
    first = next(it)
    pids = it.pool.pids
    assert first[1].numpy().tolist() == [0, 1, 2, 3] and all(alive(p) for p in pids)
    del it                                                    # breaking out of the loop
    assert wait_gone(pids), "worker processes outlived the loop"
    assert shm_blocks() - before == set(), "shared memory blocks were left behind"


def test_worker_seeding_as_torch_and_reproducible_with_a_generator():
    def run():
        loader = DataLoader(Draws(), batch_size=2, num_workers=2, worker_init_fn=mark_worker,
                            generator=np.random.default_rng(7))
        return [tuple(zip(*(f.numpy().tolist() if hasattr(f, "numpy") else f
                            for f in batch))) for batch in loader]
    first, second = run(), run()
    assert first == second
    rows = [row for batch in first for row in batch]
    ids = [r[0] for r in rows]
    assert ids == [0, 0, 1, 1, 0, 0, 1, 1]                     # batches round-robin
    seeds = {r[0]: r[1] for r in rows}
    assert seeds[1] == seeds[0] + 1                            # base_seed + worker_id
    assert {r[5] for r in rows if r[0] == 0} == {100} and {r[5] for r in rows if r[0] == 1} \
        == {101}
    for k in (2, 3, 4):                                        # numpy, random, tc: per worker
        assert rows[0][k] != rows[2][k]


def test_worker_exception_is_reraised_naming_the_sample_index():
    loader = DataLoader(Images(12, fail_at=7), batch_size=3, num_workers=2)
    got = []
    with pytest.raises(KeyError, match="worker process 0 while loading sample index 7"):
        for _, labels in loader:
            got.append(labels.numpy().tolist())
    assert got == [[0, 1, 2], [3, 4, 5]]                     # the batches before its batch


def test_a_dead_worker_is_an_error_not_a_hang():
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="exited unexpectedly with exit code 3"):
        list(DataLoader(Images(12, die_at=5), batch_size=2, num_workers=2))
    assert time.monotonic() - start < 20


def test_timeout_and_killed_worker():
    loader = DataLoader(Images(4, sleep_s=1.5), batch_size=1, num_workers=1, timeout=0.3)
    with pytest.raises(RuntimeError, match="timed out after 0.3 seconds"):
        next(iter(loader))
    it = iter(DataLoader(Images(40, sleep_s=0.05), batch_size=1, num_workers=2))
    next(it)
    os.kill(it.pool.pids[1], signal.SIGKILL)
    with pytest.raises(RuntimeError, match="SIGKILL"):
        for _ in it:
            pass


def test_persistent_workers_live_across_epochs_and_stop_with_the_loader():
    loader = DataLoader(Images(8), batch_size=4, num_workers=2, persistent_workers=True)
    assert len(list(loader)) == 2
    pids = loader._pool.pids
    assert len(list(loader)) == 2 and loader._pool.pids == pids and all(map(alive, pids))
    del loader
    assert wait_gone(pids)


def test_in_memory_datasets_never_start_workers(monkeypatch):
    import tinygrad_cv.data.dataloader as dataloader_module

    def no_pool(*args, **kwargs):
        raise AssertionError("a worker pool was started for an in-memory dataset")
    monkeypatch.setattr(dataloader_module, "WorkerPool", no_pool)
    ds = TensorDataset(tc.Tensor(np.arange(10, dtype=np.int64)))
    for batch_size in (4, None):
        loader = DataLoader(ds, batch_size=batch_size, num_workers=2, shuffle=True, seed=0)
        got = [b[0].numpy().tolist() for b in loader]
        assert sorted(np.concatenate(got).tolist() if batch_size else got) == list(range(10))


def test_unpicklable_collate_fn_is_a_clear_error():
    loader = DataLoader(Images(4), batch_size=2, num_workers=1, collate_fn=lambda b: b)
    with pytest.raises(TypeError, match="picklable"):
        next(iter(loader))


_ORPHAN_SCRIPT = '''
import os, sys
sys.path.insert(0, {root!r})
import numpy as np
from tinygrad_cv.data import DataLoader, Dataset

class Numbers(Dataset):
    def __len__(self):
        return 1000

    def __getitem__(self, i):
        return np.float32(i)

if __name__ == "__main__":
    loader = DataLoader(Numbers(), batch_size=4, num_workers=2, persistent_workers=True)
    batches = iter(loader)
    next(batches)
    print(" ".join(str(pid) for pid in loader._pool.pids), flush=True)
    os._exit(9)
'''


def test_workers_exit_when_the_main_process_is_killed(tmp_path):
    """A main process that dies abruptly (os._exit, SIGKILL) must not leave its workers
    behind: with forkserver their parent is the forkserver, which may outlive it, so they
    watch a pipe only the main process holds. Here the workers also hold the main
    process's stdout: a leak would make `subprocess.run` wait for them."""
    import subprocess
    import time
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = tmp_path / "orphan.py"
    script.write_text(_ORPHAN_SCRIPT.format(root=root))
    start = time.monotonic()
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 9, result.stderr
    assert time.monotonic() - start < 30
    pids = [int(p) for p in result.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:      # a zombie has exited
        return f.read().split(")")[-1].split()[0] != "Z"


_GC_SCRIPT = '''
import gc, os, sys, time
sys.path.insert(0, {root!r})
import numpy as np
from tinygrad_cv.data import DataLoader, Dataset

class Images(Dataset):
    def __len__(self):
        return 40

    def __getitem__(self, i):
        return np.full((64, 64, 3), i, np.uint8), i        # 12 KiB: batches use shared memory

def descendants():
    children = {{}}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{{entry}}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [os.getpid()]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found

def workers_left():
    """Descendants other than multiprocessing's forkserver and resource tracker (the
    main process's children; workers are the forkserver's children and share its
    command line, as forked processes)."""
    helpers = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{{pid}}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{{pid}}/cmdline", "rb") as f:
                cmd = f.read()
        except (OSError, ValueError):
            continue
        if parent == os.getpid() and (b"forkserver import main" in cmd
                                      or b"resource_tracker import main" in cmd):
            helpers.append(int(pid))
    return [pid for pid in descendants() if pid not in helpers]

def blocks_left(names):
    return sorted(n for n in names if os.path.exists("/dev/shm/" + n.lstrip("/")))

def settle(check):
    deadline = time.monotonic() + 10
    while check() and time.monotonic() < deadline:
        time.sleep(0.05)
    return check()

def loader():
    return DataLoader(Images(), batch_size=4, num_workers=2, persistent_workers=True)

def report(name, names):
    print(name, len(workers_left()), len(blocks_left(names)), flush=True)

if __name__ == "__main__":
    # 1. an iterator still live and referenced when the loader goes: its workers serve
    # it to the end of the epoch (as torch's), then stop
    lo = loader()
    it = iter(lo)
    first = next(it)
    names = set(lo._pool.blocks.mapped)
    del lo
    gc.collect()
    assert len(workers_left()) == 2 and int(next(it)[1].numpy()[0]) == 4
    names |= set(it.pool.blocks.mapped)
    rest = list(it)
    assert len(rest) == 8, len(rest)
    gc.collect()
    settle(workers_left)
    report("exhausted-iterator-outlives-loader", names)
    del it, rest, first
    # 2. a loop broken early, then the loader and its live iterator collected together
    lo = loader()
    it = iter(lo)
    next(it)
    names = set(lo._pool.blocks.mapped)
    del lo, it
    gc.collect()
    settle(workers_left)
    report("loader-and-live-iterator", names)
    # 3. in a reference cycle with its live iterator (only the cycle collector frees it)
    lo = loader()
    lo.cycle = iter(lo)
    lo.cycle.loader = lo
    next(lo.cycle)
    names = set(lo._pool.blocks.mapped)
    del lo
    gc.collect()
    settle(workers_left)
    report("cycle", names)
    # 4. no iterator left: after whole epochs
    lo = loader()
    assert len(list(lo)) == 10 and len(list(lo)) == 10
    names = set(lo._pool.blocks.mapped)
    del lo
    gc.collect()
    settle(workers_left)
    report("no-iterator", names)
    # 5. interpreter exit with a persistent loader, a live iterator of it and a live
    # iterator of a non-persistent loader
    keep = loader()
    keep_it = iter(keep)
    next(keep_it)
    plain_it = iter(DataLoader(Images(), batch_size=4, num_workers=2))
    next(plain_it)
    print("exit", " ".join(str(p) for p in workers_left()), "|",
          " ".join(set(keep._pool.blocks.mapped) | set(plain_it.pool.blocks.mapped)),
          flush=True)
'''


def test_persistent_pool_shuts_down_when_its_loader_is_collected_and_at_exit(tmp_path):
    """No worker process and no shared-memory block outlives a persistent pool's loader
    (and its iterators), whether collected by reference counting or by the cycle
    collector, or when the interpreter exits with both alive."""
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = tmp_path / "gc_pool.py"
    script.write_text(_GC_SCRIPT.format(root=root))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for name in ("exhausted-iterator-outlives-loader", "loader-and-live-iterator", "cycle",
                 "no-iterator"):
        assert f"{name} 0 0" in lines, (name, result.stdout)
    exit_line = next(line for line in lines if line.startswith("exit "))
    pids_text, names_text = exit_line[len("exit "):].split("|")
    pids, names = [int(p) for p in pids_text.split()], names_text.split()
    assert len(pids) == 4 and names                             # 2 pools of 2 workers
    assert wait_gone(pids), "workers outlived the interpreter"
    assert not [n for n in names if os.path.exists("/dev/shm/" + n.lstrip("/"))]
    assert "leaked" not in result.stderr and "Traceback" not in result.stderr, result.stderr


class Sized(Dataset):
    """Sample i: an int32 image whose size depends on the batch it falls in."""

    def __len__(self):
        return 40

    def __getitem__(self, i):
        side = 48 if i < 20 else 96                      # the shapes change mid-epoch
        return np.full((side, side), i, np.int32), i


def test_reused_blocks_keep_batches_identical_when_shapes_change():
    sampler = [list(range(k, min(k + size, 40))) for k, size in
               zip(range(0, 40, 5), [5, 5, 5, 5, 5, 5, 5, 5])]
    serial = [(x.numpy().copy(), y.numpy().copy())
              for x, y in DataLoader(Sized(), batch_sampler=sampler)]
    loader = DataLoader(Sized(), batch_sampler=sampler, num_workers=2,
                        persistent_workers=True)
    for _ in range(3):                                  # blocks reused across epochs
        got = [(x.numpy(), y.numpy()) for x, y in loader]
        assert len(got) == len(serial)
        for (gx, gy), (sx, sy) in zip(got, serial):
            assert gx.shape == sx.shape and np.array_equal(gx, sx) and np.array_equal(gy, sy)
    pool = loader._pool
    assert 0 < len(pool.blocks.mapped) <= 8             # reused, not one per batch (24)
    names = list(pool.blocks.mapped)
    pids = pool.pids
    del loader, pool
    assert wait_gone(pids)
    assert not [n for n in names if os.path.exists("/dev/shm/" + n)]
