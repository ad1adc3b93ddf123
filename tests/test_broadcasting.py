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
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
# `device` (tests/conftest.py) is a function-scoped fixture returning a constant string,
# so reusing it across hypothesis examples is safe.

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
def test_binary_broadcast(op, shapes, seed, swap, device):
    fn, ref = BINARY[op]
    in_shapes = shapes.input_shapes[::-1] if swap else shapes.input_shapes
    a, b = _inputs(in_shapes, op, seed)
    out = fn(tc, tc.Tensor(a, device=device), tc.Tensor(b, device=device))
    assert out.shape == np.broadcast_shapes(a.shape, b.shape)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), ref(a, b), rtol=1e-5, atol=1e-6)
    if torch is not None:
        torch_parity(lambda x, y: fn(tc, x, y), lambda x, y: fn(torch, x, y), a, b,
                     device=device)
    else:
        gradcheck(lambda x, y: fn(tc, x, y), a.astype(np.float64), b.astype(np.float64),
                  device=device)


@SETTINGS
@given(shapes=mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3),
       seed=st.integers(0, 2 ** 16))
def test_where_broadcast(shapes, seed, device):
    rng = np.random.default_rng(seed)
    c_shape, a_shape, b_shape = shapes.input_shapes
    cond = rng.random(c_shape) > 0.5
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32)
    out = tc.where(tc.Tensor(cond, device=device), tc.Tensor(a, device=device),
                   tc.Tensor(b, device=device))
    np.testing.assert_array_equal(out.numpy(), np.where(cond, a, b))
    if torch is not None:
        torch_parity(lambda c, x, y: tc.where(c, x, y), lambda c, x, y: torch.where(c, x, y),
                     cond, a, b, device=device)
    else:
        gradcheck(lambda c, x, y: tc.where(c, x, y), cond, a.astype(np.float64),
                  b.astype(np.float64), device=device)


@SETTINGS
@given(batch=mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3),
       n=st.integers(1, 4), k=st.integers(1, 4), p=st.integers(1, 4), seed=st.integers(0, 99))
def test_matmul_batch_broadcast(batch, n, k, p, seed, device):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(batch.input_shapes[0] + (n, k)).astype(np.float32)
    b = rng.standard_normal(batch.input_shapes[1] + (k, p)).astype(np.float32)
    out = tc.Tensor(a, device=device) @ tc.Tensor(b, device=device)
    np.testing.assert_allclose(out.numpy(), a @ b, rtol=1e-5, atol=1e-5)
    if torch is not None:
        torch_parity(lambda x, y: x @ y, lambda x, y: x @ y, a, b, device=device)
    else:
        gradcheck(lambda x, y: x @ y, a.astype(np.float64), b.astype(np.float64),
                  device=device)


@SETTINGS
@given(shapes=two_shapes, seed=st.integers(0, 99))
def test_scalar_and_tensor_operand_orders(shapes, seed, device):
    """`scalar op T`, `T op scalar`, and `ndarray op T` all broadcast as the Tensor op."""
    a, b = _inputs(shapes.input_shapes, "add", seed)
    ta = tc.Tensor(a, device=device)
    np.testing.assert_allclose((2.5 - ta).numpy(), 2.5 - a, rtol=1e-6)
    np.testing.assert_allclose((ta / 2).numpy(), a / 2, rtol=1e-6)
    if device != "cpu":
        return                # a host ndarray with a GPU tensor is a device mix (as torch)
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
@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shapes=incompatible_shapes())
def test_incompatible_shapes_error_names_op_and_shapes(op, shapes, device):
    sa, sb = shapes
    a, b = tc.ones(sa, requires_grad=True, device=device), tc.ones(sb, device=device)
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


def test_matmul_incompatible_batch_error(device):
    with pytest.raises(RuntimeError) as info:
        tc.ones(2, 3, 4, device=device) @ tc.ones(3, 4, 5, device=device)
    assert "matmul" in str(info.value) and "(2, 3, 4)" in str(info.value)
    assert "(3, 4, 5)" in str(info.value)


# ----------------------------------------------------------------------------- reductions and indexing

@st.composite
def shape_and_dims(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=4)))
    nd = len(shape)
    if nd == 0:
        dim = draw(st.sampled_from([None, 0, -1]))
    else:
        dim = draw(st.one_of(st.none(), st.integers(-nd, nd - 1),
                             st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd,
                                      unique=True).map(tuple)))
    return shape, dim, draw(st.booleans())


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
@pytest.mark.filterwarnings("ignore:.*degrees of freedom")
@pytest.mark.parametrize("op", ["sum", "mean", "var", "std", "logsumexp"])
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=shape_and_dims(), seed=st.integers(0, 99))
def test_reduction_shapes_match_torch(op, spec, seed, device):
    shape, dim, keepdim = spec
    if op == "logsumexp" and dim is None:
        dim = tuple(range(len(shape)))
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)

    def fn(x):
        return getattr(x, op)(dim, keepdim=keepdim) if dim is not None else getattr(x, op)()

    torch_parity(fn, fn, a, device=device)


@st.composite
def index_for(draw):
    """A tensor shape and an index mixing ints, slices, None, Ellipsis, int lists and masks."""
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    parts, dim, used_ellipsis = [], 0, False
    while dim < len(shape) and draw(st.booleans()) or not parts:
        if dim >= len(shape):
            parts.append(None)
            break
        n = shape[dim]
        kind = draw(st.sampled_from(["int", "slice", "list", "none", "ellipsis", "mask", "full"]))
        if kind == "int":
            parts.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            parts.append(slice(draw(st.one_of(st.none(), st.integers(-n, n))),
                               draw(st.one_of(st.none(), st.integers(-n, n))),
                               draw(st.sampled_from([None, 1, 2, 3]))))
        elif kind == "list":
            parts.append(draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=3)))
        elif kind == "none":
            parts.append(None)
            continue
        elif kind == "ellipsis" and not used_ellipsis:
            parts.append(Ellipsis)
            used_ellipsis = True
            dim = len(shape) - 1     # the rest of the index addresses the last dim
            continue
        elif kind == "mask":
            parts.append(np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n))))
        else:
            parts.append(slice(None))
        dim += 1
    return shape, tuple(parts)


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=index_for(), seed=st.integers(0, 99))
def test_getitem_matches_torch(spec, seed, device):
    shape, index = spec
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    try:       # advanced indices that do not broadcast together are an error in both
        torch.zeros(shape)[tuple(torch.tensor(p) if isinstance(p, np.ndarray) else p
                                 for p in index)]
    except (IndexError, RuntimeError):
        with pytest.raises(IndexError):
            tc.zeros(shape, device=device)[tuple(tc.Tensor(p, device=device)
                                                 if isinstance(p, np.ndarray) else p
                                  for p in index)]
        return

    def fn(m):
        return lambda x: x[tuple(m.tensor(p, device=x.device) if isinstance(p, np.ndarray) else p
                                 for p in index)]

    torch_parity(fn(tc), fn(torch), a, device=device)
