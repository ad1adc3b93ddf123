"""`inference_mode`, as torch.inference_mode: here it is `no_grad` under another name.

torch's inference mode also skips version counting and marks tensors as inference
tensors (which then refuse autograd). tinygrad_cv has neither, so `inference_mode()`
simply turns gradient recording off; `inference_mode(False)` changes nothing, as torch.
Usable as `with tc.inference_mode():`, `@tc.inference_mode()` and `@tc.inference_mode`.
"""
from __future__ import annotations

import functools
import threading

from .autograd import _set_grad_enabled, is_grad_enabled

_state = threading.local()


def is_inference_mode_enabled() -> bool:
    return getattr(_state, "depth", 0) > 0


class inference_mode:
    """Context manager and decorator: no gradient recording inside (when `mode`)."""

    def __new__(cls, mode=True):
        if callable(mode) and not isinstance(mode, bool):   # bare @inference_mode
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode=True):
        if not isinstance(mode, bool):
            raise TypeError(f"inference_mode: mode must be a bool, got {type(mode).__name__}")
        self.mode = mode
        self._prev = []

    def __enter__(self):
        self._prev.append(is_grad_enabled())
        if self.mode:
            _set_grad_enabled(False)
            _state.depth = getattr(_state, "depth", 0) + 1
        return self

    def __exit__(self, *exc):
        _set_grad_enabled(self._prev.pop())
        if self.mode:
            _state.depth -= 1
        return False

    def __call__(self, func):
        mode = self.mode

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with inference_mode(mode):
                return func(*args, **kwargs)

        return wrapper

    def clone(self):
        return inference_mode(self.mode)
