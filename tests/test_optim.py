"""Optimizers and lr schedulers against torch.optim, step for step.

Each parity test builds the same parameters in both frameworks, feeds both optimizers
identical gradients (drawn from one seeded generator) for 20 steps and compares every
parameter after every step within float32 tolerance. Tests that need no PyTorch check
the contracts: in-place updates, dtypes, errors, state_dict round trips.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from tinygrad_cv import optim
from tinygrad_cv.optim import lr_scheduler
from tinygrad_cv.tensor import Tensor
from tests.helpers import requires_torch, torch

SHAPES = [(5, 4), (4,), (2, 3, 3)]
STEPS = 20

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("SGD", dict(lr=0.1, weight_decay=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.5, weight_decay=0.1, maximize=True)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, amsgrad=True)),
    ("Adam", dict(lr=0.01, maximize=True, weight_decay=0.05)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.95, eps=1e-5)),
    ("Adadelta", dict(weight_decay=0.1)),
    ("Adadelta", dict(lr=2.0, maximize=True, weight_decay=0.01)),
]


def config_id(config):
    name, kwargs = config
    return name + "-" + "-".join(f"{k}={v}" for k, v in kwargs.items())


def initial_arrays(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]


def gradient_stream(seed=1, dtype=np.float32):
    """An endless sequence of gradient lists, the same for both frameworks."""
    rng = np.random.default_rng(seed)
    while True:
        yield [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]


def make_params(arrays, device="cpu"):
    return [Tensor(a, dtype=a.dtype, device=device, requires_grad=True) for a in arrays]


def set_grads(params, grads, device="cpu"):
    for p, g in zip(params, grads):
        p.grad = Tensor(g, dtype=g.dtype, device=device)


def set_torch_grads(params, grads):
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g)


def assert_params_close(ours, theirs, step, atol=1e-6, rtol=1e-5):
    for i, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), atol=atol, rtol=rtol,
                                   err_msg=f"param {i} differs from torch after step {step}")


# ----------------------------------------------------------------------------- parity
@requires_torch
@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_matches_torch_for_20_steps(config, device):
    name, kwargs = config
    arrays = initial_arrays()
    ours = make_params(arrays, device)
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in arrays]
    opt = getattr(optim, name)(ours, **kwargs)
    ref = getattr(torch.optim, name)(theirs, **kwargs)
    grads = gradient_stream()
    for step in range(1, STEPS + 1):
        g = next(grads)
        set_grads(ours, g, device)
        set_torch_grads(theirs, g)
        opt.step()
        ref.step()
        assert_params_close(ours, theirs, step)
    for p in ours:
        assert p.dtype == np.float32
    for values in opt.state.values():
        for key, value in values.items():
            if isinstance(value, Tensor):
                assert value.dtype == np.float32, f"state {key} is {value.dtype}"
                assert value.device == ("cpu" if key == "step" else device), key


SGD_CONFIGS = [kwargs for name, kwargs in CONFIGS if name == "SGD"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kwargs", SGD_CONFIGS, ids=lambda k: config_id(("SGD", k)))
def test_sgd_fused_cpu_kernel_equals_array_op_path(kwargs, dtype, monkeypatch):
    """The CPU's one-pass Numba update (`sgd_update`) gives the same bits as the array-op
    path that CuPy (and non-contiguous parameters) run, step after step."""
    fused = make_params(initial_arrays(dtype=dtype))
    plain = make_params(initial_arrays(dtype=dtype))
    opt_fused = optim.SGD(fused, **kwargs)
    opt_plain = optim.SGD(plain, **kwargs)
    grads = gradient_stream(dtype=dtype)
    for step in range(1, 6):
        g = next(grads)
        set_grads(fused, g)
        set_grads(plain, g)
        opt_fused.step()
        with monkeypatch.context() as patch:
            patch.setattr(optim.SGD, "_fused_applies", lambda self, p: False)
            opt_plain.step()
        for a, b in zip(fused, plain):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=f"step {step}")


def test_sgd_non_contiguous_param_takes_the_array_path():
    """A transposed (non-contiguous) parameter is updated correctly in place."""
    base = np.arange(6, dtype=np.float32).reshape(2, 3)
    p = Tensor(np.zeros((2, 3), np.float32), requires_grad=True)
    p.data = base.copy().T                             # a Fortran-ordered view
    assert not p.data.flags.c_contiguous
    p.grad = Tensor(np.ones((3, 2), np.float32))
    opt = optim.SGD([p], lr=0.5, momentum=0.9)
    opt.step()
    opt.step()                                         # buffer 1.9 after the second
    np.testing.assert_allclose(p.numpy(), base.T - 0.5 - 0.5 * 1.9, rtol=1e-6)


@requires_torch
@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "Adadelta"])
def test_float64_params_match_torch_closely(name):
    arrays = initial_arrays(dtype=np.float64)
    ours = make_params(arrays)
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in arrays]
    kwargs = dict(lr=0.05, momentum=0.9) if name == "SGD" else {}
    opt, ref = getattr(optim, name)(ours, **kwargs), getattr(torch.optim, name)(theirs, **kwargs)
    grads = gradient_stream(dtype=np.float64)
    for step in range(1, STEPS + 1):
        g = next(grads)
        set_grads(ours, g)
        set_torch_grads(theirs, g)
        opt.step()
        ref.step()
    assert all(p.dtype == np.float64 for p in ours)
    assert_params_close(ours, theirs, STEPS, atol=1e-12, rtol=1e-10)


@requires_torch
def test_param_groups_with_their_own_hyperparameters_match_torch():
    arrays = initial_arrays()
    ours = make_params(arrays)
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in arrays]
    opt = optim.SGD([{"params": ours[:2]}, {"params": ours[2:], "lr": 0.5, "nesterov": True}],
                    lr=0.1, momentum=0.9)
    ref = torch.optim.SGD([{"params": theirs[:2]},
                           {"params": theirs[2:], "lr": 0.5, "nesterov": True}],
                          lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    grads = gradient_stream()
    for step in range(1, STEPS + 1):
        g = next(grads)
        set_grads(ours, g)
        set_torch_grads(theirs, g)
        opt.step()
        ref.step()
        assert_params_close(ours, theirs, step)


@requires_torch
def test_params_without_grad_are_skipped_like_torch():
    arrays = initial_arrays()
    ours = make_params(arrays)
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in arrays]
    opt, ref = optim.Adam(ours, lr=0.1), torch.optim.Adam(theirs, lr=0.1)
    grads = gradient_stream()
    for step in range(1, 6):
        g = next(grads)
        set_grads(ours[:2], g[:2])          # the last param never gets a gradient
        set_torch_grads(theirs[:2], g[:2])
        opt.step()
        ref.step()
    assert_params_close(ours, theirs, 5)
    np.testing.assert_array_equal(ours[2].numpy(), arrays[2])
    assert ours[2] not in opt.state and len(opt.state) == 2


@requires_torch
def test_training_with_backward_matches_torch(device):
    """A tiny least-squares fit through our autograd, against the same in PyTorch."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((8, 3)).astype(np.float32)
    y = rng.standard_normal((8, 1)).astype(np.float32)
    w0 = rng.standard_normal((3, 1)).astype(np.float32)
    w = Tensor(w0, requires_grad=True, device=device)
    tw = torch.nn.Parameter(torch.tensor(w0))
    opt = optim.SGD([w], lr=0.05, momentum=0.9, nesterov=True)
    ref = torch.optim.SGD([tw], lr=0.05, momentum=0.9, nesterov=True)
    for _ in range(STEPS):
        opt.zero_grad()
        ref.zero_grad()
        loss = ((Tensor(x, device=device) @ w - Tensor(y, device=device)) ** 2).mean()
        tloss = ((torch.tensor(x) @ tw - torch.tensor(y)) ** 2).mean()
        loss.backward()
        tloss.backward()
        np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5)
        opt.step()
        ref.step()
    np.testing.assert_allclose(w.numpy(), tw.detach().numpy(), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- contracts
@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_step_updates_the_same_array_in_place(config, device):
    name, kwargs = config
    params = make_params(initial_arrays(), device)
    arrays_before = [p.data for p in params]
    opt = getattr(optim, name)(params, **kwargs)
    set_grads(params, next(gradient_stream()), device)
    with np.errstate(all="raise"):
        opt.step()
    assert all(p.data is a for p, a in zip(params, arrays_before))
    assert all(p.grad_fn is None and p.is_leaf for p in params)
    assert any(not np.array_equal(p.numpy(), a) for p, a in zip(params, initial_arrays()))


def test_zero_grad_sets_none_by_default_and_zeros_in_place_on_request():
    params = make_params(initial_arrays())
    opt = optim.SGD(params, lr=0.1)
    set_grads(params, next(gradient_stream()))
    grad_arrays = [p.grad.data for p in params]
    opt.zero_grad(set_to_none=False)
    for p, g in zip(params, grad_arrays):
        assert p.grad.data is g and not np.any(g)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_step_returns_the_closure_loss():
    p = Tensor(np.ones(2, np.float32), requires_grad=True)
    opt = optim.SGD([p], lr=0.5)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == pytest.approx(2.0)
    np.testing.assert_allclose(p.numpy(), [0.0, 0.0])


def test_defaults_and_param_group_keys():
    p = Tensor(np.ones(2, np.float32), requires_grad=True)
    assert optim.SGD([p]).defaults["lr"] == 1e-3
    adam = optim.Adam([p])
    assert adam.param_groups[0]["betas"] == (0.9, 0.999) and adam.param_groups[0]["eps"] == 1e-8
    adamw = optim.AdamW([p])
    assert adamw.param_groups[0]["weight_decay"] == 1e-2
    assert adamw.param_groups[0]["decoupled_weight_decay"] is True
    ada = optim.Adadelta([p])
    assert (ada.defaults["lr"], ada.defaults["rho"], ada.defaults["eps"]) == (1.0, 0.9, 1e-6)
    assert "Parameter Group 0" in repr(ada) and "rho: 0.9" in repr(ada)


@requires_torch
@pytest.mark.parametrize("config", CONFIGS[1:2] + CONFIGS[9:10] + CONFIGS[12:13] + CONFIGS[14:15],
                         ids=config_id)
def test_state_dict_has_torchs_structure(config):
    name, kwargs = config
    arrays = initial_arrays()
    ours = make_params(arrays)
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in arrays]
    opt, ref = getattr(optim, name)(ours, **kwargs), getattr(torch.optim, name)(theirs, **kwargs)
    for _ in range(3):
        g = next(gradient_stream())
        set_grads(ours, g)
        set_torch_grads(theirs, g)
        opt.step()
        ref.step()
    sd, tsd = opt.state_dict(), ref.state_dict()
    assert sd["param_groups"] == tsd["param_groups"]
    assert sorted(sd["state"]) == sorted(tsd["state"])
    for index, values in tsd["state"].items():
        assert list(sd["state"][index]) == list(values)
        for key, value in values.items():
            np.testing.assert_allclose(sd["state"][index][key].numpy(), value.numpy(),
                                       rtol=1e-5, atol=1e-7)
            assert sd["state"][index][key].shape == tuple(value.shape)


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_state_dict_round_trip_continues_identically(config, tmp_path, device):
    name, kwargs = config
    grads = list(zip(range(2 * 10), gradient_stream()))
    first = make_params(initial_arrays(), device)
    opt = getattr(optim, name)(first, **kwargs)
    for _, g in grads[:10]:
        set_grads(first, g, device)
        opt.step()

    # resume in a fresh optimizer from the state dict, passed through save/load (which
    # loads on the CPU: load_state_dict moves the state to the params' device)
    second = make_params([p.numpy().copy() for p in first], device)
    resumed = getattr(optim, name)(second, **kwargs)
    tc_path = tmp_path / "opt.safetensors"
    from tinygrad_cv.serialization import load, save
    save(opt.state_dict(), tc_path)
    resumed.load_state_dict(load(tc_path))
    assert resumed.param_groups[0]["params"][0] is second[0]

    for _, g in grads[10:]:
        set_grads(first, g, device)
        set_grads(second, g, device)
        opt.step()
        resumed.step()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_load_state_dict_copies_instead_of_sharing():
    params = make_params(initial_arrays())
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    set_grads(params, next(gradient_stream()))
    opt.step()
    sd = opt.state_dict()
    other = optim.SGD(make_params(initial_arrays()), lr=0.1, momentum=0.9)
    other.load_state_dict(sd)
    buf = sd["state"][0]["momentum_buffer"]
    assert other.state_dict()["state"][0]["momentum_buffer"].data is not buf.data
    other.param_groups[0]["lr"] = 1.0
    assert opt.param_groups[0]["lr"] == 0.1


