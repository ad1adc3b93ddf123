"""Bad and unusual input to layers and losses (issue 11): empty batches as torch, dtype
mismatches as errors naming the layer, -inf logits, the memory pool under threads."""
from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv import memory, nn
from tinygrad_cv.nn import functional as F

from tests.helpers import requires_torch, torch

EMPTY_BATCH_LAYERS = [
    ("Conv2d", lambda n: n.Conv2d(3, 4, 3, padding=1), (0, 3, 8, 8)),
    ("Conv2d strided", lambda n: n.Conv2d(3, 4, 3, stride=2), (0, 3, 8, 8)),
    ("Conv2d pointwise", lambda n: n.Conv2d(3, 4, 1), (0, 3, 8, 8)),
    ("Conv2d groups", lambda n: n.Conv2d(4, 4, 3, groups=2, bias=False), (0, 4, 5, 5)),
    ("Linear", lambda n: n.Linear(5, 3), (0, 5)),
    ("MaxPool2d 2", lambda n: n.MaxPool2d(2), (0, 3, 8, 8)),
    ("MaxPool2d 3/2", lambda n: n.MaxPool2d(3, 2), (0, 3, 8, 8)),
    ("AvgPool2d", lambda n: n.AvgPool2d(2), (0, 3, 8, 8)),
    ("AdaptiveAvgPool2d", lambda n: n.AdaptiveAvgPool2d(1), (0, 3, 8, 8)),
    ("BatchNorm2d train", lambda n: n.BatchNorm2d(3), (0, 3, 8, 8)),
    ("BatchNorm2d eval", lambda n: n.BatchNorm2d(3).eval(), (0, 3, 8, 8)),
    ("BatchNorm1d eval", lambda n: n.BatchNorm1d(3).eval(), (0, 3)),
    ("ReLU", lambda n: n.ReLU(), (0, 3, 8, 8)),
    ("Dropout", lambda n: n.Dropout(), (0, 3)),
    ("Flatten", lambda n: n.Flatten(), (0, 3, 8, 8)),
    ("LogSoftmax", lambda n: n.LogSoftmax(1), (0, 3)),
]


@requires_torch
@pytest.mark.parametrize("name,make,shape", EMPTY_BATCH_LAYERS, ids=[c[0] for c in EMPTY_BATCH_LAYERS])
def test_an_empty_batch_gives_what_torch_gives(name, make, shape):
    torch.manual_seed(0)
    reference = make(torch.nn)
    xt = torch.zeros(shape, requires_grad=True)
    yt = reference(xt)
    yt.sum().backward()
    layer = make(nn)
    x = tc.zeros(*shape, requires_grad=True)
    y = layer(x)
    y.sum().backward()
    assert y.shape == tuple(yt.shape)
    assert x.grad.shape == shape
    for (key, p), (_, pt) in zip(layer.named_parameters(), reference.named_parameters()):
        np.testing.assert_array_equal(p.grad.numpy(), pt.grad.numpy(), err_msg=key)
    for (key, b), (_, bt) in zip(layer.named_buffers(), reference.named_buffers()):
        np.testing.assert_array_equal(b.numpy(), bt.numpy(), err_msg=key)


@requires_torch
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_losses_on_an_empty_batch_as_torch(reduction):
    for ours, theirs in ((F.cross_entropy, torch.nn.functional.cross_entropy),
                         (F.nll_loss, torch.nn.functional.nll_loss)):
        got = ours(tc.zeros(0, 3, requires_grad=True), tc.zeros(0, dtype=tc.int64),
                   reduction=reduction)
        want = theirs(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), reduction=reduction)
        np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("dtype", [tc.float64, tc.float16, tc.int64, tc.bool_])
def test_linear_rejects_input_of_another_dtype_naming_the_layer(dtype):
    layer = nn.Linear(4, 2)
    x = tc.zeros(3, 4, dtype=dtype)
    with pytest.raises(TypeError, match=rf"Linear\(in_features=4.*input dtype {np.dtype(dtype)} "
                                        r"and weight dtype float32"):
        layer(x)


def test_linear_rejects_complex_input():
    with pytest.raises(TypeError, match="complex128 and weight dtype float32"):
        nn.Linear(4, 2)(tc.Tensor(np.ones((3, 4), np.complex128)))


def test_batchnorm_keeps_its_dtype_rule_and_names_the_layer():
    bn = nn.BatchNorm1d(3)
    before = bn.running_mean.numpy().copy()
    with pytest.raises(TypeError, match=r"BatchNorm1d.*input dtype float64 and weight dtype "
                                        r"float32"):
        bn(tc.zeros(4, 3, dtype=tc.float64))
    np.testing.assert_array_equal(bn.running_mean.numpy(), before)   # nothing changed
    assert bn(tc.randn(4, 3)).dtype == np.float32


def test_the_memory_pool_is_safe_under_threads(monkeypatch):
    """Threads calling F.linear at once (every output pooled) with a tiny switch interval:
    no 'dictionary changed size during iteration', no two live outputs sharing memory."""
    monkeypatch.setattr(sys, "getswitchinterval", sys.getswitchinterval)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    errors, results = [], []
    rng = np.random.default_rng(0)
    w = tc.Tensor(rng.standard_normal((64, 256)).astype(np.float32))

    def work(seed):
        try:
            x = np.random.default_rng(seed).standard_normal((300, 256)).astype(np.float32)
            kept = []
            for k in range(150):
                y = F.linear(tc.Tensor(x), w)
                # new sizes join the pool while other threads look through it
                kept.append(memory.empty((64 + 150 * seed + k, 256), np.float32))
            results.append((x, y))
        except Exception as exc:          # reported below
            errors.append(exc)
    try:
        memory.clear()
        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert not errors, errors
    for x, y in results:
        np.testing.assert_allclose(y.numpy(), x @ w.numpy().T, rtol=1e-4, atol=1e-4)
    outputs = [y.numpy() for _, y in results]
    for i in range(len(outputs)):
        for j in range(i):
            assert not np.shares_memory(outputs[i], outputs[j])
