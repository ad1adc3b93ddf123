"""Padding layers: ZeroPad, ConstantPad, ReflectionPad, ReplicationPad, CircularPad (1d,
2d), torch's names, `padding` forms (an int, or (left, right[, top, bottom])) and reprs.
Each is `F.pad` with its mode; negative constant padding crops, as torch."""
from __future__ import annotations

from . import functional as F
from .module import Module


def _padding_tuple(name, padding, dims):
    if isinstance(padding, int):
        return (padding,) * (2 * dims)
    padding = tuple(padding)
    if len(padding) != 2 * dims or not all(isinstance(p, int) for p in padding):
        raise ValueError(f"{name}: padding must be an int or a tuple of {2 * dims} ints, got "
                         f"{padding!r}")
    return padding


class _PadNd(Module):
    _mode = "constant"
    _dims = 2

    def __init__(self, padding):
        super().__init__()
        self.padding = _padding_tuple(type(self).__name__, padding, self._dims)

    def _check(self, input):
        want = (self._dims + 1, self._dims + 2)
        if input.ndim not in want:
            raise ValueError(f"{type(self).__name__}: expected a {want[0]}D (unbatched) or "
                             f"{want[1]}D input, got shape {input.shape}")

    def forward(self, input):
        self._check(input)
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self):
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def __init__(self, padding, value: float):
        super().__init__(padding)
        self.value = value

    def forward(self, input):
        self._check(input)
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pad the last dim of (C, W) / (N, C, W) with `value`."""
    _dims = 1


class ConstantPad2d(_ConstantPadNd):
    """Pad the last two dims (left, right, top, bottom) with `value`."""
    _dims = 2


class ZeroPad1d(ConstantPad1d):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    """Pad with zeros (left, right, top, bottom)."""

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ReflectionPad1d(_PadNd):
    _mode, _dims = "reflect", 1


class ReflectionPad2d(_PadNd):
    """Mirror padding without repeating the edge (each amount < that dim's size)."""
    _mode, _dims = "reflect", 2


class ReplicationPad1d(_PadNd):
    _mode, _dims = "replicate", 1


class ReplicationPad2d(_PadNd):
    """Repeat the edge values."""
    _mode, _dims = "replicate", 2


class CircularPad1d(_PadNd):
    _mode, _dims = "circular", 1


class CircularPad2d(_PadNd):
    """Wrap around (periodic padding)."""
    _mode, _dims = "circular", 2
