"""Engine semantics: where gradients go, grad mode, graph freeing, memory, devices, errors."""
from __future__ import annotations

import gc
import operator
import threading
import weakref

import numpy as np
import pytest

import tinygrad_cv as tc
from tests.helpers import torch


# ----------------------------------------------------------------------------- where grads go

def test_grads_accumulate_into_leaves_only(device):
    x = tc.Tensor([1.0, 2.0], requires_grad=True, device=device)
    y = x * 3
    z = (y * y).sum()
    z.backward()
    assert y.grad is None and z.grad is None and not y.is_leaf
    np.testing.assert_allclose(x.grad.numpy(), 18 * x.numpy())
    assert x.grad.dtype == np.float32 and x.grad.shape == x.shape
    assert not x.grad.requires_grad


def test_view_ops_return_new_non_leaf_tensors(device):
    """Even a no-op reshape/permute/expand/pad is a new tensor in the graph, as in torch."""
    x = tc.ones(2, 3, requires_grad=True, device=device)
    views = [x.reshape(2, 3), x.view(2, 3), x.permute(0, 1), x.expand(2, 3), x.squeeze(),
             x.flatten(0, 0), tc.pad(x, (0, 0)), x.transpose(1, 1),
             tc.ones(3, requires_grad=True, device=device).T,
             tc.ones(3, requires_grad=True, device=device).t()]
    for y in views:
        assert y is not x and not y.is_leaf and y.grad_fn is not None
    sum(v.sum() for v in views[:8]).backward()
    assert x.grad.tolist() == [[8.0] * 3] * 2
    assert all(v.grad is None for v in views)


def test_constant_inputs_get_no_grad(device):
    x = tc.Tensor([1.0, 2.0], requires_grad=True, device=device)
    c = tc.Tensor([3.0, 4.0], device=device)
    (x * c).sum().backward()
    assert c.grad is None and x.grad.tolist() == [3.0, 4.0]


def test_accumulation_across_two_backward_calls(device):
    x = tc.Tensor([1.0, -2.0], requires_grad=True, device=device)
    (x * x).sum().backward()
    (x * 5).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() + 5)
    x.grad = None
    (x * 5).sum().backward()
    assert x.grad.tolist() == [5.0, 5.0]


def test_backward_on_non_scalar_needs_gradient(device):
    x = tc.Tensor([1.0, 2.0], requires_grad=True, device=device)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2).backward()
    assert x.grad is None


def test_backward_with_explicit_gradient(device):
    x = tc.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, device=device)
    y = x * x
    y.backward(gradient=tc.Tensor([[1.0, 0.5], [0.0, -1.0]], device=device))
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() * [[1.0, 0.5], [0.0, -1.0]])
    x2 = tc.Tensor([1.0, 2.0], requires_grad=True, device=device)
    (x2 * 3).backward(tc.Tensor([1.0, 2.0], device=device))
    assert x2.grad.tolist() == [3.0, 6.0]
    if device == "cpu":   # a host array as gradient (tensor.py wraps it on the CPU)
        x2.grad = None
        (x2 * 3).backward(np.array([1.0, 2.0]))
        assert x2.grad.tolist() == [3.0, 6.0]
    with pytest.raises(RuntimeError, match="shape"):
        (x2 * 3).backward(tc.Tensor([1.0, 2.0, 3.0], device=device))


def test_backward_of_size_one_tensor_and_leaf(device):
    x = tc.Tensor([[2.0]], requires_grad=True, device=device)
    (x * 3).backward()
    assert x.grad.tolist() == [[3.0]]
    leaf = tc.Tensor(2.0, requires_grad=True, device=device)
    leaf.backward()
    assert leaf.grad.item() == 1.0


def test_backward_without_grad_errors(device):
    with pytest.raises(RuntimeError, match="grad"):
        tc.Tensor([1.0], device=device).sum().backward()


