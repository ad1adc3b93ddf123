"""The ONNX graph being written: nodes, initializers and unique value names.

Converters (converters.py) add nodes through `GraphBuilder.node` and constants through
`const`; the `onnx` module is handed in by the exporter (imported lazily there).
"""
from __future__ import annotations

import numpy as np

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


def host(arr):
    """A NumPy array of `arr` (a CuPy array is copied to the host; NumPy as is)."""
    return arr if isinstance(arr, np.ndarray) else (arr.get() if hasattr(arr, "get")
                                                     else np.asarray(arr))


class GraphBuilder:
    """Collects an ONNX graph; every value name it hands out is unique."""

    def __init__(self, onnx, opset):
        self.onnx = onnx
        self.opset = opset
        self.nodes = []
        self.initializers = {}           # name -> numpy array
        self._used = set()
        self._counts = {}

    def fresh(self, hint):
        """A new value name from `hint` ("Conv" -> "Conv_0", "Conv_1", ...)."""
        while True:
            n = self._counts.get(hint, 0)
            self._counts[hint] = n + 1
            name = f"{hint}_{n}"
            if name not in self._used:
                self._used.add(name)
                return name

    def reserve(self, name):
        """Claim a given name (graph inputs, parameters); False when already taken."""
        if name in self._used:
            return False
        self._used.add(name)
        return True

    def node(self, op_type, inputs, outputs=1, **attrs):
        """Add a node; returns its output name (or list of names when outputs > 1).
        An input of None is an omitted optional input ("")."""
        names = [self.fresh(op_type) for _ in range(outputs)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(self.onnx.helper.make_node(
            op_type, ["" if i is None else i for i in inputs], names,
            name=f"{op_type}_node_{len(self.nodes)}", **attrs))
        return names[0] if outputs == 1 else names

    def initializer(self, name, array):
        """Add `array` under `name` (a parameter's state-dict key)."""
        self.initializers[name] = np.array(array, order="C")   # keeps 0-d arrays 0-d
        return name

    def const(self, value, dtype=None, hint="const"):
        """A constant (a new initializer) holding `value`."""
        arr = np.asarray(value, dtype=dtype)
        return self.initializer(self.fresh(hint), arr)

    def ints(self, values):
        """A 1-D int64 constant (shapes, axes, pads)."""
        return self.const(np.asarray(list(values), dtype=np.int64).reshape(-1), hint="ints")

    # ------------------------------------------------------------------ opset-aware nodes

    def unsqueeze(self, x, axes):
        return self.node("Unsqueeze", [x, self.ints(axes)])

    def squeeze(self, x, axes):
        return self.node("Squeeze", [x, self.ints(axes)])

    def reduce(self, op_type, x, axes, keepdims):
        """ReduceSum/ReduceMean/ReduceMax...: axes as an input where the opset wants one
        (ReduceSum from 13, the others from 18), else as an attribute."""
        axes = list(axes)
        as_input = op_type == "ReduceSum" or self.opset >= 18
        if as_input:
            return self.node(op_type, [x, self.ints(axes)], keepdims=int(keepdims))
        return self.node(op_type, [x], axes=axes, keepdims=int(keepdims))

    def rename(self, old, new):
        """Give the value `old` (a node output) the name `new` (a graph output's)."""
        for node in self.nodes:
            for seq in (node.input, node.output):
                for i, name in enumerate(seq):
                    if name == old:
                        seq[i] = new
