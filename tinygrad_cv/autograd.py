"""Reverse-mode autograd: the `Function` base class, the backward engine and grad mode.

An op is a `Function` subclass with two static methods working on raw arrays
(numpy or cupy):

    class Mul(Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad):
            a, b = ctx.saved
            return (grad * b if ctx.needs_input_grad[0] else None,
                    grad * a if ctx.needs_input_grad[1] else None)

`Mul.apply(x, y)` runs it on Tensors. When grad mode is on and some input requires a
gradient, the `Context` becomes the output's `grad_fn`: a graph node that holds only
what backward needs (saved arrays, the input shapes, the parent nodes), never the input
tensors themselves, so intermediate activations are freed as soon as nothing saves them.
Backward returns one gradient per tensor input, with the *broadcast* shape; the engine
reduces it to the input's shape with `sum_to`, in one place for every op.
Double backward (grad of grad) is not supported.
"""
from __future__ import annotations

import threading
import weakref

import numpy as np

from .backend import check_same_device
from .memory import owns_gradient

# ----------------------------------------------------------------------------- grad mode

class _ThreadState(threading.local):
    """Per-thread grad mode and op observer; the class attributes are each thread's
    starting values (plain attribute reads: `Function.apply` reads both on every op)."""

    grad_enabled = True
    observer = None


_state = _ThreadState()


def is_grad_enabled() -> bool:
    return _state.grad_enabled


def _set_grad_enabled(mode: bool) -> None:
    _state.grad_enabled = bool(mode)


