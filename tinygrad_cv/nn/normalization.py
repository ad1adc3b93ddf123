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
from .lazy import LazyModuleMixin, UninitializedBuffer, UninitializedParameter
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


# ----------------------------------------------------------------------------- layer / group / instance

def _register_affine(module, affine, bias, shape, device, dtype):
    """A norm layer's `weight` (ones) and `bias` (zeros) of `shape` when `affine` (bias only
    when `bias`), else None parameters, as torch registers them."""
    if affine:
        module.weight = Parameter(empty(*shape, device=device, dtype=dtype))
        if bias:
            module.bias = Parameter(empty(*shape, device=device, dtype=dtype))
        else:
            module.register_parameter("bias", None)
    else:
        module.register_parameter("weight", None)
        module.register_parameter("bias", None)
    module.reset_parameters()


def _reset_affine(module):
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


class LayerNorm(Module):
    """Normalise over the last dims (`normalized_shape`), then an elementwise affine
    (`weight` ones, `bias` zeros, of that shape) when `elementwise_affine`."""

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(n) for n in normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _register_affine(self, elementwise_affine, bias, self.normalized_shape, device, dtype)

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    """Normalise each of `num_groups` groups of channels of (N, C, *) inputs per sample,
    then a per-channel affine when `affine`."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups != 0:
            raise ValueError("num_channels must be divisible by num_groups")
        self.num_groups, self.num_channels = num_groups, num_channels
        self.eps, self.affine = eps, affine
        _register_affine(self, affine, bias, (num_channels,), device, dtype)

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):
        if input.ndim < 2 or input.shape[1] != self.num_channels:
            raise ValueError(f"{self!r}: expected an input (N, {self.num_channels}, *), got "
                             f"shape {input.shape}")
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class _InstanceNorm(_BatchNorm):
    """Per-sample, per-channel normalisation; running statistics only with
    `track_running_stats` (then eval mode uses them, as torch)."""

    _batched_ndim = 0

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None,
                 dtype=None, *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias=bias)

    def forward(self, input):
        if input.ndim not in (self._batched_ndim - 1, self._batched_ndim):
            raise ValueError(f"{self._get_name()}: expected {self._batched_ndim - 1}D "
                             f"(unbatched) or {self._batched_ndim}D input (got "
                             f"{input.ndim}D input of shape {input.shape})")
        unbatched = input.ndim == self._batched_ndim - 1
        if unbatched:
            input = input.unsqueeze(0)
        if input.shape[1] != self.num_features and self.affine:
            raise ValueError(f"expected input's size at dim={int(not unbatched)} to match "
                             f"num_features ({self.num_features}), but got: {input.shape[1]}.")
        use_input_stats = self.training or not self.track_running_stats
        out = F.instance_norm(
            input, self.running_mean, self.running_var, self.weight, self.bias,
            use_input_stats, self.momentum if self.momentum is not None else 0.0, self.eps)
        return out.squeeze(0) if unbatched else out


class InstanceNorm1d(_InstanceNorm):
    """Instance norm over (N, C, L) or unbatched (C, L) inputs."""

    _batched_ndim = 3


class InstanceNorm2d(_InstanceNorm):
    """Instance norm over (N, C, H, W) or unbatched (C, H, W) inputs."""

    _batched_ndim = 4


# ----------------------------------------------------------------------------- lazy batch norm

class _LazyBatchNorm(LazyModuleMixin, _BatchNorm):
    """BatchNorm whose `num_features` is read from the first input's dim 1."""

    def __init__(self, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None):
        super().__init__(0, eps, momentum, affine, track_running_stats, device, dtype)
        if affine:
            self.weight = UninitializedParameter(device=device, dtype=dtype)
            self.bias = UninitializedParameter(device=device, dtype=dtype)
        if track_running_stats:
            self.running_mean = UninitializedBuffer(device=device, dtype=dtype)
            self.running_var = UninitializedBuffer(device=device, dtype=dtype)

    def reset_parameters(self):
        if not self.has_uninitialized_params() and self.num_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input, *args, **kwargs):
        if input.ndim not in self._expected_ndims:
            wanted = " or ".join(f"{n}D" for n in self._expected_ndims)
            raise ValueError(f"{self._get_name()}: expected {wanted} input (got "
                             f"{input.ndim}D input of shape {input.shape})")
        self.num_features = input.shape[1]
        for t in (self.weight, self.bias, self.running_mean, self.running_var):
            if t is not None:
                t.materialize((self.num_features,))
        self.reset_parameters()

    def _sizes_from_parameters(self):
        ref = self.weight if self.weight is not None else self.running_mean
        if ref is not None:
            self.num_features = ref.shape[0]


class LazyBatchNorm1d(_LazyBatchNorm):
    _expected_ndims = (2, 3)
    cls_to_become = BatchNorm1d


class LazyBatchNorm2d(_LazyBatchNorm):
    _expected_ndims = (4,)
    cls_to_become = BatchNorm2d