def test_second_backward_through_freed_graph_errors(device):
    x = tc.Tensor([1.0, 2.0], requires_grad=True, device=device)
    y = (x * x).exp().sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time|retain_graph"):
        y.backward()


def test_retain_graph_allows_second_backward(device):
    x = tc.Tensor([1.0, 2.0], requires_grad=True, device=device)
    y = (x * x).exp().sum()
    y.backward(retain_graph=True)
    g1 = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * g1, rtol=1e-6)


def test_shared_subgraph_gets_all_contributions(device):
    """A node consumed by the root and by another node it feeds (diamond in any order)."""
    for order in (0, 1):
        x = tc.Tensor([1.0], requires_grad=True, device=device)
        b = x.exp()
        a = b * 2
        r = b + a if order == 0 else a + b
        r.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), [3 * np.e], rtol=1e-6)


def test_same_tensor_used_many_times(device):
    x = tc.Tensor([2.0], requires_grad=True, device=device)
    y = x * x * x + x * 4 - x / x
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 * 4 + 4], rtol=1e-6)


# ----------------------------------------------------------------------------- grad mode

def test_no_grad_context_manager():
    x = tc.Tensor([1.0], requires_grad=True)
    with tc.no_grad():
        y = x * 2
        assert not tc.is_grad_enabled()
    assert tc.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    assert (x * 2).requires_grad


def test_no_grad_decorator_and_exceptions_restore_mode():
    @tc.no_grad()
    def f(t):
        """Doubles."""
        assert not tc.is_grad_enabled()
        return t * 2

    x = tc.Tensor([1.0], requires_grad=True)
    assert not f(x).requires_grad and tc.is_grad_enabled()
    assert f.__name__ == "f" and f.__doc__ == "Doubles."
    with pytest.raises(ZeroDivisionError):
        with tc.no_grad():
            1 / 0
    assert tc.is_grad_enabled()


def test_no_grad_decorator_without_parentheses():
    @tc.no_grad
    def f(t):
        return t * 2

    assert not f(tc.Tensor([1.0], requires_grad=True)).requires_grad and f.__name__ == "f"

    @tc.enable_grad
    def g(t):
        return t * 2

    with tc.no_grad():
        assert g(tc.Tensor([1.0], requires_grad=True)).requires_grad


def test_enable_grad_inside_no_grad_and_nesting():
    x = tc.Tensor([1.0], requires_grad=True)
    with tc.no_grad():
        with tc.enable_grad():
            y = x * 2
        with tc.no_grad():
            pass
        assert not tc.is_grad_enabled()
        z = x * 2
    assert y.requires_grad and not z.requires_grad
    with tc.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert tc.is_grad_enabled()


def test_grad_mode_is_thread_local():
    seen = {}
    started, release = threading.Event(), threading.Event()

    def worker():
        started.set()
        release.wait(5)
        x = tc.Tensor([1.0], requires_grad=True)
        seen["enabled"] = tc.is_grad_enabled()
        seen["requires_grad"] = (x * 2).requires_grad

    t = threading.Thread(target=worker)
    t.start()
    started.wait(5)
    with tc.no_grad():
        release.set()
        t.join(5)
        assert not tc.is_grad_enabled()
    assert seen == {"enabled": True, "requires_grad": True}

    def worker2():
        with tc.no_grad():
            seen["inner"] = tc.is_grad_enabled()

    t2 = threading.Thread(target=worker2)
    t2.start()
    t2.join(5)
    assert seen["inner"] is False and tc.is_grad_enabled()


def test_detach_cuts_the_graph_and_shares_storage():
    x = tc.Tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    np.testing.assert_array_equal(d.numpy(), y.numpy())
    (x * d).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]


