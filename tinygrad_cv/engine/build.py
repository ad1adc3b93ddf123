"""`Runner.from_cfg`: a Runner from a Config (model, dataloaders, optimizer, schedulers,
hooks, metrics and run settings), seeding before anything random is built."""
from __future__ import annotations

import os

from ..errors import UserError
from .config import Config, ConfigError
from .registry import DATASETS, MODELS, build

RUN_KEYS = ("max_epochs", "max_iters", "val_interval", "seed", "resume", "load_from",
            "launcher", "device", "accumulative_counts", "clip_grad", "log_interval")


def build_dataloader(cfg, where="train_dataloader"):
    """A DataLoader from dict(dataset=dict(type=...), batch_size=..., shuffle=..., ...)."""
    from ..data import DataLoader
    if cfg is None:
        return None
    if not isinstance(cfg, dict) or "dataset" not in cfg:
        raise ConfigError(f"{where}: expected a dict with a 'dataset' key, got {cfg!r}")
    args = dict(cfg)
    dataset = args.pop("dataset")
    if isinstance(dataset, dict):
        dataset = build(dataset, DATASETS)
    sampler = args.pop("sampler", None)
    if isinstance(sampler, dict) and set(sampler) <= {"type", "shuffle"}:
        args.setdefault("shuffle", sampler.get("shuffle", False))   # mmengine's DefaultSampler
    elif sampler is not None:
        args["sampler"] = sampler
    try:
        return DataLoader(dataset, **args)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def build_scheduler(cfg, optimizer):
    """An lr scheduler from dict(type=..., ...) for `optimizer`; the schedulers of
    SequentialLR and ChainedScheduler may themselves be config dicts, built first, in
    order (as torch expects: each constructed on the optimizer before the outer one):

        dict(type="SequentialLR", milestones=[2],
             schedulers=[dict(type="LinearLR", start_factor=0.1, total_iters=2),
                         dict(type="CosineAnnealingLR", T_max=8)])
    """
    from .registry import SCHEDULERS
    cfg = dict(cfg)
    inner = cfg.get("schedulers")
    if isinstance(inner, (list, tuple)):
        built = []
        for index, item in enumerate(inner):
            if isinstance(item, dict):
                item = dict(item)
                for key in ("by_epoch", "monitor"):
                    if key in item:
                        raise ConfigError(f"{cfg.get('type')}: schedulers[{index}] has "
                                          f"{key!r}; set it on the outer scheduler")
                item = build_scheduler(item, optimizer)
            built.append(item)
        cfg["schedulers"] = built
    return build(cfg, SCHEDULERS, optimizer=optimizer)


def _section(cfg, key):
    value = cfg.get(key)
    return value.to_dict() if hasattr(value, "to_dict") else value


def runner_from_cfg(runner_cls, cfg, **overrides):
    """See the module docstring; `overrides` replace run settings (e.g. work_dir)."""
    if not isinstance(cfg, Config):
        cfg = Config(dict(cfg))
    where = cfg.filename or "config"
    settings = {key: cfg.get(key) for key in RUN_KEYS if key in cfg}
    settings.update(overrides)
    work_dir = settings.pop("work_dir", None) or cfg.get("work_dir")
    if not work_dir:
        name = os.path.splitext(os.path.basename(cfg.filename or "run"))[0]
        work_dir = os.path.join("work_dirs", name)
    if "model" not in cfg:
        raise ConfigError(f"{where}: has no 'model' key (e.g. model = dict(type='MnistCNN'))")
    # seed first: model init and loader order depend on it
    from .runner import Runner
    seed = Runner._resolve_seed(settings.pop("seed", None))
    try:
        model = build(_section(cfg, "model"), MODELS)
    except UserError as exc:
        raise ConfigError(f"{where}: model: {exc}") from None
    loaders = {}
    for key in ("train_dataloader", "val_dataloader", "test_dataloader"):
        try:
            loaders[key] = build_dataloader(_section(cfg, key), f"{where}: {key}")
        except UserError as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"{where}: {key}: {exc}") from None
    optim_wrapper = _section(cfg, "optim_wrapper") or {}
    optimizer = optim_wrapper.get("optimizer", _section(cfg, "optimizer"))
    for key in ("accumulative_counts", "clip_grad"):
        if key in optim_wrapper:
            settings.setdefault(key, optim_wrapper[key])
    loss = _section(cfg, "loss")
    loss_fn = build(loss, MODELS) if isinstance(loss, dict) else None
    hooks = _section(cfg, "custom_hooks") or []
    default_hooks = _default_hooks_from_cfg(_section(cfg, "default_hooks"),
                                            settings.pop("log_interval", 10))
    # the Runner seeds again; keep the streams where building left them, so training
    # does not redraw the numbers the model's initialisation drew
    from . import rng
    after_build = rng.capture()
    try:
        runner = runner_cls(model=model, work_dir=work_dir, **loaders, optimizer=optimizer,
                            param_scheduler=_section(cfg, "param_scheduler"), hooks=hooks,
                            metrics=_section(cfg, "val_evaluator") or _section(cfg, "metrics"),
                            seed=seed, loss_fn=loss_fn, cfg=cfg, default_hooks=default_hooks,
                            **settings)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    rng.restore(after_build)
    runner._parallel.seed_rank_streams()    # launcher="mpi": each rank's own streams again
    return runner


def _default_hooks_from_cfg(section, log_interval):
    """default_hooks = dict(checkpoint=dict(type="CheckpointHook", ...), logger=...):
    each entry replaces the matching default; None drops it."""
    from .hooks import CheckpointHook, LoggerHook, ParamSchedulerHook, TimerHook
    from .registry import HOOKS
    hooks = {"timer": TimerHook(), "logger": LoggerHook(interval=log_interval),
             "param_scheduler": ParamSchedulerHook(), "checkpoint": CheckpointHook()}
    for name, value in (section or {}).items():
        if value is None:
            hooks.pop(name, None)
        elif isinstance(value, dict):
            value = dict(value)
            priority = value.pop("priority", None)
            hook = build(value, HOOKS)
            if priority is not None:
                hook.priority = priority
            hooks[name] = hook
        else:
            hooks[name] = value
    return list(hooks.values())
