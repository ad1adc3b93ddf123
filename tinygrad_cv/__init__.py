"""tinygrad_cv: a small, readable deep-learning engine for computer vision, PyTorch's API."""
from . import accelerator, cuda, dtypes
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .backend import device
from .dtypes import (bool_, double, float16, float32, float64, half, int8, int16, int32,
                     int64, long, uint8)
from .random import initial_seed, manual_seed
from .tensor import (Tensor, arange, empty, eye, full, full_like, ones, ones_like, rand,
                     randint, randn, tensor, zeros, zeros_like)
from .ops.elementwise import where, maximum, minimum, clamp, exp, log, sqrt, relu, sigmoid, tanh, abs
from .ops.movement import cat, stack, flatten, pad, reshape, squeeze, unsqueeze, transpose, permute
from .ops.matmul import matmul
from .ops.reduce import sum, mean, max, min, argmax, argmin, logsumexp, softmax, log_softmax, var, std

bool = bool_
float = float32

__version__ = "0.1.0"
