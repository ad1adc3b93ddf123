"""The training loop every example and the CLI share: epochs with a progress bar,
evaluation with a confusion matrix, a history for the report.

The loop itself is the PyTorch one a user already knows (zero_grad, forward, loss,
backward, step); this module only adds the progress bar, timing and bookkeeping.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from . import optim
from .autograd import no_grad
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
                log_interval=0, dry_run=False, progress=True):
    """One pass over `loader`: returns (mean training loss, samples per second).

    `loss_fn(output, target)` defaults to cross-entropy, which is also right for models
    that end in log_softmax (log_softmax is idempotent). With `log_interval` > 0 it also
    prints PyTorch-example-style lines every that many batches.
    """
    model.train()
    total = len(loader.dataset) if hasattr(loader, "dataset") else None
    bar = tqdm(total=total, desc=f"epoch {epoch}", unit="img", unit_scale=True,
               disable=not progress, leave=False, dynamic_ncols=True)
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
    bar.close()
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
        loss_fn=F.cross_entropy, log_interval=0, dry_run=False, progress=True,
        mean=0.0, std=1.0, num_classes=10, print_fn=print):
    """Train for `epochs`, evaluating after each; returns (history, last Evaluation)."""
    history, last = [], None
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        train_loss, rate = train_epoch(model, train_loader, optimizer, device, epoch,
                                       loss_fn, log_interval, dry_run, progress)
        last = evaluate(model, test_loader, device, num_classes, mean=mean, std=std,
                        loss_fn=loss_fn)
        if scheduler is not None:
            scheduler.step()
        result = EpochResult(epoch, train_loss, last.loss, last.accuracy,
                             time.perf_counter() - start, rate)
        history.append(result)
        print_fn(format_epoch(result))
        if dry_run:
            break
    return history, last