def test_requires_grad_():
    x = tc.Tensor([1.0, 2.0])
    assert x.requires_grad_() is x and x.requires_grad and x.is_leaf
    x.requires_grad_(False)
    assert not x.requires_grad
    for bad in (tc.Tensor([1, 2]), tc.Tensor([True]), tc.arange(3)):
        with pytest.raises(RuntimeError, match="floating"):
            bad.requires_grad_()
    with pytest.raises(RuntimeError, match="floating"):
        tc.Tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError):
        tc.zeros(2, dtype=tc.int64, requires_grad=True)


# ----------------------------------------------------------------------------- ndarray op Tensor

OPERATORS = ["add", "sub", "mul", "truediv", "pow", "matmul", "eq", "ne", "lt", "le", "gt", "ge"]


@pytest.mark.parametrize("name", OPERATORS)
def test_ndarray_op_tensor_dispatches_to_tensor(name):
    op = getattr(operator, name)
    a = np.array([[1.0, 2.0], [3.0, 0.5]], np.float32)
    b = np.array([[0.5, 2.0], [1.5, 4.0]], np.float32)
    t = tc.Tensor(b, requires_grad=True)
    out = op(a, t)
    assert isinstance(out, tc.Tensor), type(out)
    np.testing.assert_allclose(out.numpy(), op(a, b), rtol=1e-6)
    if name not in ("eq", "ne", "lt", "le", "gt", "ge"):
        assert out.requires_grad
        out.sum().backward()
        assert t.grad is not None and t.grad.shape == t.shape
    else:
        assert out.dtype == np.bool_ and not out.requires_grad
    if name != "matmul":
        assert isinstance(op(np.float32(2.0), t), tc.Tensor)


def test_ndarray_logical_ops_dispatch():
    a, t = np.array([True, False]), tc.Tensor([True, True])
    assert (a & t).tolist() == [True, False] and (a | t).tolist() == [True, True]
    assert (~t).tolist() == [False, False]


# ----------------------------------------------------------------------------- post-conditions

def test_inputs_not_mutated_by_forward_and_backward():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(3)]
    copies = [a.copy() for a in arrays]
    x, y, w = (tc.Tensor(a, requires_grad=True) for a in arrays)
    before = [t.numpy().copy() for t in (x, y, w)]
    out = ((x * y + w).relu() @ w.T).softmax(1).log().sum() + (x - y).max() + x[[0, 0]].sum()
    out = out + tc.cat([x, y]).var() + tc.pad(w, (1, 1), mode="reflect").mean()
    out.backward()
    for t, b in zip((x, y, w), before):
        np.testing.assert_array_equal(t.numpy(), b)
    for a, c in zip(arrays, copies):
        np.testing.assert_array_equal(a, c)      # Tensor() copied its input


def test_no_grad_aliasing():
    x = tc.Tensor([1.0, 2.0], requires_grad=True)
    y = tc.Tensor([3.0, 4.0], requires_grad=True)
    z = x + y
    z.sum().backward()
    gx, gy = x.grad.numpy(), y.grad.numpy()
    assert not np.shares_memory(gx, gy)
    for t in (x, y, z):
        assert not np.shares_memory(gx, t.numpy()) and not np.shares_memory(gy, t.numpy())
    gx[0] = 100.0           # writing one grad must not change the other
    assert y.grad.tolist() == [1.0, 1.0]

    a = tc.Tensor([1.0, 2.0], requires_grad=True)
    b = a.expand(3, 2)      # the broadcast gradient is reduced into a fresh array
    s = tc.Tensor([[1.0, 1.0]], requires_grad=True)
    (b * 1).sum().backward()
    (s + 0).sum().backward()
    assert a.grad.tolist() == [3.0, 3.0]
    assert not np.shares_memory(a.grad.numpy(), s.grad.numpy())

    g = tc.Tensor([1.0, 2.0])
    c = tc.Tensor([5.0, 6.0], requires_grad=True)
    (c * 1).backward(g)
    assert not np.shares_memory(c.grad.numpy(), g.numpy())
    assert c.grad.tolist() == [1.0, 2.0]


