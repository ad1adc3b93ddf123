"""The in-place ReLU (ops/relu.py): it runs only on an output nobody else can see, joins a
Linear's / conv's node there, and never changes a value or gradient of the general path."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv import memory, nn
from tinygrad_cv.autograd import observe_ops
from tinygrad_cv.nn import functional as F

from .helpers import gradcheck

pytestmark = pytest.mark.skipif(not memory.REFCOUNTS_EXACT,
                                reason="the in-place ReLU needs exact reference counts")

RNG = np.random.default_rng(0)


def _linear(dtype=np.float32):
    lin = nn.Linear(6, 5)
    if dtype == np.float64:
        lin = lin.double()
    return lin


def _x(shape=(4, 6), dtype=np.float32):
    return tc.tensor(RNG.standard_normal(shape).astype(dtype), dtype=dtype)


def _grads_general_path(lin, x, upstream):
    """relu(lin(x)) through a held intermediate: the separate Relu node, no in-place."""
    lin.zero_grad()
    h = lin(x)
    y = F.relu(h)
    assert y.grad_fn.name() == "ReluBackward"
    (y * upstream).sum().backward()
    return y.numpy(), lin.weight.grad.numpy().copy(), lin.bias.grad.numpy().copy(), h


def test_relu_of_a_temporary_joins_the_linear_node_with_the_same_values_and_grads():
    lin, x = _linear(), _x()
    upstream = tc.tensor(RNG.standard_normal((4, 5)).astype(np.float32))
    want_y, want_gw, want_gb, _ = _grads_general_path(lin, x, upstream)
    lin.zero_grad()
    y = F.relu(lin(x))
    assert y.grad_fn.name() == "LinearBackward"     # one node: the ReLU joined it
    (y * upstream).sum().backward()
    np.testing.assert_array_equal(y.numpy(), want_y)
    np.testing.assert_allclose(lin.weight.grad.numpy(), want_gw, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(lin.bias.grad.numpy(), want_gb, rtol=1e-6, atol=1e-7)


def test_held_input_is_never_overwritten():
    lin, x = _linear(), _x()
    h = lin(x)
    before = h.numpy().copy()
    assert (before < 0).any()
    y = F.relu(h)
    np.testing.assert_array_equal(h.numpy(), before)          # x used again later: intact
    np.testing.assert_array_equal(y.numpy(), np.maximum(before, 0))
    z = h * 2                                                 # still the pre-ReLU values
    np.testing.assert_array_equal(z.numpy(), before * 2)


def test_a_view_of_the_output_keeps_it_from_being_overwritten():
    lin, x = _linear(), _x()
    h = lin(x)
    view = h.data[:2]                     # an array sharing the memory, no tensor
    before = view.copy()
    del h
    out = lin(x)
    alias = out.data.T                    # a view of the fresh output
    y = F.relu(out)
    assert y.grad_fn.name() == "ReluBackward"
    np.testing.assert_array_equal(view, before)
    assert (alias < 0).any()


def test_leaf_and_user_tensor_are_never_overwritten():
    x = _x()
    before = x.numpy().copy()
    F.relu(x)
    np.testing.assert_array_equal(x.numpy(), before)
    leaf = tc.tensor(before.copy(), requires_grad=True)
    F.relu(leaf).sum().backward()
    np.testing.assert_array_equal(leaf.numpy(), before)
    np.testing.assert_array_equal(leaf.grad.numpy(), (before > 0).astype(np.float32))


def test_sequential_relu_runs_in_place_but_not_on_a_held_input():
    lin = _linear()
    seq = nn.Sequential(lin, nn.ReLU(), nn.Linear(5, 3), nn.ReLU())
    x = _x()
    y = seq(x)
    assert y.grad_fn.name() == "LinearBackward"
    held = _x((4, 5))
    before = held.numpy().copy()
    out = nn.Sequential(nn.ReLU())(held)      # the input is the user's: copied
    np.testing.assert_array_equal(held.numpy(), before)
    np.testing.assert_array_equal(out.numpy(), np.maximum(before, 0))


def test_sequential_with_a_forward_hook_that_keeps_the_output():
    lin = _linear()
    seq = nn.Sequential(lin, nn.ReLU())
    kept = []
    lin.register_forward_hook(lambda m, args, out: kept.append(out))
    y = seq(_x())
    assert (kept[0].numpy() < 0).any()        # the hook's tensor kept its values
    np.testing.assert_array_equal(y.numpy(), np.maximum(kept[0].numpy(), 0))


def test_output_consumed_by_another_op_keeps_correct_gradients():
    """A forward hook feeds the Linear's output into a second op without keeping the
    tensor: the ReLU may overwrite the array (nothing saved it) but must not join the
    Linear's node, whose gradient is the sum over both consumers."""
    lin = _linear(np.float64)
    x = _x(dtype=np.float64)
    extra = []
    lin.register_forward_hook(lambda m, args, out: extra.append(out.sum()))
    seq = nn.Sequential(lin, nn.ReLU())
    y = seq(x)
    assert y.grad_fn.name() == "ReluBackward"
    (y.sum() + extra[0]).backward()
    got = lin.weight.grad.numpy()
    pre = x.numpy() @ lin.weight.numpy().T + lin.bias.numpy()
    want = ((pre > 0).astype(np.float64) + 1.0).T @ x.numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_tensor_hook_on_the_output_sees_the_masked_gradient():
    lin = _linear(np.float64)
    x = _x(dtype=np.float64)
    seen = []

    def hook(module, args, out):
        out.register_hook(lambda g: seen.append(g.numpy().copy()))   # returns None

    lin.register_forward_hook(hook)
    pre = x.numpy() @ lin.weight.numpy().T + lin.bias.numpy()
    nn.Sequential(lin, nn.ReLU())(x).sum().backward()
    np.testing.assert_array_equal(seen[0], (pre > 0).astype(np.float64))


