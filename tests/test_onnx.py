"""ONNX export (tinygrad_cv.onnx): every model, layer and port model exported with a
dynamic batch axis passes onnx.checker and runs in onnxruntime to our outputs (within
1e-5 of their scale) at two batch sizes; weights round-trip; what cannot be exported is
an error naming the op and its layer."""
from __future__ import annotations

import inspect
import io
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv import models, nn
from tinygrad_cv.nn import functional as F

onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed "
                           "(pip install -e '.[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed "
                          "(pip install -e '.[onnx]')")

from tinygrad_cv.onnx import ExportError, export  # noqa: E402

TOL = 1e-5
DYNAMIC = {"input": {0: "batch"}}


def _randomize_batch_norms(model, seed=0):
    """Non-trivial running statistics and affine parameters, so eval-mode BN is tested."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = m.num_features
            if m.running_mean is not None:
                m.running_mean.data[...] = rng.standard_normal(c) * 0.1
                m.running_var.data[...] = rng.uniform(0.5, 1.5, c)
            if m.weight is not None:
                m.weight.data[...] = rng.uniform(0.5, 1.5, c)
                m.bias.data[...] = rng.standard_normal(c) * 0.1
    return model


def to_onnx(model, x, **kwargs):
    buf = io.BytesIO()
    kwargs.setdefault("dynamic_axes", DYNAMIC)
    export(model, x, buf, **kwargs)
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    return proto, buf.getvalue()


def session(data):
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


def assert_close(ours, theirs, what):
    assert ours.shape == theirs.shape, (what, ours.shape, theirs.shape)
    scale = max(float(np.abs(ours).max()) if ours.size else 0.0, 1e-3)
    err = float(np.abs(ours - theirs).max()) if ours.size else 0.0
    assert err <= TOL * scale, f"{what}: max error {err:.3g} at scale {scale:.3g}"


def check_model(model, shape, batches=(2, 3), seed=0, dtype=np.float32):
    """Export with a dynamic batch axis at batch batches[0]; compare at every batch."""
    model.eval()
    rng = np.random.default_rng(seed)
    x = tc.Tensor(rng.standard_normal((batches[0],) + tuple(shape)).astype(dtype), dtype=dtype)
    proto, data = to_onnx(model, x)
    sess = session(data)
    for n in batches:
        xi = rng.standard_normal((n,) + tuple(shape)).astype(dtype)
        with tc.no_grad():
            ours = model(tc.Tensor(xi, dtype=dtype))
        ours = ours if isinstance(ours, (tuple, list)) else (ours,)
        theirs = sess.run(None, {"input": xi})
        assert len(theirs) == len(ours)
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_close(a.numpy(), b, f"{type(model).__name__} output {i} at batch {n}")
    return proto


# ----------------------------------------------------------------------------- bundled models

def _model_classes():
    return sorted({obj for _, obj in inspect.getmembers(models, inspect.isclass)
                   if issubclass(obj, nn.Module)} |
                  {obj for mod in (models.lenet, models.mlp, models.mnist_cnn)
                   for _, obj in inspect.getmembers(mod, inspect.isclass)
                   if issubclass(obj, nn.Module) and obj.__module__ == mod.__name__},
                  key=lambda c: c.__name__)


def _extra_model_classes():
    """Models in tinygrad_cv.models' own modules (resnet, vgg, mobilenet) when present."""
    import importlib
    import pkgutil
    found = []
    for info in pkgutil.iter_modules(models.__path__):
        mod = importlib.import_module(f"tinygrad_cv.models.{info.name}")
        for _, obj in inspect.getmembers(mod, inspect.isclass):
            if issubclass(obj, nn.Module) and obj.__module__ == mod.__name__:
                found.append(obj)
    return found


MODEL_INPUTS = {"MLP": (1, 28, 28), "LeNet5": (1, 28, 28), "MnistCNN": (1, 28, 28),
                "ResNet20": (3, 32, 32), "VGG11BN": (3, 32, 32), "MobileNetV2": (3, 32, 32)}
BLOCKS = {"BasicBlock": ((16, 32, 2), (16, 8, 8)),
          "InvertedResidual": ((16, 16, 6, 1), (16, 8, 8)),
          "SmallCNN": ((5,), (3, 16, 16))}


def _all_models():
    seen = {}
    for cls in _model_classes() + _extra_model_classes():
        seen.setdefault(cls.__name__, cls)
    return [seen[k] for k in sorted(seen)]


@pytest.mark.parametrize("cls", _all_models(), ids=lambda c: c.__name__)
def test_every_model_exports_and_matches(cls):
    if cls.__name__ == "InvertedResidual" or cls.__name__ == "MobileNetV2":
        if not hasattr(F, "relu6"):
            pytest.skip("F.relu6 (coverage branch) is not on this checkout yet")
    tc.manual_seed(0)
    if cls.__name__ in BLOCKS:
        ctor, shape = BLOCKS[cls.__name__]
        model = cls(*ctor)
    else:
        assert cls.__name__ in MODEL_INPUTS, f"add an input shape for the new model {cls}"
        model, shape = cls(), MODEL_INPUTS[cls.__name__]
    check_model(_randomize_batch_norms(model), shape)


def test_mnist_cnn_graph_uses_flatten_and_gemm_and_a_symbolic_batch():
    tc.manual_seed(0)
    proto = check_model(models.MnistCNN(), (1, 28, 28))
    ops = [n.op_type for n in proto.graph.node]
    assert ops == ["Conv", "Relu", "Conv", "Relu", "MaxPool", "Flatten", "Gemm", "Relu",
                   "Gemm", "LogSoftmax"]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [1, 28, 28]
    out_dims = proto.graph.output[0].type.tensor_type.shape.dim
    assert out_dims[0].dim_param == "batch" and out_dims[1].dim_value == 10


def test_non_module_model_is_rejected():
    with pytest.raises(TypeError, match="nn.Module"):
        export(models.Perceptron(), tc.zeros(2, 784), io.BytesIO())


# ----------------------------------------------------------------------------- layers alone

