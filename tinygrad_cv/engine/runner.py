"""`Runner`: the training loop of a config or of objects, with hooks, checkpoints and
exact resume (mmengine's Runner, with PyTorch-style models and a plain loss function).

    runner = Runner(model, work_dir="work_dirs/mnist", train_dataloader=loader,
                    val_dataloader=val_loader, optimizer=dict(type="SGD", lr=0.1),
                    max_epochs=3, seed=0)
    runner.train()            # returns the model
    runner.test()             # metrics dict

One training step is PyTorch's: forward, `loss_fn(outputs, targets)` (cross-entropy
by default), backward (the loss divided by `accumulative_counts`), optional gradient
clipping (`nn.utils.clip_grad_norm_(params, **clip_grad)`), `optimizer.step()`, `optimizer.zero_grad()` every `accumulative_counts`
batches (and at the end of an epoch). A model with a `train_step(batch, runner)`
method computes its own loss instead (it returns a dict with "loss").

Exactness: a run killed at any point and resumed from its last checkpoint ends with
the same weights, bit for bit, as an uninterrupted one (same thread count): the
checkpoint has every random state and, for the current epoch, the states that drew its
order, so the resumed loader repeats the epoch's order and skips the batches done.
"""
from __future__ import annotations

import os
import secrets
import signal
import threading

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..errors import Interrupted, UserError, signal_name, signals_deferred
from ..nn import functional as F
from ..nn.utils import clip_grad_norm_
from ..optim import Optimizer
from . import checkpoint as ckpt_io
from . import rng
from .dist import process_for
from .distributed_run import parallel_run
from .hooks import CheckpointHook, Hook, LoggerHook, default_hooks, get_priority
from .registry import HOOKS, METRICS, OPTIMIZERS, build


