"""Lazy modules' machinery, as torch.nn.modules.lazy: parameters whose shapes come from
the first input.

A lazy layer (LazyLinear, LazyConv2d, LazyBatchNorm2d...) starts with
`UninitializedParameter`s (and `UninitializedBuffer`s): tensors without a shape. Its
first call reads the missing size from the input, gives each placeholder storage of the
right shape (`materialize`, which keeps the object, so an optimizer already holding it
keeps working), runs the layer's usual initialisation, and turns the module into its
ordinary class (LazyLinear -> Linear), as torch's `cls_to_become`. Loading a state dict
into an unmaterialised lazy module takes the shapes from the state dict.
"""
from __future__ import annotations

from .. import dtypes
from ..backend import array_module
from ..tensor import Tensor
from .module import Module
from .parameter import Parameter


class _Uninitialized:
    """Mixin of the placeholders: `materialize(shape)` in place, then the plain class."""

    __slots__ = ()
    cls_to_become = Tensor

    def materialize(self, shape, device=None, dtype=None):
        dev = self.device_str if device is None else device
        dtype = self.data.dtype if dtype is None else dtypes.to_dtype(dtype)
        self.data = array_module(dev).empty(tuple(shape), dtype=dtype)
        self.device_str = dev
        self.__class__ = self.cls_to_become

    def __repr__(self):
        return f"<{type(self).__name__}>"


class UninitializedParameter(_Uninitialized, Parameter):
    """A Parameter with no shape yet; becomes a plain Parameter when materialized."""

    __slots__ = ()
    cls_to_become = Parameter

    def __init__(self, requires_grad=True, device=None, dtype=None):
        from ..tensor import empty
        Parameter.__init__(self, empty(0, device=device, dtype=dtype), requires_grad)


class UninitializedBuffer(_Uninitialized, Tensor):
    """A buffer with no shape yet; becomes a plain Tensor when materialized."""

    __slots__ = ()

    def __init__(self, requires_grad=False, device=None, dtype=None):
        from ..tensor import empty
        t = empty(0, device=device, dtype=dtype)
        Tensor.__init__(self, t.data, dtype=t.dtype, device=t.device_str)


def is_lazy(t) -> bool:
    return isinstance(t, _Uninitialized)


class LazyModuleMixin:
    """Put first in a lazy layer's bases; the layer implements `initialize_parameters(
    input)` (materialize from the input) and `_sizes_from_parameters()` (after a state
    dict gave the shapes)."""

    cls_to_become = None

    def has_uninitialized_params(self):
        tensors = list(self._parameters.values()) + list(self._buffers.values())
        return any(is_lazy(t) for t in tensors)

    def __call__(self, *args, **kwargs):
        if self.has_uninitialized_params():
            self.initialize_parameters(*args, **kwargs)
        else:
            self._sizes_from_parameters()
        if self.cls_to_become is not None:
            self.__class__ = self.cls_to_become
        return Module.__call__(self, *args, **kwargs)

    def initialize_parameters(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not implement "
                                  f"initialize_parameters")

    def _sizes_from_parameters(self):
        pass


__all__ = ["UninitializedParameter", "UninitializedBuffer", "LazyModuleMixin", "is_lazy"]
