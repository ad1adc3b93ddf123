"""nn: Module bookkeeping, containers, reprs and state dicts against PyTorch, layer parity
(outputs and input/weight/bias gradients), BatchNorm running statistics, Dropout, init
distributions, and clear errors that change nothing."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_cv as tc
from tinygrad_cv import nn
from tinygrad_cv.nn import functional as F
from tinygrad_cv.nn import init
from tests.helpers import requires_torch, torch_parity

try:
    import torch
except ImportError:
    torch = None

rng = np.random.default_rng(0)


# ----------------------------------------------------------------------------- architectures
# Each builder takes a framework's `nn` module, so the same code builds ours and torch's.

def mnist_net(nn):
    """pytorch/examples mnist/main.py's Net."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 3, 1)
            self.conv2 = nn.Conv2d(32, 64, 3, 1)
            self.dropout1 = nn.Dropout(0.25)
            self.dropout2 = nn.Dropout(0.5)
            self.fc1 = nn.Linear(9216, 128)
            self.fc2 = nn.Linear(128, 10)

        def forward(self, x):
            f = nn.functional
            x = f.relu(self.conv1(x))
            x = f.relu(self.conv2(x))
            x = f.max_pool2d(x, 2)
            x = self.dropout1(x)
            x = x.flatten(1)
            x = f.relu(self.fc1(x))
            x = self.dropout2(x)
            return f.log_softmax(self.fc2(x), dim=1)

    return Net()


def lenet5(nn):
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))


def mlp(nn):
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 32),
        nn.BatchNorm1d(32), nn.LeakyReLU(0.1), nn.Linear(32, 10), nn.LogSoftmax(dim=1))


def small_cnn(nn):
    return nn.Sequential(
        nn.Conv2d(3, 8, (3, 5), stride=(2, 1), padding=(1, 2), bias=False),
        nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
        nn.Conv2d(8, 8, 3, padding=1, dilation=1, groups=4), nn.Sigmoid(),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(8, 4), nn.Softmax(dim=-1))


ARCHITECTURES = [mnist_net, lenet5, mlp, small_cnn]


def torch_copy_into_ours(ours, theirs):
    """Load torch's weights into our module (torch tensors are accepted directly)."""
    ours.load_state_dict(theirs.state_dict())


# ----------------------------------------------------------------------------- registration

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(tc.ones(3))
        self.inner = nn.Linear(3, 2)
        self.register_buffer("counter", tc.zeros(1))
        self.register_buffer("scratch", tc.zeros(2), persistent=False)
        self.offset = nn.Parameter(tc.zeros(2))


def test_registration_order_and_dotted_names():
    model = nn.Sequential(Block(), nn.ReLU(), Block())
    assert [n for n, _ in model.named_parameters()] == [
        "0.scale", "0.offset", "0.inner.weight", "0.inner.bias",
        "2.scale", "2.offset", "2.inner.weight", "2.inner.bias"]
    assert [n for n, _ in model.named_buffers()] == ["0.counter", "0.scratch", "2.counter",
                                                     "2.scratch"]
    assert list(model.state_dict()) == [
        "0.scale", "0.offset", "0.counter", "0.inner.weight", "0.inner.bias",
        "2.scale", "2.offset", "2.counter", "2.inner.weight", "2.inner.bias"]
    assert [n for n, _ in model.named_modules()] == ["", "0", "0.inner", "1", "2", "2.inner"]
    assert [n for n, _ in model.named_children()] == ["0", "1", "2"]
    assert len(list(model[0].parameters(recurse=False))) == 2
    assert len(list(model.modules())) == 6


@requires_torch
def test_registration_matches_torch_module():
    def build(nn, ones):
        class TorchLike(nn.Module):
            def __init__(self):
                super().__init__()
                self.a = nn.Linear(2, 2)
                self.p = nn.Parameter(ones(2))
                self.seq = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
                self.blocks = nn.ModuleList([nn.Linear(3, 3) for _ in range(2)])
                self.heads = nn.ModuleDict({"x": nn.Linear(3, 1), "y": nn.Identity()})
        return TorchLike()

    ours, theirs = build(nn, tc.ones), build(torch.nn, torch.ones)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_shared_parameters_listed_once_and_reassignment():
    lin = nn.Linear(2, 2)
    model = nn.Sequential(lin, lin)
    assert len(list(model.parameters())) == 2
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    lin.bias = None
    assert [n for n, _ in lin.named_parameters()] == ["weight"]
    with pytest.raises(TypeError, match="cannot assign"):
        lin.weight = tc.ones(2, 2)
    del model[1]
    assert len(model) == 1


