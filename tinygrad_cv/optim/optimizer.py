"""Optimizer: the base class of every optimizer, with PyTorch's param groups and state dict.

Parameters are organised in *param groups*: dicts holding a list of tensors under
'params' plus the hyperparameters (lr, momentum, ...) that apply to them; missing
hyperparameters are filled in from the optimizer's defaults. Per-parameter state (momentum
buffers, Adam's moments) lives in `self.state[param]`, as Tensors on the param's device:
it is created there, and state that predates a move of its param (`model.to("cuda")`
after some steps) is moved lazily to the param's new device at the next `step()`.

`state_dict()` has PyTorch's structure, so code that inspects or stores it works unchanged:

    {'state': {0: {'momentum_buffer': Tensor}, ...},
     'param_groups': [{'lr': 0.1, ..., 'params': [0, 1, ...]}]}

where parameters are numbered by their position across all groups, in order.

Subclasses implement `_update_group(group)`, which updates each param's raw array in
place (`p.data -= ...`): the array object is never replaced, so anything holding it (a
Module, a view) sees the new values, and no autograd graph is recorded.

Shapes are checked here, once for every optimizer, before any update runs: `step()`
checks every gradient and every state tensor against its parameter (shape, dtype,
device), and `load_state_dict()` checks every loaded state tensor before anything
changes. The update code (the Numba kernels included) therefore only ever sees arrays
of its parameter's size.
"""
from __future__ import annotations

import copy
import warnings
from collections import defaultdict

import numpy as np

from ..autograd import enable_grad
from ..backend import array_module, is_device_array, transfer
from ..tensor import Tensor, wrap_array


class _RequiredParameter:
    """Marks a hyperparameter that has no default (every param group must give it)."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


def state_tensor_like(param, fill=0.0):
    """A new state Tensor of the param's shape, dtype and device, filled with `fill`
    (allocated directly on that device: no host array, no copy)."""
    xp = array_module(param.device_str)
    return wrap_array(xp.full(param.data.shape, fill, dtype=param.data.dtype),
                        param.device_str)


def step_counter():
    """A fresh step counter: a 0-d float32 CPU tensor, as PyTorch keeps `state['step']`."""
    return Tensor(np.zeros((), dtype=np.float32), dtype=np.float32)


def _raw_array(value):
    """The raw array inside a Tensor / NumPy / CuPy / torch value (None if not an array)."""
    if isinstance(value, Tensor):
        return value.data
    if is_device_array(value):
        return value
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        return value.detach().cpu().numpy()   # a torch.Tensor from torch's state_dict()
    return None


def _where(group_index, position):
    return f"parameter {position} of param group {group_index}"


def check_matches_param(op, what, value, param, group_index, position):
    """Raise when `value` (a gradient or state Tensor) differs from `param` in shape, dtype
    or device, naming the parameter and both values: the one check every optimizer relies on."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}: the {what} of {_where(group_index, position)} must be a "
                        f"Tensor, got {type(value).__name__}")
    arr = value.data
    if tuple(arr.shape) != tuple(param.data.shape):
        raise RuntimeError(f"{op}: the {what} of {_where(group_index, position)} has shape "
                           f"{tuple(arr.shape)} but the parameter has shape "
                           f"{tuple(param.data.shape)}")
    if arr.dtype != param.data.dtype:
        raise RuntimeError(f"{op}: the {what} of {_where(group_index, position)} has dtype "
                           f"{arr.dtype} but the parameter has dtype {param.data.dtype}")
    if value.device_str != param.device_str:
        raise RuntimeError(f"{op}: the {what} of {_where(group_index, position)} is on "
                           f"{value.device_str} but the parameter is on {param.device_str}")


def _state_index(op, index):
    """A saved parameter index as an int (some formats give them back as strings)."""
    if isinstance(index, bool):
        raise ValueError(f"{op}: parameter index {index!r} is not an integer")
    try:
        return int(index)
    except (TypeError, ValueError):
        raise ValueError(f"{op}: parameter index {index!r} is not an integer") from None


def check_hyperparameter(name, value, low=0.0, high=None, text=None):
    """Raise PyTorch's ValueError when `value` is outside [low, high]."""
    ok = value >= low and (high is None or value <= high)
    if not ok:
        raise ValueError(f"Invalid {text or name}: {value}")


def reject_unsupported_flags(optimizer_name, **flags):
    """PyTorch's implementation flags that change nothing here must be left off."""
    for name, value in flags.items():
        if value:
            raise NotImplementedError(f"{optimizer_name}: {name}=True is not supported by "
                                      f"tinygrad_cv (there is one implementation per device)")


