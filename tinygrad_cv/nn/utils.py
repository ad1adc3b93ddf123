"""nn.utils: gradient clipping and parameters <-> one flat vector, as torch.nn.utils.

Norms are computed on the gradients' device without a host sync (unless
`error_if_nonfinite` asks to check the total), and gradients are scaled in place.
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd import no_grad
from ..backend import xp_of
from ..tensor import Tensor, wrap_array


def _as_list(parameters, op):
    if isinstance(parameters, Tensor):
        return [parameters]
    try:
        return list(parameters)
    except TypeError:
        raise TypeError(f"{op}: expected a Tensor or an iterable of Tensors, got "
                        f"{type(parameters).__name__}") from None


def _vector_norm(xp, a, norm_type):
    """torch.linalg.vector_norm of a raw array (any shape), as a 0-d array."""
    a = xp.abs(a)
    if norm_type == math.inf:
        return a.max() if a.size else xp.zeros((), a.dtype)
    if norm_type == -math.inf:
        return a.min()
    if norm_type == 0:
        return (a != 0).sum().astype(a.dtype)
    if norm_type == 1:
        return a.sum()
    if norm_type == 2:
        return xp.sqrt((a * a).sum())
    return (a ** norm_type).sum() ** (1.0 / norm_type)


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The `norm_type` norm of the per-tensor norms of `tensors` (as one vector's norm)."""
    tensors = [t for t in _as_list(tensors, "get_total_norm") if t is not None]
    norm_type = float(norm_type)
    if not tensors:
        return Tensor(0.0)
    devices = {t.device_str for t in tensors}
    if len(devices) > 1:
        raise RuntimeError(f"get_total_norm: tensors are on several devices {sorted(devices)}")
    xp = xp_of(tensors[0].data)
    dtype = tensors[0].dtype
    norms = xp.stack([_vector_norm(xp, t.data, norm_type).astype(dtype) for t in tensors])
    total = _vector_norm(xp, norms, norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                           f"`parameters` is non-finite, so it cannot be clipped. To disable "
                           f"this error and scale the gradients by the non-finite norm "
                           f"anyway, set `error_if_nonfinite=False`")
    return wrap_array(total, tensors[0].device_str)


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """Scale every gradient by min(1, max_norm / (total_norm + 1e-6)), in place."""
    grads = [p.grad for p in _as_list(parameters, "clip_grads_with_norm_")
             if p.grad is not None]
    if not grads:
        return
    total = total_norm.data if isinstance(total_norm, Tensor) else total_norm
    xp = xp_of(grads[0].data)
    with np.errstate(all="ignore"):      # a non-finite norm gives NaN grads, as torch
        coef = xp.minimum(float(max_norm) / (xp.asarray(total) + 1e-6), 1.0)
    with no_grad(), np.errstate(all="ignore"):
        for g in grads:
            g.data *= coef.astype(g.dtype)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                    foreach=None):
    """Rescale the gradients of `parameters` so their total `norm_type` norm (inf: the
    largest magnitude) is at most `max_norm`; returns the total norm before clipping, as
    a 0-d tensor. A non-finite total raises when `error_if_nonfinite`, otherwise it
    scales the gradients by it (NaN), as torch."""
    parameters = _as_list(parameters, "clip_grad_norm_")
    grads = [p.grad for p in parameters if p.grad is not None]
    total = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, max_norm, total, foreach)
    return total


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient of `parameters` into [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    for p in _as_list(parameters, "clip_grad_value_"):
        if p.grad is not None:
            xp = xp_of(p.grad.data)
            xp.clip(p.grad.data, -clip_value, clip_value, out=p.grad.data)


def parameters_to_vector(parameters):
    """All parameters flattened and concatenated into one 1-D tensor (differentiable)."""
    from ..ops.arrange import cat
    parameters = _as_list(parameters, "parameters_to_vector")
    if not parameters:
        raise ValueError("parameters_to_vector: expected at least one parameter")
    devices = {p.device_str for p in parameters}
    if len(devices) > 1:
        raise TypeError(f"parameters_to_vector: found parameters on several devices "
                        f"{sorted(devices)}; all must be on one device")
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of the 1-D `vec` into `parameters`, in order.

    Differs from torch in one way: the values are copied into each parameter's own
    storage (torch rebinds `param.data` to views of `vec`), so a Module or optimizer
    holding the arrays sees the new values and later changes to `vec` do not leak in."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected Tensor, but got: {type(vec).__name__}")
    parameters = _as_list(parameters, "vector_to_parameters")
    total = sum(p.numel() for p in parameters)
    if vec.ndim != 1 or vec.numel() != total:
        raise ValueError(f"vector_to_parameters: vec of shape {vec.shape} does not hold the "
                         f"{total} values of the {len(parameters)} parameters")
    pointer = 0
    for p in parameters:
        if p.device_str != vec.device_str:
            raise TypeError(f"vector_to_parameters: vec is on {vec.device_str} but a "
                            f"parameter is on {p.device_str}")
        n = p.numel()
        p.data[...] = vec.data[pointer:pointer + n].reshape(p.shape)
        pointer += n


__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector",
           "vector_to_parameters", "get_total_norm", "clip_grads_with_norm_"]