class Runner:
    """Train, validate and test a model; see the module docstring and docs/engine.md."""

    def __init__(self, model, work_dir, train_dataloader=None, val_dataloader=None,
                 test_dataloader=None, optimizer=None, param_scheduler=None, max_epochs=None,
                 max_iters=None, val_interval=1, hooks=None, metrics=None, seed=None,
                 resume=False, load_from=None, launcher="none", *, loss_fn=None,
                 accumulative_counts=1, clip_grad=None, device="cpu", default_hooks=None,
                 cfg=None, resume_hint=None, log_interval=10, progress=None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"Runner: model must be an nn.Module, got {type(model).__name__}")
        if max_epochs is not None and max_iters is not None:
            raise ValueError("Runner: give max_epochs or max_iters, not both")
        for name, value in (("max_epochs", max_epochs), ("max_iters", max_iters),
                            ("val_interval", val_interval),
                            ("accumulative_counts", accumulative_counts)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ValueError(f"Runner: {name} must be a positive int, got {value!r}")
        self.dist = process_for(launcher)
        self.launcher = launcher
        self.seed = self._resolve_seed(seed)
        self.model = model.to(device)
        self.device = device
        self.work_dir = os.fspath(work_dir)
        self.train_dataloader = train_dataloader
        self.val_dataloader = val_dataloader
        self.test_dataloader = test_dataloader
        self.max_epochs = max_epochs
        self.max_iters = max_iters
        self.by_epoch = max_iters is None
        self.val_interval = val_interval
        self.loss_fn = loss_fn if loss_fn is not None else F.cross_entropy
        self.accumulative_counts = accumulative_counts
        self.clip_grad = dict(clip_grad) if clip_grad else None
        self.cfg = cfg
        self.resume = resume
        self.load_from = load_from
        self.resume_hint = resume_hint
        self.verbose_iters = False
        self.optimizer = self._build_optimizer(optimizer)
        self.param_schedulers = self._build_schedulers(param_scheduler)
        self.metrics = self._build_metrics(metrics)
        self.hooks = []
        hook_list = default_hooks if default_hooks is not None else _default_hooks(
            log_interval, progress)
        for hook in list(hook_list) + list(hooks or []):
            self.register_hook(hook)
        # counters and run state
        self.epoch = 0          # finished epochs
        self.iter = 0           # finished iterations
        self.inner_iter = 0     # batches of the current epoch already trained
        self.training = False
        self.stop_training = False
        self.log_buffer = {}
        self.history = []
        self.last_val_metrics = None
        self.last_val_epoch = None
        self._epoch_rng = None
        self._resumed_mid_epoch = False
        self._stop_signal = None
        self._parallel = parallel_run(self)   # launcher="mpi": DDP, split loaders, ...

    # ------------------------------------------------------------------ building
    @staticmethod
    def _resolve_seed(seed):
        if seed is None:
            seed = secrets.randbelow(2 ** 31)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"Runner: seed must be a non-negative int or None, got {seed!r}")
        rng.seed_everything(seed)
        return seed

    def _build_optimizer(self, optimizer):
        if optimizer is None or isinstance(optimizer, Optimizer):
            return optimizer
        if isinstance(optimizer, dict):
            return build(optimizer, OPTIMIZERS, params=self.model.parameters())
        raise TypeError(f"Runner: optimizer must be an Optimizer or a config dict, "
                        f"got {type(optimizer).__name__}")

    def _build_schedulers(self, param_scheduler):
        from .build import build_scheduler
        if param_scheduler is None:
            return []
        items = param_scheduler if isinstance(param_scheduler, (list, tuple)) else [param_scheduler]
        built = []
        for item in items:
            if isinstance(item, dict):
                if self.optimizer is None:
                    raise ValueError("Runner: param_scheduler needs an optimizer")
                item = dict(item)
                by_epoch = item.pop("by_epoch", self.by_epoch)
                monitor = item.pop("monitor", None)
                scheduler = build_scheduler(item, self.optimizer)   # nested ones too
                if monitor is not None:
                    scheduler.monitor = monitor
                built.append((scheduler, bool(by_epoch)))
            elif isinstance(item, tuple):
                built.append((item[0], bool(item[1])))
            else:
                built.append((item, getattr(item, "by_epoch", self.by_epoch)))
        return built

    @staticmethod
    def _build_metrics(metrics):
        if metrics is None:
            return None
        items = metrics if isinstance(metrics, (list, tuple)) else [metrics]
        return [build(m, METRICS) if isinstance(m, dict) else m for m in items]

    def register_hook(self, hook, priority=None):
        """Add a hook (an instance or a config dict), keeping the list sorted by priority
        (stable: equal priorities keep the order they were added in)."""
        if isinstance(hook, dict):
            hook = dict(hook)
            priority = hook.pop("priority", priority)
            hook = build(hook, HOOKS)
        if not isinstance(hook, Hook):
            raise TypeError(f"Runner: a hook must be a Hook or a config dict, "
                            f"got {type(hook).__name__}")
        if priority is not None:
            hook.priority = priority
        hook._priority_value = get_priority(hook.priority)
        self.hooks.append(hook)
        self.hooks.sort(key=lambda h: h._priority_value)

    def call_hook(self, stage, *args):
        for hook in self.hooks:
            getattr(hook, stage)(self, *args)

    @property
    def is_main_process(self):
        return self.dist.is_main_process

    def log(self, line):
        if self.is_main_process:
            print(line, flush=True)

    def current_lr(self):
        return float(self.optimizer.param_groups[0]["lr"]) if self.optimizer else float("nan")

    @classmethod
    def from_cfg(cls, cfg, **overrides):
        from .build import runner_from_cfg
        return runner_from_cfg(cls, cfg, **overrides)

    # ------------------------------------------------------------------ training
    def train(self):
        """Train to max_epochs / max_iters (resuming first when asked); returns the model."""
        if self.train_dataloader is None or self.optimizer is None:
            raise ValueError("Runner.train: needs a train_dataloader and an optimizer")
        if self.max_epochs is None and self.max_iters is None:
            raise ValueError("Runner.train: give max_epochs or max_iters")
        if hasattr(self.train_dataloader, "__len__") and len(self.train_dataloader) == 0:
            raise ValueError("Runner.train: train_dataloader yields no batches")
        with self._parallel.failure_guard(), self._signals_stop_after_step():
            self._prepare_resume()
            self.call_hook("before_run")
            self.training = True
            try:
                self.call_hook("before_train")
                while not self._done() and not self.stop_training:
                    self._train_epoch()
                self.call_hook("after_train")
            finally:
                self.training = False
                self.call_hook("after_run")
        return self.model

    def _done(self):
        if self.by_epoch:
            return self.epoch >= self.max_epochs
        return self.iter >= self.max_iters

    def _loaders(self):
        return {"train": self.train_dataloader, "val": self.val_dataloader,
                "test": self.test_dataloader}

    def _train_epoch(self):
        self.call_hook("before_train_epoch")
        self.model.train()
        self._parallel.before_train_epoch(self.epoch)
        if self._resumed_mid_epoch:
            # rebuild this epoch's order from the states that drew it, skip what is done,
            # then continue from the checkpoint's random states
            current = rng.capture(self._loaders())
            rng.restore(self._epoch_rng, self._loaders())
            batches = iter(self.train_dataloader)
            for _ in range(self.inner_iter):
                next(batches)
            rng.restore(current, self._loaders())
            self._resumed_mid_epoch = False
        else:
            self.inner_iter = 0
            self._epoch_rng = rng.capture(self._loaders())
            batches = iter(self.train_dataloader)
        exhausted = True
        length = len(self.train_dataloader) if hasattr(self.train_dataloader, "__len__") else None
        for data_batch in batches:
            batch_idx = self.inner_iter
            self.call_hook("before_train_iter", batch_idx, data_batch)
            last_of_epoch = length is not None and batch_idx + 1 == length
            outputs = self.train_step(data_batch, last_of_epoch)
            self.iter += 1
            self.inner_iter += 1
            if not self.by_epoch and self.val_dataloader is not None \
                    and self.iter % self.val_interval == 0:
                self.val()
            self.call_hook("after_train_iter", batch_idx, data_batch, outputs)
            self._stop_if_signalled()
            if (not self.by_epoch and self.iter >= self.max_iters) or self.stop_training:
                exhausted = length is not None and self.inner_iter >= length
                break
        if exhausted:
            self.epoch += 1
            self.inner_iter = 0
            if self.by_epoch and self.val_dataloader is not None \
                    and self.epoch % self.val_interval == 0:
                self.val()
            self.call_hook("after_train_epoch")
            self._stop_if_signalled()

    def train_step(self, data_batch, last_of_epoch=False):
        """One optimisation step (see the module docstring); returns {"loss": Tensor}."""
        counts = self.accumulative_counts
        stepping = self.iter % counts == counts - 1 or last_of_epoch or counts == 1
        with self._parallel.gradient_sync(stepping):
            if hasattr(self.model, "train_step"):
                outputs = self.model.train_step(data_batch, self)
                loss = outputs["loss"]
            else:
                inputs, targets = _split_batch(data_batch)
                inputs, targets = inputs.to(self.device), targets.to(self.device)
                loss = self.loss_fn(self._parallel.train_model(inputs), targets)
                outputs = {"loss": loss}
            (loss / counts if counts > 1 else loss).backward()
        if stepping:
            if self.clip_grad:
                clip_grad_norm_(self.model.parameters(), **self.clip_grad)
            self.optimizer.step()
            self.optimizer.zero_grad()
        outputs["loss"] = loss.detach()
        return outputs

    # ------------------------------------------------------------------ evaluation
    def val(self):
        """Evaluate on val_dataloader with the metrics; returns the metrics dict."""
        if self.val_dataloader is None:
            raise ValueError("Runner.val: no val_dataloader")
        self.call_hook("before_val")
        metrics = self._evaluate(self.val_dataloader)
        self.last_val_metrics, self.last_val_epoch = metrics, self.epoch
        self.history.append({"epoch": self.epoch, "iter": self.iter,
                             **{k: v for k, v in metrics.items()
                                if isinstance(v, (int, float))}})
        self.call_hook("after_val", metrics)
        return metrics

    def test(self):
        """Evaluate on test_dataloader (loading `load_from` first if given)."""
        if self.test_dataloader is None:
            raise ValueError("Runner.test: no test_dataloader")
        with self._parallel.failure_guard():
            if self.load_from and not self.training:
                self.load_checkpoint(self.load_from, weights_only=True)
            owns_run = not self.training
            if owns_run:
                self.call_hook("before_run")
            try:
                self.call_hook("before_test")
                metrics = self._evaluate(self.test_dataloader)
                self.call_hook("after_test", metrics)
            finally:
                if owns_run:
                    self.call_hook("after_run")
        return metrics

    @no_grad()
    def _evaluate(self, loader):
        was_training = self.model.training
        self.model.eval()
        metrics = self.metrics
        if metrics is None:
            from .metrics import Accuracy
            metrics = self.metrics = [Accuracy()]
        for metric in metrics:
            metric.reset()
        self._parallel.before_evaluate()
        loss_sum, seen = np.zeros(1), np.zeros(1)
        try:
            for data_batch in loader:
                inputs, targets = _split_batch(data_batch)
                inputs, targets = inputs.to(self.device), targets.to(self.device)
                outputs = self.model(inputs)
                try:
                    loss_sum += float(self.loss_fn(outputs, targets, reduction="sum").item())
                except TypeError:   # a loss without `reduction`
                    loss_sum += float(self.loss_fn(outputs, targets).item()) * len(targets)
                seen += len(targets)
                for metric in metrics:
                    metric.process(outputs, targets)
        finally:
            self.model.train(was_training)
        loss_sum, seen = self.dist.sum(loss_sum), self.dist.sum(seen)
        result = {}
        for metric in metrics:
            metric.reduce(self.dist.sum)
            result.update(metric.compute())
        result["loss"] = float(loss_sum[0] / seen[0]) if seen[0] else float("nan")
        return result

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_dict(self):
        """Everything `load_checkpoint` needs to continue this run exactly."""
        hooks = {}
        for index, hook in enumerate(self.hooks):
            if hasattr(hook, "state_dict"):
                hooks[f"{index}.{type(hook).__name__}"] = hook.state_dict()
        meta = {"format": ckpt_io.FORMAT, "version": ckpt_io.VERSION, "epoch": self.epoch,
                "iter": self.iter, "inner_iter": self.inner_iter, "seed": self.seed,
                "max_epochs": self.max_epochs, "max_iters": self.max_iters,
                "model": type(self.model).__name__,
                "optimizer": type(self.optimizer).__name__ if self.optimizer else None,
                "config": ckpt_io.config_json(self.cfg), "history": list(self.history),
                "accumulative_counts": self.accumulative_counts,
                "world_size": self.dist.world_size}
        ckpt = {"meta": meta, "state_dict": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict() if self.optimizer else None,
                "schedulers": [s.state_dict() for s, _ in self.param_schedulers],
                "hooks": hooks, "rng": rng.capture(self._loaders()),
                "epoch_rng": self._epoch_rng}
        if self.accumulative_counts > 1:
            grads = {name: p.grad for name, p in self.model.named_parameters()
                     if p.grad is not None}
            if grads:
                ckpt["grads"] = grads
        return self._parallel.gather_rank_states(ckpt)   # every rank's states, on rank 0

    def save_checkpoint(self, path, update_last=True):
        """Write the checkpoint to `path` (rank 0 only) and, with `update_last`, name it
        in work_dir/last_checkpoint."""
        ckpt = self.checkpoint_dict()
        self.call_hook("before_save_checkpoint", ckpt)
        if self.is_main_process:
            from ..serialization import save
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with signals_deferred():
                save(ckpt, path, metadata={"format": ckpt_io.FORMAT, "epoch": self.epoch,
                                           "iter": self.iter})
                if update_last:
                    ckpt_io.write_last_checkpoint(self.work_dir, path)
        self.dist.barrier()     # no rank goes on before the file is there
        return path

    def load_checkpoint(self, path, weights_only=False):
        """Restore a checkpoint: the model only (`weights_only`, also accepting a plain
        weights file), or the whole run state."""
        path = os.fspath(path)
        if weights_only:
            from ..serialization import load
            state = load(path)
            if isinstance(state, dict) and isinstance(state.get("meta"), dict):
                state = state["state_dict"]
            if not isinstance(state, dict):
                raise UserError(f"{path}: holds no model weights")
            ckpt_io.check_model_state(path, self.model, state)
            self.model.load_state_dict(state)
            return state
        ckpt = ckpt_io.read_checkpoint(path)
        self._check_compatible(path, ckpt)
        ckpt = self._parallel.rank_view(ckpt)      # this rank's own random states
        self.model.load_state_dict(ckpt["state_dict"])
        if self.optimizer is not None and ckpt.get("optimizer") is not None:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        for (scheduler, _), state in zip(self.param_schedulers, ckpt.get("schedulers", [])):
            scheduler.load_state_dict(state)
        saved_hooks = ckpt.get("hooks", {})
        for index, hook in enumerate(self.hooks):
            key = f"{index}.{type(hook).__name__}"
            if hasattr(hook, "load_state_dict") and key in saved_hooks:
                hook.load_state_dict(saved_hooks[key])
        for name, grad in ckpt.get("grads", {}).items():
            param = dict(self.model.named_parameters())[name]
            from ..tensor import Tensor
            param.grad = Tensor(grad.numpy(), device=param.device_str)
        meta = ckpt["meta"]
        self.epoch, self.iter, self.inner_iter = meta["epoch"], meta["iter"], meta["inner_iter"]
        self.seed = meta.get("seed", self.seed)
        self.history = list(meta.get("history", []))
        rng.restore(ckpt["rng"], self._loaders())
        self._epoch_rng = ckpt.get("epoch_rng")
        self._resumed_mid_epoch = self.inner_iter > 0
        self.call_hook("after_load_checkpoint", ckpt)
        self.log(f"resumed from {path} (epoch {self.epoch}, iter {self.iter})")
        return ckpt

    def _check_compatible(self, path, ckpt):
        meta = ckpt["meta"]
        if meta.get("model") != type(self.model).__name__:
            raise ckpt_io.CheckpointMismatchError(
                f"{path}: is a checkpoint of model {meta.get('model')!r}, not "
                f"{type(self.model).__name__!r} (mismatching key: model)")
        ckpt_io.check_model_state(path, self.model, ckpt["state_dict"])
        problems = []
        saved_opt = meta.get("optimizer")
        if self.optimizer is not None and saved_opt not in (None, type(self.optimizer).__name__):
            problems.append(f"optimizer ({saved_opt} vs {type(self.optimizer).__name__})")
        if len(ckpt.get("schedulers", [])) != len(self.param_schedulers):
            problems.append(f"param_scheduler ({len(ckpt.get('schedulers', []))} saved vs "
                            f"{len(self.param_schedulers)} now)")
        if meta.get("accumulative_counts", 1) != self.accumulative_counts:
            problems.append("accumulative_counts")
        if meta.get("world_size", 1) != self.dist.world_size:
            problems.append(f"world_size ({meta.get('world_size', 1)} process(es) saved vs "
                            f"{self.dist.world_size} now; resume with as many ranks, or "
                            f"start from its weights with load_from)")
        if meta.get("config") and self.cfg is not None:
            import json
            saved_cfg = json.loads(meta["config"])
            current = json.loads(ckpt_io.config_json(self.cfg))
            for section in ("model", "optimizer", "optim_wrapper"):
                problems += ckpt_io.config_differences(saved_cfg, current, section)
            for key in ("train_dataloader.batch_size",):
                a, b = _dotted(saved_cfg, key), _dotted(current, key)
                if a != b:
                    problems.append(key)
        if problems:
            raise ckpt_io.CheckpointMismatchError(
                f"{path}: was saved with another config; mismatching keys: "
                + ", ".join(problems))

    def _prepare_resume(self):
        if self.load_from and not self.resume:
            self.load_checkpoint(self.load_from, weights_only=True)
            return
        if not self.resume:
            return
        if isinstance(self.resume, (str, os.PathLike)):
            path = os.fspath(self.resume)
        else:
            path = ckpt_io.find_latest(self.work_dir)
            if path is None:
                self.log(f"no checkpoint in {self.work_dir} to resume from: starting afresh")
                return
        self.load_checkpoint(path)

    # ------------------------------------------------------------------ signals
    def _signals_stop_after_step(self):
        return _StopAfterStep(self)

    def _stop_if_signalled(self):
        signum = self._parallel.agree_on_stop(self._stop_signal)   # the same on every rank
        if signum is None:
            return
        path = os.path.join(self.work_dir, f"iter_{self.iter}.safetensors")
        self.save_checkpoint(path)
        hint = self.resume_hint or (f"Runner(..., work_dir={self.work_dir!r}, resume=True)"
                                    f".train()")
        raise Interrupted(signum, f"interrupted by {signal_name(signum)} at epoch "
                                  f"{self.epoch + (1 if self.inner_iter else 0)}, iteration "
                                  f"{self.iter}: checkpoint saved to {path}; resume with: {hint}")


