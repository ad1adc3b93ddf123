"""tinygrad_cv/parallel.py: a batch split across threads (and conv2d, its user)."""
from __future__ import annotations

import threading
import weakref

import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv import parallel
from tinygrad_cv.ops import conv as conv_mod
from tinygrad_cv.ops.conv import conv2d
from tinygrad_cv.threads import get_num_threads, set_num_threads

from tests.helpers import gradcheck


@pytest.fixture
def two_threads():
    """Two threads for the test (the machine may have more or fewer cores)."""
    before = get_num_threads()
    set_num_threads(2)
    yield
    set_num_threads(before)


def _blas_threads():
    return [c.get_num_threads() for c in parallel._blas_controllers()]


def test_parts_cover_the_range_once_on_different_threads(two_threads):
    seen = []
    lock = threading.Lock()

    def body(start, stop):
        with lock:
            seen.append((start, stop, threading.get_ident(), _blas_threads()))

    parallel.for_each_part(7, body)
    assert sorted((a, b) for a, b, _, _ in seen) == [(0, 3), (3, 7)]
    assert len({ident for _, _, ident, _ in seen}) == 2      # two threads did the work
    assert all(blas == [1] * len(blas) for _, _, _, blas in seen)   # BLAS at 1 inside
    assert _blas_threads() == [2] * len(_blas_threads())      # and restored after


@pytest.mark.parametrize("failing_part", [0, 1])      # the caller's part, the worker's
def test_an_error_in_any_part_is_raised_after_all_parts_finish(two_threads, failing_part):
    finished = []

    def body(start, stop):
        if (start == 0) == (failing_part == 0):
            raise ValueError(f"part at {start} failed")
        finished.append(start)

    with pytest.raises(ValueError, match="failed"):
        parallel.for_each_part(10, body)
    assert len(finished) == 1                                  # the other part ran to the end
    assert _blas_threads() == [2] * len(_blas_threads())
    parallel.for_each_part(4, lambda a, b: finished.append(a))  # the workers still serve
    assert sorted(finished[1:]) == [0, 2]


def test_one_part_when_one_thread_one_sample_or_nested(two_threads):
    calls = []
    parallel.for_each_part(1, lambda a, b: calls.append((a, b)))
    assert calls == [(0, 1)]

    def outer(start, stop):
        inner = []
        parallel.for_each_part(6, lambda a, b: inner.append((a, b)))   # a split is running
        calls.append(inner)

    calls.clear()
    parallel.for_each_part(2, outer)
    assert calls == [[(0, 6)], [(0, 6)]]

    set_num_threads(1)
    calls.clear()
    parallel.for_each_part(5, lambda a, b: calls.append((a, b)))
    assert calls == [(0, 5)]


def _conv_step(x, w, b, grad, stride=1, padding=1, groups=1):
    xt = tc.Tensor(x, requires_grad=True)
    wt = tc.Tensor(w, requires_grad=True)
    bt = tc.Tensor(b, requires_grad=True)
    out = conv2d(xt, wt, bt, stride=stride, padding=padding, groups=groups)
    out.backward(tc.Tensor(grad))
    return out.numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


@pytest.mark.parametrize("shape,weight,stride,padding,groups", [
    ((9, 8, 12, 12), (16, 8, 3, 3), 1, 1, 1),     # odd batch: parts of 4 and 5 samples
    ((6, 4, 11, 9), (6, 2, 3, 2), 2, 1, 2),       # groups, stride, non-square
    ((5, 16, 9, 9), (8, 16, 1, 1), 1, 0, 1),      # pointwise: no im2col
    ((7, 8, 6, 6), (16, 8, 3, 3), 1, 1, 1),       # few positions: samples side by side
])
def test_split_conv2d_matches_unsplit(two_threads, monkeypatch, shape, weight, stride,
                                      padding, groups):
    """Per-sample GEMMs are the same arithmetic either way: forward and dx bit-identical;
    dW sums the parts' partial sums, so its float32 rounding may differ slightly. A layer
    with few positions (conv.py's FEW_POSITIONS) runs one GEMM as wide as its chunk, and
    BLAS may round a wider GEMM differently: float32-close there."""
    side_by_side = probe_positions(shape, weight, stride, padding) <= conv_mod.FEW_POSITIONS
    rng = np.random.default_rng(8)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal(weight).astype(np.float32)
    b = rng.standard_normal(weight[0]).astype(np.float32)
    probe = conv2d(tc.Tensor(x), tc.Tensor(w), stride=stride, padding=padding,
                   groups=groups)
    grad = rng.standard_normal(probe.shape).astype(np.float32)
    monkeypatch.setattr(conv_mod, "SPLIT_MIN_FLOPS", 1 << 62)
    whole = _conv_step(x, w, b, grad, stride, padding, groups)
    monkeypatch.setattr(conv_mod, "SPLIT_MIN_FLOPS", 0)
    calls = []
    real = parallel.for_each_part
    monkeypatch.setattr(parallel, "for_each_part",
                        lambda n, body: (calls.append(n), real(n, body)))
    split = _conv_step(x, w, b, grad, stride, padding, groups)
    assert calls == [shape[0], shape[0]]                      # forward and backward split
    if side_by_side:
        for got, want in zip(split[:3], whole[:3]):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_array_equal(split[0], whole[0])
        np.testing.assert_array_equal(split[1], whole[1])
        np.testing.assert_allclose(split[2], whole[2], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(split[3], whole[3])


def probe_positions(shape, weight, stride, padding):
    """Output positions (OH * OW) of a square-padded conv of `weight` on `shape`."""
    out_h = (shape[2] + 2 * padding - weight[2]) // stride + 1
    out_w = (shape[3] + 2 * padding - weight[3]) // stride + 1
    return out_h * out_w


def test_split_conv2d_gradients_in_float64(two_threads, monkeypatch):
    monkeypatch.setattr(conv_mod, "SPLIT_MIN_FLOPS", 0)
    rng = np.random.default_rng(9)
    gradcheck(lambda x, w, b: conv2d(x, w, b, padding=1),
              rng.standard_normal((5, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)),
              rng.standard_normal(4))


def test_memory_clear_frees_the_workers_workspaces_too(two_threads, monkeypatch):
    from tinygrad_cv import memory
    monkeypatch.setattr(conv_mod, "SPLIT_MIN_FLOPS", 0)
    x = tc.randn(4, 3, 10, 10)
    conv2d(x, tc.randn(5, 3, 3, 3))
    slots = memory._all_slots
    assert sum(bool(s) for s in slots) >= 2           # the caller's and a worker's columns
    memory.clear()
    assert not any(slots)


def test_no_thread_keeps_a_finished_body_alive(two_threads):
    """A body's closure references the op's arrays: a worker still holding it would keep
    their pooled buffers from being recycled (memory.py)."""
    class Payload:
        pass

    payload = Payload()
    alive = weakref.ref(payload)
    parallel.for_each_part(4, lambda start, stop, kept=payload: None)
    del payload
    assert alive() is None