def test_containers():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear)
    assert isinstance(seq[1:], nn.Sequential) and len(seq[1:]) == 2
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    seq.append(nn.Sigmoid())
    assert list(seq._modules) == ["0", "1", "2", "3"]
    out = seq(tc.randn(4, 2))
    assert out.shape == (4, 1) and np.all((out.numpy() > 0) & (out.numpy() < 1))
    layers = nn.ModuleList([nn.Linear(2, 2)])
    layers += [nn.ReLU()]
    layers.append(nn.Linear(2, 2))
    assert len(layers) == 3 and len(list(layers.parameters())) == 4
    heads = nn.ModuleDict({"a": nn.Linear(1, 1)})
    heads["b"] = nn.Identity()
    assert list(heads.keys()) == ["a", "b"] and "b" in heads


def test_train_eval_flags_are_per_module():
    model = mlp(nn)
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model[3].train()
    assert model[3].training and not model[1].training and not model.training
    model.train()
    assert all(m.training for m in model.modules())


def test_zero_grad_apply_and_to_keep_identity(device):
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    params = list(model.parameters())
    buffers = list(model.buffers())
    assert model.to(device) is model
    assert all(a is b for a, b in zip(params, model.parameters()))
    assert all(a is b for a, b in zip(buffers, model.buffers()))
    assert all(t.device == device for t in params + buffers)
    model(tc.randn(4, 3, device=device)).sum().backward()
    assert all(p.grad.device == device for p in params)
    assert all(p.grad is not None for p in params)
    model.zero_grad(set_to_none=False)
    assert all(not np.any(p.grad.numpy()) for p in params)
    model.zero_grad()
    assert all(p.grad is None for p in params)
    assert model.to("cpu") is model
    assert all(a is b for a, b in zip(params, model.parameters()))
    assert all(t.device == "cpu" for t in params + buffers)
    model.double()
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model[1].num_batches_tracked.dtype == np.int64       # integer buffers stay
    seen = []
    model.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "BatchNorm1d", "Sequential"]


# ----------------------------------------------------------------------------- repr / state dict

@requires_torch
@pytest.mark.parametrize("build", ARCHITECTURES)
def test_repr_and_state_dict_match_torch(build):
    ours, theirs = build(nn), build(torch.nn)
    assert repr(ours) == repr(theirs)
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    for key in theirs_sd:
        assert ours_sd[key].shape == tuple(theirs_sd[key].shape), key
        assert ours_sd[key].dtype == np.dtype(str(theirs_sd[key].dtype).replace("torch.", ""))


@requires_torch
@pytest.mark.parametrize("ours, theirs", [
    (lambda nn: nn.Conv2d(4, 8, 3, stride=2, padding=1, dilation=2, groups=2, bias=False,
                          padding_mode="reflect"), None),
    (lambda nn: nn.Conv2d(1, 2, (1, 3), padding="same"), None),
    (lambda nn: nn.MaxPool2d(3, 1, 1, ceil_mode=True), None),
    (lambda nn: nn.BatchNorm1d(5, momentum=None, affine=False, track_running_stats=False), None),
    (lambda nn: nn.LeakyReLU(0.2, inplace=True), None),
    (lambda nn: nn.ReLU(inplace=True), None),
    (lambda nn: nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2)]),
     None),
    (lambda nn: nn.ModuleList(), None),
    (lambda nn: nn.Unflatten(1, (2, 3)), None),
    (lambda nn: nn.Sequential(nn.Sequential(nn.Identity(), nn.Softmax(dim=0))), None),
])
def test_layer_reprs_match_torch(ours, theirs):
    assert repr(ours(nn)) == repr(ours(torch.nn))


@requires_torch
def test_load_torch_weights_gives_identical_forward_mlp():
    theirs = mlp(torch.nn).eval()
    ours = mlp(nn).eval()
    torch_copy_into_ours(ours, theirs)
    x = rng.standard_normal((5, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(ours(tc.Tensor(x)).numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), atol=1e-5)


@requires_torch
@pytest.mark.parametrize("build", [mnist_net, lenet5, small_cnn])
def test_load_torch_weights_gives_identical_forward_cnn(build):
    theirs, ours = build(torch.nn).eval(), build(nn).eval()
    torch_copy_into_ours(ours, theirs)
    channels = 3 if build is small_cnn else 1
    x = rng.standard_normal((2, channels, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(ours(tc.Tensor(x)).numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), atol=1e-4, rtol=1e-4)


@requires_torch
def test_state_dict_round_trip_into_torch():
    ours, theirs = mlp(nn), mlp(torch.nn)
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    for key, value in theirs.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), ours.state_dict()[key].numpy())


