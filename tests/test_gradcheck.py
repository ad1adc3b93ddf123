"""Layer (a): float64 random-direction gradient check of every differentiable Tensor op.

Needs no PyTorch: `gradcheck` compares <v, J^T u> from our backward with a central finite
difference. Inputs are drawn with fixed seeds; max/min inputs are tie-free (distinct
normal draws) and clamp/relu/abs inputs stay away from their kinks.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cv as tc
from tests.helpers import gradcheck

rng = np.random.default_rng(7)


def N(*shape):
    return rng.standard_normal(shape)


def P(*shape):
    """Positive, away from zero (log, sqrt, division, fractional powers)."""
    return rng.random(shape) * 2 + 0.5


def K(*shape):
    """Normal values at least 0.05 from zero (kinks of relu/abs/clamp at 0 and +-0.5)."""
    a = rng.standard_normal(shape)
    a = np.where(np.abs(a) < 0.05, 0.3, a)
    return np.where(np.abs(np.abs(a) - 0.5) < 0.05, 0.7, a)


def DISTINCT(*shape):
    """Tie-free values with gaps >= 0.1 (max/min and their indices are stable under eps)."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.1 + rng.random(n) * 0.01 - n * 0.05).reshape(shape)


MASK = rng.random((3, 4)) > 0.5