def test_grad_is_writable_and_has_leaf_dtype():
    x = tc.Tensor([1.0, 2.0], requires_grad=True)
    x.sum().backward()
    x.grad.numpy()[0] = 7.0
    assert x.grad.tolist() == [7.0, 1.0]
    d = tc.Tensor([1.0], dtype=tc.float64, requires_grad=True)
    (d.float() * 2).sum().backward()
    assert d.grad.dtype == np.float64


# ----------------------------------------------------------------------------- depth and memory

def test_ten_thousand_deep_chain():
    x = tc.Tensor([1.0], dtype=tc.float64, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001 ** 10_000], rtol=1e-8)
    del y
    z = x
    for _ in range(10_000):
        z = z + 1
    z.backward(tc.Tensor([1.0], dtype=tc.float64))
    assert x.grad.numpy()[0] == pytest.approx(1.0001 ** 10_000 + 1)


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_graph_arrays_freed_after_backward_without_gc():
    rng = np.random.default_rng(0)
    x = tc.Tensor(rng.standard_normal((64, 128)).astype(np.float32))
    w = tc.Tensor(rng.standard_normal((128, 128)).astype(np.float32), requires_grad=True)
    gc.collect()
    gc.disable()
    try:
        h = (x @ w).relu()
        out = (h * h).sum()
        mul_node = out.grad_fn.parents[0]
        saved = [weakref.ref(a) for a in mul_node.saved]
        del h
        assert all(r() is not None for r in saved)
        out.backward()
        assert mul_node.saved is None
        assert all(r() is None for r in saved), "saved activations outlived backward()"
        w_ref = weakref.ref(w)
        del out, mul_node, w
        assert w_ref() is None, "the graph keeps a leaf alive (a reference cycle)"
    finally:
        gc.enable()


def test_memory_flat_over_300_steps():
    rng = np.random.default_rng(0)
    x = tc.Tensor(rng.standard_normal((64, 512)).astype(np.float32))         # 128 KB
    w1 = tc.Tensor(rng.standard_normal((512, 512)).astype(np.float32) * 0.05,
                   requires_grad=True)                                       # 1 MB
    w2 = tc.Tensor(rng.standard_normal((512, 64)).astype(np.float32) * 0.05, requires_grad=True)

    def step():
        loss = ((x @ w1).relu() @ w2).relu().sum() / 64
        loss.backward()
        with tc.no_grad():
            w1.data -= 1e-4 * w1.grad.data
            w2.data -= 1e-4 * w2.grad.data
        w1.grad = w2.grad = None
        return loss

    for _ in range(30):
        step()
    gc.collect()
    start = _rss_bytes()
    for _ in range(270):
        last = step()
    gc.collect()
    growth = _rss_bytes() - start
    assert np.isfinite(last.item())
    # A leak of one activation per step would be 270 * 128 KB = 34 MB; of a grad, 270 MB.
    assert growth < 16 * 2 ** 20, f"RSS grew by {growth / 2 ** 20:.1f} MB over 270 steps"


# ----------------------------------------------------------------------------- devices

def test_device_objects():
    d = tc.device("cpu")
    assert d == "cpu" and str(d) == "cpu" and d.type == "cpu" and d.index is None
    assert tc.device("cuda:1") == tc.device("cuda", 1) and tc.device("cuda").index == 0
    assert tc.Tensor([1.0]).device == d and tc.Tensor([1.0], device=d).device == "cpu"
    assert tc.ones(2, device=tc.device("cpu")).to(tc.device("cpu")).device == "cpu"
    with pytest.raises((ValueError, TypeError)):
        tc.device("tpu")
    assert isinstance(tc.cuda.is_available(), bool)


