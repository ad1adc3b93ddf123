"""Batch-parallel CPU work: the samples of a batch split across threads, each thread
running serial Numba kernels and single-threaded BLAS on its own samples.

Why. conv2d on the CPU is a loop of im2col, a GEMM per sample and col2im over batch
chunks. Run on one thread, the GEMMs use BLAS's threads (each small GEMM split across
the cores, with a sync per call) and the kernels use one core. Split by samples
instead, every thread does whole GEMMs with no sync and its own kernels, on data in its
own cache (benchmarks/README.md, "Decisions").

How. The calling thread takes the first part, persistent daemon worker threads the
others. While they run, BLAS is limited to one thread (restored afterwards), so the
parts never oversubscribe the cores; the number of parts is BLAS's thread count, which
`tinygrad_cv.set_num_threads` sets. The bodies must only touch NumPy arrays, GEMMs and
serial `nogil` kernels (the `.serial` versions, kernels/cpu/dispatch.py): those release the GIL,
so the parts truly run at once. A call made while another split is running (another
Python thread, or a nested call) runs its body on its own thread in one piece.
"""
from __future__ import annotations

import queue
import threading

_blas = None                 # threadpoolctl's BLAS library controllers, found once
_workers = []                # persistent worker threads, started on demand
_region = threading.Lock()   # one split at a time (the workers are shared)


def _blas_controllers():
    """The loaded BLAS libraries' thread controls (empty if threadpoolctl finds none)."""
    global _blas
    if _blas is None:
        import numpy  # noqa: F401  (loads the BLAS library the controller must find)
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController().select(user_api="blas").lib_controllers
    return _blas


def part_count(n):
    """Into how many parts `for_each_part(n, ...)` splits: BLAS's thread count, at most n."""
    controllers = _blas_controllers()
    if not controllers:
        return 1
    return max(1, min(n, controllers[0].get_num_threads()))


class _Worker:
    """A daemon thread running `body(start, stop)` tasks, reporting each one's error."""

    def __init__(self, index):
        self.tasks = queue.SimpleQueue()
        self.results = queue.SimpleQueue()
        threading.Thread(target=self._loop, name=f"tinygrad_cv-worker-{index}",
                         daemon=True).start()

    def _loop(self):
        while True:
            body, start, stop = self.tasks.get()
            try:
                body(start, stop)
                outcome = None
            except BaseException as exc:     # handed to the caller, which re-raises it
                outcome = exc
            # Drop the task before reporting: a body's closure references the op's
            # arrays, and a buffer that some frame still references is never recycled
            # (memory.py); kept until the next task, it cost 21 MiB of peak RSS at
            # the MNIST CNN's batch 256.
            del body
            self.results.put(outcome)


def for_each_part(n, body):
    """Call `body(start, stop)` for contiguous parts covering range(n), concurrently
    (see the module docstring); returns when every part is done, re-raising the first
    error. With one part (one thread, n == 1, or a split already running) it is just
    `body(0, n)` on the calling thread."""
    count = part_count(n)
    if count < 2 or not _region.acquire(blocking=False):
        body(0, n)
        return
    try:
        while len(_workers) < count - 1:
            _workers.append(_Worker(len(_workers)))
        bounds = [n * i // count for i in range(count + 1)]
        controllers = _blas_controllers()
        previous = [c.get_num_threads() for c in controllers]
        for c in controllers:
            c.set_num_threads(1)
        try:
            for i, worker in enumerate(_workers[:count - 1], start=1):
                worker.tasks.put((body, bounds[i], bounds[i + 1]))
            error = None
            try:
                body(bounds[0], bounds[1])
            except BaseException as exc:
                error = exc
            for worker in _workers[:count - 1]:     # wait for all, even after an error
                result = worker.results.get()
                error = error or result
        finally:
            for c, threads in zip(controllers, previous):
                c.set_num_threads(threads)
        if error is not None:
            raise error
    finally:
        _region.release()
