"""`tc.amp` / `tc.autocast`: torch's mixed-precision API, accepted so training scripts port
unchanged, computing in the tensors' own dtypes.

tinygrad_cv has no mixed-precision kernels, so `autocast` changes nothing inside its
block (each op runs in its inputs' dtype), and `GradScaler` applies no scaling: with no
float16 gradients there is nothing to protect from underflow. `scale(loss)` returns the
loss, `step(optimizer)` steps it (skipping the step, as torch, when a gradient is not
finite), `update()` and `unscale_()` keep torch's call order checks light.
"""
from __future__ import annotations

from .backend import xp_of


class autocast:
    """`with tc.autocast(device_type, dtype=None, enabled=True, cache_enabled=None):` and
    as a decorator: runs its body unchanged (see the module docstring)."""

    def __init__(self, device_type="cuda", dtype=None, enabled=True, cache_enabled=None):
        self.device_type, self.fast_dtype, self.enabled = device_type, dtype, enabled

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __call__(self, func):
        def wrapper(*args, **kwargs):
            with self:
                return func(*args, **kwargs)
        wrapper.__name__ = getattr(func, "__name__", "wrapper")
        wrapper.__doc__ = getattr(func, "__doc__", None)
        return wrapper


def is_autocast_available(device_type):
    return False


class GradScaler:
    """torch.amp.GradScaler's interface with a scale of 1 (no float16 gradients here)."""

    def __init__(self, device="cuda", init_scale=2.0 ** 16, growth_factor=2.0,
                 backoff_factor=0.5, growth_interval=2000, enabled=True):
        self._enabled = enabled
        self._found_inf = False

    def is_enabled(self):
        return self._enabled

    def get_scale(self):
        return 1.0

    def scale(self, outputs):
        return outputs

    def unscale_(self, optimizer):
        """Nothing to unscale; records whether any gradient holds inf/NaN."""
        self._found_inf = False
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None and not bool(xp_of(p.grad.data).isfinite(
                        p.grad.data).all()):
                    self._found_inf = True

    def step(self, optimizer, *args, **kwargs):
        """optimizer.step(), skipped when a gradient holds inf/NaN (torch's rule)."""
        self.unscale_(optimizer)
        if self._found_inf:
            return None
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale=None):
        self._found_inf = False

    def state_dict(self):
        return {"scale": 1.0, "_growth_tracker": 0} if self._enabled else {}

    def load_state_dict(self, state_dict):
        pass


__all__ = ["autocast", "GradScaler", "is_autocast_available"]
