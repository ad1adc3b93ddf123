"""conv2d: im2col written straight in GEMM order + one batched BLAS GEMM per pass
(and an optional Winograd F(2x2, 3x3) path for 3x3 stride-1 convolutions, off by
default: see `USE_WINOGRAD`). `conv2d_relu` fuses the following ReLU into the op.

Layout. The column buffer of a batch chunk is (m, C*kh*kw, OH*OW): row `c*kh*kw + tap`
holds one input channel's tap over every output position. The forward is then
`weight(g, O/g, C/g*kh*kw) @ cols(m, g, C/g*kh*kw, OH*OW)`, whose result (m, O, OH*OW)
is already NCHW: no transpose copy. Backward: `dW = sum_m dY_m @ cols_m^T`, with cols
recomputed (~1 ms for the MNIST CNN's second layer) rather than kept alive between
forward and backward. Keeping them was even slower for LeNet-5, whose im2col dominates
its tiny GEMMs (23.3 against 21.2 ms a step at batch 256): whole-batch columns stream
through memory twice, while a chunk rebuilt in the workspace stays in cache. Then
`dcols = W^T @ dY` and col2im (scatter-add) give dx, skipped when the input needs no
gradient. Groups are the `g` axis of the batched GEMM.

Memory. The batch is cut into chunks so a column buffer stays under
`COLUMN_BUDGET_BYTES`. On the CPU the column buffer (and dW's per-sample partials) live
in per-thread workspaces reused across calls: a fresh 40 MB buffer cost more in page
faults than the im2col itself on this machine. Workspaces above `WORKSPACE_KEEP_BYTES`
are dropped after use, and the graph references nothing column-sized (only the input
and weight), so the only column memory that outlives a step is that bounded scratch
area; `release_workspace()` frees it.

Threads. On the CPU the batch is split into one part per thread (`_for_each_part`,
tinygrad_cv/parallel.py): each thread runs the chunk loop above on its own samples with
serial kernels and one-thread GEMMs, and dW sums the parts' partial sums in sample
order. Small layers (`SPLIT_MIN_FLOPS`) run in one piece.

The same op serves numpy and cupy; only the kernel module differs (`kernels_for`).
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from .. import parallel
from ..autograd import Function, owns_gradient
from ..backend import xp_of
from ..kernels import kernels_for
from .buffers import empty as _recycled_empty
from .elementwise import relu_grad

COLUMN_BUDGET_BYTES = 2 * 2**20
"""Largest column buffer one thread builds at once; bigger batches are processed in
chunks. 4 MB (6 samples of the MNIST CNN's conv2) ran as fast as 16 MB and cut the peak
RSS of a batch-256 training run by 13 MB; with the batch split across two threads (each
with its own buffer) 2 MB runs as fast as 4 MB (MNIST CNN training step 38.1 against
38.3 ms at batch 64, 143.6 against 143.5 ms at 256) and keeps 6 MB less."""

SPLIT_MIN_FLOPS = 4_000_000
"""Convolutions with at least this many forward flops split their batch across threads
(`tinygrad_cv/parallel.py`); below it the ~30 us hand-over to a worker thread would cost
more than the second core saves."""

WORKSPACE_KEEP_BYTES = 128 * 2**20
"""Column workspaces up to this size are kept for reuse; larger ones are freed after use."""

USE_WINOGRAD = False
"""Compute qualifying 3x3 stride-1 convolutions with Winograd F(2x2, 3x3) (see
`_winograd_applies`). Off by default: on this 2-core machine (~9.4 GB/s memory reads)
the transforms' traffic (16 transformed matrices: 38 MB for the MNIST CNN's conv2 at
batch 64) ate the 2.25x GEMM saving: conv2's GEMM 9.4 -> 5 ms, but the whole MNIST CNN
measured the same in training (55.5-56.6 against 56.0-57.1 ms per step) and ~10%
slower in inference by best times (23.1-23.9 against 20.3-21.9 ms). Kept, tested and
switchable for machines with more memory bandwidth per core."""

WINOGRAD_BACKWARD = False
"""Also run the backward pass (dx, dW) by Winograd (the exact adjoints of the forward's
steps). About 5 ms faster per MNIST CNN step (conv2's backward ~21 ms against ~26 ms by
im2col + GEMM) but its float32 rounding differs more from PyTorch's: the 30-step
SGD training-parity test (tests/test_training_parity.py) then leaves PyTorch's loss
trajectory at step 15 (a ReLU/argmax decision flips; 2e-4 relative). So by default the
forward (and inference) uses Winograd and the backward im2col + GEMM, which stays on
PyTorch's trajectory. Tests check the Winograd backward too."""

