"""Converters for elementwise math, activations and reductions (see converters.py)."""
from __future__ import annotations

import math

import numpy as np

from .graph import host


def same_as(name):
    """A converter for an op that is one ONNX op of the same arity."""
    def convert(g, op):
        return g.node(name, op.inputs)
    return convert


def _onnx_dtype(g, dtype):
    return g.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


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


# ----------------------------------------------------------------------------- reductions

def reduce_op(op_type):
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


def softmax_op(op_type):
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


def amax_dims(g, op):
    kind = "ReduceMax" if op.params["mode"] == "max" else "ReduceMin"
    return g.reduce(kind, op.inputs[0], list(op.params["axes"]), op.params["keepdim"])


def cumsum(g, op):
    return g.node("CumSum", [op.inputs[0], g.const(np.int64(op.params["axis"]))])


def vector_norm(g, op):
    """linalg.vector_norm for ord inf, -inf, 0, 1, 2 and any other p."""
    order, axes, keepdim = op.params["ord"], list(op.params["axes"]), op.params["keepdim"]
    x, dtype = op.inputs[0], op.in_dtype(0)
    if order == 2:
        return g.reduce("ReduceL2", x, axes, keepdim)
    if order == 1:
        return g.reduce("ReduceL1", x, axes, keepdim)
    if order in (math.inf, -math.inf):
        return g.reduce("ReduceMax" if order > 0 else "ReduceMin", g.node("Abs", [x]), axes,
                        keepdim)
    if order == 0:
        nonzero = g.node("Not", [g.node("Equal", [x, g.const(0.0, dtype)])])
        return g.reduce("ReduceSum", g.node("Cast", [nonzero], to=g.onnx.helper
                                            .np_dtype_to_tensor_dtype(np.dtype(dtype))),
                        axes, keepdim)
    powered = g.node("Pow", [g.node("Abs", [x]), g.const(order, dtype)])
    return g.node("Pow", [g.reduce("ReduceSum", powered, axes, keepdim),
                          g.const(1.0 / order, dtype)])


def embedding(g, op):
    """weight[index]: a Gather of the weight rows by the (traced) integer indices."""
    return g.node("Gather", [op.inputs[0], op.index_input("index")], axis=0)


def take_along(g, op):
    """take_along_axis (torch.gather) with an index that is a traced value or constant."""
    return g.node("GatherElements", [op.inputs[0], op.index_input("index")],
                  axis=int(op.params["axis"]))


def triangle_mask(g, op):
    """tril / triu of the last two dims: a constant mask (the last two dims are fixed)."""
    rows, cols = op.in_shape(0)[-2:]
    if any(a >= len(op.in_shape(0)) - 2 for a in op.dynamic_in(0)):
        raise op.fail("tril/triu over a dynamic axis cannot be exported")
    keep = (np.triu if op.params["upper"] else np.tril)(np.ones((rows, cols), bool),
                                                         op.params["diagonal"])
    return g.node("Where", [g.const(keep), op.inputs[0], g.const(0, op.in_dtype(0))])
