"""`Tensor.register_hook` and `Tensor.retain_grad`, as torch's, without touching the engine.

A hook sees the gradient with respect to its tensor and may return a replacement:

- a non-leaf tensor's graph node gets its Function wrapped by `_HookedBackward`, which
  runs the hooks on the node's incoming gradient (the sum over all its consumers, i.e.
  exactly d loss / d tensor) before the op's own backward;
- a leaf's hooks run in a one-input identity node placed in front of its AccumulateGrad,
  which the leaf hands out to the ops recorded *after* the hook was registered (torch
  applies a leaf's hooks to earlier graphs too: the one difference).

`retain_grad()` is a hook that accumulates the gradient into the non-leaf's `.grad`.
"""
from __future__ import annotations

from .autograd import AccumulateGrad, Context


class _HookedBackward:
    """Stands in for a node's Function: hooks first, then the Function's backward."""

    def __init__(self, fn):
        self.fn = fn
        self.hooks = {}
        self.retain = None      # retain_grad's keeper runs after every hook, as torch
        self.__name__ = fn.__name__

    def backward(self, node, grad):
        grad = run_hooks(self.hooks, grad, node.device_for_hooks)
        if self.retain is not None:
            self.retain(grad)
        return self.fn.backward(node, grad)


class _LeafHook:
    """The identity op in front of a leaf's AccumulateGrad."""

    __name__ = "LeafHook"

    def __init__(self):
        self.hooks = {}

    def backward(self, node, grad):
        return (run_hooks(self.hooks, grad, node.device),)


class _LeafHookNode(Context):
    """A graph node that outlives one backward (the leaf hands it to every later graph):
    the engine's "free after use" (saved = None, __dict__ cleared) must not disable it,
    so `saved` is always empty and the device lives in a slot."""

    __slots__ = ("device",)

    @property
    def saved(self):
        return ()

    @saved.setter
    def saved(self, value):
        pass


def run_hooks(hooks, grad, device):
    from .tensor import Tensor, wrap_array
    for hook in list(hooks.values()):
        result = hook(wrap_array(grad, device))
        if result is not None:
            if tuple(result.shape) != tuple(grad.shape):
                raise RuntimeError(f"hook returned a gradient of shape {tuple(result.shape)} "
                                   f"for a tensor of shape {tuple(grad.shape)}")
            grad = result.data
    return grad


class HookHandle:
    _next = [0]

    def __init__(self, hooks):
        self.hooks = hooks
        self.id = HookHandle._next[0]
        HookHandle._next[0] += 1

    def remove(self):
        self.hooks.pop(self.id, None)


def register_hook(tensor, hook):
    if not tensor.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    if not callable(hook):
        raise TypeError(f"hook must be callable, got {type(hook).__name__}")
    if tensor.grad_fn is not None:
        node = tensor.grad_fn
        if not isinstance(node.fn, _HookedBackward):
            node.fn = _HookedBackward(node.fn)
        node.device_for_hooks = tensor.device_str
        hooks = node.fn.hooks
    else:
        node = tensor._acc
        if not isinstance(node, _LeafHookNode):
            node = _LeafHookNode(_LeafHook(), (True,))
            node.parents = (AccumulateGrad(tensor),)
            node.input_meta = ((tensor.data.shape, tensor.data.dtype),)
            tensor._acc = node
        node.device = tensor.device_str
        hooks = node.fn.hooks
    handle = HookHandle(hooks)
    hooks[handle.id] = hook
    return handle


def retain_grad(tensor):
    """Keep the gradient of a non-leaf in its `.grad` at each backward (accumulating), the
    value after the tensor's hooks, as torch."""
    if tensor.grad_fn is None:
        return              # a leaf keeps its gradient anyway
    node = tensor.grad_fn
    if not isinstance(node.fn, _HookedBackward):
        node.fn = _HookedBackward(node.fn)
    node.device_for_hooks = tensor.device_str
    if node.fn.retain is not None:
        return
    import weakref
    ref = weakref.ref(tensor)

    def keep(grad):
        t = ref()
        if t is not None:
            from .tensor import Tensor, wrap_array
            t.grad = wrap_array(grad.copy(), t.device_str) if t.grad is None else \
                wrap_array(t.grad.data + grad, t.device_str)
    node.fn.retain = keep
