"""Hooks: code the Runner calls at each stage of a run, ordered by `priority`.

A hook overrides any of `before_run after_run before_train after_train
before_train_epoch after_train_epoch before_train_iter after_train_iter before_val
after_val before_test after_test before_save_checkpoint after_load_checkpoint`. Hooks
run in ascending priority (an int, or a name: HIGHEST 0, VERY_HIGH 10, HIGH 30,
ABOVE_NORMAL 40, NORMAL 50, BELOW_NORMAL 60, LOW 70, VERY_LOW 90, LOWEST 100, as
mmengine); hooks of equal priority run in the order they were added. A hook with
state (`state_dict()` / `load_state_dict()`) has it saved in every checkpoint.

When the hooks run (the Runner's counters: `runner.epoch` = finished epochs,
`runner.iter` = finished iterations, `runner.inner_iter` = batches of this epoch done):
  before_train_epoch -> [before_train_iter -> step -> (val if due, iteration-based)
  -> after_train_iter]* -> epoch += 1 -> (val if due) -> after_train_epoch.
Validation thus runs before the epoch's checkpoint is written, so a checkpoint holds
the val result and the best score of its epoch.
"""
from __future__ import annotations

import copy
import json
import os
import time

import numpy as np

from ..errors import UserError

PRIORITIES = {"HIGHEST": 0, "VERY_HIGH": 10, "HIGH": 30, "ABOVE_NORMAL": 40, "NORMAL": 50,
              "BELOW_NORMAL": 60, "LOW": 70, "VERY_LOW": 90, "LOWEST": 100}


def get_priority(priority):
    """An int priority from an int or one of PRIORITIES' names (case-insensitive)."""
    if isinstance(priority, bool):
        raise TypeError(f"hook priority must be an int or a name, got {priority!r}")
    if isinstance(priority, int):
        if not 0 <= priority <= 100:
            raise ValueError(f"hook priority must be in [0, 100], got {priority}")
        return priority
    if isinstance(priority, str) and priority.upper() in PRIORITIES:
        return PRIORITIES[priority.upper()]
    raise ValueError(f"unknown hook priority {priority!r}; expected an int in [0, 100] or "
                     f"one of {', '.join(PRIORITIES)}")


class Hook:
    """Base class: every stage method does nothing. `priority` as the module says."""

    priority = "NORMAL"

    def before_run(self, runner): pass
    def after_run(self, runner): pass
    def before_train(self, runner): pass
    def after_train(self, runner): pass
    def before_train_epoch(self, runner): pass
    def after_train_epoch(self, runner): pass
    def before_train_iter(self, runner, batch_idx, data_batch): pass
    def after_train_iter(self, runner, batch_idx, data_batch, outputs): pass
    def before_val(self, runner): pass
    def after_val(self, runner, metrics): pass
    def before_test(self, runner): pass
    def after_test(self, runner, metrics): pass
    def before_save_checkpoint(self, runner, checkpoint): pass
    def after_load_checkpoint(self, runner, checkpoint): pass


# ----------------------------------------------------------------------------- timer
class TimerHook(Hook):
    """Measures each iteration's data-loading time and total time (seconds) into
    `runner.log_buffer["data_time"]` and `["time"]`."""

    priority = "NORMAL"

    def before_train_epoch(self, runner):
        self._last = time.perf_counter()

    def before_train_iter(self, runner, batch_idx, data_batch):
        now = time.perf_counter()
        runner.log_buffer["data_time"] = now - self._last

    def after_train_iter(self, runner, batch_idx, data_batch, outputs):
        now = time.perf_counter()
        runner.log_buffer["time"] = now - self._last
        self._last = now


