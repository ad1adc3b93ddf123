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
from .ops.elementwise import (abs, clamp, exp, log, maximum, minimum, relu, sigmoid, sqrt,
                              tanh, where)
from .ops.matmul import matmul
from .ops.sorting import argsort, cumsum, gather, sort, topk
from .ops.movement import (cat, flatten, index_select, pad, permute, reshape, squeeze,
                           stack, transpose, unsqueeze)
from .ops.movement import (chunk, flip, meshgrid, narrow, repeat, roll, split, tile, tril, triu,
                           unbind)
from .ops.reduce import (argmax, argmin, log_softmax, logsumexp, max, mean, min, softmax,
                         std, sum, var)
from .random import initial_seed, manual_seed
from .threads import get_num_threads, set_num_threads
from . import nn, optim                                      # noqa: E402  (need Tensor)
from . import data, datasets, models, transforms             # noqa: E402
from . import jit, linalg, utils                             # noqa: E402
from .serialization import load, save                       # noqa: E402

clip = clamp
bool = bool_
float = float32

__version__ = "0.1.0"


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """`torch.norm` (vector norms): `input.norm(p, dim, keepdim)`."""
    return input.norm(p, dim, keepdim, dtype)


def _method_function(name):
    """`tc.<name>(t, ...)` for a Tensor method (torch's functional spellings)."""
    def function(input, *args, **kwargs):
        return getattr(input, name)(*args, **kwargs)
    function.__name__ = name
    function.__doc__ = f"`input.{name}(...)`, as torch.{name}."
    return function


for _name in ("square", "rsqrt", "reciprocal", "log1p", "expm1", "log2", "log10", "sin", "cos",
              "sign", "floor", "ceil", "trunc", "round", "isnan", "isinf", "isfinite", "all",
              "any", "masked_fill", "amax", "amin", "mm", "bmm", "clamp_min", "clamp_max"):
    globals()[_name] = _method_function(_name)
del _name


def broadcast_to(input, size):
    """`torch.broadcast_to`: `input.expand(size)`."""
    return input.expand(*size)
