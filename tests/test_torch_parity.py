"""Layer (b): PyTorch parity of every Tensor op, forward and every input gradient.

One table, one line per configuration: `fn(m, *inputs)` is written once and run with
`m = tinygrad_cv` and `m = torch` (the two share names), compared by `torch_parity` with
the non-uniform loss ((out + 1) ** 2).mean(). Then dtype promotion, tie rules, factories,
random draws and repr.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cv as tc
from tests.helpers import requires_torch, torch, torch_parity

rng = np.random.default_rng(1234)


def N(*shape):
    """Standard normal float32 (tie-free with probability one)."""
    return rng.standard_normal(shape).astype(np.float32)


def P(*shape):
    """Positive float32 in [0.5, 2.5)."""
    return (rng.random(shape) * 2 + 0.5).astype(np.float32)


def D(*shape):
    return rng.standard_normal(shape)


def I(hi, *shape):
    return rng.integers(0, hi, shape)


def Z(*shape):
    """Normal float32 with exact zeros sprinkled in (relu'(0), abs'(0), clamp bounds)."""
    a = N(*shape)
    a.reshape(-1)[::3] = 0
    return a


def F(m):
    """`torch.nn.functional` or tinygrad_cv, for `pad`."""
    return torch.nn.functional if m is torch else m


BIG = np.array([[1e4, -1e4, 0.0, 3.0], [-1e4, -1e4, -1e4, -1e4], [1e4, 1e4, -2.0, 1e4]],
               np.float32)
TIES = np.array([[1.0, 3.0, 3.0, -1.0], [2.0, 2.0, 0.5, 2.0], [-1.0, -4.0, -4.0, 0.0]], np.float32)
MASK = rng.random((3, 4)) > 0.5

# name, fn(m, *inputs), inputs, tolerances
CONFIGS = [
    # ---------------------------------------------------------------- arithmetic
    ("add", lambda m, x, y: x + y, [N(3, 4), N(3, 4)]),
    ("add_bcast_row", lambda m, x, y: x + y, [N(3, 4), N(4)]),
    ("add_bcast_both", lambda m, x, y: x + y, [N(2, 1, 3), N(4, 1)]),
    ("add_0d", lambda m, x, y: x + y, [N(3, 2), N()]),
    ("add_0d_0d", lambda m, x, y: x + y, [N(), N()]),
    ("add_same_tensor", lambda m, x: x + x, [N(3, 4)]),
    ("add_method", lambda m, x, y: x.add(y), [N(2, 3), N(3)]),
    ("radd_scalar", lambda m, x: 2.5 + x, [N(3, 4)]),
    ("sub", lambda m, x, y: x - y, [N(2, 3, 4), N(3, 1)]),
    ("rsub_scalar", lambda m, x: 1.5 - x, [N(5)]),
    ("sub_scalar", lambda m, x: x - 3, [N(5)]),
    ("mul", lambda m, x, y: x * y, [N(4, 1), N(1, 5)]),
    ("mul_self", lambda m, x: x * x * x, [N(6)]),
    ("rmul_scalar", lambda m, x: -2 * x, [N(2, 3)]),
    ("div", lambda m, x, y: x / y, [N(3, 4), P(4)]),
    ("div_bcast_first", lambda m, x, y: x / y, [N(4), P(3, 4)]),
    ("rdiv_scalar", lambda m, x: 3.0 / x, [P(3, 4)]),
    ("div_scalar", lambda m, x: x / 4, [N(3, 4)]),
    ("pow_tensor", lambda m, x, y: x ** y, [P(3, 4), N(3, 4)]),
    ("pow_tensor_bcast", lambda m, x, y: x ** y, [P(2, 3, 4), N(4)]),
    ("pow_neg_base_int_exp", lambda m, x, y: x ** y, [N(3, 4), np.full((3, 4), 2.0, np.float32)]),
    ("pow_zero_base", lambda m, x, y: x ** y, [np.array([0.0, 0.0, 1.5], np.float32),
                                               np.array([2.0, 0.0, 1.0], np.float32)]),
    ("pow_sq", lambda m, x: x ** 2, [N(3, 4)]),
    ("pow_cube", lambda m, x: x ** 3, [N(3, 4)]),
    ("pow_half", lambda m, x: x ** 0.5, [P(3, 4)]),
    ("pow_neg_frac", lambda m, x: x ** -1.5, [P(3, 4)]),
    ("pow_neg_int", lambda m, x: x ** -2, [P(3, 4)]),
    ("pow_zero", lambda m, x: x ** 0, [N(3, 4)]),
    ("pow_one", lambda m, x: x ** 1, [Z(3, 4)]),
    ("pow_method", lambda m, x: x.pow(2.5), [P(7)]),
    ("rpow", lambda m, x: 2 ** x, [N(3, 4)]),
    ("rpow_float", lambda m, x: 0.5 ** x, [N(3, 4)]),
    ("neg", lambda m, x: -x, [N(3, 4)]),
    ("neg_method", lambda m, x: x.neg(), [N(3)]),
    ("abs", lambda m, x: x.abs(), [Z(3, 4)]),
    ("abs_builtin", lambda m, x: abs(x), [Z(3, 4)]),
    ("abs_module", lambda m, x: m.abs(x), [Z(5)]),
    # ---------------------------------------------------------------- unary math
    ("exp", lambda m, x: x.exp(), [N(3, 4)]),
    ("exp_module", lambda m, x: m.exp(x), [N(2, 2)]),
    ("log", lambda m, x: x.log(), [P(3, 4)]),
    ("sqrt", lambda m, x: x.sqrt(), [P(3, 4)]),
    ("relu", lambda m, x: x.relu(), [Z(4, 5)]),
    ("relu_module", lambda m, x: m.relu(x), [Z(6)]),
    ("sigmoid", lambda m, x: x.sigmoid(), [N(3, 4) * 5]),
    ("sigmoid_extreme", lambda m, x: x.sigmoid(),
     [np.array([-100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 100.0], np.float32)]),
    ("tanh", lambda m, x: x.tanh(), [N(3, 4) * 3]),
    ("tanh_extreme", lambda m, x: m.tanh(x), [np.array([-50.0, -5.0, 0.0, 5.0, 50.0], np.float32)]),
    ("clamp", lambda m, x: x.clamp(-0.5, 0.5), [N(4, 5)]),
    ("clamp_at_bounds", lambda m, x: x.clamp(0.0, 1.0),
     [np.array([-1.0, 0.0, 0.5, 1.0, 2.0], np.float32)]),
    ("clamp_min", lambda m, x: x.clamp(min=0.1), [N(4, 5)]),
    ("clamp_max", lambda m, x: x.clamp(max=-0.1), [N(4, 5)]),
    ("clamp_min_gt_max", lambda m, x: x.clamp(1.0, -1.0), [N(6)]),
    ("clamp_module", lambda m, x: m.clamp(x, -1, 1), [N(4, 5)]),
    ("clamp_tensor_min", lambda m, x, lo: x.clamp(min=lo), [N(3, 4), N(4)]),
    ("clamp_tensor_both", lambda m, x, lo, hi: m.clamp(x, lo, hi), [N(3, 4), N(3, 1) - 1, N(4) + 1]),
    ("clamp_tensor_ties", lambda m, x, lo: x.clamp(min=lo),
     [np.array([0.0, 1.0, 2.0], np.float32), np.array([0.0, 2.0, 1.0], np.float32)]),
    ("maximum", lambda m, x, y: m.maximum(x, y), [N(3, 4), N(4)]),
    ("minimum", lambda m, x, y: m.minimum(x, y), [N(2, 1, 4), N(3, 1)]),
    ("maximum_ties", lambda m, x, y: x.maximum(y), [TIES, TIES[:, ::-1].copy()]),
    ("minimum_ties", lambda m, x, y: x.minimum(y), [TIES, np.float32(2.0) + 0 * TIES]),
    ("max_other", lambda m, x, y: x.max(y), [N(3, 4), N(3, 4)]),
    ("min_other", lambda m, x, y: m.min(x, y), [N(3, 4), N(3, 4)]),
    ("where", lambda m, x, y: m.where(m.tensor(MASK, device=x.device), x, y), [N(3, 4), N(3, 4)]),
    ("where_bcast", lambda m, x, y: m.where(m.tensor(MASK, device=x.device), x, y), [N(4), N(3, 1)]),
    ("where_cond_from_x", lambda m, x: m.where(x > 0, x, x * 0.1), [N(3, 4)]),
    ("where_scalar_other", lambda m, x: m.where(x > 0, x, 0.0), [N(3, 4)]),
    ("where_method", lambda m, x, y: x.where(x > 0, y), [N(3, 4), N(4)]),
    # ---------------------------------------------------------------- reductions
    ("sum_all", lambda m, x: x.sum(), [N(3, 4)]),
    ("sum_dim", lambda m, x: x.sum(1), [N(3, 4, 2)]),
    ("sum_dim_neg", lambda m, x: x.sum(-1), [N(3, 4, 2)]),
    ("sum_tuple", lambda m, x: x.sum((0, 2)), [N(3, 4, 2)]),
    ("sum_tuple_neg_keepdim", lambda m, x: x.sum(dim=(-1, 0), keepdim=True), [N(3, 4, 2)]),
    ("sum_keepdim", lambda m, x: x.sum(0, keepdim=True), [N(3, 4)]),
    ("sum_0d", lambda m, x: x.sum(), [N()]),
    ("sum_module", lambda m, x: m.sum(x, 1), [N(3, 4)]),
    ("mean_all", lambda m, x: x.mean(), [N(3, 4)]),
    ("mean_dim", lambda m, x: x.mean(0), [N(3, 4)]),
    ("mean_tuple_keepdim", lambda m, x: x.mean((1, 2), keepdim=True), [N(2, 3, 4)]),
    ("mean_module", lambda m, x: m.mean(x, -1), [N(3, 4)]),
    ("var_all", lambda m, x: x.var(), [N(3, 4)]),
    ("var_dim", lambda m, x: x.var(1), [N(3, 5)]),
    ("var_biased", lambda m, x: x.var(1, unbiased=False), [N(3, 5)]),
    ("var_positional", lambda m, x: x.var(0, True, True), [N(3, 5)]),
    ("var_correction0", lambda m, x: x.var(dim=0, correction=0), [N(4, 3)]),
    ("var_correction2", lambda m, x: x.var(dim=(0, 1), correction=2, keepdim=True), [N(4, 3, 2)]),
    ("var_module", lambda m, x: m.var(x, 1, keepdim=True), [N(3, 5)]),
    ("std_all", lambda m, x: x.std(), [N(3, 4)]),
    ("std_dim_keepdim", lambda m, x: x.std(0, keepdim=True), [N(3, 4)]),
    ("std_biased", lambda m, x: x.std(-1, unbiased=False), [N(3, 4)]),
    ("std_correction", lambda m, x: x.std(dim=1, correction=0), [N(3, 4)]),
    ("std_module", lambda m, x: m.std(x), [N(3, 4)]),
    ("max_all", lambda m, x: x.max(), [N(3, 4)]),
    ("max_all_ties", lambda m, x: x.max(), [TIES]),
    ("min_all_ties", lambda m, x: x.min(), [TIES]),
    ("max_dim", lambda m, x: x.max(1), [N(3, 4)]),
    ("max_dim_keepdim", lambda m, x: x.max(0, keepdim=True), [N(3, 4, 2)]),
    ("max_dim_neg", lambda m, x: x.max(dim=-1), [N(2, 3, 4)]),
    ("max_dim_ties", lambda m, x: x.max(1), [TIES]),
    ("max_dim_values", lambda m, x: x.max(dim=0).values, [TIES]),
    ("min_dim", lambda m, x: x.min(0), [N(3, 4)]),
    ("min_dim_ties", lambda m, x: x.min(dim=1, keepdim=True), [TIES]),
    ("max_module_dim", lambda m, x: m.max(x, 1)[0], [N(3, 4)]),
    ("max_0d_dim", lambda m, x: x.max(0), [N()]),
    ("argmax_all", lambda m, x: x.argmax(), [N(3, 4)]),
    ("argmax_dim", lambda m, x: x.argmax(1), [N(3, 4)]),
    ("argmax_keepdim", lambda m, x: x.argmax(dim=0, keepdim=True), [N(3, 4)]),
    ("argmax_ties", lambda m, x: x.argmax(1), [TIES]),
    ("argmin_dim", lambda m, x: m.argmin(x, -1), [N(3, 4)]),
    ("argmin_ties", lambda m, x: x.argmin(dim=0), [TIES]),
    ("argmin_all", lambda m, x: x.argmin(), [TIES]),
    ("logsumexp", lambda m, x: x.logsumexp(1), [N(3, 4)]),
    ("logsumexp_keepdim", lambda m, x: x.logsumexp(0, keepdim=True), [N(3, 4)]),
    ("logsumexp_tuple", lambda m, x: m.logsumexp(x, (0, 2)), [N(3, 4, 2)]),
    ("logsumexp_big", lambda m, x: x.logsumexp(1), [BIG]),
    ("logsumexp_big_dim0", lambda m, x: x.logsumexp(0), [BIG]),
    ("softmax", lambda m, x: x.softmax(1), [N(3, 4)]),
    ("softmax_dim0", lambda m, x: x.softmax(0), [N(3, 4)]),
    ("softmax_3d", lambda m, x: m.softmax(x, -2), [N(2, 3, 4)]),
    ("softmax_big", lambda m, x: x.softmax(1), [BIG]),
    ("softmax_big_dim0", lambda m, x: x.softmax(0), [BIG]),
    ("log_softmax", lambda m, x: x.log_softmax(1), [N(3, 4)]),
    ("log_softmax_3d", lambda m, x: m.log_softmax(x, 0), [N(2, 3, 4)]),
    ("log_softmax_big", lambda m, x: x.log_softmax(-1), [BIG]),
    ("log_softmax_big_dim0", lambda m, x: x.log_softmax(0), [BIG]),
    # ---------------------------------------------------------------- matmul
    ("matmul_1d_1d", lambda m, x, y: x @ y, [N(5), N(5)]),
    ("matmul_1d_2d", lambda m, x, y: x @ y, [N(4), N(4, 3)]),
    ("matmul_2d_1d", lambda m, x, y: x @ y, [N(3, 4), N(4)]),
    ("matmul_2d_2d", lambda m, x, y: x @ y, [N(3, 4), N(4, 5)]),
    ("matmul_3d_2d", lambda m, x, y: x @ y, [N(2, 3, 4), N(4, 5)]),
    ("matmul_2d_3d", lambda m, x, y: x.matmul(y), [N(3, 4), N(2, 4, 5)]),
    ("matmul_bcast", lambda m, x, y: m.matmul(x, y), [N(2, 1, 3, 4), N(5, 4, 2)]),
    ("matmul_1d_3d", lambda m, x, y: x @ y, [N(4), N(2, 4, 3)]),
    ("matmul_3d_1d", lambda m, x, y: x @ y, [N(2, 3, 4), N(4)]),
    ("matmul_same", lambda m, x: x @ x, [N(4, 4)]),
    ("matmul_T", lambda m, x, y: x @ y.T, [N(3, 4), N(5, 4)]),
    # ---------------------------------------------------------------- shape ops
    ("reshape", lambda m, x: x.reshape(4, 3), [N(3, 4)]),
    ("reshape_tuple_neg", lambda m, x: x.reshape((2, -1)), [N(3, 4)]),
    ("reshape_module", lambda m, x: m.reshape(x, (-1,)), [N(3, 4)]),
    ("view", lambda m, x: x.view(2, 2, 3), [N(3, 4)]),
    ("view_as", lambda m, x, y: x.view_as(y), [N(3, 4), N(6, 2)]),
    ("reshape_as", lambda m, x, y: x.reshape_as(y), [N(3, 4), N(2, 6)]),
    ("flatten", lambda m, x: x.flatten(), [N(2, 3, 4)]),
    ("flatten_start", lambda m, x: x.flatten(1), [N(2, 3, 4)]),
    ("flatten_range", lambda m, x: m.flatten(x, 0, 1), [N(2, 3, 4)]),
    ("flatten_neg", lambda m, x: x.flatten(-2, -1), [N(2, 3, 4)]),
    ("flatten_0d", lambda m, x: x.flatten(), [N()]),
    ("squeeze", lambda m, x: x.squeeze(), [N(1, 3, 1, 4)]),
    ("squeeze_dim", lambda m, x: x.squeeze(2), [N(1, 3, 1, 4)]),
    ("squeeze_dim_not1", lambda m, x: x.squeeze(1), [N(1, 3, 1, 4)]),
    ("squeeze_tuple", lambda m, x: x.squeeze((0, -2)), [N(1, 3, 1, 4)]),
    ("unsqueeze", lambda m, x: x.unsqueeze(1), [N(3, 4)]),
    ("unsqueeze_neg", lambda m, x: x.unsqueeze(-1), [N(3, 4)]),
    ("unsqueeze_0d", lambda m, x: m.unsqueeze(x, 0), [N()]),
    ("transpose", lambda m, x: x.transpose(0, 2), [N(2, 3, 4)]),
    ("transpose_neg", lambda m, x: m.transpose(x, -1, -2), [N(2, 3, 4)]),
    ("permute", lambda m, x: x.permute(2, 0, 1), [N(2, 3, 4)]),
    ("permute_tuple", lambda m, x: x.permute((1, -1, 0)), [N(2, 3, 4)]),
    ("T", lambda m, x: x.T, [N(3, 4)]),
    ("t", lambda m, x: x.t(), [N(3, 4)]),
    ("expand", lambda m, x: x.expand(3, 4), [N(3, 1)]),
    ("expand_neg1_lead", lambda m, x: x.expand(2, -1, 4), [N(3, 1)]),
    ("expand_as", lambda m, x, y: x.expand_as(y), [N(4), N(3, 4)]),
    ("expand_then_mul", lambda m, x, y: x.expand(2, 3, 4) * y, [N(1, 4), N(3, 1)]),
    # ---------------------------------------------------------------- indexing
    ("getitem_int", lambda m, x: x[1], [N(3, 4)]),
    ("getitem_neg_int", lambda m, x: x[-1, -2], [N(3, 4)]),
    ("getitem_slice", lambda m, x: x[1:, ::2], [N(3, 5)]),
    ("getitem_slice_neg", lambda m, x: x[-2:, :-1], [N(3, 5)]),
    ("getitem_none", lambda m, x: x[None, :, None], [N(3, 4)]),
    ("getitem_ellipsis", lambda m, x: x[..., 1], [N(2, 3, 4)]),
    ("getitem_ellipsis_none", lambda m, x: x[0, ..., None], [N(2, 3, 4)]),
    ("getitem_int_list_repeats", lambda m, x: x[[0, 2, 0, 0]], [N(3, 4)]),
    ("getitem_int_tensor_repeats", lambda m, x, i: x[i], [N(4, 3), np.array([3, 0, 3, 1, 3])]),
    ("getitem_int_2d_tensor", lambda m, x, i: x[:, i], [N(3, 4), np.array([[0, 1], [1, 1]])]),
    ("getitem_neg_index_tensor", lambda m, x, i: x[i], [N(4, 3), np.array([-1, -4, -1])]),
    ("getitem_two_arrays", lambda m, x: x[[0, 2, 2], [1, 1, 3]], [N(3, 4)]),
    ("getitem_arrays_split", lambda m, x: x[[0, 1], :, [1, 0]], [N(2, 3, 4)]),
    ("getitem_array_slice", lambda m, x: x[1:, [0, 0, 2]], [N(3, 4)]),
    ("getitem_bool_mask", lambda m, x, b: x[b], [N(3, 4), MASK]),
    ("getitem_bool_rows", lambda m, x, b: x[b], [N(3, 4), np.array([True, False, True])]),
    ("getitem_bool_cond", lambda m, x: x[x > 0], [N(3, 4)]),
    ("getitem_bool_then_slice", lambda m, x: x[m.tensor([True, False, True], device=x.device), 1:], [N(3, 4)]),
    ("getitem_mixed", lambda m, x: x[None, 1, ..., [0, 2]], [N(3, 4, 5)]),
    # ---------------------------------------------------------------- cat / stack / pad
    ("cat", lambda m, x, y: m.cat([x, y]), [N(2, 3), N(4, 3)]),
    ("cat_dim1", lambda m, x, y, z: m.cat((x, y, z), dim=1), [N(2, 3), N(2, 1), N(2, 2)]),
    ("cat_neg", lambda m, x, y: m.cat([x, y], -1), [N(2, 3, 1), N(2, 3, 2)]),
    ("cat_same", lambda m, x: m.cat([x, x, x], 0), [N(2, 3)]),
    ("stack", lambda m, x, y: m.stack([x, y]), [N(2, 3), N(2, 3)]),
    ("stack_last", lambda m, x, y: m.stack([x, y], dim=-1), [N(2, 3), N(2, 3)]),
    ("stack_mid", lambda m, x, y, z: m.stack((x, y, z), 1), [N(2, 3), N(2, 3), N(2, 3)]),
    ("pad_constant", lambda m, x: F(m).pad(x, (1, 2)), [N(3, 4)]),
    ("pad_constant_2d_value", lambda m, x: F(m).pad(x, (1, 0, 2, 1), value=1.5), [N(2, 3, 4)]),
    ("pad_constant_negative", lambda m, x: F(m).pad(x, (-1, 2, 1, -2)), [N(2, 4, 5)]),
    ("pad_constant_all_dims", lambda m, x: F(m).pad(x, (1, 1, 0, 2, 1, 0)), [N(2, 3, 4)]),
    ("pad_reflect", lambda m, x: F(m).pad(x, (2, 1), mode="reflect"), [N(2, 3, 5)]),
    ("pad_reflect_2d", lambda m, x: F(m).pad(x, (1, 2, 2, 1), mode="reflect"), [N(1, 2, 4, 5)]),
    ("pad_replicate", lambda m, x: F(m).pad(x, (3, 1), mode="replicate"), [N(2, 3, 4)]),
    ("pad_replicate_2d", lambda m, x: F(m).pad(x, (2, 0, 1, 3), mode="replicate"), [N(1, 2, 3, 4)]),
    ("pad_circular", lambda m, x: F(m).pad(x, (2, 3), mode="circular"), [N(2, 3, 4)]),
    ("pad_circular_2d", lambda m, x: F(m).pad(x, (1, 2, 2, 1), mode="circular"), [N(1, 2, 3, 4)]),
    # ---------------------------------------------------------------- casts and copies
    ("to_float64", lambda m, x: (x.to(m.float64) * 3).sum(1), [N(3, 4)]),
    ("double", lambda m, x: x.double() ** 2, [N(3, 4)]),
    ("float_of_double", lambda m, x: x.float() * 2, [D(3, 4)]),
    ("clone", lambda m, x: x.clone() * x, [N(3, 4)]),
    ("index_select", lambda m, x, i: m.index_select(x, 1, i), [N(3, 4), np.array([3, 0, 3])]),
    ("index_select_method", lambda m, x, i: x.index_select(0, i), [N(3, 4), np.array([2, 2, 0])]),
    ("float64_mix", lambda m, x, y: x * y, [N(3, 4), D(4)]),
    ("float64_ops", lambda m, x: (x.exp() + x.sigmoid()).log_softmax(1), [D(3, 4)]),
    ("int_plus_float", lambda m, x, i: x + i, [N(3, 4), I(5, 4)]),
    ("detach_branch", lambda m, x: x * x.detach(), [N(3, 4)]),
    # ---------------------------------------------------------------- edge cases
    ("empty_sum", lambda m, x: x.sum(0), [np.zeros((0, 3), np.float32)]),
    ("empty_max_other_dim", lambda m, x: x.max(1), [np.zeros((0, 3), np.float32)]),
    ("empty_argmax_other_dim", lambda m, x: x.argmax(1), [np.zeros((0, 3), np.float32)]),
    ("empty_softmax", lambda m, x: x.softmax(0), [np.zeros((0, 3), np.float32)]),
    ("empty_logsumexp", lambda m, x: x.logsumexp(0), [np.zeros((0, 3), np.float32)]),
    ("empty_cat", lambda m, x, y: m.cat([x, y]), [np.zeros((0, 3), np.float32), N(2, 3)]),
    ("empty_matmul_k0", lambda m, x, y: x @ y, [np.zeros((2, 0), np.float32),
                                                np.zeros((0, 3), np.float32)]),
    ("neg_inf_logsumexp", lambda m, x: x.logsumexp(1),
     [np.array([[-np.inf, -np.inf], [0.0, -np.inf]], np.float32)]),
    ("neg_inf_softmax", lambda m, x: x.softmax(1), [np.array([[-np.inf, 0.0], [0.0, 1.0]], np.float32)]),
    ("neg_inf_log_softmax", lambda m, x: x.log_softmax(1),
     [np.array([[-np.inf, 0.0], [0.0, 1.0]], np.float32)]),
    ("std_zero_grad", lambda m, x: x.std(1), [np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 2.0]], np.float32)]),
    ("var_single_nan", lambda m, x: x.var(0), [np.array([[2.0, 3.0]], np.float32)]),
    ("nan_max_all", lambda m, x: x.max(), [np.array([np.nan, 1.0, 2.0], np.float32)]),
    ("nan_max_dim", lambda m, x: x.max(0), [np.array([1.0, np.nan, 2.0], np.float32)]),
    ("nan_relu", lambda m, x: x.relu(), [np.array([np.nan, -1.0, 1.0], np.float32)]),
    ("nan_clamp", lambda m, x: x.clamp(0, 1), [np.array([np.nan, 2.0, 0.5], np.float32)]),
    ("nan_maximum", lambda m, x, y: m.maximum(x, y), [np.array([np.nan, 1.0], np.float32),
                                                      np.array([0.0, np.nan], np.float32)]),
    ("zero_log_sqrt_div", lambda m, x: x.log() + x.sqrt() + 1 / x, [np.array([0.0, 1.0], np.float32)]),
    ("pow_00", lambda m, x, y: x ** y, [np.zeros(3, np.float32), np.array([0.0, 1.0, -1.0], np.float32)]),
    ("pow_scalar_at_zero", lambda m, x: x ** 0.5 + x ** 2 + x ** 1, [np.array([0.0, 2.0], np.float32)]),
    ("sum_0d_dim", lambda m, x: x.sum(0), [N()]),
    ("logsumexp_0d", lambda m, x: x.logsumexp(0), [N()]),
    ("mean_0d_neg_dim", lambda m, x: x.mean(-1, keepdim=True), [N()]),
    ("softmax_0d", lambda m, x: x.softmax(0), [N()]),
    ("argmax_0d", lambda m, x: x.argmax(0), [N()]),
    ("squeeze_0d", lambda m, x: x.squeeze(0), [N()]),
    ("expand_0d", lambda m, x: x.expand(2, 3), [N()]),
    ("getitem_empty_list", lambda m, x: x[[]], [N(3, 2)]),
    ("getitem_bool_0d", lambda m, x: x[x.sum() > -100], [N(3)]),
    ("getitem_bool_0d_false", lambda m, x: x[x.sum() > 100], [N(3)]),
    ("getitem_tuple_index", lambda m, x: x[(0, 2), ], [N(3, 2)]),
    ("getitem_int_tensor_0d", lambda m, x: x[m.tensor(1, device=x.device), :, [0, 2]], [N(2, 3, 4)]),
    ("getitem_adv_bcast", lambda m, x: x[[[0], [2]], [1, 0, 1]], [N(3, 2)]),
    ("getitem_slice_oob", lambda m, x: x[1:10, -10:], [N(3, 2)]),
    ("index_select_0d_index", lambda m, x, i: m.index_select(x, 0, i), [N(2, 3), np.array(1)]),
    ("where_two_scalars", lambda m, x: m.where(x > 0, 1.0, 0.0), [N(4)]),
    ("where_two_int_scalars", lambda m, x: m.where(x > 0, 1, 0), [N(4)]),
    ("sum_dtype", lambda m, x: x.sum(dtype=m.float64), [N(3)]),
    ("sum_int_dtype", lambda m, x: x.sum(0, dtype=m.int32), [I(5, 3, 2)]),
    ("mean_dtype", lambda m, x: x.mean(1, dtype=m.float64), [N(2, 3)]),
    ("softmax_dtype", lambda m, x: x.softmax(0, dtype=m.float64), [N(3)]),
    ("log_softmax_dtype", lambda m, x: m.log_softmax(x, 0, dtype=m.float64), [N(3)]),
    # ---------------------------------------------------------------- composites
    ("mlp", lambda m, x, w, b: ((x @ w.T + b).relu() @ w).tanh().mean(0), [N(5, 4), N(3, 4), N(3)]),
    ("diamond", lambda m, x: (lambda e: e + e * 2 + e.exp())(x.exp()), [N(3)]),
    ("softmax_manual", lambda m, x: x.exp() / x.exp().sum(1, keepdim=True), [N(3, 4)]),
    ("bce_like", lambda m, x: -(x.sigmoid().log() + (1 - x.sigmoid()).log()).mean(), [N(4)]),
]


@requires_torch
@pytest.mark.filterwarnings("ignore:.*degrees of freedom")
@pytest.mark.parametrize("fn,inputs", [pytest.param(c[1], c[2], id=c[0]) for c in CONFIGS])
def test_op_matches_torch(fn, inputs, device):
    torch_parity(lambda *t: fn(tc, *t), lambda *t: fn(torch, *t), *inputs, device=device)


@requires_torch
@pytest.mark.filterwarnings("ignore:.*degrees of freedom")
@pytest.mark.parametrize("fn,inputs", [pytest.param(c[1], c[2], id=c[0]) for c in CONFIGS])
def test_op_matches_torch_float64(fn, inputs, device):
    """The same table in float64: a much tighter check of the formulas themselves."""
    inputs = [a.astype(np.float64) if a.dtype == np.float32 else a for a in inputs]
    torch_parity(lambda *t: fn(tc, *t), lambda *t: fn(torch, *t), *inputs, atol=1e-10, rtol=1e-9,
                 device=device)


# ----------------------------------------------------------------------------- special values

@requires_torch
@pytest.mark.parametrize("op", ["softmax", "log_softmax", "logsumexp"])
def test_softmax_family_huge_logits_finite(op, device):
    x = tc.Tensor(BIG, requires_grad=True, device=device)
    out = getattr(x, op)(1)
    assert np.all(np.isfinite(out.numpy())), f"{op} of +-1e4 logits is not finite"
    ((out + 1) ** 2).mean().backward()
    assert np.all(np.isfinite(x.grad.numpy())), f"{op} gradient of +-1e4 logits is not finite"


def test_relu_grad_at_zero_is_zero(device):
    x = tc.Tensor([-1.0, 0.0, 2.0], requires_grad=True, device=device)
    x.relu().sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 1.0]


def test_max_dim_ties_one_index_full_max_splits(device):
    x = tc.Tensor([[1.0, 3.0, 3.0]], requires_grad=True, device=device)
    values, indices = x.max(1)
    assert indices.tolist() == [1] and values.tolist() == [3.0]
    values.sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0, 0.0]]
    y = tc.Tensor([[1.0, 3.0, 3.0]], requires_grad=True, device=device)
    y.max().backward()
    assert y.grad.tolist() == [[0.0, 0.5, 0.5]]
    a = tc.Tensor([2.0], requires_grad=True, device=device)
    b = tc.Tensor([2.0], requires_grad=True, device=device)
    tc.maximum(a, b).sum().backward()
    assert a.grad.tolist() == [0.5] and b.grad.tolist() == [0.5]


def test_max_dim_returns_named_tuple(device):
    values, indices = tc.Tensor([[1.0, 5.0], [7.0, 2.0]], device=device).max(dim=1)
    r = tc.Tensor([[1.0, 5.0], [7.0, 2.0]], device=device).max(dim=1)
    assert r.values.tolist() == [5.0, 7.0] and r.indices.tolist() == [1, 0]
    assert indices.dtype == np.int64


# ----------------------------------------------------------------------------- dtype rules

def _np_dtype(torch_dtype):
    return torch.empty(0, dtype=torch_dtype).numpy().dtype


def _t(m, arr, dtype):
    return m.tensor(np.asarray(arr).astype(dtype), dtype=getattr(m, dtype))


PROMOTIONS = [
    ("int_plus_float", lambda m: _t(m, [1, 2], "int64") + _t(m, [0.5, 1.5], "float32")),
    ("int32_plus_int64", lambda m: _t(m, [1, 2], "int32") + _t(m, [3, 4], "int64")),
    ("uint8_plus_int8", lambda m: _t(m, [1, 2], "uint8") + _t(m, [3, 4], "int8")),
    ("bool_plus_int", lambda m: _t(m, [True, False], "bool") + _t(m, [3, 4], "int32")),
    ("bool_plus_bool", lambda m: _t(m, [True, False], "bool") + _t(m, [True, True], "bool")),
    ("f32_plus_f64", lambda m: _t(m, [1, 2], "float32") + _t(m, [3, 4], "float64")),
    ("f16_plus_f32", lambda m: _t(m, [1, 2], "float16") + _t(m, [3, 4], "float32")),
    ("f16_plus_int", lambda m: _t(m, [1, 2], "float16") + _t(m, [3, 4], "int64")),
    ("f32_plus_0d_f64", lambda m: _t(m, [1, 2], "float32") + _t(m, 3.0, "float64")),
    ("int32_plus_0d_f64", lambda m: _t(m, [1, 2], "int32") + _t(m, 3.0, "float64")),
    ("int32_plus_0d_int64", lambda m: _t(m, [1, 2], "int32") + _t(m, 3, "int64")),
    ("0d_f64_plus_0d_f32", lambda m: _t(m, 1.0, "float64") + _t(m, 3.0, "float32")),
    ("int_div_int", lambda m: _t(m, [1, 7], "int64") / _t(m, [2, 2], "int64")),
    ("int32_div_int32", lambda m: _t(m, [1, 7], "int32") / _t(m, [2, 2], "int32")),
    ("int_div_scalar", lambda m: _t(m, [1, 7], "int64") / 2),
    ("scalar_div_int", lambda m: 3 / _t(m, [1, 7], "int64")),
    ("f32_times_float", lambda m: _t(m, [1, 2], "float32") * 2.5),
    ("f32_times_int", lambda m: _t(m, [1, 2], "float32") * 3),
    ("f16_times_float", lambda m: _t(m, [1, 2], "float16") * 2.5),
    ("int_times_float", lambda m: _t(m, [1, 2], "int64") * 2.5),
    ("int32_times_int", lambda m: _t(m, [1, 2], "int32") * 3),
    ("int8_plus_big_int", lambda m: _t(m, [1, 2], "int8") + 3),
    ("bool_times_int", lambda m: _t(m, [True, False], "bool") * 3),
    ("bool_times_float", lambda m: _t(m, [True, False], "bool") * 1.5),
    ("bool_plus_bool_scalar", lambda m: _t(m, [True, False], "bool") + True),
    ("int_pow_int", lambda m: _t(m, [1, 2], "int64") ** 2),
    ("int_pow_float", lambda m: _t(m, [1, 2], "int64") ** 0.5),
    ("int_pow_np_float32", lambda m: _t(m, [1, 2], "int64") ** np.float32(0.5)),
    ("f32_times_np_float64", lambda m: _t(m, [1, 2], "float32") * np.float64(2.5)),
    ("int_plus_np_int64", lambda m: _t(m, [1, 2], "int32") + np.int64(7)),
    ("f32_pow_np_float64", lambda m: _t(m, [1, 2], "float32") ** np.float64(2.0)),
    ("np_float64_rpow_f32", lambda m: np.float64(2.0) ** _t(m, [1, 2], "float32")),
    ("f32_clamp_np_float64", lambda m: _t(m, [1, 2], "float32").clamp(np.float64(1.5))),
    ("where_two_float_scalars", lambda m: m.where(_t(m, [True, False], "bool"), 1.5, 0.0)),
    ("where_int_float_scalars", lambda m: m.where(_t(m, [True, False], "bool"), 1, 0.5)),
    ("float_rpow_int", lambda m: 2.0 ** _t(m, [1, 2], "int64")),
    ("int_rpow_int", lambda m: 2 ** _t(m, [1, 2], "int32")),
    ("f32_pow_f64", lambda m: _t(m, [1, 2], "float32") ** _t(m, [1, 2], "float64")),
    ("f32_sub_f64_0d", lambda m: _t(m, [1, 2], "float32") - _t(m, 2.0, "float64")),
    ("int_neg", lambda m: -_t(m, [1, 2], "int32")),
    ("int_abs", lambda m: _t(m, [-1, 2], "int64").abs()),
    ("int_exp", lambda m: _t(m, [1, 2], "int64").exp()),
    ("int_sqrt", lambda m: _t(m, [1, 4], "int32").sqrt()),
    ("int_sigmoid", lambda m: _t(m, [1, 4], "int64").sigmoid()),
    ("int_relu", lambda m: _t(m, [-1, 4], "int64").relu()),
    ("int_clamp_int", lambda m: _t(m, [-1, 4], "int64").clamp(0, 2)),
    ("int_clamp_float", lambda m: _t(m, [-1, 4], "int64").clamp(0.5, 2)),
    ("int_maximum_float", lambda m: m.maximum(_t(m, [-1, 4], "int64"), _t(m, [0.5, 1], "float32"))),
    ("where_int_float", lambda m: m.where(_t(m, [True, False], "bool"), _t(m, [1, 2], "int64"),
                                          _t(m, [0.5, 1], "float32"))),
    ("where_float_scalar", lambda m: m.where(_t(m, [True, False], "bool"), _t(m, [1, 2], "float32"), 0)),
    ("cat_int_float", lambda m: m.cat([_t(m, [1, 2], "int64"), _t(m, [0.5], "float32")])),
    ("stack_f32_f64", lambda m: m.stack([_t(m, [1, 2], "float32"), _t(m, [0.5, 1], "float64")])),
    ("eq", lambda m: _t(m, [1, 2], "float32") == _t(m, [1, 3], "float32")),
    ("ne_scalar", lambda m: _t(m, [1, 2], "float32") != 2),
    ("lt_int_float", lambda m: _t(m, [1, 2], "int64") < _t(m, [1.5, 1.5], "float32")),
    ("le_method", lambda m: _t(m, [1, 2], "float32").le(1.0)),
    ("gt_bcast", lambda m: _t(m, [[1], [2]], "float32") > _t(m, [1, 2, 3], "float32")),
    ("ge_method", lambda m: _t(m, [1, 2], "int32").ge(_t(m, [2, 2], "int32"))),
    ("eq_method", lambda m: _t(m, [1, 2], "int32").eq(2)),
    ("ne_method", lambda m: _t(m, [1, 2], "int32").ne(2)),
    ("lt_method", lambda m: _t(m, [1, 2], "float32").lt(2)),
    ("gt_method", lambda m: _t(m, [1, 2], "float32").gt(1)),
    ("rcompare", lambda m: 1.5 < _t(m, [1, 2], "float32")),
    ("sum_int", lambda m: _t(m, [1, 2], "int32").sum()),
    ("sum_bool", lambda m: _t(m, [True, True, False], "bool").sum()),
    ("sum_f16", lambda m: _t(m, [1, 2], "float16").sum()),
    ("max_int", lambda m: _t(m, [[1, 5], [3, 2]], "int32").max()),
    ("max_int_dim", lambda m: _t(m, [[1, 5], [3, 2]], "int32").max(1)[0]),
    ("argmax_int", lambda m: _t(m, [[1, 5], [3, 2]], "int32").argmax(0)),
    ("matmul_int", lambda m: _t(m, [[1, 5], [3, 2]], "int64") @ _t(m, [1, 2], "int64")),
    ("mean_f64", lambda m: _t(m, [1, 2], "float64").mean()),
    ("softmax_f64", lambda m: _t(m, [1, 2], "float64").softmax(0)),
    ("logsumexp_int", lambda m: _t(m, [1, 2], "int64").logsumexp(0)),
    ("to_int", lambda m: _t(m, [1.7, -2.5], "float32").long()),
    ("float_of_int", lambda m: _t(m, [1, 2], "int64").float()),
    ("index_int", lambda m: _t(m, [[1, 2], [3, 4]], "int32")[:, 0]),
    ("reshape_bool", lambda m: _t(m, [True, False], "bool").reshape(2, 1)),
    ("invert_bool", lambda m: ~_t(m, [True, False], "bool")),
    ("and_bool", lambda m: _t(m, [True, False], "bool") & _t(m, [True, True], "bool")),
    ("or_bool", lambda m: _t(m, [True, False], "bool") | _t(m, [False, False], "bool")),
]


@requires_torch
@pytest.mark.parametrize("fn", [pytest.param(p[1], id=p[0]) for p in PROMOTIONS])
def test_dtype_promotion_matches_torch(fn):
    ours, theirs = fn(tc), fn(torch)
    assert ours.dtype == _np_dtype(theirs.dtype), f"ours {ours.dtype}, torch {theirs.dtype}"
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours.numpy().astype(np.float64),
                               theirs.numpy().astype(np.float64), rtol=1e-3)


def test_float_data_defaults_to_float32_and_ints_stay_ints():
    assert tc.Tensor([1.0, 2.0]).dtype == np.float32
    assert tc.Tensor(np.ones(3)).dtype == np.float32
    assert tc.Tensor(np.ones(3), dtype=tc.float64).dtype == np.float64
    assert tc.Tensor(2.5).dtype == np.float32 and tc.Tensor(2.5).shape == ()
    assert tc.Tensor([1, 2]).dtype == np.int64
    assert tc.Tensor(np.arange(3, dtype=np.int32)).dtype == np.int32
    assert tc.Tensor([True, False]).dtype == np.bool_
    assert tc.tensor([[1, 2]], dtype=tc.float32).dtype == np.float32
    assert tc.Tensor([1, 2], dtype="float64").dtype == np.float64
    assert tc.Tensor(tc.Tensor([1.0], dtype=tc.float64)).dtype == np.float64


# ----------------------------------------------------------------------------- factories

FACTORIES = [
    ("zeros", lambda m: m.zeros(2, 3)),
    ("zeros_tuple", lambda m: m.zeros((2, 3))),
    ("zeros_list_int", lambda m: m.zeros([4], dtype=m.int64)),
    ("zeros_0d", lambda m: m.zeros(())),
    ("ones", lambda m: m.ones(3, 1, 2)),
    ("ones_f64", lambda m: m.ones((2,), dtype=m.float64)),
    ("ones_bool", lambda m: m.ones(2, dtype=m.bool)),
    ("full_float", lambda m: m.full((2, 3), 1.5)),
    ("full_int", lambda m: m.full((2,), 7)),
    ("full_bool", lambda m: m.full((2,), True)),
    ("full_dtype", lambda m: m.full([3], 2, dtype=m.float32)),
    ("arange_int", lambda m: m.arange(5)),
    ("arange_start_end", lambda m: m.arange(2, 9, 3)),
    ("arange_float", lambda m: m.arange(0, 1, 0.1)),
    ("arange_float_end", lambda m: m.arange(3.0)),
    ("arange_neg_step", lambda m: m.arange(5, 0, -2)),
    ("arange_dtype", lambda m: m.arange(4, dtype=m.float32)),
    ("eye", lambda m: m.eye(3)),
    ("eye_rect", lambda m: m.eye(2, 4)),
    ("eye_int", lambda m: m.eye(3, dtype=m.int64)),
    ("zeros_like", lambda m: m.zeros_like(m.ones(2, 3, dtype=m.float64))),
    ("ones_like", lambda m: m.ones_like(m.arange(4))),
    ("ones_like_dtype", lambda m: m.ones_like(m.arange(4), dtype=m.float32)),
    ("empty_shape", lambda m: m.zeros_like(m.empty(2, 5))),
    ("Tensor_zeros", lambda m: (tc.Tensor if m is tc else torch).zeros(2, 2)),
    ("zeros_size_kw", lambda m: m.zeros(size=(2, 3))),
    ("ones_size_kw", lambda m: m.ones(size=[4], dtype=m.int32)),
    ("rand_like_shape", lambda m: m.zeros_like(m.rand_like(m.ones(2, 3, dtype=m.float64)))),
    ("randn_like_shape", lambda m: m.zeros_like(m.randn_like(m.ones(3)))),
]


@requires_torch
@pytest.mark.parametrize("fn", [pytest.param(f[1], id=f[0]) for f in FACTORIES])
def test_factory_matches_torch(fn):
    ours, theirs = fn(tc), fn(torch)
    assert ours.shape == tuple(theirs.shape)
    assert ours.dtype == _np_dtype(theirs.dtype), f"ours {ours.dtype}, torch {theirs.dtype}"
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    assert not ours.requires_grad and ours.is_leaf and ours.device == "cpu"


def test_factory_keywords(device):
    for make in (lambda **k: tc.zeros(2, 3, **k), lambda **k: tc.ones(2, **k),
                 lambda **k: tc.rand(4, **k), lambda **k: tc.randn(2, 2, **k),
                 lambda **k: tc.full((2,), 3.0, **k), lambda **k: tc.eye(2, **k),
                 lambda **k: tc.arange(0.0, 3.0, **k), lambda **k: tc.empty(3, **k),
                 lambda **k: tc.zeros_like(tc.ones(2), **k),
                 lambda **k: tc.ones_like(tc.ones(2), **k)):
        t = make(dtype=tc.float64, device=device, requires_grad=True)
        assert t.dtype == np.float64 and t.requires_grad and t.is_leaf and t.device == device
        assert str(t.device) == str(tc.device(device))


def test_rand_randn_ranges_and_seed():
    tc.manual_seed(0)
    u = tc.rand(1000, 10)
    assert u.dtype == np.float32 and u.shape == (1000, 10)
    assert float(u.min()) >= 0.0 and float(u.max()) < 1.0
    assert abs(float(u.mean()) - 0.5) < 0.02
    n = tc.randn(1000, 10)
    assert n.dtype == np.float32 and abs(float(n.mean())) < 0.05 and abs(float(n.std()) - 1) < 0.05
    tc.manual_seed(42)
    a1, b1 = tc.rand(5), tc.randn(3, 2)
    tc.manual_seed(42)
    a2, b2 = tc.rand(5), tc.randn(3, 2)
    np.testing.assert_array_equal(a1.numpy(), a2.numpy())
    np.testing.assert_array_equal(b1.numpy(), b2.numpy())
    tc.manual_seed(43)
    assert not np.array_equal(tc.rand(5).numpy(), a1.numpy())
    assert tc.Tensor.rand(2, 3).shape == (2, 3) and tc.Tensor.randn((4,)).shape == (4,)
    assert tc.rand(2, dtype=tc.float64).dtype == np.float64


# ----------------------------------------------------------------------------- attributes, conversions, repr

def test_attributes_and_conversions():
    x = tc.Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    assert x.shape == (2, 3) and isinstance(x.shape, tuple) and x.ndim == 2 and x.dim() == 2
    assert x.dtype == np.float32 and x.device == "cpu" and x.device == tc.device("cpu")
    assert x.requires_grad and x.is_leaf and x.grad is None
    assert x.numel() == 6 and x.size() == (2, 3) and x.size(1) == 3 and x.size(-1) == 3
    assert len(x) == 2 and x.T.shape == (3, 2)
    assert isinstance(x.numpy(), np.ndarray)
    assert x.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert x[1, 2].item() == 6.0 and isinstance(x[1, 2].item(), float)
    assert isinstance(tc.Tensor([3]).item(), int)
    assert x.to("cpu").device == "cpu" and x.cpu().device == "cpu"
    assert x.to(tc.device("cpu")).shape == (2, 3)
    assert x.long().dtype == np.int64 and x.long().tolist() == [[1, 2, 3], [4, 5, 6]]
    assert x.float().dtype == np.float32 and x.astype(tc.float64).dtype == np.float64
    assert x.to(tc.float64).dtype == np.float64 and x.to("cpu", tc.float64).dtype == np.float64
    d = x.detach()
    assert not d.requires_grad and d.is_leaf and d.grad_fn is None
    c = x.clone()
    assert c.requires_grad and not c.is_leaf and c.grad_fn is not None
    assert not np.shares_memory(c.numpy(), x.numpy())
    y = x * 2
    assert not y.is_leaf and y.grad_fn is not None
    assert float(tc.Tensor(2.5)) == 2.5 and int(tc.Tensor(3)) == 3
    with pytest.raises((RuntimeError, ValueError)):
        x.item()


@requires_torch
def test_size_len_numel_match_torch():
    a = np.zeros((2, 0, 3), np.float32)
    ours, theirs = tc.Tensor(a), torch.tensor(a)
    assert ours.numel() == theirs.numel() and len(ours) == len(theirs)
    assert ours.size() == tuple(theirs.size()) and ours.size(-2) == theirs.size(-2)


def test_repr_shows_values_and_grad_fn():
    x = tc.Tensor([1.0, 2.5, -3.0], requires_grad=True)
    r = repr(x)
    assert r.startswith("tensor(") and "2.5" in r and "-3." in r and "requires_grad=True" in r
    y = x * 2
    assert "grad_fn=<MulBackward>" in repr(y) or "grad_fn=<Mul" in repr(y)
    assert "5." in repr(y)
    assert "grad_fn" not in repr(y.detach())
    z = tc.Tensor([[1, 2], [3, 4]])
    rz = repr(z)
    assert "1" in rz and "4" in rz and "grad_fn" not in rz
    assert "float64" in repr(tc.Tensor([1.0], dtype=tc.float64))
    assert "tensor(" in str(tc.Tensor(3.0)) and "3." in str(tc.Tensor(3.0))
    assert "(2, 3)" in repr(tc.zeros(2, 3)) or "[[0., 0., 0.]" in repr(tc.zeros(2, 3))
    assert f"{tc.Tensor(1.23456):.2f}" == "1.23"


@requires_torch
@pytest.mark.parametrize("make", [
    lambda m: m.tensor([1.0, 2.0, 3.0], requires_grad=True), lambda m: m.tensor([1.0, 2.5]) * 2,
    lambda m: m.tensor(3.5), lambda m: m.tensor([1e-5, 1e5]), lambda m: m.tensor(1.23456789),
    lambda m: m.tensor([1.5, float("nan"), float("inf")]), lambda m: m.tensor([True, False]),
    lambda m: m.tensor([1, -2]), lambda m: m.tensor(7), lambda m: m.tensor([0.5], dtype=m.float64),
])
def test_repr_of_small_tensors_matches_torch(make):
    assert repr(make(tc)) == repr(make(torch)).replace("torch.", "")