LAYERS = [
    ("linear", lambda: nn.Linear(6, 5), (6,)),
    ("linear_no_bias_3d", lambda: nn.Linear(6, 5, bias=False), (4, 6)),
    ("conv", lambda: nn.Conv2d(3, 4, 3), (3, 9, 9)),
    ("conv_stride_pad", lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1), (3, 10, 9)),
    ("conv_dilation_groups", lambda: nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2,
                                               bias=False), (4, 9, 9)),
    ("conv_depthwise", lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4), (4, 7, 7)),
    ("conv_same_even_kernel", lambda: nn.Conv2d(2, 3, 4, padding="same"), (2, 7, 7)),
    ("conv_rect", lambda: nn.Conv2d(2, 3, (1, 3), stride=(2, 1), padding=(0, 1)), (2, 7, 6)),
    ("conv_reflect", lambda: nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), (2, 6, 6)),
    ("conv_replicate", lambda: nn.Conv2d(2, 3, 3, padding=1, padding_mode="replicate"),
     (2, 6, 6)),
    ("conv_circular", lambda: nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular"),
     (2, 6, 6)),
    ("conv_transpose", lambda: nn.ConvTranspose2d(4, 3, 2, stride=2), (4, 5, 5)),
    ("conv_transpose_pads", lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1,
                                                       output_padding=1, groups=2),
     (4, 5, 6)),
    ("conv_transpose_dilation", lambda: nn.ConvTranspose2d(2, 3, 3, dilation=2, bias=False),
     (2, 4, 4)),
    ("maxpool", lambda: nn.MaxPool2d(2), (3, 8, 8)),
    ("maxpool_stride_pad", lambda: nn.MaxPool2d(3, stride=2, padding=1), (2, 9, 8)),
    ("maxpool_ceil", lambda: nn.MaxPool2d(3, stride=2, ceil_mode=True), (2, 8, 8)),
    ("maxpool_ceil_pad", lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
     (2, 8, 9)),
    ("maxpool_dilation", lambda: nn.MaxPool2d(2, stride=1, dilation=2), (2, 7, 7)),
    ("avgpool", lambda: nn.AvgPool2d(2), (3, 8, 8)),
    ("avgpool_pad", lambda: nn.AvgPool2d(3, stride=2, padding=1), (2, 9, 8)),
    ("avgpool_pad_exclude", lambda: nn.AvgPool2d(3, stride=2, padding=1,
                                                 count_include_pad=False), (2, 9, 8)),
    ("avgpool_ceil", lambda: nn.AvgPool2d(3, stride=2, ceil_mode=True), (2, 8, 8)),
    ("avgpool_ceil_pad", lambda: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True),
     (2, 8, 8)),
    ("avgpool_ceil_pad_exclude", lambda: nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True,
                                                      count_include_pad=False), (2, 8, 8)),
    ("avgpool_divisor", lambda: nn.AvgPool2d(2, divisor_override=3), (2, 6, 6)),
    ("adaptive_avg_global", lambda: nn.AdaptiveAvgPool2d(1), (3, 5, 7)),
    ("adaptive_avg_even", lambda: nn.AdaptiveAvgPool2d((2, 3)), (3, 6, 9)),
    ("adaptive_avg_uneven", lambda: nn.AdaptiveAvgPool2d((3, 4)), (2, 7, 9)),
    ("adaptive_max_global", lambda: nn.AdaptiveMaxPool2d(1), (3, 5, 7)),
    ("adaptive_max_even", lambda: nn.AdaptiveMaxPool2d(2), (3, 6, 4)),
    ("batchnorm2d", lambda: nn.BatchNorm2d(3), (3, 4, 4)),
    ("batchnorm2d_no_affine", lambda: nn.BatchNorm2d(3, affine=False), (3, 4, 4)),
    ("batchnorm2d_batch_stats", lambda: nn.BatchNorm2d(3, track_running_stats=False),
     (3, 4, 4)),
    ("batchnorm1d", lambda: nn.BatchNorm1d(5), (5,)),
    ("batchnorm1d_3d", lambda: nn.BatchNorm1d(4, eps=1e-3), (4, 6)),
    ("dropout", lambda: nn.Dropout(0.5), (7,)),
    ("relu", lambda: nn.ReLU(), (3, 4)),
    ("leaky_relu", lambda: nn.LeakyReLU(0.2), (3, 4)),
    ("sigmoid", lambda: nn.Sigmoid(), (3, 4)),
    ("tanh", lambda: nn.Tanh(), (3, 4)),
    ("softmax", lambda: nn.Softmax(dim=1), (5,)),
    ("softmax_last", lambda: nn.Softmax(dim=-1), (3, 5)),
    ("log_softmax", lambda: nn.LogSoftmax(dim=1), (5, 2)),
    ("flatten", lambda: nn.Flatten(), (2, 3, 4)),
    ("flatten_partial", lambda: nn.Flatten(2), (2, 3, 4)),
    ("unflatten", lambda: nn.Unflatten(1, (2, 3)), (6,)),
    ("identity", lambda: nn.Identity(), (3,)),
    ("sequential", lambda: nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)), (4,)),
]


