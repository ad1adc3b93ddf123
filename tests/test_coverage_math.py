"""More Tensor math (square rsqrt reciprocal log1p expm1 log2 log10 sin cos sign floor ceil
trunc round, isnan/isinf/isfinite, all/any, masked_fill) and sort/argsort/topk/gather/
cumsum: torch parity of values, indices and gradients; float64 gradient checks; and the
accuracy() helper of pytorch/examples' ImageNet script run unchanged."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cv as tc
from tests.helpers import gradcheck, requires_torch, torch, torch_parity

rng = np.random.default_rng(23)


def N(*shape):
    return rng.standard_normal(shape)


def P(*shape):
    return rng.random(shape) * 2 + 0.5


def DISTINCT(*shape):
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.1 + rng.random(n) * 0.01).reshape(shape)


UNARY = [
    ("square", N), ("rsqrt", P), ("reciprocal", P), ("log1p", P), ("expm1", N), ("log2", P),
    ("log10", P), ("sin", N), ("cos", N), ("sign", N), ("floor", N), ("ceil", N),
    ("trunc", N), ("round", N),
]


@requires_torch
@pytest.mark.parametrize("name,make", UNARY, ids=[u[0] for u in UNARY])
def test_unary_matches_torch(name, make, device):
    x = make(3, 4) * (3 if name in ("floor", "ceil", "trunc", "round") else 1)
    torch_parity(lambda t: getattr(t, name)(), lambda t: getattr(t, name)(), x,
                 device=device, atol=1e-13, rtol=1e-12)
    torch_parity(lambda t: getattr(tc, name)(t), lambda t: getattr(torch, name)(t), x,
                 device=device, atol=1e-13, rtol=1e-12)


@pytest.mark.parametrize("name,make", UNARY[:9], ids=[u[0] for u in UNARY[:9]])
def test_unary_gradcheck(name, make):
    gradcheck(lambda t: getattr(t, name)(), make(3, 4))


@requires_torch
def test_round_decimals_predicates_all_any():
    x = np.array([[1.2345, -2.5, np.nan], [np.inf, 0.5, -np.inf]])
    t, r = tc.tensor(x, dtype=tc.float64), torch.tensor(x)
    np.testing.assert_array_equal(t.round(decimals=2).numpy(), r.round(decimals=2).numpy())
    for name in ("isnan", "isinf", "isfinite"):
        np.testing.assert_array_equal(getattr(t, name)().numpy(), getattr(r, name)().numpy())
    b = np.array([[True, False, True], [True, True, True]])
    tb, rb = tc.tensor(b), torch.tensor(b)
    for name in ("all", "any"):
        assert getattr(tb, name)().item() == getattr(rb, name)().item()
        np.testing.assert_array_equal(getattr(tb, name)(dim=1).numpy(),
                                      getattr(rb, name)(dim=1).numpy())
        np.testing.assert_array_equal(getattr(tc, name)(tb, 0, True).numpy(),
                                      getattr(torch, name)(rb, 0, True).numpy())


@requires_torch
def test_masked_fill_matches_torch():
    mask = rng.random((3, 1, 4)) > 0.5
    torch_parity(lambda t: t.masked_fill(tc.tensor(mask), -1e4),
                 lambda t: t.masked_fill(torch.tensor(mask), -1e4), N(3, 2, 4),
                 atol=1e-13, rtol=1e-12)
    t = tc.zeros(2, 3)
    assert t.masked_fill_(tc.tensor([[True, False, True], [False, False, True]]), 5.0) is t
    assert t.numpy().sum() == 15.0
    with pytest.raises(RuntimeError, match="boolean masks"):
        t.masked_fill(tc.tensor([1, 0, 1]), 1.0)


@requires_torch
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_argsort_match_torch(dim, descending):
    x = DISTINCT(3, 4, 5)
    ours = tc.tensor(x, dtype=tc.float64, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    v, i = ours.sort(dim, descending=descending)
    rv, ri = theirs.sort(dim, descending=descending)
    np.testing.assert_array_equal(v.numpy(), rv.detach().numpy())
    np.testing.assert_array_equal(i.numpy(), ri.numpy())
    np.testing.assert_array_equal(tc.argsort(ours, dim, descending).numpy(),
                                  torch.argsort(theirs, dim, descending).numpy())
    up = N(3, 4, 5)
    (v * tc.tensor(up, dtype=tc.float64)).sum().backward()
    (rv * torch.tensor(up)).sum().backward()
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


@requires_torch
@pytest.mark.parametrize("k,dim,largest", [(1, 1, True), (3, 1, True), (2, 0, False),
                                           (5, -1, True), (0, 1, True)])
def test_topk_matches_torch(k, dim, largest):
    x = DISTINCT(4, 5)
    ours = tc.tensor(x, dtype=tc.float64, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    v, i = ours.topk(k, dim, largest)
    rv, ri = torch.topk(theirs, k, dim, largest)
    np.testing.assert_array_equal(v.numpy(), rv.detach().numpy())
    np.testing.assert_array_equal(i.numpy(), ri.numpy())
    if k:
        ((v + 1) ** 2).sum().backward()
        ((rv + 1) ** 2).sum().backward()
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-14)
    with pytest.raises(RuntimeError, match="out of range"):
        ours.topk(9, dim)


@requires_torch
def test_gather_with_repeated_indices_accumulates_like_torch():
    x = N(3, 4)
    index = np.array([[0, 0, 3], [1, 2, 1], [3, 3, 3]])
    torch_parity(lambda t: t.gather(1, tc.tensor(index)),
                 lambda t: t.gather(1, torch.tensor(index)), x, atol=1e-14, rtol=1e-14)
    index0 = np.array([[0, 2, 1, 1], [2, 2, 0, 0]])
    torch_parity(lambda t: tc.gather(t, 0, tc.tensor(index0)),
                 lambda t: torch.gather(t, 0, torch.tensor(index0)), x, atol=1e-14,
                 rtol=1e-14)
    gradcheck(lambda t: t.gather(1, tc.tensor(index)), x)
    with pytest.raises(RuntimeError, match="out of range"):
        tc.tensor(x).gather(1, tc.tensor([[4]]))


@requires_torch
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cumsum_matches_torch(dim):
    torch_parity(lambda t: t.cumsum(dim), lambda t: t.cumsum(dim), N(3, 4, 2), atol=1e-13,
                 rtol=1e-12)
    gradcheck(lambda t: tc.cumsum(t, dim), N(3, 4, 2))
    assert tc.tensor([1, 2, 3]).cumsum(0).dtype == np.int64


EXAMPLE_ACCURACY = '''
def accuracy(output, target, topk=(1,)):
    """Computes the accuracy over the k top predictions for the specified values of k"""
    with torch.no_grad():
        maxk = max(topk)
        batch_size = target.size(0)

        _, pred = output.topk(maxk, 1, True, True)
        pred = pred.t()
        correct = pred.eq(target.view(1, -1).expand_as(pred))

        res = []
        for k in topk:
            correct_k = correct[:k].reshape(-1).float().sum(0, keepdim=True)
            res.append(correct_k.mul_(100.0 / batch_size))
        return res
'''


@requires_torch
def test_imagenet_example_accuracy_runs_unchanged():
    logits = DISTINCT(16, 10)
    target = rng.integers(0, 10, 16)
    results = []
    for imports in ("import torch\n", "import tinygrad_cv as torch\n"):
        ns = {}
        exec(imports + EXAMPLE_ACCURACY, ns)
        torch_mod = ns["torch"]
        out = ns["accuracy"](torch_mod.tensor(logits), torch_mod.tensor(target), topk=(1, 5))
        results.append([float(r.item()) for r in out])
    assert results[0] == results[1]


@requires_torch
@pytest.mark.parametrize("fn", [
    lambda m, x: m.amax(x, 1), lambda m, x: x.amax((0, 2), keepdim=True),
    lambda m, x: x.amin(), lambda m, x: m.amin(x, -1),
    lambda m, x: m.tril(x[0]), lambda m, x: x.triu(1), lambda m, x: m.tril(x, -1),
    lambda m, x: m.roll(x, 2, 1), lambda m, x: x.roll((1, -1), (0, 2)), lambda m, x: m.roll(x, 3),
    lambda m, x: x.clamp_min(0.1), lambda m, x: m.clamp_max(x, 0.2),
    lambda m, x: m.bmm(x, x.transpose(1, 2)), lambda m, x: x[0].mm(x[1].T),
    lambda m, x: m.broadcast_to(x[:, :1], (3, 4, 5)),
], ids=["amax", "amax_keep", "amin_all", "amin", "tril", "triu", "tril_neg", "roll",
        "roll_multi", "roll_flat", "clamp_min", "clamp_max", "bmm", "mm", "broadcast_to"])
def test_more_ops_match_torch(fn):
    x = N(3, 4, 5)
    torch_parity(lambda t: fn(tc, t), lambda t: fn(torch, t), x, atol=1e-13, rtol=1e-12)


@requires_torch
def test_amax_ties_share_the_gradient_like_torch():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    torch_parity(lambda t: t.amax(1), lambda t: t.amax(1), x, atol=1e-15, rtol=1e-15)


@requires_torch
@pytest.mark.parametrize("indexing", ["ij", "xy"])
def test_meshgrid_linspace_randperm(indexing):
    a, b = np.arange(3.0), np.arange(4.0) * 2
    ours = tc.meshgrid(tc.tensor(a), tc.tensor(b), indexing=indexing)
    theirs = torch.meshgrid(torch.tensor(a), torch.tensor(b), indexing=indexing)
    for o, t in zip(ours, theirs):
        np.testing.assert_array_equal(o.numpy(), t.numpy())
    xa = tc.tensor(a, dtype=tc.float64, requires_grad=True)
    gx, gy = tc.meshgrid(xa, tc.tensor(b, dtype=tc.float64), indexing=indexing)
    (gx * gy).sum().backward()
    np.testing.assert_allclose(xa.grad.numpy(), np.full(3, b.sum()))
    np.testing.assert_allclose(tc.linspace(-1, 2, 7).numpy(),
                               torch.linspace(-1, 2, 7).numpy(), rtol=1e-6)
    tc.manual_seed(0)
    p = tc.randperm(10)
    assert p.dtype == np.int64 and sorted(p.numpy().tolist()) == list(range(10))


def test_inplace_unary_methods():
    t = tc.tensor([-1.0, 0.5, 2.0])
    assert t.clamp_(0.0, 1.0) is t and t.numpy().tolist() == [0.0, 0.5, 1.0]
    assert t.sigmoid_() is t and np.allclose(t.numpy(), 1 / (1 + np.exp(-np.array([0, .5, 1]))))
    u = tc.tensor([-2.0, 3.0])
    u.relu_().neg_().abs_().exp_()
    np.testing.assert_allclose(u.numpy(), np.exp([0.0, 3.0]), rtol=1e-6)
    leaf = tc.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="relu_"):
        leaf.relu_()
    h = leaf * 2
    out = h.relu_()            # a graph tensor: the out-of-place result, as `x += y` here
    out.sum().backward()
    np.testing.assert_array_equal(leaf.grad.numpy(), [2.0, 2.0])
    assert tc.allclose(tc.ones(2), tc.ones(2) + 1e-9) and not tc.allclose(tc.ones(2), tc.zeros(2))


EINSUM = [
    ("bhid,bhjd->bhij", [(2, 3, 4, 5), (2, 3, 6, 5)]), ("ij,jk", [(3, 4), (4, 5)]),
    ("bij->bj", [(2, 3, 4)]), ("i,j->ij", [(3,), (4,)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]), ("ij->", [(3, 4)]),
    ("bn,bn->b", [(3, 4), (3, 4)]), ("ijk,k->i", [(2, 3, 4), (4,)]),
    ("b i d, b j d -> b i j", [(2, 3, 4), (2, 5, 4)]),
]


@requires_torch
@pytest.mark.parametrize("equation,shapes", EINSUM, ids=[e[0] for e in EINSUM])
def test_einsum_matches_torch(equation, shapes):
    arrays = [N(*s) for s in shapes]
    torch_parity(lambda *t: tc.einsum(equation, *t), lambda *t: torch.einsum(equation, *t),
                 *arrays, atol=1e-13, rtol=1e-12)
    gradcheck(lambda *t: tc.einsum(equation, *t), *arrays)


def test_einsum_list_operands_and_errors():
    a, b = tc.randn(2, 3), tc.randn(3, 4)
    np.testing.assert_allclose(tc.einsum("ij,jk->ik", [a, b]).numpy(), (a @ b).numpy(),
                               rtol=1e-5)
    with pytest.raises(ValueError, match="operands"):
        tc.einsum("ij,jk->ik", a)
    x = tc.randn(3, 3, requires_grad=True)
    with pytest.raises(NotImplementedError, match="repeated subscripts"):
        tc.einsum("ii->i", x).sum().backward()
