"""One small converter per traced op: `CONVERTERS[name](g, op)` adds the ONNX nodes of one
op to the graph `g` and returns the name of the value holding its output.

`op` (export.OpView) gives the op's input value names (`op.inputs`), its settings
(`op.params`), the shapes it saw in both traces (`op.in_shape(i)`, `op.out_shape`, and
`op.dynamic_out`: the output axes whose size changed with the input's dynamic axes), and
`op.fail(why)` for an ExportError naming the op and its layer. Ops missing from the
table cannot be exported (losses, dropout in training mode, ...).
"""
from __future__ import annotations

import math

import numpy as np

from .graph import INT64_MAX, INT64_MIN, host

# ----------------------------------------------------------------------------- helpers


def _batched(g, op, x, rank):
    """ONNX conv/pool want (N, C, H, W): an unbatched (C, H, W) input gets a batch axis."""
    return (x, False) if rank == 4 else (g.unsqueeze(x, [0]), True)


def _unbatched(g, y, added):
    return g.squeeze(y, [0]) if added else y


def _same_as(name):
    """A converter for an op that is one ONNX op of the same arity."""
    def convert(g, op):
        return g.node(name, op.inputs)
    return convert


def _onnx_dtype(g, dtype):
    return g.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


# ----------------------------------------------------------------------------- convolution

def conv2d(g, op):
    geom = op.params["geom"]
    x, added = _batched(g, op, op.inputs[0], len(op.in_shape(0)))
    (kh, kw), (sh, sw), (dh, dw) = geom.kernel, geom.stride, geom.dilation
    # The end padding that gives the traced output size (torch may pad rows it never reads).
    bottom = max(0, (geom.out_h - 1) * sh + dh * (kh - 1) + 1 - geom.height - geom.pad_top)
    right = max(0, (geom.out_w - 1) * sw + dw * (kw - 1) + 1 - geom.width - geom.pad_left)
    y = g.node("Conv", [x] + list(op.inputs[1:]),
               kernel_shape=[kh, kw], strides=[sh, sw], dilations=[dh, dw],
               pads=[geom.pad_top, geom.pad_left, bottom, right], group=geom.groups)
    return _unbatched(g, y, added)


def conv_transpose2d(g, op):
    geom = op.params["geom"]          # the geometry of the conv2d this op is the adjoint of
    x, added = _batched(g, op, op.inputs[0], len(op.in_shape(0)))
    (kh, kw), (sh, sw), (dh, dw) = geom.kernel, geom.stride, geom.dilation
    ph, pw = geom.pad_top, geom.pad_left
    extra_h = geom.height - ((geom.out_h - 1) * sh - 2 * ph + dh * (kh - 1) + 1)
    extra_w = geom.width - ((geom.out_w - 1) * sw - 2 * pw + dw * (kw - 1) + 1)
    y = g.node("ConvTranspose", [x] + list(op.inputs[1:]), kernel_shape=[kh, kw],
               strides=[sh, sw], dilations=[dh, dw], pads=[ph, pw, ph, pw],
               output_padding=[extra_h, extra_w], group=geom.groups)
    return _unbatched(g, y, added)


# ----------------------------------------------------------------------------- pooling

def _floor_size(size, kernel, stride, pad, dilation):
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def _window_attrs(geom, dilation=True):
    """kernel/strides/pads (and ceil_mode) of a windowed pool from its traced geometry."""
    floor = (_floor_size(geom.height, geom.kernel[0], geom.stride[0], geom.padding[0],
                         geom.dilation[0]),
             _floor_size(geom.width, geom.kernel[1], geom.stride[1], geom.padding[1],
                         geom.dilation[1]))
    attrs = dict(kernel_shape=list(geom.kernel), strides=list(geom.stride),
                 pads=[geom.padding[0], geom.padding[1], geom.padding[0], geom.padding[1]],
                 ceil_mode=int(floor != (geom.out_h, geom.out_w)))
    if dilation:
        attrs["dilations"] = list(geom.dilation)
    return attrs


def max_pool2d(g, op):
    geom = op.params["geom"]
    x, added = _batched(g, op, op.inputs[0], len(geom.in_shape))
    return _unbatched(g, g.node("MaxPool", [x], **_window_attrs(geom)), added)