@requires_torch
def test_loads_a_torch_optimizer_state_dict_and_continues_like_torch():
    arrays = initial_arrays()
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in arrays]
    ref = torch.optim.Adam(theirs, lr=0.01, amsgrad=True)
    grads = gradient_stream()
    for _ in range(5):
        set_torch_grads(theirs, next(grads))
        ref.step()
    ours = make_params([t.detach().numpy().copy() for t in theirs])
    opt = optim.Adam(ours, lr=0.01, amsgrad=True)
    opt.load_state_dict(ref.state_dict())
    assert float(opt.state[ours[0]]["step"].item()) == 5.0
    for step in range(5):
        g = next(grads)
        set_grads(ours, g)
        set_torch_grads(theirs, g)
        opt.step()
        ref.step()
        assert_params_close(ours, theirs, step)


def test_load_state_dict_rejects_mismatched_groups():
    params = make_params(initial_arrays())
    sd = optim.SGD(params, lr=0.1).state_dict()
    with pytest.raises(ValueError, match="number of parameter groups"):
        optim.SGD([{"params": params[:1]}, {"params": params[1:]}], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="doesn't match the size"):
        optim.SGD(params[:2], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        optim.SGD(params, lr=0.1).load_state_dict({"weights": 1})


@pytest.mark.parametrize("make, message", [
    (lambda p: optim.SGD(p, lr=-0.1), "Invalid learning rate: -0.1"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=-1), "Invalid momentum value"),
    (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1), "Invalid weight_decay value"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "Nesterov momentum requires"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     "Nesterov momentum requires"),
    (lambda p: optim.Adam(p, lr=-1), "Invalid learning rate"),
    (lambda p: optim.Adam(p, eps=-1e-8), "Invalid epsilon value"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.999)), "Invalid beta parameter at index 0"),
    (lambda p: optim.AdamW(p, betas=(0.9, -0.1)), "Invalid beta parameter at index 1"),
    (lambda p: optim.AdamW(p, weight_decay=-0.1), "Invalid weight_decay value"),
    (lambda p: optim.Adadelta(p, rho=1.5), "Invalid rho value"),
    (lambda p: optim.Adadelta(p, eps=-1.0), "Invalid epsilon value"),
    (lambda p: optim.Adadelta(p, lr=-1.0), "Invalid learning rate"),
])
def test_invalid_hyperparameters_raise_like_torch(make, message):
    with pytest.raises(ValueError, match=message):
        make(make_params(initial_arrays()))


