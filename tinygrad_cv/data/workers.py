"""Worker processes for `DataLoader(num_workers > 0)`: the pool and each worker's loop.

Each worker gets `(epoch, batch number, indices, blocks it may reuse)` tasks on its own
queue (indices as a list of ints), loads the samples with `dataset[i]`, collates them,
and sends the batch back. Arrays bigger than `INLINE_BYTES` travel through POSIX shared
memory (batch_transport.py, `multiprocessing.shared_memory`): the worker copies the array into one of its
blocks and sends only its name, shape and dtype; the main process copies it out (the
user owns the copy) and gives the block back with that worker's next task, so a worker
keeps writing into the same few blocks, whose pages are already mapped (`WorkerBlocks`,
in batch_transport.py).
The main process unlinks every block when the pool shuts down. Small Python objects
(labels, the names of blocks) go through multiprocessing queues; the main process waits
in a blocking read of the result queue (it wakes every `POLL_S` only to check that its
workers are alive). Each worker runs one BLAS/OpenMP/Numba thread and keeps its freed
memory (`keep_freed_memory`): without both, two workers used 1.55x the CPU time of one
process on the same images; with them, about the same (benchmarks/README.md, data).

Start method: "forkserver" where the platform has it (Linux, macOS), else "spawn".
Not "fork": forking a process that runs threads (BLAS and Numba pools, tqdm's monitor,
a user's threads) copies locks held by threads that do not exist in the child, which can
deadlock it; forkserver forks workers from a clean single-threaded server process that
has imported NumPy, Numba, Pillow and tinygrad_cv once, so starting a worker is cheap
(the server ignores the caller's sys.path when it preloads, a CPython quirk, so it is
started with this copy's folder first on PYTHONPATH, and each worker checks that it
runs the caller's copy of tinygrad_cv). The cost, as with
spawn: the dataset, `collate_fn` and `worker_init_fn` are pickled into the workers
(they must be defined at module level, not lambdas; each new pool pickles the dataset
again, so `persistent_workers=True` pays that once for a large one) and the main
script needs an `if __name__ == "__main__":` guard. `multiprocessing_context="fork"`
opts back in.

Seeding, as torch: each iterator draws `base_seed` from the loader's generator; worker k
seeds Python's `random` and `tc.manual_seed` with `base_seed + k`, and NumPy's legacy
global generator with a state derived from (k, base_seed) (torch derives it with its
own hash; the values differ). `get_worker_info()` tells a worker its id and seed.
"""
from __future__ import annotations

import contextlib
import importlib
import multiprocessing as mp
import multiprocessing.util
import os
import queue
import random
import signal
import time
import traceback
from typing import NamedTuple

import numpy as np

from .batch_transport import MainBlocks, WorkerBlocks, pack, shared_names, unpack

PRELOAD = ["numpy", "numba", "PIL.Image", "tinygrad_cv"]   # imported once by the forkserver
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POLL_S = 0.5                  # how often a waiting main process checks its workers


class WorkerInfo(NamedTuple):
    """What `get_worker_info()` returns inside a worker (None in the main process)."""
    id: int
    num_workers: int
    seed: int
    dataset: object


_worker_info = None


def get_worker_info():
    """This worker's `WorkerInfo`, or None when called in the main process."""
    return _worker_info


def default_start_method():
    return "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"


def resolve_context(context):
    """A multiprocessing context from None (the default), a start method name or a context."""
    if context is None:
        context = default_start_method()
    if isinstance(context, str):
        if context not in mp.get_all_start_methods():
            raise ValueError(f"DataLoader: multiprocessing_context {context!r} is not one of "
                             f"this platform's start methods {mp.get_all_start_methods()}")
        context = mp.get_context(context)
        if context.get_start_method() == "forkserver":
            context.set_forkserver_preload(PRELOAD)
    if not hasattr(context, "Process"):
        raise TypeError(f"DataLoader: multiprocessing_context must be a start method name or "
                        f"a multiprocessing context, got {type(context).__name__}")
    return context


# ---------------------------------------------------------------------- errors
class WorkerError(NamedTuple):
    """An exception raised in a worker, sent as text (exceptions may not unpickle)."""
    type_module: str
    type_name: str
    message: str
    traceback: str
    worker_id: int
    where: str

    def reraise(self):
        text = (f"Caught {self.type_name} in DataLoader worker process {self.worker_id} "
                f"{self.where}: {self.message}\nOriginal traceback:\n{self.traceback}")
        try:
            cls = getattr(importlib.import_module(self.type_module), self.type_name)
            exc = cls(text)
        except Exception:   # noqa: BLE001  (not constructible from one message)
            exc = RuntimeError(text)
        raise exc


