"""Tracing one forward for export: every op run, its inputs, settings and output, and the
layer (module path) that ran it. Imports no onnx.

The forward runs in eval mode with grad mode on and float inputs that require grad, so
that every step through the input goes through `Function.apply` (under no_grad, indexing
and in-place arithmetic on values without a graph skip it and would be invisible). The
graph is built only from what the trace saw; the caller runs the trace twice (a second
batch size, other input values) to find the dynamic axes and to catch values computed
from the input outside the traced ops.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..autograd import enable_grad, observe_ops
from ..tensor import Tensor, wrap_array


class ExportError(RuntimeError):
    """A model, op or layer that cannot be written as ONNX; the message names it and its
    place in the model."""


def value_key(t):
    """Which value a tensor holds *now*: its graph node when it has one, else itself.

    An in-place op (`F.relu6(x, inplace=True)`) writes its result into x and gives x
    the op's node, so after it the same tensor object holds another value; the node
    tells the two apart. Keys are taken when an op runs, before any later in-place op."""
    node = t.grad_fn
    return ("node", id(node)) if node is not None else ("tensor", id(t))


@dataclass
class TracedOp:
    """One op as the trace saw it (`module_path`: the innermost layer running it;
    `in_keys`/`out_key`: the value_key of its inputs and output when it ran)."""

    fn: type
    inputs: tuple
    params: dict
    output: Tensor
    module_path: str
    module: object
    in_keys: tuple = ()
    out_key: tuple = ()

    @property
    def name(self):
        return self.fn.__name__

    def where(self):
        """The op's place in the model, for error messages."""
        if self.module is None:
            return f"op {self.name}"
        layer = repr(self.module).splitlines()[0].rstrip("(")
        place = f"layer '{self.module_path}'" if self.module_path else "the model's forward"
        return f"op {self.name} in {place} ({layer})"


@dataclass
class Trace:
    """A traced forward: the inputs given to it, the ops in the order they ran, and the
    outputs (a flat list; `outputs_single` when the forward returned one tensor), with
    the value_key of each input and output."""

    inputs: list
    input_keys: list = field(default_factory=list)
    ops: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    output_keys: list = field(default_factory=list)
    outputs_single: bool = True


class _LayerTracker:
    """Knows which layer is running: each module's `forward` is wrapped (on the instance,
    for the trace only) to push its dotted path on a stack."""

    def __init__(self, model):
        self.model = model
        self.stack = []
        self._wrapped = []

    def __enter__(self):
        for path, module in self.model.named_modules():
            self._wrap(path, module)
        return self

    def _wrap(self, path, module):
        forward = module.forward
        stack = self.stack

        def tracked_forward(*args, **kwargs):
            stack.append((path, module))
            try:
                return forward(*args, **kwargs)
            finally:
                stack.pop()

        object.__setattr__(module, "forward", tracked_forward)
        self._wrapped.append(module)

    def __exit__(self, *exc):
        for module in self._wrapped:
            object.__getattribute__(module, "__dict__").pop("forward", None)
        return False

    def current(self):
        return self.stack[-1] if self.stack else ("", None)


def _traced_input(t):
    """A copy of `t` that is in the graph when it is floating point: the output of a
    Clone of a leaf requiring grad (so an in-place op on the model's input is allowed,
    as for any value inside a network)."""
    arr = t.data.copy()
    leaf = wrap_array(arr, t.device_str)
    if arr.dtype.kind != "f":
        return leaf
    leaf.requires_grad_(True)
    with enable_grad():
        return leaf.clone()


def _flatten_outputs(out):
    if isinstance(out, Tensor):
        return [out], True
    if isinstance(out, (tuple, list)) and out and all(isinstance(o, Tensor) for o in out):
        return list(out), False
    raise ExportError(f"onnx.export: the model's forward must return a Tensor or a tuple/list "
                      f"of Tensors, got {type(out).__name__}")


def trace_forward(model, args):
    """Run `model(*args)` once in eval mode, recording every op; restores each module's
    train/eval mode afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    inputs = [_traced_input(a) for a in args]
    trace = Trace(inputs=inputs)
    tracker = _LayerTracker(model)

    trace.input_keys = [value_key(t) for t in inputs]

    def record(fn, tensors, params, output):
        path, module = tracker.current()
        trace.ops.append(TracedOp(fn, tuple(tensors), dict(params), output, path, module,
                                  tuple(value_key(t) for t in tensors), value_key(output)))

    model.eval()
    try:
        with tracker, enable_grad(), observe_ops(record):
            out = model(*inputs)
    finally:
        for module, mode in modes:
            module.training = mode
    trace.outputs, trace.outputs_single = _flatten_outputs(out)
    trace.output_keys = [value_key(t) for t in trace.outputs]
    return trace


def second_inputs(args, dynamic):
    """Inputs for the checking trace: other values and, on each dynamic axis, another size
    (batch axis 0: 2, or 3 when it was 2; any other axis: twice its size).

    `dynamic[i]` is the set of dynamic axes of input i. Float values are redrawn (seeded);
    integer ones are repeated to the new sizes and shifted within their range, bools
    flipped, so a value computed from them outside the traced ops shows too."""
    rng = np.random.default_rng(20240917)
    out = []
    for i, a in enumerate(args):
        arr = np.asarray(a.data) if a.device_str == "cpu" else a.data.get()
        shape = list(arr.shape)
        for axis in dynamic[i]:
            shape[axis] = (3 if shape[axis] == 2 else 2) if axis == 0 else 2 * shape[axis]
        if arr.dtype.kind == "f":
            scale = float(np.abs(arr).max()) if arr.size else 1.0
            new = (rng.standard_normal(shape) * (scale or 1.0)).astype(arr.dtype)
        else:       # other values in the same range (so index inputs stay valid)
            new = arr
            for axis, n in enumerate(shape):
                if new.shape[axis] != n:
                    new = np.take(new, np.arange(n) % max(new.shape[axis], 1), axis=axis)
            if new.dtype == np.bool_:
                new = ~new
            elif new.size and new.max() > new.min():
                low = new.min()
                new = ((new - low + 1) % (new.max() - low + 1) + low).astype(arr.dtype)
        t = Tensor(new, dtype=arr.dtype)
        out.append(t if a.device_str == "cpu" else t.to(a.device_str))
    return out