WINOGRAD_MIN_CHANNELS = 8
"""Winograd needs enough input and output channels for its 16 GEMMs to be efficient;
below this (e.g. a 1-channel image) im2col + GEMM is faster."""

WINOGRAD_CHUNK_BYTES = 32 * 2**20
"""Transformed input + product scratch per batch chunk of the Winograd path; small
chunks keep the scratch cache-warm and the workspace (kept across steps) small."""


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
_all_slots = []               # every thread's slot dict, so release_workspace frees all
_all_slots_lock = threading.Lock()


def _column_buffer(xp, shape, dtype, slot="columns"):
    """A scratch array: on the CPU a per-thread workspace `slot` reused across calls
    (no page faults after the first call); on the GPU a fresh allocation from CuPy's
    memory pool, which already reuses memory."""
    if xp is not np:
        return xp.empty(shape, dtype=dtype)
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    return _scratch_bytes(nbytes, slot).view(dtype).reshape(shape)


def _scratch_bytes(nbytes, slot):
    """`nbytes` bytes of this thread's CPU workspace `slot` (kept when small enough)."""
    slots = getattr(_workspace, "slots", None)
    if slots is None:
        slots = _workspace.slots = {}
        with _all_slots_lock:
            _all_slots.append(slots)
    buffer = slots.get(slot)
    if buffer is None or buffer.nbytes < nbytes:
        # page-aligned: the kernels' unit-stride rows then never straddle an extra cache
        # line, whatever address malloc gives (steps varied 60-80 ms between processes)
        raw = np.empty(nbytes + 4096, dtype=np.uint8)
        offset = (-raw.ctypes.data) % 4096
        buffer = raw[offset:offset + nbytes]
        if nbytes <= WORKSPACE_KEEP_BYTES:
            slots[slot] = buffer
    return buffer[:nbytes]


def _tile_buffer(xp, rows, cols, dtype, slot):
    """A C-contiguous (16, rows + extra, cols) scratch array for the Winograd path; the
    kernels use rows [0, rows) and the GEMMs the views `[:, :rows]`. On the CPU `extra`
    spaces the 16 matrices 256 bytes apart modulo 4 KiB: with the natural spacing (a
    multiple of 4 KiB for the MNIST CNN) the transforms' 16 streams all hit the same
    cache sets, which made the input transform 16 ms instead of 3.3 ms (1 thread)."""
    if xp is not np:
        return xp.empty((16, rows, cols), dtype=dtype)
    row_bytes = cols * np.dtype(dtype).itemsize
    extra = 0
    for e in range(4096):
        if ((rows + e) * row_bytes) % 4096 == 256:
            extra = e
            break
    shape = (16, rows + extra, cols)
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    return _scratch_bytes(nbytes, slot).view(dtype).reshape(shape)


def release_workspace():
    """Free every thread's scratch buffers (they are rebuilt on the next conv2d); call it
    when no conv2d is running."""
    with _all_slots_lock:
        for slots in _all_slots:
            slots.clear()


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
    im2col = kernels.im2col.serial if xp is np else kernels.im2col
    im2col(x_chunk.reshape(m * geom.in_channels, geom.height, geom.width),
           cols.reshape(m * geom.in_channels, geom.taps, geom.positions),
           *geom.kernel_args())
    return cols


