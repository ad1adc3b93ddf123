"""Learning-rate schedulers: `LRScheduler` (base), `StepLR`, `CosineAnnealingLR`.

As in PyTorch, a scheduler writes each group's new lr into `optimizer.param_groups`
when `step()` is called (once per epoch, after `optimizer.step()`), and the constructor
performs an initial step to epoch `last_epoch + 1` (0 for a new schedule) that keeps
the current lrs (except StepLR, which decays if a resumed epoch falls on a step).
`step()` uses the *recursive* form of each schedule (the new lr is computed from the
group's current lr), so a schedule composes with lr changes made by hand, exactly as
PyTorch; `step(epoch)` (deprecated in PyTorch) jumps to the closed form.

Not implemented: PyTorch's warning when `scheduler.step()` runs before
`optimizer.step()`.
"""
from __future__ import annotations

import math

from .optimizer import Optimizer


class LRScheduler:
    """Base class: subclasses implement `get_lr()` (recursive form) and optionally
    `_get_closed_form_lr()`; both return one lr per param group."""

    def __init__(self, optimizer, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] "
                                   f"when resuming an optimizer")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._is_initial = True    # the constructor's step: some schedules keep the lr as is
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement get_lr")

    def get_last_lr(self):
        """The lrs set by the last `step()`, one per param group."""
        return self._last_lr

    def step(self, epoch=None):
        """Advance one epoch (or jump to `epoch`) and write the new lrs into the optimizer."""
        self._step_count += 1
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            closed_form = getattr(self, "_get_closed_form_lr", None)
            values = closed_form() if closed_form is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        """Every attribute except the optimizer, as PyTorch."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)


class StepLR(LRScheduler):
    """Multiply each group's lr by `gamma` every `step_size` epochs:
    lr = base_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        # PyTorch fails later (ZeroDivisionError) for 0 and decays every epoch for < 0
        if step_size <= 0:
            raise ValueError(f"StepLR: step_size must be positive, got {step_size!r}")
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [group["lr"] for group in self.optimizer.param_groups]
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size)
                for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from base_lr down to `eta_min` over `T_max` epochs (SGDR without
    restarts); past T_max the lr rises again along the same cosine, as in PyTorch.

    Closed form: lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        if T_max <= 0:   # PyTorch fails later with ZeroDivisionError
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max!r}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        groups = self.optimizer.param_groups
        epoch, t_max, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:   # PyTorch keeps the current lrs, even when resuming
            return [group["lr"] for group in groups]
        if self._step_count == 1 and epoch > 0:
            # first step after loading a fresh state: the closed form at this epoch
            return [eta_min + (base_lr - eta_min) * (1 + math.cos(epoch * math.pi / t_max)) / 2
                    for base_lr in self.base_lrs]
        if (epoch - 1 - t_max) % (2 * t_max) == 0:
            # at the bottom of the cosine the ratio below would divide by zero
            return [group["lr"] + (base_lr - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
                    for base_lr, group in zip(self.base_lrs, groups)]
        ratio = ((1 + math.cos(math.pi * epoch / t_max))
                 / (1 + math.cos(math.pi * (epoch - 1) / t_max)))
        return [ratio * (group["lr"] - eta_min) + eta_min for group in groups]

    def _get_closed_form_lr(self):
        return [self.eta_min + (base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base_lr in self.base_lrs]
