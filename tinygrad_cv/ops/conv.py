"""conv2d: im2col written straight in GEMM order + one batched BLAS GEMM per pass.

Layout. The column buffer of a batch chunk is (m, C*kh*kw, OH*OW): row `c*kh*kw + tap`
holds one input channel's tap over every output position. The forward is then
`weight(g, O/g, C/g*kh*kw) @ cols(m, g, C/g*kh*kw, OH*OW)`, whose result (m, O, OH*OW)
is already NCHW: no transpose copy. Backward: `dW = sum_m dY_m @ cols_m^T` (cols
recomputed, ~1 ms for the MNIST CNN's second layer, instead of kept alive between
forward and backward), `dcols = W^T @ dY` then col2im (scatter-add) gives dx, skipped
when the input needs no gradient. Groups are the `g` axis of the batched GEMM.

Memory. The batch is cut into chunks so a column buffer stays under
`COLUMN_BUDGET_BYTES`. On the CPU the column buffer (and dW's per-sample partials) live
in per-thread workspaces reused across calls: a fresh 40 MB buffer cost more in page
faults than the im2col itself on this machine. Workspaces above `WORKSPACE_KEEP_BYTES`
are dropped after use, and the graph references nothing column-sized (only the input
and weight), so the only column memory that outlives a step is that bounded scratch
area; `release_workspace()` frees it.

The same op serves numpy and cupy; only the kernel module differs (`kernels_for`).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ..autograd import Function
from ..backend import array_module
from ..kernels import kernels_for

COLUMN_BUDGET_BYTES = 256 * 2**20
"""Largest column buffer built at once; bigger batches are processed in chunks."""

WORKSPACE_KEEP_BYTES = 128 * 2**20
"""Column workspaces up to this size are kept for reuse; larger ones are freed after use."""


# ----------------------------------------------------------------------------- arguments

def pair(value, name, op):
    """An int or a 2-sequence of ints as a pair (h, w); a clear error otherwise."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        return int(value[0]), int(value[1])
    raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")


def check_float_dtype(op, arr, what="input"):
    """Kernels exist for float32 and float64 only."""
    if arr.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op}: expected a float32 or float64 {what}, got {arr.dtype}")


@dataclass(frozen=True)
class ConvGeometry:
    """Everything about one conv2d call's shapes, validated once, before computing."""

    batched: bool
    batch: int
    in_channels: int
    height: int
    width: int
    out_channels: int
    kernel: tuple
    stride: tuple
    pad_top: int
    pad_left: int
    dilation: tuple
    groups: int
    out_h: int
    out_w: int

    @property
    def taps(self):
        return self.kernel[0] * self.kernel[1]

    @property
    def positions(self):
        return self.out_h * self.out_w

    @property
    def is_pointwise(self):
        """1x1 kernel, stride 1, no padding: the input itself is the column buffer."""
        return (self.kernel == (1, 1) and self.stride == (1, 1) and self.pad_top == 0
                and self.pad_left == 0 and self.out_h == self.height
                and self.out_w == self.width)

    def kernel_args(self):
        """Geometry arguments of the im2col / col2im kernels, in their order."""
        return (self.out_h, self.out_w, self.kernel[0], self.kernel[1],
                self.stride[0], self.stride[1], self.pad_top, self.pad_left,
                self.dilation[0], self.dilation[1])


