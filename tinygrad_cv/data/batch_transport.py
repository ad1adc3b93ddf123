"""How batches cross from a worker process to the main one (see workers.py).

Arrays up to `INLINE_BYTES` travel inline in the pickled result; bigger ones are copied
into a POSIX shared-memory block the worker keeps (`WorkerBlocks`) and sent as its name,
shape and dtype; the main process copies them out (`MainBlocks`, which maps each block
once and unlinks them all at shutdown) and hands the block back with the next task.
"""
from __future__ import annotations

import contextlib
from multiprocessing import shared_memory
from typing import NamedTuple

import numpy as np

INLINE_BYTES = 1 << 15        # arrays up to 32 KiB are sent inline, bigger ones shared


class SharedArray(NamedTuple):
    """An array left in a shared-memory block by a worker."""
    name: str
    shape: tuple
    dtype: str
    as_tensor: bool


class InlineArray(NamedTuple):
    """A small array sent through the queue."""
    array: np.ndarray
    as_tensor: bool


class WorkerBlocks:
    """A worker's shared-memory blocks, reused from batch to batch.

    A fresh block costs a page fault per 4 KiB page on first write (about a fifth of
    the CPU time of decoding small JPEGs, measured), so a block the main process has
    copied out of comes back to the worker (its name rides on the worker's next task)
    and holds a later batch. `take` picks the smallest free block that fits an array
    and is at most twice its size; when none does (the batch shapes changed) it retires
    every free block (unlinks it and tells the main process, which drops its mapping)
    and creates a new one. Blocks in use are the main process's to unlink at shutdown.
    """

    def __init__(self):
        self.blocks = {}          # name -> SharedMemory, every block this worker holds
        self.free = []            # names of blocks the main process gave back
        self.retired = []         # names unlinked since the last result was sent

    def release(self, names):
        self.free.extend(n for n in names if n in self.blocks)

    def take(self, nbytes):
        fits = [n for n in self.free if nbytes <= self.blocks[n].size <= 2 * nbytes]
        if fits:
            name = min(fits, key=lambda n: self.blocks[n].size)
            self.free.remove(name)
            return self.blocks[name]
        for name in self.free:
            block = self.blocks.pop(name)
            block.close()
            block.unlink()
            self.retired.append(name)
        self.free = []
        block = shared_memory.SharedMemory(create=True, size=max(nbytes, 1))
        self.blocks[block.name] = block
        return block

    def take_retired(self):
        retired, self.retired = self.retired, []
        return retired

    def close(self):
        for block in self.blocks.values():
            block.close()
        self.blocks.clear()


def _array_out(arr, as_tensor, blocks):
    arr = np.ascontiguousarray(arr)
    if arr.nbytes <= INLINE_BYTES or blocks is None:
        return InlineArray(arr, as_tensor)
    block = blocks.take(arr.nbytes)
    np.ndarray(arr.shape, arr.dtype, buffer=block.buf)[...] = arr
    return SharedArray(block.name, arr.shape, arr.dtype.str, as_tensor)


def pack(obj, blocks=None):
    """`obj` with its arrays and CPU Tensors replaced by SharedArray / InlineArray (big
    arrays go into `blocks`; without it, every array is sent inline)."""
    from ..tensor import Tensor
    if isinstance(obj, Tensor):
        if obj.device_str != "cpu":
            raise RuntimeError(f"DataLoader worker: a {obj.device_str} tensor cannot be sent "
                               "back from a worker process; move batches to the GPU in the "
                               "main process")
        return _array_out(obj.data, True, blocks)
    if isinstance(obj, np.ndarray):
        return _array_out(obj, False, blocks)
    if isinstance(obj, dict):
        return {k: pack(v, blocks) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(pack(v, blocks) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(pack(v, blocks) for v in obj)
    return obj


class MainBlocks:
    """The main process's mappings of its workers' blocks, kept open between batches
    (mapping a block anew costs a system call and page faults each time)."""

    def __init__(self):
        self.mapped = {}          # name -> SharedMemory

    def array(self, shared):
        """A copy of the array in a block (the block goes back to its worker)."""
        block = self.mapped.get(shared.name)
        if block is None:
            block = self.mapped[shared.name] = shared_memory.SharedMemory(name=shared.name)
        view = np.ndarray(shared.shape, np.dtype(shared.dtype), buffer=block.buf)
        arr = np.array(view)
        del view
        return arr

    def see(self, name):
        """Map a block without reading it (a result being thrown away), so that it is
        unlinked at shutdown."""
        if name not in self.mapped:
            self.mapped[name] = shared_memory.SharedMemory(name=name)

    def forget(self, names):
        """Drop the mappings of blocks their worker has unlinked."""
        for name in names:
            block = self.mapped.pop(name, None)
            if block is not None:
                block.close()

    def unlink_all(self):
        """Close and unlink every block still mapped (after the workers stopped)."""
        for block in self.mapped.values():
            block.close()
            with contextlib.suppress(FileNotFoundError):
                block.unlink()
        self.mapped.clear()


def unpack(obj, blocks, used):
    """The inverse of `pack`, in the main process: copies each array out of its block
    and appends the block's name to `used`."""
    from ..tensor import wrap_array
    if isinstance(obj, SharedArray):
        arr = blocks.array(obj)
        used.append(obj.name)
        return wrap_array(arr, "cpu") if obj.as_tensor else arr
    if isinstance(obj, InlineArray):
        return wrap_array(obj.array, "cpu") if obj.as_tensor else obj.array
    if isinstance(obj, dict):
        return {k: unpack(v, blocks, used) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(unpack(v, blocks, used) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(unpack(v, blocks, used) for v in obj)
    return obj


def shared_names(obj):
    """The names of the blocks in a packed result."""
    if isinstance(obj, SharedArray):
        return [obj.name]
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple)) and not isinstance(obj, InlineArray):
        return [name for v in obj for name in shared_names(v)]
    return []


