"""Runner: hooks and priorities, checkpoint hook rules, metrics file, iteration-based
runs, from_cfg, early stopping, EMA, clipping, refusing other models' checkpoints."""
import json
import os

import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv import nn
from tinygrad_cv.data import DataLoader, TensorDataset
from tinygrad_cv.engine import (DATASETS, CheckpointHook, CheckpointMismatchError, Config,
                                EarlyStoppingHook, EMAHook, Hook, LoggerHook, Runner,
                                infer_rule)
from tinygrad_cv.engine.hooks import get_priority


def data(n=24, features=4, classes=3, seed=0):
    rs = np.random.RandomState(seed)
    return TensorDataset(tc.tensor(rs.randn(n, features).astype(np.float32)),
                         tc.tensor(rs.randint(0, classes, n)))


def make_runner(work_dir, **kwargs):
    tc.manual_seed(0)
    model = kwargs.pop("model", None) or nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    ds = data()
    defaults = dict(train_dataloader=DataLoader(ds, batch_size=8, shuffle=True),
                    val_dataloader=DataLoader(ds, batch_size=12),
                    optimizer=dict(type="SGD", lr=0.1), max_epochs=2, seed=0, progress=False)
    defaults.update(kwargs)
    return Runner(model, str(work_dir), **defaults)


class Recorder(Hook):
    def __init__(self, name, log, priority="NORMAL"):
        self.name, self.log, self.priority = name, log, priority

    def before_train_epoch(self, runner):
        self.log.append((self.name, "before_train_epoch"))

    def after_train_iter(self, runner, batch_idx, data_batch, outputs):
        self.log.append((self.name, "after_train_iter", runner.iter))

    def after_val(self, runner, metrics):
        self.log.append((self.name, "after_val"))


def test_priorities_and_stage_order(tmp_path):
    assert get_priority("VERY_HIGH") == 10 and get_priority("lowest") == 100
    with pytest.raises(ValueError, match="unknown hook priority"):
        get_priority("SOON")
    log = []
    runner = make_runner(tmp_path, max_epochs=1, default_hooks=[],
                         hooks=[Recorder("low", log, "LOW"), Recorder("high", log, 10),
                                Recorder("normal", log)])
    runner.train()
    assert log[:3] == [("high", "before_train_epoch"), ("normal", "before_train_epoch"),
                       ("low", "before_train_epoch")]
    assert log[3:6] == [("high", "after_train_iter", 1), ("normal", "after_train_iter", 1),
                        ("low", "after_train_iter", 1)]
    assert log[-1] == ("low", "after_val") and runner.epoch == 1 and runner.iter == 3


def test_checkpoint_hook_keeps_last_and_best_and_names_the_latest(tmp_path):
    runner = make_runner(tmp_path, max_epochs=4, val_interval=1, default_hooks=[
        LoggerHook(interval=1, progress=False),
        CheckpointHook(interval=1, max_keep_ckpts=2, save_best="auto")])
    runner.train()
    files = sorted(os.listdir(tmp_path))
    assert "epoch_3.safetensors" in files and "epoch_4.safetensors" in files
    assert "epoch_1.safetensors" not in files and "epoch_2.safetensors" not in files
    best = [f for f in files if f.startswith("best_accuracy_top1_epoch_")]
    assert len(best) == 1
    accs = [h["accuracy/top1"] for h in runner.history]
    best_epoch = max(range(len(accs)), key=lambda i: (accs[i], -i)) + 1  # first of the best
    assert best == [f"best_accuracy_top1_epoch_{best_epoch}.safetensors"]
    assert (tmp_path / "last_checkpoint").read_text().strip() == str(tmp_path / "epoch_4.safetensors")
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["iter"] for r in records if r["mode"] == "train"] == list(range(1, 13))
    assert [r["epoch"] for r in records if r["mode"] == "val"] == [1, 2, 3, 4]
    # a second run appends: the file grows by lines, earlier lines untouched
    make_runner(tmp_path, max_epochs=1, default_hooks=[LoggerHook(interval=1, progress=False)]).train()
    again = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert again[:len(lines)] == lines and len(again) == len(lines) + 4