GRADCHECKS = [
    # arithmetic (tensor-tensor with broadcasting, and scalars on both sides)
    ("add", lambda x, y: x + y, [N(3, 4), N(4)]),
    ("radd", lambda x: 1.5 + x, [N(3)]),
    ("sub", lambda x, y: x - y, [N(2, 1, 3), N(4, 1)]),
    ("rsub", lambda x: 2 - x, [N(3)]),
    ("mul", lambda x, y: x * y, [N(3, 4), N(3, 1)]),
    ("rmul", lambda x: 3 * x, [N(3)]),
    ("div", lambda x, y: x / y, [N(3, 4), P(4)]),
    ("rdiv", lambda x: 2.0 / x, [P(3, 4)]),
    ("pow_tensor", lambda x, y: x ** y, [P(3, 4), N(3, 4)]),
    ("pow_tensor_bcast", lambda x, y: x ** y, [P(3, 1), N(4)]),
    ("pow_int", lambda x: x ** 3, [N(3, 4)]),
    ("pow_sq", lambda x: x ** 2, [N(5)]),
    ("pow_frac", lambda x: x ** 1.7, [P(3, 4)]),
    ("pow_neg", lambda x: x ** -0.5, [P(3, 4)]),
    ("pow_zero", lambda x: x ** 0, [N(3)]),
    ("rpow", lambda x: 3.0 ** x, [N(3, 4)]),
    ("neg", lambda x: -x, [N(3, 4)]),
    ("abs", lambda x: x.abs(), [K(3, 4)]),
    # elementwise math
    ("exp", lambda x: x.exp(), [N(3, 4)]),
    ("log", lambda x: x.log(), [P(3, 4)]),
    ("sqrt", lambda x: x.sqrt(), [P(3, 4)]),
    ("relu", lambda x: x.relu(), [K(3, 4)]),
    ("sigmoid", lambda x: x.sigmoid(), [N(3, 4) * 4]),
    ("tanh", lambda x: x.tanh(), [N(3, 4) * 2]),
    ("clamp", lambda x: x.clamp(-0.5, 0.5), [K(3, 4)]),
    ("clamp_min", lambda x: x.clamp(min=0.0), [K(3, 4)]),
    ("clamp_max", lambda x: tc.clamp(x, max=0.5), [K(3, 4)]),
    ("clamp_tensor", lambda x, lo, hi: x.clamp(lo, hi), [N(3, 4), N(4) - 1.5, N(3, 1) + 1.5]),
    ("maximum", lambda x, y: tc.maximum(x, y), [N(3, 4), N(4)]),
    ("minimum", lambda x, y: tc.minimum(x, y), [N(3, 4), N(3, 1)]),
    ("where", lambda x, y: tc.where(tc.Tensor(MASK), x, y), [N(3, 4), N(4)]),
    ("where_scalar", lambda x: tc.where(tc.Tensor(MASK), x, 1.0), [N(3, 4)]),
    # reductions
    ("sum", lambda x: x.sum(), [N(3, 4)]),
    ("sum_dim", lambda x: x.sum(1), [N(3, 4, 2)]),
    ("sum_tuple_keepdim", lambda x: x.sum((0, -1), keepdim=True), [N(3, 4, 2)]),
    ("mean", lambda x: x.mean(), [N(3, 4)]),
    ("mean_dim", lambda x: x.mean(-1, keepdim=True), [N(3, 4)]),
    ("mean_tuple", lambda x: x.mean((0, 2)), [N(3, 4, 2)]),
    ("var", lambda x: x.var(), [N(3, 4)]),
    ("var_dim", lambda x: x.var(0, keepdim=True), [N(3, 4)]),
    ("var_biased", lambda x: x.var((0, 1), unbiased=False), [N(3, 4, 2)]),
    ("var_correction", lambda x: x.var(1, correction=2), [N(3, 5)]),
    ("std", lambda x: x.std(), [N(3, 4)]),
    ("std_dim", lambda x: x.std(1, keepdim=True), [N(3, 4)]),
    ("std_biased", lambda x: x.std(0, unbiased=False), [N(3, 4)]),
    ("max_full", lambda x: x.max(), [DISTINCT(3, 4)]),
    ("min_full", lambda x: x.min(), [DISTINCT(3, 4)]),
    ("max_dim", lambda x: x.max(1), [DISTINCT(3, 4)]),
    ("max_dim_keepdim", lambda x: x.max(0, keepdim=True).values, [DISTINCT(3, 4, 2)]),
    ("min_dim", lambda x: x.min(-1)[0], [DISTINCT(3, 4)]),
    ("logsumexp", lambda x: x.logsumexp(1), [N(3, 4)]),
    ("logsumexp_tuple_keepdim", lambda x: x.logsumexp((0, 1), keepdim=True), [N(3, 4, 2)]),
    ("softmax", lambda x: x.softmax(1), [N(3, 4)]),
    ("softmax_dim0", lambda x: tc.softmax(x, 0), [N(3, 4, 2)]),
    ("log_softmax", lambda x: x.log_softmax(-1), [N(3, 4)]),
    ("log_softmax_dim1", lambda x: tc.log_softmax(x, 1), [N(2, 3, 4)]),
    # matmul
    ("matmul_1d_1d", lambda x, y: x @ y, [N(4), N(4)]),
    ("matmul_1d_2d", lambda x, y: x @ y, [N(4), N(4, 3)]),
    ("matmul_2d_1d", lambda x, y: x @ y, [N(3, 4), N(4)]),
    ("matmul_2d_2d", lambda x, y: x @ y, [N(3, 4), N(4, 2)]),
    ("matmul_batched", lambda x, y: x @ y, [N(2, 3, 4), N(2, 4, 5)]),
    ("matmul_bcast", lambda x, y: tc.matmul(x, y), [N(2, 1, 3, 4), N(3, 4, 2)]),
    ("matmul_3d_1d", lambda x, y: x @ y, [N(2, 3, 4), N(4)]),
    ("matmul_1d_3d", lambda x, y: x @ y, [N(4), N(2, 4, 3)]),
    # shape ops
    ("reshape", lambda x: x.reshape(2, -1), [N(3, 4)]),
    ("view", lambda x: x.view(4, 3), [N(3, 4)]),
    ("view_as", lambda x, y: x.view_as(y), [N(3, 4), N(2, 6)]),
    ("flatten", lambda x: x.flatten(1), [N(2, 3, 4)]),
    ("flatten_module", lambda x: tc.flatten(x), [N(2, 3, 4)]),
    ("squeeze", lambda x: x.squeeze(), [N(1, 3, 1)]),
    ("squeeze_dim", lambda x: x.squeeze(-1), [N(1, 3, 1)]),
    ("unsqueeze", lambda x: x.unsqueeze(1), [N(3, 4)]),
    ("transpose", lambda x: x.transpose(0, -1), [N(2, 3, 4)]),
    ("T", lambda x: x.T, [N(3, 4)]),
    ("permute", lambda x: x.permute(1, 2, 0), [N(2, 3, 4)]),
    ("expand", lambda x: x.expand(2, 3, 4), [N(3, 1)]),
    ("expand_neg1", lambda x: x.expand(-1, 5), [N(3, 1)]),
    # indexing
    ("getitem_int", lambda x: x[1], [N(3, 4)]),
    ("getitem_slices", lambda x: x[::2, 1:3], [N(3, 4)]),
    ("getitem_none_ellipsis", lambda x: x[None, ..., 0], [N(2, 3, 4)]),
    ("getitem_int_array_repeats", lambda x: x[[0, 2, 0, 0, 1]], [N(3, 4)]),
    ("getitem_int_tensor_repeats", lambda x, i: x[:, i], [N(3, 4), np.array([[1, 1], [3, 1]])]),
    ("getitem_two_arrays", lambda x: x[[0, 0, 2], [1, 1, 3]], [N(3, 4)]),
    ("getitem_int_and_array", lambda x: x[0, :, [1, 1, 2]], [N(2, 3, 4)]),
    ("getitem_bool_mask", lambda x, b: x[b], [N(3, 4), MASK]),
    ("getitem_bool_rows", lambda x: x[tc.Tensor([True, False, True])], [N(3, 4)]),
    ("getitem_bool_from_input", lambda x: x[x > 0], [N(3, 4)]),
    # joining and padding
    ("cat", lambda x, y: tc.cat([x, y], 1), [N(2, 3), N(2, 2)]),
    ("cat_three_same", lambda x: tc.cat([x, x * 2, x], 0), [N(2, 3)]),
    ("stack", lambda x, y: tc.stack([x, y], -1), [N(2, 3), N(2, 3)]),
    ("pad_constant", lambda x: tc.pad(x, (1, 2, 0, 1), value=0.5), [N(2, 3, 4)]),
    ("pad_constant_negative", lambda x: x.pad((-1, 2, 1, -2)), [N(2, 4, 5)]),
    ("pad_reflect", lambda x: tc.pad(x, (2, 1, 1, 2), mode="reflect"), [N(1, 2, 4, 5)]),
    ("pad_replicate", lambda x: tc.pad(x, (3, 1), mode="replicate"), [N(2, 3, 4)]),
    ("pad_circular", lambda x: tc.pad(x, (2, 3, 1, 0), mode="circular"), [N(1, 2, 3, 4)]),
    # casts and copies
    ("cast_float32_roundtrip", lambda x: x.to(tc.float32).to(tc.float64) * 2, [N(3)]),
    ("astype", lambda x: x.astype(tc.float64) * x, [N(3)]),
    ("to_device_cpu", lambda x: x.to("cpu") * 3, [N(3)]),
    ("clone", lambda x: x.clone() * x, [N(3, 4)]),
    ("index_select", lambda x, i: x.index_select(1, i), [N(3, 4), np.array([3, 0, 3, 3])]),
    ("index_select_module", lambda x: tc.index_select(x, 0, tc.Tensor([2, 2, 1])), [N(3, 4)]),
    # composites: graph with shared subexpressions and several outputs
    ("diamond", lambda x: (lambda e: e * e + e.sum() * e)(x.exp()), [N(3)]),
    ("two_outputs", lambda x, y: (x @ y, (x * 2).sum(0)), [N(3, 4), N(4, 2)]),
    ("mlp", lambda x, w, b: ((x @ w.T + b).tanh() @ w).sigmoid().log_softmax(1),
     [N(5, 4), N(3, 4), N(3)]),
]

# The cast ops check float32 rounding, so they need a looser tolerance.
LOOSE = {"cast_float32_roundtrip": dict(eps=1e-3, atol=1e-4, rtol=1e-3)}


@pytest.mark.parametrize("fn,inputs,name", [pytest.param(c[1], c[2], c[0], id=c[0])
                                            for c in GRADCHECKS])
def test_gradcheck(fn, inputs, name, device):
    gradcheck(fn, *inputs, device=device, **LOOSE.get(name, {}))


def test_every_gradcheck_input_is_float64_and_tie_free():
    """The max ops' inputs really are tie-free (and stay so for small eps)."""
    for name, _, inputs in GRADCHECKS:
        if name.startswith(("max_", "min_")):
            for a in inputs:
                flat = np.sort(np.ravel(a))
                assert np.all(np.diff(flat) > 1e-3), name
