"""Shared test tools: the float64 random-direction gradient check and PyTorch parity.

gradcheck(fn, *arrays): for random directions v (inputs) and u (output), compares
<v, J^T u> from our backward with the central difference (<u, f(x + eps v)> -
<u, f(x - eps v)>) / 2 eps, in float64. No PyTorch needed; runs on any device.

torch_parity(ours, theirs, *arrays): runs the same computation in both frameworks from
the same inputs, with the non-uniform loss ((out + 1) ** 2).mean(), and compares the
forward output and every input gradient.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cv as tc

try:
    import torch
except ImportError:  # parity tests skip themselves
    torch = None

requires_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed "
                                    "(pip install -e '.[torch]')")

NO_CUDA_REASON = "no CUDA GPU / CuPy on this machine"

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not tc.cuda.is_available(), reason=NO_CUDA_REASON))]
"""Every device, for `pytest.mark.parametrize("device", DEVICES)` and the `device` fixture
of tests/conftest.py: "cuda" is a skipped variant (with the reason) on machines without a
GPU, never silently absent. Prefer the fixture: a test just takes a `device` argument."""

device_params = pytest.mark.parametrize("device", DEVICES)
"""The same as the fixture, as a decorator (for tests that cannot take fixtures)."""

requires_cuda = pytest.mark.skipif(not tc.cuda.is_available(), reason=NO_CUDA_REASON)


def _outputs(out):
    return out if isinstance(out, (tuple, list)) else (out,)


def gradcheck(fn, *arrays, eps=1e-6, atol=1e-6, rtol=1e-5, seed=0, device="cpu", trials=2):
    """Check every input's gradient of `fn(*tensors)` against finite differences (float64).

    `arrays` are NumPy arrays; float ones become float64 tensors requiring grad, others
    (integer indices, masks) are passed through as constant tensors.
    """
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(a) for a in arrays]
    diff = [a.dtype.kind == "f" for a in arrays]

    def make(xs, grad):
        return [tc.Tensor(x.astype(np.float64) if d else x,
                          dtype=np.float64 if d else None, device=device,
                          requires_grad=grad and d)
                for x, d in zip(xs, diff)]

    for _ in range(trials):
        inputs = make(arrays, True)
        outs = [o for o in _outputs(fn(*inputs)) if o.dtype.kind == "f"]
        us = [rng.standard_normal(o.shape) for o in outs]
        loss = None
        for o, u in zip(outs, us):
            term = (o * tc.Tensor(u, dtype=np.float64, device=device)).sum()
            loss = term if loss is None else loss + term
        loss.backward()
        vs = [rng.standard_normal(a.shape) if d else None for a, d in zip(arrays, diff)]
        analytic = sum(float(np.sum(t.grad.numpy() * v)) for t, v, d in zip(inputs, vs, diff)
                       if d and t.grad is not None)

        def probe(sign):
            shifted = [a.astype(np.float64) + sign * eps * v if d else a
                       for a, v, d in zip(arrays, vs, diff)]
            with tc.no_grad():
                o2 = [o for o in _outputs(fn(*make(shifted, False))) if o.dtype.kind == "f"]
            return sum(float(np.sum(o.numpy() * u)) for o, u in zip(o2, us))

        numeric = (probe(+1) - probe(-1)) / (2 * eps)
        assert abs(analytic - numeric) <= atol + rtol * abs(numeric), (
            f"gradient check failed: backward gives {analytic!r}, finite differences {numeric!r}")


def to_torch(a, requires_grad=True):
    t = torch.tensor(np.asarray(a))
    if requires_grad and t.dtype.is_floating_point:
        t.requires_grad_(True)
    return t


def torch_parity(ours, theirs, *arrays, atol=1e-5, rtol=1e-4, device="cpu", grads=True):
    """Compare `ours(*tc_tensors)` with `theirs(*torch_tensors)`: outputs and input grads."""
    arrays = [np.asarray(a) for a in arrays]
    tc_in = [tc.Tensor(a, dtype=a.dtype, device=device,
                       requires_grad=grads and a.dtype.kind == "f") for a in arrays]
    th_in = [to_torch(a, requires_grad=grads) for a in arrays]
    out_tc, out_th = ours(*tc_in), theirs(*th_in)
    for o_tc, o_th in zip(_outputs(out_tc), _outputs(out_th)):
        np.testing.assert_allclose(o_tc.numpy(), o_th.detach().numpy(), atol=atol, rtol=rtol,
                                   err_msg="forward differs from PyTorch")
    if not grads:
        return
    first_tc, first_th = _outputs(out_tc)[0], _outputs(out_th)[0]
    if not first_th.requires_grad:
        return
    ((first_tc + 1) ** 2).mean().backward()
    ((first_th + 1) ** 2).mean().backward()
    for i, (a, b) in enumerate(zip(tc_in, th_in)):
        if not b.requires_grad:
            continue
        if b.grad is None:
            assert a.grad is None or not np.any(a.grad.numpy()), f"input {i}: torch has no grad"
            continue
        assert a.grad is not None, f"input {i}: no gradient, PyTorch has one"
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), atol=atol, rtol=rtol,
                                   err_msg=f"gradient of input {i} differs from PyTorch")
