"""Module-level spellings of Tensor methods (`tc.sin(x)` for `x.sin()`), as torch's."""
from __future__ import annotations


def square(input):
    return input.square()


def rsqrt(input):
    return input.rsqrt()


def reciprocal(input):
    return input.reciprocal()


def log1p(input):
    return input.log1p()


def expm1(input):
    return input.expm1()


def log2(input):
    return input.log2()


def log10(input):
    return input.log10()


def sin(input):
    return input.sin()


def cos(input):
    return input.cos()


def sign(input):
    return input.sign()


def floor(input):
    return input.floor()


def ceil(input):
    return input.ceil()


def trunc(input):
    return input.trunc()


def isnan(input):
    return input.isnan()


def isinf(input):
    return input.isinf()


def isfinite(input):
    return input.isfinite()

def round(input, decimals=0):
    return input.round(decimals)


def all(input, dim=None, keepdim=False):
    return input.all(dim, keepdim)


def any(input, dim=None, keepdim=False):
    return input.any(dim, keepdim)


def masked_fill(input, mask, value):
    return input.masked_fill(mask, value)


def amax(input, dim=None, keepdim=False):
    return input.amax(dim, keepdim)


def amin(input, dim=None, keepdim=False):
    return input.amin(dim, keepdim)


def mm(input, mat2):
    return input.mm(mat2)


def bmm(input, mat2):
    return input.bmm(mat2)


def clamp_min(input, min):
    return input.clamp_min(min)


def clamp_max(input, max):
    return input.clamp_max(max)


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """`torch.norm` (vector norms): `input.norm(p, dim, keepdim)`."""
    return input.norm(p, dim, keepdim, dtype)


def broadcast_to(input, size):
    """`torch.broadcast_to`: `input.expand(size)`."""
    return input.expand(*size)


def _assert(condition, message):
    """`torch._assert` (torchvision's models call it): AssertionError when false."""
    if not bool(condition):
        raise AssertionError(message)
