"""Ctrl-C (SIGINT) and SIGTERM during training lose nothing finished: the best epoch's
weights so far are written (to --save, else <model>_interrupted.safetensors) and the
process exits with one line saying where, status 130 / 143, no traceback.

In-process tests drive `fit` with an interrupt raised mid-epoch; the subprocess tests
send real signals to the CLI and to examples/mnist_cnn.py after their first epoch
(small --limit runs, real MNIST: skipped without TINYGRAD_CV_DATA)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv import models, serialization
from tinygrad_cv.data import DataLoader, TensorDataset
from tinygrad_cv.errors import Interrupted
from tinygrad_cv.nn import functional as F
from tinygrad_cv.train import fit, weights_metadata

DATA = os.environ.get("TINYGRAD_CV_DATA")
needs_data = pytest.mark.skipif(not DATA, reason="TINYGRAD_CV_DATA is not set (real MNIST needed)")
ROOT = Path(__file__).resolve().parent.parent


def _loaders():
    rng = np.random.default_rng(0)
    x = tc.tensor(rng.normal(size=(256, 1, 28, 28)).astype(np.float32))
    y = tc.tensor(rng.integers(0, 10, 256))
    data = TensorDataset(x, y)
    return DataLoader(data, batch_size=32, shuffle=True, seed=0), DataLoader(data, batch_size=128)


def _interrupting_loss(after_calls, exc):
    calls = [0]

    def loss_fn(output, target, **kwargs):
        calls[0] += 1
        if calls[0] == after_calls:
            raise exc
        return F.cross_entropy(output, target, **kwargs)
    return loss_fn


@pytest.mark.parametrize("exc,status", [(KeyboardInterrupt(), 130),
                                        (Interrupted(signal.SIGTERM), 143)])
def test_fit_saves_the_best_finished_epoch_when_interrupted(tmp_path, exc, status):
    tc.manual_seed(0)
    model = models.MLP(hidden_sizes=(16,))
    train, test = _loaders()
    snapshots = []

    def record(line):      # called once per finished epoch, after its evaluation
        snapshots.append({k: v.numpy().copy() for k, v in model.state_dict().items()})
    batches = len(train)
    # train batches of epochs 1 and 2, their 2 evaluation batches each, then 3 steps
    # into epoch 3: the interrupt comes in the middle of a training epoch.
    loss_fn = _interrupting_loss(2 * (batches + 2) + 3, exc)
    path = tmp_path / "best.safetensors"
    with pytest.raises(Interrupted) as info:
        fit(model, train, test, tc.optim.SGD(model.parameters(), lr=0.05), 5,
            loss_fn=loss_fn, progress=False, print_fn=record, save_interrupted_to=path,
            metadata=weights_metadata("mlp", "mnist", {"hidden_sizes": [16]}))
    error = info.value
    assert error.exit_status == status and len(snapshots) == 2
    assert error.epoch in (1, 2) and str(path) in error.message
    assert error.message.startswith(f"interrupted by {signal.Signals(status - 128).name} "
                                    "in epoch 3: the weights of epoch")
    saved = tc.load(path)
    for key, value in saved.items():   # the finished epoch's weights, not the half-trained
        np.testing.assert_array_equal(value.numpy(), snapshots[error.epoch - 1][key])
        np.testing.assert_array_equal(error.state[key].numpy(), snapshots[error.epoch - 1][key])
    info_saved = serialization.load_metadata(path)
    assert info_saved["epoch"] == error.epoch and info_saved["interrupted"] is True
    assert info_saved["model_args"] == {"hidden_sizes": [16]}
    assert not [p for p in os.listdir(tmp_path) if p != "best.safetensors"]   # no temp files


def test_fit_interrupted_before_any_epoch_saves_nothing(tmp_path):
    model = models.MLP(hidden_sizes=(8,))
    train, test = _loaders()
    path = tmp_path / "w.safetensors"
    with pytest.raises(Interrupted, match="before any epoch finished: no weights saved"):
        fit(model, train, test, tc.optim.SGD(model.parameters(), lr=0.05), 2,
            loss_fn=_interrupting_loss(2, KeyboardInterrupt()), progress=False,
            save_interrupted_to=path)
    assert not path.exists()


def test_signal_handlers_are_restored_after_fit():
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    model = models.MLP(hidden_sizes=(8,))
    train, test = _loaders()
    fit(model, train, test, tc.optim.SGD(model.parameters(), lr=0.05), 1, progress=False,
        print_fn=lambda line: None)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


# ----------------------------------------------------------------------------- real signals
def _run_and_signal(argv, signum, cwd, after_line="epoch  1:", timeout=120):
    """Start `argv`, send `signum` once a stdout line starts with `after_line`; return
    (exit status, stdout, stderr)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # Background jobs may start with SIGINT ignored; give the child the default.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    out = []
    deadline = time.monotonic() + timeout
    try:
        for line in proc.stdout:
            out.append(line)
            if line.startswith(after_line):
                proc.send_signal(signum)
                break
            assert time.monotonic() < deadline, "".join(out)
        rest, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, "".join(out) + rest, err


def _check_saved(path, model_name, min_epoch=1):
    info = serialization.load_metadata(path)
    assert info["model"] == model_name and info["interrupted"] is True
    assert info["epoch"] >= min_epoch
    model = models.MODELS[model_name]()
    model.load_state_dict(tc.load(path))      # a complete, loadable file


@needs_data
@pytest.mark.slow
@pytest.mark.parametrize("signum,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_cli_train_signal_after_first_epoch(tmp_path, signum, status):
    save = tmp_path / "w.safetensors"
    argv = [sys.executable, "-m", "tinygrad_cv", "train", "--model", "mlp", "--limit", "1000",
            "--epochs", "200", "--optimizer", "sgd", "--data-dir", DATA]
    if signum == signal.SIGINT:
        argv += ["--save", str(save)]
    else:
        save = tmp_path / "mlp_interrupted.safetensors"     # the default, in the cwd
    code, out, err = _run_and_signal(argv, signum, cwd=tmp_path)
    assert code == status, (out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    name = signal.Signals(signum).name
    assert lines[0].startswith(f"interrupted by {name} in epoch ")
    assert lines[0].endswith(f"are saved in {save if signum == signal.SIGINT else save.name}")
    _check_saved(save, "mlp")
    assert sorted(os.listdir(tmp_path)) == [save.name]        # no temporary files left


@needs_data
@pytest.mark.slow
def test_example_mnist_cnn_sigint_after_first_epoch(tmp_path):
    argv = [sys.executable, str(ROOT / "examples" / "mnist_cnn.py"), "--limit", "300",
            "--epochs", "100", "--data-dir", DATA]
    code, out, err = _run_and_signal(argv, signal.SIGINT, cwd=tmp_path)
    assert code == 130, (out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.strip().endswith("are saved in mnist_cnn_interrupted.safetensors")
    _check_saved(tmp_path / "mnist_cnn_interrupted.safetensors", "mnist_cnn")


@needs_data
@pytest.mark.slow
def test_cli_train_sigint_before_an_epoch_finished(tmp_path):
    argv = [sys.executable, "-m", "tinygrad_cv", "train", "--model", "mnist_cnn",
            "--data-dir", DATA]                               # the full first epoch: minutes
    code, out, err = _run_and_signal(argv, signal.SIGINT, cwd=tmp_path, after_line="training ")
    assert code == 130, (out, err)
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("interrupted by SIGINT")
    assert os.listdir(tmp_path) == []