def test_invalid_params_raise():
    params = make_params(initial_arrays())
    with pytest.raises(TypeError, match="iterable of Tensors or dicts"):
        optim.SGD(params[0], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="ordered"):
        optim.SGD(set(params), lr=0.1)
    with pytest.raises(TypeError, match="only optimize Tensors"):
        optim.SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": params[:2]}, {"params": params[1:]}], lr=0.1)
    non_leaf = params[0] * 2
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([non_leaf], lr=0.1)
    with pytest.raises(NotImplementedError, match="fused"):
        optim.Adam(params, fused=True)


def test_add_param_group_and_named_parameters():
    params = make_params(initial_arrays())
    opt = optim.SGD(params[:1], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": params[1], "lr": 0.01})
    assert len(opt.param_groups[1]["params"]) == 1 and opt.param_groups[1]["params"][0] is params[1]
    assert opt.param_groups[1]["momentum"] == 0.9 and opt.param_groups[1]["lr"] == 0.01
    named = optim.Adam([("w", params[0]), ("b", params[1])])
    assert named.param_groups[0]["param_names"] == ["w", "b"]
    assert named.param_groups[0]["params"][1] is params[1]


# ----------------------------------------------------------------------------- schedulers
def scheduler_pair(make_ours, make_theirs, groups=((0.1,), (0.5,))):
    p_ours = make_params(initial_arrays())
    p_theirs = [torch.nn.Parameter(torch.tensor(a)) for a in initial_arrays()]
    opt = optim.SGD([{"params": [p], "lr": lr} for p, (lr,) in zip(p_ours, groups)], lr=0.1)
    ref = torch.optim.SGD([{"params": [p], "lr": lr} for p, (lr,) in zip(p_theirs, groups)],
                          lr=0.1)
    return opt, ref, make_ours(opt), make_theirs(ref)


def lr_sequences(opt, ref, sched, ref_sched, epochs):
    ours, theirs = [sched.get_last_lr()], [ref_sched.get_last_lr()]
    for _ in range(epochs):
        opt.step()
        ref.step()
        sched.step()
        ref_sched.step()
        ours.append(sched.get_last_lr())
        theirs.append(ref_sched.get_last_lr())
        assert [g["lr"] for g in opt.param_groups] == ours[-1]
    return ours, theirs


@requires_torch
@pytest.mark.parametrize("step_size, gamma", [(1, 0.7), (3, 0.1), (5, 0.5)])
def test_step_lr_matches_torch(step_size, gamma):
    opt, ref, sched, ref_sched = scheduler_pair(
        lambda o: lr_scheduler.StepLR(o, step_size, gamma=gamma),
        lambda o: torch.optim.lr_scheduler.StepLR(o, step_size, gamma=gamma))
    ours, theirs = lr_sequences(opt, ref, sched, ref_sched, 30)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)


