"""nn.functional: the functional form of every layer and loss, torch's names and arguments.

Thin wrappers: the work happens in the ops (`tinygrad_cv.ops.*`); this module checks
arguments and maps torch's calling conventions onto them.
"""
from __future__ import annotations

from ..ops import activation as _act
from ..ops import conv as _conv
from ..ops import conv_transpose as _conv_t
from ..ops import elementwise as _ew
from ..ops import matmul as _mm
from ..ops import pool as _pool
from ..ops import relu as _relu
from ..ops import arrange as _ar
from ..ops import reduce as _red
from ..ops.loss import (binary_cross_entropy_with_logits, cross_entropy, mse_loss,  # noqa: F401
                        nll_loss)
from ..ops.loss import (binary_cross_entropy, huber_loss, kl_div, l1_loss,  # noqa: F401
                        smooth_l1_loss)
from ..ops.normalization import batch_norm  # noqa: F401
from ..ops.norms import group_norm, instance_norm, layer_norm  # noqa: F401
from ..tensor import Tensor, wrap_array


def _require_tensor(op, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")


# ----------------------------------------------------------------------------- linear

def linear(input, weight, bias=None):
    """y = input @ weight.T + bias, for input (*, in_features) and weight (out, in)."""
    _check_linear("linear", input, weight, bias)
    if bias is None:
        return _mm.Linear.apply(input, weight)
    return _mm.Linear.apply(input, weight, bias)


def _check_linear(op, input, weight, bias):
    if isinstance(input, Tensor) and isinstance(weight, Tensor):
        # the common case tested on the raw arrays in one expression;
        # anything else falls through to the checks below, which name what is wrong
        x, w = input.data, weight.data
        if (w.ndim == 2 and x.ndim and x.shape[-1] == w.shape[1] and x.dtype == w.dtype
                and (bias is None or (isinstance(bias, Tensor)
                                      and bias.data.shape == (w.shape[0],)
                                      and bias.data.dtype == x.dtype))):
            return
    _require_tensor(op, input)
    _require_tensor(op, weight)
    if weight.ndim != 2:
        raise ValueError(f"{op}: weight must be 2-D (out_features, in_features), got shape "
                         f"{weight.shape}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"{op}: input of shape {input.shape} has "
                         f"{input.shape[-1] if input.ndim else 0} features in its last dim, "
                         f"expected {weight.shape[1]} (weight of shape {weight.shape})")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"{op}: bias has shape {bias.shape}, expected ({weight.shape[0]},)")
    for what, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != input.dtype:   # torch: no silent promotion
            raise TypeError(f"{op}: input dtype {input.dtype} and {what} dtype {t.dtype} "
                            f"should be the same (input shape {input.shape}, weight shape "
                            f"{weight.shape})")


# ----------------------------------------------------------------------------- conv and pool

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return _conv.conv2d(input, weight, bias, stride, padding, dilation, groups)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    return _conv_t.conv_transpose2d(input, weight, bias, stride, padding, output_padding,
                                    groups, dilation)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _pool.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode,
                       return_indices)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    return _pool.avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                       divisor_override)


def adaptive_avg_pool2d(input, output_size):
    return _pool.adaptive_avg_pool2d(input, output_size)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    return _pool.adaptive_max_pool2d(input, output_size, return_indices)


# ----------------------------------------------------------------------------- activations

def relu(input, inplace=False):
    # holders=1: this parameter; on a temporary (`F.relu(self.fc1(x))`) it is the only
    # other reference, and the ReLU may then run in place (ops/relu.py)
    return _relu.relu(input, holders=1)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return _act.leaky_relu(input, negative_slope)


def sigmoid(input):
    return _ew.sigmoid(input)


def tanh(input):
    return _ew.tanh(input)


