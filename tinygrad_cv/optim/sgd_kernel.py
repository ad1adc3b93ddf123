"""The fused SGD update as one Numba kernel (torch.optim.SGD's arithmetic in one pass).

Its caller (`sgd.py`) has checked that the parameter, gradient and momentum buffer are
flat arrays of one size and dtype; the kernel trusts that.
"""
from __future__ import annotations

from numba import prange

from ..kernels.cpu.dispatch import size_dispatched


@size_dispatched
def sgd_update(param, grad, momentum_buffer, lr, momentum, one_minus_dampening,
               weight_decay, nesterov, maximize, first_step):
    """One torch.optim.SGD step of a flat parameter, in place and in one pass:

        g = -grad if maximize else grad;  g += weight_decay * p
        b = g (first step) or momentum * b + (1 - dampening) * g;  g = g + momentum * b
        (nesterov) or b;  p -= lr * g

    with every scalar in the parameter's dtype, so the roundings are those of the
    NumPy expressions it replaces. `momentum_buffer` is read and written only when
    `momentum != 0`. Replaces 3-4 NumPy passes and an lr * b temporary (a fresh
    parameter-sized array: page faults every step when glibc trims it)."""
    use_momentum = momentum != 0
    if use_momentum and not (first_step or nesterov or maximize):
        # the common cases (with or without weight decay) as branch-free loops LLVM can
        # vectorise
        if weight_decay == 0:
            for i in prange(param.size):
                b = momentum * momentum_buffer[i] + one_minus_dampening * grad[i]
                momentum_buffer[i] = b
                param[i] = param[i] - lr * b
        else:
            for i in prange(param.size):
                g = grad[i] + weight_decay * param[i]
                b = momentum * momentum_buffer[i] + one_minus_dampening * g
                momentum_buffer[i] = b
                param[i] = param[i] - lr * b
        return
    for i in prange(param.size):
        g = grad[i]
        if maximize:
            g = -g
        if weight_decay != 0:
            g = g + weight_decay * param[i]
        if use_momentum:
            if first_step:
                b = g
            else:
                b = momentum * momentum_buffer[i] + one_minus_dampening * g
            momentum_buffer[i] = b
            g = g + momentum * b if nesterov else b
        param[i] = param[i] - lr * g

