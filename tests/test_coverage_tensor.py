"""Tensor additions (from_numpy, narrow/split/chunk, flip, repeat, inference_mode), nn.utils
(gradient clipping, parameters <-> vector) and utils.checkpoint: float64 gradient checks,
torch parity of outputs and gradients, torch's edge cases."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_cv as tc
from tests.helpers import gradcheck, requires_torch, torch, torch_parity

rng = np.random.default_rng(13)


def N(*shape):
    return rng.standard_normal(shape)


def _sum_pieces(pieces):
    """A loss touching every piece differently (so each piece's gradient is checked)."""
    return tuple(p * (i + 1.0) for i, p in enumerate(pieces))


# ----------------------------------------------------------------------------- gradients

GRADCHECKS = [
    ("narrow", lambda x: x.narrow(1, 1, 2), [N(3, 4)]),
    ("narrow_neg_start", lambda x: tc.narrow(x, 0, -2, 2), [N(3, 4)]),
    ("split_int", lambda x: _sum_pieces(x.split(2, dim=1)), [N(3, 5)]),
    ("split_list", lambda x: _sum_pieces(tc.split(x, [1, 0, 2], 0)), [N(3, 2)]),
    ("chunk", lambda x: _sum_pieces(x.chunk(3, -1)), [N(2, 7)]),
    ("flip", lambda x: x.flip(0, 2), [N(2, 3, 4)]),
    ("flip_list", lambda x: tc.flip(x, [-1]), [N(3, 4)]),
    ("repeat", lambda x: x.repeat(2, 3), [N(3, 2)]),
    ("repeat_new_dims", lambda x: x.repeat(2, 1, 1, 3), [N(3, 2)]),
    ("repeat_0d", lambda x: x.repeat(4), [N()]),
]


@pytest.mark.parametrize("name,fn,arrays", GRADCHECKS, ids=[c[0] for c in GRADCHECKS])
def test_gradcheck(name, fn, arrays, device):
    gradcheck(fn, *arrays, device=device)


# ----------------------------------------------------------------------------- torch parity

F32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
PARITY = [
    ("narrow", lambda m, x: x.narrow(0, 1, 2), [F32(4, 3)]),
    ("split_int_first", lambda m, x: m.split(x, 3)[0], [F32(7, 2)]),
    ("split_int_last", lambda m, x: x.split(3)[2], [F32(7, 2)]),
    ("split_sizes", lambda m, x: m.cat([p * (i + 1) for i, p in enumerate(x.split([2, 1, 3], 1))],
                                       1), [F32(2, 6)]),
    ("chunk_uneven", lambda m, x: m.cat([p * (i + 2) for i, p in enumerate(x.chunk(3, 1))], 1),
     [F32(2, 8)]),
    ("chunk_fewer", lambda m, x: m.stack([p.sum() for p in m.chunk(x, 4)]), [F32(3, 2)]),
    ("flip", lambda m, x: x.flip(1), [F32(2, 3, 4)]),
    ("flip_all", lambda m, x: m.flip(x, (0, 1, 2)), [F32(2, 3, 4)]),
    ("repeat", lambda m, x: x.repeat(2, 1, 3), [F32(3, 2)]),
    ("repeat_zero", lambda m, x: x.repeat(0, 2), [F32(3)]),
]


@requires_torch
@pytest.mark.parametrize("name,fn,arrays", PARITY, ids=[c[0] for c in PARITY])
def test_torch_parity(name, fn, arrays, device):
    torch_parity(lambda *t: fn(tc, *t), lambda *t: fn(torch, *t), *arrays, device=device)


@requires_torch
@pytest.mark.parametrize("size,arg", [(7, 3), (6, 3), (1, 5), (0, 3), (5, 1), (4, 4)])
def test_split_and_chunk_piece_sizes_match_torch(size, arg):
    x, t = tc.zeros(size, 2), torch.zeros(size, 2)
    assert [p.shape for p in x.chunk(arg)] == [tuple(p.shape) for p in t.chunk(arg)]
    assert [p.shape for p in x.split(arg)] == [tuple(p.shape) for p in t.split(arg)]


def test_split_chunk_repeat_flip_errors():
    x = tc.zeros(4, 3)
    with pytest.raises(RuntimeError, match="sum exactly to 4"):
        x.split([1, 2])
    with pytest.raises(RuntimeError, match="chunks"):
        x.chunk(0)
    with pytest.raises(RuntimeError, match="split_size"):
        x.split(0)
    with pytest.raises(RuntimeError, match="repeat"):
        x.repeat(2)
    with pytest.raises(RuntimeError, match="more than once"):
        x.flip(0, -2)
    with pytest.raises(IndexError, match="narrow"):
        x.narrow(0, 3, 2)
    with pytest.raises(IndexError, match="flip"):
        x.flip(2)


def test_split_pieces_are_views_and_flip_is_a_copy():
    x = tc.arange(6.0)
    a, b = x.split(3)
    x.data[0] = 100.0
    assert a[0].item() == 100.0
    f = x.flip(0)
    x.data[5] = -1.0
    assert f[0].item() == 5.0


# ----------------------------------------------------------------------------- from_numpy

def test_from_numpy_shares_memory_and_keeps_dtype():
    for dtype in (np.float64, np.float32, np.int64, np.int32, np.uint8, np.bool_):
        a = np.zeros((2, 3), dtype)
        t = tc.from_numpy(a)
        assert t.dtype == dtype and t.shape == (2, 3) and t.device_str == "cpu"
        a[1, 2] = 1
        assert t[1, 2].item() == 1
    a = np.ones(3)
    t = tc.from_numpy(a)
    t.data[0] = 7.0
    assert a[0] == 7.0
    with tc.no_grad():
        t += 1
    assert a[0] == 8.0
    assert tc.from_numpy(a[::2]).shape == (2,)


def test_from_numpy_rejects_what_torch_rejects():
    with pytest.raises(TypeError, match="np.ndarray"):
        tc.from_numpy([1, 2])
    with pytest.raises(TypeError, match="object"):
        tc.from_numpy(np.array([None, 1], dtype=object))
    with pytest.raises(TypeError, match="complex128"):
        tc.from_numpy(np.zeros(2, np.complex128))


@requires_torch
def test_from_numpy_gradient_flows_like_torch():
    a = rng.standard_normal((3, 2))
    t = tc.from_numpy(a.copy()).requires_grad_()
    r = torch.from_numpy(a.copy()).requires_grad_()
    (t * t).sum().backward()
    (r * r).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), r.grad.numpy(), rtol=1e-15)
    assert t.grad.dtype == np.float64


