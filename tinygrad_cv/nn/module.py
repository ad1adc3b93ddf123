"""nn.Module: the base class of every layer, as `torch.nn.Module`.

A Module registers its Parameters, buffers and submodules when they are assigned as
attributes, in insertion order, so `parameters()` and `state_dict()` have a stable order
and PyTorch's dotted names ("features.0.weight"). Train/eval is a per-module flag.
"""
from __future__ import annotations

import itertools
import weakref
from collections import OrderedDict

from ..backend import array_module, canonical_device, device as Device, transfer
from .. import dtypes
from ..tensor import Tensor
from .parameter import Parameter
# state-dict loading lives in state_dict.py; IncompatibleKeys stays importable from here
from .state_dict import IncompatibleKeys, load_state_dict  # noqa: F401


class RemovableHandle:
    """What `register_forward_hook` returns: `remove()` unregisters the hook (also on
    leaving a `with handle:` block), as torch.utils.hooks.RemovableHandle."""

    _ids = itertools.count()

    def __init__(self, hooks_dict):
        self.hooks_dict_ref = weakref.ref(hooks_dict)
        self.id = next(RemovableHandle._ids)

    def remove(self):
        hooks = self.hooks_dict_ref()
        if hooks is not None:
            hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False


def _add_indent(text: str, spaces: int) -> str:
    """Indent every line but the first of a multi-line repr (nested modules)."""
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    rest = [(" " * spaces + line) if line.strip() else "" for line in lines[1:]]
    return "\n".join([lines[0]] + rest)


def _name_layer_in(exc, module):
    """Prefix a bad-input error raised inside `module`'s own forward with the layer, e.g.
    "Linear(in_features=9216, out_features=128): linear: input of shape ...", so every
    layer names itself without re-checking what its op checks. Only the innermost layer
    adds its name (an outer Sequential does not)."""
    if getattr(exc, "_tinygrad_cv_layer", False):
        return
    exc._tinygrad_cv_layer = True
    if exc.args and isinstance(exc.args[0], str):
        name = repr(module).splitlines()[0].rstrip("(")
        if not exc.args[0].startswith(type(module).__name__):   # already names it
            exc.args = (f"{name}: {exc.args[0]}",) + exc.args[1:]


