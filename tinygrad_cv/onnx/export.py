"""`export`: a traced forward written as an ONNX model (torch.onnx.export's meaning).

Two traces run: the one given, and a check with other input values and, on each dynamic
axis, another size. Comparing them finds which axes of every value follow the dynamic
ones (reshapes then copy or infer those sizes instead of baking them in) and catches what
cannot be exported faithfully: control flow that depends on the input, and tensors
computed from the input outside the traced ops (comparisons, `.item()`, NumPy), which
would otherwise be frozen into the graph as constants.
"""
from __future__ import annotations

import numbers
import os

import numpy as np

from ..tensor import Tensor
from .convert_shapes import shape_value
from .converters import CONVERTERS
from .graph import GraphBuilder, host
from .trace import ExportError, second_inputs, trace_forward

MIN_OPSET = 13


def _import_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("tinygrad_cv.onnx.export needs the onnx package: "
                          "pip install 'tinygrad_cv[onnx]'") from None
    return onnx


class OpView:
    """What a converter sees of one op: its input value names, settings and the shapes
    of both traces (`dynamic_in(i)` / `dynamic_out`: the axes whose sizes differ)."""

    def __init__(self, traced, second, inputs, array_input, builder=None):
        self.traced, self.second = traced, second
        self.inputs = list(inputs)
        self._array_input = array_input
        self._builder = builder

    name = property(lambda self: self.traced.name)
    params = property(lambda self: self.traced.params)
    params2 = property(lambda self: self.second.params)
    out_shape = property(lambda self: tuple(self.traced.output.shape))
    out_shape2 = property(lambda self: tuple(self.second.output.shape))
    dtype = property(lambda self: self.traced.output.data.dtype)

    def in_shape(self, i):
        return tuple(self.traced.inputs[i].shape)

    def in_shape2(self, i):
        return tuple(self.second.inputs[i].shape)

    def in_dtype(self, i):
        return self.traced.inputs[i].data.dtype

    @staticmethod
    def _differing(a, b):
        return {i for i, (p, q) in enumerate(zip(a, b)) if p != q}

    def dynamic_in(self, i):
        return self._differing(self.in_shape(i), self.in_shape2(i))

    @property
    def dynamic_out(self):
        return self._differing(self.out_shape, self.out_shape2)

    def array_input(self, arr, dtype):
        """The value name of a raw array setting (BatchNorm's running stats): its
        state-dict key when it is a buffer's storage, else a new constant."""
        return self._array_input(arr, dtype)

    def index_input(self, name):
        """The value name of the index array setting `name` (Embedding's indices,
        gather's index): the traced value whose storage it is (e.g. the model's integer
        input), else a constant when it is the same in both traces; else an error."""
        arr, arr2 = self.params[name], self.params2[name]
        found = self._builder.by_array.get(id(arr)) if self._builder else None
        if found is not None:
            return found
        if host(arr).shape != host(arr2).shape or not np.array_equal(host(arr), host(arr2)):
            raise self.fail(f"its {name} was computed from the input outside the traced ops "
                            "(e.g. by sort, topk or argmax) and cannot be exported")
        return self._builder.g.const(host(arr).astype(np.int64))

    def input_dim(self, size1, size2):
        """A 1-element int64 value holding, at run time, the size of a graph input axis
        that was size1 in the traced input and size2 in the check (e.g. the batch), or
        None when no input axis has those sizes."""
        return self._builder.input_dim(size1, size2) if self._builder else None

    def fail(self, why):
        return ExportError(f"onnx.export: {self.traced.where()}: {why}")


# ----------------------------------------------------------------------------- arguments

def _as_args(args):
    if isinstance(args, Tensor):
        return (args,)
    if isinstance(args, (tuple, list)) and all(isinstance(a, Tensor) for a in args) and args:
        return tuple(args)
    raise TypeError(f"onnx.export: args must be a Tensor or a tuple of Tensors, got "
                    f"{type(args).__name__}")


def _names(given, count, default, what):
    if given is None:
        return [default] if count == 1 else [f"{default}_{i}" for i in range(count)]
    given = list(given)
    if len(given) > count or len(set(given)) != len(given) or \
            not all(isinstance(n, str) and n for n in given):
        raise ValueError(f"onnx.export: {what} must be at most {count} distinct non-empty "
                         f"strings, got {given!r}")
    rest = [f"{default}_{i}" for i in range(len(given), count)]
    return given + rest