# ----------------------------------------------------------------------------- inference_mode

def test_inference_mode_context_decorator_and_false():
    x = tc.ones(2, requires_grad=True)
    with tc.inference_mode():
        assert tc.is_inference_mode_enabled()
        assert not (x * 2).requires_grad
        with tc.inference_mode(False):      # torch: a no-op, grad stays off here
            assert not (x * 2).requires_grad
    assert not tc.is_inference_mode_enabled()
    assert (x * 2).requires_grad
    with tc.inference_mode(False):
        assert (x * 2).requires_grad

    @tc.inference_mode()
    def called():
        return (x * 2).requires_grad

    @tc.inference_mode
    def bare():
        """doc kept"""
        return (x * 2).requires_grad

    assert called() is False and bare() is False and bare.__doc__ == "doc kept"
    assert (x * 2).requires_grad
    with pytest.raises(ZeroDivisionError):
        with tc.inference_mode():
            1 / 0
    assert tc.is_grad_enabled() and not tc.is_inference_mode_enabled()


# ----------------------------------------------------------------------------- nn.utils

def _params_with_grads(m, arrays, grads):
    params = [m.nn.Parameter(m.tensor(a, dtype=m.float64)) for a in arrays]
    for p, g in zip(params, grads):
        p.grad = m.tensor(g, dtype=m.float64) if g is not None else None
    return params


@requires_torch
@pytest.mark.parametrize("norm_type", [2.0, 1, math.inf, -math.inf, 3.5, 0.5, 0, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    arrays = [N(3, 4), N(5), N(2, 2)]
    grads = [N(3, 4), None, N(2, 2) * 3]
    ours = _params_with_grads(tc, arrays, grads)
    theirs = _params_with_grads(torch, arrays, grads)
    nt = float(norm_type)
    total = tc.nn.utils.clip_grad_norm_(ours, max_norm, norm_type=nt)
    total_t = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=nt)
    assert isinstance(total, tc.Tensor) and total.shape == ()
    np.testing.assert_allclose(total.item(), total_t.item(), rtol=1e-12)
    for a, b in zip(ours, theirs):
        if b.grad is None:
            assert a.grad is None
        else:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12)