def _implicit_softmax_dim(ndim):
    """torch's legacy choice when `dim` is not given (it warns; so do we)."""
    import warnings
    warnings.warn("Implicit dimension choice for softmax has been deprecated. Change the "
                  "call to include dim=X as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    _require_tensor("softmax", input)
    if dim is None:
        dim = _implicit_softmax_dim(input.ndim)
    return _red.softmax(input, dim, dtype)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    _require_tensor("log_softmax", input)
    if dim is None:
        dim = _implicit_softmax_dim(input.ndim)
    return _red.log_softmax(input, dim, dtype)


def relu6(input, inplace=False):
    return _act.relu6(input, inplace)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    return _act.hardtanh(input, min_val, max_val, inplace)


def hardsigmoid(input, inplace=False):
    return _act.hardsigmoid(input, inplace)


def hardswish(input, inplace=False):
    return _act.hardswish(input, inplace)


def silu(input, inplace=False):
    return _act.silu(input, inplace)


def mish(input, inplace=False):
    return _act.mish(input, inplace)


def gelu(input, approximate="none"):
    return _act.gelu(input, approximate)


def elu(input, alpha=1.0, inplace=False):
    return _act.elu(input, alpha, inplace)


def softplus(input, beta=1.0, threshold=20.0):
    return _act.softplus(input, beta, threshold)


def prelu(input, weight):
    return _act.prelu(input, weight)


def selu(input, inplace=False):
    return _act.selu(input, inplace)


def celu(input, alpha=1.0, inplace=False):
    return _act.celu(input, alpha, inplace)


def logsigmoid(input):
    return _act.logsigmoid(input)


def softsign(input):
    return _act.softsign(input)


def tanhshrink(input):
    return _act.tanhshrink(input)


def threshold(input, threshold, value, inplace=False):
    return _act.threshold(input, threshold, value, inplace)


def hardshrink(input, lambd=0.5):
    return _act.hardshrink(input, lambd)


def softshrink(input, lambd=0.5):
    return _act.softshrink(input, lambd)


def glu(input, dim=-1):
    return _act.glu(input, dim)


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    _require_tensor("softmin", input)
    if dim is None:
        dim = _implicit_softmax_dim(input.ndim)
    return _red.softmax(-input, dim, dtype)


def dropout(input, p=0.5, training=True, inplace=False):
    return _act.dropout(input, p, training)


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Channel-wise dropout of (N, C, H, W) inputs (a 3-D input is read as (N, C, L), as
    torch does today); `inplace` is accepted with no effect, as `dropout`'s."""
    return _act.feature_dropout(input, p, training, "dropout2d")


def dropout1d(input, p=0.5, training=True, inplace=False):
    """Channel-wise dropout of (N, C, L) or unbatched (C, L) inputs."""
    _require_tensor("dropout1d", input)
    if input.ndim not in (2, 3):
        raise RuntimeError(f"dropout1d: Expected 2D or 3D input, but received a "
                           f"{input.ndim}D input (shape {input.shape})")
    if input.ndim == 2:
        return _act.feature_dropout(input.unsqueeze(0), p, training, "dropout1d").squeeze(0)
    return _act.feature_dropout(input, p, training, "dropout1d")


# ----------------------------------------------------------------------------- shapes

def flatten(input, start_dim=0, end_dim=-1):
    _require_tensor("flatten", input)
    return input.flatten(start_dim, end_dim)


def pad(input, pad, mode="constant", value=None):
    _require_tensor("pad", input)
    return input.pad(pad, mode, 0.0 if value is None else value)


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    from ..ops.interpolate import interpolate as _interpolate
    return _interpolate(input, size, scale_factor, mode, align_corners, recompute_scale_factor,
                        antialias)


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated in torch in favour of `interpolate`; the same computation."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """input / max(||input||_p over dim, eps), as torch."""
    _require_tensor("normalize", input)
    if out is not None:
        raise NotImplementedError("normalize: out= is not supported by tinygrad_cv")
    from ..ops.linalg import vector_norm
    return input / vector_norm(input, p, dim, keepdim=True).clamp(min=eps)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """The cosine of the angle between x1 and x2 along `dim` (broadcast first), each norm
    clamped below by eps."""
    _require_tensor("cosine_similarity", x1)
    _require_tensor("cosine_similarity", x2)
    from ..ops.linalg import vector_norm
    n1 = vector_norm(x1, 2, dim, keepdim=True).clamp(min=eps)
    n2 = vector_norm(x2, 2, dim, keepdim=True).clamp(min=eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """||x1 - x2 + eps||_p over the last dim, as torch."""
    from ..ops.linalg import vector_norm
    return vector_norm(x1 - x2 + eps, p, -1, keepdim)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """`weight[input]`; the `padding_idx` row gets no gradient."""
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: max_norm, scale_grad_by_freq and sparse are not "
                                  "supported by tinygrad_cv")
    from ..ops.sorting import embedding as _embedding
    return _embedding(input, weight, padding_idx)


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    from ..ops.grid_sample import grid_sample as _grid_sample
    return _grid_sample(input, grid, mode, padding_mode, align_corners)


def affine_grid(theta, size, align_corners=None):
    from ..ops.grid_sample import affine_grid as _affine_grid
    return _affine_grid(theta, size, align_corners)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False):
    from .attention import scaled_dot_product_attention as _sdpa
    return _sdpa(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa)


def one_hot(tensor, num_classes=-1):
    """int64 one-hot encoding along a new last dim (no gradient), as torch."""
    _require_tensor("one_hot", tensor)
    if tensor.dtype.kind not in "iu":
        raise RuntimeError(f"one_hot is only applicable to index tensor, got {tensor.dtype}")
    from ..backend import xp_of
    xp = xp_of(tensor.data)
    labels = tensor.data
    if labels.size and int(labels.min()) < 0:
        raise RuntimeError("one_hot: Class values must be non-negative.")
    if num_classes == -1:
        num_classes = int(labels.max()) + 1 if labels.size else 0
    elif labels.size and int(labels.max()) >= num_classes:
        raise RuntimeError(f"one_hot: Class values must be smaller than num_classes "
                           f"({num_classes}), got {int(labels.max())}.")
    out = (labels[..., None] == xp.arange(num_classes)).astype(xp.int64)
    return wrap_array(out, tensor.device_str)


def pixel_shuffle(input, upscale_factor):
    _require_tensor("pixel_shuffle", input)
    return _ar.pixel_shuffle(input, upscale_factor)


def pixel_unshuffle(input, downscale_factor):
    _require_tensor("pixel_unshuffle", input)
    return _ar.pixel_unshuffle(input, downscale_factor)


def channel_shuffle(input, groups):
    _require_tensor("channel_shuffle", input)
    return _ar.channel_shuffle(input, groups)


__all__ = [
    "linear", "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
    "adaptive_max_pool2d", "batch_norm",
    "dropout", "relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax",
    "relu6", "hardtanh", "hardsigmoid", "hardswish", "silu", "mish", "gelu", "elu",
    "softplus", "prelu", "selu", "celu", "logsigmoid", "softsign", "tanhshrink", "threshold",
    "hardshrink", "softshrink", "glu", "softmin", "dropout1d",
    "cross_entropy", "nll_loss", "mse_loss", "binary_cross_entropy_with_logits",
    "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy", "kl_div",
    "flatten", "pad", "normalize", "cosine_similarity", "pairwise_distance", "one_hot",
    "embedding", "grid_sample", "affine_grid", "scaled_dot_product_attention",
    "interpolate", "upsample", "upsample_nearest", "upsample_bilinear",
    "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "dropout2d",
    "layer_norm", "group_norm", "instance_norm",
]