def _error(exc, worker_id, where):
    return WorkerError(type(exc).__module__, type(exc).__qualname__, str(exc),
                       traceback.format_exc(), worker_id, where)


# ---------------------------------------------------------------------- the worker
MMAP_THRESHOLD = 32 << 20     # glibc malloc: allocations up to this size come from the heap
TRIM_THRESHOLD = 256 << 20    # ... which keeps up to this much freed memory at its top


def keep_freed_memory():
    """Stop glibc's malloc from handing each batch's memory back to the system.

    A worker frees everything it allocated for a batch (the decoded images, the
    samples, the collated batch) before it starts the next one, so the top of its heap
    is free again after every batch; with glibc's adaptive thresholds that free space
    exceeded the trim threshold and went back to the system, and every batch paid page
    faults for it anew: 67,000 faults and ~30% more CPU time per epoch than the same
    work in one process (benchmarks/README.md, data section). Fixed thresholds keep it.
    Does nothing on other C libraries."""
    import ctypes
    import platform
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-1, TRIM_THRESHOLD)               # M_TRIM_THRESHOLD
        libc.mallopt(-3, MMAP_THRESHOLD)               # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def _seed_worker(base_seed, worker_id):
    from ..random import manual_seed
    seed = base_seed + worker_id
    random.seed(seed)
    manual_seed(seed)
    state = np.random.SeedSequence([worker_id, base_seed]).generate_state(4)
    np.random.seed(state)
    return seed


def worker_loop(dataset, index_queue, result_queue, done_event, worker_id, num_workers,
                base_seed, worker_init_fn, collate_fn, auto_collation, package_root,
                main_alive):
    """A worker's life: seed, run `worker_init_fn`, then load batches until told to stop
    (a None task or `done_event`) or until the main process is gone: `main_alive` is the
    read end of a pipe whose only write end the main process holds, so it turns readable
    (EOF) when that process dies, however it died. (The worker's own parent is the
    forkserver, which may outlive the main process.)"""
    global _worker_info
    signal.signal(signal.SIGINT, signal.SIG_IGN)       # Ctrl-C is the main process's
    if PACKAGE_ROOT != package_root:
        result_queue.put((None, None, worker_id, _error(RuntimeError(
            f"the worker runs tinygrad_cv from {PACKAGE_ROOT}, the main process from "
            f"{package_root}; start the program so that both import the same copy"),
            worker_id, "at start"), []))
        return
    try:
        from ..threads import set_num_threads
        set_num_threads(1)                             # workers share the cores
    except Exception:   # noqa: BLE001  (threading is an optimisation only)
        pass
    keep_freed_memory()
    seed = _seed_worker(base_seed, worker_id)
    _worker_info = WorkerInfo(worker_id, num_workers, seed, dataset)
    if worker_init_fn is not None:
        try:
            worker_init_fn(worker_id)
        except Exception as exc:   # noqa: BLE001  (reported to the main process)
            result_queue.put((None, None, worker_id,
                              _error(exc, worker_id, "in worker_init_fn"), []))
            return
    blocks = WorkerBlocks()
    try:
        while not done_event.is_set():
            try:
                task = index_queue.get(timeout=POLL_S)
            except queue.Empty:
                if main_alive.poll():                  # EOF: the main process died
                    return
                continue
            if task is None or done_event.is_set():
                return
            epoch, number, indices, freed = task
            blocks.release(freed)
            result = _load(dataset, indices, collate_fn, auto_collation, worker_id, blocks)
            result_queue.put((epoch, number, worker_id, result, blocks.take_retired()))
    finally:
        blocks.close()


def _load(dataset, indices, collate_fn, auto_collation, worker_id, blocks):
    samples = []
    for index in (indices if auto_collation else [indices]):
        try:
            samples.append(dataset[index])
        except Exception as exc:   # noqa: BLE001  (reported to the main process)
            return _error(exc, worker_id, f"while loading sample index {index}")
    try:
        batch = collate_fn(samples) if auto_collation else samples[0]
        return pack(batch, blocks)
    except Exception as exc:   # noqa: BLE001
        return _error(exc, worker_id, f"while collating the batch of sample indices "
                                      f"{list(indices)}")


# ---------------------------------------------------------------------- the pool
WORKER_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                     "NUMBA_NUM_THREADS")


