"""Layer (c): hypothesis-drawn shapes for broadcasting binary ops (and matmul batch dims).

Forward against NumPy; gradients against PyTorch when it is installed, else against the
float64 finite-difference check. Incompatible shapes must fail naming the op and shapes.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import tinygrad_cv as tc
from tests.helpers import gradcheck, torch, torch_parity

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

BINARY = {
    "add": (lambda m, x, y: x + y, np.add),
    "sub": (lambda m, x, y: x - y, np.subtract),
    "mul": (lambda m, x, y: x * y, np.multiply),
    "div": (lambda m, x, y: x / y, np.divide),
    "pow": (lambda m, x, y: x ** y, np.power),
    "maximum": (lambda m, x, y: m.maximum(x, y), np.maximum),
    "minimum": (lambda m, x, y: m.minimum(x, y), np.minimum),
}

two_shapes = mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=1,
                                           max_side=4)


def _inputs(shapes, op, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shapes[0]).astype(np.float32)
    b = rng.standard_normal(shapes[1]).astype(np.float32)
    if op in ("div", "pow"):
        b = (np.abs(b) + 0.5).astype(np.float32) if op == "div" else b
        a = (np.abs(a) + 0.5).astype(np.float32) if op == "pow" else a
    return a, b


@pytest.mark.parametrize("op", list(BINARY))
@SETTINGS
@given(shapes=two_shapes, seed=st.integers(0, 2 ** 16), swap=st.booleans())
def test_binary_broadcast(op, shapes, seed, swap):
    fn, ref = BINARY[op]
    in_shapes = shapes.input_shapes[::-1] if swap else shapes.input_shapes
    a, b = _inputs(in_shapes, op, seed)
    out = fn(tc, tc.Tensor(a), tc.Tensor(b))
    assert out.shape == np.broadcast_shapes(a.shape, b.shape)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), ref(a, b), rtol=1e-5, atol=1e-6)
    if torch is not None:
        torch_parity(lambda x, y: fn(tc, x, y), lambda x, y: fn(torch, x, y), a, b)
    else:
        gradcheck(lambda x, y: fn(tc, x, y), a.astype(np.float64), b.astype(np.float64))


@SETTINGS
@given(shapes=mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3),
       seed=st.integers(0, 2 ** 16))
def test_where_broadcast(shapes, seed):
    rng = np.random.default_rng(seed)
    c_shape, a_shape, b_shape = shapes.input_shapes
    cond = rng.random(c_shape) > 0.5
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32)
    out = tc.where(tc.Tensor(cond), tc.Tensor(a), tc.Tensor(b))
    np.testing.assert_array_equal(out.numpy(), np.where(cond, a, b))
    if torch is not None:
        torch_parity(lambda c, x, y: tc.where(c, x, y), lambda c, x, y: torch.where(c, x, y),
                     cond, a, b)
    else:
        gradcheck(lambda c, x, y: tc.where(c, x, y), cond, a.astype(np.float64),
                  b.astype(np.float64))


@SETTINGS
@given(batch=mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3),
       n=st.integers(1, 4), k=st.integers(1, 4), p=st.integers(1, 4), seed=st.integers(0, 99))
def test_matmul_batch_broadcast(batch, n, k, p, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(batch.input_shapes[0] + (n, k)).astype(np.float32)
    b = rng.standard_normal(batch.input_shapes[1] + (k, p)).astype(np.float32)
    out = tc.Tensor(a) @ tc.Tensor(b)
    np.testing.assert_allclose(out.numpy(), a @ b, rtol=1e-5, atol=1e-5)
    if torch is not None:
        torch_parity(lambda x, y: x @ y, lambda x, y: x @ y, a, b)
    else:
        gradcheck(lambda x, y: x @ y, a.astype(np.float64), b.astype(np.float64))


@SETTINGS
@given(shapes=two_shapes, seed=st.integers(0, 99))
def test_scalar_and_tensor_operand_orders(shapes, seed):
    """`scalar op T`, `T op scalar`, and `ndarray op T` all broadcast as the Tensor op."""
    a, b = _inputs(shapes.input_shapes, "add", seed)
    ta = tc.Tensor(a)
    np.testing.assert_allclose((2.5 - ta).numpy(), 2.5 - a, rtol=1e-6)
    np.testing.assert_allclose((ta / 2).numpy(), a / 2, rtol=1e-6)
    out = b * ta
    assert isinstance(out, tc.Tensor)
    np.testing.assert_allclose(out.numpy(), b * a, rtol=1e-6)
    out = b - ta
    assert isinstance(out, tc.Tensor)
    np.testing.assert_allclose(out.numpy(), b - a, rtol=1e-6)


@st.composite
def incompatible_shapes(draw):
    """Two shapes with at least one aligned pair of sizes that differ and are both > 1."""
    ndim = draw(st.integers(1, 4))
    a = list(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    b = [draw(st.sampled_from([1, n])) for n in a]
    i = draw(st.integers(0, ndim - 1))
    a[i] = draw(st.integers(2, 4))
    b[i] = draw(st.integers(2, 5).filter(lambda n: n != a[i]))
    lead = draw(st.lists(st.integers(1, 3), max_size=2))
    return tuple(a), tuple(lead + b)


@pytest.mark.parametrize("op", list(BINARY) + ["where", "eq", "lt"])
@settings(max_examples=10, deadline=None, derandomize=True)
@given(shapes=incompatible_shapes())
def test_incompatible_shapes_error_names_op_and_shapes(op, shapes):
    sa, sb = shapes
    a, b = tc.ones(sa, requires_grad=True), tc.ones(sb)
    with pytest.raises((ValueError, RuntimeError)) as info:
        if op == "where":
            tc.where(a > 0, a, b)
        elif op in ("eq", "lt"):
            getattr(a, op)(b)
        else:
            BINARY[op][0](tc, a, b)
    msg = str(info.value)
    assert op in msg, msg
    assert str(sa) in msg and str(sb) in msg, msg
    assert a.grad is None


def test_matmul_incompatible_batch_error():
    with pytest.raises(RuntimeError) as info:
        tc.ones(2, 3, 4) @ tc.ones(3, 4, 5)
    assert "matmul" in str(info.value) and "(2, 3, 4)" in str(info.value)
    assert "(3, 4, 5)" in str(info.value)
