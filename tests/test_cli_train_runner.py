"""The flag-style `train` runs on the engine's Runner (`cli_train`): same weights, losses
and accuracies as the plain loop `train.fit` it replaced, the same interrupt behaviour,
and nothing written besides --save / --report."""
import os
import signal

import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv import models, optim, serialization
from tinygrad_cv.cli_train import EpochSummaryHook, FlagRunner, run_flag_training
from tinygrad_cv.data import DataLoader, Subset, TensorDataset
from tinygrad_cv.engine import rng
from tinygrad_cv.engine.hooks import ParamSchedulerHook
from tinygrad_cv.errors import Interrupted
from tinygrad_cv.nn import functional as F
from tinygrad_cv.train import fit, weights_metadata

DATA = os.environ.get("TINYGRAD_CV_DATA")


def _data():
    rng_ = np.random.default_rng(0)
    x = tc.tensor(rng_.normal(size=(192, 1, 28, 28)).astype(np.float32))
    y = tc.tensor(rng_.integers(0, 10, 192))
    return TensorDataset(x, y)


def _plain(epochs):
    tc.manual_seed(3)
    data = _data()
    model = models.MLP(hidden_sizes=(16,))
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    history, last = fit(model, DataLoader(data, batch_size=32, shuffle=True, seed=3),
                        DataLoader(data, batch_size=64), opt, epochs, sched, progress=False,
                        print_fn=lambda line: None)
    return model, history, last


def _on_runner(epochs, loss_fn=None, tmp_path=None):
    rng.seed_everything(3)
    data = _data()
    model = models.MLP(hidden_sizes=(16,))
    after_init = rng.capture()
    lines = []
    summary = EpochSummaryHook(DataLoader(data, batch_size=64), progress=False,
                               print_fn=lines.append)
    kwargs = {"loss_fn": loss_fn} if loss_fn else {}
    runner = FlagRunner(model, work_dir=str(tmp_path or "unused"),
                        train_dataloader=DataLoader(data, batch_size=32, shuffle=True, seed=3),
                        optimizer=optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
                        param_scheduler=dict(type="StepLR", step_size=1, gamma=0.7),
                        max_epochs=epochs, seed=3, default_hooks=[ParamSchedulerHook(), summary],
                        **kwargs)
    rng.restore(after_init)
    return model, runner, summary, lines


def test_flag_training_on_the_runner_matches_the_plain_loop():
    plain_model, plain_history, plain_last = _plain(3)
    model, runner, summary, lines = _on_runner(3)
    history, last = run_flag_training(runner, summary)
    for key, value in plain_model.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[key].numpy(), value.numpy())
    assert [h.train_loss for h in history] == [h.train_loss for h in plain_history]
    assert [h.test_accuracy for h in history] == [h.test_accuracy for h in plain_history]
    np.testing.assert_array_equal(last.confusion, plain_last.confusion)
    assert len(lines) == 3 and lines[0].startswith("epoch  1: train loss")
    assert summary.best[0] in (1, 2, 3)


def test_flag_training_interrupted_saves_the_best_finished_epoch(tmp_path):
    calls = [0]

    def loss_fn(output, target, **kwargs):      # SIGTERM arrives in epoch 3's third step
        calls[0] += 1
        if calls[0] == 2 * (6 + 3) + 3:          # 6 train + 3 eval batches per epoch
            signal.raise_signal(signal.SIGTERM)
        return F.cross_entropy(output, target, **kwargs)
    model, runner, summary, lines = _on_runner(5, loss_fn, tmp_path / "work")
    path = tmp_path / "best.safetensors"
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    with pytest.raises(Interrupted) as info:
        run_flag_training(runner, summary, path, weights_metadata("mlp", "mnist"))
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    error = info.value
    assert error.exit_status == 143 and len(lines) == 2
    assert error.message.startswith("interrupted by SIGTERM in epoch 3: the weights of epoch")
    assert error.message.endswith(f"are saved in {path}")
    best_epoch, _, best_state = summary.best
    saved = tc.load(path)
    for key, value in saved.items():
        np.testing.assert_array_equal(value.numpy(), best_state[key].numpy())
    meta = serialization.load_metadata(path)
    assert meta["interrupted"] is True and meta["epoch"] == best_epoch
    assert runner.iter == 2 * 6 + 3               # the step in progress was finished
    assert sorted(os.listdir(tmp_path)) == ["best.safetensors"]   # no engine checkpoint


@pytest.mark.skipif(not DATA, reason="TINYGRAD_CV_DATA is not set (real MNIST needed)")
def test_cli_flag_train_matches_the_plain_loop_on_mnist(tmp_path, capsys):
    from tinygrad_cv.cli import main
    from tinygrad_cv.cli_data import load_datasets
    weights = tmp_path / "w.safetensors"
    assert main(["train", "--model", "mlp", "--epochs", "2", "--limit", "600", "--optimizer",
                 "sgd", "--seed", "5", "--no-progress", "--data-dir", DATA,
                 "--save", str(weights)]) == 0
    out = capsys.readouterr().out
    assert "epoch  2: train loss" in out and "weights saved to" in out
    tc.manual_seed(5)                               # the old flag-style loop, by hand
    train_set, test_set = load_datasets("mnist", DATA)
    train_set, test_set = Subset(train_set, np.arange(600)), Subset(test_set, np.arange(600))
    model = models.MLP()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    fit(model, DataLoader(train_set, batch_size=64, shuffle=True, seed=5),
        DataLoader(test_set, batch_size=1000), opt, 2,
        optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7), progress=False,
        print_fn=lambda line: None)
    saved = tc.load(weights)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(saved[key].numpy(), value.numpy())
    assert serialization.load_metadata(weights)["epoch"] == 2
    assert sorted(os.listdir(tmp_path)) == ["w.safetensors"]