def _parse_dynamic_axes(dynamic_axes, known):
    """torch's forms: {name: {axis: label}} or {name: [axes]} (labels made up)."""
    out = {}
    for name, axes in (dynamic_axes or {}).items():
        if name not in known:
            raise ValueError(f"onnx.export: dynamic_axes names {name!r}, which is not an "
                             f"input or output name ({sorted(known)})")
        if isinstance(axes, dict):
            out[name] = {int(a): str(label) for a, label in axes.items()}
        else:
            out[name] = {int(a): f"{name}_dynamic_axes_{int(a) + 1}" for a in axes}
    return out


def _check_opset(onnx, opset):
    newest = onnx.defs.onnx_opset_version()
    if not isinstance(opset, numbers.Integral) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"onnx.export: opset_version must be an int in [{MIN_OPSET}, "
                         f"{newest}] (this onnx package's newest), got {opset!r}")


# ----------------------------------------------------------------------------- the two traces

def _python_settings(params):
    return {k: v for k, v in params.items()
            if isinstance(v, (bool, numbers.Number, str)) or v is None}


def _check_same_program(first, second):
    """The check trace must run the same ops with the same Python settings."""
    for a, b in zip(first.ops, second.ops):
        if a.fn is not b.fn or len(a.inputs) != len(b.inputs) or \
                _python_settings(a.params) != _python_settings(b.params):
            raise ExportError(
                f"onnx.export: {a.where()}: the forward runs other ops for other input "
                f"values or sizes (control flow or settings depending on the input, e.g. "
                f"through .item()); such a model cannot be exported as one graph")
        if a.output.ndim != b.output.ndim:
            raise ExportError(
                f"onnx.export: {a.where()}: its output has {a.output.ndim} dims for the traced "
                f"input but {b.output.ndim} for another batch size (e.g. squeeze() removing a "
                "batch axis of 1); trace with another batch size or give the dim")
    if len(first.ops) != len(second.ops) or len(first.outputs) != len(second.outputs):
        raise ExportError("onnx.export: the forward runs a different number of ops for "
                          "other input values or sizes (control flow depending on the "
                          "input); such a model cannot be exported as one graph")


def _needed_ops(trace):
    """Indices of the ops the outputs depend on (dead ops are not exported)."""
    producer = {op.out_key: i for i, op in enumerate(trace.ops)}
    needed, stack = set(), list(trace.output_keys)
    while stack:
        i = producer.get(stack.pop())
        if i is None or i in needed:
            continue
        needed.add(i)
        stack.extend(trace.ops[i].in_keys)
    return sorted(needed)


# ----------------------------------------------------------------------------- building

