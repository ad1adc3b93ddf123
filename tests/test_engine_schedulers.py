"""SequentialLR and ChainedScheduler from config dicts (their schedulers nested dicts),
with the same lrs as built by hand, saved in checkpoints and resumed exactly; and
`from_cfg` does not make training redraw the numbers the model's init drew."""
import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv import nn, optim
from tinygrad_cv.data import DataLoader, TensorDataset
from tinygrad_cv.engine import CheckpointHook, ConfigError, Runner
from tinygrad_cv.engine.build import build_scheduler
from tinygrad_cv.optim.lr_scheduler import (ChainedScheduler, CosineAnnealingLR, ExponentialLR,
                                            LinearLR, SequentialLR)

SEQUENTIAL = dict(type="SequentialLR", milestones=[4],
                  schedulers=[dict(type="LinearLR", start_factor=0.1, total_iters=4),
                              dict(type="CosineAnnealingLR", T_max=10, eta_min=0.001)])
CHAINED = dict(type="ChainedScheduler",
               schedulers=[dict(type="ExponentialLR", gamma=0.9),
                           dict(type="LinearLR", start_factor=0.5, total_iters=3)])


def _optimizer():
    return optim.SGD([nn.Parameter(tc.zeros(2))], lr=0.1, momentum=0.9)


def _lrs(scheduler, optimizer, steps=12):
    out = []
    for _ in range(steps):
        optimizer.step()
        scheduler.step()
        out.append(optimizer.param_groups[0]["lr"])
    return out


@pytest.mark.parametrize("cfg,by_hand", [
    (SEQUENTIAL, lambda o: SequentialLR(o, [LinearLR(o, start_factor=0.1, total_iters=4),
                                            CosineAnnealingLR(o, T_max=10, eta_min=0.001)],
                                        milestones=[4])),
    (CHAINED, lambda o: ChainedScheduler([ExponentialLR(o, gamma=0.9),
                                          LinearLR(o, start_factor=0.5, total_iters=3)])),
])
def test_nested_scheduler_dicts_build_the_same_schedule(cfg, by_hand):
    a, b = _optimizer(), _optimizer()
    built = build_scheduler(cfg, a)
    assert type(built).__name__ == cfg["type"]
    assert _lrs(built, a) == _lrs(by_hand(b), b)


def test_inner_scheduler_with_by_epoch_is_refused():
    cfg = dict(SEQUENTIAL, schedulers=[dict(SEQUENTIAL["schedulers"][0], by_epoch=False),
                                       SEQUENTIAL["schedulers"][1]])
    with pytest.raises(ConfigError, match=r"schedulers\[0\] has 'by_epoch'"):
        build_scheduler(cfg, _optimizer())


def _runner(work_dir, scheduler, max_iters=14, resume=False):
    tc.manual_seed(0)
    rs = np.random.RandomState(0)
    ds = TensorDataset(tc.tensor(rs.randn(30, 4).astype(np.float32)),
                       tc.tensor(rs.randint(0, 3, 30)))
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    return Runner(model, str(work_dir), train_dataloader=DataLoader(ds, batch_size=8,
                                                                    shuffle=True),
                  optimizer=dict(type="SGD", lr=0.1, momentum=0.9),
                  param_scheduler=dict(scheduler, by_epoch=False), max_iters=max_iters,
                  seed=0, progress=False, resume=resume,
                  hooks=[CheckpointHook(interval=3, by_epoch=False)])


@pytest.mark.parametrize("scheduler", [SEQUENTIAL, CHAINED], ids=["sequential", "chained"])
def test_nested_schedulers_resume_exactly(tmp_path, scheduler):
    reference = _runner(tmp_path / "ref", scheduler)
    reference.train()
    # 4 batches per epoch: iteration 6 is in the middle of epoch 2, past the milestone
    stopped = _runner(tmp_path / "run", scheduler, max_iters=6)
    stopped.train()
    resumed = _runner(tmp_path / "run", scheduler,
                      resume=str(tmp_path / "run" / "iter_6.safetensors"))
    resumed.train()
    assert resumed.current_lr() == reference.current_lr()
    outer, reference_outer = resumed.param_schedulers[0][0], reference.param_schedulers[0][0]
    assert outer.state_dict() == reference_outer.state_dict()   # the inner schedulers' too
    assert [s["last_epoch"] for s in outer.state_dict()["_schedulers"]][-1] > 0
    for key, value in reference.model.state_dict().items():
        np.testing.assert_array_equal(resumed.model.state_dict()[key].numpy(), value.numpy())
    fresh = _runner(tmp_path / "fresh", scheduler, max_iters=8)   # without restoring: differs
    fresh.train()
    assert fresh.current_lr() != reference.current_lr()


def test_from_cfg_keeps_the_random_streams_where_building_left_them(tmp_path):
    from tinygrad_cv.engine import Config
    cfg = Config(dict(model=dict(type="MLP", hidden_sizes=[8]), seed=7,
                      optimizer=dict(type="SGD", lr=0.1), max_epochs=1,
                      work_dir=str(tmp_path)))
    Runner.from_cfg(cfg)
    after = tc.randn(4).numpy()
    tc.manual_seed(7)
    from tinygrad_cv.models import MLP
    MLP(hidden_sizes=[8])
    np.testing.assert_array_equal(after, tc.randn(4).numpy())   # init's stream continued
    tc.manual_seed(7)
    assert not np.array_equal(after, tc.randn(4).numpy())       # not restarted at the seed