def test_rules_inferred_from_metric_names():
    assert infer_rule("loss") == "less" and infer_rule("val/loss") == "less"
    for name in ("accuracy/top1", "acc", "precision", "recall", "f1", "mIoU"):
        assert infer_rule(name) == "greater"
    with pytest.raises(ValueError, match="rule="):
        infer_rule("temperature")


def test_iteration_based_run_with_per_iter_scheduler(tmp_path):
    runner = make_runner(tmp_path, max_epochs=None, max_iters=7, val_interval=3,
                         param_scheduler=dict(type="StepLR", step_size=2, gamma=0.5),
                         default_hooks=None)
    runner.train()
    assert runner.iter == 7 and runner.epoch == 2 and runner.inner_iter == 1
    assert runner.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 3)
    assert [h["iter"] for h in runner.history] == [3, 6]
    assert os.path.exists(tmp_path / "iter_7.safetensors")    # save_last


def test_refuses_checkpoint_of_another_model_or_config(tmp_path):
    runner = make_runner(tmp_path, max_epochs=1, default_hooks=[CheckpointHook()])
    runner.train()
    other = make_runner(tmp_path / "o", resume=str(tmp_path / "epoch_1.safetensors"),
                        model=nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3)))
    with pytest.raises(CheckpointMismatchError, match=r"missing|shape mismatch 0\.weight"):
        other.train()
    adam = make_runner(tmp_path / "a", resume=str(tmp_path / "epoch_1.safetensors"),
                       optimizer=dict(type="Adam", lr=0.1))
    with pytest.raises(CheckpointMismatchError, match=r"optimizer \(SGD vs Adam\)"):
        adam.train()


def test_resume_continues_to_a_longer_max_epochs(tmp_path):
    full = make_runner(tmp_path / "full", max_epochs=3, default_hooks=[CheckpointHook()])
    full.train()
    part = make_runner(tmp_path / "part", max_epochs=2, default_hooks=[CheckpointHook()])
    part.train()
    more = make_runner(tmp_path / "part", max_epochs=3, resume=True,
                       default_hooks=[CheckpointHook()])
    more.train()
    for key, value in full.model.state_dict().items():
        assert np.array_equal(value.numpy(), more.model.state_dict()[key].numpy())


def test_early_stopping_and_ema(tmp_path):
    stop = EarlyStoppingHook(monitor="loss", patience=1, min_delta=10.0)   # never improves
    runner = make_runner(tmp_path, max_epochs=10, hooks=[stop], default_hooks=[])
    runner.train()
    assert runner.epoch == 2 and stop.wait == 1
    ema = EMAHook(momentum=0.5)
    runner = make_runner(tmp_path / "ema", max_epochs=1, hooks=[ema], default_hooks=[])
    before = {k: v.numpy().copy() for k, v in runner.model.state_dict().items()}
    runner.train()
    # the EMA moved from the initial weights towards the trained ones, not all the way
    key = "0.weight"
    trained = runner.model.state_dict()[key].numpy()
    assert not np.allclose(ema.ema[key], before[key]) and not np.allclose(ema.ema[key], trained)
    # validation used the averaged weights and training kept the raw ones
    assert np.array_equal(runner.model.state_dict()[key].numpy(), trained)


def test_clip_grad_setting_clips_every_step(tmp_path, monkeypatch):
    import tinygrad_cv.engine.runner as runner_module
    norms = []
    real = runner_module.clip_grad_norm_

    def spy(parameters, **kwargs):
        total = real(parameters, **kwargs)
        params = [p for p in runner.model.parameters() if p.grad is not None]
        after = float(np.sqrt(sum(float((p.grad.numpy() ** 2).sum()) for p in params)))
        norms.append((float(total.item()), after, kwargs))
        return total

    monkeypatch.setattr(runner_module, "clip_grad_norm_", spy)
    runner = make_runner(tmp_path, max_epochs=1, clip_grad=dict(max_norm=1e-3),
                         default_hooks=[])
    runner.train()
    assert len(norms) == 3 and all(k == {"max_norm": 1e-3} for _, _, k in norms)
    assert all(before > 1e-3 and after <= 1e-3 * 1.001 for before, after, _ in norms)


