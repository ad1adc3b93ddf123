"""DistributedDataParallel: one replica of the model per MPI rank, gradients averaged.

As torch's DDP: wrapping broadcasts rank 0's parameters and buffers to every rank (after
checking that every rank built the same model); each backward averages the gradients
over the ranks, bucket by bucket while backward runs (reducer.py), so every rank's
optimizer takes the same step and the replicas stay identical. With each rank on its
own 1/N of every global batch (DistributedSampler), N ranks of batch B train the same
weights as one process of batch N*B.

The wrapper is a Module holding the model as `self.module`, so its `state_dict()` keys
carry a "module." prefix, exactly as torch's; save `ddp.module.state_dict()` for a
checkpoint that loads into the plain model.
"""
from __future__ import annotations

import contextlib
import json
import numbers

from ...autograd import is_grad_enabled
from ...distributed import collectives, group as _group
from ..module import Module
from .reducer import Reducer

DEFAULT_BUCKET_CAP_MB = 25


def _require_group():
    try:
        return _group.current_group()
    except ValueError:
        raise RuntimeError("DistributedDataParallel: the default process group is not "
                           "initialised; call tinygrad_cv.distributed.init_process_group() "
                           "first (and launch with mpiexec -n N python ...)") from None


def _signature(named_params, named_buffers):
    """What must agree across ranks: every parameter's and buffer's name, shape, dtype."""
    return {
        "parameters": [[name, list(p.shape), str(p.dtype)] for name, p in named_params],
        "buffers": [[name, list(b.shape), str(b.dtype)] for name, b in named_buffers],
    }


def _describe(entry):
    name, shape, dtype = entry
    return f"'{name}' of shape {tuple(shape)} and dtype {dtype}"


def _first_mismatch(mine, theirs, my_rank, their_rank):
    """A sentence naming how rank `their_rank`'s model differs from rank `my_rank`'s."""
    for kind in ("parameters", "buffers"):
        a, b = mine[kind], theirs[kind]
        if len(a) != len(b):
            return (f"rank {their_rank} has {len(b)} {kind} but rank {my_rank} has "
                    f"{len(a)}")
        for i, (x, y) in enumerate(zip(a, b)):
            if x == y:
                continue
            singular = kind[:-1]
            if x[0] == y[0]:
                return (f"{singular} '{x[0]}' has shape {tuple(y[1])} and dtype {y[2]} on "
                        f"rank {their_rank} but shape {tuple(x[1])} and dtype {x[2]} on "
                        f"rank {my_rank}")
            return (f"{singular} number {i} is {_describe(y)} on rank {their_rank} but "
                    f"{_describe(x)} on rank {my_rank}")
    return None


def verify_same_model(named_params, named_buffers, what="DistributedDataParallel"):
    """Raise the same RuntimeError on every rank if any rank's model differs from rank 0's
    (names, shapes, dtypes of parameters and buffers), naming the first difference."""
    mine = _signature(named_params, named_buffers)
    payload = json.dumps(mine, separators=(",", ":")).encode()
    everyone = collectives.all_gather_bytes(payload, f"{what}: comparing models across ranks")
    reference = json.loads(everyone[0])
    for rank, raw in enumerate(everyone[1:], start=1):
        problem = _first_mismatch(reference, json.loads(raw), 0, rank)
        if problem:
            raise RuntimeError(f"{what} expects the same model on every rank, but {problem}")


class DistributedDataParallel(Module):
    """Data-parallel training of `module` over the MPI ranks, as torch's DDP (CPU, and
    CUDA through host buffers). See the module docstring and docs/distributed.md."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0,
                 broadcast_buffers=True, init_sync=True, process_group=None,
                 bucket_cap_mb=None, find_unused_parameters=False, check_reduction=False,
                 gradient_as_bucket_view=False, static_graph=False):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be an nn.Module, got "
                            f"{type(module).__name__}")
        group = _require_group()
        if process_group is not None:
            raise ValueError("DistributedDataParallel: only the default process group is "
                             "supported (process_group=None)")
        if gradient_as_bucket_view:
            raise NotImplementedError("DistributedDataParallel: gradient_as_bucket_view=True "
                                      "is not supported; gradients are copied to and from "
                                      "the buckets")
        if dim != 0:
            raise ValueError("DistributedDataParallel: dim must be 0 (each rank feeds its "
                             "own batch; inputs are never scattered)")
        cap_mb = DEFAULT_BUCKET_CAP_MB if bucket_cap_mb is None else bucket_cap_mb
        if not isinstance(cap_mb, numbers.Real) or isinstance(cap_mb, bool) or cap_mb <= 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be a positive "
                             f"number, got {bucket_cap_mb!r}")
        named_params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        named_buffers = list(module.named_buffers())
        devices = {p.device_str for _, p in named_params}
        if len(devices) > 1:
            raise ValueError(f"DistributedDataParallel: all parameters must be on one "
                             f"device, found {sorted(devices)}")
        self.module = module
        self.device_ids = device_ids
        self.output_device = output_device
        self.broadcast_buffers = bool(broadcast_buffers)
        self.find_unused_parameters = bool(find_unused_parameters)
        self.static_graph = bool(static_graph)      # accepted; changes nothing here
        self.bucket_bytes_cap = int(cap_mb * 1024 * 1024)
        self.require_backward_grad_sync = True
        self.require_forward_param_sync = True
        self._group = group
        self._module_buffers = [b for _, b in named_buffers]
        verify_same_model(named_params, named_buffers)
        if init_sync and group.size > 1:
            collectives.broadcast_tensors([p for _, p in named_params] + self._module_buffers,
                                          0, "DistributedDataParallel: broadcasting rank 0's "
                                          "parameters and buffers")
        self.reducer = Reducer([p for _, p in named_params], [n for n, _ in named_params],
                               group, self.bucket_bytes_cap, self.find_unused_parameters)
        self.reducer.install_hooks()

    # ------------------------------------------------------------------ calling
    def forward(self, *inputs, **kwargs):
        """The wrapped module's forward; first (as torch) rank 0's buffers are broadcast
        when `broadcast_buffers` and the previous forward was a synchronising one."""
        sync = is_grad_enabled() and self.require_backward_grad_sync
        if sync:
            self.reducer.check_previous_iteration_finished()
        if (self.broadcast_buffers and self.require_forward_param_sync
                and self._module_buffers and self._group.size > 1):
            collectives.broadcast_tensors(self._module_buffers, 0, "DistributedDataParallel:"
                                          " broadcasting rank 0's buffers before forward")
        output = self.module(*inputs, **kwargs)
        if sync and self.find_unused_parameters:
            self.reducer.mark_unused(output)
        self.require_forward_param_sync = sync
        return output

    @contextlib.contextmanager
    def no_sync(self):
        """Inside this block backward only accumulates local gradients (no allreduce);
        the first backward after it averages the accumulated sums (torch's no_sync)."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        self.reducer.enabled = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous
            self.reducer.enabled = previous

    def communication_stats(self):
        """Counters of the gradient reduction, for measuring overlap: `iterations`
        reduced, `hook_s` seconds spent in the hooks (copies into buckets, starting
        allreduces), `wait_s` seconds spent waiting for the allreduces after the last
        bucket started (communication that backward did not hide, plus waiting for
        slower ranks), `early_starts` buckets whose allreduce started while gradients
        were still missing (the overlap)."""
        return dict(self.reducer.stats)

    def extra_repr(self):
        return ""