# ----------------------------------------------------------------------------- logger
def _scalar_or_list(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


class LoggerHook(Hook):
    """Logs the run: one JSON object per line appended to `work_dir/metrics.jsonl`
    (always; each line flushed when written), a console line per epoch and per
    validation (and every `interval` iterations when no bar is drawn), a tqdm bar
    only when stderr is a terminal, and TensorBoard scalars when `tensorboardX` is
    installed (`tensorboard="auto"`, the default; True requires it, False never).

    Train lines: {"mode": "train", "epoch", "iter", "lr", "loss", "time", "data_time"},
    every `interval` iterations, from the loss of that iteration. Val and test lines:
    {"mode": "val"|"test", "epoch", "iter", <metrics>}. A resumed run appends to the
    same file (lines of iterations redone after a kill appear twice, the later wins).
    """

    priority = "BELOW_NORMAL"

    def __init__(self, interval=10, progress=None, tensorboard="auto", filename="metrics.jsonl"):
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f"LoggerHook: interval must be a positive int, got {interval!r}")
        self.interval = interval
        self.progress = progress
        self.tensorboard = tensorboard
        self.filename = filename
        self._file = None
        self._writer = None
        self._bar = None

    # ---------------------------------------------------------------- sinks
    def before_run(self, runner):
        from ..train import resolve_progress
        self._draw_bar = resolve_progress(self.progress)
        if not runner.is_main_process:
            return
        os.makedirs(runner.work_dir, exist_ok=True)
        self.path = os.path.join(runner.work_dir, self.filename)
        self._file = open(self.path, "a", encoding="utf-8")   # noqa: SIM115 (closed after_run)
        if self.tensorboard:
            try:
                from tensorboardX import SummaryWriter   # optional extra, imported lazily
            except ImportError:
                if self.tensorboard is True:
                    raise UserError("LoggerHook: tensorboard=True needs the optional extra "
                                    "tensorboardX (pip install tensorboardX)") from None
            else:
                self._writer = SummaryWriter(os.path.join(runner.work_dir, "tensorboard"))

    def after_run(self, runner):
        self._close_bar()
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def write(self, record, runner=None):
        """Append one JSON line (rank 0 only) and send its scalars to TensorBoard."""
        if self._file is None:
            return
        record = {k: _scalar_or_list(v) for k, v in record.items()}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._writer is not None:
            step = record.get("iter", 0)
            for key, value in record.items():
                if key not in ("mode", "epoch", "iter") and isinstance(value, (int, float)):
                    self._writer.add_scalar(f"{record.get('mode', 'train')}/{key}", value, step)

    def _print(self, runner, line):
        if not runner.is_main_process:
            return
        if self._bar is not None:
            self._bar.write(line)
        else:
            print(line, flush=True)

    def _close_bar(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # ---------------------------------------------------------------- training
    def before_train_epoch(self, runner):
        self._loss_sum, self._seen = 0.0, 0
        if self._draw_bar and runner.is_main_process:
            from tqdm.auto import tqdm
            total = len(runner.train_dataloader) if hasattr(runner.train_dataloader,
                                                            "__len__") else None
            self._bar = tqdm(total=total, initial=runner.inner_iter,
                             desc=f"epoch {runner.epoch + 1}", unit="it", leave=False,
                             dynamic_ncols=True)

    def after_train_iter(self, runner, batch_idx, data_batch, outputs):
        if self._bar is not None:
            self._bar.update(1)
        if runner.iter % self.interval != 0:
            return
        loss = float(outputs["loss"].item()) if "loss" in outputs else float("nan")
        record = {"mode": "train", "epoch": runner.epoch + 1, "iter": runner.iter,
                  "lr": runner.current_lr(), "loss": loss}
        for key in ("time", "data_time"):
            if key in runner.log_buffer:
                record[key] = runner.log_buffer[key]
        self.write(record, runner)
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{loss:.4f}")
        elif runner.is_main_process and runner.verbose_iters:
            self._print(runner, f"epoch {runner.epoch + 1} iter {runner.iter}: loss {loss:.4f} "
                                f"lr {runner.current_lr():.4g}")

    def after_train_epoch(self, runner):
        self._close_bar()
        line = f"epoch {runner.epoch}"
        if runner.max_epochs:
            line += f"/{runner.max_epochs}"
        line += f" (iter {runner.iter}) done"
        if runner.last_val_metrics is not None and runner.last_val_epoch == runner.epoch:
            line += ": val " + _format_metrics(runner.last_val_metrics)
        self._print(runner, line)

    def after_val(self, runner, metrics):
        self.write({"mode": "val", "epoch": runner.epoch, "iter": runner.iter,
                    **_loggable(metrics)}, runner)
        if not runner.by_epoch:
            self._print(runner, f"iter {runner.iter}: val {_format_metrics(metrics)}")

    def after_test(self, runner, metrics):
        self.write({"mode": "test", "epoch": runner.epoch, "iter": runner.iter,
                    **_loggable(metrics)}, runner)


def _loggable(metrics):
    return {k: _scalar_or_list(v) for k, v in metrics.items()}


def _format_metrics(metrics):
    parts = []
    for key, value in metrics.items():
        if isinstance(value, float):
            parts.append(f"{key} {value:.4f}")
        elif isinstance(value, int):
            parts.append(f"{key} {value}")
    return ", ".join(parts)


# ----------------------------------------------------------------------------- schedulers
def _needs_metric(scheduler):
    return hasattr(scheduler, "mode") and hasattr(scheduler, "patience")   # ReduceLROnPlateau


class ParamSchedulerHook(Hook):
    """Steps each of `runner.param_schedulers` after every epoch (`by_epoch=True`) or
    after every iteration (`by_epoch=False`); set per scheduler by the Runner.
    `ReduceLROnPlateau` steps after each validation instead, with the metric named by
    its `monitor` attribute (default "loss"; set `monitor=` in its config dict)."""

    priority = "LOW"

    def after_train_iter(self, runner, batch_idx, data_batch, outputs):
        for scheduler, by_epoch in runner.param_schedulers:
            if not by_epoch and not _needs_metric(scheduler):
                scheduler.step()

    def after_train_epoch(self, runner):
        for scheduler, by_epoch in runner.param_schedulers:
            if by_epoch and not _needs_metric(scheduler):
                scheduler.step()

    def after_val(self, runner, metrics):
        if not runner.training:
            return
        for scheduler, _ in runner.param_schedulers:
            if _needs_metric(scheduler):
                monitor = getattr(scheduler, "monitor", "loss")
                if monitor not in metrics:
                    raise UserError(f"ReduceLROnPlateau: monitor={monitor!r} is not one of "
                                    f"the validation metrics ({', '.join(metrics)})")
                scheduler.step(metrics[monitor])


# ----------------------------------------------------------------------------- checkpoint
GREATER_KEYS = ("acc", "top", "precision", "recall", "f1", "miou", "map", "auc", "dice",
                "aacc", "macc", "ar@")
LESS_KEYS = ("loss", "error", "err")


def infer_rule(metric):
    """'greater' or 'less' from a metric's name, as mmengine (loss -> less; acc,
    accuracy, precision, recall, f1, mIoU, ... -> greater); ValueError if unclear."""
    name = metric.lower().split("/")[-1] + " " + metric.lower()
    if any(key in name for key in LESS_KEYS):
        return "less"
    if any(key in name for key in GREATER_KEYS):
        return "greater"
    raise ValueError(f"cannot tell whether a greater or a smaller {metric!r} is better; "
                     f"pass rule='greater' or rule='less'")


def is_better(value, best, rule):
    if best is None:
        return True
    return value > best if rule == "greater" else value < best


class CheckpointHook(Hook):
    """Saves checkpoints into the work dir.

    - every `interval` epochs (`by_epoch=True`; the default follows the Runner) or
      iterations, as `epoch_N.safetensors` / `iter_N.safetensors`, keeping the last
      `max_keep_ckpts` of them (-1: all);
    - with `save_best` ("auto": the first metric of validation; or a metric name),
      `best_<metric>_<epoch|iter>_N.safetensors` whenever validation improves on the
      best so far (`rule`: "greater"/"less", inferred from the name when None); the
      previous best file is removed;
    - `save_last`: the final state when training ends, unless just saved.
    `work_dir/last_checkpoint` always names the newest checkpoint (what resume reads).
    """

    priority = "VERY_LOW"

    def __init__(self, interval=1, by_epoch=None, save_best=None, rule=None,
                 max_keep_ckpts=-1, save_last=True, out_dir=None):
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f"CheckpointHook: interval must be a positive int, got {interval!r}")
        if rule not in (None, "greater", "less"):
            raise ValueError(f"CheckpointHook: rule must be 'greater', 'less' or None, "
                             f"got {rule!r}")
        self.interval = interval
        self.by_epoch = by_epoch
        self.save_best = save_best
        self.rule = rule
        self.max_keep_ckpts = max_keep_ckpts
        self.save_last = save_last
        self.out_dir = out_dir
        self.best_score = None
        self.best_metric = None
        self.best_path = None
        self.kept = []
        self._last_saved_iter = None

    def state_dict(self):
        return {"best_score": self.best_score, "best_metric": self.best_metric,
                "best_path": self.best_path, "kept": list(self.kept), "rule": self.rule}

    def load_state_dict(self, state):
        self.best_score = state.get("best_score")
        self.best_metric = state.get("best_metric")
        self.best_path = state.get("best_path")
        self.kept = list(state.get("kept", []))
        self.rule = state.get("rule", self.rule)

    def before_run(self, runner):
        if self.by_epoch is None:
            self.by_epoch = runner.by_epoch
        if self.out_dir is None:
            self.out_dir = runner.work_dir

    def after_train_iter(self, runner, batch_idx, data_batch, outputs):
        if not self.by_epoch and runner.iter % self.interval == 0:
            self._save_regular(runner, f"iter_{runner.iter}.safetensors")

    def after_train_epoch(self, runner):
        if self.by_epoch and runner.epoch % self.interval == 0:
            self._save_regular(runner, f"epoch_{runner.epoch}.safetensors")

    def after_train(self, runner):
        if self.save_last and self._last_saved_iter != runner.iter:
            name = (f"epoch_{runner.epoch}.safetensors" if self.by_epoch and runner.inner_iter == 0
                    else f"iter_{runner.iter}.safetensors")
            self._save_regular(runner, name)

    def after_val(self, runner, metrics):
        if not self.save_best or not runner.training:
            return
        metric = self._metric_name(metrics)
        value = metrics[metric]
        if not isinstance(value, (int, float)) or value != value:   # NaN never improves
            return
        if self.rule is None:
            self.rule = infer_rule(metric)
        if not is_better(value, self.best_score, self.rule):
            return
        self.best_score, self.best_metric = float(value), metric
        unit, count = ("epoch", runner.epoch) if runner.by_epoch else ("iter", runner.iter)
        safe = metric.replace("/", "_")
        path = os.path.join(self.out_dir, f"best_{safe}_{unit}_{count}.safetensors")
        previous = self.best_path
        self.best_path = path
        runner.save_checkpoint(path, update_last=False)
        if runner.is_main_process and previous and previous != path \
                and os.path.exists(previous):
            os.remove(previous)

    def _metric_name(self, metrics):
        if self.save_best == "auto":
            candidates = [k for k, v in metrics.items() if isinstance(v, (int, float))
                          and k != "loss"]
            if not candidates:
                raise ValueError("CheckpointHook: save_best='auto' found no scalar metric "
                                 f"in {list(metrics)}")
            return candidates[0]
        if self.save_best not in metrics:
            raise UserError(f"CheckpointHook: save_best={self.save_best!r} is not one of the "
                            f"validation metrics ({', '.join(metrics)})")
        return self.save_best

    def _save_regular(self, runner, name):
        path = os.path.join(self.out_dir, name)
        runner.save_checkpoint(path)
        self._last_saved_iter = runner.iter
        if path in self.kept:
            self.kept.remove(path)
        self.kept.append(path)
        if self.max_keep_ckpts is not None and self.max_keep_ckpts > 0:
            while len(self.kept) > self.max_keep_ckpts:
                old = self.kept.pop(0)
                if runner.is_main_process and os.path.exists(old):
                    os.remove(old)