class Module:
    """Base class for all layers: subclass it, assign layers/Parameters in `__init__`,
    write `forward`, and call the module like a function."""

    training: bool

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments "
                            f"{args} {kwargs}")
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers_set", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_backward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_backward_hooks", OrderedDict())

    # ------------------------------------------------------------------ calling
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required '
                                  f'"forward" function')

    def _has_hooks(self):
        d = self.__dict__
        return bool(d.get("_forward_pre_hooks") or d.get("_forward_hooks")
                    or d.get("_backward_hooks") or d.get("_backward_pre_hooks"))

    def __call__(self, *args, **kwargs):
        d = self.__dict__
        try:
            if not (d.get("_forward_pre_hooks") or d.get("_forward_hooks")
                    or d.get("_backward_hooks") or d.get("_backward_pre_hooks")):
                return self.forward(*args, **kwargs)
            return self._call_with_hooks(args, kwargs)
        except (ValueError, TypeError, RuntimeError, IndexError) as exc:
            _name_layer_in(exc, self)
            raise

    def _call_with_hooks(self, args, kwargs):
        """`__call__` when hooks are registered: pre-hooks may replace the arguments,
        forward hooks the output, in registration order (prepended ones first), as torch."""
        for hook, with_kwargs in list(self.__dict__.get("_forward_pre_hooks", {}).values()):
            if with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(f"forward pre-hook must return None or a tuple of "
                                           f"(new_args, new_kwargs), but got {result!r}.")
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        d = self.__dict__
        if d.get("_backward_hooks") or d.get("_backward_pre_hooks"):
            from .backward_hooks import call_with_backward_hooks
            output = call_with_backward_hooks(self, self.forward, args, kwargs)
        else:
            output = self.forward(*args, **kwargs)
        for hook, with_kwargs in list(self.__dict__.get("_forward_hooks", {}).values()):
            result = hook(self, args, kwargs, output) if with_kwargs else hook(self, args, output)
            if result is not None:
                output = result
        return output

    def _add_hook(self, registry, hook, prepend, with_kwargs):
        if not callable(hook):
            raise TypeError(f"hook must be callable, got {type(hook).__name__}")
        hooks = self.__dict__.setdefault(registry, OrderedDict())
        handle = RemovableHandle(hooks)
        hooks[handle.id] = (hook, bool(with_kwargs))
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    def register_full_backward_hook(self, hook, prepend: bool = False):
        """Call `hook(module, grad_input, grad_output)` when the gradients with respect to
        the module's positional tensor inputs are computed (grad_input entries are None
        for inputs that need none); a non-None result replaces grad_input (modules with
        one tensor input only, here). See nn/backward_hooks.py."""
        return self._add_backward_hook("_backward_hooks", hook, prepend)

    def register_full_backward_pre_hook(self, hook, prepend: bool = False):
        """Call `hook(module, grad_output)` when the output's gradient is known; a
        non-None result replaces grad_output."""
        return self._add_backward_hook("_backward_pre_hooks", hook, prepend)

    def _add_backward_hook(self, registry, hook, prepend):
        if not callable(hook):
            raise TypeError(f"hook must be callable, got {type(hook).__name__}")
        hooks = self.__dict__.setdefault(registry, OrderedDict())
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_pre_hook(self, hook, *, prepend: bool = False,
                                  with_kwargs: bool = False):
        """Call `hook(module, args)` before each forward; a non-None result replaces the
        positional arguments (a non-tuple becomes a 1-tuple). With `with_kwargs`, the hook
        is `hook(module, args, kwargs)` and returns None or `(args, kwargs)`. Returns a
        handle whose `remove()` unregisters it."""
        return self._add_hook("_forward_pre_hooks", hook, prepend, with_kwargs)

    def register_forward_hook(self, hook, *, prepend: bool = False,
                              with_kwargs: bool = False, always_call: bool = False):
        """Call `hook(module, args, output)` after each forward (`hook(module, args,
        kwargs, output)` with `with_kwargs`); a non-None result replaces the output.
        `always_call` is accepted (hooks here do not run when forward raises)."""
        return self._add_hook("_forward_hooks", hook, prepend, with_kwargs)

    # ------------------------------------------------------------------ registration
    def _check_init_called(self, what):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} before Module.__init__() call "
                                 f"(call super().__init__() first in {type(self).__name__})")

    def _check_new_name(self, name, kind, allow_existing):
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if name == "" or "." in name:
            raise KeyError(f'{kind} name can\'t be empty or contain ".", got: "{name}"')
        if hasattr(self, name) and name not in allow_existing:
            raise KeyError(f'attribute "{name}" already exists')

    def register_parameter(self, name: str, param):
        """Add a Parameter (or None, a declared but absent parameter) under `name`."""
        self._check_init_called("parameters")
        self._check_new_name(name, "parameter", self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter "
                            f"'{name}' (nn.Parameter or None required)")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor, persistent: bool = True):
        """Add a non-trainable tensor (running statistics...) that moves with `to()` and,
        when `persistent`, is saved in `state_dict()`."""
        self._check_init_called("buffers")
        self._check_new_name(name, "buffer", self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer "
                            f"'{name}' (Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module):
        """Add a child module (or None) under `name`."""
        self._check_init_called("modules")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_new_name(name, "module", self._modules)
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name, value):
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            self._check_init_called("parameters")
            self._forget(name)
            self._parameters[name] = value
            return
        if params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter "
                                f"'{name}' (nn.Parameter or None expected)")
            params[name] = None
            return
        if isinstance(value, Module):
            self._check_init_called("modules")
            self._forget(name)
            self._modules[name] = value
            return
        modules = self.__dict__.get("_modules")
        if modules is not None and name in modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module "
                                f"'{name}' (nn.Module or None expected)")
            modules[name] = None
            return
        buffers = self.__dict__.get("_buffers")
        if buffers is not None and name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer "
                                f"'{name}' (Tensor or None expected)")
            buffers[name] = value
            return
        object.__setattr__(self, name, value)

    def _forget(self, name):
        """Remove `name` from every registry and the instance dict (before re-registering)."""
        self.__dict__.pop(name, None)
        for registry in ("_parameters", "_buffers", "_modules"):
            self.__dict__[registry].pop(name, None)
        self._non_persistent_buffers_set.discard(name)

    def __getattr__(self, name):
        # Only called when normal lookup fails: look in the registries.
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(registry, ()):
                del self.__dict__[registry][name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(object.__dir__(self)) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    # ------------------------------------------------------------------ traversal
    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True):
        """Yield (dotted name, module) for this module and every descendant, pre-order."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry, prefix, recurse, remove_duplicate):
        seen = set()
        owners = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for module_prefix, module in owners:
            for name, value in getattr(module, registry).items():
                if value is None:
                    continue
                if remove_duplicate:
                    if id(value) in seen:
                        continue
                    seen.add(id(value))
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True):
        """Yield (dotted name, Parameter), each shared Parameter once, in registration order."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    def get_submodule(self, target: str):
        """The descendant at a dotted path ("features.0"); "" is this module."""
        module = self
        if target == "":
            return module
        for part in target.split("."):
            if part not in module._modules or module._modules[part] is None:
                raise AttributeError(f"{module._get_name()} has no submodule `{part}` "
                                     f"(looking up '{target}')")
            module = module._modules[part]
        return module

    def _get_member(self, target, registry, kind):
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        members = module.__dict__[registry]
        if name not in members or members[name] is None:
            raise AttributeError(f"{module._get_name()} has no {kind} `{name}` "
                                 f"(looking up '{target}')")
        return members[name]

    def get_parameter(self, target: str):
        """The Parameter at a dotted path ("features.0.weight")."""
        return self._get_member(target, "_parameters", "parameter")

    def get_buffer(self, target: str):
        """The buffer at a dotted path ("bn.running_mean")."""
        return self._get_member(target, "_buffers", "buffer")

    def apply(self, fn):
        """Call `fn` on every submodule (children first) and on self; returns self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes and grads
    def train(self, mode: bool = True):
        """Set the training flag of this module and every descendant; returns self."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True):
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True):
        """Reset every parameter's `.grad`: to None (default), or to zeros in place."""
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                param.grad.data[...] = 0

    # ------------------------------------------------------------------ devices / dtypes
    def _move_tensor(self, t: Tensor, dev, dtype):
        """Move/cast a parameter or buffer in place, so its identity is kept."""
        if dtype is not None and dtypes.is_floating(t.dtype) and t.dtype != dtype:
            t.data = t.data.astype(dtype)
            if t.grad is not None:
                t.grad.data = t.grad.data.astype(dtype)
        if dev is not None and t.device_str != dev:
            t.data = transfer(t.data, dev)
            t.device_str = dev
            if t.grad is not None:
                t.grad.data = transfer(t.grad.data, dev)
                t.grad.device_str = dev

    def _apply_to_tensors(self, dev, dtype):
        for module in self.modules():
            for registry in ("_parameters", "_buffers"):
                for value in getattr(module, registry).values():
                    if value is not None:
                        self._move_tensor(value, dev, dtype)
        return self

    def to(self, *args, device=None, dtype=None):
        """`to(device)`, `to(dtype)` (floating tensors only) or both; in place, returns self.

        Parameters keep their identity, so an optimizer built before `to()` still holds them.
        """
        for arg in args:
            if isinstance(arg, (str, Device)):
                device = arg
            elif isinstance(arg, Tensor):
                device, dtype = arg.device_str, arg.dtype
            else:
                dtype = arg
        dev = canonical_device(device) if device is not None else None
        if dev is not None:
            array_module(dev)   # a clear error now when cuda is not available
        dtype = dtypes.to_dtype(dtype) if dtype is not None else None
        if dtype is not None and not dtypes.is_floating(dtype):
            raise TypeError(f"Module.to only accepts floating point dtypes, but got {dtype}")
        return self._apply_to_tensors(dev, dtype)

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else
                       (f"cuda:{device}" if isinstance(device, int) else device))

    def float(self):
        return self.to(dtypes.float32)

    def double(self):
        return self.to(dtypes.float64)

    def half(self):
        return self.to(dtypes.float16)

    # ------------------------------------------------------------------ state dict
    def _local_state(self):
        """This module's own (name, tensor) entries that go in a state dict."""
        for name, param in self._parameters.items():
            if param is not None:
                yield name, param
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent_buffers_set:
                yield name, buf

    def state_dict(self, *, destination=None, prefix: str = "", keep_vars: bool = False):
        """An OrderedDict of every parameter and persistent buffer by dotted name.

        Values share storage with the module (detached unless `keep_vars`), as in torch.
        """
        if destination is None:
            destination = OrderedDict()
        for name, value in self._local_state():
            destination[prefix + name] = value if keep_vars else value.detach()
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".",
                                  keep_vars=keep_vars)
        return destination

    def _optional_state_keys(self):
        """Names that may be absent from a loaded state dict (e.g. BatchNorm's
        `num_batches_tracked`, which old checkpoints lack). Subclasses override."""
        return ()

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy `state_dict`'s values into the parameters and buffers, in place.

        Every key and shape is checked first; on any error nothing is changed. Missing or
        unexpected keys raise when `strict`; shape mismatches always raise. Returns
        `IncompatibleKeys(missing_keys, unexpected_keys)`. Values may be tinygrad_cv
        Tensors, NumPy arrays or torch tensors.
        """
        return load_state_dict(self, state_dict, strict, assign)

    # ------------------------------------------------------------------ printing
    def _get_name(self) -> str:
        return type(self).__name__

    def extra_repr(self) -> str:
        """One-line settings shown inside the repr (override in layers)."""
        return ""

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + _add_indent(repr(module), 2)
                       for name, module in self._modules.items()]
        lines = extra_lines + child_lines
        text = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                text += extra_lines[0]
            else:
                text += "\n  " + "\n  ".join(lines) + "\n"
        return text + ")"
