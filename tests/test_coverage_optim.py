"""RMSprop, Adagrad and the newer lr schedulers against torch.optim, step for step.

Optimizers: identical float64 parameters and gradient streams, 20 steps, every parameter
compared after every step (float64: to ~1e-12), then state dicts. Schedulers: the lr (and
momentum, for OneCycleLR) after every step, and a state_dict save/restore mid-run that
must continue exactly as the uninterrupted run.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest

from tinygrad_cv import optim
from tinygrad_cv.optim import lr_scheduler
from tinygrad_cv.tensor import Tensor
from tests.helpers import requires_torch, torch

SHAPES = [(5, 4), (4,), (2, 3, 3)]
STEPS = 20

CONFIGS = [
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.005, centered=True, momentum=0.5, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, alpha=0.3, centered=True)),          # lerp's other branch
    ("RMSprop", dict(lr=0.01, maximize=True, weight_decay=0.01)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01)),
    ("Adagrad", dict(lr=0.05, weight_decay=0.1, initial_accumulator_value=0.5)),
    ("Adagrad", dict(lr=0.05, eps=1e-3, maximize=True)),
]


def config_id(config):
    name, kwargs = config
    return name + "-" + "-".join(f"{k}={v}" for k, v in kwargs.items())


def arrays(seed, dtype):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def run_pair(name, kwargs, dtype=np.float64, device="cpu", steps=STEPS, check=None):
    init = arrays(0, dtype)
    ours = [Tensor(a, dtype=dtype, device=device, requires_grad=True) for a in init]
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in init]
    opt = getattr(optim, name)(ours, **kwargs)
    ref = getattr(torch.optim, name)(theirs, **kwargs)
    rng = np.random.default_rng(1)
    for step in range(1, steps + 1):
        grads = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
        for p, q, g in zip(ours, theirs, grads):
            p.grad = Tensor(g, dtype=dtype, device=device)
            q.grad = torch.tensor(g)
        opt.step()
        ref.step()
        if check:
            check(ours, theirs, step)
    return opt, ref, ours, theirs


@requires_torch
@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_float64_trajectory_matches_torch(config):
    def check(ours, theirs, step):
        for i, (a, b) in enumerate(zip(ours, theirs)):
            np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-13,
                                       err_msg=f"param {i} after step {step}")
    run_pair(*config, check=check)


@requires_torch
@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_float32_on_every_device_and_state_layout(config, device):
    def check(ours, theirs, step):
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-4, atol=1e-5)
    opt, ref, ours, _ = run_pair(*config, dtype=np.float32, device=device, check=check)
    assert all(p.dtype == np.float32 for p in ours)
    ours_sd, ref_sd = opt.state_dict(), ref.state_dict()
    assert set(ours_sd["state"]) == set(ref_sd["state"])
    for k in ref_sd["state"]:
        assert set(ours_sd["state"][k]) == set(ref_sd["state"][k])
        for name, value in ref_sd["state"][k].items():
            np.testing.assert_allclose(ours_sd["state"][k][name].numpy(), value.numpy(),
                                       rtol=1e-4, atol=1e-5, err_msg=name)
    assert ours_sd["param_groups"][0].keys() == ref_sd["param_groups"][0].keys()


@requires_torch
def test_adagrad_state_exists_before_the_first_step_like_torch():
    p, q = Tensor(np.ones(3), dtype=np.float64, requires_grad=True), \
        torch.nn.Parameter(torch.ones(3, dtype=torch.float64))
    opt = optim.Adagrad([p], initial_accumulator_value=0.25)
    ref = torch.optim.Adagrad([q], initial_accumulator_value=0.25)
    assert set(opt.state_dict()["state"][0]) == set(ref.state_dict()["state"][0])
    np.testing.assert_array_equal(opt.state[p]["sum"].numpy(), ref.state[q]["sum"].numpy())
    assert float(opt.state[p]["step"].item()) == 0.0


@requires_torch
@pytest.mark.parametrize("config", [CONFIGS[4], CONFIGS[9]], ids=config_id)
def test_state_dict_round_trip_continues_identically(config):
    name, kwargs = config
    opt, _, ours, _ = run_pair(name, kwargs, steps=5)
    saved_params = [p.numpy().copy() for p in ours]
    sd = copy.deepcopy(opt.state_dict())
    rng = np.random.default_rng(9)
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(4)]

    def continue_run(o, params):
        for g in grads:
            for p, gi in zip(params, g):
                p.grad = Tensor(gi, dtype=np.float64)
            o.step()
        return [p.numpy().copy() for p in params]

    expected = continue_run(opt, ours)
    fresh = [Tensor(a, dtype=np.float64, requires_grad=True) for a in saved_params]
    opt2 = getattr(optim, name)(fresh, **kwargs)
    opt2.load_state_dict(sd)
    for a, b in zip(continue_run(opt2, fresh), expected):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("make, message", [
    (lambda p: optim.RMSprop(p, lr=-1), "Invalid learning rate"),
    (lambda p: optim.RMSprop(p, alpha=-0.1), "Invalid alpha value"),
    (lambda p: optim.RMSprop(p, momentum=-0.1), "Invalid momentum value"),
    (lambda p: optim.RMSprop(p, eps=-1), "Invalid epsilon value"),
    (lambda p: optim.Adagrad(p, lr_decay=-1), "Invalid lr_decay value"),
    (lambda p: optim.Adagrad(p, initial_accumulator_value=-1),
     "Invalid initial_accumulator_value value"),
    (lambda p: optim.Adagrad(p, weight_decay=-1), "Invalid weight_decay value"),
])
def test_invalid_hyperparameters_raise_like_torch(make, message):
    with pytest.raises(ValueError, match=message):
        make([Tensor(np.ones(2), requires_grad=True)])


def test_params_without_grad_are_skipped():
    a, b = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2), requires_grad=True)
    for make in (optim.RMSprop, optim.Adagrad):
        opt = make([a, b], lr=0.1)
        a.grad, b.grad = Tensor(np.ones(2)), None
        opt.step()
        np.testing.assert_array_equal(b.numpy(), [1.0, 1.0])
        assert not np.allclose(a.numpy(), 1.0)
        a.data[...] = 1.0


# ----------------------------------------------------------------------------- schedulers

def pair(make_opt_ours, make_opt_torch, make_sched, make_ref_sched):
    p = [Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(3), requires_grad=True)]
    q = [torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(3))]
    opt, ref = make_opt_ours(p), make_opt_torch(q)
    return opt, ref, make_sched(opt), make_ref_sched(ref)


def sgd_groups(m):
    return lambda ps: m.optim.SGD([{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.3}],
                                  lr=0.1, momentum=0.9)


def adam_groups(m):
    return lambda ps: m.optim.Adam([{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.02}],
                                   lr=0.01)


class Halver:
    """A callable object: LambdaLR saves its __dict__ (plain functions are not saved)."""

    def __init__(self):
        self.k = 0.5

    def __call__(self, epoch):
        return self.k ** (epoch // 3)


def _tc_mod():
    import tinygrad_cv
    return tinygrad_cv


SCHEDULERS = [
    ("MultiStepLR", lambda s, o: s.MultiStepLR(o, milestones=[3, 7, 7, 12], gamma=0.5)),
    ("ExponentialLR", lambda s, o: s.ExponentialLR(o, gamma=0.9)),
    ("LambdaLR_fn", lambda s, o: s.LambdaLR(o, lambda e: 1.0 / (1 + e))),
    ("LambdaLR_list", lambda s, o: s.LambdaLR(o, [lambda e: 0.95 ** e, Halver()])),
    ("MultiplicativeLR", lambda s, o: s.MultiplicativeLR(o, lambda e: 0.97)),
    ("ConstantLR", lambda s, o: s.ConstantLR(o, factor=0.25, total_iters=4)),
    ("LinearLR", lambda s, o: s.LinearLR(o, start_factor=0.1, total_iters=6)),
    ("LinearLR_down", lambda s, o: s.LinearLR(o, start_factor=1.0, end_factor=0.2,
                                              total_iters=10)),
    ("CAWR", lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=4)),
    ("CAWR_mult", lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2,
                                                             eta_min=0.001)),
    ("OneCycle_cos", lambda s, o: s.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=30)),
    ("OneCycle_linear", lambda s, o: s.OneCycleLR(o, max_lr=0.8, epochs=3, steps_per_epoch=10,
                                                  anneal_strategy="linear", pct_start=0.4,
                                                  div_factor=10.0, final_div_factor=100.0)),
    ("OneCycle_three", lambda s, o: s.OneCycleLR(o, max_lr=1.0, total_steps=30,
                                                 three_phase=True, base_momentum=0.8,
                                                 max_momentum=0.9)),
    ("OneCycle_nomom", lambda s, o: s.OneCycleLR(o, max_lr=1.0, total_steps=30,
                                                 cycle_momentum=False)),
    ("Sequential", lambda s, o: s.SequentialLR(o, [s.LinearLR(o, 0.1, total_iters=5),
                                                   s.ExponentialLR(o, 0.9)], milestones=[5])),
    ("PolynomialLR", lambda s, o: s.PolynomialLR(o, total_iters=12, power=0.9)),
    ("Chained", lambda s, o: s.ChainedScheduler([s.ConstantLR(o, 0.1, total_iters=5),
                                                 s.ExponentialLR(o, 0.9)])),
    ("CyclicLR", lambda s, o: s.CyclicLR(o, 0.01, [0.1, 0.2], step_size_up=4,
                                         step_size_down=3)),
    ("CyclicLR_tri2", lambda s, o: s.CyclicLR(o, 0.01, 0.1, step_size_up=3,
                                              mode="triangular2", base_momentum=0.7)),
    ("CyclicLR_exp", lambda s, o: s.CyclicLR(o, 0.01, 0.1, step_size_up=5, mode="exp_range",
                                             gamma=0.95, cycle_momentum=False)),
    ("CyclicLR_custom", lambda s, o: s.CyclicLR(o, 0.01, 0.1, step_size_up=2,
                                                scale_fn=Halver(), scale_mode="iterations")),
    ("Sequential3", lambda s, o: s.SequentialLR(o, [s.ConstantLR(o, 0.5, total_iters=3),
                                                    s.CosineAnnealingLR(o, 8),
                                                    s.StepLR(o, 2, 0.5)],
                                                milestones=[4, 12])),
]
OPTIMIZERS = {"sgd": sgd_groups, "adam": adam_groups}


def _momenta(opt):
    return [g.get("momentum", g.get("betas", (None,))[0]) for g in opt.param_groups]


@requires_torch
@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
@pytest.mark.parametrize("name,make", SCHEDULERS, ids=[s[0] for s in SCHEDULERS])
def test_scheduler_lr_sequence_matches_torch(name, make, opt_name):
    tc = _tc_mod()
    opt, ref, sched, ref_sched = pair(OPTIMIZERS[opt_name](tc), OPTIMIZERS[opt_name](torch),
                                      lambda o: make(lr_scheduler, o),
                                      lambda o: make(torch.optim.lr_scheduler, o))
    steps = 29 if name.startswith("OneCycle") else 30
    for step in range(steps + 1):
        np.testing.assert_allclose(sched.get_last_lr(), ref_sched.get_last_lr(), rtol=1e-12,
                                   atol=1e-15, err_msg=f"lr after {step} steps")
        assert [g["lr"] for g in opt.param_groups] == sched.get_last_lr()
        np.testing.assert_allclose(_momenta(opt), _momenta(ref), rtol=1e-12,
                                   err_msg=f"momentum after {step} steps")
        if step < steps:
            opt.step()
            ref.step()
            sched.step()
            ref_sched.step()
    if name.startswith("OneCycle"):
        sched.step()
        with pytest.raises(ValueError, match="Tried to step"):
            sched.step()


@requires_torch
@pytest.mark.parametrize("name,make", SCHEDULERS, ids=[s[0] for s in SCHEDULERS])
def test_scheduler_state_dict_resume_continues_identically(name, make):
    """Stop after 7 steps, save optimizer + scheduler state, rebuild both, load, and
    continue: the lrs equal the uninterrupted run's. Keys as torch's."""
    tc = _tc_mod()
    opt, ref, sched, ref_sched = pair(sgd_groups(tc), sgd_groups(torch),
                                      lambda o: make(lr_scheduler, o),
                                      lambda o: make(torch.optim.lr_scheduler, o))
    for _ in range(7):
        opt.step()
        sched.step()
        ref.step()
        ref_sched.step()
    sd = copy.deepcopy(sched.state_dict())
    assert set(sd) - {"_is_initial"} <= set(ref_sched.state_dict()) | {"_get_lr_called_within_step"}
    opt_sd = copy.deepcopy(opt.state_dict())
    uninterrupted = []
    for _ in range(10):
        opt.step()
        sched.step()
        uninterrupted.append(sched.get_last_lr())
    p = [Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(3), requires_grad=True)]
    opt2 = sgd_groups(tc)(p)
    sched2 = make(lr_scheduler, opt2)
    opt2.load_state_dict(opt_sd)
    sched2.load_state_dict(sd)
    resumed = []
    for _ in range(10):
        opt2.step()
        sched2.step()
        resumed.append(sched2.get_last_lr())
    np.testing.assert_allclose(resumed, uninterrupted, rtol=1e-13)


def test_lambda_lr_state_dict_saves_callable_objects_not_functions():
    p = Tensor(np.ones(2), requires_grad=True)
    opt = optim.SGD([{"params": [p]}, {"params": [Tensor(np.ones(1), requires_grad=True)]}],
                    lr=0.1)
    obj = Halver()
    sched = lr_scheduler.LambdaLR(opt, [lambda e: 1.0, obj])
    sd = sched.state_dict()
    assert sd["lr_lambdas"][0] is None and sd["lr_lambdas"][1] == {"k": 0.5}
    sd["lr_lambdas"][1] = {"k": 0.25}
    sched.load_state_dict(sd)
    assert obj.k == 0.25


@requires_torch
def test_cosine_warm_restarts_fractional_epochs_match_torch():
    tc = _tc_mod()
    opt, ref, sched, ref_sched = pair(
        sgd_groups(tc), sgd_groups(torch),
        lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=3),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=3))
    import warnings
    for epoch in [0.0, 0.5, 1.25, 2.0, 3.7, 7.9, 8.0, 9.5, 25.1, 26.0, 1.0]:
        sched.step(epoch)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref_sched.step(epoch)
        np.testing.assert_allclose(sched.get_last_lr(), ref_sched.get_last_lr(), rtol=1e-12)
    with pytest.raises(ValueError, match="non-negative"):
        sched.step(-1)


PLATEAU = [
    dict(),
    dict(mode="max", factor=0.5, patience=2),
    dict(patience=1, threshold=0.1, threshold_mode="abs", cooldown=2),
    dict(mode="max", patience=0, threshold_mode="abs", threshold=0.05, min_lr=[0.05, 0.01]),
    dict(patience=0, factor=0.5, min_lr=0.02, eps=1e-3),
]


@requires_torch
@pytest.mark.parametrize("kwargs", PLATEAU)
def test_reduce_lr_on_plateau_matches_torch(kwargs):
    tc = _tc_mod()
    opt, ref, sched, ref_sched = pair(
        sgd_groups(tc), sgd_groups(torch),
        lambda o: lr_scheduler.ReduceLROnPlateau(o, **kwargs),
        lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, **kwargs))
    rng = np.random.default_rng(3)
    metrics = np.concatenate([np.linspace(1.0, 0.5, 5), 0.5 + 0.05 * rng.random(30),
                              np.linspace(0.5, 0.9, 5), np.full(20, 0.9)])
    for i, value in enumerate(metrics):
        opt.step()
        ref.step()
        sched.step(value)
        ref_sched.step(value)
        assert sched.get_last_lr() == pytest.approx(ref_sched.get_last_lr(), rel=1e-12), i
        assert sched.num_bad_epochs == ref_sched.num_bad_epochs
        assert sched.cooldown_counter == ref_sched.cooldown_counter
        if i == 20:
            sd = copy.deepcopy(sched.state_dict())
    fresh_opt = sgd_groups(tc)([Tensor(np.ones(2), requires_grad=True),
                                Tensor(np.ones(3), requires_grad=True)])
    restored = lr_scheduler.ReduceLROnPlateau(fresh_opt)
    restored.load_state_dict(sd)
    assert restored.mode == kwargs.get("mode", "min") and restored.best == sd["best"]


def test_scheduler_argument_errors():
    opt = optim.SGD([Tensor(np.ones(2), requires_grad=True)], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        lr_scheduler.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="unknown"):
        lr_scheduler.ReduceLROnPlateau(opt, mode="up")
    with pytest.raises(ValueError, match="total_steps OR"):
        lr_scheduler.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ValueError, match="expected 1 values for max_lr"):
        lr_scheduler.OneCycleLR(opt, max_lr=[1.0, 2.0], total_steps=10)
    with pytest.raises(ValueError, match="momentum or beta1"):
        lr_scheduler.OneCycleLR(optim.Adagrad([Tensor(np.ones(1), requires_grad=True)]),
                                max_lr=1.0, total_steps=5)
    with pytest.raises(ValueError, match="T_0"):
        lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=0)
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        lr_scheduler.LinearLR(opt, start_factor=0)
    with pytest.raises(ValueError, match="number of milestone"):
        lr_scheduler.SequentialLR(opt, [lr_scheduler.ExponentialLR(opt, 0.9)], [3])
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        lr_scheduler.SequentialLR(opt, [lr_scheduler.ReduceLROnPlateau(opt),
                                        lr_scheduler.ExponentialLR(opt, 0.9)], [3])
    with pytest.raises(ValueError, match="Expected 1 lr_lambdas"):
        lr_scheduler.LambdaLR(opt, [lambda e: 1, lambda e: 2])
