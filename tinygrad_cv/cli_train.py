"""`train`: flag style (`train --model mnist_cnn --epochs 3 ...`) or config style
(`train CONFIG ...`, see engine/cli.py).

The flag style is the engine's `Runner` with settings built from the flags: the
optimizer and StepLR schedule they name, and instead of the engine's logger and
checkpoint hooks one `EpochSummaryHook` that draws the per-epoch progress bar, evaluates
on the test set after each epoch (loss, accuracy, confusion matrix, mistakes for the
report), prints the epoch line and keeps the best epoch's weights. Nothing is written
but `--save` and `--report`; SIGINT/SIGTERM stop after the current step and save the
best finished epoch's weights (to --save, else <model>_interrupted.safetensors), one
line, exit status 130/143, as `train.fit` does.
"""
from __future__ import annotations

import os
import signal
import tempfile
import time

import numpy as np

from . import __version__, models, serialization
from .cli_args import apply_threads, require_device
from .cli_data import IMAGENET_MEAN, IMAGENET_STD, folder_transforms, load_datasets, load_folder
from .cli_weights import check_writable
from .data import DataLoader, Subset
from .engine import rng
from .engine.hooks import Hook, ParamSchedulerHook
from .engine.runner import Runner
from .errors import Interrupted, UserError, signals_deferred
from .train import (CLASS_NAMES, DATASET_STATS, EpochResult, _interrupted, _snapshot,
                    build_optimizer, evaluate, format_epoch, resolve_progress,
                    weights_metadata)

DEFAULT_LR = {"adadelta": 1.0, "sgd": 0.01, "adam": 1e-3, "adamw": 1e-3}


class EpochSummaryHook(Hook):
    """The flag-style run's reporting (see the module docstring). After the run,
    `history` holds an EpochResult per finished epoch, `last` the last Evaluation and
    `best` (epoch, accuracy, host copy of the weights) the best epoch (the later on ties)."""

    priority = "LOWEST"

    def __init__(self, test_loader, device="cpu", num_classes=10, mean=0.0, std=1.0,
                 progress=None, print_fn=print):
        self.test_loader = test_loader
        self.device = device
        self.num_classes = num_classes
        self.mean, self.std = mean, std
        self.progress = resolve_progress(progress)
        self.print_fn = print_fn
        self.history, self.last, self.best = [], None, None
        self.current_epoch = 0
        self._bar = None

    def before_train_epoch(self, runner):
        from tqdm.auto import tqdm
        self.current_epoch = runner.epoch + 1
        loader = runner.train_dataloader
        self._total = len(loader.dataset) if hasattr(loader, "dataset") else None
        self._bar = tqdm(total=self._total, desc=f"epoch {self.current_epoch}", unit="img",
                         unit_scale=True, disable=not self.progress, leave=False,
                         dynamic_ncols=True)
        self._loss_sum, self._seen = None, 0
        self._start = self._train_end = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch, outputs):
        # the running loss stays on the device; it is read every 10 batches, for the bar
        count = len(data_batch[1])
        batch_loss = outputs["loss"] * count
        self._loss_sum = batch_loss if self._loss_sum is None else self._loss_sum + batch_loss
        self._seen += count
        self._bar.update(count)
        if self.progress and batch_idx % 10 == 0:
            self._bar.set_postfix(loss=f"{self._loss_sum.item() / self._seen:.4f}")
        self._train_end = time.perf_counter()

    def after_train_epoch(self, runner):
        self._close_bar()
        train_seconds = self._train_end - self._start
        train_loss = self._loss_sum.item() / self._seen if self._seen else float("nan")
        self.last = evaluate(runner.model, self.test_loader, self.device, self.num_classes,
                             mean=self.mean, std=self.std, loss_fn=runner.loss_fn)
        if self.best is None or self.last.accuracy >= self.best[1]:
            self.best = (runner.epoch, self.last.accuracy, _snapshot(runner.model))
        result = EpochResult(runner.epoch, train_loss, self.last.loss, self.last.accuracy,
                             time.perf_counter() - self._start,
                             self._seen / train_seconds if train_seconds > 0 else 0.0)
        self.history.append(result)
        self.print_fn(format_epoch(result))

    def after_run(self, runner):
        self._close_bar()

    def _close_bar(self):
        if self._bar is not None:
            self._bar.close()     # also when interrupted: no half-drawn bar above the message
            self._bar = None


class FlagRunner(Runner):
    """A Runner that, on SIGINT/SIGTERM, stops after the current step without writing an
    engine checkpoint: `run_flag_training` saves the best finished epoch instead."""

    def _stop_if_signalled(self):
        if self._stop_signal is not None:
            raise Interrupted(self._stop_signal)


def run_flag_training(runner, summary, save_interrupted_to=None, metadata=None):
    """runner.train(); on an interrupt, the best finished epoch's weights are saved to
    `save_interrupted_to` (with `metadata`) and `train._interrupted`'s one-line
    Interrupted is raised (see `train.fit`)."""
    try:
        runner.train()
    except KeyboardInterrupt as exc:        # Interrupted (SIGINT, SIGTERM) or a plain Ctrl-C
        signum = getattr(exc, "signum", signal.SIGINT)
        with signals_deferred():            # a second Ctrl-C must not cut the save short
            interrupted = _interrupted(signum, summary.current_epoch, summary.best,
                                       save_interrupted_to, metadata)
        raise interrupted from None
    return summary.history, summary.last