@requires_torch
@pytest.mark.parametrize("t_max, eta_min", [(10, 0.0), (7, 0.01), (1, 0.0), (4, 0.05)])
def test_cosine_annealing_matches_torch_including_past_t_max(t_max, eta_min):
    opt, ref, sched, ref_sched = scheduler_pair(
        lambda o: lr_scheduler.CosineAnnealingLR(o, t_max, eta_min=eta_min),
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, t_max, eta_min=eta_min))
    ours, theirs = lr_sequences(opt, ref, sched, ref_sched, 3 * t_max + 5)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-15)


def test_cosine_annealing_recursive_form_follows_the_closed_form():
    p = make_params(initial_arrays())
    opt = optim.SGD(p, lr=0.2)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=8, eta_min=0.02)
    for epoch in range(1, 9):
        opt.step()
        sched.step()
        expected = 0.02 + (0.2 - 0.02) * (1 + math.cos(math.pi * epoch / 8)) / 2
        assert sched.get_last_lr()[0] == pytest.approx(expected, rel=1e-12)
    assert sched.get_last_lr()[0] == pytest.approx(0.02)


def test_step_lr_closed_form_and_manual_lr_changes():
    p = make_params(initial_arrays())
    opt = optim.SGD(p, lr=1.0)
    sched = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    assert sched.get_last_lr() == [1.0] and opt.param_groups[0]["initial_lr"] == 1.0
    for _ in range(4):
        sched.step()
    assert sched.get_last_lr() == [0.25]
    sched.step(epoch=7)                  # jumps to the closed form
    assert sched.get_last_lr() == [0.125]