# ----------------------------------------------------------------------------- optional
class EarlyStoppingHook(Hook):
    """Stops training when `monitor` has not improved by more than `min_delta` for
    `patience` validations in a row (`rule` inferred from the name when None)."""

    priority = "LOW"

    def __init__(self, monitor, rule=None, patience=5, min_delta=0.0):
        self.monitor = monitor
        self.rule = rule if rule is not None else infer_rule(monitor)
        self.patience = patience
        self.min_delta = min_delta
        self.best = None
        self.wait = 0

    def state_dict(self):
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state):
        self.best, self.wait = state.get("best"), int(state.get("wait", 0))

    def after_val(self, runner, metrics):
        if not runner.training:
            return
        if self.monitor not in metrics:
            raise UserError(f"EarlyStoppingHook: monitor={self.monitor!r} is not one of the "
                            f"validation metrics ({', '.join(metrics)})")
        value = float(metrics[self.monitor])
        delta = self.min_delta if self.rule == "greater" else -self.min_delta
        if self.best is None or is_better(value, self.best + delta, self.rule):
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            runner.stop_training = True
            runner.log(f"early stopping: {self.monitor} has not improved for "
                       f"{self.wait} validations (best {self.best:.4f})")


class EMAHook(Hook):
    """Keeps an exponential moving average of the parameters (and copies the buffers),
    updated after each iteration: ema = momentum * ema + (1 - momentum) * param,
    starting after `begin_iter` iterations; validation and test use the averaged
    weights, training continues from the raw ones. Saved in checkpoints."""

    priority = "NORMAL"

    def __init__(self, momentum=0.999, begin_iter=0):
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"EMAHook: momentum must be in [0, 1), got {momentum!r}")
        self.momentum = momentum
        self.begin_iter = begin_iter
        self.ema = None
        self._backup = None

    def _state(self, runner):
        return runner.model.state_dict()

    def before_run(self, runner):
        if self.ema is None:
            self.ema = {k: np.array(v.numpy(), copy=True) for k, v in self._state(runner).items()}

    def after_train_iter(self, runner, batch_idx, data_batch, outputs):
        m = self.momentum if runner.iter > self.begin_iter else 0.0
        for key, value in self._state(runner).items():
            current = value.numpy()
            if np.issubdtype(current.dtype, np.floating):
                self.ema[key] *= m
                self.ema[key] += (1.0 - m) * current
            else:
                self.ema[key] = np.array(current, copy=True)

    def _swap_in(self, runner):
        if self.ema is None:
            return
        self._backup = {k: np.array(v.numpy(), copy=True) for k, v in self._state(runner).items()}
        runner.model.load_state_dict(self.ema)

    def _swap_out(self, runner):
        if self._backup is not None:
            runner.model.load_state_dict(self._backup)
            self._backup = None

    def before_val(self, runner):
        self._swap_in(runner)

    def after_val(self, runner, metrics):
        self._swap_out(runner)

    def before_test(self, runner):
        self._swap_in(runner)

    def after_test(self, runner, metrics):
        self._swap_out(runner)

    def state_dict(self):
        return {"ema": copy.copy(self.ema), "momentum": self.momentum}

    def load_state_dict(self, state):
        self.ema = {k: np.array(v, copy=True) for k, v in state["ema"].items()}