if hasattr(nn, "ReLU6"):          # the coverage layers, once they are on this checkout
    LAYERS += [
        ("relu6", lambda: nn.ReLU6(), (3, 4)),
        ("relu6_inplace", lambda: nn.Sequential(nn.Linear(4, 4), nn.ReLU6(inplace=True)), (4,)),
        ("hardtanh", lambda: nn.Hardtanh(-0.5, 0.7), (3, 4)),
        ("hardsigmoid", lambda: nn.Hardsigmoid(), (3, 4)),
        ("hardswish", lambda: nn.Hardswish(), (3, 4)),
        ("silu", lambda: nn.SiLU(), (3, 4)),
        ("gelu", lambda: nn.GELU(), (3, 4)),
        ("gelu_tanh", lambda: nn.GELU(approximate="tanh"), (3, 4)),
        ("elu", lambda: nn.ELU(0.7), (3, 4)),
        ("selu", lambda: nn.SELU(), (3, 4)),
        ("celu", lambda: nn.CELU(0.5), (3, 4)),
        ("softplus", lambda: nn.Softplus(beta=2.0, threshold=1.5), (3, 4)),
        ("mish", lambda: nn.Mish(), (3, 4)),
        ("prelu", lambda: nn.PReLU(), (3, 4)),
        ("prelu_channels", lambda: nn.PReLU(3), (3, 4, 4)),
        ("logsigmoid", lambda: nn.LogSigmoid(), (3, 4)),
        ("softsign", lambda: nn.Softsign(), (3, 4)),
        ("tanhshrink", lambda: nn.Tanhshrink(), (3, 4)),
        ("threshold", lambda: nn.Threshold(0.1, -2.0), (3, 4)),
        ("hardshrink", lambda: nn.Hardshrink(0.3), (3, 4)),
        ("softshrink", lambda: nn.Softshrink(0.3), (3, 4)),
        ("glu", lambda: nn.GLU(dim=1), (6,)),
        ("softmin", lambda: nn.Softmin(dim=1), (5,)),
        ("softmax2d", lambda: nn.Softmax2d(), (3, 4, 4)),
        ("layernorm", lambda: nn.LayerNorm(4), (3, 4)),
        ("layernorm_2d", lambda: nn.LayerNorm([3, 4], elementwise_affine=False), (3, 4)),
        ("groupnorm", lambda: nn.GroupNorm(2, 4), (4, 3, 3)),
        ("instancenorm2d", lambda: nn.InstanceNorm2d(3), (3, 4, 4)),
        ("instancenorm2d_affine", lambda: nn.InstanceNorm2d(3, affine=True), (3, 4, 4)),
        ("instancenorm1d", lambda: nn.InstanceNorm1d(3), (3, 5)),
        ("dropout1d", lambda: nn.Dropout1d(), (3, 5)),
        ("dropout2d", lambda: nn.Dropout2d(), (3, 4, 4)),
        ("zeropad2d", lambda: nn.ZeroPad2d((1, 2, 0, 1)), (2, 3, 3)),
        ("zeropad1d", lambda: nn.ZeroPad1d(2), (2, 3)),
        ("constantpad1d", lambda: nn.ConstantPad1d(2, 0.5), (3, 5)),
        ("constantpad2d", lambda: nn.ConstantPad2d((1, 0, 2, 1), -1.0), (2, 3, 3)),
        ("reflectionpad1d", lambda: nn.ReflectionPad1d(2), (3, 5)),
        ("reflectionpad2d", lambda: nn.ReflectionPad2d((1, 2, 2, 1)), (2, 4, 4)),
        ("replicationpad1d", lambda: nn.ReplicationPad1d((1, 3)), (3, 5)),
        ("replicationpad2d", lambda: nn.ReplicationPad2d(2), (2, 4, 4)),
        ("circularpad1d", lambda: nn.CircularPad1d(2), (3, 5)),
        ("circularpad2d", lambda: nn.CircularPad2d((1, 2, 2, 1)), (2, 4, 4)),
        ("pixelshuffle", lambda: nn.PixelShuffle(2), (8, 3, 3)),
        ("pixelunshuffle", lambda: nn.PixelUnshuffle(2), (2, 4, 6)),
        ("channelshuffle", lambda: nn.ChannelShuffle(2), (4, 3, 3)),
        ("upsample_nearest", lambda: nn.Upsample(scale_factor=2), (2, 3, 4)),
        ("upsample_nearest_size", lambda: nn.Upsample(size=(5, 7)), (2, 3, 4)),
        ("upsample_nearest_exact", lambda: nn.Upsample(size=(5, 7), mode="nearest-exact"),
         (2, 3, 4)),
        ("upsample_bilinear", lambda: nn.Upsample(scale_factor=2, mode="bilinear"), (2, 3, 4)),
        ("upsample_bilinear_align", lambda: nn.Upsample(scale_factor=2, mode="bilinear",
                                                        align_corners=True), (2, 3, 4)),
        ("upsample_bilinear_size", lambda: nn.Upsample(size=(5, 9), mode="bilinear"),
         (2, 3, 4)),
        ("upsample_bilinear_fraction", lambda: nn.Upsample(scale_factor=1.5, mode="bilinear"),
         (2, 5, 4)),
        ("upsample_bilinear_down", lambda: nn.Upsample(size=(2, 3), mode="bilinear",
                                                       align_corners=True), (2, 5, 7)),
        ("upsample_linear_1d", lambda: nn.Upsample(scale_factor=3, mode="linear"), (2, 4)),
        ("upsampling_nearest2d", lambda: nn.UpsamplingNearest2d(scale_factor=2), (2, 3, 3)),
        ("upsampling_bilinear2d", lambda: nn.UpsamplingBilinear2d(scale_factor=2), (2, 3, 3)),
        ("lazy_linear", lambda: nn.LazyLinear(3), (4,)),
        ("lazy_conv", lambda: nn.LazyConv2d(3, 3), (2, 5, 5)),
        ("lazy_batchnorm2d", lambda: nn.LazyBatchNorm2d(), (3, 4, 4)),
        ("lazy_batchnorm1d", lambda: nn.LazyBatchNorm1d(), (3,)),
    ]


@pytest.mark.parametrize("name,make,shape", LAYERS, ids=[c[0] for c in LAYERS])
def test_every_layer_exports_and_matches(name, make, shape):
    tc.manual_seed(1)
    check_model(_randomize_batch_norms(make(), seed=1), shape)


class SelfAttention(nn.Module):
    """nn.MultiheadAttention takes (query, key, value) and returns (output, weights)."""

    def __init__(self):
        super().__init__()
        self.mha = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        return self.mha(x, x, x, need_weights=False)[0]


def test_multihead_self_attention_exports_and_matches():
    tc.manual_seed(0)
    check_model(SelfAttention(), (5, 8))


def test_every_layer_of_nn_is_covered_or_declared_unexportable():
    """A new layer in nn must get a line in LAYERS (or be a loss / container)."""
    covered = {type(make()).__name__ for _, make, _ in LAYERS} | {"MultiheadAttention"}
    if hasattr(nn, "Embedding"):      # layers taking integer or two inputs: own tests below
        covered |= {type(m).__name__ for net in (EmbedNet(), PairNet()) for m in net.modules()}
    not_layers = {"Module", "Parameter", "ModuleList", "ModuleDict", "ParameterList",
                  "ParameterDict", "UninitializedParameter", "UninitializedBuffer"}
    not_layers |= {n for n in nn.__all__ if n.endswith("Loss")}
    missing = [n for n in nn.__all__ if isinstance(getattr(nn, n), type) and
               issubclass(getattr(nn, n), nn.Module) and n not in covered | not_layers]
    assert not missing, f"layers without an ONNX export test: {missing}"