@requires_torch
@pytest.mark.parametrize("kind", ["step", "cosine"])
def test_scheduler_state_dict_round_trip_and_resume_match_torch(kind):
    def ours_of(o):
        return (lr_scheduler.StepLR(o, 3, gamma=0.5) if kind == "step"
                else lr_scheduler.CosineAnnealingLR(o, 6, eta_min=0.001))

    def theirs_of(o):
        return (torch.optim.lr_scheduler.StepLR(o, 3, gamma=0.5) if kind == "step"
                else torch.optim.lr_scheduler.CosineAnnealingLR(o, 6, eta_min=0.001))

    opt, ref, sched, ref_sched = scheduler_pair(ours_of, theirs_of)
    lr_sequences(opt, ref, sched, ref_sched, 5)
    state = sched.state_dict()
    torch_state = ref_sched.state_dict()
    for key in ("base_lrs", "last_epoch", "_step_count", "_last_lr"):
        np.testing.assert_allclose(state[key], torch_state[key], rtol=1e-12)
    assert "optimizer" not in state

    # a fresh scheduler on the same optimizer, loaded from the state dict, carries on
    fresh = ours_of(opt)
    fresh.load_state_dict(state)
    for group, lr in zip(opt.param_groups, state["_last_lr"]):
        group["lr"] = lr
    ours, theirs = lr_sequences(opt, ref, fresh, ref_sched, 10)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)


