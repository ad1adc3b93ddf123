"""DDP's gradient reducer: parameters in buckets, one non-blocking allreduce per bucket.

Why buckets. One allreduce per parameter pays MPI's latency dozens of times per step; one
for the whole model starts only after backward has finished. Buckets of about
`bucket_cap_mb` (torch's 25 MB; the first one at most 1 MB, as torch, so communication
starts early) sit in between: parameters go in reverse registration order, roughly the
order backward produces their gradients, so a bucket fills, and its allreduce starts,
while backward is still computing the gradients of earlier layers.

How. Each bucket owns one contiguous flat host buffer. The post-accumulate hook of a
parameter (autograd's `AccumulateGrad.post_hooks`) copies its `.grad` into its slot of
the buffer; when a bucket's last slot is filled its `Iallreduce` (in place, SUM) starts.
Buckets start strictly in index order (a bucket ready early waits for the ones before
it), so every rank issues the same collectives in the same order. Each hook also tests
the requests in flight, which is what lets MPI progress them during backward. When the
last bucket has started, the same hook waits for all of them (bounded by the group's
timeout), divides by the world size and writes the averages back into every `.grad`,
in place. So the average is complete when `backward()` returns: the optimizer needs no
change, and `optimizer.step()` sees averaged gradients.

Parameters that take no part in the loss never get a hook call, so their bucket never
starts: with `find_unused_parameters=True` the forward walks the output's graph and marks
them ready at once (their slot holds their current `.grad`, or zeros), and a per-parameter
"used" count is reduced alongside, so a parameter unused on every rank keeps `.grad`
None, as torch. Without it, the next forward raises, naming the parameters.
"""
from __future__ import annotations

import time
import weakref

import numpy as np

from ...autograd import AccumulateGrad
from ...backend import to_numpy, transfer
from ...distributed.faults import wait_all
from ...tensor import wrap_array

FIRST_BUCKET_CAP_BYTES = 1024 * 1024
"""torch's `dist._DEFAULT_FIRST_BUCKET_BYTES`: the first bucket is small to start early."""


class Bucket:
    """A run of parameters of one dtype, their gradients in one flat buffer."""

    def __init__(self, index, dtype):
        self.index = index
        self.dtype = np.dtype(dtype)
        self.members = []           # parameter indices, in slot order
        self.offsets = []
        self.numel = 0
        self.flat = None
        self.pending = 0            # slots not yet filled this iteration

    def add(self, param_index, numel):
        self.members.append(param_index)
        self.offsets.append(self.numel)
        self.numel += numel

    def allocate(self):
        # float16 is reduced in float32: MPI has no portable half type.
        work_dtype = np.float32 if self.dtype == np.float16 else self.dtype
        self.flat = np.zeros(self.numel, dtype=work_dtype)
        self.pending = len(self.members)


def build_buckets(params, cap_bytes, first_cap_bytes=FIRST_BUCKET_CAP_BYTES):
    """Buckets over `params` in reverse order, each of one (dtype, device) and at most
    `cap_bytes` (the first at most `first_cap_bytes`) unless one parameter is bigger."""
    buckets, current, current_key, current_bytes = [], None, None, 0
    for i in reversed(range(len(params))):
        p = params[i]
        key = (np.dtype(p.dtype), p.device_str)
        nbytes = p.numel() * p.data.itemsize
        if current is not None and key == current_key:
            cap = min(first_cap_bytes, cap_bytes) if current.index == 0 else cap_bytes
            if current_bytes + nbytes <= cap:
                current.add(i, p.numel())
                current_bytes += nbytes
                continue
        current = Bucket(len(buckets), p.dtype)
        buckets.append(current)
        current_key, current_bytes = key, nbytes
        current.add(i, p.numel())
    for bucket in buckets:
        bucket.allocate()
    return buckets


