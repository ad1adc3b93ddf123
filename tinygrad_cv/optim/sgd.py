"""SGD with momentum, dampening, Nesterov momentum, weight decay and maximize.

The update is PyTorch's, step for step (see the torch.optim.SGD documentation):

    g = -grad if maximize else grad
    g = g + weight_decay * p                         (when weight_decay != 0)
    b = g                           on the first step (momentum != 0)
    b = momentum * b + (1 - dampening) * g           afterwards
    g = g + momentum * b if nesterov else b          (when momentum != 0)
    p = p - lr * g

Note that the first momentum step copies g into the buffer with no dampening, as
PyTorch does. With momentum == 0 no state is kept.
"""
from __future__ import annotations

import numpy as np

from ..backend import xp_of
from . import sgd_kernel
from .. import memory
from .optimizer import Optimizer, check_hyperparameter, reject_unsupported_flags, state_tensor_like


def _scaled(x, alpha):
    """alpha * x in scratch memory: recycled on the CPU, so a step does not page-fault a
    fresh parameter-sized temporary."""
    xp = xp_of(x)
    out = memory.empty(x.shape, x.dtype, xp)
    return xp.multiply(x, alpha, out=out)


class SGD(Optimizer):
    """Stochastic gradient descent, as `torch.optim.SGD`."""

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None):
        check_hyperparameter("lr", lr, text="learning rate")
        check_hyperparameter("momentum", momentum, text="momentum value")
        check_hyperparameter("weight_decay", weight_decay, text="weight_decay value")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        reject_unsupported_flags("SGD", differentiable=differentiable, fused=fused)
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                        foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)

    def _update_group(self, group):
        lr = float(group["lr"])
        momentum = float(group["momentum"])
        dampening = float(group["dampening"])
        weight_decay = float(group["weight_decay"])
        for p in group["params"]:
            if p.grad is None:
                continue
            if self._fused_applies(p):
                self._fused_update(p, group, lr, momentum, dampening, weight_decay)
                continue
            grad = p.grad.data
            if group["maximize"]:
                grad = -grad
            if weight_decay != 0:
                grad = grad + weight_decay * p.data
            if momentum != 0:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state_tensor_like(p)
                    buf.data[...] = grad
                    state["momentum_buffer"] = buf
                else:
                    buf.data *= momentum
                    buf.data += grad if dampening == 0 else _scaled(grad, 1.0 - dampening)
                grad = grad + _scaled(buf.data, momentum) if group["nesterov"] else buf.data
            p.data -= _scaled(grad, lr)

    def _fused_applies(self, p):
        """A contiguous float32/float64 CPU parameter (and momentum buffer, if any)."""
        if xp_of(p.data) is not np or p.data.dtype not in (np.float32, np.float64):
            return False
        buf = self.state[p].get("momentum_buffer") if p in self.state else None
        return p.data.flags.c_contiguous and (
            buf is None or (buf.data.flags.c_contiguous and buf.data.dtype == p.data.dtype))

    def _fused_update(self, p, group, lr, momentum, dampening, weight_decay):
        """The CPU update as one Numba pass (optim/sgd_kernel.py): the same
        arithmetic as the NumPy path above, without its temporaries."""
        dtype = p.data.dtype.type
        grad = np.ascontiguousarray(p.grad.data, dtype=p.data.dtype)
        first_step = False
        buf = p.data                     # a placeholder the kernel ignores (momentum 0)
        if momentum != 0:
            state = self.state[p]
            if state.get("momentum_buffer") is None:
                state["momentum_buffer"] = state_tensor_like(p)
                first_step = True
            buf = state["momentum_buffer"].data
        sgd_kernel.sgd_update(p.data.reshape(-1), grad.reshape(-1), buf.reshape(-1),
                               dtype(lr), dtype(momentum), dtype(1.0 - dampening),
                               dtype(weight_decay), bool(group["nesterov"]),
                               bool(group["maximize"]), first_step)