# ----------------------------------------------------------------------------- functional ops

class Fn(nn.Module):
    """A forward from a lambda, for functional ops."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


FUNCTIONS = [
    ("arith_scalars", lambda x: (x * 2.0 + 1.0) / 3.0 - x, (3, 4)),
    ("rsub_rdiv", lambda x: 1.0 - 2.0 / (x.abs() + 1.0), (3, 4)),
    ("pow_exp_log_sqrt", lambda x: (x ** 2 + 1.0).sqrt().log() + (-x).exp() * 0.1, (3, 4)),
    ("pow_tensor", lambda x: (x.abs() + 0.5) ** (x * 0.1), (3, 4)),
    ("clamp", lambda x: x.clamp(-0.5, 0.7) + x.clamp(min=0.1) + x.clamp(max=0.2), (3, 4)),
    ("max_min", lambda x: tc.maximum(x, x * 0.5) - tc.minimum(x, 0.1 * x), (3, 4)),
    ("matmul", lambda x: x @ x.transpose(1, 2), (3, 4)),
    ("permute", lambda x: x.permute(0, 2, 3, 1).reshape(x.shape[0], -1), (2, 3, 4)),
    ("view_merge_batch", lambda x: x.reshape(-1, 4) * 2.0, (3, 4)),
    ("view_split", lambda x: x.view(x.shape[0], 2, 6).sum(dim=2), (12,)),
    ("squeeze_unsqueeze", lambda x: x.unsqueeze(1).unsqueeze(-1).squeeze(-1), (3, 4)),
    ("expand", lambda x: x.mean(dim=1, keepdim=True).expand(-1, 5, 4) + x, (5, 4)),
    ("cat", lambda x: tc.cat([x, x * 2.0, x[:, :1]], dim=1), (3, 4)),
    ("stack", lambda x: tc.stack([x, -x], dim=1), (3,)),
    ("slice", lambda x: x[:, 1:3, ::2] + x[:, :2, -3:] + x[:, 2:, 1::2][..., :1], (4, 5)),
    ("int_index", lambda x: x[:, 0] * x[:, -1, None], (3, 4)),
    ("ellipsis", lambda x: x[..., 1:] - x[..., :-1], (3, 4)),
    ("pad_constant", lambda x: F.pad(x, (1, 2, 0, 1), value=0.5), (2, 3, 3)),
    ("pad_crop", lambda x: F.pad(x, (-1, 1, 1, -1)), (2, 4, 4)),
    ("pad_reflect", lambda x: F.pad(x, (2, 1, 1, 2), mode="reflect"), (2, 4, 4)),
    ("reductions", lambda x: x.sum(dim=1) + x.mean(dim=(1, 2)).unsqueeze(1) * 0 +
     x.var(dim=2).sum(dim=1, keepdim=True), (3, 4)),
    ("std_unbiased", lambda x: x.std(dim=-1, keepdim=True) + x, (3, 5)),
    ("max_dim", lambda x: x.max(dim=1)[0] - x.min(dim=-1)[0].sum(dim=1, keepdim=True),
     (4, 5)),
    ("logsumexp", lambda x: x.logsumexp(dim=1), (4, 5)),
    ("softmax_functional", lambda x: F.softmax(x, dim=1) + F.log_softmax(x, dim=-1), (4, 5)),
    ("where_tensor_cast", lambda x: (x * 3.0).double().float() + 1, (3,)),
    ("mean_all_batch", lambda x: x - x.mean(), (3,)),
]


@pytest.mark.parametrize("name,fn,shape", FUNCTIONS, ids=[c[0] for c in FUNCTIONS])
def test_functional_ops_export_and_match(name, fn, shape):
    check_model(Fn(fn), shape)


@pytest.mark.skipif(not hasattr(nn, "Upsample"), reason="nn.Upsample (coverage) not here yet")
@pytest.mark.parametrize("make,shape", [
    (lambda: nn.Upsample(scale_factor=1.5, mode="bilinear"), (2, 5, 4)),
    (lambda: nn.Upsample(size=(5, 7)), (2, 3, 4)),
    (lambda: nn.Upsample(size=(5, 7), mode="bilinear", align_corners=True), (2, 3, 4))])
def test_resize_fallback_gathers_match(monkeypatch, make, shape):
    """Where no ONNX Resize reproduces torch's indices, gathers with the exact weights."""
    from tinygrad_cv.onnx import convert_resize
    monkeypatch.setattr(convert_resize, "_one_resize", lambda attrs: False)
    proto = check_model(make(), shape)
    assert "Resize" not in {n.op_type for n in proto.graph.node}


def test_float64_model_exports_in_float64():
    """(onnxruntime's CPU Conv has no float64 kernel, so the model is dense.)"""
    tc.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.Tanh(), nn.Linear(5, 2),
                          nn.LogSoftmax(dim=1)).double()
    proto = check_model(model, (3, 4), dtype=np.float64)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE


def test_unbatched_conv_and_pool_inputs():
    tc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.MaxPool2d(2),
                          nn.ConvTranspose2d(3, 2, 2, stride=2), nn.AvgPool2d(2))
    model.eval()
    x = tc.Tensor(np.random.default_rng(0).standard_normal((2, 6, 6)).astype(np.float32))
    _, data = to_onnx(model, x, dynamic_axes=None)
    with tc.no_grad():
        ours = model(x).numpy()
    assert_close(ours, session(data).run(None, {"input": x.numpy()})[0], "unbatched")


def test_fixed_batch_export_has_static_shapes():
    model = nn.Sequential(nn.Linear(4, 3), nn.Flatten(0))
    _, data = to_onnx(model, tc.ones(2, 4), dynamic_axes=None)
    proto = onnx.load_from_string(data)
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == [2, 4]
    assert [d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim] == [6]


# ----------------------------------------------------------------------------- port models