def cmd_train(args):
    require_device(args.device)
    apply_threads(args)
    if args.config is not None:            # config style: the training engine
        from .engine.cli import train_config
        return train_config(args)
    for option in ("work_dir", "resume", "cfg_options"):
        if getattr(args, option):
            raise UserError(f"--{option.replace('_', '-')} needs a CONFIG file "
                            f"(train CONFIG --{option.replace('_', '-')} ...)")
    if args.save:
        check_writable(args.save, "--save")
    rng.seed_everything(args.seed)
    classes = CLASS_NAMES.get(args.dataset)
    if args.dataset == "folder":
        model_name = args.model or "small_cnn"
        if model_name in models.MNIST_MODELS:
            raise UserError(f"--model {model_name} takes 1-channel 28x28 images (MNIST); "
                            "for --dataset folder use --model small_cnn")
        train_tf, val_tf = folder_transforms(args.image_size)
        train_set, test_set, classes = load_folder(args.data_dir, train_tf, val_tf,
                                                   args.val_fraction, args.seed)
        model_args = {"num_classes": len(classes), "in_channels": 3}
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        size = args.image_size
        metadata = {"model": model_name, "model_args": model_args, "dataset": "folder",
                    "classes": list(classes), "input_size": [3, size, size], "resize": size,
                    "normalize": {"mean": list(mean), "std": list(std)},
                    "preprocess": {"resize": size, "crop": "center"},
                    "val_fraction": args.val_fraction, "seed": args.seed,
                    "tinygrad_cv_version": __version__}
    else:
        model_name = args.model or "mnist_cnn"
        model_args = {"num_classes": 10, "in_channels": 1} if model_name == "small_cnn" else {}
        train_set, test_set = load_datasets(args.dataset, args.data_dir)
        mean, std = DATASET_STATS[args.dataset]
        metadata = weights_metadata(model_name, args.dataset, model_args)
    args.model = model_name
    if args.limit:
        train_set = Subset(train_set, np.arange(min(args.limit, len(train_set))))
        test_set = Subset(test_set, np.arange(min(args.limit, len(test_set))))
    if args.dataset == "folder":
        workers = {"num_workers": args.workers, "persistent_workers": args.workers > 0}
        train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                                  seed=args.seed, **workers)
        test_loader = DataLoader(test_set, batch_size=args.test_batch_size, **workers)
    else:
        train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                                  seed=args.seed)
        test_loader = DataLoader(test_set, batch_size=args.test_batch_size)
    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    model = models.MODELS[args.model](**model_args).to(args.device)   # before its optimizer
    runner, summary = _flag_runner(args, model, train_loader, test_loader, lr, mean, std,
                                   len(classes))
    print(f"training {args.model} on {args.dataset} ({len(train_set)} train / {len(test_set)} "
          f"test images), {args.optimizer} lr={lr}, batch {args.batch_size}, {args.epochs} "
          f"epoch(s), device {args.device}", flush=True)
    start = time.perf_counter()
    history, last = run_flag_training(runner, summary,
                                      args.save or f"{args.model}_interrupted.safetensors",
                                      metadata)
    print(f"done in {time.perf_counter() - start:.1f} s: test accuracy "
          f"{100 * last.accuracy:.2f}%")
    if args.save:
        serialization.save(model.state_dict(), args.save,
                           metadata=dict(metadata, epoch=len(history),
                                         test_accuracy=last.accuracy))
        print(f"weights saved to {args.save}")
    if args.report:
        from .report import write_report
        path = write_report(args.report, history, last, model, list(classes),
                            title=f"{args.model} on {args.dataset}",
                            details={**{k: v for k, v in vars(args).items() if k != "func"},
                                     "lr": lr})
        print(f"report written to {path}")
    return 0


def _flag_runner(args, model, train_loader, test_loader, lr, mean, std, num_classes):
    """(FlagRunner, EpochSummaryHook) of the flags' run."""
    # The Runner seeds everything again from --seed; keep the streams where the model's
    # initialisation left them instead, so training does not redraw init's numbers.
    after_init = rng.capture()
    summary = EpochSummaryHook(test_loader, args.device, num_classes, mean=mean[0],
                               std=std[0], progress=False if args.no_progress else None,
                               print_fn=lambda line: print(line, flush=True))
    runner = FlagRunner(model, work_dir=os.path.join(tempfile.gettempdir(), "unused"),
                        train_dataloader=train_loader,
                        optimizer=build_optimizer(args.optimizer, model.parameters(), lr),
                        param_scheduler=dict(type="StepLR", step_size=1, gamma=args.gamma),
                        max_epochs=args.epochs, seed=args.seed, device=args.device,
                        default_hooks=[ParamSchedulerHook(), summary])
    rng.restore(after_init)
    return runner, summary