@contextlib.contextmanager
def _worker_environment():
    """The environment a worker process starts in, set while it starts and restored
    afterwards: PYTHONPATH with this copy's folder first, so that the forkserver
    (started with the first worker) preloads the caller's tinygrad_cv (see the module
    docstring); and one BLAS/OpenMP/Numba thread, read when the forkserver (or a spawned
    worker) imports NumPy and Numba, so that two workers on two cores never run four
    compute threads. (Each worker also calls `set_num_threads(1)`, as torch sets one
    intra-op thread in its workers.)"""
    saved = {name: os.environ.get(name) for name in ("PYTHONPATH",) + WORKER_THREAD_ENV}
    before = saved["PYTHONPATH"]
    os.environ["PYTHONPATH"] = PACKAGE_ROOT + ("" if not before else os.pathsep + before)
    for name in WORKER_THREAD_ENV:
        os.environ[name] = "1"
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class WorkerPool:
    """`num_workers` processes with one task queue each and one shared result queue."""

    def __init__(self, dataset, num_workers, context, base_seed, worker_init_fn,
                 collate_fn, auto_collation):
        self.context = resolve_context(context)
        self.num_workers = num_workers
        self.result_queue = self.context.Queue()
        self.done_event = self.context.Event()
        # the workers get the read end only; EOF on it tells them the main process died
        self._alive_r, self._alive_w = self.context.Pipe(duplex=False)
        self.index_queues, self.workers = [], []
        self.blocks = MainBlocks()
        self.freed = [[] for _ in range(num_workers)]   # blocks to give back, per worker
        self.closed = False
        try:
            for worker_id in range(num_workers):
                index_queue = self.context.Queue()
                index_queue.cancel_join_thread()
                process = self.context.Process(
                    target=worker_loop, daemon=True,
                    args=(dataset, index_queue, self.result_queue, self.done_event,
                          worker_id, num_workers, base_seed, worker_init_fn, collate_fn,
                          auto_collation, PACKAGE_ROOT, self._alive_r))
                self.index_queues.append(index_queue)
                self.workers.append(process)
                with _worker_environment():
                    process.start()
        except Exception as exc:
            self.shutdown()
            method = self.context.get_start_method()
            if "pickle" in str(exc).lower() or "pickl" in type(exc).__name__.lower():
                raise TypeError(
                    f"DataLoader: with num_workers > 0, the dataset, collate_fn and "
                    f"worker_init_fn are sent to worker processes started with "
                    f"{method!r} and must be picklable (defined at module level, not "
                    f"lambdas or local functions): {exc}") from exc
            raise

    @property
    def pids(self):
        return [w.pid for w in self.workers]

    def send(self, worker_id, epoch, number, indices):
        """Give a worker a batch to load, with the blocks it may reuse."""
        freed, self.freed[worker_id] = self.freed[worker_id], []
        self.index_queues[worker_id].put((epoch, number, indices, freed))

    def receive(self, timeout):
        """The next `(epoch, number, worker_id, result)`; raises if a worker died or
        `timeout` passes. (It waits in the queue's blocking read, never polling faster
        than every `POLL_S`.)"""
        deadline = None if not timeout else time.monotonic() + timeout
        while True:
            wait = POLL_S if deadline is None else max(0.0, min(POLL_S,
                                                              deadline - time.monotonic()))
            try:
                epoch, number, worker_id, result, retired = self.result_queue.get(
                    timeout=wait)
            except queue.Empty:
                pass
            else:
                self._note_blocks(result, retired)
                return epoch, number, worker_id, result
            dead = [w for w in self.workers if not w.is_alive()]
            if dead:
                raise RuntimeError("DataLoader worker " + ", ".join(
                    f"(pid {w.pid}) exited unexpectedly {_describe_exit(w.exitcode)}"
                    for w in dead))
            if deadline is not None and time.monotonic() >= deadline:
                raise RuntimeError(f"DataLoader timed out after {timeout} seconds waiting "
                                   "for a batch from its workers")

    def shutdown(self):
        """Stop every worker (terminating any that does not stop within a few seconds) and
        free the shared blocks of results never read. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        self.done_event.set()
        for index_queue in self.index_queues:
            try:
                index_queue.put(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 5.0
        for worker in self.workers:
            while worker.is_alive() and time.monotonic() < deadline:
                self._drain()
                worker.join(timeout=0.05)
            if worker.is_alive():
                worker.terminate()
                worker.join(timeout=1.0)
        self._drain()
        for q in self.index_queues + [self.result_queue]:
            q.close()
        self.result_queue.join_thread()
        self._alive_r.close()
        self._alive_w.close()
        self.blocks.unlink_all()

    def unpack(self, result, worker_id):
        """A worker's packed batch as arrays/Tensors; its blocks go back to the worker."""
        used = []
        try:
            return unpack(result, self.blocks, used)
        finally:
            self.freed[worker_id].extend(used)

    def discard(self, result, worker_id):
        """Throw a packed result away (its blocks go back to the worker, or are unlinked
        at shutdown)."""
        if not self.closed:
            self.freed[worker_id].extend(shared_names(result))

    def _note_blocks(self, result, retired):
        """Map the blocks of a result as soon as it arrives, so that `shutdown` unlinks
        them even if whoever holds the result (an iterator collected after its pool,
        say) never reads it; drop the mappings of blocks the worker retired."""
        self.blocks.forget(retired)
        for name in shared_names(result):
            with contextlib.suppress(OSError):
                self.blocks.see(name)

    def _drain(self):
        while True:
            try:
                _, _, worker_id, result, retired = self.result_queue.get_nowait()
            except (queue.Empty, OSError, ValueError, EOFError):
                return
            self._note_blocks(result, retired)