@requires_torch
def test_resuming_with_last_epoch_matches_torch():
    opt, ref, _, _ = scheduler_pair(lambda o: None, lambda o: None)
    for group in opt.param_groups + ref.param_groups:
        group["initial_lr"] = group["lr"]
    sched = lr_scheduler.CosineAnnealingLR(opt, 10, last_epoch=4)
    ref_sched = torch.optim.lr_scheduler.CosineAnnealingLR(ref, 10, last_epoch=4)
    ours, theirs = lr_sequences(opt, ref, sched, ref_sched, 8)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)


def test_scheduler_errors():
    p = make_params(initial_arrays())
    with pytest.raises(TypeError, match="is not an Optimizer"):
        lr_scheduler.StepLR(object(), 1)
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(optim.SGD(p, lr=0.1), 1, last_epoch=3)
    with pytest.raises(ValueError, match="step_size"):
        lr_scheduler.StepLR(optim.SGD(p, lr=0.1), 0)
    with pytest.raises(ValueError, match="T_max"):
        lr_scheduler.CosineAnnealingLR(optim.SGD(p, lr=0.1), 0)


def test_load_state_dict_accepts_a_step_stored_as_a_number():
    params = make_params(initial_arrays())
    opt = optim.Adam(params, lr=0.01)
    set_grads(params, next(gradient_stream()))
    opt.step()
    sd = opt.state_dict()
    for values in sd["state"].values():
        values["step"] = 1.0                   # how older PyTorch versions stored it
    other = optim.Adam(make_params(initial_arrays()), lr=0.01)
    other.load_state_dict(sd)
    step = other.state_dict()["state"][0]["step"]
    assert isinstance(step, Tensor) and step.shape == () and step.dtype == np.float32
    set_grads(other.param_groups[0]["params"], next(gradient_stream()))
    other.step()
    assert other.state_dict()["state"][0]["step"].item() == 2.0


# ----------------------------------------------------------------------------- bad state / grads
ALL_OPTIMIZERS = [
    lambda p: optim.SGD(p, lr=0.1),
    lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
    lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
    lambda p: optim.Adam(p, lr=0.01, amsgrad=True),
    lambda p: optim.AdamW(p),
    lambda p: optim.Adadelta(p),
]
ALL_OPTIMIZER_IDS = ["SGD", "SGD-momentum", "SGD-nesterov", "Adam", "AdamW", "Adadelta"]

RESUME_WITH_OTHER_MODELS_STATE = r'''
import numpy as np
from tinygrad_cv import optim
from tinygrad_cv.tensor import Tensor

def params(shapes):
    return [Tensor(np.ones(s, np.float32), requires_grad=True) for s in shapes]

# two models with the same parameter count but other shapes (small vs. big layers)
trained = params([(4000,), (3,)])
opt = optim.SGD(trained, lr=0.1, momentum=0.9)
for p in trained:
    p.grad = Tensor(np.ones(p.shape, np.float32))
opt.step()
state = opt.state_dict()

resumed = params([(3,), (4000,)])
opt = optim.SGD(resumed, lr=0.1, momentum=0.9)
try:
    opt.load_state_dict(state)
except ValueError as exc:
    print("ValueError:", exc)
for p in resumed:
    p.grad = Tensor(np.ones(p.shape, np.float32))
for _ in range(3):
    opt.step()
print("finite:", all(np.isfinite(p.numpy()).all() for p in resumed))
print("values:", sorted({round(float(v), 4) for p in resumed for v in p.numpy()}))
'''


