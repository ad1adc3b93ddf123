"""The plain training loop the examples share: epochs with a progress bar, evaluation
with a confusion matrix, a history for the report, and nothing finished lost on Ctrl-C.
The CLI's flag-style `train` runs on the engine's Runner instead (`cli_train.py`), with
this module's evaluation, epoch line, interrupt message and weights metadata.

The loop itself is the PyTorch one a user already knows (zero_grad, forward, loss,
backward, step); this module only adds the progress bar, timing and bookkeeping, the
weights saved when the run is interrupted (`fit`), and the metadata a weights file
records (`weights_metadata`).
"""
from __future__ import annotations

import numbers
import signal
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from . import optim
from .autograd import no_grad
from .errors import Interrupted, signal_name, signals_deferred, signals_raise_interrupted
from .nn import functional as F

DATASET_STATS = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
}
"""Per-dataset mean and std of the training pixels in [0, 1], for Normalize."""

CLASS_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                      "Shirt", "Sneaker", "Bag", "Ankle boot"],
}

INPUT_SIZE = (1, 28, 28)
"""Channels, height, width of every model's input."""

PREPROCESS = {
    "mnist": {"fit": 20, "center": "mass"},
    "fashion-mnist": {"fit": 28, "center": "box"},
}
"""How each dataset's images were made from a larger picture, which `predict` repeats:
the object's bounding box scaled (aspect ratio kept) to fit a `fit` x `fit` square,
then placed in the 28x28 frame with its centre of mass (MNIST) or its box (Fashion-
MNIST) at the centre."""


def weights_metadata(model_name, dataset, model_args=None, **extra):
    """What a weights file records so `evaluate`/`predict` need no guessing: the model
    and its constructor arguments, the dataset, its class names, the input size, the
    normalisation, the preprocessing of raw pictures, the version; plus `extra`
    (e.g. epoch, test_accuracy)."""
    from . import __version__
    mean, std = DATASET_STATS[dataset]
    return {"model": model_name, "model_args": dict(model_args or {}), "dataset": dataset,
            "classes": list(CLASS_NAMES[dataset]), "input_size": list(INPUT_SIZE),
            "normalize": {"mean": list(mean), "std": list(std)},
            "preprocess": dict(PREPROCESS[dataset]),
            "tinygrad_cv_version": __version__, **extra}


def resolve_progress(progress=None) -> bool:
    """Whether to draw a progress bar: `progress` when True or False; when None, only
    if stderr (where tqdm draws) is a terminal, so a log file gets the per-epoch lines
    and not thousands of bar redraws."""
    if progress is not None:
        return bool(progress)
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:   # a closed stream
        return False


@dataclass
class EpochResult:
    """One epoch's figures, as printed in its summary line and drawn in the report."""
    epoch: int
    train_loss: float
    test_loss: float = float("nan")
    test_accuracy: float = float("nan")
    seconds: float = 0.0
    samples_per_second: float = 0.0


@dataclass
class Evaluation:
    """What `evaluate` measured on a whole dataset."""
    loss: float
    accuracy: float
    confusion: np.ndarray                      # [true, predicted] counts
    mistakes: list = field(default_factory=list)  # (image HxW in [0,1], true, predicted)


def train_epoch(model, loader, optimizer, device="cpu", epoch=1, loss_fn=F.cross_entropy,
                log_interval=0, dry_run=False, progress=None):
    """One pass over `loader`: returns (mean training loss, samples per second).

    `loss_fn(output, target)` defaults to cross-entropy, which is also right for models
    that end in log_softmax (log_softmax is idempotent). With `log_interval` > 0 it also
    prints PyTorch-example-style lines every that many batches. `progress`: draw a bar
    (True), never (False), or only on a terminal (None, see `resolve_progress`).
    """
    model.train()
    progress = resolve_progress(progress)
    total = len(loader.dataset) if hasattr(loader, "dataset") else None
    bar = tqdm(total=total, desc=f"epoch {epoch}", unit="img", unit_scale=True,
               disable=not progress, leave=False, dynamic_ncols=True)
    try:
        return _train_batches(model, loader, optimizer, device, epoch, loss_fn,
                              log_interval, dry_run, progress, bar, total)
    finally:
        bar.close()   # also when interrupted: no half-drawn bar left above the message


def _train_batches(model, loader, optimizer, device, epoch, loss_fn, log_interval, dry_run,
                   progress, bar, total):
    # The running loss stays on the model's device; reading it (`.item()`) waits for the
    # GPU, so it is read only every 10 batches, not every step.
    loss_sum, seen, start = None, 0, time.perf_counter()
    for batch_idx, (data, target) in enumerate(loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(data), target)
        loss.backward()
        optimizer.step()
        batch_loss = loss.detach() * len(data)
        loss_sum = batch_loss if loss_sum is None else loss_sum + batch_loss
        seen += len(data)
        bar.update(len(data))
        if progress and batch_idx % 10 == 0:
            bar.set_postfix(loss=f"{loss_sum.item() / seen:.4f}")
        if log_interval and batch_idx % log_interval == 0:
            line = (f"Train Epoch: {epoch} [{seen}/{total} "
                    f"({100.0 * seen / total:.0f}%)]\tLoss: {loss.item():.6f}")
            (bar.write if progress else print)(line)
        if dry_run:
            break
    seconds = time.perf_counter() - start
    mean_loss = loss_sum.item() / seen if seen else float("nan")
    return mean_loss, seen / seconds if seconds > 0 else 0.0