def test_state_dict_shares_storage_and_load_copies_in_place():
    model = nn.Linear(3, 2)
    weight = model.weight
    sd = model.state_dict()
    assert not sd["weight"].requires_grad and sd["weight"].data is weight.data
    new = {"weight": np.ones((2, 3), np.float32), "bias": tc.zeros(2)}
    assert model.load_state_dict(new) == ([], [])
    assert model.weight is weight and np.all(weight.numpy() == 1)


def test_load_state_dict_errors_change_nothing():
    model = mlp(nn)
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    good = {k: tc.Tensor(np.full(v.shape, 7, dtype=v.dtype)) for k, v in before.items()}

    bad_shape = dict(good)
    bad_shape["1.weight"] = tc.zeros(64, 783)
    with pytest.raises(RuntimeError, match=r"size mismatch for 1\.weight: copying a param with "
                       r"shape torch\.Size\(\[64, 783\]\) from checkpoint, the shape in current "
                       r"model is torch\.Size\(\[64, 784\]\)"):
        model.load_state_dict(bad_shape)
    with pytest.raises(RuntimeError, match="size mismatch"):
        model.load_state_dict(bad_shape, strict=False)   # shapes are checked even then

    missing = dict(good)
    del missing["7.bias"]
    missing["extra.weight"] = tc.zeros(1)
    with pytest.raises(RuntimeError, match=r'Error\(s\) in loading state_dict for Sequential:'
                       r'\n\tMissing key\(s\) in state_dict: "7.bias". \n\tUnexpected key\(s\) '
                       r'in state_dict: "extra.weight". '):
        model.load_state_dict(missing)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)

    result = model.load_state_dict(missing, strict=False)
    assert result.missing_keys == ["7.bias"] and result.unexpected_keys == ["extra.weight"]
    assert np.all(model[1].weight.numpy() == 7) and np.all(model[7].bias.numpy() == before["7.bias"])

    without_counter = {k: v for k, v in good.items() if not k.endswith("num_batches_tracked")}
    assert model.load_state_dict(without_counter).missing_keys == []   # as torch accepts


# ----------------------------------------------------------------------------- layer parity

def module_parity(ours, theirs, x, atol=1e-5, rtol=1e-4, device="cpu"):
    """Copy torch's weights into ours, then compare output, input grad and every param grad
    (ours on `device`: moved there after the copy, so `Module.to` is exercised too)."""
    torch_copy_into_ours(ours, theirs)
    ours.to(device)
    xt = tc.Tensor(x, requires_grad=True, device=device)
    xth = torch.tensor(x, requires_grad=True)
    out, out_th = ours(xt), theirs(xth)
    np.testing.assert_allclose(out.numpy(), out_th.detach().numpy(), atol=atol, rtol=rtol)
    ((out + 1) ** 2).mean().backward()
    ((out_th + 1) ** 2).mean().backward()
    np.testing.assert_allclose(xt.grad.numpy(), xth.grad.numpy(), atol=atol, rtol=rtol,
                               err_msg="input grad")
    ours_params = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(ours_params[name].grad.numpy(), p.grad.numpy(), atol=atol,
                                   rtol=rtol, err_msg=f"grad of {name}")
    for name, b in theirs.named_buffers():
        np.testing.assert_allclose(dict(ours.named_buffers())[name].numpy(), b.numpy(),
                                   atol=atol, rtol=rtol, err_msg=f"buffer {name}")


LAYERS = [
    (lambda nn: nn.Linear(6, 4), (3, 6)),
    (lambda nn: nn.Linear(6, 4, bias=False), (2, 5, 6)),
    (lambda nn: nn.ReLU(), (4, 5)),
    (lambda nn: nn.LeakyReLU(), (4, 5)),
    (lambda nn: nn.LeakyReLU(0.3), (2, 3, 4)),
    (lambda nn: nn.Sigmoid(), (4, 5)),
    (lambda nn: nn.Tanh(), (4, 5)),
    (lambda nn: nn.Softmax(dim=1), (3, 4, 2)),
    (lambda nn: nn.LogSoftmax(dim=-1), (3, 7)),
    (lambda nn: nn.Flatten(), (2, 3, 4, 5)),
    (lambda nn: nn.Flatten(0, 2), (2, 3, 4, 5)),
    (lambda nn: nn.Unflatten(1, (2, 3)), (4, 6)),
    (lambda nn: nn.Identity(), (3, 3)),
    (lambda nn: nn.BatchNorm1d(4), (8, 4)),
    (lambda nn: nn.BatchNorm1d(3, affine=False), (5, 3, 4)),
    (lambda nn: nn.BatchNorm2d(3), (4, 3, 5, 5)),
    (lambda nn: nn.BatchNorm2d(3, bias=False, momentum=None), (2, 3, 4, 4)),
    (lambda nn: nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.LeakyReLU(0.05),
                              nn.Linear(8, 3), nn.LogSoftmax(dim=1)), (6, 5)),
]

