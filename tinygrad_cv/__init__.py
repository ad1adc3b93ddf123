"""tinygrad_cv: a small, readable deep-learning engine for computer vision, PyTorch's API.

    import tinygrad_cv as tc
    from tinygrad_cv import Tensor, nn, optim
    from tinygrad_cv.nn import functional as F
"""
# First, before NumPy loads: it sets the BLAS/Numba threading environment (see threads.py).
from . import threads  # noqa: I001
from . import accelerator, cuda, dtypes
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .grad_modes import inference_mode, is_inference_mode_enabled
from .backend import device
from .dtypes import (bool_, double, float16, float32, float64, half, int8, int16, int32,
                     int64, long, uint8)
# tensor first: the ops modules import Tensor from it
from .tensor import (Tensor, arange, empty, eye, from_numpy, full, full_like, ones,
                     ones_like, rand, rand_like, randint, randn, randn_like, tensor, zeros,
                     zeros_like)
from .tensor import (allclose, as_tensor, bernoulli, empty_like, is_tensor, isclose, linspace,
                     numel, randperm)
from .ops.elementwise import (abs, clamp, exp, log, maximum, minimum, sigmoid, sqrt,
                              tanh, where)
from .ops.linalg import einsum
from .ops.relu import relu
from .ops.matmul import matmul
from .ops.sorting import argsort, cumsum, gather, sort, topk
from .ops.arrange import cat, flip, meshgrid, pad, repeat, roll, stack, tile, tril, triu, unbind
from .ops.indexing import index_select
from .ops.movement import (chunk, flatten, narrow, permute, reshape, split, squeeze, transpose,
                           unsqueeze)
from .ops.reduce import (argmax, argmin, log_softmax, logsumexp, max, mean, min, softmax,
                         std, sum, var)
from .random import initial_seed, manual_seed
from .threads import get_num_threads, set_num_threads
from . import nn, optim                                      # noqa: E402  (need Tensor)
from . import data, datasets, models, transforms             # noqa: E402
from . import amp, backends, jit, linalg, utils              # noqa: E402
from .amp import autocast                                    # noqa: E402
from . import onnx    # noqa: E402  (tc.onnx.export; the onnx package loads only when it runs)
from .serialization import load, save                       # noqa: E402
from .tensor_functions import (_assert, all, amax, amin, any, bmm, broadcast_to, ceil,  # noqa: E402
                               clamp_max, clamp_min, cos, expm1, floor, isfinite, isinf,
                               isnan, log1p, log2, log10, masked_fill, mm, norm, reciprocal,
                               round, rsqrt, sign, sin, square, trunc)

clip = clamp
bool = bool_
float = float32

__version__ = "0.1.0"

