"""Numba CPU kernels, one module per family: `conv` (im2col / col2im), `depthwise`
(direct depthwise convolution), `norm` (batch norm), `pool` (max,
average, adaptive), `relu` (ReLU, the bias + ReLU epilogue, hardtanh); `runs` holds
their inline helpers and `dispatch` the `@size_dispatched` decorator every kernel wears.

Every kernel works on C-contiguous arrays whose leading axis is a "plane" = one
(sample, channel) pair, so one layout serves them all and `prange` over planes gives
each thread whole, independent planes: no write races, no atomics. The callers in
`ops/` reshape NCHW arrays into this form (a free view).

Geometry conventions, shared with `kernels/gpu.py`:
- `pad_h`, `pad_w` are the top / left paddings; the bottom / right paddings only change
  the output size, which the caller passes in (so asymmetric 'same' padding works too).
- Out-of-bounds input reads as 0 for im2col and is skipped by pooling (-inf padding).

Hot loops index flat views with unsigned (uint64) offsets: Numba then drops its
negative-index wrap-around check and LLVM vectorises the copy. Kernels compile lazily
per dtype (float32 / float64) and are cached on disk (`cache=True`). They never call
BLAS, so Numba threads and BLAS threads are never nested.
"""
from __future__ import annotations

from .conv import col2im, im2col
from .depthwise import depthwise_forward, depthwise_input_grad, depthwise_weight_grad
from .dispatch import SERIAL_BELOW
from .norm import batch_norm_input_grad, channel_grad_sums, channel_stats, scale_shift
from .pool import (adaptive_avg_pool2d_backward, adaptive_avg_pool2d_forward,
                   adaptive_max_pool2d_forward, avg_pool2d_backward, avg_pool2d_forward,
                   max_pool2d_forward, max_pool2d_forward_inside, max_pool2d_tiles_backward,
                   max_pool2d_tiles_forward, max_pool2d_values_inside, scatter_to_indices)
from .relu import (bias_relu, hardtanh_backward, hardtanh_forward, relu_backward,
                   relu_backward_inplace, relu_forward, relu_inplace)

__all__ = ["SERIAL_BELOW", "adaptive_avg_pool2d_backward", "adaptive_avg_pool2d_forward",
           "adaptive_max_pool2d_forward", "avg_pool2d_backward", "avg_pool2d_forward",
           "batch_norm_input_grad", "bias_relu", "channel_grad_sums", "channel_stats",
           "col2im", "depthwise_forward", "depthwise_input_grad",
           "depthwise_weight_grad", "hardtanh_backward", "hardtanh_forward", "im2col",
           "max_pool2d_forward",
           "max_pool2d_forward_inside", "max_pool2d_tiles_backward",
           "max_pool2d_tiles_forward", "max_pool2d_values_inside", "relu_backward",
           "relu_backward_inplace", "relu_forward", "relu_inplace", "scale_shift", "scatter_to_indices"]
