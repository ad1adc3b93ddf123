"""Adagrad (Duchi et al. 2011), following torch.optim.Adagrad's formulas step for step.

For each param with gradient g at step t (state: 'step', 'sum' s, created with the
optimizer, s filled with `initial_accumulator_value`):

    g   = -g if maximize else g
    g   = g + weight_decay * p                    (when weight_decay != 0)
    clr = lr / (1 + (t - 1) * lr_decay)
    s   = s + g * g
    p   = p - clr * g / (sqrt(s) + eps)
"""
from __future__ import annotations

from ..backend import xp_of
from .optimizer import (Optimizer, check_hyperparameter, reject_unsupported_flags,
                        state_tensor_like, step_counter)


def adagrad_update(p, grad, state_sum, step, *, lr, lr_decay, weight_decay, eps, maximize):
    """One Adagrad step of the raw array `p` in place; `step` counts from 1."""
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad + weight_decay * p
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum += grad * grad
    std = xp_of(p).sqrt(state_sum)
    std += eps
    p += -clr * (grad / std)


class Adagrad(Optimizer):
    """Adagrad, as `torch.optim.Adagrad(params, lr=1e-2, lr_decay=0, weight_decay=0,
    initial_accumulator_value=0, eps=1e-10, ...)`. As torch, the state of every param is
    created with the optimizer (so `state_dict()` has it before the first step)."""

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0,
                 initial_accumulator_value=0, eps=1e-10, foreach=None, *, maximize=False,
                 differentiable=False, fused=None):
        check_hyperparameter("lr", lr, text="learning rate")
        check_hyperparameter("lr_decay", lr_decay, text="lr_decay value")
        check_hyperparameter("weight_decay", weight_decay, text="weight_decay value")
        check_hyperparameter("initial_accumulator_value", initial_accumulator_value,
                             text="initial_accumulator_value value")
        check_hyperparameter("eps", eps, text="epsilon value")
        reject_unsupported_flags("Adagrad", differentiable=differentiable, fused=fused)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = step_counter()
                state["sum"] = state_tensor_like(p, float(group["initial_accumulator_value"]))

    def _update_group(self, group):
        settings = dict(lr=float(group["lr"]), lr_decay=float(group["lr_decay"]),
                        weight_decay=float(group["weight_decay"]), eps=float(group["eps"]),
                        maximize=bool(group["maximize"]))
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if not state:      # a param group added after construction
                state["step"] = step_counter()
                state["sum"] = state_tensor_like(p, float(group["initial_accumulator_value"]))
            state["step"].data += 1
            adagrad_update(p.data, p.grad.data, state["sum"].data, float(state["step"].data),
                           **settings)