class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock, with a 1x1 projection shortcut when needed."""

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class TinyResNet(nn.Module):
    def __init__(self, num_classes=5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 8))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, 2), BasicBlock(16, 16))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        x = tc.flatten(self.avgpool(x), 1) if hasattr(tc, "flatten") else \
            self.avgpool(x).flatten(1)
        return self.fc(x)


class VGGBlockNet(nn.Module):
    """VGG-BN: conv-BN-ReLU twice, max-pool, then a classifier with dropout."""

    def __init__(self):
        super().__init__()
        layers, c = [], 3
        for v in (8, 8, "M", 16, 16, "M"):
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(c, v, kernel_size=3, padding=1), nn.BatchNorm2d(v),
                           nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = nn.Sequential(nn.Linear(16 * 4, 32), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(32, 4))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        x = x.view(x.size(0), -1)
        return self.classifier(x)


class InvertedResidual(nn.Module):
    """MobileNetV2's block: expand 1x1, depthwise 3x3, project 1x1, residual."""

    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = inp * expand_ratio
        self.use_res_connect = stride == 1 and inp == oup
        self.conv = nn.Sequential(
            nn.Conv2d(inp, hidden, 1, 1, 0, bias=False), nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup))

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class UNetTransposed(nn.Module):
    """A two-level U-Net: down by max-pool, up by ConvTranspose2d, F.pad to the skip's
    size (odd input), cat with the skip."""

    def __init__(self):
        super().__init__()
        self.enc1 = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.enc2 = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)
        self.dec = nn.Sequential(nn.Conv2d(8, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(4, 3, 1)

    def forward(self, x):
        skip = self.enc1(x)
        y = self.up(self.enc2(self.pool(skip)))
        dy, dx = skip.shape[2] - y.shape[2], skip.shape[3] - y.shape[3]
        y = F.pad(y, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.head(self.dec(tc.cat([skip, y], dim=1)))


class UNetBilinear(nn.Module):
    """The U-Net's other way up: bilinear Upsample (align_corners=True, as the popular
    Pytorch-UNet), F.pad to the skip's size, cat."""

    def __init__(self):
        super().__init__()
        self.inc = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4),
                                 nn.ReLU(inplace=True))
        self.down = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(4, 8, 3, padding=1),
                                  nn.GroupNorm(2, 8), nn.SiLU())
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.conv = nn.Sequential(nn.Conv2d(12, 4, 3, padding=1), nn.ReLU(inplace=True))
        self.outc = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.up(self.down(x1))
        dy, dx = x1.size(2) - x2.size(2), x1.size(3) - x2.size(3)
        x2 = F.pad(x2, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.outc(self.conv(tc.cat([x2, x1], dim=1)))


class TwoOutputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 3)

    def forward(self, x):
        y = self.body(x)
        return y, F.softmax(y, dim=1)


PORTS = [
    ("resnet_basic_blocks", TinyResNet, (3, 16, 16)),
    ("vgg_bn", VGGBlockNet, (3, 8, 8)),
    ("unet_conv_transpose_pad_cat", UNetTransposed, (2, 9, 11)),
    ("mobilenet_v2_block", lambda: InvertedResidual(8, 8, 1, 4), (8, 6, 6)),
    ("mobilenet_v2_block_stride", lambda: InvertedResidual(8, 12, 2, 6), (8, 7, 7)),
    ("two_outputs", TwoOutputs, (4,)),
    ("unet_bilinear_upsample_pad_cat", lambda: UNetBilinear(), (2, 9, 10)),
    ("inplace_on_the_input", lambda: Fn(lambda x: F.relu6(x, inplace=True) * 2.0), (3, 4)),
]


@pytest.mark.parametrize("name,make,shape", PORTS, ids=[c[0] for c in PORTS])
def test_port_models_export_and_match(name, make, shape):
    if name.startswith(("mobilenet", "unet_bilinear", "inplace")) and not hasattr(nn, "ReLU6"):
        pytest.skip("the coverage layers (ReLU6, Upsample, ...) are not on this checkout yet")
    tc.manual_seed(2)
    check_model(_randomize_batch_norms(make(), seed=2), shape)


# ----------------------------------------------------------------------------- weights, modes

def test_initializers_are_the_state_dict():
    tc.manual_seed(0)
    model = _randomize_batch_norms(TinyResNet())
    proto, _ = to_onnx(model.eval(), tc.ones(2, 3, 16, 16))
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    state = model.state_dict()
    for key, _ in model.named_parameters():
        assert key in inits, key
    for key in [k for k in state if k.endswith(("running_mean", "running_var"))]:
        assert key in inits, key
    for key, arr in inits.items():
        if key in state:
            np.testing.assert_array_equal(arr, state[key].numpy(), err_msg=key)
    # Loading the initializers back gives the same model outputs.
    twin = TinyResNet()
    twin.load_state_dict({k: v for k, v in inits.items() if k in state}, strict=False)
    twin.eval()
    x = tc.Tensor(np.random.default_rng(3).standard_normal((2, 3, 16, 16)).astype(np.float32))
    with tc.no_grad():
        np.testing.assert_allclose(twin(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)


def test_modes_are_restored_and_batch_norm_stats_untouched():
    tc.manual_seed(0)
    model = TinyResNet()
    model.train()
    model.fc.eval()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    to_onnx(model, tc.ones(2, 3, 16, 16))
    assert model.training and model.layer1.training and not model.fc.training
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)
    assert all(p.grad is None for p in model.parameters())
    assert "forward" not in vars(model.layer1)    # the layer tracker leaves nothing behind


def test_names_and_file_path(tmp_path):
    model = TwoOutputs().eval()
    path = tmp_path / "two.onnx"
    export(model, tc.ones(2, 4), str(path), input_names=["x"], output_names=["logits", "p"],
           dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}, "p": [0]})
    assert sorted(os.listdir(tmp_path)) == ["two.onnx"]      # no temporary file left
    proto = onnx.load(str(path))
    assert [i.name for i in proto.graph.input] == ["x"]
    assert [o.name for o in proto.graph.output] == ["logits", "p"]
    assert proto.graph.output[1].type.tensor_type.shape.dim[0].dim_param == "p_dynamic_axes_1"
    out = session(str(path)).run(None, {"x": np.ones((5, 4), np.float32)})
    assert out[0].shape == (5, 3) and out[1].shape == (5, 3)


