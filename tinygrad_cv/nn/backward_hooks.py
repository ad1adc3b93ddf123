"""Module backward hooks (`register_full_backward_hook`, `..._pre_hook`), as torch's.

A module with backward hooks runs its forward between two identity ops: one on each
positional input that requires grad, one on the output. In backward, the output's
identity sees grad_output first (pre-hooks may replace it); each input identity then
records its grad_input, and when the last one arrives the hooks are called as
`hook(module, grad_input, grad_output)`. When no input needs a gradient the hooks run at
the output, with grad_input all None, as torch. Limits (said in the errors): one tensor
output; a hook may replace grad_input only for a module with one tensor input.
"""
from __future__ import annotations

from ..autograd import Function, is_grad_enabled
from ..tensor import Tensor, wrap_array


class _HookState:
    """One forward call's bookkeeping between its output and input identities."""

    def __init__(self, module, n_inputs, pending):
        self.module = module
        self.grad_inputs = [None] * n_inputs
        self.grad_output = None
        self.pending = pending
        self.device = None

    def wrap(self, arr):
        return None if arr is None else wrap_array(arr, self.device)

    def run_hooks(self):
        grad_input = tuple(self.wrap(g) for g in self.grad_inputs)
        grad_output = (self.wrap(self.grad_output),)
        for hook in list(self.module.__dict__.get("_backward_hooks", {}).values()):
            result = hook(self.module, grad_input, grad_output)
            if result is None:
                continue
            result = tuple(result) if isinstance(result, (tuple, list)) else (result,)
            if len(result) != len(grad_input):
                raise RuntimeError(f"backward hook returned {len(result)} gradients for "
                                   f"{len(grad_input)} inputs")
            if len(grad_input) != 1 and any(a is not b for a, b in zip(result, grad_input)):
                raise NotImplementedError("a backward hook may replace grad_input only for a "
                                          "module with one tensor input in tinygrad_cv")
            grad_input = result
        return grad_input


class _OutputIdentity(Function):
    @staticmethod
    def forward(ctx, a, state):
        ctx.state = state
        return a

    @staticmethod
    def backward(ctx, grad):
        state = ctx.state
        for hook in list(state.module.__dict__.get("_backward_pre_hooks", {}).values()):
            result = hook(state.module, (wrap_array(grad, state.device),))
            if result is not None:
                result = result[0] if isinstance(result, (tuple, list)) else result
                grad = result.data
        state.grad_output = grad
        if state.pending == 0:
            state.run_hooks()
        return grad


class _InputIdentity(Function):
    @staticmethod
    def forward(ctx, a, state, index):
        ctx.state, ctx.index = state, index
        return a

    @staticmethod
    def backward(ctx, grad):
        state = ctx.state
        state.grad_inputs[ctx.index] = grad
        state.pending -= 1
        if state.pending == 0:
            replaced = state.run_hooks()[ctx.index]
            if replaced is not None:
                grad = replaced.data
        return grad


def call_with_backward_hooks(module, forward, args, kwargs):
    """Run `forward(*args, **kwargs)` between the identities (see the module docstring)."""
    if not is_grad_enabled():
        return forward(*args, **kwargs)
    tensor_positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
    needing = [i for i in tensor_positions if args[i].requires_grad]
    state = _HookState(module, len(tensor_positions), len(needing))
    args = list(args)
    for slot, i in enumerate(tensor_positions):
        if args[i].requires_grad:
            state.device = args[i].device_str
            args[i] = _InputIdentity.apply(args[i], state=state, index=slot)
    out = forward(*args, **kwargs)
    if not isinstance(out, Tensor):
        raise NotImplementedError(f"{type(module).__name__}: backward hooks need a module "
                                  f"returning one Tensor in tinygrad_cv, got "
                                  f"{type(out).__name__}")
    if not out.requires_grad:
        return out
    state.device = out.device_str
    return _OutputIdentity.apply(out, state=state)