@requires_torch
def test_clip_grad_norm_single_tensor_no_grads_and_nonfinite():
    p = tc.nn.Parameter(tc.ones(3))
    assert tc.nn.utils.clip_grad_norm_(p, 1.0).item() == 0.0     # no grads: tensor(0.)
    p.grad = tc.tensor([3.0, 4.0, 0.0])
    np.testing.assert_allclose(tc.nn.utils.clip_grad_norm_(p, 1.0).item(), 5.0)
    np.testing.assert_allclose(p.grad.numpy(), np.array([3, 4, 0]) / (5 + 1e-6), rtol=1e-6)
    p.grad = tc.tensor([np.inf, 1.0, 0.0])
    before = p.grad.numpy().copy()
    with pytest.raises(RuntimeError, match="non-finite"):
        tc.nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(p.grad.numpy(), before)        # nothing changed
    q = torch.nn.Parameter(torch.ones(3))
    q.grad = torch.tensor([np.inf, 1.0, 0.0])
    total_t = torch.nn.utils.clip_grad_norm_(q, 1.0)
    total = tc.nn.utils.clip_grad_norm_(p, 1.0)
    assert np.isinf(total.item()) and np.isinf(total_t.item())
    np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())  # nan, 0, 0 as torch


@requires_torch
def test_clip_grad_value_matches_torch():
    arrays, grads = [N(4, 3), N(2)], [N(4, 3) * 2, N(2)]
    ours = _params_with_grads(tc, arrays, grads)
    theirs = _params_with_grads(torch, arrays, grads)
    assert tc.nn.utils.clip_grad_value_(ours, 0.7) is None
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())


@requires_torch
def test_parameters_to_vector_and_back():
    torch.manual_seed(0)
    net_t = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)).double()
    net = tc.nn.Sequential(tc.nn.Linear(3, 4), tc.nn.Linear(4, 2)).double()
    net.load_state_dict({k: v.detach().numpy() for k, v in net_t.state_dict().items()})
    vec = tc.nn.utils.parameters_to_vector(net.parameters())
    vec_t = torch.nn.utils.parameters_to_vector(net_t.parameters())
    np.testing.assert_array_equal(vec.numpy(), vec_t.detach().numpy())
    (vec * vec).sum().backward()                    # differentiable, as torch's
    np.testing.assert_allclose(net[0].weight.grad.numpy(), 2 * net[0].weight.numpy())
    weight = net[0].weight
    new = np.arange(vec.numel(), dtype=np.float64)
    tc.nn.utils.vector_to_parameters(tc.tensor(new, dtype=tc.float64), net.parameters())
    torch.nn.utils.vector_to_parameters(torch.tensor(new), net_t.parameters())
    assert net[0].weight is weight
    for a, b in zip(net.parameters(), net_t.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.detach().numpy())
    with pytest.raises(TypeError, match="expected Tensor"):
        tc.nn.utils.vector_to_parameters(new, net.parameters())
    with pytest.raises(ValueError, match="values"):
        tc.nn.utils.vector_to_parameters(tc.zeros(3), net.parameters())


# ----------------------------------------------------------------------------- checkpoint

def test_checkpoint_runs_the_function_with_gradients():
    from tinygrad_cv.utils.checkpoint import checkpoint, checkpoint_sequential
    x = tc.tensor([1.0, 2.0], requires_grad=True)
    out = checkpoint(lambda a, scale=1.0: (a * a * scale).sum(), x, scale=3.0,
                     use_reentrant=False)
    out.backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 12.0])
    seq = tc.nn.Sequential(tc.nn.Linear(2, 3), tc.nn.ReLU(), tc.nn.Linear(3, 1))
    np.testing.assert_array_equal(checkpoint_sequential(seq, 2, x, use_reentrant=False).numpy(),
                                  seq(x).numpy())
    assert tc.utils.checkpoint.checkpoint is checkpoint