class _Builder:
    """Turns the two traces into the graph: value names for inputs, parameters (by their
    state-dict keys), constants and op outputs."""

    def __init__(self, onnx, opset, model, first, second, input_names):
        self.g = GraphBuilder(onnx, opset)
        self.first, self.second = first, second
        self.values = {}                     # value_key -> value name
        self.by_array = {}                   # id(storage array) -> value name
        self.input_names = list(input_names)
        self._dims = {}                      # (input name, axis) -> its run-time size
        self.produced = set()                # names made by nodes
        for key, t, name in zip(first.input_keys, first.inputs, input_names):
            self.g.reserve(name)
            self.values[key] = name
            self.by_array[id(t.data)] = name
        self.param_by_tensor, self.param_by_array = {}, {}
        for key, t in model.state_dict(keep_vars=True).items():
            self.param_by_tensor.setdefault(id(t), (key, t))
            self.param_by_array.setdefault(id(t.data), (key, t))
        for key, _ in self.param_by_array.values():
            self.g.reserve(key)

    def input_dim(self, size1, size2):
        """See OpView.input_dim (one Shape + Gather per input axis, made once)."""
        for name, t1, t2 in zip(self.input_names, self.first.inputs, self.second.inputs):
            for axis, (n1, n2) in enumerate(zip(t1.shape, t2.shape)):
                if (n1, n2) == (size1, size2) and n1 != n2:
                    key = (name, axis)
                    if key not in self._dims:
                        shape = self.g.node("Shape", [name])
                        self._dims[key] = self.g.node("Gather", [shape, self.g.ints([axis])],
                                                      axis=0)
                    return self._dims[key]
        return None

    def _filled(self, a, b):
        """A tensor of one value whose shape follows the input's dynamic axes (e.g.
        tc.zeros(x.shape[0], 10)) as ConstantOfShape of the run-time shape; else None."""
        if a.ndim != b.ndim or not a.size or not b.size:
            return None
        value = a.reshape(-1)[0]
        if not ((a == value).all() and (b == value).all()):
            return None
        spec = [int(n1) if n1 == n2 else self.input_dim(n1, n2)
                for n1, n2 in zip(a.shape, b.shape)]
        if any(v is None for v in spec):
            return None
        fill = self.g.onnx.numpy_helper.from_array(np.asarray([value], a.dtype), "value")
        return self.g.node("ConstantOfShape", [shape_value(self.g, spec)], value=fill)

    def _param(self, key, arr):
        if key not in self.g.initializers:
            self.g.initializer(key, host(arr))
        return key

    def array_input(self, arr, dtype):
        hit = self.param_by_array.get(id(arr))
        if hit is not None and hit[1].data.dtype == dtype:
            return self._param(hit[0], arr)
        return self.g.const(host(arr).astype(dtype))

    def value(self, key, t, t2, where):
        """The name of the value `key` held by tensor `t` (used at `where`; `t2` is its
        twin in the check trace)."""
        name = self.values.get(key)
        if name is not None:
            return name
        hit = self.param_by_tensor.get(id(t)) or self.param_by_array.get(id(t.data))
        if hit is not None:
            name = self._param(hit[0], t.data)
        else:
            a, b = host(t.data), host(t2.data)
            name = self._filled(a, b) if a.shape != b.shape else None
            if name is None:
                if a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
                    raise ExportError(
                        f"onnx.export: {where}: one of its inputs (shape {a.shape}) was "
                        "computed from the model's input outside the traced ops (a "
                        "comparison, .item(), .numpy(), a non-constant tensor of the input's "
                        "size, ...) and would be frozen into the graph as a constant")
                name = self.g.const(a)
        self.values[key] = name
        return name

    def build(self):
        for i in _needed_ops(self.first):
            op, op2 = self.first.ops[i], self.second.ops[i]
            convert = CONVERTERS.get(op.name)
            if convert is None:
                raise ExportError(f"onnx.export: {op.where()}: the op {op.name} has no ONNX "
                                  "mapping (not exportable)")
            inputs = [self.value(k, t, t2, op.where())
                      for k, t, t2 in zip(op.in_keys, op.inputs, op2.inputs)]
            out = convert(self.g, OpView(op, op2, inputs, self.array_input, self))
            self.values[op.out_key] = out
            self.by_array[id(op.output.data)] = out
            self.produced.add(out)

    def name_outputs(self, output_names):
        """Bind each output tensor to its output name (renaming the producing node's
        value, or an Identity node for an input, a parameter or a repeat)."""
        renamed = set()
        for key, t, t2, name in zip(self.first.output_keys, self.first.outputs,
                                    self.second.outputs, output_names):
            value = self.values.get(key)
            if value is None:            # an output that is a parameter or a constant
                value = self.value(key, t, t2, f"output {name!r}")
            if value in self.produced and value not in renamed:
                self.g.rename(value, name)
                renamed.add(value)
                self.values[key] = name
                self.produced.add(name)
            else:
                self.g.nodes.append(self.g.onnx.helper.make_node(
                    "Identity", [value], [name], name=f"Identity_output_{name}"))


def _value_info(onnx, name, t, t2, labels, input_axes):
    """Graph input/output type: the dynamic axes get dim_params ("batch"), others sizes."""
    dims = []
    for axis, (n1, n2) in enumerate(zip(t.shape, t2.shape)):
        if axis in labels:
            dims.append(labels[axis])
        elif n1 != n2:
            dims.append(input_axes.get((n1, n2), f"{name}_dim{axis}"))
        else:
            dims.append(int(n1))
    elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(t.data.dtype))
    return onnx.helper.make_tensor_value_info(name, elem, dims)


