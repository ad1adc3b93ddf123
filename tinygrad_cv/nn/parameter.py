"""nn.Parameter: a leaf Tensor that requires grad and that Modules register."""
from __future__ import annotations

from ..tensor import Tensor


class Parameter(Tensor):
    """A trainable tensor, as `torch.nn.Parameter(data, requires_grad=True)`.

    Wraps `data`'s storage (no copy when `data` is a Tensor), as torch does.
    """

    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = Tensor([])
        if isinstance(data, Tensor):
            self.data = data.data
            self.device_str = data.device_str
            self.grad = None
            self.grad_fn = None
            self._acc = None
            self.requires_grad = False
        else:
            super().__init__(data)
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()