def _describe_exit(code):
    if code is None:
        return "(still starting)"
    if code < 0:
        try:
            return f"(killed by signal {signal.Signals(-code).name})"
        except ValueError:
            return f"(killed by signal {-code})"
    return f"with exit code {code}"


class PoolHandle:
    """What keeps a pool running: the DataLoader holds one (persistent workers) and each
    unfinished iterator holds one. When the last reference goes (the loader and its
    iterators garbage-collected, in whatever order), or at interpreter exit, the pool
    shuts down: its workers stop and its shared memory is unlinked. (The finalizer holds
    the pool, never the handle, so the handle can die.)"""

    __slots__ = ("pool", "__weakref__")

    def __init__(self, pool):
        self.pool = pool
        # multiprocessing's finalizer, not weakref.finalize: at exit it runs before
        # multiprocessing terminates daemonic children and before the queues' semaphores
        # are released, so nothing is killed mid-batch or reported leaked
        multiprocessing.util.Finalize(self, pool.shutdown, exitpriority=10)


class MultiProcessIterator:
    """One epoch over a pool: tasks sent ahead (`prefetch_factor` per worker), batches
    returned in order. Shuts the pool down at the end or when dropped, unless the loader
    keeps its workers (`persistent_workers`); it never holds the loader itself."""

    def __init__(self, handle, tasks, epoch, prefetch_factor, timeout, keep_pool):
        self.handle = handle
        self.pool = pool = handle.pool
        self.tasks = iter(tasks)
        self.epoch = epoch
        self.timeout = timeout
        self.keep_pool = keep_pool
        self.sent = 0
        self.next_number = 0
        self.next_worker = 0
        self.ready = {}
        self.finished = False
        for _ in range(prefetch_factor * pool.num_workers):
            if not self._send_one():
                break

    def _send_one(self):
        task = next(self.tasks, None)
        if task is None:
            return False
        self.pool.send(self.next_worker, self.epoch, self.sent, task)
        self.next_worker = (self.next_worker + 1) % self.pool.num_workers
        self.sent += 1
        return True

    def __iter__(self):
        return self

    def __next__(self):
        if self.finished:
            raise StopIteration
        try:
            while self.next_number not in self.ready:
                if self.next_number >= self.sent:
                    self._finish()
                    raise StopIteration
                epoch, number, worker_id, result = self.pool.receive(self.timeout)
                if isinstance(result, WorkerError) and number is None:
                    result.reraise()                    # worker_init_fn failed
                if epoch != self.epoch:                 # left over from an earlier epoch
                    self.pool.discard(result, worker_id)
                    continue
                self.ready[number] = (worker_id, result)
            worker_id, result = self.ready.pop(self.next_number)
            self.next_number += 1
            if isinstance(result, WorkerError):
                result.reraise()
            batch = self.pool.unpack(result, worker_id)
            self._send_one()
            return batch
        except BaseException:
            self._finish(error=True)
            raise

    def _finish(self, error=False):
        if self.finished:
            return
        self.finished = True
        self.tasks = None
        for worker_id, result in self.ready.values():
            self.pool.discard(result, worker_id)
        self.ready.clear()
        if error or not self.keep_pool:
            self.pool.shutdown()
        self.handle = None          # a persistent pool now lives as long as its loader

    def close(self):
        self._finish()

    def __del__(self):
        try:
            self._finish()
        except Exception:   # noqa: BLE001  (interpreter shutting down)
            pass