CONV_LAYERS = [
    (lambda nn: nn.Conv2d(3, 4, 3), (2, 3, 7, 6)),
    (lambda nn: nn.Conv2d(4, 6, (2, 3), stride=(2, 1), padding=(1, 0), dilation=(1, 2),
                          groups=2), (2, 4, 8, 9)),
    (lambda nn: nn.Conv2d(2, 3, 4, padding="same", bias=False), (1, 2, 6, 6)),
    (lambda nn: nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), (1, 2, 5, 5)),
    (lambda nn: nn.MaxPool2d(2), (2, 3, 6, 6)),
    (lambda nn: nn.MaxPool2d(3, stride=2, padding=1), (2, 2, 7, 7)),
    (lambda nn: nn.AvgPool2d(2), (2, 3, 6, 6)),
    (lambda nn: nn.AvgPool2d(3, stride=2, padding=1), (2, 2, 7, 5)),
    (lambda nn: nn.AdaptiveAvgPool2d((1, 1)), (2, 3, 5, 5)),
    (lambda nn: nn.AdaptiveAvgPool2d(3), (2, 3, 7, 8)),
]


@requires_torch
@pytest.mark.parametrize("build, shape", LAYERS)
def test_layer_matches_torch(build, shape, device):
    module_parity(build(nn), build(torch.nn), rng.standard_normal(shape).astype(np.float32),
                  device=device)


@requires_torch
@pytest.mark.parametrize("build, shape", CONV_LAYERS)
def test_conv_pool_layer_matches_torch(build, shape, device):
    module_parity(build(nn), build(torch.nn), rng.standard_normal(shape).astype(np.float32),
                  atol=1e-4, device=device)