def _for_each_part(xp, geom, body):
    """`body(start, stop)` over the batch: on the CPU split across threads by samples
    (tinygrad_cv/parallel.py) when the layer has enough work, else in one piece."""
    flops = 2 * geom.batch * geom.out_channels * geom.positions * (
        geom.in_channels // geom.groups * geom.taps)
    if xp is np and flops >= SPLIT_MIN_FLOPS:
        parallel.for_each_part(geom.batch, body)
    else:
        body(0, geom.batch)


# ----------------------------------------------------------------------------- the op

class Conv2d(Function):
    """2-D cross-correlation (torch's conv2d) on raw arrays; bias optional (3rd input)."""

    @staticmethod
    def forward(ctx, x, weight, *maybe_bias, geom, relu=False):
        """`relu=True` is relu(conv2d(...)) in one op (conv2d_relu): the ReLU runs in
        place on the fresh output, saving a graph node and a whole activation-sized
        array per call (its page faults cost more than the ReLU itself here)."""
        ctx.relu = relu
        out = Conv2d._forward(ctx, x, weight, *maybe_bias, geom=geom)  # bias, ReLU done
        ctx.relu_out = out if relu else None
        return out

    @staticmethod
    def backward(ctx, grad):
        out = ctx.relu_out
        if not getattr(ctx, "retain_graph", False):
            ctx.relu_out = None  # the activation is not needed after this: free it now
        if out is not None:      # ReLU's backward first, in place when the engine owns grad
            xp = xp_of(grad)
            if xp is np:
                # asked before the call: passing `grad` adds a reference to it
                owned = owns_gradient(grad, 2)
                grad = relu_grad(out, grad, in_place=owned)
            else:                # the CUDA ReLU kernel, into a fresh contiguous array
                grad = xp.ascontiguousarray(grad)
                grad_in = _empty(xp, grad.shape, grad.dtype)
                kernels_for(xp).relu_backward(out.reshape(-1), grad.reshape(-1),
                                              grad_in.reshape(-1))
                grad = grad_in
                del grad_in
            del out
        return Conv2d._backward(ctx, grad)

    @staticmethod
    def _forward(ctx, x, weight, *maybe_bias, geom):
        xp = xp_of(x)
        kernels = kernels_for(xp)
        x4 = xp.ascontiguousarray(x.reshape(geom.batch, geom.in_channels,
                                            geom.height, geom.width))
        ctx.geom = geom
        ctx.has_bias = bool(maybe_bias)
        if _winograd_applies(xp, geom):
            return _winograd_forward(ctx, kernels, xp, x4, weight, maybe_bias, geom)
        g = geom.groups
        weight_g = xp.ascontiguousarray(weight).reshape(
            g, geom.out_channels // g, -1)
        out = _empty(xp, (geom.batch, geom.out_channels, geom.out_h, geom.out_w), x.dtype)
        out_g = out.reshape(geom.batch, g, geom.out_channels // g, geom.positions)
        chunk = _chunk_size(geom, x.dtype.itemsize)

        def forward_samples(first, last):
            for start in range(first, last, chunk):
                stop = min(start + chunk, last)
                cols = _columns(kernels, xp, x4[start:stop], geom)
                xp.matmul(weight_g, cols.reshape(stop - start, g, -1, geom.positions),
                          out=out_g[start:stop])
        _for_each_part(xp, geom, forward_samples)
        _bias_relu(xp, out, maybe_bias[0] if maybe_bias else None, ctx.relu)
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        ctx.save_for_backward(x4 if need_w else None, weight_g if need_x else None)
        return out if geom.batched else out[0]

    @staticmethod
    def _backward(ctx, grad):
        geom = ctx.geom
        x4, weight_g = ctx.saved
        xp = xp_of(grad)
        kernels = kernels_for(xp)
        if getattr(ctx, "winograd", False):
            return _winograd_backward(ctx, kernels, xp, x4, weight_g, grad, geom)
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        g, n = geom.groups, geom.batch
        grad_g = xp.ascontiguousarray(grad).reshape(n, g, geom.out_channels // g,
                                                    geom.positions)
        grad_w = grad_x = grad_b = None
        weight_shape = (g, geom.out_channels // g, geom.in_channels // g * geom.taps)
        if need_x:
            grad_x = _empty(xp, (n, geom.in_channels, geom.height, geom.width), grad.dtype)
            weight_t = xp.ascontiguousarray(weight_g.transpose(0, 2, 1))
        chunk = _chunk_size(geom, grad.dtype.itemsize)
        partial_w = {}          # first sample of a part -> that part's dW

        def backward_samples(first, last):
            part_w = xp.zeros(weight_shape, grad.dtype) if need_w else None
            for start in range(first, last, chunk):
                stop = min(start + chunk, last)
                grad_chunk = grad_g[start:stop]
                if need_w:
                    cols = _columns(kernels, xp, x4[start:stop], geom)
                    cols_t = cols.reshape(stop - start, g, -1, geom.positions).transpose(
                        0, 1, 3, 2)
                    per_sample = _column_buffer(xp, (stop - start,) + weight_shape,
                                                grad.dtype, slot="weight_grad")
                    xp.matmul(grad_chunk, cols_t, out=per_sample)
                    part_w += per_sample.sum(axis=0)
                    del cols, cols_t, per_sample
                if need_x:
                    _input_grad_chunk(kernels, xp, weight_t, grad_chunk,
                                      grad_x[start:stop], geom)
            partial_w[first] = part_w
        _for_each_part(xp, geom, backward_samples)
        if need_w:              # the parts' sums, in sample order (deterministic)
            parts = [partial_w[first] for first in sorted(partial_w)]
            grad_w = parts[0]
            for part in parts[1:]:
                grad_w += part
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_g.reshape(n, geom.out_channels, geom.positions).sum(axis=2).sum(
                axis=0)
        if grad_w is not None:
            grad_w = grad_w.reshape(geom.out_channels, geom.in_channels // g, *geom.kernel)
        if grad_x is not None and not geom.batched:
            grad_x = grad_x[0]
        grads = (grad_x, grad_w)
        return grads + (grad_b,) if ctx.has_bias else grads


# ----------------------------------------------------------------------------- winograd

_WINOGRAD_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
"""The filter transform of F(2x2, 3x3): U = G g G^T (kernels/cpu.py has B and A)."""


def _winograd_applies(xp, geom):
    """On the CPU: 3x3, stride 1, dilation 1, one group, enough channels (any padding).
    The GPU keeps im2col + GEMM (the transforms are CPU-cache-tuned Numba kernels)."""
    return (USE_WINOGRAD and xp is np and geom.kernel == (3, 3) and geom.stride == (1, 1)
            and geom.dilation == (1, 1) and geom.groups == 1
            and min(geom.in_channels, geom.out_channels) >= WINOGRAD_MIN_CHANNELS)


def _winograd_tiles(geom):
    return (geom.out_h + 1) // 2, (geom.out_w + 1) // 2


def _winograd_chunk(geom, itemsize):
    tiles_h, tiles_w = _winograd_tiles(geom)
    per_sample = 16 * tiles_h * tiles_w * (geom.in_channels + geom.out_channels) * itemsize
    return max(1, min(geom.batch, WINOGRAD_CHUNK_BYTES // per_sample))


def _winograd_filter(xp, weight):
    """U (16, C, O) = G g G^T for every (o, c) of the (O, C, 3, 3) weight."""
    G = xp.asarray(_WINOGRAD_G, dtype=weight.dtype)
    u = xp.matmul(xp.matmul(G, weight), G.T)               # (O, C, 4, 4)
    return xp.ascontiguousarray(u.transpose(2, 3, 1, 0)).reshape(16, weight.shape[1],
                                                                  weight.shape[0])


def _winograd_filter_adjoint(xp, grad_u, out_channels, in_channels):
    """dg (O, C, 3, 3) = G^T dU G: the adjoint of `_winograd_filter`."""
    G = xp.asarray(_WINOGRAD_G, dtype=grad_u.dtype)
    d = grad_u.reshape(4, 4, in_channels, out_channels).transpose(3, 2, 0, 1)
    return xp.ascontiguousarray(xp.matmul(xp.matmul(G.T, d), G))


def _winograd_forward(ctx, kernels, xp, x4, weight, maybe_bias, geom):
    """Forward of a qualifying conv2d by F(2x2, 3x3); the bias add is fused into the
    output transform. Saves the input (for dW) and U (for dx), nothing tile-sized."""
    n, c, o = geom.batch, geom.in_channels, geom.out_channels
    tiles_h, tiles_w = _winograd_tiles(geom)
    tiles = tiles_h * tiles_w
    u = _winograd_filter(xp, weight)
    bias = maybe_bias[0] if maybe_bias else xp.zeros(o, x4.dtype)
    out = _empty(xp, (n, o, geom.out_h, geom.out_w), x4.dtype)
    chunk = _winograd_chunk(geom, x4.dtype.itemsize)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        v = _tile_buffer(xp, (stop - start) * tiles, c, x4.dtype, slot="columns")
        m = _tile_buffer(xp, (stop - start) * tiles, o, x4.dtype, slot="products")
        rows = (stop - start) * tiles
        kernels.winograd_input_transform(x4[start:stop], v, geom.pad_top, geom.pad_left,
                                         tiles_h, tiles_w)
        xp.matmul(v[:, :rows], u, out=m[:, :rows])
        kernels.winograd_output_transform(m, bias, out[start:stop], tiles_h, tiles_w,
                                          ctx.relu)
    need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    ctx.winograd = WINOGRAD_BACKWARD
    if WINOGRAD_BACKWARD:
        ctx.save_for_backward(x4 if need_w else None, u if need_x else None)
    else:   # what the im2col backward expects: the input and the (1, O, C*9) weight
        ctx.save_for_backward(x4 if need_w else None,
                              xp.ascontiguousarray(weight).reshape(1, o, -1)
                              if need_x else None)
    return out if geom.batched else out[0]


def _winograd_backward(ctx, kernels, xp, x4, u, grad, geom):
    """dx, dW (and db) of the Winograd forward: the adjoint of each linear step,
    dM = A dY A^T, dU = V^T dM (V recomputed), dV = dM U^T, dx = scatter of B dV B^T."""
    n, c, o = geom.batch, geom.in_channels, geom.out_channels
    need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    tiles_h, tiles_w = _winograd_tiles(geom)
    tiles = tiles_h * tiles_w
    grad4 = xp.ascontiguousarray(grad.reshape(n, o, geom.out_h, geom.out_w))
    grad_u_t = xp.zeros((16, o, c), grad.dtype) if need_w else None
    grad_x = _empty(xp, (n, c, geom.height, geom.width), grad.dtype) if need_x else None
    u_t = xp.ascontiguousarray(u.transpose(0, 2, 1)) if need_x else None
    chunk = _winograd_chunk(geom, grad.dtype.itemsize)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        rows = (stop - start) * tiles
        dm = _tile_buffer(xp, rows, o, grad.dtype, slot="products")
        kernels.winograd_output_transform_adjoint(grad4[start:stop], dm, tiles_h, tiles_w)
        v = _tile_buffer(xp, rows, c, grad.dtype, slot="columns")
        if need_w:
            kernels.winograd_input_transform(x4[start:stop], v, geom.pad_top,
                                             geom.pad_left, tiles_h, tiles_w)
            # dU^T = dM^T V: this orientation ran 6.1 ms against 11.3 ms for V^T dM
            grad_u_t += xp.matmul(dm[:, :rows].transpose(0, 2, 1), v[:, :rows])
        if need_x:
            xp.matmul(dm[:, :rows], u_t, out=v[:, :rows])
            kernels.winograd_input_transform_adjoint(v, grad_x[start:stop], geom.pad_top,
                                                     geom.pad_left, tiles_h, tiles_w)
    grad_w = (_winograd_filter_adjoint(xp, grad_u_t.transpose(0, 2, 1), o, c)
              if need_w else None)
    grad_b = None
    if ctx.has_bias and ctx.needs_input_grad[2]:
        grad_b = grad4.reshape(n, o, -1).sum(axis=2).sum(axis=0)
    if grad_x is not None and not geom.batched:
        grad_x = grad_x[0]
    grads = (grad_x, grad_w)
    return grads + (grad_b,) if ctx.has_bias else grads


def _bias_relu(xp, out, bias, relu):
    """The forward epilogue, in place on the fresh (N, O, OH, OW) output: + bias per
    channel, then ReLU when fused. One Numba pass on the CPU (kernels/cpu.py
    `bias_relu`), array ops on the GPU."""
    if xp is np:
        empty_bias = np.empty(0, out.dtype)
        kernels_for(np).bias_relu(out.reshape(out.shape[0] * out.shape[1], -1),
                                  empty_bias if bias is None else bias, relu)
        return
    if bias is not None:
        out += bias.reshape(1, -1, 1, 1)
    if relu:
        flat = out.reshape(-1)
        kernels_for(xp).relu_forward(flat, flat)


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
    col2im = kernels.col2im.serial if xp is np else kernels.col2im
    col2im(dcols.reshape(m * geom.in_channels, geom.taps, geom.positions),
                   grad_x_chunk.reshape(m * geom.in_channels, geom.height, geom.width),
                   *geom.kernel_args())


def _empty(xp, shape, dtype):
    """An output array: recycled memory on the CPU (see ops/buffers.py), CuPy's pool
    on the GPU."""
    return _recycled_empty(shape, dtype) if xp is np else xp.empty(shape, dtype)


# ----------------------------------------------------------------------------- public

def conv2d_relu(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """relu(conv2d(input, weight, bias, ...)) as one op: same values and gradients,
    one activation array instead of two (see `Conv2d.forward`)."""
    return conv2d(input, weight, bias, stride, padding, dilation, groups, relu=True)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, relu=False):
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
    return Conv2d.apply(*tensors, geom=geom, relu=bool(relu))