class set_grad_enabled:
    """Context manager (and decorator) setting grad mode on or off for this thread."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self.prev = is_grad_enabled()
        _set_grad_enabled(self.mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set_grad_enabled(self.prev)
        return False


class _GradModeGuard:
    """Base for `no_grad` / `enable_grad`: usable as `with no_grad():` and `@no_grad()`."""

    mode = True

    def __new__(cls, func=None):
        """`@no_grad` without parentheses decorates `func` directly, as torch allows."""
        self = super().__new__(cls)
        return self(func) if callable(func) else self

    def __init__(self, func=None):
        pass

    def __enter__(self):
        self._prev = is_grad_enabled()
        _set_grad_enabled(self.mode)
        return self

    def __exit__(self, *exc):
        _set_grad_enabled(self._prev)
        return False

    def __call__(self, func):
        mode = self.mode

        def wrapper(*args, **kwargs):
            prev = is_grad_enabled()
            _set_grad_enabled(mode)
            try:
                return func(*args, **kwargs)
            finally:
                _set_grad_enabled(prev)

        wrapper.__name__ = getattr(func, "__name__", "wrapper")
        wrapper.__doc__ = getattr(func, "__doc__", None)
        wrapper.__wrapped__ = func
        return wrapper


class no_grad(_GradModeGuard):
    """Disable gradient recording, as `torch.no_grad`: `with no_grad():` or `@no_grad()`."""

    mode = False


class enable_grad(_GradModeGuard):
    """Enable gradient recording inside a `no_grad` region."""

    mode = True


# ----------------------------------------------------------------------------- op observers

class observe_ops:
    """Context manager: `callback(fn, inputs, params, output)` after every op this thread
    runs through `Function.apply` (fn: the Function class; inputs: its input tensors;
    params: its keyword settings; output: the result tensor). What exporters (ONNX)
    trace a forward with; nesting replaces the observer until the inner block ends."""

    def __init__(self, callback):
        self.callback = callback

    def __enter__(self):
        self._prev = _state.observer
        _state.observer = self.callback
        return self

    def __exit__(self, *exc):
        _state.observer = self._prev
        return False


def current_observer():
    """The callback of the innermost `observe_ops` block this thread is in, or None."""
    return _state.observer


# ----------------------------------------------------------------------------- sum_to

def sum_to(grad, shape):
    """Sum a broadcast gradient back down to `shape` (the one place broadcasting is undone)."""
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


# ----------------------------------------------------------------------------- graph nodes

class Context:
    """One recorded op: the graph node stored as a tensor's `grad_fn`.

    Holds the Function class, `needs_input_grad`, the parents (the inputs' own nodes:
    their `grad_fn`, or an `AccumulateGrad` for a leaf), the inputs' shapes and dtypes
    (to reduce and cast gradients), and whatever `forward` saved.
    """

    __slots__ = ("fn", "needs_input_grad", "parents", "input_meta", "saved", "__dict__")

    def __init__(self, fn, needs_input_grad):
        self.fn = fn
        self.needs_input_grad = needs_input_grad
        self.parents = ()
        self.input_meta = ()
        self.saved = ()

    def save_for_backward(self, *arrays):
        self.saved = arrays

    def name(self) -> str:
        return self.fn.__name__ + "Backward"

    def __repr__(self):
        return f"<{self.name()}>"


class AccumulateGrad:
    """The graph node of a leaf tensor that requires grad: backward adds into `leaf.grad`,
    then calls `post_hooks` (torch's post-accumulate-grad hooks: `hook(leaf)`; DDP starts
    a bucket's allreduce from one).

    Holds the leaf weakly (the leaf caches its node), so the two make no reference cycle.
    """

    __slots__ = ("_leaf", "post_hooks")

    def __init__(self, leaf):
        self._leaf = weakref.ref(leaf)
        self.post_hooks = []

    @property
    def leaf(self):
        return self._leaf()

    def name(self) -> str:
        return "AccumulateGrad"

    def __repr__(self):
        return "<AccumulateGrad>"


class Function:
    """Base class of every differentiable op; see the module docstring."""

    output_device_param = None
    """Name of the keyword parameter giving the output's device, for ops that move data
    between devices; every other op's output lives on its inputs' device."""

    @staticmethod
    def forward(ctx, *arrays, **params):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError

    @classmethod
    def apply(cls, *tensors, **params):
        """Run the op on Tensors; non-tensor settings go in `params`. Returns a Tensor,
        made by the first input's `_derived` (this module never imports tensor.py)."""
        first = tensors[0]
        dev = first.device_str
        state = _state
        if len(tensors) == 1:
            needs = (first.requires_grad,)
            record = needs[0] and state.grad_enabled
        else:
            for t in tensors:
                if t.device_str != dev:
                    check_same_device(cls.__name__.lower(), [t.device_str for t in tensors])
            needs = tuple([t.requires_grad for t in tensors])
            record = True in needs and state.grad_enabled
        ctx = Context(cls, needs if record else (False,) * len(tensors))
        with np.errstate(all="ignore"):   # inf/nan follow IEEE silently, as in torch
            out = cls.forward(ctx, *[t.data for t in tensors], **params)
        if cls.output_device_param is not None:
            dev = params[cls.output_device_param]
        if record:
            ctx.parents = tuple([t._node() if t.requires_grad else None for t in tensors])
            ctx.input_meta = tuple([(t.data.shape, t.data.dtype) for t in tensors])
            result = first._derived(out, dev, ctx)
        else:
            result = first._derived(out, dev)
        if state.observer is not None:
            state.observer(cls, tensors, params, result)
        return result


# ----------------------------------------------------------------------------- the engine

def _topological_order(root):
    """Nodes reachable from `root`, each after every node that consumes its output."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)          # post-order: after everything it depends on
            continue
        if id(node) in visited:         # pushed twice, already expanded through another path
            continue
        visited.add(id(node))
        stack.append((node, True))
        # Leaves go on the stack first, so they are expanded last and come out right
        # after their consumer: a leaf's .grad and post-hooks (DDP starts its bucket's
        # allreduce there) happen while earlier layers' backward is still to run.
        inner = None
        for p in getattr(node, "parents", ()):
            if p is None or id(p) in visited:
                continue
            if type(p) is AccumulateGrad:
                stack.append((p, False))
            elif inner is None:
                inner = [p]
            else:
                inner.append(p)
        if inner is not None:
            stack.extend([(p, False) for p in inner])
    order.reverse()
    return order


def run_backward(root_node, root_grad, retain_graph=False):
    """Propagate `root_grad` from `root_node` to every leaf, accumulating into `.grad`.

    Iterative (a 10,000-deep chain is fine). Unless `retain_graph`, each node's saved
    arrays are dropped right after its backward ran, so the step's memory is freed.
    """
    grads = {id(root_node): root_grad}
    for node in _topological_order(root_node):
        grad = grads.pop(id(node), None)
        if grad is None:
            continue
        if isinstance(node, AccumulateGrad):
            leaf = node.leaf
            if leaf is None:
                continue
            if leaf.grad is None:
                # The gradient must not alias another tensor's storage: copy it unless
                # it is an array only the engine holds (e.g. a GEMM's fresh output).
                if not owns_gradient(grad, 1):
                    grad = grad.copy()
                leaf.grad = leaf._derived(grad)
            else:
                leaf.grad = leaf._derived(leaf.grad.data + grad)
            for hook in node.post_hooks:
                hook(leaf)
            continue
        if node.saved is None:
            raise RuntimeError(
                f"{node.name()}: trying to backward through the graph a second time; "
                "its saved arrays were already freed (pass retain_graph=True to the first "
                "backward() if you need to backward twice)")
        if retain_graph:
            node.retain_graph = True    # a backward may then not free saved state early
        with np.errstate(all="ignore"):
            input_grads = node.fn.backward(node, grad)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        if len(input_grads) != len(node.parents):
            raise RuntimeError(f"{node.name()} returned {len(input_grads)} gradients "
                               f"for {len(node.parents)} inputs")
        for parent, g, (shape, dtype) in zip(node.parents, input_grads, node.input_meta):
            if parent is None or g is None:
                continue
            if g.shape != shape:
                g = sum_to(g, shape)
            if g.dtype != dtype:
                g = g.astype(dtype)
            key = id(parent)
            prev = grads.get(key)
            grads[key] = g if prev is None else prev + g
        input_grads = g = prev = None       # hold no gradient past its consumer's turn
        if not retain_graph:
            node.saved = None
            node.__dict__.clear()
