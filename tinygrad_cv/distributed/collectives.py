"""Collectives on tensors, as torch.distributed's: in place, every rank calls them in the
same order.

They work on host memory: a CPU tensor's NumPy array is handed to MPI as it is (no copy
when it is C-contiguous); a CUDA tensor's CuPy array is copied to a host buffer, reduced,
and copied back (no CUDA-aware MPI is assumed). float16 is reduced in float32 (MPI has
no portable half type) and cast back. Every wait is bounded by the group's timeout
(faults.py). `async_op=True` returns a `Work` whose `wait()` finishes the operation.
"""
from __future__ import annotations

import enum
import numbers

import numpy as np

from ..backend import to_numpy, transfer
from ..tensor import Tensor
from .faults import wait_all
from .group import _timeout_seconds, current_group


class ReduceOp(enum.Enum):
    """How `all_reduce` combines the ranks' tensors (torch's names)."""

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"


class Work:
    """An operation in flight (torch's `Work`): `wait()` blocks until it completes (or the
    timeout passes), then writes the result into the tensors; `is_completed()` polls."""

    def __init__(self, group, requests, finish, what):
        self._group = group
        self._requests = requests
        self._finish = finish
        self._what = what
        self._done = False

    def is_completed(self) -> bool:
        if not self._done and self._group.MPI.Request.Testall(self._requests):
            self._complete()
        return self._done

    def wait(self, timeout=None) -> bool:
        if not self._done:
            seconds = None if timeout is None else _timeout_seconds(timeout)
            wait_all(self._group, self._requests, self._what, seconds)
            self._complete()
        return True

    def _complete(self):
        self._done = True
        if self._finish is not None:
            self._finish()
        self._requests = self._finish = None


def _check_tensor(op, tensor, name="tensor"):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{op}: {name} must be a tinygrad_cv Tensor, got "
                        f"{type(tensor).__name__}")


def _host_buffer(tensor):
    """(buffer MPI can read and write, write-back callable or None) for `tensor`."""
    arr = tensor.data
    if (isinstance(arr, np.ndarray) and arr.flags.c_contiguous and arr.flags.writeable
            and arr.dtype != np.float16):
        return arr, None
    host = to_numpy(arr)
    work_dtype = np.float32 if host.dtype == np.float16 else host.dtype
    buf = np.array(host, dtype=work_dtype, order="C", copy=True)

    def write_back():
        tensor.data[...] = transfer(buf.astype(arr.dtype, copy=False), tensor.device_str)

    return buf, write_back


def _run(group, requests, finish, what, async_op):
    work = Work(group, requests, finish, what)
    if async_op:
        return work
    work.wait()
    return None