@no_grad()
def evaluate(model, loader, device="cpu", num_classes=10, keep_mistakes=64,
             mean=0.0, std=1.0, loss_fn=F.cross_entropy):
    """Mean loss, accuracy and confusion matrix over `loader`, in eval mode, without grad.

    Keeps up to `keep_mistakes` misclassified images (un-normalised with mean/std to
    [0, 1]) for the report's picture grid.
    """
    model.eval()
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    loss_sum, seen, mistakes = 0.0, 0, []
    for data, target in loader:
        data, target = data.to(device), target.to(device)
        output = model(data)
        loss_sum += loss_fn(output, target, reduction="sum").item()
        predicted = output.argmax(dim=1).numpy()
        truth = target.numpy()
        confusion += np.bincount(truth * num_classes + predicted,
                                 minlength=num_classes * num_classes
                                 ).reshape(num_classes, num_classes)
        seen += len(truth)
        if len(mistakes) < keep_mistakes:
            wrong = np.flatnonzero(predicted != truth)[:keep_mistakes - len(mistakes)]
            images = data.numpy()[wrong, 0] * std + mean
            mistakes += [(np.clip(img, 0, 1), int(truth[i]), int(predicted[i]))
                         for img, i in zip(images, wrong)]
    return Evaluation(loss=loss_sum / max(seen, 1),
                      accuracy=float(np.trace(confusion)) / max(seen, 1),
                      confusion=confusion, mistakes=mistakes)


def build_optimizer(name, params, lr):
    """An optimizer by command-line name, with PyTorch's defaults apart from `lr`."""
    name = name.lower()
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=0.9)
    if name == "adam":
        return optim.Adam(params, lr=lr)
    if name == "adamw":
        return optim.AdamW(params, lr=lr)
    if name == "adadelta":
        return optim.Adadelta(params, lr=lr)
    raise ValueError(f"unknown optimizer {name!r}; expected sgd, adam, adamw or adadelta")


def format_epoch(r: EpochResult) -> str:
    return (f"epoch {r.epoch:>2}: train loss {r.train_loss:.4f} | test loss "
            f"{r.test_loss:.4f}, accuracy {100 * r.test_accuracy:.2f}% | "
            f"{r.seconds:.1f} s ({r.samples_per_second:,.0f} img/s)")


def fit(model, train_loader, test_loader, optimizer, epochs, scheduler=None, device="cpu",
        loss_fn=F.cross_entropy, log_interval=0, dry_run=False, progress=None,
        mean=0.0, std=1.0, num_classes=10, print_fn=print, save_interrupted_to=None,
        metadata=None):
    """Train for `epochs`, evaluating after each; returns (history, last Evaluation).

    SIGINT (Ctrl-C) or SIGTERM during the run stop it and raise `errors.Interrupted`
    (a KeyboardInterrupt) whose one-line message says what was kept: the weights of the
    best finished epoch so far (highest test accuracy, the later one on ties; the
    partly trained epoch is dropped) are written to `save_interrupted_to` when given
    (safetensors, with `metadata` plus that epoch's number and accuracy), and are the
    exception's `state` either way (None when no epoch had finished).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}")
    if hasattr(train_loader, "__len__") and len(train_loader) == 0:
        raise ValueError("fit: train_loader yields no batches (is its dataset empty?)")
    history, last, best, epoch = [], None, None, 0
    try:
        with signals_raise_interrupted():
            for epoch in range(1, epochs + 1):
                start = time.perf_counter()
                train_loss, rate = train_epoch(model, train_loader, optimizer, device, epoch,
                                               loss_fn, log_interval, dry_run, progress)
                last = evaluate(model, test_loader, device, num_classes, mean=mean, std=std,
                                loss_fn=loss_fn)
                if scheduler is not None:
                    scheduler.step()
                if best is None or last.accuracy >= best[1]:
                    best = (epoch, last.accuracy, _snapshot(model))   # one assignment
                result = EpochResult(epoch, train_loss, last.loss, last.accuracy,
                                     time.perf_counter() - start, rate)
                history.append(result)
                print_fn(format_epoch(result))
                if dry_run:
                    break
    except KeyboardInterrupt as exc:   # Interrupted (SIGINT, SIGTERM) or a plain Ctrl-C
        signum = getattr(exc, "signum", signal.SIGINT)
        with signals_deferred():       # a second Ctrl-C must not cut the save short
            interrupted = _interrupted(signum, epoch, best, save_interrupted_to, metadata)
        raise interrupted from None
    return history, last


def _snapshot(model):
    """A host copy of the model's state dict, unaffected by later training steps."""
    from .tensor import Tensor
    copies = {}
    for key, value in model.state_dict().items():
        array = np.array(value.numpy(), copy=True)
        copies[key] = Tensor(array, dtype=array.dtype)
    return copies


def _interrupted(signum, epoch, best, path, metadata):
    """The Interrupted exception for a run stopped in `epoch`, after saving `best`."""
    what = f"interrupted by {signal_name(signum)} in epoch {epoch}"
    if best is None:
        error = Interrupted(signum, f"{what}, before any epoch finished: no weights saved")
        error.state, error.epoch, error.path = None, None, None
        return error
    best_epoch, accuracy, state = best
    kept = f"the weights of epoch {best_epoch} (best so far, test accuracy {100 * accuracy:.2f}%)"
    if path is None:
        message = f"{what}: {kept} were not saved (no path given)"
    else:
        from .serialization import save
        info = dict(metadata or {}, epoch=best_epoch, test_accuracy=accuracy, interrupted=True)
        save(state, path, metadata=info)
        message = f"{what}: {kept} are saved in {path}"
    error = Interrupted(signum, message)
    error.state, error.epoch, error.path = state, best_epoch, path
    return error
