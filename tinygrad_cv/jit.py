"""`tc.jit`: the parts of torch.jit that eager model code calls, so it ports unchanged.

torchvision's model definitions ask `torch.jit.is_scripting()` and decorate methods
with `@torch.jit.unused` / `@torch.jit.ignore`; here nothing is ever scripted, so those
answer False and leave functions as they are. Compiling (`script`, `trace`) does not
exist in tinygrad_cv and raises, rather than pretending.
"""
from __future__ import annotations


def is_scripting() -> bool:
    return False


def is_tracing() -> bool:
    return False


def unused(fn):
    """Marks a method TorchScript should skip: returned unchanged."""
    return fn


def ignore(drop=False, **kwargs):
    """`@ignore` or `@ignore(drop=...)`: the function unchanged."""
    if callable(drop):
        return drop
    return lambda fn: fn


def export(fn):
    return fn


def annotate(the_type, the_value):
    """A type hint for TorchScript: the value itself."""
    return the_value


def _overload_method(fn):
    return fn


def script(obj, *args, **kwargs):
    raise NotImplementedError("tc.jit.script: tinygrad_cv has no TorchScript compiler; run "
                              "the module eagerly (or export it with tc.onnx where available)")


def trace(func, *args, **kwargs):
    raise NotImplementedError("tc.jit.trace: tinygrad_cv has no TorchScript tracer; run the "
                              "module eagerly")


__all__ = ["is_scripting", "is_tracing", "unused", "ignore", "export", "annotate", "script",
           "trace"]