def _write(data, f):
    if isinstance(f, (str, os.PathLike)):
        from ..serialization import write_atomically
        write_atomically(os.fspath(f), data)
    elif hasattr(f, "write"):
        f.write(data)
    else:
        raise TypeError(f"onnx.export: f must be a path or a writable binary file, got "
                        f"{type(f).__name__}")


def export(model, args, f, input_names=None, output_names=None, dynamic_axes=None,
           opset_version=17, *, export_params=True, verbose=False, do_constant_folding=True,
           keep_initializers_as_inputs=False, metadata=None):
    """Write `model`'s forward on `args` to `f` (a path or binary file) as an ONNX model.

    As `torch.onnx.export`: the forward is traced once in eval mode (the model's modes
    are restored after), parameters and buffers become initializers named by their
    state-dict keys, `dynamic_axes={"input": {0: "batch"}}` leaves axes free, and the
    model is checked by `onnx.checker.check_model`. An op or layer that cannot be
    exported raises ExportError naming it and its place in the model.

    torch's keywords: `export_params` must be True (the file always holds the weights),
    `keep_initializers_as_inputs` also lists them as graph inputs, `verbose` prints the
    graph, `do_constant_folding` is accepted (nothing here needs folding). `metadata` (an
    addition): {str: str} stored as the model's metadata_props."""
    from ..nn import Module
    onnx = _import_onnx()
    if not isinstance(model, Module):
        raise TypeError(f"onnx.export: model must be an nn.Module, got {type(model).__name__}")
    if opset_version is None:
        opset_version = 17
    _check_opset(onnx, opset_version)
    if not export_params:
        raise ValueError("onnx.export: export_params=False is not supported (the ONNX file "
                         "always holds the weights)")
    del do_constant_folding    # accepted for torch's callers; the graph has nothing to fold
    args = _as_args(args)
    input_names = _names(input_names, len(args), "input", "input_names")
    first = trace_forward(model, args)
    output_names = _names(output_names, len(first.outputs), "output", "output_names")
    if set(input_names) & set(output_names):
        raise ValueError(f"onnx.export: input and output names overlap: "
                         f"{sorted(set(input_names) & set(output_names))}")
    dynamic = _parse_dynamic_axes(dynamic_axes, set(input_names) | set(output_names))
    for name, t in zip(input_names, args):
        bad = [a for a in dynamic.get(name, {}) if not 0 <= a < t.ndim]
        if bad:
            raise ValueError(f"onnx.export: dynamic axes {bad} of {name!r} are out of range "
                             f"for its shape {t.shape}")
    second = trace_forward(model, second_inputs(
        args, [set(dynamic.get(n, {})) for n in input_names]))
    _check_same_program(first, second)

    builder = _Builder(onnx, opset_version, model, first, second, input_names)
    builder.build()
    builder.name_outputs(output_names)
    g = builder.g

    input_axes = {}
    for name, t, t2 in zip(input_names, first.inputs, second.inputs):
        for axis, label in dynamic.get(name, {}).items():
            input_axes.setdefault((t.shape[axis], t2.shape[axis]), label)
    inputs = [_value_info(onnx, n, t, t2, dynamic.get(n, {}), input_axes)
              for n, t, t2 in zip(input_names, first.inputs, second.inputs)]
    outputs = [_value_info(onnx, n, t, t2, dynamic.get(n, {}), input_axes)
               for n, t, t2 in zip(output_names, first.outputs, second.outputs)]
    initializers = [onnx.numpy_helper.from_array(arr, name)
                    for name, arr in g.initializers.items()]
    if keep_initializers_as_inputs:
        inputs += [onnx.helper.make_tensor_value_info(
            t.name, t.data_type, list(t.dims)) for t in initializers]
    graph = onnx.helper.make_graph(g.nodes, type(model).__name__, inputs, outputs,
                                   initializers)
    opset = onnx.helper.make_opsetid("", opset_version)
    proto = onnx.helper.make_model(graph, opset_imports=[opset],
                                   producer_name="tinygrad_cv")
    proto.ir_version = onnx.helper.find_min_ir_version_for([opset])
    if metadata:
        onnx.helper.set_model_props(proto, {str(k): str(v) for k, v in metadata.items()})
    onnx.checker.check_model(proto)
    if verbose:
        print(onnx.printer.to_text(proto.graph))
    _write(proto.SerializeToString(), f)
