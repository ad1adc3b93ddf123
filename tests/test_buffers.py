"""memory.py: recycled CPU arrays are never handed out while any array uses them."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv.nn import functional as F
from tinygrad_cv import memory as buffers

pytestmark = pytest.mark.skipif(not buffers.REFCOUNTS_EXACT, reason="the pool is off on this Python")

BIG = (64, 512)          # 128 KiB of float32: pooled
SMALL = (4, 4)           # below MIN_BYTES: plain NumPy


def test_a_buffer_is_reused_only_once_nothing_uses_it():
    buffers.clear()
    a = buffers.empty(BIG, np.float32)
    b = buffers.empty(BIG, np.float32)
    assert not np.shares_memory(a, b)
    address = a.ctypes.data
    del a
    c = buffers.empty(BIG, np.float32)
    assert c.ctypes.data == address                    # a's memory, now free, came back


def test_a_view_keeps_its_buffer_busy():
    buffers.clear()
    a = buffers.empty(BIG, np.float32)
    view = a[1:, ::2]
    del a
    b = buffers.empty(BIG, np.float32)
    assert not np.shares_memory(view, b)


def test_small_arrays_are_plain_numpy():
    assert nbytes(SMALL) < buffers.MIN_BYTES <= nbytes(BIG)
    assert buffers.empty(SMALL, np.float32).base is None


def nbytes(shape):
    return int(np.prod(shape)) * 4


@pytest.mark.parametrize("batch", [128, 256])    # both GEMM orientations of Linear
def test_linear_outputs_in_recycled_memory_stay_independent(batch):
    """Linear's GEMM writes into pooled memory: an output the user keeps is never
    overwritten by the next call, and its memory returns once it is dropped."""
    buffers.clear()
    rng = np.random.default_rng(0)
    w = tc.Tensor(rng.standard_normal((128, 256)).astype(np.float32))
    b = tc.Tensor(rng.standard_normal(128).astype(np.float32))
    x1 = rng.standard_normal((batch, 256)).astype(np.float32)
    x2 = rng.standard_normal((batch, 256)).astype(np.float32)
    with tc.no_grad():
        y1 = F.linear(tc.Tensor(x1), w, b)
        kept = y1.numpy().copy()
        y2 = F.linear(tc.Tensor(x2), w, b)
    np.testing.assert_array_equal(y1.numpy(), kept)
    assert not np.shares_memory(y1.numpy(), y2.numpy())
    expected = x2 @ w.numpy().T + b.numpy()
    np.testing.assert_allclose(y2.numpy(), expected, rtol=1e-5, atol=1e-4)
    base = y1.numpy().base
    assert base is not None and any(base is raw for raw in buffers._pool[base.nbytes])