class _StopAfterStep:
    """While training, SIGINT/SIGTERM ask the runner to stop after the current step
    (it then writes a checkpoint and raises Interrupted); a second signal interrupts
    at once. Ignored signals stay ignored; outside the main thread nothing changes."""

    def __init__(self, runner):
        self.runner = runner
        self.previous = {}

    def _handler(self, signum, frame):
        if self.runner._stop_signal is not None:
            raise Interrupted(signum)
        self.runner._stop_signal = signum

    def __enter__(self):
        self.runner._stop_signal = None
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                handler = signal.getsignal(signum)
                if handler is signal.SIG_IGN or handler is None:
                    continue
                self.previous[signum] = handler
                signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous.clear()
        return False


def _dotted(cfg, key):
    node = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _split_batch(data_batch):
    if isinstance(data_batch, dict):
        return data_batch["inputs"], data_batch["targets"]
    if isinstance(data_batch, (list, tuple)) and len(data_batch) == 2:
        return data_batch[0], data_batch[1]
    raise ValueError(f"Runner: a batch must be (inputs, targets) or a dict with 'inputs' and "
                     f"'targets', got {type(data_batch).__name__}")


def _default_hooks(log_interval, progress):
    return default_hooks(checkpoint=CheckpointHook(),
                         logger=LoggerHook(interval=log_interval, progress=progress))