def test_other_ops_output_runs_in_place_with_its_own_node():
    a = tc.tensor(RNG.standard_normal((3, 4)), dtype=np.float64, requires_grad=True)
    y = F.relu(a * 2.0)
    assert y.grad_fn.name() == "ReluBackward"
    y.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.where(a.numpy() > 0, 2.0, 0.0))


def test_no_grad_in_place_values():
    lin, x = _linear(), _x()
    with tc.no_grad():
        want = np.maximum(lin(x).numpy(), 0)
        y = F.relu(lin(x))
        h = lin(x)
        before = h.numpy().copy()
        F.relu(h)
    np.testing.assert_array_equal(y.numpy(), want)
    np.testing.assert_array_equal(h.numpy(), before)


def test_observed_ops_see_a_separate_relu():
    lin, x = _linear(), _x()
    seen = []
    with observe_ops(lambda fn, inputs, params, out: seen.append(fn.__name__)):
        F.relu(lin(x))
    assert seen == ["Linear", "Relu"]


def test_conv_relu_joins_the_conv_node_with_the_same_grads():
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x = tc.tensor(RNG.standard_normal((2, 2, 5, 5)).astype(np.float32), requires_grad=True)
    up = tc.tensor(RNG.standard_normal((2, 3, 5, 5)).astype(np.float32))
    h = conv(x)
    general = F.relu(h)
    (general * up).sum().backward()
    want = [t.grad.numpy().copy() for t in (x, conv.weight, conv.bias)]
    for t in (x, conv.weight, conv.bias):
        t.grad = None
    fused = F.relu(conv(x))
    assert fused.grad_fn.name() == "Conv2dBackward"
    (fused * up).sum().backward()
    np.testing.assert_array_equal(fused.numpy(), general.numpy())
    for t, w in zip((x, conv.weight, conv.bias), want):
        np.testing.assert_allclose(t.grad.numpy(), w, rtol=1e-5, atol=1e-6)


def test_gradcheck_float64_fused_linear_and_conv_relu():
    gradcheck(lambda x, w, b: F.relu(F.linear(x, w, b)),
              RNG.standard_normal((4, 6)), RNG.standard_normal((5, 6)),
              RNG.standard_normal(5))
    gradcheck(lambda x, w, b: F.relu(F.conv2d(x, w, b, padding=1)),
              RNG.standard_normal((2, 2, 4, 4)), RNG.standard_normal((3, 2, 3, 3)),
              RNG.standard_normal(3))
    gradcheck(lambda x, w, b: F.relu(F.relu(F.linear(x, w, b)) * 3.0),
              RNG.standard_normal((4, 6)), RNG.standard_normal((5, 6)),
              RNG.standard_normal(5))


def test_retain_graph_backward_twice_through_a_fused_relu():
    lin, x = _linear(np.float64), _x(dtype=np.float64)
    y = F.relu(lin(x))
    y.sum().backward(retain_graph=True)
    first = lin.weight.grad.numpy().copy()
    y.sum().backward()
    np.testing.assert_allclose(lin.weight.grad.numpy(), 2 * first)