@requires_torch
def test_mnist_net_training_step_grads_match_torch(device):
    theirs, ours = mnist_net(torch.nn).eval(), mnist_net(nn).eval()   # eval: no dropout
    x = rng.standard_normal((4, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 4)
    torch_copy_into_ours(ours, theirs)
    ours.to(device)
    loss = F.nll_loss(ours(tc.Tensor(x, device=device)), tc.Tensor(y, device=device))
    loss_th = torch.nn.functional.nll_loss(theirs(torch.tensor(x)), torch.tensor(y))
    loss.backward()
    loss_th.backward()
    np.testing.assert_allclose(loss.item(), loss_th.item(), rtol=1e-5)
    ours_params = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(ours_params[name].grad.numpy(), p.grad.numpy(), atol=1e-5,
                                   rtol=1e-3, err_msg=name)


@requires_torch
def test_functional_forms_match_torch():
    tf = torch.nn.functional
    w = rng.standard_normal((4, 6)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    torch_parity(F.linear, tf.linear, rng.standard_normal((3, 6)).astype(np.float32), w, b)
    torch_parity(lambda x: F.leaky_relu(x, 0.2), lambda x: tf.leaky_relu(x, 0.2),
                 rng.standard_normal((3, 6)).astype(np.float32))
    torch_parity(lambda x: F.pad(x, (1, 2, 0, 1), value=3.0),
                 lambda x: tf.pad(x, (1, 2, 0, 1), value=3.0),
                 rng.standard_normal((2, 3, 4)).astype(np.float32))
    x = rng.standard_normal((4, 3, 2)).astype(np.float32)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    gamma, beta = rng.standard_normal(3).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    torch_parity(lambda x, g, bb: F.batch_norm(x, tc.Tensor(rm), tc.Tensor(rv), g, bb,
                                               training=True, momentum=0.3),
                 lambda x, g, bb: tf.batch_norm(x, torch.tensor(rm), torch.tensor(rv), g, bb,
                                                training=True, momentum=0.3),
                 x, gamma, beta)


# ----------------------------------------------------------------------------- batch norm

@requires_torch
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("build, shape", [
    (lambda nn, m: nn.BatchNorm1d(4, momentum=m), (6, 4)),
    (lambda nn, m: nn.BatchNorm1d(3, momentum=m, eps=1e-3), (5, 3, 7)),
    (lambda nn, m: nn.BatchNorm2d(3, momentum=m, affine=False), (4, 3, 5, 6)),
])
def test_batchnorm_running_stats_match_torch_over_steps(build, shape, momentum, device):
    ours, theirs = build(nn, momentum), build(torch.nn, momentum)
    torch_copy_into_ours(ours, theirs)
    ours.to(device)
    for step in range(4):
        x = (rng.standard_normal(shape) * (step + 1) + step).astype(np.float32)
        out, out_th = ours(tc.Tensor(x, device=device)), theirs(torch.tensor(x))
        np.testing.assert_allclose(out.numpy(), out_th.detach().numpy(), atol=1e-5)
    for name, buf in theirs.named_buffers():
        np.testing.assert_allclose(dict(ours.named_buffers())[name].numpy(), buf.numpy(),
                                   rtol=1e-5, atol=1e-6, err_msg=name)
    assert int(ours.num_batches_tracked.item()) == 4
    ours.eval(), theirs.eval()
    x = rng.standard_normal(shape).astype(np.float32)
    module_parity(ours, theirs, x, device=device)   # eval: running stats, grads through them
    assert int(ours.num_batches_tracked.item()) == 4


@requires_torch
def test_batchnorm_without_running_stats_uses_batch_stats_in_eval():
    ours, theirs = nn.BatchNorm2d(2, track_running_stats=False), \
        torch.nn.BatchNorm2d(2, track_running_stats=False)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "bias"]
    ours.eval(), theirs.eval()
    module_parity(ours, theirs, rng.standard_normal((3, 2, 4, 4)).astype(np.float32))


def test_batchnorm_gradcheck_float64(device):
    from tests.helpers import gradcheck
    rm = tc.zeros(3, dtype=np.float64, device=device)
    rv = tc.ones(3, dtype=np.float64, device=device)
    gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=True),
              rng.standard_normal((4, 3, 2, 2)), rng.standard_normal(3), rng.standard_normal(3),
              device=device)
    gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False),
              rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal(3),
              device=device)


def test_batchnorm_bad_input_changes_nothing():
    bn = nn.BatchNorm2d(3)
    bn(tc.randn(4, 3, 2, 2))
    state = {k: v.numpy().copy() for k, v in bn.state_dict().items()}
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\): expected 4D input \(got 3D"):
        bn(tc.randn(3, 2, 2))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\).*\(4, 5, 2, 2\) has 5 channels"):
        bn(tc.randn(4, 5, 2, 2))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(tc.randn(1, 3, 1, 1))
    for k, v in bn.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), state[k], err_msg=k)
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\): expected 2D or 3D input"):
        nn.BatchNorm1d(3)(tc.randn(2, 3, 4, 5))


# ----------------------------------------------------------------------------- dropout

def test_dropout_statistics_scaling_and_eval_identity(device):
    tc.manual_seed(0)
    drop = nn.Dropout(0.25)
    x = tc.ones(200, 500, requires_grad=True, device=device)
    y = drop(x)
    values = y.numpy()
    zero_fraction = np.mean(values == 0)
    assert abs(zero_fraction - 0.25) < 0.01
    np.testing.assert_allclose(np.unique(values), [0.0, 1 / 0.75], rtol=1e-6)
    assert abs(values.mean() - 1.0) < 0.02          # inverted scaling keeps the mean
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), values)   # gradient = the scaled mask
    drop.eval()
    assert drop(x) is x
    assert F.dropout(x, 0.5, training=False) is x
    assert np.all(F.dropout(x, 1.0).numpy() == 0)


def test_dropout_is_seeded(device):
    tc.manual_seed(123)
    a = nn.Dropout()(tc.ones(50, device=device)).numpy()
    tc.manual_seed(123)
    b = nn.Dropout()(tc.ones(50, device=device)).numpy()
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_dropout_mask_drawn_in_chunks_is_one_uniform_draw():
    """The CPU mask is drawn a chunk at a time; it must be exactly uniform >= p from the
    seeded generator's stream, as one whole draw (an odd size spanning several chunks)."""
    from tinygrad_cv.ops import activation
    shape = (3, activation.MASK_CHUNK + 12345)
    tc.manual_seed(7)
    y = F.dropout(tc.ones(*shape), 0.3).numpy()
    expected = np.random.default_rng(7).random(shape, dtype=np.float32) >= np.float32(0.3)
    np.testing.assert_array_equal(y != 0, expected)