def _conv_padding(padding, kernel, dilation, stride):
    """(top, bottom, left, right) from an int, a pair, 'valid' or 'same' (torch rules)."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding == "same":
            if stride != (1, 1):
                raise ValueError("conv2d: padding='same' is not supported for strided "
                                 f"convolutions (stride={stride})")
            sides = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                sides += [total // 2, total - total // 2]
            return tuple(sides)
        raise ValueError(f"conv2d: padding must be 'valid', 'same', an int or a pair, "
                         f"got {padding!r}")
    ph, pw = pair(padding, "padding", "conv2d")
    if ph < 0 or pw < 0:
        raise ValueError(f"conv2d: padding must be non-negative, got {padding!r}")
    return ph, ph, pw, pw


def conv_geometry(input_shape, weight_shape, bias_shape, stride, padding, dilation, groups):
    """Validate a conv2d call and compute its output size; raises before any work."""
    if len(input_shape) not in (3, 4):
        raise ValueError(f"conv2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, "
                         f"got shape {tuple(input_shape)}")
    if len(weight_shape) != 4:
        raise ValueError(f"conv2d: expected a 4-D weight (out_channels, in_channels/groups,"
                         f" kH, kW), got shape {tuple(weight_shape)}")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive int, got {groups!r}")
    batched = len(input_shape) == 4
    n, c, h, w = input_shape if batched else (1, *input_shape)
    out_channels, c_per_group, kh, kw = weight_shape
    if c != c_per_group * groups:
        raise ValueError(
            f"conv2d: input has {c} channels but weight expects {c_per_group * groups} "
            f"(input shape {tuple(input_shape)}, weight shape {tuple(weight_shape)}, "
            f"groups={groups})")
    if out_channels % groups:
        raise ValueError(f"conv2d: out_channels={out_channels} (weight shape "
                         f"{tuple(weight_shape)}) is not divisible by groups={groups}")
    if bias_shape is not None and tuple(bias_shape) != (out_channels,):
        raise ValueError(f"conv2d: bias must have shape ({out_channels},) to match weight "
                         f"shape {tuple(weight_shape)}, got {tuple(bias_shape)}")
    if kh < 1 or kw < 1:
        raise ValueError(f"conv2d: weight has an empty kernel, shape {tuple(weight_shape)}")
    stride = pair(stride, "stride", "conv2d")
    dilation = pair(dilation, "dilation", "conv2d")
    if min(stride) < 1 or min(dilation) < 1:
        raise ValueError(f"conv2d: stride and dilation must be positive, got "
                         f"stride={stride}, dilation={dilation}")
    top, bottom, left, right = _conv_padding(padding, (kh, kw), dilation, stride)
    span_h = dilation[0] * (kh - 1) + 1
    span_w = dilation[1] * (kw - 1) + 1
    if h + top + bottom < span_h or w + left + right < span_w:
        raise ValueError(
            f"conv2d: kernel size (dilated) ({span_h}, {span_w}) is larger than the padded "
            f"input ({h + top + bottom}, {w + left + right}) (input shape "
            f"{tuple(input_shape)}, weight shape {tuple(weight_shape)}, padding {padding!r})")
    out_h = (h + top + bottom - span_h) // stride[0] + 1
    out_w = (w + left + right - span_w) // stride[1] + 1
    return ConvGeometry(batched, n, c, h, w, out_channels, (kh, kw), stride, top, left,
                        dilation, groups, out_h, out_w)


# ----------------------------------------------------------------------------- workspace

_workspace = threading.local()


def _column_buffer(xp, shape, dtype, slot="columns"):
    """A scratch array: on the CPU a per-thread workspace `slot` reused across calls
    (no page faults after the first call); on the GPU a fresh allocation from CuPy's
    memory pool, which already reuses memory."""
    if xp is not np:
        return xp.empty(shape, dtype=dtype)
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    slots = getattr(_workspace, "slots", None)
    if slots is None:
        slots = _workspace.slots = {}
    buffer = slots.get(slot)
    if buffer is None or buffer.nbytes < nbytes:
        buffer = np.empty(nbytes, dtype=np.uint8)
        if nbytes <= WORKSPACE_KEEP_BYTES:
            slots[slot] = buffer
    return buffer[:nbytes].view(dtype).reshape(shape)


def release_workspace():
    """Free this thread's scratch buffers (they are rebuilt on the next conv2d)."""
    _workspace.slots = {}