def _mpi_op(MPI, op, dtype, what):
    if not isinstance(op, ReduceOp):
        raise TypeError(f"{what}: op must be a ReduceOp (SUM, AVG, PRODUCT, MIN, MAX), got "
                        f"{op!r}")
    if dtype.kind == "b":
        raise TypeError(f"{what}: bool tensors cannot be reduced over MPI; convert to an "
                        f"integer dtype first (t.int())")
    if op is ReduceOp.AVG and dtype.kind not in "fc":
        raise TypeError(f"{what}: ReduceOp.AVG needs a floating tensor, got {dtype}")
    return {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD,
            ReduceOp.MIN: MPI.MIN, ReduceOp.MAX: MPI.MAX}[op]


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Combine `tensor` over all ranks with `op`, in place on every rank."""
    g = current_group()
    _check_tensor("all_reduce", tensor)
    mpi_op = _mpi_op(g.MPI, op, tensor.dtype, "all_reduce")
    buf, write_back = _host_buffer(tensor)
    request = g.comm.Iallreduce(g.MPI.IN_PLACE, buf, op=mpi_op)

    def finish():
        if op is ReduceOp.AVG:
            np.divide(buf, g.size, out=buf)
        if write_back is not None:
            write_back()

    return _run(g, [request], finish, f"all_reduce of a {tensor.dtype} tensor of shape "
                f"{tensor.shape}", async_op)


def _check_src(op, src, size):
    if not isinstance(src, numbers.Integral) or isinstance(src, bool) or not 0 <= src < size:
        raise ValueError(f"{op}: src must be a rank in 0..{size - 1}, got {src!r}")


def broadcast(tensor, src=0, group=None, async_op=False):
    """Copy rank `src`'s `tensor` into the same-shaped `tensor` of every other rank."""
    g = current_group()
    _check_tensor("broadcast", tensor)
    _check_src("broadcast", src, g.size)
    buf, write_back = _host_buffer(tensor)
    request = g.comm.Ibcast(buf, root=int(src))
    return _run(g, [request], write_back, f"broadcast from rank {src} of a {tensor.dtype} "
                f"tensor of shape {tensor.shape}", async_op)


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """Fill `tensor_list[r]` with rank r's `tensor`, on every rank (torch's order of
    arguments; every tensor has `tensor`'s shape and dtype)."""
    g = current_group()
    _check_tensor("all_gather", tensor)
    if not isinstance(tensor_list, (list, tuple)) or len(tensor_list) != g.size:
        got = len(tensor_list) if isinstance(tensor_list, (list, tuple)) else \
            type(tensor_list).__name__
        raise ValueError(f"all_gather: tensor_list must be a list of world_size={g.size} "
                         f"tensors, got {got}")
    for i, out in enumerate(tensor_list):
        _check_tensor("all_gather", out, f"tensor_list[{i}]")
        if out.shape != tensor.shape or out.dtype != tensor.dtype:
            raise ValueError(f"all_gather: tensor_list[{i}] has shape {out.shape} and dtype "
                             f"{out.dtype}, but the input tensor has shape {tensor.shape} "
                             f"and dtype {tensor.dtype}; they must match")
    send = np.ascontiguousarray(to_numpy(tensor.data))
    received = np.empty((g.size,) + send.shape, dtype=send.dtype)
    request = g.comm.Iallgather(send, received)

    def finish():
        for out, part in zip(tensor_list, received):
            out.data[...] = transfer(part, out.device_str)

    return _run(g, [request], finish, f"all_gather of a {tensor.dtype} tensor of shape "
                f"{tensor.shape}", async_op)


def barrier(group=None, async_op=False, device_ids=None, timeout=None):
    """Wait until every rank has reached this call (bounded by `timeout`, default the
    group's)."""
    g = current_group()
    work = Work(g, [g.comm.Ibarrier()], None, "barrier")
    if async_op:
        return work
    work.wait(timeout)
    return None


# ------------------------------------------------------------------------ for DDP / launchers

def all_gather_bytes(payload: bytes, what: str):
    """Every rank's `payload` (bytes of any length), in rank order: how DDP compares model
    signatures across ranks without pickling anything."""
    g = current_group()
    length = np.array([len(payload)], dtype=np.int64)
    lengths = np.empty(g.size, dtype=np.int64)
    wait_all(g, [g.comm.Iallgather(length, lengths)], what)
    send = np.frombuffer(payload, dtype=np.uint8) if payload else np.empty(0, np.uint8)
    received = np.empty(int(lengths.sum()), dtype=np.uint8)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    request = g.comm.Iallgatherv(send, [received, (lengths, offsets), g.MPI.BYTE])
    wait_all(g, [request], what)
    return [received[o:o + n].tobytes() for o, n in zip(offsets, lengths)]


def broadcast_tensors(tensors, src, what):
    """Broadcast several tensors from rank `src` in one transfer per dtype (coalesced, as
    torch's `_broadcast_coalesced`); each tensor keeps its identity and is written in place."""
    g = current_group()
    by_dtype = {}
    for t in tensors:
        by_dtype.setdefault(np.dtype(t.dtype), []).append(t)
    requests, flats = [], []
    for dtype, group_tensors in by_dtype.items():
        work_dtype = np.float32 if dtype == np.float16 else dtype
        flat = np.concatenate([to_numpy(t.data).reshape(-1) for t in group_tensors]) \
            .astype(work_dtype, copy=False) if g.rank == src else \
            np.empty(sum(t.numel() for t in group_tensors), dtype=work_dtype)
        requests.append(g.comm.Ibcast(flat, root=src))
        flats.append((flat, group_tensors))
    wait_all(g, requests, what)
    if g.rank == src:
        return
    for flat, group_tensors in flats:
        offset = 0
        for t in group_tensors:
            n = t.numel()
            part = flat[offset:offset + n].reshape(t.shape).astype(t.dtype, copy=False)
            t.data[...] = transfer(part, t.device_str)
            offset += n


__all__ = ["ReduceOp", "Work", "all_reduce", "broadcast", "all_gather", "barrier"]
