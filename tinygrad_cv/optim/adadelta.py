"""Adadelta (Zeiler 2012), following PyTorch's formulas step for step.

For each param with gradient g (state: 'step', 'square_avg' s, 'acc_delta' a):

    g     = -g if maximize else g
    g     = g + weight_decay * p                  (when weight_decay != 0)
    s     = rho * s + (1 - rho) * g * g
    delta = sqrt(a + eps) / sqrt(s + eps) * g
    a     = rho * a + (1 - rho) * delta * delta
    p     = p - lr * delta
"""
from __future__ import annotations

from ..backend import array_module
from .optimizer import (Optimizer, check_hyperparameter, reject_unsupported_flags,
                        state_tensor_like, step_counter)


class Adadelta(Optimizer):
    """Adadelta, as `torch.optim.Adadelta(params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0)`."""

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False):
        check_hyperparameter("lr", lr, text="learning rate")
        check_hyperparameter("rho", rho, high=1.0, text="rho value")
        check_hyperparameter("eps", eps, text="epsilon value")
        check_hyperparameter("weight_decay", weight_decay, text="weight_decay value")
        reject_unsupported_flags("Adadelta", capturable=capturable,
                                 differentiable=differentiable)
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        capturable=capturable, foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults)

    def _update_group(self, group):
        lr = float(group["lr"])
        rho = float(group["rho"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if not state:
                state["step"] = step_counter()
                state["square_avg"] = state_tensor_like(p)
                state["acc_delta"] = state_tensor_like(p)
            grad = p.grad.data
            if group["maximize"]:
                grad = -grad
            if weight_decay != 0:
                grad = grad + weight_decay * p.data
            state["step"].data += 1
            xp = array_module(p.device_str)
            square_avg, acc_delta = state["square_avg"].data, state["acc_delta"].data

            square_avg *= rho
            square_avg += (1.0 - rho) * (grad * grad)
            std = xp.sqrt(square_avg + eps)
            delta = acc_delta + eps
            xp.sqrt(delta, out=delta)
            delta /= std
            delta *= grad
            acc_delta *= rho
            acc_delta += (1.0 - rho) * (delta * delta)
            p.data -= lr * delta