# ----------------------------------------------------------------------------- init

def test_default_init_distributions_follow_torch_formulas():
    tc.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)                 # kaiming_uniform(a=sqrt(5)) == U(+-1/sqrt(fan_in))
    w = lin.weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound
    assert np.abs(lin.bias.numpy()).max() <= bound
    conv = nn.Conv2d(16, 32, (3, 5), groups=2)
    fan_in = 8 * 3 * 5
    w = conv.weight.numpy()
    assert conv.weight.shape == (32, 8, 3, 5)
    assert np.abs(w).max() <= 1 / math.sqrt(fan_in)
    assert abs(w.std() - 1 / math.sqrt(3 * fan_in)) < 0.05 / math.sqrt(fan_in)
    assert np.abs(conv.bias.numpy()).max() <= 1 / math.sqrt(fan_in)
    bn = nn.BatchNorm2d(4)
    assert np.all(bn.weight.numpy() == 1) and np.all(bn.bias.numpy() == 0)
    assert np.all(bn.running_var.numpy() == 1) and bn.num_batches_tracked.item() == 0


def test_init_functions(device):
    tc.manual_seed(1)
    t = tc.empty(200, 100, 3, 3, device=device)
    fan_in, fan_out = 100 * 9, 200 * 9
    init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")
    assert abs(t.numpy().std() - math.sqrt(2 / fan_out)) < 0.01 * math.sqrt(2 / fan_out)
    init.kaiming_uniform_(t, nonlinearity="relu")
    assert np.abs(t.numpy()).max() <= math.sqrt(6 / fan_in)
    init.xavier_uniform_(t, gain=2.0)
    assert np.abs(t.numpy()).max() <= 2.0 * math.sqrt(6 / (fan_in + fan_out))
    init.xavier_normal_(t)
    assert abs(t.numpy().std() - math.sqrt(2 / (fan_in + fan_out))) < 0.01 * math.sqrt(2 / (fan_in + fan_out))
    init.normal_(t, 3.0, 0.5)
    assert abs(t.numpy().mean() - 3.0) < 0.01 and abs(t.numpy().std() - 0.5) < 0.01
    init.uniform_(t, -2, -1)
    assert t.numpy().min() >= -2 and t.numpy().max() <= -1
    assert np.all(init.zeros_(t).numpy() == 0) and np.all(init.ones_(t).numpy() == 1)
    assert np.all(init.constant_(t, 0.5).numpy() == 0.5)
    p = nn.Parameter(tc.empty(3, 4))
    assert init.kaiming_uniform_(p) is p and p.grad_fn is None
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(tc.empty(5))


@requires_torch
@pytest.mark.parametrize("name, param", [("linear", None), ("conv2d", None), ("sigmoid", None),
                                         ("tanh", None), ("relu", None), ("leaky_relu", None),
                                         ("leaky_relu", 0.2), ("selu", None)])
def test_calculate_gain_matches_torch(name, param):
    assert init.calculate_gain(name, param) == pytest.approx(
        torch.nn.init.calculate_gain(name, param))


# ----------------------------------------------------------------------------- errors

def test_linear_bad_input_names_layer_and_shapes():
    lin = nn.Linear(9216, 128)
    with pytest.raises(ValueError, match=r"Linear\(in_features=9216, out_features=128, "
                       r"bias=True\): linear: input "
                       r"of shape \(64, 9215\) has 9215 features.*expected 9216"):
        lin(tc.zeros(64, 9215))
    with pytest.raises(ValueError, match="linear: input of shape"):
        F.linear(tc.zeros(2, 3), tc.zeros(4, 5))


def test_conv_bad_input_names_layer_and_shapes():
    conv = nn.Conv2d(1, 32, 3)
    weight = conv.weight.numpy().copy()
    with pytest.raises(ValueError, match=r"Conv2d\(1, 32, .*input has 3 channels.*in_channels=1"):
        conv(tc.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match=r"Conv2d.*expected a 3-D .* or 4-D .*got shape \(28, 28\)"):
        conv(tc.zeros(28, 28))
    with pytest.raises(ValueError, match=r"kernel size \(3, 3\).*larger than the padded input"):
        conv(tc.zeros(1, 1, 2, 5))
    np.testing.assert_array_equal(conv.weight.numpy(), weight)
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")