def test_resuming_sgd_state_of_another_model_is_refused_not_a_crash(tmp_path):
    """Regression (issue 11.1): the fused SGD kernel wrote past a too-small momentum
    buffer (SIGSEGV / heap corruption). Run in a subprocess: on the old code it crashed."""
    import subprocess
    import sys
    script = tmp_path / "resume.py"
    script.write_text(RESUME_WITH_OTHER_MODELS_STATE)
    root = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=root, env=dict(__import__("os").environ, PYTHONPATH=root),
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert ("ValueError: load_state_dict: state 'momentum_buffer' of parameter 0 of param "
            "group 0 has shape (4000,) but the parameter has shape (3,)") in proc.stdout
    # the refused load left the fresh optimizer as it was: three plain momentum steps
    assert "finite: True" in proc.stdout
    assert "values: [0.439]" in proc.stdout, proc.stdout   # 1 - 0.1 * (1 + 1.9 + 2.71)


@pytest.mark.parametrize("make", ALL_OPTIMIZERS[1:], ids=ALL_OPTIMIZER_IDS[1:])
def test_load_state_dict_checks_every_state_shape_and_dtype_before_changing_anything(make):
    params = make_params(initial_arrays())
    opt = make(params)
    grads = gradient_stream()
    set_grads(params, next(grads))
    opt.step()
    sd = opt.state_dict()
    before_state = {k: {n: (v.numpy().copy() if isinstance(v, Tensor) else v)
                        for n, v in vals.items()} for k, vals in opt.state_dict()["state"].items()}
    before_groups = [dict(g) for g in opt.param_groups]
    for name in list(sd["state"].get(2, {})):
        if name == "step" or sd["state"][2][name] is None:
            continue
        for bad, pattern in [
            (Tensor(np.zeros((3, 3, 2), np.float32)),
             rf"state '{name}' of parameter 2 of param group 0 has shape \(3, 3, 2\) but the "
             rf"parameter has shape \(2, 3, 3\)"),
            (Tensor(np.zeros(18, np.float32)), r"has shape \(18,\) but the parameter has shape"),
            (Tensor(np.zeros((2, 3, 3), np.int64), dtype=np.int64), r"has dtype int64"),
        ]:
            broken = {"param_groups": sd["param_groups"],
                      "state": {k: dict(v) for k, v in sd["state"].items()}}
            broken["state"][2][name] = bad
            with pytest.raises(ValueError, match=pattern):
                opt.load_state_dict(broken)
            assert [dict(g) for g in opt.param_groups] == before_groups
            for k, vals in opt.state_dict()["state"].items():
                for n, v in vals.items():
                    if isinstance(v, Tensor):
                        np.testing.assert_array_equal(v.numpy(), before_state[k][n])
    assert sd["state"][2], "the optimizer keeps state, so the checks above ran"
    if "step" in sd["state"][0]:
        broken = {"param_groups": sd["param_groups"],
                  "state": {k: dict(v) for k, v in sd["state"].items()}}
        broken["state"][0]["step"] = Tensor(np.zeros(3, np.float32))
        with pytest.raises(ValueError, match="state 'step' of parameter 0 .* one number"):
            opt.load_state_dict(broken)


def test_load_state_dict_rejects_malformed_indices_and_groups():
    params = make_params(initial_arrays())
    opt = optim.SGD(params, lr=0.1)
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="parameter index 'x' is not an integer"):
        opt.load_state_dict({"state": {}, "param_groups": [{"params": ["x", 1, 2], "lr": 0.1}]})
    with pytest.raises(ValueError, match="index 1 appears more than once"):
        opt.load_state_dict({"state": {}, "param_groups": [{"params": [1, 1, 2], "lr": 0.1}]})
    with pytest.raises(ValueError, match="'param_groups' must be a list of dicts"):
        opt.load_state_dict({"state": {}, "param_groups": [5]})
    with pytest.raises(ValueError, match="'state' must be a dict"):
        opt.load_state_dict({"state": [], "param_groups": sd["param_groups"]})
    with pytest.raises(ValueError, match="group 0 has 3 params saved, 2 in the optimizer"):
        optim.SGD(params[:2], lr=0.1).load_state_dict(sd)