class ReportHook(Hook):
    """At the end of training, the HTML report of `tinygrad_cv.report` in
    `work_dir/<out_dir>`: curves drawn from the metrics file (mean train loss per epoch,
    val loss and accuracy), the last validation's confusion matrix and the first
    convolution's filters. Needs a `ConfusionMatrix` or `ClassificationReport` metric;
    misclassified images are not collected (that section says none were kept)."""

    priority = "LOWEST"

    def __init__(self, out_dir="report", class_names=None, title=None):
        self.out_dir = out_dir
        self.class_names = class_names
        self.title = title
        self.path = None

    def before_run(self, runner):
        from .metrics import ConfusionMatrix
        if runner.val_dataloader is not None and not any(
                isinstance(m, ConfusionMatrix) for m in (runner.metrics or [])):
            raise UserError("ReportHook: needs a ConfusionMatrix or ClassificationReport "
                            "metric (metrics=[..., ConfusionMatrix(num_classes)])")

    def after_train(self, runner):
        if not runner.is_main_process or runner.last_val_metrics is None:
            return
        from ..report import write_report
        from ..train import EpochResult, Evaluation
        history = self._history(os.path.join(runner.work_dir, "metrics.jsonl"))
        metrics = runner.last_val_metrics
        confusion = np.asarray(metrics["confusion_matrix"])
        accuracy = float(np.trace(confusion) / max(confusion.sum(), 1))
        names = self.class_names or [str(i) for i in range(len(confusion))]
        evaluation = Evaluation(loss=metrics.get("loss", float("nan")), accuracy=accuracy,
                                confusion=confusion)
        self.path = write_report(os.path.join(runner.work_dir, self.out_dir), history,
                                 evaluation, runner.model, names,
                                 title=self.title or f"{type(runner.model).__name__} report",
                                 details={"work_dir": runner.work_dir, "epochs": runner.epoch,
                                          "iterations": runner.iter})
        runner.log(f"report written to {self.path}")

    @staticmethod
    def _history(path):
        from ..train import EpochResult
        train, val = {}, {}
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                record = json.loads(line)
                epoch = record.get("epoch")
                if record.get("mode") == "train":
                    train.setdefault(epoch, []).append(record.get("loss", float("nan")))
                elif record.get("mode") == "val":
                    val[epoch] = record          # the later line wins (a resumed run)
        history = []
        for epoch in sorted(val):
            record = val[epoch]
            accuracy = next((v for k, v in record.items() if k.startswith("acc")
                             and isinstance(v, (int, float))), float("nan"))
            losses = train.get(epoch, [])
            history.append(EpochResult(epoch, float(np.mean(losses)) if losses else float("nan"),
                                       record.get("loss", float("nan")), accuracy))
        return history


def default_hooks(checkpoint=None, logger=None):
    """Timer, logger, param scheduler and checkpoint hooks (the Runner's defaults)."""
    return [TimerHook(), logger if logger is not None else LoggerHook(),
            ParamSchedulerHook(), checkpoint if checkpoint is not None else CheckpointHook()]