def avg_pool2d(g, op):
    geom = op.params["geom"]
    attrs = _window_attrs(geom, dilation=False)
    divisor = op.params["divisor_override"]
    x, added = _batched(g, op, op.inputs[0], len(geom.in_shape))
    if divisor and attrs["ceil_mode"]:
        raise op.fail("divisor_override with ceil_mode has no ONNX form")
    count_pad = 1 if divisor else int(op.params["count_include_pad"])
    y = g.node("AveragePool", [x], count_include_pad=count_pad, **attrs)
    if divisor:       # sum of the window / divisor
        scale = geom.kernel[0] * geom.kernel[1] / divisor
        y = g.node("Mul", [y, g.const(scale, op.dtype)])
    return _unbatched(g, y, added)


def _adaptive_matrix(size, out, dtype):
    """(out, size) matrix averaging torch's adaptive windows [floor(i*n/o), ceil((i+1)*n/o))."""
    m = np.zeros((out, size), dtype=np.float64)
    for i in range(out):
        lo, hi = (i * size) // out, -((-(i + 1) * size) // out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m.astype(dtype)


def adaptive_avg_pool2d(g, op):
    geom = op.params["geom"]
    h, w, oh, ow = geom.height, geom.width, geom.out_h, geom.out_w
    if any(a >= len(geom.in_shape) - 2 for a in op.dynamic_in(0)):
        raise op.fail("adaptive pooling over a dynamic spatial axis cannot be exported")
    x, added = _batched(g, op, op.inputs[0], len(geom.in_shape))
    if (oh, ow) == (1, 1):
        y = g.node("GlobalAveragePool", [x])
    elif h % oh == 0 and w % ow == 0:
        k = [h // oh, w // ow]
        y = g.node("AveragePool", [x], kernel_shape=k, strides=k)
    else:             # uneven windows: rows then columns as products with averaging matrices
        y = g.node("MatMul", [g.const(_adaptive_matrix(h, oh, op.dtype)), x])
        y = g.node("MatMul", [y, g.const(_adaptive_matrix(w, ow, op.dtype).T)])
    return _unbatched(g, y, added)


def adaptive_max_pool2d(g, op):
    geom = op.params["geom"]
    h, w, oh, ow = geom.height, geom.width, geom.out_h, geom.out_w
    x, added = _batched(g, op, op.inputs[0], len(geom.in_shape))
    if (oh, ow) == (1, 1):
        y = g.node("GlobalMaxPool", [x])
    elif h % oh == 0 and w % ow == 0:
        k = [h // oh, w // ow]
        y = g.node("MaxPool", [x], kernel_shape=k, strides=k)
    else:
        raise op.fail(f"adaptive max pooling from {h}x{w} to {oh}x{ow} (uneven windows) has "
                      "no ONNX form")
    return _unbatched(g, y, added)


# ----------------------------------------------------------------------------- normalization

def _per_channel_shape(rank):
    return [1, -1] + [1] * (rank - 2)


def batch_norm(g, op):
    p = op.params
    x = op.inputs[0]
    rank = len(op.in_shape(0))
    channels = op.in_shape(0)[1]
    dtype = op.dtype
    rest = list(op.inputs[1:])
    scale = rest.pop(0) if p["has_weight"] else g.const(np.ones(channels, dtype))
    bias = rest.pop(0) if p["has_bias"] else g.const(np.zeros(channels, dtype))
    if not p["training"]:
        mean = op.array_input(p["running_mean"], dtype)
        var = op.array_input(p["running_var"], dtype)
        return g.node("BatchNormalization", [x, scale, bias, mean, var],
                      epsilon=float(p["eps"]))
    # Batch statistics (a BatchNorm without running stats): the biased variance, as torch.
    axes = [0] + list(range(2, rank))
    mean = g.reduce("ReduceMean", x, axes, True)
    centred = g.node("Sub", [x, mean])
    var = g.reduce("ReduceMean", g.node("Mul", [centred, centred]), axes, True)
    std = g.node("Sqrt", [g.node("Add", [var, g.const(p["eps"], dtype)])])
    shape = g.ints(_per_channel_shape(rank))
    y = g.node("Mul", [g.node("Div", [centred, std]), g.node("Reshape", [scale, shape])])
    return g.node("Add", [y, g.node("Reshape", [bias, shape])])


# ----------------------------------------------------------------------------- linear algebra

def linear(g, op):
    x, weight = op.inputs[0], op.inputs[1]
    bias = op.inputs[2] if len(op.inputs) > 2 else None
    if len(op.in_shape(0)) == 2:
        return g.node("Gemm", [x, weight, bias], transB=1)
    y = g.node("MatMul", [x, g.node("Transpose", [weight], perm=[1, 0])])
    return g.node("Add", [y, bias]) if bias is not None else y


# ----------------------------------------------------------------------------- elementwise

def pow_scalar(g, op):
    return g.node("Pow", [op.inputs[0], g.const(op.params["p"], op.in_dtype(0))])


def clamp(g, op):
    dtype = op.in_dtype(0)
    lo, hi = op.params["lo"], op.params["hi"]
    return g.node("Clip", [op.inputs[0],
                           None if lo is None else g.const(lo, dtype),
                           None if hi is None else g.const(hi, dtype)])


def clamp_tensor(g, op):
    x, lo, hi = op.inputs
    return g.node("Min", [g.node("Max", [x, lo]), hi])


def leaky_relu(g, op):
    return g.node("LeakyRelu", op.inputs, alpha=float(op.params["negative_slope"]))


def cast(g, op):
    return g.node("Cast", op.inputs, to=_onnx_dtype(g, op.dtype))


def identity(g, op):
    return g.node("Identity", op.inputs[:1])


def dropout_in_training(g, op):
    raise op.fail("dropout in training mode (F.dropout(..., training=True)) cannot be "
                  "exported; the model's Dropout layers are removed in eval mode")


# ----------------------------------------------------------------------------- shapes

def _shape_spec(op, in1, in2, out1, out2):
    """The target shape for ONNX Reshape of a value shaped in1 (in2 in the check trace)
    to out1 (out2): a dynamic axis kept in place is 0 (copy the input's size), one that
    changes is -1; more than one changing is an error."""
    spec, inferred = list(out1), []
    for i in (i for i, (a, b) in enumerate(zip(out1, out2)) if a != b):
        if i < len(in1) and in1[i] == out1[i] and in2[i] == out2[i]:
            spec[i] = 0
        else:
            inferred.append(i)
    if len(inferred) > 1:
        raise op.fail(f"reshaping {tuple(in1)} to {tuple(out1)} moves more than one dynamic "
                      "axis; export with fixed sizes")
    for i in inferred:
        spec[i] = -1
    return spec


def _reshape_spec(op):
    return _shape_spec(op, op.in_shape(0), op.in_shape2(0), op.out_shape, op.out_shape2)


def reshape(g, op):
    in1, out1 = op.in_shape(0), op.out_shape
    if len(in1) > 2 and len(out1) == 2 and out1[0] == in1[0] and \
            out1[1] == math.prod(in1[1:]) and not any(a > 0 for a in op.dynamic_in(0)):
        return g.node("Flatten", op.inputs, axis=1)
    if 0 in out1 and op.dynamic_out:
        raise op.fail(f"reshape to {tuple(out1)} (an empty axis) with a dynamic axis")
    return g.node("Reshape", [op.inputs[0], g.ints(_reshape_spec(op))])


def permute(g, op):
    return g.node("Transpose", op.inputs, perm=list(op.params["dims"]))


def expand(g, op):
    in1, out1 = op.in_shape(0), list(op.out_shape)
    lead = len(out1) - len(in1)
    spec = list(out1)
    for i in op.dynamic_out:     # a dynamic axis the input already has: leave it (1)
        if i < lead or op.in_shape2(0)[i - lead] != op.out_shape2[i]:
            raise op.fail(f"expand of {tuple(in1)} to {tuple(out1)} along a dynamic axis")
        spec[i] = 1
    return g.node("Expand", [op.inputs[0], g.ints(spec)])


def cat(g, op):
    return g.node("Concat", op.inputs, axis=int(op.params["axis"]))


def constant_pad(g, op):
    widths = op.params["widths"]
    pads = [lo for lo, _ in widths] + [hi for _, hi in widths]
    value = g.const(op.params["value"], op.in_dtype(0))
    return g.node("Pad", [op.inputs[0], g.ints(pads), value], mode="constant")


def index_select(g, op):
    index = host(op.params["index"])
    if not np.array_equal(index, host(op.params2["index"])):
        raise op.fail("the selected indices depend on the input's values")
    return g.node("Gather", [op.inputs[0], g.const(index.astype(np.int64))],
                  axis=int(op.params["axis"]))


def _expand_ellipsis(index, ndim):
    parts = list(index)
    if any(p is Ellipsis for p in parts):
        at = next(i for i, p in enumerate(parts) if p is Ellipsis)
        used = sum(1 for p in parts if p is not None and p is not Ellipsis)
        parts[at:at + 1] = [slice(None)] * (ndim - used)
    return parts


def getitem(g, op):
    """Basic indexing: slices (one Slice), then ints (Gather, last axis first), then None
    (Unsqueeze). Index arrays and masks cannot be exported."""
    parts = _expand_ellipsis(op.params["index"], len(op.in_shape(0)))
    if any(not (p is None or isinstance(p, (slice, int, np.integer))) for p in parts):
        raise op.fail("indexing with index arrays or masks cannot be exported")
    x = op.inputs[0]
    starts, ends, axes, steps, ints, new_axes = [], [], [], [], [], []
    axis = out_pos = 0
    for p in parts:
        if p is None:
            new_axes.append(out_pos)
            out_pos += 1
            continue
        if isinstance(p, slice):
            step = 1 if p.step is None else int(p.step)
            if p != slice(None):
                starts.append((0 if step > 0 else -1) if p.start is None else int(p.start))
                ends.append((INT64_MAX if step > 0 else INT64_MIN) if p.stop is None
                            else int(p.stop))
                axes.append(axis)
                steps.append(step)
            out_pos += 1
        else:
            ints.append((axis, int(p)))
        axis += 1
    if axes:
        x = g.node("Slice", [x, g.ints(starts), g.ints(ends), g.ints(axes), g.ints(steps)])
    for axis, i in sorted(ints, reverse=True):
        x = g.node("Gather", [x, g.const(np.int64(i))], axis=axis)
    if new_axes:
        x = g.unsqueeze(x, new_axes)
    return x if x != op.inputs[0] else g.node("Identity", [x])


# ----------------------------------------------------------------------------- reductions

def _reduce(op_type):
    def convert(g, op):
        axes = list(op.params["axes"])
        if not axes:
            return g.node("Identity", op.inputs)
        return g.reduce(op_type, op.inputs[0], axes, op.params["keepdim"])
    return convert


def _var(g, op, take_sqrt):
    axes = list(op.params["axes"])
    if any(a in op.dynamic_in(0) for a in axes):
        raise op.fail("a variance over a dynamic axis cannot be exported (its count is fixed)")
    shape = op.in_shape(0)
    count = math.prod(shape[a] for a in axes)
    x = op.inputs[0]
    centred = g.node("Sub", [x, g.reduce("ReduceMean", x, axes, True)])
    total = g.reduce("ReduceSum", g.node("Mul", [centred, centred]), axes,
                     op.params["keepdim"])
    denominator = max(count - op.params["correction"], 0)
    y = g.node("Div", [total, g.const(denominator, op.dtype)])
    return g.node("Sqrt", [y]) if take_sqrt else y


def var(g, op):
    return _var(g, op, False)


def std(g, op):
    return _var(g, op, True)


def max_all(g, op):
    kind = "ReduceMax" if op.params["mode"] == "max" else "ReduceMin"
    return g.node(kind, op.inputs, keepdims=0)


def gather_dim(g, op):
    """The values of max/min along a dim (the index was taken from the input's values)."""
    x = host(op.traced.inputs[0].data)
    axis, keepdim = op.params["axis"], op.params["keepdim"]
    out = host(op.traced.output.data)
    out_keep = out if keepdim else np.expand_dims(out, axis)
    for kind, ref in (("ReduceMax", x.max(axis=axis, keepdims=True)),
                      ("ReduceMin", x.min(axis=axis, keepdims=True))):
        if np.array_equal(out_keep, ref, equal_nan=True):
            return g.reduce(kind, op.inputs[0], [axis], keepdim)
    raise op.fail("a gather along a dim that is not a max or min cannot be exported")


def log_sum_exp(g, op):
    return g.reduce("ReduceLogSumExp", op.inputs[0], list(op.params["axes"]),
                    op.params["keepdim"])


def _softmax(op_type):
    def convert(g, op):
        if op.params["axis"] is None:
            raise op.fail("softmax of a 0-d tensor")
        return g.node(op_type, op.inputs, axis=int(op.params["axis"]))
    return convert


# ----------------------------------------------------------------------------- more activations

def hardtanh(g, op):
    dtype = op.in_dtype(0)
    return g.node("Clip", [op.inputs[0], g.const(op.params["min_val"], dtype),
                           g.const(op.params["max_val"], dtype)])


def hardsigmoid(g, op):
    return g.node("HardSigmoid", op.inputs, alpha=1.0 / 6, beta=0.5)


def hardswish(g, op):
    if g.opset >= 14:
        return g.node("HardSwish", op.inputs)
    return g.node("Mul", [op.inputs[0], hardsigmoid(g, op)])


def silu(g, op):
    return g.node("Mul", [op.inputs[0], g.node("Sigmoid", op.inputs)])


def gelu(g, op):
    x, dtype = op.inputs[0], op.in_dtype(0)
    half_x = g.node("Mul", [x, g.const(0.5, dtype)])
    if op.params["approximate"] == "tanh":
        cube = g.node("Mul", [g.node("Mul", [x, x]), x])
        inner = g.node("Add", [x, g.node("Mul", [cube, g.const(0.044715, dtype)])])
        t = g.node("Tanh", [g.node("Mul", [inner, g.const(math.sqrt(2 / math.pi), dtype)])])
    else:
        t = g.node("Erf", [g.node("Mul", [x, g.const(math.sqrt(0.5), dtype)])])
    return g.node("Mul", [half_x, g.node("Add", [t, g.const(1.0, dtype)])])


def elu(g, op):
    """ELU, SELU and CELU as their ONNX ops; any other coefficients as the formula."""
    x, dtype = op.inputs[0], op.in_dtype(0)
    p = op.params
    alpha, scale, input_scale = p["alpha"], p.get("scale", 1.0), p.get("input_scale", 1.0)
    if scale == 1.0 and input_scale == 1.0:
        return g.node("Elu", [x], alpha=float(alpha))
    if input_scale == 1.0 and abs(alpha - 1.6732632423543772) < 1e-12 and \
            abs(scale - 1.0507009873554805) < 1e-12:
        return g.node("Selu", [x], alpha=float(alpha), gamma=float(scale))
    if scale == 1.0 and abs(input_scale * alpha - 1.0) < 1e-12:
        return g.node("Celu", [x], alpha=float(alpha))
    inner = g.node("Mul", [x, g.const(input_scale, dtype)])
    negative = g.node("Mul", [g.node("Sub", [g.node("Exp", [inner]), g.const(1.0, dtype)]),
                              g.const(alpha * scale, dtype)])
    positive = g.node("Mul", [x, g.const(scale, dtype)])
    return g.node("Where", [g.node("Greater", [x, g.const(0.0, dtype)]), positive, negative])


def softplus(g, op):
    x, dtype = op.inputs[0], op.in_dtype(0)
    beta, threshold = op.params["beta"], op.params["threshold"]
    bx = g.node("Mul", [x, g.const(beta, dtype)]) if beta != 1 else x
    soft = g.node("Softplus", [bx])
    if beta != 1:
        soft = g.node("Div", [soft, g.const(beta, dtype)])
    return g.node("Where", [g.node("Greater", [bx, g.const(threshold, dtype)]), x, soft])


def mish(g, op):
    x = op.inputs[0]
    return g.node("Mul", [x, g.node("Tanh", [g.node("Softplus", [x])])])


def prelu(g, op):
    x, weight = op.inputs
    rank, channels = len(op.in_shape(0)), math.prod(op.in_shape(1))
    if channels > 1 and rank > 2:
        weight = g.node("Reshape", [weight, g.ints([-1] + [1] * (rank - 2))])
    return g.node("PRelu", [x, weight])


def log_sigmoid(g, op):
    return g.node("Neg", [g.node("Softplus", [g.node("Neg", op.inputs)])])


def tanhshrink(g, op):
    return g.node("Sub", [op.inputs[0], g.node("Tanh", op.inputs)])


def threshold(g, op):
    x, dtype = op.inputs[0], op.in_dtype(0)
    return g.node("Where", [g.node("Greater", [x, g.const(op.params["threshold"], dtype)]), x,
                            g.const(op.params["value"], dtype)])


def shrink(g, op):
    lambd = float(op.params["lambd"])
    return g.node("Shrink", op.inputs, lambd=lambd, bias=lambd if op.params["soft"] else 0.0)


_UNARY = {"sin": "Sin", "cos": "Cos", "sign": "Sign", "floor": "Floor", "ceil": "Ceil",
          "round": "Round", "reciprocal": "Reciprocal"}


def unary(g, op):
    """The extra unary math ops (one Function with a `kind`)."""
    kind, x, dtype = op.params["kind"], op.inputs[0], op.in_dtype(0)
    if kind in _UNARY:
        return g.node(_UNARY[kind], [x])
    if kind == "square":
        return g.node("Mul", [x, x])
    if kind == "rsqrt":
        return g.node("Reciprocal", [g.node("Sqrt", [x])])
    if kind == "log1p":
        return g.node("Log", [g.node("Add", [x, g.const(1.0, dtype)])])
    if kind == "expm1":
        return g.node("Sub", [g.node("Exp", [x]), g.const(1.0, dtype)])
    if kind in ("log2", "log10"):
        return g.node("Div", [g.node("Log", [x]),
                              g.const(math.log(2.0 if kind == "log2" else 10.0), dtype)])
    if kind == "trunc":
        negative = g.node("Less", [x, g.const(0.0, dtype)])
        return g.node("Where", [negative, g.node("Ceil", [x]), g.node("Floor", [x])])
    raise op.fail(f"the unary op {kind!r} has no ONNX mapping")


# ----------------------------------------------------------------------------- more norms, shapes

def group_stat_norm(g, op):
    """LayerNorm / GroupNorm / InstanceNorm: rows of `group_shape` normalised by their own
    mean and biased variance, then the affine in `affine_shape` (see ops/norms.py)."""
    p, p2 = op.params, op.params2
    x, dtype = op.inputs[0], op.in_dtype(0)
    shape_of_x = g.node("Shape", [x])
    rows = g.node("Reshape", [x, g.ints(_shape_spec(op, op.in_shape(0), op.in_shape2(0),
                                                    p["group_shape"], p2["group_shape"]))])
    mean = g.reduce("ReduceMean", rows, [-1], True)
    centred = g.node("Sub", [rows, mean])
    var = g.reduce("ReduceMean", g.node("Mul", [centred, centred]), [-1], True)
    std = g.node("Sqrt", [g.node("Add", [var, g.const(p["eps"], dtype)])])
    y = g.node("Div", [centred, std])
    y = g.node("Reshape", [y, g.ints(_shape_spec(op, p["group_shape"], p2["group_shape"],
                                                 p["affine_shape"], p2["affine_shape"]))])
    rest, param_shape = list(op.inputs[1:]), g.ints(p["param_shape"])
    if p["has_weight"]:
        y = g.node("Mul", [y, g.node("Reshape", [rest.pop(0), param_shape])])
    if p["has_bias"]:
        y = g.node("Add", [y, g.node("Reshape", [rest.pop(0), param_shape])])
    return g.node("Reshape", [y, shape_of_x])


def reshape_permute(g, op):
    """pixel_shuffle / pixel_unshuffle / channel_shuffle: reshape, transpose, reshape."""
    p, p2 = op.params, op.params2
    split = g.node("Reshape", [op.inputs[0], g.ints(_shape_spec(
        op, op.in_shape(0), op.in_shape2(0), p["split_shape"], p2["split_shape"]))])
    moved = g.node("Transpose", [split], perm=list(p["perm"]))
    perm = list(p["perm"])
    moved1 = [p["split_shape"][i] for i in perm]
    moved2 = [p2["split_shape"][i] for i in perm]
    return g.node("Reshape", [moved, g.ints(_shape_spec(op, moved1, moved2, op.out_shape,
                                                        op.out_shape2))])


def narrow(g, op):
    axis, start, length = op.params["axis"], op.params["start"], op.params["length"]
    if axis in op.dynamic_in(0):
        raise op.fail("narrowing a dynamic axis cannot be exported")
    return g.node("Slice", [op.inputs[0], g.ints([start]), g.ints([start + length]),
                            g.ints([axis])])


def flip(g, op):
    axes = list(op.params["axes"])
    n = len(axes)
    return g.node("Slice", [op.inputs[0], g.ints([-1] * n), g.ints([INT64_MIN] * n),
                            g.ints(axes), g.ints([-1] * n)])


def repeat(g, op):
    sizes = list(op.params["sizes"])
    x = op.inputs[0]
    lead = len(sizes) - len(op.in_shape(0))
    if lead:
        x = g.unsqueeze(x, list(range(lead)))
    return g.node("Tile", [x, g.ints(sizes)])


def amax_dims(g, op):
    kind = "ReduceMax" if op.params["mode"] == "max" else "ReduceMin"
    return g.reduce(kind, op.inputs[0], list(op.params["axes"]), op.params["keepdim"])


def cumsum(g, op):
    return g.node("CumSum", [op.inputs[0], g.const(np.int64(op.params["axis"]))])


# ----------------------------------------------------------------------------- resize

def _onnx_linear_plan(in_size, out_size, scale, align_corners):
    """Source positions (idx0, lam1) of ONNX Resize linear for one axis, computed as
    onnxruntime does (float32)."""
    dst = np.arange(out_size, dtype=np.float32)
    if align_corners:
        real = dst * np.float32((in_size - 1) / (out_size - 1)) if out_size > 1 else dst * 0
    else:
        real = (dst + np.float32(0.5)) / np.float32(scale) - np.float32(0.5)
        if out_size == 1:
            real = dst * 0
        real = np.maximum(real, 0)
    idx0 = np.minimum(np.floor(real).astype(np.int64), in_size - 1)
    lam1 = np.clip(real - idx0, 0, 1)
    return idx0, lam1


def _recovered_scale(in_size, out_size, plan):
    """The scale torch used (scale_factor or out/in), from a half-pixel linear plan."""
    idx0, _, _, lam1 = plan
    last = out_size - 1
    real = float(idx0[last]) + float(lam1[last])
    if out_size > 1 and 0 < real and idx0[last] < in_size - 1:
        return (last + 0.5) / (real + 0.5)
    return out_size / in_size


def _resize_axis_attrs(in_size, out_size, plan, scale=None):
    """(mode, transform, rounding, scale) of an ONNX Resize giving exactly this axis'
    plan with that scale (default: the one torch used), or None when none does."""
    idx0, idx1, w0, w1 = plan
    if idx1 is None:            # nearest: asymmetric + floor, or half_pixel + round (exact)
        dst = np.arange(out_size, dtype=np.float32)
        scale = np.float32(out_size / in_size if scale is None else scale)
        for transform, rounding, src in (
                ("asymmetric", "floor", np.floor(dst / scale)),
                ("half_pixel", "round_prefer_ceil", np.floor((dst + 0.5) / scale))):
            if np.array_equal(np.minimum(src.astype(np.int64), in_size - 1), idx0):
                return "nearest", transform, rounding, float(scale)
        return None
    if scale is None:
        scale = _recovered_scale(in_size, out_size, plan)
    for align in (True, False):
        ref0, ref1 = _onnx_linear_plan(in_size, out_size, scale, align)
        if np.array_equal(ref0, idx0) and np.allclose(ref1, w1, atol=1e-5):
            return "linear", "align_corners" if align else "pytorch_half_pixel", None, scale
    return None


def _one_resize(attrs):
    return all(a is not None for a in attrs) and len({a[:3] for a in attrs}) == 1


def _gather_axis(g, x, axis, plan, dtype, rank):
    """One axis resized by its plan as gathers and weights (an exact fallback)."""
    idx0, idx1, w0, w1 = plan
    first = g.node("Gather", [x, g.const(np.asarray(idx0, np.int64))], axis=axis)
    if idx1 is None:
        return first
    shape = [-1] + [1] * (rank - 1 - axis)
    a = g.node("Mul", [first, g.const(np.asarray(w0, dtype).reshape(shape))])
    second = g.node("Gather", [x, g.const(np.asarray(idx1, np.int64))], axis=axis)
    return g.node("Add", [a, g.node("Mul", [second, g.const(np.asarray(w1, dtype)
                                                            .reshape(shape))])])


def interpolate(g, op):
    """One ONNX Resize when every axis matches one (nearest, bilinear with either
    align_corners): by scales when they give the traced sizes, else by sizes; otherwise
    per-axis gathers with torch's exact indices and weights."""
    plans = op.params["plans"]
    in_shape, rank, dtype = op.in_shape(0), len(op.in_shape(0)), op.in_dtype(0)
    first = rank - len(plans)
    if any(a >= first for a in op.dynamic_in(0)):
        raise op.fail("resizing a dynamic spatial axis cannot be exported")
    sizes = [(in_shape[first + k], op.out_shape[first + k]) for k in range(len(plans))]
    attrs = [_resize_axis_attrs(n, m, plan) for (n, m), plan in zip(sizes, plans)]
    if _one_resize(attrs) and all(math.floor(n * float(np.float32(a[3]))) == m
                                  for (n, m), a in zip(sizes, attrs)):
        mode, transform, rounding, _ = attrs[0]
        scales = g.const(np.asarray([1.0] * first + [a[3] for a in attrs], np.float32))
        return g.node("Resize", [op.inputs[0], None, scales], mode=mode,
                      coordinate_transformation_mode=transform, nearest_mode=rounding)
    attrs = [_resize_axis_attrs(n, m, plan, m / n) for (n, m), plan in zip(sizes, plans)]
    if _one_resize(attrs):
        mode, transform, rounding, _ = attrs[0]
        lead = g.node("Slice", [g.node("Shape", [op.inputs[0]]), g.ints([0]), g.ints([first])])
        target = g.node("Concat", [lead, g.ints([m for _, m in sizes])], axis=0)
        return g.node("Resize", [op.inputs[0], None, None, target], mode=mode,
                      coordinate_transformation_mode=transform, nearest_mode=rounding)
    x = op.inputs[0]
    for k in reversed(range(len(plans))):
        x = _gather_axis(g, x, first + k, plans[k], dtype, rank)
    return x


# ----------------------------------------------------------------------------- the table

CONVERTERS = {
    # convolution and pooling
    "Conv2d": conv2d,
    "ConvTranspose2d": conv_transpose2d,
    "MaxPool2d": max_pool2d,
    "AvgPool2d": avg_pool2d,
    "AdaptiveAvgPool2d": adaptive_avg_pool2d,
    "AdaptiveMaxPool2d": adaptive_max_pool2d,
    "BatchNorm": batch_norm,
    # linear algebra
    "Linear": linear,
    "MatMul": _same_as("MatMul"),
    # elementwise
    "Add": _same_as("Add"),
    "Sub": _same_as("Sub"),
    "Mul": _same_as("Mul"),
    "Div": _same_as("Div"),
    "Pow": _same_as("Pow"),
    "PowScalar": pow_scalar,
    "Neg": _same_as("Neg"),
    "Abs": _same_as("Abs"),
    "Exp": _same_as("Exp"),
    "Log": _same_as("Log"),
    "Sqrt": _same_as("Sqrt"),
    "Relu": _same_as("Relu"),
    "Sigmoid": _same_as("Sigmoid"),
    "Tanh": _same_as("Tanh"),
    "Clamp": clamp,
    "ClampTensor": clamp_tensor,
    "Maximum": _same_as("Max"),
    "Minimum": _same_as("Min"),
    "Where": _same_as("Where"),
    "LeakyRelu": leaky_relu,
    "Cast": cast,
    "Clone": identity,
    "ToDevice": identity,
    "MaskMultiply": dropout_in_training,
    # shapes
    "Reshape": reshape,
    "Permute": permute,
    "Expand": expand,
    "Cat": cat,
    "ConstantPad": constant_pad,
    "IndexSelect": index_select,
    "GetItem": getitem,
    # reductions
    "Sum": _reduce("ReduceSum"),
    "Mean": _reduce("ReduceMean"),
    "Var": var,
    "Std": std,
    "MaxAll": max_all,
    "GatherDim": gather_dim,
    "LogSumExp": log_sum_exp,
    "Softmax": _softmax("Softmax"),
    "LogSoftmax": _softmax("LogSoftmax"),
    # the coverage layers' ops
    "Hardtanh": hardtanh,
    "Hardsigmoid": hardsigmoid,
    "Hardswish": hardswish,
    "Silu": silu,
    "Gelu": gelu,
    "Elu": elu,
    "Softplus": softplus,
    "Mish": mish,
    "Prelu": prelu,
    "LogSigmoid": log_sigmoid,
    "Softsign": _same_as("Softsign"),
    "Tanhshrink": tanhshrink,
    "Threshold": threshold,
    "Shrink": shrink,
    "Unary": unary,
    "GroupStatNorm": group_stat_norm,
    "ReshapePermute": reshape_permute,
    "Narrow": narrow,
    "Flip": flip,
    "Repeat": repeat,
    "AmaxDims": amax_dims,
    "Cumsum": cumsum,
    "Interpolate": interpolate,
}
"""Traced op name -> converter. Adding an op is one entry (and, if it is not one ONNX op
of the same arity, one small function above)."""
