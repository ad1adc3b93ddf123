"""Exact resume: a run killed (os._exit, as SIGKILL: nothing cleaned up) right after a
checkpoint, or stopped by SIGTERM/SIGINT, and resumed ends with the same weights, bit
for bit, as the uninterrupted run; and nothing the engine wrote is a pickle."""
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import safetensors

import tinygrad_cv as tc

SCRIPT = os.path.join(os.path.dirname(__file__), "engine_run_script.py")
ENV = dict(os.environ, OMP_NUM_THREADS="1", TINYGRAD_CV_NUM_THREADS="1")


def run(work_dir, *args, check=True):
    proc = subprocess.run([sys.executable, SCRIPT, str(work_dir), *args], env=ENV,
                          capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def final_weights(work_dir):
    return tc.load(os.path.join(work_dir, "final.safetensors"))


def assert_same_weights(a, b):
    assert list(a) == list(b)
    for key in a:
        assert np.array_equal(a[key].numpy(), b[key].numpy()), key


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("reference")
    run(work_dir)
    return final_weights(work_dir)


def assert_no_pickles(folder):
    """Every file the engine wrote is a safetensors file, JSON lines or plain text."""
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as fh:
                head = fh.read(8)
            assert not name.startswith("."), f"temporary file left behind: {path}"
            if name.endswith(".safetensors"):
                # a safetensors file: a little-endian header length, then a JSON object
                length = int.from_bytes(head, "little")
                with open(path, "rb") as fh:
                    fh.seek(8)
                    assert fh.read(1) == b"{", path
                assert 0 < length < os.path.getsize(path)
                with safetensors.safe_open(path, "numpy") as f:   # parses, runs no code
                    f.metadata()
            else:
                assert name in ("last_checkpoint", "metrics.jsonl") or name.endswith(".json"), path
                assert head[:1] != b"\x80" and head[:2] != b"PK", f"{path} is a pickle/zip"
                open(path, encoding="utf-8").read()


# 5 batches per epoch, checkpoints every 2 iterations: 3 resumes from iter 2 (mid epoch
# 1), 11 from iter 10 (an epoch's end), 14 from iter 14 (mid epoch 3, after a val)
@pytest.mark.parametrize("kill_at", [3, pytest.param(11, marks=pytest.mark.slow), 14])
def test_killed_and_resumed_run_is_bit_identical(tmp_path, reference, kill_at):
    killed = run(tmp_path, "--kill-at", str(kill_at), check=False)
    assert killed.returncode == 9
    assert not os.path.exists(tmp_path / "final.safetensors")
    resumed = run(tmp_path, "--resume")
    assert "resumed from" in resumed.stdout
    assert_same_weights(reference, final_weights(tmp_path))
    assert_no_pickles(tmp_path)


def test_resume_without_restoring_states_would_differ(tmp_path, reference):
    """The comparison can fail: a run resumed from a checkpoint whose epoch-order
    states were lost (epoch 3's order drawn afresh from the seed) ends elsewhere."""
    killed = run(tmp_path, "--kill-at", "13", check=False)
    assert killed.returncode == 9
    from tinygrad_cv.engine import checkpoint as ckpt_io
    path = tmp_path / "iter_12.safetensors"
    ckpt = ckpt_io.read_checkpoint(path)
    ckpt["epoch_rng"]["tinygrad_cv"]["generators"] = {}
    tc.save(ckpt, path)
    (tmp_path / "last_checkpoint").write_text(str(path) + "\n")
    run(tmp_path, "--resume")
    weights = final_weights(tmp_path)
    assert any(not np.array_equal(weights[k].numpy(), reference[k].numpy()) for k in weights)


@pytest.mark.parametrize("extra", [["--noisy"],
                                   pytest.param(["--noisy", "--workers", "2"],
                                                marks=pytest.mark.slow)])
def test_random_per_sample_data_resumes_exactly(tmp_path, tmp_path_factory, extra):
    """Samples drawn one by one with random noise from tinygrad_cv's generator (as a
    random augmentation), also through worker processes where the DataLoader has them:
    the resumed run skips the epoch's first batches and still ends bit-identical."""
    ref_dir = tmp_path_factory.mktemp("noisy_ref")
    run(ref_dir, *extra)
    killed = run(tmp_path, *extra, "--kill-at", "7", check=False)      # resumes from 6
    assert killed.returncode == 9
    run(tmp_path, *extra, "--resume")
    assert_same_weights(final_weights(ref_dir), final_weights(tmp_path))


@pytest.mark.slow
def test_resume_in_the_middle_of_gradient_accumulation(tmp_path, tmp_path_factory):
    ref_dir = tmp_path_factory.mktemp("accum_ref")
    run(ref_dir, "--accum", "3")
    killed = run(tmp_path, "--accum", "3", "--kill-at", "5", check=False)  # resumes from 4
    assert killed.returncode == 9
    run(tmp_path, "--accum", "3", "--resume")
    assert_same_weights(final_weights(ref_dir), final_weights(tmp_path))


@pytest.mark.parametrize("signum, status", [
    (signal.SIGTERM, 143), pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow)])
def test_signal_finishes_the_step_saves_and_resumes_exactly(tmp_path, reference, signum, status):
    proc = subprocess.Popen([sys.executable, SCRIPT, str(tmp_path), "--sleep-at", "5"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "READY"
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "checkpoint saved to" in lines[0] and "--resume" in lines[0]
    assert signal.Signals(signum).name in lines[0]
    assert (tmp_path / "iter_5.safetensors").exists()
    run(tmp_path, "--resume")
    assert_same_weights(reference, final_weights(tmp_path))
    assert_no_pickles(tmp_path)


def test_real_sigkill_mid_epoch_and_resume_is_bit_identical(tmp_path, reference):
    """A real SIGKILL (not os._exit) while iteration 7 (epoch 2's second batch) is being
    processed; the last checkpoint is iteration 6's, mid-epoch."""
    proc = subprocess.Popen([sys.executable, SCRIPT, str(tmp_path), "--sleep-at", "7"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "READY"
        proc.kill()
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "final.safetensors").exists()
    resumed = run(tmp_path, "--resume")
    assert "iter 6)" in resumed.stdout
    assert_same_weights(reference, final_weights(tmp_path))
    assert_no_pickles(tmp_path)
