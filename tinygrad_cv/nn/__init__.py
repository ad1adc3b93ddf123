"""tinygrad_cv.nn: modules, layers, losses, `functional` and `init`, torch.nn's names."""
from . import functional, init, parallel, utils
from .activation import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .attention import MultiheadAttention
from .activation import (CELU, ELU, GELU, GLU, SELU, Hardshrink, Hardsigmoid, Hardswish,
                         Hardtanh, LogSigmoid, Mish, PReLU, ReLU6, SiLU, Softmax2d, Softmin,
                         Softplus, Softshrink, Softsign, Tanhshrink, Threshold)
from .container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .conv import Conv2d, ConvTranspose2d, LazyConv2d
from .distance import CosineSimilarity, PairwiseDistance
from .dropout import Dropout, Dropout1d, Dropout2d
from .lazy import UninitializedBuffer, UninitializedParameter
from .linear import Flatten, Identity, LazyLinear, Linear, Unflatten
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from .loss import BCELoss, HuberLoss, KLDivLoss, L1Loss, SmoothL1Loss
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d
from .normalization import (GroupNorm, InstanceNorm1d, InstanceNorm2d, LayerNorm,
                            LazyBatchNorm1d, LazyBatchNorm2d)
from .padding import (CircularPad1d, CircularPad2d, ConstantPad1d, ConstantPad2d,
                      ReflectionPad1d, ReflectionPad2d, ReplicationPad1d, ReplicationPad2d,
                      ZeroPad1d, ZeroPad2d)
from .parameter import Parameter
from .pixelshuffle import ChannelShuffle, PixelShuffle, PixelUnshuffle
from .pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d
from .sparse import Embedding
from .upsampling import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d

__all__ = [
    "functional", "init", "utils", "Module", "Parameter", "Sequential", "ModuleList", "ModuleDict",
    "Linear", "Identity", "Flatten", "Unflatten", "Conv2d", "ConvTranspose2d", "MaxPool2d",
    "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "BatchNorm1d", "BatchNorm2d", "Dropout", "ReLU", "LeakyReLU",
    "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "CrossEntropyLoss", "NLLLoss", "MSELoss",
    "BCEWithLogitsLoss",
    "ReLU6", "Hardtanh", "Hardsigmoid", "Hardswish", "SiLU", "Mish", "GELU", "ELU", "Softplus",
    "PReLU", "LayerNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d",
    "Dropout2d", "ZeroPad1d", "ZeroPad2d", "ConstantPad1d", "ConstantPad2d", "ReflectionPad1d",
    "ReflectionPad2d", "ReplicationPad1d", "ReplicationPad2d", "CircularPad1d", "CircularPad2d",
    "PixelShuffle", "PixelUnshuffle", "ChannelShuffle", "Upsample", "UpsamplingNearest2d",
    "UpsamplingBilinear2d", "LazyLinear", "LazyConv2d", "LazyBatchNorm1d", "LazyBatchNorm2d",
    "UninitializedParameter", "UninitializedBuffer", "SELU", "CELU", "LogSigmoid", "Softsign",
    "Tanhshrink", "Threshold", "Hardshrink", "Softshrink", "GLU", "Softmin", "Softmax2d",
    "Dropout1d", "L1Loss", "SmoothL1Loss", "HuberLoss", "BCELoss", "KLDivLoss",
    "ParameterList", "ParameterDict", "Embedding", "CosineSimilarity", "PairwiseDistance",
    "MultiheadAttention",
]
