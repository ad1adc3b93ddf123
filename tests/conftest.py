"""Shared fixtures. `device` runs a test on every device: "cpu" always, "cuda" when a GPU
and CuPy are usable here, otherwise the cuda variant is reported as SKIPPED with the reason
(so a CI run without a GPU shows what it did not check, instead of hiding it)."""
from __future__ import annotations

import pytest

from tests.helpers import DEVICES


@pytest.fixture(params=DEVICES)
def device(request):
    """The device string a test builds its tensors on: "cpu" or "cuda"."""
    return request.param


@pytest.fixture
def parallel_kernels(monkeypatch):
    """Make every Numba kernel call take its parallel (prange) version: by default only
    huge arrays do (kernels/cpu/dispatch.py `SERIAL_BELOW`), so tests would otherwise only
    ever run the serial twins."""
    from tinygrad_cv.kernels.cpu import dispatch
    monkeypatch.setattr(dispatch, "SERIAL_BELOW", 1)
