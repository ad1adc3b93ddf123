"""RMSprop (Hinton's lecture 6e), following torch.optim.RMSprop's formulas step for step.

For each param with gradient g (state: 'step', 'square_avg' v, and 'grad_avg' m when
centered, 'momentum_buffer' b when momentum > 0):

    g   = -g if maximize else g
    g   = g + weight_decay * p                    (when weight_decay != 0)
    v   = alpha * v + (1 - alpha) * g * g
    m   = lerp(m, g, 1 - alpha)                   centered only
    d   = sqrt(v - m * m) + eps  if centered  else  sqrt(v) + eps
    b   = momentum * b + g / d;  p = p - lr * b   (momentum > 0)
    p   = p - lr * g / d                          (momentum == 0)
"""
from __future__ import annotations

from ..backend import xp_of
from .optimizer import (Optimizer, check_hyperparameter, reject_unsupported_flags,
                        state_tensor_like, step_counter)


def lerp_(start, end, weight):
    """start += weight * (end - start) in place, with torch's two-sided formula."""
    if weight < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1.0 - weight)
    return start


def rmsprop_update(p, grad, state, *, lr, alpha, eps, weight_decay, momentum, centered,
                   maximize):
    """One RMSprop step of the raw array `p` in place (`state` holds raw arrays)."""
    xp = xp_of(p)
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad + weight_decay * p
    square_avg = state["square_avg"]
    square_avg *= alpha
    square_avg += (1.0 - alpha) * grad * grad
    if centered:
        grad_avg = lerp_(state["grad_avg"], grad, 1.0 - alpha)
        avg = xp.sqrt(square_avg - grad_avg * grad_avg)
    else:
        avg = xp.sqrt(square_avg)
    avg += eps
    if momentum > 0:
        buf = state["momentum_buffer"]
        buf *= momentum
        buf += grad / avg
        p -= lr * buf
    else:
        p += -lr * (grad / avg)


class RMSprop(Optimizer):
    """RMSprop, as `torch.optim.RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8,
    weight_decay=0, momentum=0, centered=False, ...)`."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        check_hyperparameter("lr", lr, text="learning rate")
        check_hyperparameter("eps", eps, text="epsilon value")
        check_hyperparameter("momentum", momentum, text="momentum value")
        check_hyperparameter("weight_decay", weight_decay, text="weight_decay value")
        check_hyperparameter("alpha", alpha, text="alpha value")
        reject_unsupported_flags("RMSprop", capturable=capturable,
                                 differentiable=differentiable)
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def _update_group(self, group):
        settings = dict(lr=float(group["lr"]), alpha=float(group["alpha"]),
                        eps=float(group["eps"]), weight_decay=float(group["weight_decay"]),
                        momentum=float(group["momentum"]), centered=bool(group["centered"]),
                        maximize=bool(group["maximize"]))
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if not state:
                state["step"] = step_counter()
                state["square_avg"] = state_tensor_like(p)
                if settings["momentum"] > 0:
                    state["momentum_buffer"] = state_tensor_like(p)
                if settings["centered"]:
                    state["grad_avg"] = state_tensor_like(p)
            state["step"].data += 1
            arrays = {name: value.data for name, value in state.items() if name != "step"}
            rmsprop_update(p.data, p.grad.data, arrays, **settings)