class Reducer:
    """Averages the gradients of `params` over the group's ranks, bucket by bucket, from
    the parameters' post-accumulate hooks (see the module docstring)."""

    def __init__(self, params, names, group, bucket_cap_bytes, find_unused_parameters):
        self.params = params
        self.names = names
        self.group = group
        self.find_unused_parameters = find_unused_parameters
        self.buckets = build_buckets(params, bucket_cap_bytes)
        self.slot = {}
        for bucket in self.buckets:
            for i, offset in zip(bucket.members, bucket.offsets):
                self.slot[i] = (bucket, offset)
        self.enabled = True         # False inside DistributedDataParallel.no_sync()
        self.stats = {"iterations": 0, "hook_s": 0.0, "wait_s": 0.0, "early_starts": 0}
        self._reset()

    # ------------------------------------------------------------------ iteration state
    def _reset(self):
        self._ready = [False] * len(self.params)
        self._unready = len(self.params)
        self._used = np.zeros(len(self.params), dtype=np.int32)
        self._next_bucket = 0
        self._requests = []
        self._started = False
        for bucket in self.buckets:
            bucket.pending = len(bucket.members)

    def check_previous_iteration_finished(self):
        """Raise if the last backward left buckets unreduced (torch's error, with names)."""
        if not self._started:
            return
        missing = [self.names[i] for i, ready in enumerate(self._ready) if not ready]
        raise RuntimeError(
            "DistributedDataParallel: the previous iteration's gradient reduction did not "
            f"finish: these parameters received no gradient in backward(): "
            f"{', '.join(missing)}. If your model has parameters that take no part in the "
            "loss, pass find_unused_parameters=True; every rank must run backward on the "
            "output of every DDP forward (or call forward under no_sync()/no_grad()).")

    # ------------------------------------------------------------------ hooks
    def install_hooks(self):
        """Append one post-accumulate hook per parameter (holding this reducer weakly)."""
        me = weakref.ref(self)
        for i, p in enumerate(self.params):
            node = p._node()
            node.post_hooks[:] = [h for h in node.post_hooks if not _is_dead_ddp_hook(h)]
            if any(getattr(h, "_ddp_reducer", None) is not None for h in node.post_hooks):
                raise RuntimeError(f"DistributedDataParallel: parameter '{self.names[i]}' "
                                   "already belongs to another live DistributedDataParallel;"
                                   " wrap a module once")
            node.post_hooks.append(_make_hook(me, i))

    def on_gradient(self, i):
        if not self.enabled:
            return
        start = time.perf_counter()
        if self._ready[i]:
            raise RuntimeError(
                f"DistributedDataParallel: parameter '{self.names[i]}' got its gradient "
                "twice in one iteration (two backward() calls, or a parameter used through "
                "two graphs); DDP reduces each gradient once per iteration: run the earlier "
                "backward passes of a gradient accumulation under no_sync()")
        self._mark_ready(i, used=True)
        self.stats["hook_s"] += time.perf_counter() - start
        if self._next_bucket == len(self.buckets):
            self._finish()

    def mark_unused(self, outputs):
        """find_unused_parameters: mark ready now every parameter the outputs' graph does
        not reach (their hooks will not run in this backward)."""
        reached = _reachable_leaf_nodes(outputs)
        for i, p in enumerate(self.params):
            if not self._ready[i] and id(p._node()) not in reached:
                self._mark_ready(i, used=p.grad is not None)
        if self._next_bucket == len(self.buckets):
            self._finish()

    def _mark_ready(self, i, used):
        bucket, offset = self.slot[i]
        p = self.params[i]
        view = bucket.flat[offset:offset + p.numel()]
        if p.grad is not None:
            np.copyto(view, to_numpy(p.grad.data).reshape(-1), casting="same_kind")
        else:
            view[...] = 0
        self._ready[i] = True
        self._unready -= 1
        self._used[i] = 1 if used else 0
        self._started = True
        bucket.pending -= 1
        self._start_ready_buckets()

    def _start_ready_buckets(self):
        MPI, comm = self.group.MPI, self.group.comm
        while (self._next_bucket < len(self.buckets)
               and self.buckets[self._next_bucket].pending == 0):
            flat = self.buckets[self._next_bucket].flat
            self._requests.append(comm.Iallreduce(MPI.IN_PLACE, flat, op=MPI.SUM))
            self._next_bucket += 1
            if self._unready:               # started while backward is still running
                self.stats["early_starts"] += 1
        if self._requests:
            MPI.Request.Testall(self._requests)     # lets MPI progress the transfers

    # ------------------------------------------------------------------ the end of backward
    def _finish(self):
        MPI, comm = self.group.MPI, self.group.comm
        requests = list(self._requests)
        if self.find_unused_parameters:
            requests.append(comm.Iallreduce(MPI.IN_PLACE, self._used, op=MPI.SUM))
        start = time.perf_counter()
        wait_all(self.group, requests, f"DistributedDataParallel: allreduce of "
                 f"{len(self.buckets)} gradient bucket(s)")
        self.stats["wait_s"] += time.perf_counter() - start
        size = self.group.size
        for bucket in self.buckets:
            np.divide(bucket.flat, size, out=bucket.flat)
            for i, offset in zip(bucket.members, bucket.offsets):
                self._write_back(i, bucket.flat[offset:offset + self.params[i].numel()])
        self.stats["iterations"] += 1
        self._reset()

    def _write_back(self, i, average):
        p = self.params[i]
        if self.find_unused_parameters and self._used[i] == 0:
            return                           # unused on every rank: .grad stays as it was
        value = average.reshape(p.shape)
        if p.grad is None:
            p.grad = wrap_array(transfer(value.astype(p.dtype), p.device_str), p.device_str)
        else:
            p.grad.data[...] = transfer(value.astype(p.grad.dtype, copy=False),
                                        p.grad.device_str)


def _make_hook(reducer_ref, index):
    def hook(leaf):
        reducer = reducer_ref()
        if reducer is not None:
            reducer.on_gradient(index)

    hook._ddp_reducer = reducer_ref
    return hook


def _is_dead_ddp_hook(hook):
    ref = getattr(hook, "_ddp_reducer", None)
    return ref is not None and ref() is None


def _output_tensors(value, out):
    if hasattr(value, "grad_fn") and hasattr(value, "requires_grad"):
        out.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _output_tensors(item, out)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _output_tensors(item, out)
    return out


def _reachable_leaf_nodes(outputs):
    """ids of the AccumulateGrad nodes the outputs' graphs reach."""
    tensors = [t for t in _output_tensors(outputs, []) if t.requires_grad]
    stack = [t._node() for t in tensors]
    seen, leaves = set(), set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, AccumulateGrad):
            leaves.add(id(node))
            continue
        stack.extend(parent for parent in node.parents if parent is not None)
    return leaves
