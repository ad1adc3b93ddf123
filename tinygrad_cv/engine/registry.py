"""Registries: names -> classes, so a config's `dict(type="SGD", lr=0.1)` builds an object.

    from tinygrad_cv.engine import MODELS, build

    @MODELS.register_module()
    class MyNet(nn.Module): ...

    model = MODELS.build(dict(type="MyNet", width=64))

Every built-in class is registered (models, datasets, transforms, optimizers, lr
schedulers, hooks, metrics). `build(cfg, registry=None, **default_args)` builds nested
dicts too: a value that is a dict with a `type` (or a list of them) is built first, in
the registry that the key names (`transform`/`transforms` -> TRANSFORMS, `dataset` ->
DATASETS, `model` -> MODELS), and a list of transforms becomes a `Compose`.
An unknown type names the registry and the closest names it knows.
"""
from __future__ import annotations

import difflib
import inspect

from ..errors import UserError


class RegistryError(UserError):
    """An unknown type or a bad build dict; names the registry."""


class Registry:
    """A named mapping of type names to classes (or factory functions)."""

    def __init__(self, name):
        self.name = name
        self._modules = {}

    def __contains__(self, name):
        _register_builtins()
        return name in self._modules

    def __len__(self):
        _register_builtins()
        return len(self._modules)

    def __repr__(self):
        return f"Registry({self.name!r}, {self.keys()})"

    def keys(self):
        """The registered names, sorted."""
        _register_builtins()
        return sorted(self._modules)

    def get(self, name):
        """The class registered as `name`; RegistryError with close matches if none."""
        _register_builtins()
        try:
            return self._modules[name]
        except KeyError:
            close = difflib.get_close_matches(str(name), list(self._modules), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise RegistryError(f"{self.name} registry has no type {name!r}{hint} "
                                f"(it has {len(self._modules)} types: "
                                f"{', '.join(sorted(self._modules))})") from None

    def register_module(self, name=None, module=None, force=False):
        """Register a class under `name` (default: its __name__). Usable as a decorator
        (`@REG.register_module()`) or directly (`REG.register_module(module=cls)`)."""
        def register(obj):
            if not callable(obj):
                raise TypeError(f"{self.name}: can only register classes or functions, "
                                f"got {type(obj).__name__}")
            key = name or obj.__name__
            if not force and key in self._modules and self._modules[key] is not obj:
                raise KeyError(f"{self.name} registry already has a type {key!r} "
                               f"({self._modules[key]!r}); pass force=True to replace it")
            self._modules[key] = obj
            return obj
        if module is not None:
            return register(module)
        return register

    def build(self, cfg, **default_args):
        return build(cfg, self, **default_args)


MODELS = Registry("MODELS")
DATASETS = Registry("DATASETS")
TRANSFORMS = Registry("TRANSFORMS")
OPTIMIZERS = Registry("OPTIMIZERS")
SCHEDULERS = Registry("SCHEDULERS")
HOOKS = Registry("HOOKS")
METRICS = Registry("METRICS")

_NESTED = {"transform": TRANSFORMS, "transforms": TRANSFORMS, "target_transform": TRANSFORMS,
           "dataset": DATASETS, "model": MODELS}
"""Keys whose dict values are built in a registry of their own."""


def build(cfg, registry=None, **default_args):
    """The object `cfg["type"](**rest)` of `registry` (or of the registry its keys
    imply), with `default_args` filled in where `cfg` lacks them and nested type-dicts
    built first."""
    if not isinstance(cfg, dict):
        raise RegistryError(f"{registry.name if registry else 'build'}: expected a dict with "
                            f"a 'type' key, got {type(cfg).__name__} {cfg!r}")
    if "type" not in cfg:
        raise RegistryError(f"{registry.name if registry else 'build'}: the dict {dict(cfg)!r} "
                            f"has no 'type' key")
    if registry is None:
        raise RegistryError(f"build: no registry given for type {cfg['type']!r}")
    _register_builtins()
    args = {key: value for key, value in cfg.items() if key != "type"}
    for key, value in default_args.items():
        args.setdefault(key, value)
    for key, value in list(args.items()):
        args[key] = _build_nested(key, value)
    kind = cfg["type"]
    obj_cls = kind if callable(kind) else registry.get(kind)
    try:
        return obj_cls(**args)
    except TypeError as exc:
        name = getattr(obj_cls, "__name__", repr(obj_cls))
        raise RegistryError(f"{registry.name}: building {name} failed: {exc} "
                            f"(arguments: {', '.join(args) or 'none'}; it takes "
                            f"{_signature(obj_cls)})") from None


def _build_nested(key, value):
    nested = _NESTED.get(key)
    if nested is None:
        return value
    if isinstance(value, dict) and "type" in value:
        return build(value, nested)
    if nested is TRANSFORMS and isinstance(value, (list, tuple)) and any(
            isinstance(v, dict) and "type" in v for v in value):
        steps = [build(v, TRANSFORMS) if isinstance(v, dict) else v for v in value]
        return TRANSFORMS.get("Compose")(steps)
    return value


def _signature(obj):
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(unknown arguments)"


_builtins_registered = False


def _register_builtins():
    """Register every built-in class, once (deferred: the registries are importable
    before the modules they describe, and hooks/metrics import this module)."""
    global _builtins_registered
    if _builtins_registered:
        return
    _builtins_registered = True
    from .. import data, datasets, models, optim, transforms
    from ..optim import lr_scheduler
    from . import hooks, metrics

    def register_all(registry, module, base=None, names=None):
        for name in names if names is not None else dir(module):
            obj = getattr(module, name, None)
            if not inspect.isclass(obj) or name.startswith("_"):
                continue
            if base is not None and not (issubclass(obj, base) and obj is not base):
                continue
            registry.register_module(name=name, module=obj, force=True)

    from ..nn import Module
    register_all(MODELS, models, Module)
    for extra in ("resnet", "vgg", "mobilenet"):
        try:
            register_all(MODELS, __import__(f"tinygrad_cv.models.{extra}", fromlist=["_"]), Module)
        except ImportError:
            pass
    MODELS.register_module(name="Perceptron", module=models.Perceptron, force=True)
    from .. import nn
    register_all(MODELS, nn, names=[n for n in dir(nn) if n.endswith("Loss")])
    dataset_names = [n for n in getattr(datasets, "__all__", dir(datasets))
                     if inspect.isclass(getattr(datasets, n, None))
                     and issubclass(getattr(datasets, n), data.Dataset)]
    register_all(DATASETS, datasets, names=dataset_names)
    register_all(DATASETS, data, data.Dataset)
    import enum
    transform_names = [n for n in dir(transforms) if inspect.isclass(getattr(transforms, n))
                       and not issubclass(getattr(transforms, n), enum.Enum)
                       and getattr(transforms, n).__module__.startswith(transforms.__name__)]
    register_all(TRANSFORMS, transforms, names=transform_names)
    register_all(OPTIMIZERS, optim, optim.Optimizer)
    register_all(SCHEDULERS, lr_scheduler, lr_scheduler.LRScheduler)
    register_all(HOOKS, hooks, hooks.Hook)
    register_all(METRICS, metrics, metrics.BaseMetric)
    # Lazy classes in tinygrad_cv.datasets (the data branch) may not be Dataset
    # subclasses of this package's Dataset; register them by name too.
    for name in ("ImageFolder", "DatasetFolder", "CIFAR10", "CIFAR100"):
        obj = getattr(datasets, name, None)
        if obj is not None:
            DATASETS.register_module(name=name, module=obj, force=True)