@pytest.mark.parametrize("bad_grad, pattern", [
    (lambda p: Tensor(np.ones(p.size + 7, np.float32)), "shape"),
    (lambda p: Tensor(np.ones((1,) + p.shape, np.float32)), "shape"),
    (lambda p: Tensor(np.ones(p.shape, np.float64), dtype=np.float64), "dtype float64"),
    (lambda p: Tensor(np.ones(p.shape, np.int64), dtype=np.int64), "dtype int64"),
], ids=["longer", "broadcastable", "float64", "int64"])
def test_assigning_a_grad_of_the_wrong_shape_or_dtype_is_refused_like_torch(bad_grad, pattern):
    p = Tensor(np.ones((4, 3), np.float32), requires_grad=True)
    with pytest.raises(RuntimeError, match=f"grad: attempting to assign a gradient of {pattern}"):
        p.grad = bad_grad(p.numpy())
    assert p.grad is None
    with pytest.raises(TypeError, match="expected to be a Tensor or None"):
        p.grad = np.ones((4, 3), np.float32)
    p.grad = Tensor(np.ones((4, 3), np.float32))     # the right one is accepted
    p.grad = None


BAD_STEP_INPUTS = [
    ("grad_data_shorter", r"the gradient of parameter 1 of param group 0 has shape \(2,\) "
                          r"but the parameter has shape \(4,\)"),
    ("grad_data_longer", r"the gradient of parameter 1 .* has shape \(4000,\)"),
    ("grad_data_broadcasts", r"the gradient of parameter 1 .* has shape \(1,\)"),
    ("grad_data_float64", r"the gradient of parameter 1 .* has dtype float64 but the "
                          r"parameter has dtype float32"),
    ("param_data_replaced", r"the (gradient|state '\w+') of parameter 1 of param group 0 "
                            r"has shape \(4,\) but the parameter has shape \(9,\)"),
]


def check_step_refuses(make, corrupt, pattern):
    """One optimizer after one good step, then one bad input: step() must raise, naming
    the parameter, with no param or state changed."""
    params = make_params(initial_arrays())
    opt = make(params)
    grads = gradient_stream()
    set_grads(params, next(grads))
    opt.step()
    set_grads(params, next(grads))
    p = params[1]
    if corrupt == "grad_data_shorter":
        p.grad.data = np.ones(2, np.float32)
    elif corrupt == "grad_data_longer":
        p.grad.data = np.ones(4000, np.float32)
    elif corrupt == "grad_data_broadcasts":
        p.grad.data = np.ones(1, np.float32)
    elif corrupt == "grad_data_float64":
        p.grad.data = p.grad.data.astype(np.float64)
    else:
        p.data = np.ones(9, np.float32)
    before = [q.numpy().copy() for q in params]
    state_before = {id(k): {n: v.numpy().copy() for n, v in vals.items() if isinstance(v, Tensor)}
                    for k, vals in opt.state.items()}
    with pytest.raises(RuntimeError, match=f"{type(opt).__name__}.step: {pattern}"):
        opt.step()
    for q, b in zip(params, before):
        np.testing.assert_array_equal(q.numpy(), b)
    for k, vals in opt.state.items():
        for n, v in vals.items():
            if isinstance(v, Tensor):
                np.testing.assert_array_equal(v.numpy(), state_before[id(k)][n])


def test_every_optimizer_checks_grads_and_state_before_updating_anything(tmp_path):
    """Regression (issue 11.2): a user-made grad of the wrong size was read past its end by
    SGD's kernel (weights became NaN/3e38) and broadcast by Adam. Grads set around the
    `.grad` check (through `.data`) and params whose `.data` was replaced are caught by
    the base class's `step()`, before any param or state changes. Every optimizer and
    every bad input, in a subprocess: on the old code the kernel corrupted the heap."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    root = str(Path(__file__).resolve().parents[1])
    script = ("from tests.test_optim import ALL_OPTIMIZERS, BAD_STEP_INPUTS, check_step_refuses\n"
              "n = 0\n"
              "for make in ALL_OPTIMIZERS:\n"
              "    for corrupt, pattern in BAD_STEP_INPUTS:\n"
              "        check_step_refuses(make, corrupt, pattern)\n"
              "        n += 1\n"
              "print('checked', n)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=root, env=dict(os.environ, PYTHONPATH=root), timeout=300)
    assert proc.returncode == 0, proc.stdout[-1000:] + proc.stderr[-3000:]
    assert f"checked {len(ALL_OPTIMIZERS) * len(BAD_STEP_INPUTS)}" in proc.stdout
