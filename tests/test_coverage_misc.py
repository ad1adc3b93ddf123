"""Smaller torch conveniences model code leans on: nn.init.trunc_normal_/orthogonal_/
eye_/dirac_, tc.jit's eager answers, unbind/tile with gradients, as_tensor, new_*,
type_as, bernoulli."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cv as tc
from tests.helpers import gradcheck, requires_torch, torch, torch_parity

rng = np.random.default_rng(11)


def test_trunc_normal_is_a_truncated_normal():
    tc.manual_seed(0)
    w = tc.nn.init.trunc_normal_(tc.empty(200, 500), mean=0.1, std=0.02, a=0.08, b=0.15)
    v = w.numpy()
    assert v.min() >= 0.08 and v.max() <= 0.15
    # moments of N(0.1, 0.02^2) truncated to [-1, +2.5] standard deviations
    from math import erf, exp, pi, sqrt
    alpha, beta = -1.0, 2.5
    phi = lambda z: exp(-z * z / 2) / sqrt(2 * pi)          # noqa: E731
    cdf = lambda z: 0.5 * (1 + erf(z / sqrt(2)))             # noqa: E731
    mass = cdf(beta) - cdf(alpha)
    mean = 0.1 + 0.02 * (phi(alpha) - phi(beta)) / mass
    var = 0.02 ** 2 * (1 + (alpha * phi(alpha) - beta * phi(beta)) / mass
                       - ((phi(alpha) - phi(beta)) / mass) ** 2)
    assert abs(v.mean() - mean) < 1e-4 and abs(v.std() - sqrt(var)) < 1e-4
    with pytest.raises(ValueError, match="a < b"):
        tc.nn.init.trunc_normal_(tc.empty(3), a=1.0, b=0.0)


@pytest.mark.parametrize("shape", [(4, 6), (6, 4), (8, 3, 3, 3)])
def test_orthogonal_rows_or_columns_are_orthonormal(shape):
    w = tc.nn.init.orthogonal_(tc.empty(*shape, dtype=tc.float64), gain=2.0).numpy()
    flat = w.reshape(shape[0], -1)
    gram = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
    np.testing.assert_allclose(gram, 4.0 * np.eye(gram.shape[0]), atol=1e-12)


@requires_torch
def test_eye_and_dirac_match_torch():
    np.testing.assert_array_equal(tc.nn.init.eye_(tc.empty(3, 5)).numpy(),
                                  torch.nn.init.eye_(torch.empty(3, 5)).numpy())
    for shape, groups in [((4, 2, 3, 3), 1), ((6, 2, 3), 2), ((2, 4, 1, 3, 3), 1)]:
        np.testing.assert_array_equal(
            tc.nn.init.dirac_(tc.empty(*shape), groups).numpy(),
            torch.nn.init.dirac_(torch.empty(*shape), groups).numpy())
    conv = tc.nn.Conv2d(3, 3, 3, padding=1, bias=False)
    tc.nn.init.dirac_(conv.weight)
    x = tc.randn(1, 3, 5, 5)
    np.testing.assert_allclose(conv(x).numpy(), x.numpy(), rtol=1e-6)


def test_jit_answers_for_eager_code():
    assert tc.jit.is_scripting() is False and tc.jit.is_tracing() is False

    class Net(tc.nn.Module):
        @tc.jit.unused
        def helper(self, x):
            return x * 2

        @tc.jit.ignore
        def other(self, x):
            return x + 1

        def forward(self, x):
            return self.other(self.helper(x)) if not tc.jit.is_scripting() else x

    assert Net()(tc.ones(2)).numpy().tolist() == [3.0, 3.0]
    assert tc.jit.annotate(list, [1]) == [1]
    with pytest.raises(NotImplementedError, match="TorchScript"):
        tc.jit.script(Net())


@requires_torch
@pytest.mark.parametrize("fn", [
    lambda m, x: m.stack([p * (i + 1) for i, p in enumerate(x.unbind(1))]),
    lambda m, x: m.stack(m.unbind(x, -1)).sum(0),
    lambda m, x: x.tile(2, 1, 2),
    lambda m, x: m.tile(x, (3,)),
], ids=["unbind", "unbind_module", "tile", "tile_short_dims"])
def test_unbind_and_tile_match_torch(fn):
    torch_parity(lambda t: fn(tc, t), lambda t: fn(torch, t), rng.standard_normal((3, 4)),
                 atol=1e-14, rtol=1e-14)
    gradcheck(lambda t: fn(tc, t), rng.standard_normal((3, 4)))


def test_as_tensor_new_and_type_helpers():
    a = np.arange(4.0)
    t = tc.as_tensor(a)
    a[0] = 9.0
    assert t.dtype == np.float64 and t[0].item() == 9.0          # shared, dtype kept
    assert tc.as_tensor(t) is t
    assert tc.as_tensor([1.0, 2.0]).dtype == np.float32
    assert tc.as_tensor(a, dtype=tc.float32).dtype == np.float32
    x = tc.zeros(2, 3, dtype=tc.float64)
    assert x.new_zeros(4).shape == (4,) and x.new_zeros(4).dtype == np.float64
    assert x.new_ones((2, 2)).numpy().sum() == 4
    assert x.new_full((3,), 7).numpy().tolist() == [7.0, 7.0, 7.0]
    assert x.new_empty(5).shape == (5,) and x.new_tensor([1, 2]).dtype == np.float64
    assert tc.ones(2).type_as(x).dtype == np.float64
    assert tc.empty_like(x).shape == x.shape and tc.is_tensor(x) and not tc.is_tensor(a)
    assert tc.numel(x) == x.nelement() == 6 and x.ndimension() == 2 and x.is_contiguous()
    assert not x.T.is_contiguous()


def test_bernoulli_draws_follow_the_probabilities_and_the_seed():
    tc.manual_seed(3)
    m = tc.empty(20000).bernoulli_(0.25).numpy()
    assert set(np.unique(m)) <= {0.0, 1.0} and abs(m.mean() - 0.25) < 0.015
    probs = tc.tensor(np.tile([0.1, 0.9], 10000))
    draws = tc.bernoulli(probs).numpy()
    assert abs(draws[0::2].mean() - 0.1) < 0.015 and abs(draws[1::2].mean() - 0.9) < 0.015
    tc.manual_seed(3)
    np.testing.assert_array_equal(tc.empty(20000).bernoulli_(0.25).numpy(), m)
    leaf = tc.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="bernoulli_"):
        leaf.bernoulli_(0.5)


NORMS = [2, 1, 3, 0.5, float("inf"), -float("inf"), 0, "fro"]


@requires_torch
@pytest.mark.parametrize("p", NORMS)
@pytest.mark.parametrize("dim,keepdim", [(None, False), (1, False), ((0, 2), True), (-1, True)])
def test_norm_matches_torch(p, dim, keepdim):
    x = rng.standard_normal((3, 4, 5))
    x[0, 0, :] = 0.0                    # a zero vector: torch's gradient there is 0
    if dim is None and p == "fro":
        fn = lambda m, t: t.norm()                                   # noqa: E731
    else:
        fn = lambda m, t: t.norm(p, dim, keepdim)                    # noqa: E731
    torch_parity(lambda t: fn(tc, t), lambda t: fn(torch, t), x, atol=1e-12, rtol=1e-10)
    np.testing.assert_allclose(
        tc.linalg.vector_norm(tc.tensor(x, dtype=tc.float64), 2 if p == "fro" else p, dim,
                              keepdim).numpy(),
        torch.linalg.vector_norm(torch.tensor(x), 2 if p == "fro" else p, dim,
                                 keepdim).numpy(), rtol=1e-12)


@pytest.mark.parametrize("p", [2, 3, 1.5])
def test_norm_gradcheck(p):
    gradcheck(lambda t: t.norm(p, dim=1), rng.standard_normal((3, 4)))


@requires_torch
@pytest.mark.parametrize("fn", [
    lambda F, a, b: F.normalize(a),
    lambda F, a, b: F.normalize(a, p=1.0, dim=-1),
    lambda F, a, b: F.cosine_similarity(a, b),
    lambda F, a, b: F.cosine_similarity(a, b[:1], dim=-1),
    lambda F, a, b: F.pairwise_distance(a[:, 0], b[:, 0]),
    lambda F, a, b: F.pairwise_distance(a[:, 0], b[:, 0], p=1.0, keepdim=True),
], ids=["normalize", "normalize_l1", "cosine", "cosine_bcast", "pdist", "pdist_l1"])
def test_normalize_cosine_pairwise_match_torch(fn):
    a, b = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 4, 5))
    torch_parity(lambda x, y: fn(tc.nn.functional, x, y),
                 lambda x, y: fn(torch.nn.functional, x, y), a, b, atol=1e-12, rtol=1e-10)


@requires_torch
def test_one_hot_matches_torch():
    labels = rng.integers(0, 5, (3, 4))
    np.testing.assert_array_equal(tc.nn.functional.one_hot(tc.tensor(labels)).numpy(),
                                  torch.nn.functional.one_hot(torch.tensor(labels)).numpy())
    out = tc.nn.functional.one_hot(tc.tensor(labels), num_classes=7)
    assert out.shape == (3, 4, 7) and out.dtype == np.int64
    with pytest.raises(RuntimeError, match="smaller than num_classes"):
        tc.nn.functional.one_hot(tc.tensor([5]), 3)
    with pytest.raises(RuntimeError, match="index tensor"):
        tc.nn.functional.one_hot(tc.tensor([0.5]))


@requires_torch
@pytest.mark.parametrize("padding_idx", [None, 0, -1])
def test_embedding_matches_torch(padding_idx):
    torch.manual_seed(0)
    ref = torch.nn.Embedding(6, 3, padding_idx=padding_idx).double()
    ours = tc.nn.Embedding(6, 3, padding_idx=padding_idx).double()
    assert repr(ours) == repr(ref)
    if padding_idx is not None:
        assert not np.any(ours.weight.numpy()[padding_idx])
    ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    idx = np.array([[0, 2, 5, 2], [1, 0, 5, 3]])
    out, out_r = ours(tc.tensor(idx)), ref(torch.tensor(idx))
    np.testing.assert_array_equal(out.numpy(), out_r.detach().numpy())
    up = rng.standard_normal((2, 4, 3))
    (out * tc.tensor(up, dtype=tc.float64)).sum().backward()
    (out_r * torch.tensor(up)).sum().backward()
    np.testing.assert_allclose(ours.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-14)
    with pytest.raises(IndexError, match="out of range"):
        ours(tc.tensor([6]))
    frozen = tc.nn.Embedding.from_pretrained(tc.ones(4, 2))
    assert not frozen.weight.requires_grad and frozen(tc.tensor([3])).numpy().tolist() == [[1, 1]]


@requires_torch
def test_distance_modules_match_torch():
    a, b = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    torch_parity(tc.nn.CosineSimilarity(dim=1), torch.nn.CosineSimilarity(dim=1), a, b,
                 atol=1e-12, rtol=1e-10)
    torch_parity(tc.nn.PairwiseDistance(p=3.0), torch.nn.PairwiseDistance(p=3.0), a, b,
                 atol=1e-12, rtol=1e-10)


def test_amp_idioms_port_and_skip_non_finite_steps():
    """The torch.amp recipe (autocast + GradScaler) runs unchanged, in full precision."""
    tc.backends.cudnn.benchmark = True
    model = tc.nn.Linear(3, 1)
    opt = tc.optim.SGD(model.parameters(), lr=0.1)
    scaler = tc.amp.GradScaler()
    with tc.autocast(device_type="cpu", dtype=tc.float16):
        loss = model(tc.ones(2, 3)).sum()
    assert loss.dtype == np.float32                        # no dtype change here
    before = model.weight.numpy().copy()
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    assert not np.allclose(model.weight.numpy(), before)
    model.weight.grad = tc.full((1, 3), float("inf"))
    before = model.weight.numpy().copy()
    scaler.step(opt)                                        # skipped, as torch
    np.testing.assert_array_equal(model.weight.numpy(), before)
    assert scaler.get_scale() == 1.0 and scaler.is_enabled()
