"""CuPy generator states in engine checkpoints: captured as plain int8 arrays (no pickle),
restored in place; nothing changes, and CuPy is never imported, on a CPU-only run."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv import random as tc_random
from tinygrad_cv.engine import rng

try:
    import cupy
    HAS_GPU = cupy.cuda.runtime.getDeviceCount() > 0
except Exception:   # not installed, or no driver
    HAS_GPU = False


class _FakeBitGenerator:
    """Stands in for CuPy's cuRAND bit generator: its state is one int8 array."""

    def __init__(self, size):
        self._size = size
        self._state = np.arange(size * 4, dtype=np.int8)


class _FakeCupyGenerator:
    def __init__(self, size=6):
        self.bit_generator = _FakeBitGenerator(size)


def test_cpu_run_captures_no_cupy_state_and_restores_old_states():
    tc.manual_seed(0)
    tc.randn(3)
    state = rng.capture()
    assert "cupy" not in state
    expected = tc.randn(3).numpy()
    rng.restore(state)
    np.testing.assert_array_equal(tc.randn(3).numpy(), expected)


def test_importing_and_checkpointing_on_cpu_never_imports_cupy(tmp_path):
    code = ("import sys, numpy as np, tinygrad_cv as tc\n"
            "from tinygrad_cv import nn\n"
            "from tinygrad_cv.data import DataLoader, TensorDataset\n"
            "from tinygrad_cv.engine import Runner\n"
            "ds = TensorDataset(tc.tensor(np.ones((8, 2), np.float32)),\n"
            "                   tc.tensor(np.zeros(8, np.int64)))\n"
            f"r = Runner(nn.Linear(2, 2), {str(tmp_path)!r},\n"
            "           train_dataloader=DataLoader(ds, batch_size=4), max_epochs=1,\n"
            "           optimizer=dict(type='SGD', lr=0.1), seed=0, progress=False)\n"
            "r.train()\n"
            "assert 'cupy' not in sys.modules, 'cupy was imported'\n")
    root = str(Path(__file__).resolve().parents[1])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=str(tmp_path.parent),
                          env={**os.environ, "PYTHONPATH": root})
    assert proc.returncode == 0, proc.stderr


def test_cupy_generator_state_round_trips_through_a_checkpoint(tmp_path, monkeypatch):
    fake = tc_random._CupyGenerator(_FakeCupyGenerator())
    monkeypatch.setitem(tc_random._generators, "cuda:0", fake)
    state = rng.capture()
    saved = state["cupy"]["cuda:0"]
    assert saved["state"].dtype == np.int8 and saved["size"] == 6
    path = tmp_path / "rng.safetensors"
    tc.save(state, path)                               # safetensors + JSON, no pickle
    loaded = tc.load(path)
    fake._gen.bit_generator._state[:] = 0              # the generator moved on
    restored = tc_random._CupyGenerator(_FakeCupyGenerator())
    restored._gen.bit_generator._state[:] = 0
    monkeypatch.setitem(sys.modules, "cupy", sys.modules.get("cupy", object()))
    monkeypatch.setattr(tc_random, "generator_for", lambda dev: restored)
    rng.restore(loaded)
    np.testing.assert_array_equal(restored._gen.bit_generator._state,
                                  np.arange(24, dtype=np.int8))


def test_cupy_state_of_another_size_warns_and_continues(monkeypatch):
    state = rng.capture()
    state["cupy"] = {"cuda:0": {"state": np.zeros(8, np.int8), "size": 2}}
    other = tc_random._CupyGenerator(_FakeCupyGenerator(size=3))
    monkeypatch.setitem(sys.modules, "cupy", sys.modules.get("cupy", object()))
    monkeypatch.setattr(tc_random, "generator_for", lambda dev: other)
    with pytest.warns(RuntimeWarning, match="not bit-identical"):
        rng.restore(state)


@pytest.mark.skipif(not HAS_GPU, reason="needs CuPy and a CUDA GPU")
def test_real_cupy_generator_resumes_its_stream():
    tc.manual_seed(0)
    tc.randn(5, device="cuda")
    state = rng.capture()
    assert "cuda:0" in state["cupy"]
    expected = tc.randn(1000, device="cuda").numpy()
    tc.randn(7, device="cuda")
    rng.restore(state)
    np.testing.assert_array_equal(tc.randn(1000, device="cuda").numpy(), expected)