class Optimizer:
    """Base class, as `torch.optim.Optimizer(params, defaults)`.

    `params`: an iterable of Tensors, of (name, Tensor) pairs, or of dicts (param groups).
    `defaults`: the hyperparameters used by groups that do not set them.
    """

    def __init__(self, params, defaults):
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable "
                            "of Tensors or dicts, but got a Tensor")
        if isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered "
                            "collections, but the ordering of tensors in sets will change "
                            "between runs. Please use a list instead.")
        self.defaults = dict(defaults)
        self.state = defaultdict(dict)
        self.param_groups = []
        param_list = list(params)
        if len(param_list) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_list[0], dict):
            param_list = [{"params": param_list}]
        for group in param_list:
            self.add_param_group(group)

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group):
        """Add a dict of params (and optional hyperparameters) to `param_groups`."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        param_group = dict(param_group)
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered "
                            "collections, but the ordering of tensors in sets will change "
                            "between runs. Please use a list instead.")
        params = list(params)
        names = None
        if params and isinstance(params[0], tuple):
            names = [name for name, _ in params]
            params = [p for _, p in params]
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params "
                                f"is {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        param_group["params"] = params
        if names is not None:
            param_group["param_names"] = names

        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            param_group.setdefault(name, default)

        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; "
                          "in future, this will cause an error", UserWarning, stacklevel=3)
        existing = {id(p) for group in self.param_groups for p in group["params"]}
        if existing & set(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # ------------------------------------------------------------------ stepping
    def zero_grad(self, set_to_none=True):
        """Reset every param's gradient: to None (the default), or to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.data[...] = 0

    def step(self, closure=None):
        """One update of every param that has a gradient. `closure` re-evaluates the loss
        (it runs with grad enabled) and its value is returned, as in PyTorch."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._state_follows_params(group)
        self._check_step_inputs()
        for group in self.param_groups:
            self._update_group(group)
        return loss

    def _check_step_inputs(self):
        """Every gradient and state tensor must match its parameter (shape, dtype, device)
        before any parameter changes: a user-assigned `.grad` or a param whose `.data` was
        replaced would otherwise be read past its end by the kernels, or broadcast."""
        op = f"{type(self).__name__}.step"
        for g, group in enumerate(self.param_groups):
            for i, p in enumerate(group["params"]):
                grad = p.grad
                if grad is None:
                    continue          # not updated: its state is not read either
                check_matches_param(op, "gradient", grad, p, g, i)
                values = self.state.get(p)
                if values:
                    for name, value in values.items():
                        if isinstance(value, Tensor) and self._expected_state_shape(p, name) \
                                is not None:
                            check_matches_param(op, f"state '{name}'", value, p, g, i)

    def _expected_state_shape(self, param, name):
        """The shape state `name` of `param` must have, or None when it is not tied to the
        param (the 'step' counter). Every state tensor of the optimizers here has its
        param's shape; an optimizer with other state overrides this."""
        return None if name == "step" else tuple(param.data.shape)

    def _state_follows_params(self, group):
        """Move state created before its param moved (`model.to("cuda")` after some steps,
        or after `load_state_dict`) to the param's device, once, on the next step.

        State is otherwise always created on its param's device, so this is a no-op
        check per state tensor (no transfer, no sync) in the usual loop. 'step' counters
        stay on the CPU, as in PyTorch."""
        for p in group["params"]:
            values = self.state.get(p)
            if not values:
                continue
            for name, value in values.items():
                if isinstance(value, Tensor) and name != "step" \
                        and value.device_str != p.device_str:
                    values[name] = wrap_array(transfer(value.data, p.device_str),
                                                p.device_str)

    def _update_group(self, group):
        raise NotImplementedError(f"{type(self).__name__} does not implement _update_group")

    # ------------------------------------------------------------------ state dict
    def state_dict(self):
        """The optimizer's state in PyTorch's layout (params replaced by their indices).

        Like PyTorch, the state tensors are returned by reference, not copied.
        """
        index_of = {}
        packed_groups = []
        for group in self.param_groups:
            packed = {key: value for key, value in group.items() if key != "params"}
            for p in group["params"]:
                index_of.setdefault(id(p), len(index_of))
            packed["params"] = [index_of[id(p)] for p in group["params"]]
            packed_groups.append(packed)
        packed_state = {index_of[id(p)]: values for p, values in self.state.items()
                        if id(p) in index_of}
        return {"state": packed_state, "param_groups": packed_groups}

    def load_state_dict(self, state_dict):
        """Restore what `state_dict()` returned (also one of torch.optim's state dicts).

        Floating-point state is cast to its param's dtype and moved to its device
        ('step' stays a float32 CPU tensor); everything is copied, so the loaded
        optimizer never shares arrays with `state_dict`. Everything is checked first
        (group and param counts, each state tensor's shape and dtype against its
        param): on an error the optimizer is left unchanged.
        """
        op = "load_state_dict"
        if not isinstance(state_dict, dict) or "state" not in state_dict \
                or "param_groups" not in state_dict:
            raise ValueError(f"{op}: expected a dict with 'state' and 'param_groups' keys, "
                             f"as returned by Optimizer.state_dict()")
        saved_groups = state_dict["param_groups"]
        saved_state = state_dict["state"]
        if not isinstance(saved_groups, (list, tuple)) or \
                not all(isinstance(group, dict) and isinstance(group.get("params"), (list, tuple))
                        for group in saved_groups):
            raise ValueError(f"{op}: 'param_groups' must be a list of dicts, each with a "
                             f"'params' list of parameter indices")
        if not isinstance(saved_state, dict):
            raise ValueError(f"{op}: 'state' must be a dict from parameter index to a dict "
                             f"of state values, got {type(saved_state).__name__}")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{op}: loaded state dict has a different number of parameter "
                             f"groups ({len(saved_groups)}) than the optimizer "
                             f"({len(self.param_groups)})")
        for g, (mine, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(mine["params"]) != len(saved["params"]):
                raise ValueError(f"{op}: loaded state dict contains a parameter group that "
                                 f"doesn't match the size of optimizer's group: group {g} has "
                                 f"{len(saved['params'])} params saved, "
                                 f"{len(mine['params'])} in the optimizer")

        place_of = {}        # saved index -> (param, group index, position in the group)
        for g, (mine, saved) in enumerate(zip(self.param_groups, saved_groups)):
            for i, (index, p) in enumerate(zip(saved["params"], mine["params"])):
                key = _state_index(op, index)
                if key in place_of:
                    raise ValueError(f"{op}: parameter index {key} appears more than once in "
                                     f"the saved param groups")
                place_of[key] = (p, g, i)

        new_state = defaultdict(dict)
        for index, values in saved_state.items():
            key = _state_index(op, index)
            if key not in place_of:
                continue
            param, g, i = place_of[key]
            if not isinstance(values, dict):
                raise ValueError(f"{op}: the state of {_where(g, i)} must be a dict, got "
                                 f"{type(values).__name__}")
            new_state[param] = {name: self._state_value_for(param, name, value, g, i)
                                for name, value in values.items()}

        new_groups = []
        for mine, saved in zip(self.param_groups, saved_groups):
            group = {key: copy.deepcopy(value) for key, value in saved.items() if key != "params"}
            group["params"] = mine["params"]
            new_groups.append(group)
        self.state = new_state
        self.param_groups = new_groups

    def _state_value_for(self, param, name, value, group_index, position):
        """A checked copy of one loaded state value, on the param's device and in its dtype."""
        op = "load_state_dict"
        where = _where(group_index, position)
        arr = _raw_array(value)
        if name == "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
            arr = np.asarray(value)       # older PyTorch kept the step as a number
        if arr is None:
            return copy.deepcopy(value)
        if name == "step":
            if arr.size != 1 or arr.dtype.kind not in "iuf":
                raise ValueError(f"{op}: state 'step' of {where} must be one number, got "
                                 f"an array of shape {tuple(arr.shape)} and dtype {arr.dtype}")
            return Tensor(transfer(arr, "cpu").astype(np.float32).reshape(()), dtype=np.float32)
        expected = self._expected_state_shape(param, name)
        if expected is not None:
            if tuple(arr.shape) != tuple(expected):
                raise ValueError(f"{op}: state '{name}' of {where} has shape "
                                 f"{tuple(arr.shape)} but the parameter has shape "
                                 f"{tuple(expected)} (is this the state of another model?)")
            if arr.dtype.kind != "f":
                raise ValueError(f"{op}: state '{name}' of {where} has dtype {arr.dtype} "
                                 f"but the parameter has dtype {param.data.dtype} (state "
                                 f"tensors must be floating point)")
        if arr.dtype.kind == "f":
            arr = arr.astype(param.data.dtype, copy=False)
        arr = transfer(arr, param.device_str)
        return Tensor(arr, dtype=arr.dtype, device=param.device_str)   # Tensor() copies

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)