@pytest.mark.parametrize("opset", [13, 17, 18])
def test_opsets(opset):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, track_running_stats=False),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          Fn(lambda x: x.sum(dim=1, keepdim=True) + x.mean(dim=1, keepdim=True)))
    proto = check_model(model, (1, 6, 6)) if opset == 17 else None
    if proto is None:
        buf = io.BytesIO()
        export(model.eval(), tc.ones(2, 1, 6, 6), buf, dynamic_axes=DYNAMIC,
               opset_version=opset)
        proto = onnx.load_from_string(buf.getvalue())
        onnx.checker.check_model(proto)
        x = np.random.default_rng(0).standard_normal((3, 1, 6, 6)).astype(np.float32)
        with tc.no_grad():
            ours = model(tc.Tensor(x)).numpy()
        assert_close(ours, session(buf.getvalue()).run(None, {"input": x})[0], f"opset {opset}")
    assert proto.opset_import[0].version == opset


def test_bad_arguments():
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="opset_version"):
        export(model, tc.ones(1, 2), io.BytesIO(), opset_version=7)
    with pytest.raises(ValueError, match="dynamic_axes"):
        export(model, tc.ones(1, 2), io.BytesIO(), dynamic_axes={"nope": {0: "b"}})
    with pytest.raises(ValueError, match="out of range"):
        export(model, tc.ones(1, 2), io.BytesIO(), dynamic_axes={"input": {2: "b"}})
    with pytest.raises(TypeError, match="args"):
        export(model, np.ones((1, 2)), io.BytesIO())


# ----------------------------------------------------------------------------- what cannot export

class WithLoss(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 3), Fn(lambda x: F.cross_entropy(
            x, tc.Tensor(np.zeros(x.shape[0], np.int64)))))

    def forward(self, x):
        return self.body(x)


def test_unexportable_op_names_the_layer():
    with pytest.raises(ExportError, match=r"CrossEntropy in layer 'body\.1' \(Fn"):
        export(WithLoss(), tc.ones(2, 4), io.BytesIO())


def test_dropout_forced_on_names_the_layer():
    model = nn.Sequential(nn.Linear(4, 4), Fn(lambda x: F.dropout(x, 0.5, training=True)))
    with pytest.raises(ExportError, match=r"MaskMultiply in layer '1'.*dropout in training"):
        export(model, tc.ones(2, 4), io.BytesIO())


def test_value_computed_outside_the_trace_is_refused():
    """A comparison's mask is computed by NumPy, outside the traced ops: freezing it as a
    constant would be silently wrong, so export refuses."""
    model = nn.Sequential(nn.Linear(4, 4), Fn(lambda x: tc.where(x > 0, x, x * 0.1)))
    with pytest.raises(ExportError, match=r"Where in layer '1'.*outside the traced ops"):
        export(model, tc.ones(2, 4), io.BytesIO())


def test_data_dependent_control_flow_is_refused():
    model = Fn(lambda x: x * 2.0 if float(x[0, 0]) == 1.0 else -x)
    with pytest.raises(ExportError, match="control flow"):
        export(model, tc.ones(2, 4), io.BytesIO())


def test_new_tensor_of_the_batch_size():
    """tc.zeros(batch, ...) in a forward becomes ConstantOfShape of the run-time batch;
    a non-constant one (arange) of the batch size is refused."""
    model = Fn(lambda x: x + tc.full((x.shape[0], 4), 0.5))
    proto = check_model(model, (4,))
    assert "ConstantOfShape" in {n.op_type for n in proto.graph.node}
    ramp = Fn(lambda x: x + tc.arange(x.shape[0] * 4).reshape(x.shape[0], 4))
    with pytest.raises(ExportError, match="outside the traced ops"):
        export(ramp, tc.ones(2, 4), io.BytesIO(), dynamic_axes=DYNAMIC)
    # Without a dynamic axis the same model exports (the ramp is a constant).
    _, data = to_onnx(ramp, tc.ones(2, 4), dynamic_axes=None)
    assert session(data).run(None, {"input": np.ones((2, 4), np.float32)})[0].shape == (2, 4)


def test_advanced_indexing_names_the_layer():
    model = nn.Sequential(nn.Linear(4, 4), Fn(lambda x: x[:, [0, 2]]))
    with pytest.raises(ExportError, match=r"GetItem in layer '1'.*index arrays"):
        export(model, tc.ones(2, 4), io.BytesIO())


# ----------------------------------------------------------------------------- optional extra

def test_importing_tinygrad_cv_never_imports_onnx(tmp_path):
    """Poisoned `onnx`/`onnxruntime` packages on the path prove nothing imports them until
    export runs (and then export reports the broken package, not tinygrad_cv)."""
    for name in ("onnx", "onnxruntime"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise RuntimeError('{name} imported')\n")
    code = textwrap.dedent("""
        import tinygrad_cv, tinygrad_cv.onnx, tinygrad_cv.cli
        from tinygrad_cv import nn
        try:
            tinygrad_cv.onnx.export(nn.Linear(2, 2), tinygrad_cv.ones(1, 2), 'x.onnx')
        except RuntimeError as exc:
            assert 'onnx imported' in str(exc), exc
        else:
            raise AssertionError('export ran without onnx')
    """)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), root]))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "x.onnx").exists()


# ----------------------------------------------------------------------------- command line

def _digit_png(path):
    from PIL import Image
    img = np.full((40, 40), 255, np.uint8)
    img[8:32, 18:23] = 0
    Image.fromarray(img).save(path)
    return str(path)


