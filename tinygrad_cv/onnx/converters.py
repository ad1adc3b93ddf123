"""One small converter per traced op: `CONVERTERS[name](g, op)` adds the ONNX nodes of one
op to the graph `g` and returns the name of the value holding its output.

`op` (export.OpView) gives the op's input value names (`op.inputs`), its settings
(`op.params`), the shapes it saw in both traces (`op.in_shape(i)`, `op.out_shape`, and
`op.dynamic_out`: the output axes whose size changed with the input's dynamic axes), and
`op.fail(why)` for an ExportError naming the op and its layer. Ops missing from the
table cannot be exported (losses, dropout in training mode, ...).
"""
from __future__ import annotations

from . import convert_layers as layers
from . import convert_math as m
from . import convert_resize as resize
from . import convert_shapes as shapes

CONVERTERS = {
    # convolution, pooling, normalization, linear algebra
    "Conv2d": layers.conv2d,
    "ConvTranspose2d": layers.conv_transpose2d,
    "MaxPool2d": layers.max_pool2d,
    "AvgPool2d": layers.avg_pool2d,
    "AdaptiveAvgPool2d": layers.adaptive_avg_pool2d,
    "AdaptiveMaxPool2d": layers.adaptive_max_pool2d,
    "BatchNorm": layers.batch_norm,
    "GroupStatNorm": layers.group_stat_norm,       # LayerNorm, GroupNorm, InstanceNorm
    "Linear": layers.linear,
    "MatMul": m.same_as("MatMul"),
    # elementwise
    "Add": m.same_as("Add"),
    "Sub": m.same_as("Sub"),
    "Mul": m.same_as("Mul"),
    "Div": m.same_as("Div"),
    "Pow": m.same_as("Pow"),
    "PowScalar": m.pow_scalar,
    "Neg": m.same_as("Neg"),
    "Abs": m.same_as("Abs"),
    "Exp": m.same_as("Exp"),
    "Log": m.same_as("Log"),
    "Sqrt": m.same_as("Sqrt"),
    "Unary": m.unary,                              # square, rsqrt, sin, floor, ...
    "Maximum": m.same_as("Max"),
    "Minimum": m.same_as("Min"),
    "Where": m.same_as("Where"),
    "Cast": m.cast,
    "Clone": m.identity,
    "ToDevice": m.identity,
    "MaskMultiply": m.dropout_in_training,
    # activations
    "Relu": m.same_as("Relu"),
    "Sigmoid": m.same_as("Sigmoid"),
    "Tanh": m.same_as("Tanh"),
    "Clamp": m.clamp,
    "ClampTensor": m.clamp_tensor,
    "LeakyRelu": m.leaky_relu,
    "Hardtanh": m.hardtanh,                        # ReLU6 too
    "Hardsigmoid": m.hardsigmoid,
    "Hardswish": m.hardswish,
    "Silu": m.silu,
    "Gelu": m.gelu,
    "Elu": m.elu,                                  # ELU, SELU, CELU
    "Softplus": m.softplus,
    "Mish": m.mish,
    "Prelu": m.prelu,
    "LogSigmoid": m.log_sigmoid,
    "Softsign": m.same_as("Softsign"),
    "Tanhshrink": m.tanhshrink,
    "Threshold": m.threshold,
    "Shrink": m.shrink,                            # Hardshrink, Softshrink
    # reductions
    "Sum": m.reduce_op("ReduceSum"),
    "Mean": m.reduce_op("ReduceMean"),
    "Var": m.var,
    "Std": m.std,
    "MaxAll": m.max_all,
    "AmaxDims": m.amax_dims,
    "GatherDim": m.gather_dim,
    "LogSumExp": m.log_sum_exp,
    "Cumsum": m.cumsum,
    "Softmax": m.softmax_op("Softmax"),
    "LogSoftmax": m.softmax_op("LogSoftmax"),
    # shapes
    "Reshape": shapes.reshape,
    "Permute": shapes.permute,
    "Expand": shapes.expand,
    "Cat": shapes.cat,
    "ConstantPad": shapes.constant_pad,
    "IndexSelect": shapes.index_select,            # reflect / replicate / circular pads
    "GetItem": shapes.getitem,
    "Narrow": shapes.narrow,                       # chunk, split
    "Flip": shapes.flip,
    "Repeat": shapes.repeat,
    "ReshapePermute": shapes.reshape_permute,      # pixel (un)shuffle, channel shuffle
    "Interpolate": resize.interpolate,             # Upsample, F.interpolate
    "Roll": shapes.roll,
    # lookups and norms
    "EmbeddingLookup": m.embedding,
    "TakeAlong": m.take_along,                     # torch.gather
    "TriangleMask": m.triangle_mask,               # tril, triu
    "VectorNorm": m.vector_norm,                   # linalg.vector_norm, F.normalize, ...
}
"""Traced op (Function class) name -> converter. Adding an op is one entry here (and,
unless it is one ONNX op of the same arity, one small function in a convert_* module)."""
