"""Adam and AdamW, with amsgrad and maximize, following PyTorch's formulas step for step.

For each param with gradient g, at step t (counted from 1, stored in state['step']):

    g   = -g if maximize else g
    p   = p * (1 - lr * weight_decay)     AdamW (decoupled weight decay), or
    g   = g + weight_decay * p            Adam (L2 penalty added to the gradient)
    m   = m + (1 - beta1) * (g - m)       (= beta1 * m + (1 - beta1) * g)
    v   = beta2 * v + (1 - beta2) * g * g
    v^  = max(v^, v)                      amsgrad only; v^ replaces v below
    p   = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

State per param: 'step' (a 0-d float32 CPU tensor, as PyTorch), 'exp_avg' (m),
'exp_avg_sq' (v) and, with amsgrad, 'max_exp_avg_sq' (v^).
"""
from __future__ import annotations

import math

from ..backend import array_module

from .optimizer import (Optimizer, check_hyperparameter, reject_unsupported_flags,
                        state_tensor_like, step_counter)


def _check_adam_arguments(lr, betas, eps, weight_decay):
    check_hyperparameter("lr", lr, text="learning rate")
    check_hyperparameter("eps", eps, text="epsilon value")
    for i, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
    check_hyperparameter("weight_decay", weight_decay, text="weight_decay value")


class Adam(Optimizer):
    """Adam, as `torch.optim.Adam` (`decoupled_weight_decay=True` gives AdamW)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        _check_adam_arguments(lr, betas, eps, weight_decay)
        reject_unsupported_flags(type(self).__name__, capturable=capturable,
                                 differentiable=differentiable, fused=fused)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _update_group(self, group):
        lr = float(group["lr"])
        beta1, beta2 = (float(b) for b in group["betas"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if not state:
                state["step"] = step_counter()
                state["exp_avg"] = state_tensor_like(p)
                state["exp_avg_sq"] = state_tensor_like(p)
                if group["amsgrad"]:
                    state["max_exp_avg_sq"] = state_tensor_like(p)
            grad = p.grad.data
            if group["maximize"]:
                grad = -grad
            if weight_decay != 0:
                if group["decoupled_weight_decay"]:
                    p.data *= 1.0 - lr * weight_decay
                else:
                    grad = grad + weight_decay * p.data

            state["step"].data += 1
            xp = array_module(p.device_str)
            step = float(state["step"].data)
            exp_avg, exp_avg_sq = state["exp_avg"].data, state["exp_avg_sq"].data
            exp_avg += (1.0 - beta1) * (grad - exp_avg)
            exp_avg_sq *= beta2
            exp_avg_sq += (1.0 - beta2) * (grad * grad)

            if group["amsgrad"]:
                max_sq = state["max_exp_avg_sq"].data
                xp.maximum(max_sq, exp_avg_sq, out=max_sq)
                second_moment = max_sq
            else:
                second_moment = exp_avg_sq
            step_size = lr / (1.0 - beta1 ** step)
            bias_correction2_sqrt = math.sqrt(1.0 - beta2 ** step)
            denom = xp.sqrt(second_moment)
            denom /= bias_correction2_sqrt
            denom += eps
            p.data -= step_size * (exp_avg / denom)


class AdamW(Adam):
    """AdamW (decoupled weight decay), as `torch.optim.AdamW`; weight_decay defaults to 0.01."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
