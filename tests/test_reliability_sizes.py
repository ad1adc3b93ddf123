"""Negative and huge sizes (issue 11, item 13): every factory and reshape/view raise our
torch-like RuntimeError naming the op and the shape, before allocating anything."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import tinygrad_cv as tc
from tests.helpers import requires_torch, torch

HUGE = 2 ** 40
FACTORIES = {
    "zeros": lambda *s: tc.zeros(*s),
    "ones": lambda *s: tc.ones(*s),
    "empty": lambda *s: tc.empty(*s),
    "full": lambda *s: tc.full(s, 1.5),
    "rand": lambda *s: tc.rand(*s),
    "randn": lambda *s: tc.randn(*s),
    "randint": lambda *s: tc.randint(0, 5, s),
}


def small_peak(fn):
    """Run `fn` (which must raise) and return the peak bytes it allocated."""
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("name", FACTORIES)
def test_negative_sizes_in_factories(name):
    with pytest.raises(RuntimeError, match=rf"^{name}: trying to create tensor with negative "
                                           rf"dimension -2: \[3, -2\]$"):
        FACTORIES[name](3, -2)


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("shape, pattern", [
    ((HUGE, HUGE), r"too large: its size overflows a 64-bit integer"),
    ((2 ** 62,), r"too large: its size overflows a 64-bit integer"),
    ((HUGE, HUGE, 0), r"too large: its size overflows a 64-bit integer"),   # as torch
    ((2 ** 20, 2 ** 20, 2 ** 10), r"too large: .* more than this machine's .* of memory"),
], ids=["overflow", "overflow-bytes", "overflow-with-zero", "beyond-memory"])
def test_huge_sizes_in_factories_are_refused_before_allocating(name, shape, pattern):
    def make():
        with pytest.raises(RuntimeError, match=rf"^{name}: trying to create tensor with shape "
                                               rf"\[{', '.join(map(str, shape))}\].*{pattern}"):
            FACTORIES[name](*shape)
    assert small_peak(make) < 1 << 20


def test_zero_sizes_still_work_as_in_torch():
    assert tc.zeros(2 ** 30, 2 ** 30, 0).shape == (2 ** 30, 2 ** 30, 0)
    assert tc.rand(0, 5).shape == (0, 5)
    assert tc.arange(3, 3).shape == (0,)
    assert tc.eye(0).shape == (0, 0)


def test_out_of_memory_is_reported_as_ours(monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate")
    monkeypatch.setattr(np, "ones", no_memory)
    with pytest.raises(MemoryError, match=r"^ones: not enough memory to create a tensor of "
                                          r"shape \[1000, 1000\] and dtype float32 \(3.8 MiB\)"):
        tc.ones(1000, 1000)


@pytest.mark.parametrize("call, error, pattern", [
    (lambda: tc.arange(-5), RuntimeError, "arange: upper bound and lower bound inconsistent "
                                          "with step sign"),
    (lambda: tc.arange(0, 5, -1), RuntimeError, "inconsistent with step sign"),
    (lambda: tc.arange(0, 1, 0), RuntimeError, "arange: step must be nonzero"),
    (lambda: tc.arange(0, float("inf")), RuntimeError, "arange: unsupported range"),
    (lambda: tc.arange(0, float("nan")), RuntimeError, "arange: unsupported range"),
    (lambda: tc.arange(0, 10 ** 15), RuntimeError, r"arange: trying to create tensor with "
                                                   r"shape \[1000000000000000\] of int64, "
                                                   r"which is too large"),
    (lambda: tc.arange(0, 2 ** 70), RuntimeError, "overflows a 64-bit integer"),
    (lambda: tc.eye(-1), RuntimeError, "eye: n must be greater or equal to 0, got -1"),
    (lambda: tc.eye(3, -2), RuntimeError, "eye: m must be greater or equal to 0, got -2"),
    (lambda: tc.eye(HUGE), RuntimeError, "eye: .* overflows a 64-bit integer"),
    (lambda: tc.eye(2.5), TypeError, "eye: n must be an int"),
    (lambda: tc.randint(5, 5, (2,)), RuntimeError, "randint: expects 'low' to be less than "
                                                   "'high'"),
], ids=["arange-neg", "arange-sign", "arange-step0", "arange-inf", "arange-nan", "arange-huge",
        "arange-overflow", "eye-neg", "eye-m-neg", "eye-huge", "eye-float", "randint-range"])
def test_arange_eye_and_randint_check_their_arguments(call, error, pattern):
    def run():
        with pytest.raises(error, match=pattern):
            call()
    assert small_peak(run) < 1 << 20


def test_arange_values_are_unchanged():
    np.testing.assert_array_equal(tc.arange(5).numpy(), np.arange(5))
    np.testing.assert_array_equal(tc.arange(5, 0, -2).numpy(), [5, 3, 1])
    np.testing.assert_allclose(tc.arange(0, 1, 0.25).numpy(), [0, 0.25, 0.5, 0.75])
    assert tc.arange(0, 1, 0.1).shape == (10,)


@pytest.mark.parametrize("op", ["reshape", "view"])
@pytest.mark.parametrize("shape, pattern", [
    ((-2, -2), r"invalid shape dimension -2 at index 0 of shape \[-2, -2\]"),
    ((2, -3), r"invalid shape dimension -3 at index 1 of shape \[2, -3\]"),
    ((-1, -1), r"only one dimension can be inferred, got shape \[-1, -1\]"),
    ((2 ** 32, 2 ** 32), r"shape \[4294967296, 4294967296\] is too large: its number of "
                         r"elements overflows a 64-bit integer"),
    ((HUGE, HUGE, 0), r"shape \[1099511627776, 1099511627776, 0\] is too large"),
    ((5, -1), r"shape \(5, -1\) is invalid for an input of shape \(4,\) \(4 elements\)"),
], ids=["negative", "negative-later", "two-inferred", "overflow", "overflow-with-zero",
        "indivisible"])
def test_reshape_and_view_check_sizes(op, shape, pattern):
    x = tc.zeros(4)
    with pytest.raises(RuntimeError, match=rf"^{op}: {pattern}"):
        getattr(x, op)(*shape)


def test_reshape_of_an_empty_tensor_with_an_inferred_size_is_ambiguous():
    with pytest.raises(RuntimeError, match=r"reshape: cannot reshape tensor of 0 elements into "
                                           r"shape \[-1, 0\] because the unspecified dimension"):
        tc.zeros(0).reshape(-1, 0)
    assert tc.zeros(0, 3).reshape(-1, 3).shape == (0, 3)
    assert tc.zeros(0).reshape(-1).shape == (0,)


@requires_torch
@pytest.mark.parametrize("call", [
    lambda m: m.zeros(-1), lambda m: m.ones(3, -2), lambda m: m.zeros(HUGE, HUGE),
    lambda m: m.rand(-1), lambda m: m.arange(-5), lambda m: m.arange(0, 1, 0),
    lambda m: m.eye(-1), lambda m: m.zeros(4).reshape(-2, 2), lambda m: m.zeros(4).view(-1, -1),
    lambda m: m.zeros(0).reshape(-1, 0), lambda m: m.zeros(0).reshape(HUGE, HUGE, 0),
])
def test_the_same_calls_fail_in_torch_with_runtime_error(call):
    """Our errors are torch's type (RuntimeError) for the same bad sizes."""
    with pytest.raises(RuntimeError):
        call(torch)
    with pytest.raises(RuntimeError):
        call(tc)
