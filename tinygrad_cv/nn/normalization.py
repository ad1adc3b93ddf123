"""BatchNorm1d / BatchNorm2d: per-channel normalisation with running statistics.

Training uses the batch statistics and updates `running_mean`/`running_var` (unbiased)
with `momentum`, or with a cumulative average when `momentum=None`; `num_batches_tracked`
counts the updates. Eval uses the running statistics (or batch statistics when
`track_running_stats=False`). Every check runs before any buffer changes.
"""
from __future__ import annotations

from .. import dtypes
from ..tensor import empty, ones, tensor, zeros
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter


class _BatchNorm(Module):
    _expected_ndims: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None,
                 dtype=None, *, bias: bool = True):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = Parameter(empty(num_features, device=device, dtype=dtype))
            if bias:
                self.bias = Parameter(empty(num_features, device=device, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, device=device,
                                                               dtype=dtype))
            self.register_buffer("running_var", ones(num_features, device=device,
                                                             dtype=dtype))
            self.register_buffer("num_batches_tracked",
                                 tensor(0, dtype=dtypes.int64, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self):
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def _optional_state_keys(self):
        # Checkpoints from before torch 0.4.1 have no num_batches_tracked; torch accepts that.
        return ("num_batches_tracked",)

    def _check_input(self, input):
        if input.ndim not in self._expected_ndims:
            wanted = " or ".join(f"{n}D" for n in self._expected_ndims)
            raise ValueError(f"{self._get_name()}({self.num_features}): expected {wanted} "
                             f"input (got {input.ndim}D input of shape {input.shape})")
        if input.shape[1] != self.num_features:
            raise ValueError(f"{self._get_name()}({self.num_features}): input of shape "
                             f"{input.shape} has {input.shape[1]} channels in dim 1, expected "
                             f"num_features={self.num_features}")

    def forward(self, input):
        self._check_input(input)
        use_batch_stats = self.training or self.running_mean is None
        update = self.training and self.track_running_stats
        factor = 0.0 if self.momentum is None else self.momentum
        if update and self.num_batches_tracked is not None and self.momentum is None:
            # The cumulative average needs the count on the host: one sync per step on a
            # GPU, only for momentum=None (as in PyTorch). The default path never syncs.
            factor = 1.0 / (int(self.num_batches_tracked.item()) + 1)
        result = F.batch_norm(
            input,
            self.running_mean if (not self.training or self.track_running_stats) else None,
            self.running_var if (not self.training or self.track_running_stats) else None,
            self.weight, self.bias, use_batch_stats, factor, self.eps)
        if update and self.num_batches_tracked is not None:
            self.num_batches_tracked.data += 1      # in place on its device, no sync
        return result

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs."""

    _expected_ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) inputs."""

    _expected_ndims = (4,)
