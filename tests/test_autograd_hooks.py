"""The engine's two extension points: op observers (tracing for export) and post-accumulate
hooks on leaves (gradient all-reduce as buckets fill)."""
from __future__ import annotations

import numpy as np

import tinygrad_cv as tc
from tinygrad_cv.autograd import observe_ops
from tinygrad_cv.nn import functional as F


def test_observe_ops_sees_every_op_in_order_with_inputs_and_output():
    seen = []
    x = tc.randn(2, 3)
    w = tc.randn(4, 3)
    with observe_ops(lambda fn, inputs, params, out: seen.append((fn.__name__, inputs, out))):
        y = F.relu(F.linear(x, w))
    z = y * 2                                   # outside the block: not observed
    assert [name for name, _, _ in seen] == ["Linear", "Relu"]
    assert seen[0][1][0] is x and seen[0][1][1] is w
    assert seen[1][1][0] is seen[0][2] and seen[1][2] is y
    assert z.shape == y.shape


def test_post_accumulate_hooks_run_after_the_leaf_grad_is_set():
    w = tc.randn(3, requires_grad=True)
    calls = []
    w._node().post_hooks.append(lambda leaf: calls.append(leaf.grad.numpy().copy()))
    (w * 2).sum().backward()
    (w * 3).sum().backward()
    np.testing.assert_array_equal(calls[0], np.full(3, 2.0, np.float32))
    np.testing.assert_array_equal(calls[1], np.full(3, 5.0, np.float32))