@pytest.mark.skipif(tc.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_gpu_raises_saying_so():
    for make in (lambda: tc.Tensor([1.0], device="cuda"), lambda: tc.zeros(2, device="cuda"),
                 lambda: tc.ones(2).to("cuda"), lambda: tc.ones(2).cuda(),
                 lambda: tc.randn(2, device="cuda:0")):
        with pytest.raises(RuntimeError) as info:
            make()
        msg = str(info.value).lower()
        assert "cuda" in msg and ("cupy" in msg or "gpu" in msg), msg


@pytest.mark.skipif(not tc.cuda.is_available(), reason="no CUDA GPU / CuPy on this machine")
def test_mixing_devices_is_an_error():
    a = tc.ones(2, device="cpu")
    b = tc.ones(2, device="cuda")
    for f, name in ((lambda: a + b, "add"), (lambda: a * b, "mul"),
                    (lambda: a @ b, "matmul"), (lambda: tc.cat([a, b]), "cat")):
        with pytest.raises(RuntimeError) as info:
            f()
        msg = str(info.value)
        assert name in msg and "cpu" in msg and "cuda" in msg, msg
    x = tc.Tensor([1.0, 2.0], requires_grad=True)
    y = x.to("cuda")
    assert y.device == "cuda:0"
    (y * y).sum().backward()
    assert x.grad.device == "cpu" and x.grad.tolist() == [2.0, 4.0]


# ----------------------------------------------------------------------------- bad input

def test_ragged_list_error():
    for ragged in ([[1, 2], [3]], [[1.0], [2.0, 3.0]], [1, [2, 3]]):
        with pytest.raises((ValueError, TypeError)) as info:
            tc.Tensor(ragged)
        assert "Tensor" in str(info.value)
    with pytest.raises(TypeError):
        tc.Tensor(["a", "b"])


def test_matmul_shape_mismatch_error():
    a, b = tc.ones(2, 3, requires_grad=True), tc.ones(4, 5)
    with pytest.raises(RuntimeError) as info:
        a @ b
    msg = str(info.value)
    assert "matmul" in msg and "(2, 3)" in msg and "(4, 5)" in msg
    with pytest.raises(RuntimeError, match="matmul"):
        tc.ones(3) @ tc.ones(4)
    with pytest.raises(RuntimeError, match="matmul"):
        tc.ones(()) @ tc.ones(3)
    assert a.grad is None


@pytest.mark.parametrize("call,op", [
    (lambda x: x.sum(2), "sum"), (lambda x: x.mean(-3), "mean"), (lambda x: x.max(5), "max"),
    (lambda x: x.var(2), "var"), (lambda x: x.argmax(3), "argmax"),
    (lambda x: x.softmax(2), "softmax"), (lambda x: x.log_softmax(-3), "log_softmax"),
    (lambda x: x.logsumexp(2), "logsumexp"), (lambda x: x.transpose(0, 2), "transpose"),
    (lambda x: x.unsqueeze(3), "unsqueeze"), (lambda x: x.squeeze(2), "squeeze"),
    (lambda x: x.flatten(0, 2), "flatten"), (lambda x: x.permute(0, 2), "permute"),
    (lambda x: x.permute(0, 0), "permute"), (lambda x: tc.cat([x, x], 2), "cat"),
    (lambda x: tc.stack([x, x], 3), "stack"), (lambda x: x.size(2), "size"),
    (lambda x: x.sum((0, 0)), "sum"),
])
def test_bad_dims_error(call, op):
    x = tc.ones(2, 3, requires_grad=True)
    with pytest.raises((IndexError, ValueError, RuntimeError)) as info:
        call(x)
    msg = str(info.value)
    assert op in msg, msg
    if op not in ("permute",) and "twice" not in msg:
        assert "(2, 3)" in msg, msg


@pytest.mark.parametrize("index", [5, -4, (0, 7), (slice(None), [0, 4]), [3], (1, 1, 1)])
def test_out_of_range_index_error(index):
    x = tc.ones(3, 4, requires_grad=True)
    with pytest.raises(IndexError) as info:
        x[index]
    msg = str(info.value)
    assert "(3, 4)" in msg and ("__getitem__" in msg or "index" in msg), msg
    with pytest.raises(IndexError):
        tc.ones(3, 4)[index]


def test_bool_mask_of_wrong_shape_error():
    x = tc.ones(3, 2, requires_grad=True)
    for index in (tc.Tensor([True, False]), (Ellipsis, [True, False, True]),
                  np.ones((2, 2), bool)):
        with pytest.raises(IndexError) as info:
            x[index]
        assert "mask" in str(info.value) and "(3, 2)" in str(info.value)


def test_shape_op_errors_name_op_and_shapes():
    x = tc.ones(2, 3)
    for f, op in ((lambda: x.reshape(4, 2), "reshape"), (lambda: x.view(-1, 4), "view"),
                  (lambda: x.expand(3, 3), "expand"), (lambda: tc.cat([x, tc.ones(3, 2)]), "cat"),
                  (lambda: tc.stack([x, tc.ones(3, 2)]), "stack"),
                  (lambda: x.index_select(0, tc.Tensor([2])), "index_select"),
                  (lambda: tc.pad(x, (3, 3), mode="reflect"), "pad")):
        with pytest.raises((RuntimeError, ValueError, IndexError)) as info:
            f()
        msg = str(info.value)
        assert op in msg and "(2, 3)" in msg, msg


def test_inplace_on_leaf_requiring_grad():
    x = tc.Tensor([1.0, 2.0], requires_grad=True)
    for f in (lambda: x.zero_(), lambda: x.fill_(1.0), lambda: x.__setitem__(0, 5.0),
              lambda: x.copy_(tc.Tensor([3.0, 4.0])), lambda: x.uniform_(),
              lambda: x.normal_()):
        with pytest.raises(RuntimeError, match="in-place|leaf"):
            f()
    assert x.tolist() == [1.0, 2.0]
    with tc.no_grad():
        x[0] = 5.0
        x.fill_(3.0) if False else None
    assert x.tolist() == [5.0, 2.0]
    y = tc.Tensor([1.0, 2.0])
    y[1] = 7.0
    y.zero_()
    assert y.tolist() == [0.0, 0.0]
    with tc.no_grad():
        x.copy_(tc.Tensor([9.0, 8.0]))
    assert x.tolist() == [9.0, 8.0] and x.requires_grad


def test_inplace_operators():
    w = tc.Tensor([1.0, 2.0], requires_grad=True)
    alias = w
    for f in (lambda: w.__iadd__(1), lambda: w.__isub__(1), lambda: w.__imul__(2),
              lambda: w.__itruediv__(2), lambda: w.add_(1), lambda: w.mul_(2)):
        with pytest.raises(RuntimeError, match="in-place|leaf"):
            f()
    assert w.tolist() == [1.0, 2.0]
    with tc.no_grad():           # the SGD step: updates the very same tensor
        w -= 0.5 * tc.Tensor([2.0, 2.0])
        w.add_(tc.Tensor([1.0, 1.0]), alpha=2)
    assert alias is w and w.tolist() == [2.0, 3.0] and w.requires_grad and w.is_leaf
    h = w * 2                    # in-place on a graph tensor keeps gradients correct
    h *= h
    h += 1
    h.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), 8 * w.numpy())
    a = tc.arange(3)
    view = a
    a += 1
    assert view.tolist() == [1, 2, 3]
    with pytest.raises(RuntimeError, match="dtype|cast"):
        a += 0.5
    with pytest.raises(RuntimeError, match="shape"):
        b = tc.zeros(3)
        b += tc.ones(2, 3)


@pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
def test_error_before_state_changes():
    """A failing op leaves no trace: no grad_fn, no changed grads."""
    x = tc.Tensor([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    g = x.grad.numpy().copy()
    with pytest.raises((ValueError, RuntimeError)):
        x + tc.ones(3)
    np.testing.assert_array_equal(x.grad.numpy(), g)