def test_cli_export_then_predict_with_onnxruntime(tmp_path, capsys):
    from tinygrad_cv.cli import main
    from tinygrad_cv.train import weights_metadata
    tc.manual_seed(0)
    weights = str(tmp_path / "cnn.safetensors")
    tc.save(models.MnistCNN().state_dict(), weights,
            metadata=weights_metadata("mnist_cnn", "fashion-mnist"))
    out = str(tmp_path / "cnn.onnx")
    assert main(["export", weights, out]) == 0
    captured = capsys.readouterr()
    assert "input 'input' of shape (batch, 1, 28, 28)" in captured.out
    assert "checked in onnxruntime" in captured.out and captured.err == ""
    proto = onnx.load(out)
    onnx.checker.check_model(proto)
    assert any(p.key == "tinygrad_cv" for p in proto.metadata_props)
    image = _digit_png(tmp_path / "d.png")
    assert main(["predict", weights, image, image]) == 0
    ours = capsys.readouterr().out
    assert main(["predict", "--onnx", out, image, image]) == 0
    theirs = capsys.readouterr()
    assert theirs.out == ours and theirs.err == ""
    labels = {line.split(": ", 1)[1].split(" (")[0] for line in theirs.out.splitlines()}
    assert labels <= set(weights_metadata("mlp", "fashion-mnist")["classes"])
    # A fixed batch of 2 still classifies 3 images (in padded chunks).
    fixed = str(tmp_path / "fixed.onnx")
    assert main(["export", weights, fixed, "--batch", "2", "--opset", "13"]) == 0
    capsys.readouterr()
    assert main(["predict", "--onnx", fixed, image, image, image]) == 0
    assert capsys.readouterr().out.splitlines() == ours.splitlines() + ours.splitlines()[:1]
    assert sorted(os.listdir(tmp_path)) == ["cnn.onnx", "cnn.safetensors", "d.png",
                                            "fixed.onnx"]


@pytest.mark.parametrize("argv,message", [
    (["export", "{w}", "{tmp}/nodir/x.onnx"], "does not exist"),
    (["export", "{w}", "{tmp}/x.onnx", "--opset", "99"], "opset_version"),
    (["export", "{w}", "{tmp}/x.onnx", "--batch", "zero"], "'dynamic' or a positive int"),
    (["export", "{tmp}/missing.safetensors", "{tmp}/x.onnx"], "missing.safetensors"),
    (["predict", "--onnx", "{tmp}/nope.onnx", "{img}"], "no such file"),
    (["predict", "--onnx", "{img}", "{img}"], "onnxruntime cannot load it"),
    (["predict", "--onnx", "{tmp}/m.onnx", "{img}", "--device", "cuda"], "on the CPU"),
    (["predict", "--onnx", "{tmp}/m.onnx", "{img}", "--dataset", "fashion-mnist"],
     "exported from mnist weights"),
    (["predict", "{w}"], "no image files"),
])
def test_cli_export_errors_are_one_line(tmp_path, capsys, argv, message):
    from tinygrad_cv.cli import main
    from tinygrad_cv.train import weights_metadata
    weights = str(tmp_path / "mlp.safetensors")
    tc.save(models.MLP().state_dict(), weights, metadata=weights_metadata("mlp", "mnist"))
    image = _digit_png(tmp_path / "d.png")
    assert main(["export", weights, str(tmp_path / "m.onnx")]) == 0
    capsys.readouterr()
    argv = [a.format(w=weights, tmp=tmp_path, img=image) for a in argv]
    try:
        status = main(argv)
    except SystemExit as exc:        # argparse's own errors
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "x.onnx").exists()


def _coverage_port_source():
    try:
        from tests import test_coverage_port as port
    except ImportError:
        return None
    return port if hasattr(port, "build") and hasattr(port, "OUR_IMPORTS") else None


COVERAGE_PORTS = [
    ("zoo", lambda ns: ns["Zoo"](), (3, 16, 16)),
    ("tiny_unet", lambda ns: ns["TinyUNet"](), (3, 11, 13)),
    ("vgg_block_subpixel_head", lambda ns: ns["nn"].Sequential(ns["VGGBlock"](3, 8),
                                                               ns["SRHead"](8)), (3, 8, 10)),
]


@pytest.mark.parametrize("name,make,shape", COVERAGE_PORTS, ids=[c[0] for c in COVERAGE_PORTS])
def test_coverage_port_models_export_and_match(name, make, shape):
    """The coverage issue's port test models (tests/test_coverage_port.py's source text,
    unchanged), in float32 with a dynamic batch."""
    port = _coverage_port_source()
    if port is None:
        pytest.skip("tests/test_coverage_port.py (coverage branch) is not on this checkout yet")
    tc.manual_seed(3)
    model = make(port.build(port.OUR_IMPORTS))
    check_model(_randomize_batch_norms(model, seed=3), shape)


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 3)
        self.b = nn.Linear(2, 3)

    def forward(self, x, y):
        return F.log_softmax(self.a(x) * self.b(y).sigmoid(), dim=1)


def test_two_inputs_with_dynamic_batches():
    model = TwoInputs().eval()
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    export(model, (tc.ones(2, 4), tc.ones(2, 2)), buf,
           dynamic_axes={"input_0": {0: "n"}, "input_1": {0: "n"}})
    onnx.checker.check_model(onnx.load_from_string(buf.getvalue()), full_check=True)
    sess = session(buf.getvalue())
    assert [i.name for i in sess.get_inputs()] == ["input_0", "input_1"]
    for n in (1, 4):
        x = rng.standard_normal((n, 4)).astype(np.float32)
        y = rng.standard_normal((n, 2)).astype(np.float32)
        with tc.no_grad():
            ours = model(tc.Tensor(x), tc.Tensor(y)).numpy()
        assert_close(ours, sess.run(None, {"input_0": x, "input_1": y})[0], f"batch {n}")


def test_integer_input_used_as_indices_is_refused():
    """Indices taken from an integer input's values would be frozen into the graph."""
    class Pick(nn.Module):
        def forward(self, x, idx):
            return x.index_select(1, idx)

    with pytest.raises(ExportError, match="IndexSelect.*depend on the input"):
        export(Pick(), (tc.ones(2, 4), tc.Tensor(np.array([0, 3]))), io.BytesIO())


def test_torch_keywords():
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    buf = io.BytesIO()
    export(model, tc.ones(2, 3), buf, export_params=True, do_constant_folding=True,
           keep_initializers_as_inputs=True, opset_version=None)
    proto = onnx.load_from_string(buf.getvalue())
    assert [i.name for i in proto.graph.input] == ["input", "0.weight", "0.bias"]
    assert proto.opset_import[0].version == 17
    with pytest.raises(ValueError, match="export_params=False"):
        export(model, tc.ones(2, 3), io.BytesIO(), export_params=False)


def test_rank_depending_on_the_batch_is_refused():
    model = Fn(lambda x: x.squeeze() * 2.0)
    with pytest.raises(ExportError, match="dims for the traced input"):
        export(model, tc.ones(1, 4), io.BytesIO(), dynamic_axes=DYNAMIC)


