"""conv2d: im2col written straight in GEMM order + one batched BLAS GEMM per pass.

Layout. The column buffer of a batch chunk is (m, C*kh*kw, OH*OW): row `c*kh*kw + tap`
holds one input channel's tap over every output position. The forward is then
`weight(g, O/g, C/g*kh*kw) @ cols(m, g, C/g*kh*kw, OH*OW)`, whose result (m, O, OH*OW)
is already NCHW: no transpose copy. Groups are the `g` axis of the batched GEMM.
A layer with few output positions (`FEW_POSITIONS`, e.g. VGG's 8x8 to 2x2 stages) lays
the chunk's samples side by side instead, (C*kh*kw, m*OH*OW), so each pass is one wide
GEMM and dW needs no per-sample partials (`_side_by_side`).

Building blocks (each chunks the batch and splits it across threads itself), shared
with the transposed convolution, whose forward is conv's input gradient:
- `conv_forward(x4, weight, bias, geom)`:        y  = W * x (+ b)
- `conv_input_grad(grad4, weight, geom)`:        dx = col2im(W^T dY)
- `conv_weight_grad(x4, grad4, geom)`:           dW = sum_n dY_n cols(x_n)^T
- `conv_backward(...)`: dx and dW in one pass over the batch (what conv2d's backward runs)
dW recomputes the columns rather than keeping them from the forward: a chunk rebuilt in
a per-thread workspace stays in cache, whole-batch columns would stream through memory
twice (benchmarks/README.md, "Decisions").

Memory. The batch is cut into chunks so a column buffer stays under
`COLUMN_BUDGET_BYTES`; column buffers and dW's per-sample partials are
`memory.workspace`s, outputs `memory.empty`. The graph references nothing column-sized.

Threads. On the CPU the batch is split into one part per thread (tinygrad_cv/parallel.py):
each thread runs the chunk loop on its own samples with serial kernels and one-thread
GEMMs, and dW sums the parts' partial sums in sample order. Small layers
(`SPLIT_MIN_FLOPS`) run in one piece.

The same code serves numpy and cupy; only the kernel module differs (`kernels_for`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import memory, parallel
from ..autograd import Function
from ..backend import xp_of
from ..kernels import kernels_for
from .relu import relu_grad

COLUMN_BUDGET_BYTES = 2 * 2**20
"""Largest column buffer one thread builds at once; bigger batches run in chunks."""

FEW_POSITIONS = 64
"""Up to this many output positions (8x8) an ungrouped conv runs side by side: GEMMs
that narrow, one per sample, ran at a third of BLAS's rate at 2x2, and dW's per-sample
partials wrote O*C*kh*kw floats a sample (benchmarks/README.md, "Decisions"). The
last bits of float32 results then depend on the chunk width BLAS sees: the same for a
given thread count, not always between thread counts."""

SPLIT_MIN_FLOPS = 4_000_000
"""Convolutions with at least this many forward flops split their batch across threads;
below it the ~30 us hand-over to a worker thread costs more than the second core saves."""


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


def check_operand_dtypes(op, input, weight, bias):
    """A float input, and the weight and bias of the same dtype (torch: no promotion)."""
    check_float_dtype(op, input.data)
    for what, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != input.dtype:
            raise TypeError(f"{op}: input dtype {input.dtype} and {what} dtype {t.dtype} "
                            "should be the same")


def channel_sum(grad4):
    """A bias gradient: grad (N, C, H, W) summed over everything but C."""
    n, c = grad4.shape[:2]
    return grad4.reshape(n, c, grad4.size // max(n * c, 1)).sum(axis=2).sum(axis=0)


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
    def is_depthwise(self):
        """One group per input channel (a MobileNet-style layer): direct kernels on the
        CPU (kernels/cpu/depthwise.py) instead of im2col and per-channel GEMMs."""
        return self.groups > 1 and self.groups == self.in_channels

    def depthwise_args(self):
        """Geometry arguments of the depthwise kernels, in their order."""
        return (self.stride[0], self.stride[1], self.pad_top, self.pad_left,
                self.dilation[0], self.dilation[1])

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
            f"(in_channels={c_per_group * groups}; input shape {tuple(input_shape)}, weight "
            f"shape {tuple(weight_shape)}, groups={groups})")
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
            f"conv2d: kernel size ({kh}, {kw}), dilated to ({span_h}, {span_w}) is larger "
            f"than the padded "
            f"input ({h + top + bottom}, {w + left + right}) (input shape "
            f"{tuple(input_shape)}, weight shape {tuple(weight_shape)}, padding {padding!r})")
    out_h = (h + top + bottom - span_h) // stride[0] + 1
    out_w = (w + left + right - span_w) // stride[1] + 1
    return ConvGeometry(batched, n, c, h, w, out_channels, (kh, kw), stride, top, left,
                        dilation, groups, out_h, out_w)


# ----------------------------------------------------------------------------- building blocks

def _chunk_size(xp, geom, itemsize):
    """Samples per chunk so one column buffer stays within the memory budget (the
    pointwise GEMMs and the CPU's depthwise kernels build none: one chunk)."""
    if geom.is_pointwise or _depthwise_on_cpu(xp, geom):
        return max(1, geom.batch)
    per_sample = geom.in_channels * geom.taps * geom.positions * itemsize
    return max(1, min(geom.batch, COLUMN_BUDGET_BYTES // max(1, per_sample)))


def _for_each_chunk(xp, geom, itemsize, body):
    """`body(start, stop)` over batch chunks; on the CPU the batch is first split across
    threads by samples (tinygrad_cv/parallel.py) when the layer has enough work."""
    chunk = _chunk_size(xp, geom, itemsize)

    def run_part(first, last):
        for start in range(first, last, chunk):
            body(start, min(start + chunk, last))

    flops = 2 * geom.batch * geom.out_channels * geom.positions * (
        geom.in_channels // geom.groups * geom.taps)
    if xp is np and flops >= SPLIT_MIN_FLOPS:
        parallel.for_each_part(geom.batch, run_part)
    else:
        run_part(0, geom.batch)


def _serial(kernel, xp):
    """The kernel version a chunk body calls: the serial `nogil` twin on the CPU (the
    batch split already uses every core), the CuPy kernel on the GPU."""
    return kernel.serial if xp is np else kernel


def _columns(kernels, xp, x_chunk, geom):
    """The column matrix (m, C*kh*kw, OH*OW) of a batch chunk (a view when pointwise)."""
    m = x_chunk.shape[0]
    if geom.is_pointwise:
        return x_chunk.reshape(m, geom.in_channels, geom.positions)
    cols = memory.workspace((m, geom.in_channels * geom.taps, geom.positions),
                            x_chunk.dtype, xp)
    _serial(kernels.im2col, xp)(
        x_chunk.reshape(m * geom.in_channels, geom.height, geom.width),
        cols.reshape(m * geom.in_channels, geom.taps, geom.positions), *geom.kernel_args())
    return cols


def _side_by_side(geom):
    """True when the chunk's samples go side by side into one GEMM (FEW_POSITIONS)."""
    return geom.groups == 1 and geom.positions <= FEW_POSITIONS


def _samples_side_by_side(xp, per_sample, slot):
    """(m, R, P) -> this thread's workspace `slot` holding it as (R, m*P): sample s in
    columns [s*P, (s+1)*P)."""
    m, rows, positions = per_sample.shape
    wide = memory.workspace((rows, m * positions), per_sample.dtype, xp, slot=slot)
    xp.copyto(wide.reshape(rows, m, positions), per_sample.transpose(1, 0, 2))
    return wide


def _samples_back(xp, wide, dst):
    """dst (m, R, P) = the (R, m*P) side-by-side matrix `wide`, sample by sample."""
    m, rows, positions = dst.shape
    xp.copyto(dst, wide.reshape(rows, m, positions).transpose(1, 0, 2))


def _grouped_weight(xp, weight, geom):
    """The (g, O/g, C/g*kh*kw) GEMM view of an (O, C/g, kh, kw) weight."""
    return xp.ascontiguousarray(weight).reshape(geom.groups, geom.out_channels // geom.groups,
                                                -1)


def _depthwise_on_cpu(xp, geom):
    return xp is np and geom.is_depthwise


def conv_forward(x4, weight, bias, geom):
    """y (N, O, OH, OW) = conv2d(x4 (N, C, H, W), weight) + bias (None: no bias)."""
    xp = xp_of(x4)
    kernels = kernels_for(xp)
    if _depthwise_on_cpu(xp, geom):
        out = memory.empty((geom.batch, geom.out_channels, geom.out_h, geom.out_w), x4.dtype)
        weight = np.ascontiguousarray(weight)

        def depthwise_chunk(start, stop):
            kernels.depthwise_forward.serial(x4[start:stop], weight, out[start:stop],
                                             *geom.depthwise_args())
        _for_each_chunk(xp, geom, x4.dtype.itemsize, depthwise_chunk)
        if bias is not None:
            add_channel_bias(xp, out, bias)
        return out
    g = geom.groups
    weight_g = _grouped_weight(xp, weight, geom)
    out = memory.empty((geom.batch, geom.out_channels, geom.out_h, geom.out_w), x4.dtype, xp)
    out_g = out.reshape(geom.batch, g, geom.out_channels // g, geom.positions)

    def forward_chunk(start, stop):
        cols = _columns(kernels, xp, x4[start:stop], geom)
        if _side_by_side(geom):
            wide = _samples_side_by_side(xp, cols, "wide_columns")
            result = memory.workspace((geom.out_channels, wide.shape[1]), x4.dtype, xp,
                                      slot="wide_output")
            xp.matmul(weight_g[0], wide, out=result)
            _samples_back(xp, result, out_g[start:stop, 0])
            return
        xp.matmul(weight_g, cols.reshape(stop - start, g, -1, geom.positions),
                  out=out_g[start:stop])
    _for_each_chunk(xp, geom, x4.dtype.itemsize, forward_chunk)
    if bias is not None:
        add_channel_bias(xp, out, bias)
    return out


def add_channel_bias(xp, out, bias):
    """out (N, O, OH, OW) += bias per channel, in place: one Numba pass on the CPU."""
    if xp is np:
        planes = out.shape[0] * out.shape[1]
        kernels_for(np).bias_relu(out.reshape(planes, out.size // max(planes, 1)), bias, False)
    else:
        out += bias.reshape(1, -1, 1, 1)


class _BackwardChunks:
    """The per-chunk steps of conv2d's backward, sharing the operands' GEMM views:
    `input_grad(start, stop)` writes dx of those samples, `weight_grad(start, stop)`
    records their dW partial sum."""

    def __init__(self, grad4, geom, weight=None, x4=None):
        self.xp = xp_of(grad4)
        self.kernels = kernels_for(self.xp)
        self.geom = geom
        n, g = geom.batch, geom.groups
        self.grad4 = grad4
        self.grad_g = grad4.reshape(n, g, geom.out_channels // g, geom.positions)
        self.x4 = x4
        self.depthwise = _depthwise_on_cpu(self.xp, geom)
        self.weight = None if weight is None else self.xp.ascontiguousarray(weight)
        self.grad_x = self.weight_t = None
        if weight is not None:
            self.weight_t = self.xp.ascontiguousarray(
                _grouped_weight(self.xp, weight, geom).transpose(0, 2, 1))
            self.grad_x = memory.empty((n, geom.in_channels, geom.height, geom.width),
                                       grad4.dtype, self.xp)
        self.partial_w = {}         # first sample of a chunk -> that chunk's dW

    def side_by_side_grad(self, start, stop):
        """dY of samples [start, stop) side by side (O, m*OH*OW) when the layer runs that
        way (`_side_by_side`), else None: made once per chunk for dx and dW."""
        if not _side_by_side(self.geom):
            return None
        return _samples_side_by_side(self.xp, self.grad_g[start:stop, 0], "wide_grad")

    def input_grad(self, start, stop, wide_grad=None):
        """dx = col2im(W^T dY) of samples [start, stop); `wide_grad`: that chunk's
        `side_by_side_grad`, when the caller has it already."""
        xp, geom, g, m = self.xp, self.geom, self.geom.groups, stop - start
        dx = self.grad_x[start:stop]
        if self.depthwise:
            self.kernels.depthwise_input_grad.serial(
                self.grad4[start:stop], self.weight, dx, *geom.depthwise_args())
            return
        if _side_by_side(geom):
            if wide_grad is None:
                wide_grad = self.side_by_side_grad(start, stop)
            dwide = memory.workspace((geom.in_channels * geom.taps, wide_grad.shape[1]),
                                     wide_grad.dtype, xp, slot="wide_columns")
            xp.matmul(self.weight_t[0], wide_grad, out=dwide)
            if geom.is_pointwise:
                _samples_back(xp, dwide, dx.reshape(m, geom.in_channels, geom.positions))
                return
            dcols = memory.workspace((m, geom.in_channels * geom.taps, geom.positions),
                                     dwide.dtype, xp)
            _samples_back(xp, dwide, dcols)
            _serial(self.kernels.col2im, xp)(
                dcols.reshape(m * geom.in_channels, geom.taps, geom.positions),
                dx.reshape(m * geom.in_channels, geom.height, geom.width),
                *geom.kernel_args())
            return
        if geom.is_pointwise:
            xp.matmul(self.weight_t, self.grad_g[start:stop],
                      out=dx.reshape(m, g, geom.in_channels // g, geom.positions))
            return
        dcols = memory.workspace((m, g, geom.in_channels // g * geom.taps, geom.positions),
                                 self.grad_g.dtype, xp)
        xp.matmul(self.weight_t, self.grad_g[start:stop], out=dcols)
        _serial(self.kernels.col2im, xp)(
            dcols.reshape(m * geom.in_channels, geom.taps, geom.positions),
            dx.reshape(m * geom.in_channels, geom.height, geom.width), *geom.kernel_args())

    def weight_grad(self, start, stop, wide_grad=None):
        """sum over samples [start, stop) of dY_n cols(x_n)^T; `wide_grad` as in
        `input_grad`."""
        xp, geom, g = self.xp, self.geom, self.geom.groups
        if self.depthwise:
            part = np.empty((geom.out_channels, 1) + geom.kernel, self.grad4.dtype)
            self.kernels.depthwise_weight_grad.serial(
                self.x4[start:stop], self.grad4[start:stop], part, *geom.depthwise_args())
            self.partial_w[start] = part
            return
        cols = _columns(self.kernels, xp, self.x4[start:stop], geom)
        if _side_by_side(geom):
            wide_cols = _samples_side_by_side(xp, cols, "wide_columns")
            if wide_grad is None:
                wide_grad = self.side_by_side_grad(start, stop)
            self.partial_w[start] = xp.matmul(wide_grad, wide_cols.T)[None]
            return
        cols_t = cols.reshape(stop - start, g, -1, geom.positions).transpose(0, 1, 3, 2)
        shape = (stop - start, g, geom.out_channels // g, geom.in_channels // g * geom.taps)
        per_sample = memory.workspace(shape, self.grad_g.dtype, xp, slot="weight_grad")
        xp.matmul(self.grad_g[start:stop], cols_t, out=per_sample)
        self.partial_w[start] = per_sample.sum(axis=0)

    def total_weight_grad(self):
        """dW (O, C/g, kh, kw): the chunks' partial sums added in sample order
        (deterministic whatever the threads did)."""
        geom = self.geom
        shape = (geom.out_channels, geom.in_channels // geom.groups, *geom.kernel)
        parts = [self.partial_w[start] for start in sorted(self.partial_w)]
        if not parts:                       # an empty batch
            return self.xp.zeros(shape, self.grad_g.dtype)
        grad_w = parts[0]
        for part in parts[1:]:
            grad_w += part
        return grad_w.reshape(shape)


def conv_input_grad(grad4, weight, geom):
    """dx (N, C, H, W) of conv2d from dy (N, O, OH, OW): col2im(W^T dY)."""
    chunks = _BackwardChunks(grad4, geom, weight=weight)
    _for_each_chunk(chunks.xp, geom, grad4.dtype.itemsize, chunks.input_grad)
    return chunks.grad_x


def conv_weight_grad(x4, grad4, geom):
    """dW (O, C/g, kh, kw) of conv2d from its input x4 and dy (N, O, OH, OW)."""
    chunks = _BackwardChunks(grad4, geom, x4=x4)
    _for_each_chunk(chunks.xp, geom, grad4.dtype.itemsize, chunks.weight_grad)
    return chunks.total_weight_grad()


def conv_backward(x4, weight, grad4, geom, need_x=True, need_w=True):
    """(dx or None, dW or None) in one pass over the batch: each chunk's dY is used for
    both while it is in cache."""
    if not (need_x or need_w):
        return None, None
    chunks = _BackwardChunks(grad4, geom, weight=weight if need_x else None,
                             x4=x4 if need_w else None)

    def backward_chunk(start, stop):
        wide_grad = chunks.side_by_side_grad(start, stop)
        if need_w:
            chunks.weight_grad(start, stop, wide_grad)
        if need_x:
            chunks.input_grad(start, stop, wide_grad)
    _for_each_chunk(chunks.xp, geom, grad4.dtype.itemsize, backward_chunk)
    return chunks.grad_x, (chunks.total_weight_grad() if need_w else None)


# ----------------------------------------------------------------------------- the op

class Conv2d(Function):
    """2-D cross-correlation (torch's conv2d) on raw arrays; bias optional (3rd input).
    A following ReLU may join this node (ops/relu.py): `ctx.relu_out` is then the output
    it overwrote, and backward masks the gradient with it first."""

    fuses_relu = True

    @staticmethod
    def forward(ctx, x, weight, *maybe_bias, geom):
        xp = xp_of(x)
        x4 = xp.ascontiguousarray(x.reshape(geom.batch, geom.in_channels, geom.height,
                                            geom.width))
        ctx.geom = geom
        ctx.has_bias = bool(maybe_bias)
        ctx.relu_out = None
        out = conv_forward(x4, weight, maybe_bias[0] if maybe_bias else None, geom)
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        ctx.save_for_backward(x4 if need_w else None, weight if need_x else None)
        return out if geom.batched else out[0]

    @staticmethod
    def backward(ctx, grad):
        geom = ctx.geom
        x4, weight = ctx.saved
        xp = xp_of(grad)
        need = ctx.needs_input_grad
        if ctx.relu_out is not None:
            owned = memory.owns_gradient(grad, 2)   # asked before the call references it
            grad = relu_grad(ctx.relu_out, grad, in_place=owned)
        grad4 = xp.ascontiguousarray(grad).reshape(geom.batch, geom.out_channels,
                                                   geom.out_h, geom.out_w)
        grad_x, grad_w = conv_backward(x4, weight, grad4, geom, need[0], need[1])
        if grad_x is not None and not geom.batched:
            grad_x = grad_x[0]
        if not ctx.has_bias:
            return grad_x, grad_w
        return grad_x, grad_w, (channel_sum(grad4) if need[2] else None)


# ----------------------------------------------------------------------------- public

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Applies a 2-D convolution over an (N, C, H, W) or (C, H, W) input, as
    `torch.nn.functional.conv2d` (padding: int, pair, 'valid' or 'same')."""
    op = "conv2d"
    geom = conv_geometry(input.shape, weight.shape,
                         None if bias is None else bias.shape,
                         stride, padding, dilation, groups)
    check_operand_dtypes(op, input, weight, bias)
    tensors = (input, weight) if bias is None else (input, weight, bias)
    return Conv2d.apply(*tensors, geom=geom)