def test_reduce_lr_on_plateau_steps_on_the_monitored_metric(tmp_path):
    runner = make_runner(tmp_path, max_epochs=4, default_hooks=None, param_scheduler=dict(
        type="ReduceLROnPlateau", mode="max", patience=0, factor=0.5,
        monitor="accuracy/top1", threshold=10.0))        # never "improves": halves each time
    runner.train()
    assert runner.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 3)


def test_from_cfg_builds_and_trains(tmp_path):
    @DATASETS.register_module(force=True)
    def EngineTestData(n=24):          # a factory works as a type too
        return data(n)

    cfg = Config(dict(
        model=dict(type="MLP", in_features=4, hidden_sizes=(8,), num_classes=3),
        train_dataloader=dict(dataset=dict(type="EngineTestData"), batch_size=8, shuffle=True),
        val_dataloader=dict(dataset=dict(type="EngineTestData", n=12), batch_size=12),
        test_dataloader=dict(dataset=dict(type="EngineTestData", n=12), batch_size=6),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.05, momentum=0.9),
                           clip_grad=dict(max_norm=1.0), accumulative_counts=2),
        param_scheduler=[dict(type="CosineAnnealingLR", T_max=2)],
        val_evaluator=[dict(type="Accuracy", topk=(1, 2)), dict(type="ClassificationReport",
                                                               num_classes=3)],
        default_hooks=dict(checkpoint=dict(type="CheckpointHook", save_best="loss"),
                           logger=dict(type="LoggerHook", interval=1, progress=False)),
        max_epochs=2, seed=3, work_dir=str(tmp_path)))
    runner = Runner.from_cfg(cfg)
    assert runner.accumulative_counts == 2 and runner.clip_grad == {"max_norm": 1.0}
    runner.train()
    metrics = runner.test()
    assert {"accuracy/top1", "accuracy/top2", "f1", "loss"} <= set(metrics)
    assert any(f.startswith("best_loss_epoch_") for f in os.listdir(tmp_path))
    assert json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])["mode"] == "test"
    # same config, same seed: same weights
    again = Runner.from_cfg(cfg, work_dir=str(tmp_path / "again"))
    again.train()
    for key, value in runner.model.state_dict().items():
        assert np.array_equal(value.numpy(), again.model.state_dict()[key].numpy())


def test_report_hook_writes_the_html_report(tmp_path):
    from tinygrad_cv.engine import ConfusionMatrix, ReportHook
    from tinygrad_cv.engine.metrics import Accuracy
    runner = make_runner(tmp_path, max_epochs=2, metrics=[Accuracy(), ConfusionMatrix(3)],
                         hooks=[ReportHook(class_names=["a", "b", "c"])],
                         default_hooks=[LoggerHook(interval=1, progress=False)])
    runner.train()
    page = (tmp_path / "report" / "index.html").read_text()
    assert "Final test accuracy" in page and "<td>2</td>" in page   # two epochs in the table
    with pytest.raises(Exception, match="needs a ConfusionMatrix"):
        make_runner(tmp_path / "x", hooks=[ReportHook()], default_hooks=[]).train()


def test_memory_stays_flat_over_a_long_run(tmp_path):
    """RSS after epoch 10 and after epoch 40 of one run (val and a checkpoint every
    epoch) differ by less than 4 MiB: nothing accumulates per epoch."""
    def rss_mib():
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmRSS"))

    class Rss(Hook):
        priority = "LOWEST"

        def __init__(self):
            self.values = []

        def after_train_epoch(self, runner):
            self.values.append(rss_mib())

    rss = Rss()
    make_runner(tmp_path, max_epochs=40, hooks=[rss],
                default_hooks=[LoggerHook(interval=1, progress=False),
                               CheckpointHook(max_keep_ckpts=1, save_best="auto")]).train()
    assert len(rss.values) == 40
    assert rss.values[-1] - rss.values[9] < 4, rss.values
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 40 * 3 + 40          # 3 train lines and 1 val line per epoch