# ----------------------------------------------------------------------------- lookups, norms

class EmbedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4, padding_idx=0)
        self.fc = nn.Linear(4, 2)

    def forward(self, idx):
        return self.fc(self.emb(idx).mean(dim=1))


def test_embedding_takes_the_integer_input():
    tc.manual_seed(0)
    model = EmbedNet().eval()
    idx = tc.Tensor(np.array([[1, 2, 3], [4, 5, 9]]))
    proto, data = to_onnx(model, idx)
    assert "Gather" in {n.op_type for n in proto.graph.node}
    sess = session(data)
    rng = np.random.default_rng(0)
    for n in (2, 5):
        x = rng.integers(0, 10, (n, 3))
        with tc.no_grad():
            ours = model(tc.Tensor(x)).numpy()
        assert_close(ours, sess.run(None, {"input": x})[0], f"embedding batch {n}")


class PairNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.cos = nn.CosineSimilarity(dim=1)
        self.dist = nn.PairwiseDistance(p=3.0, keepdim=True)
        self.dist2 = nn.PairwiseDistance()

    def forward(self, x):
        a, b = x[:, 0], x[:, 1]
        return self.cos(a, b).unsqueeze(1) + self.dist(a, b) + self.dist2(a, b).unsqueeze(1)


TENSOR_FUNCTIONS = [
    ("distances", PairNet, (2, 5)),
    ("normalize", lambda: Fn(lambda x: F.normalize(x, dim=1)), (5,)),
    ("vector_norms", lambda: Fn(lambda x: tc.linalg.vector_norm(x, 1, dim=1) +
                                tc.linalg.vector_norm(x, float("inf"), dim=1) +
                                tc.linalg.vector_norm(x, 0.5, dim=1)), (4,)),
    ("tril_triu", lambda: Fn(lambda x: x.tril() + x.triu(1) * 2.0), (4, 4)),
    ("roll", lambda: Fn(lambda x: tc.roll(x, 1, 1) + tc.roll(x, (2, -1), (1, 2))), (3, 4)),
]


@pytest.mark.parametrize("name,make,shape", TENSOR_FUNCTIONS, ids=[c[0] for c in TENSOR_FUNCTIONS])
def test_lookups_and_norms_export_and_match(name, make, shape):
    check_model(make(), shape)


def test_gather_with_a_constant_index_and_sort_refused():
    x = tc.Tensor(np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32))
    index = tc.Tensor(np.array([[2, 0], [1, 1]]))
    model = Fn(lambda t: t.gather(1, index) * 2.0)
    _, data = to_onnx(model, x, dynamic_axes=None)
    with tc.no_grad():
        assert_close(model(x).numpy(), session(data).run(None, {"input": x.numpy()})[0],
                     "gather")
    by_sort = Fn(lambda t: t.gather(1, t.argsort(dim=1)))
    with pytest.raises(ExportError, match="TakeAlong.*outside the traced ops"):
        export(by_sort, x, io.BytesIO())


def _port_test_cases():
    try:
        from tests import test_port_models as port
    except ImportError:
        return None, {}
    return port, {k: v for k, v in port.CASES.items() if "\n" in v[0]}


@pytest.mark.parametrize("case", sorted(_port_test_cases()[1]) or ["absent"])
def test_port_test_models_export_and_match(case):
    """tests/test_port_models.py's PyTorch-source models (U-Net both ways, SE, VGG-BN;
    ResNet-20 and MobileNetV2 are tinygrad_cv.models, tested above), in float32."""
    port, cases = _port_test_cases()
    if case not in cases:
        pytest.skip("tests/test_port_models.py is not on this checkout")
    source, cls, kwargs, shape = cases[case]
    tc.manual_seed(4)
    model = getattr(port._module(source, port.OUR_IMPORTS), cls)(**kwargs)
    check_model(_randomize_batch_norms(model, seed=4), shape[1:])


class TinyViT(nn.Module):
    """ViT-style: patches by a strided conv, a class token expanded to the batch, position
    embeddings, one attention block with reshape/permute of the heads, LayerNorm, GELU."""

    def __init__(self, dim=8, heads=2):
        super().__init__()
        self.heads = heads
        self.patch = nn.Conv2d(3, dim, 4, stride=4)
        self.cls_token = nn.Parameter(tc.randn(1, 1, dim) * 0.1)
        self.pos = nn.Parameter(tc.randn(1, 5, dim) * 0.1)
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.head = nn.Linear(dim, 3)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)                 # (B, 4, dim)
        b, n, c = x.shape
        x = tc.cat([self.cls_token.expand(b, -1, -1), x], dim=1) + self.pos
        qkv = self.qkv(self.norm(x)).reshape(b, n + 1, 3, self.heads, c // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)[0], qkv.permute(2, 0, 3, 1, 4)[1], \
            qkv.permute(2, 0, 3, 1, 4)[2]
        attn = F.softmax(q @ k.transpose(-2, -1) * (c // self.heads) ** -0.5, dim=-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(b, n + 1, c))
        x = x + self.mlp(self.norm(x))
        return self.head(x[:, 0])


@pytest.mark.skipif(not hasattr(nn, "LayerNorm"), reason="coverage layers not here yet")
def test_vit_style_class_token_expanded_to_the_batch():
    tc.manual_seed(5)
    proto = check_model(TinyViT(), (3, 8, 8))
    assert "Shape" in {n.op_type for n in proto.graph.node}     # the batch read at run time


def test_reshape_merging_two_dynamic_axes_reads_them_at_run_time():
    """(B, T, C) -> (B * T, C) -> (B, T, C) with B and T both dynamic."""
    model = Fn(lambda x: (x.reshape(-1, x.shape[2]) * 2.0).reshape(x.shape[0], x.shape[1], 3))
    x = tc.Tensor(np.random.default_rng(0).standard_normal((2, 4, 3)).astype(np.float32))
    buf = io.BytesIO()
    export(model, x, buf, dynamic_axes={"input": {0: "b", 1: "t"}})
    sess = session(buf.getvalue())
    for shape in ((3, 5, 3), (1, 2, 3)):
        xi = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        with tc.no_grad():
            assert_close(model(tc.Tensor(xi)).numpy(), sess.run(None, {"input": xi})[0],
                         f"shape {shape}")