def _chunk_size(geom, itemsize):
    """Samples per chunk so one column buffer stays within the memory budget."""
    if geom.is_pointwise:
        return geom.batch
    per_sample = geom.in_channels * geom.taps * geom.positions * itemsize
    return max(1, min(geom.batch, COLUMN_BUDGET_BYTES // max(1, per_sample)))


def _columns(kernels, xp, x_chunk, geom):
    """The column matrix (m, C*kh*kw, OH*OW) of a batch chunk (a view when pointwise)."""
    m = x_chunk.shape[0]
    if geom.is_pointwise:
        return x_chunk.reshape(m, geom.in_channels, geom.positions)
    cols = _column_buffer(xp, (m, geom.in_channels * geom.taps, geom.positions),
                          x_chunk.dtype)
    kernels.im2col(x_chunk.reshape(m * geom.in_channels, geom.height, geom.width),
                   cols.reshape(m * geom.in_channels, geom.taps, geom.positions),
                   *geom.kernel_args())
    return cols


# ----------------------------------------------------------------------------- the op

class Conv2d(Function):
    """2-D cross-correlation (torch's conv2d) on raw arrays; bias optional (3rd input)."""

    @staticmethod
    def forward(ctx, x, weight, *maybe_bias, geom):
        xp = array_module_of(x)
        kernels = kernels_for(xp)
        x4 = xp.ascontiguousarray(x.reshape(geom.batch, geom.in_channels,
                                            geom.height, geom.width))
        g = geom.groups
        weight_g = xp.ascontiguousarray(weight).reshape(
            g, geom.out_channels // g, -1)
        out = xp.empty((geom.batch, geom.out_channels, geom.out_h, geom.out_w), x.dtype)
        out_g = out.reshape(geom.batch, g, geom.out_channels // g, geom.positions)
        chunk = _chunk_size(geom, x.dtype.itemsize)
        for start in range(0, geom.batch, chunk):
            stop = min(start + chunk, geom.batch)
            cols = _columns(kernels, xp, x4[start:stop], geom)
            xp.matmul(weight_g, cols.reshape(stop - start, g, -1, geom.positions),
                      out=out_g[start:stop])
        if maybe_bias:
            out += maybe_bias[0].reshape(1, -1, 1, 1)
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        ctx.save_for_backward(x4 if need_w else None, weight_g if need_x else None)
        ctx.geom = geom
        ctx.has_bias = bool(maybe_bias)
        return out if geom.batched else out[0]

    @staticmethod
    def backward(ctx, grad):
        geom = ctx.geom
        x4, weight_g = ctx.saved
        xp = array_module_of(grad)
        kernels = kernels_for(xp)
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        g, n = geom.groups, geom.batch
        grad_g = xp.ascontiguousarray(grad).reshape(n, g, geom.out_channels // g,
                                                    geom.positions)
        grad_w = grad_x = grad_b = None
        if need_w:
            grad_w = xp.zeros((g, geom.out_channels // g,
                               geom.in_channels // g * geom.taps), grad.dtype)
        if need_x:
            grad_x = xp.empty((n, geom.in_channels, geom.height, geom.width), grad.dtype)
            weight_t = xp.ascontiguousarray(weight_g.transpose(0, 2, 1))
        chunk = _chunk_size(geom, grad.dtype.itemsize)
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            grad_chunk = grad_g[start:stop]
            if need_w:
                cols = _columns(kernels, xp, x4[start:stop], geom)
                cols_t = cols.reshape(stop - start, g, -1, geom.positions).transpose(
                    0, 1, 3, 2)
                per_sample = _column_buffer(xp, (stop - start,) + grad_w.shape,
                                            grad.dtype, slot="weight_grad")
                xp.matmul(grad_chunk, cols_t, out=per_sample)
                grad_w += per_sample.sum(axis=0)
                del cols, cols_t, per_sample
            if need_x:
                _input_grad_chunk(kernels, xp, weight_t, grad_chunk,
                                  grad_x[start:stop], geom)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_g.reshape(n, geom.out_channels, geom.positions).sum(axis=2).sum(
                axis=0)
        if grad_w is not None:
            grad_w = grad_w.reshape(geom.out_channels, geom.in_channels // g, *geom.kernel)
        if grad_x is not None and not geom.batched:
            grad_x = grad_x[0]
        grads = (grad_x, grad_w)
        return grads + (grad_b,) if ctx.has_bias else grads


def _input_grad_chunk(kernels, xp, weight_t, grad_chunk, grad_x_chunk, geom):
    """dx of one batch chunk: dcols = W^T @ dY, then col2im into `grad_x_chunk`."""
    m, g = grad_chunk.shape[0], geom.groups
    if geom.is_pointwise:
        xp.matmul(weight_t, grad_chunk,
                  out=grad_x_chunk.reshape(m, g, geom.in_channels // g, geom.positions))
        return
    dcols = _column_buffer(xp, (m, g, geom.in_channels // g * geom.taps, geom.positions),
                           grad_chunk.dtype)
    xp.matmul(weight_t, grad_chunk, out=dcols)
    kernels.col2im(dcols.reshape(m * geom.in_channels, geom.taps, geom.positions),
                   grad_x_chunk.reshape(m * geom.in_channels, geom.height, geom.width),
                   *geom.kernel_args())


def array_module_of(arr):
    """numpy for NumPy arrays, cupy for CuPy arrays (without importing cupy for numpy)."""
    if isinstance(arr, np.ndarray):
        return np
    return array_module("cuda")


# ----------------------------------------------------------------------------- public

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Applies a 2-D convolution over an (N, C, H, W) or (C, H, W) input, as
    `torch.nn.functional.conv2d` (padding: int, pair, 'valid' or 'same')."""
    op = "conv2d"
    geom = conv_geometry(input.shape, weight.shape,
                         None if bias is None else bias.shape,
                         stride, padding, dilation, groups)
    check_float_dtype(op, input.data)
    for what, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != input.dtype:
            raise TypeError(f"{op}: input dtype {input.dtype} and {what} dtype {t.dtype} "
                            "should be the same")
    tensors = (input, weight) if bias is None else (input, weight, bias)
    return Conv2d.apply(*tensors, geom=geom)
