"""nn.Module's traversal, registration, hook and freezing API, checked against torch.nn.

Each structure is built from the same source text in both frameworks (`m` is
tinygrad_cv or torch), then names, orders, state-dict keys and hook effects are compared.
"""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cv as tc
from tests.helpers import requires_torch, torch


def build(m):
    """A small net with nesting, a shared module, a buffer and a non-persistent buffer."""
    nn = m.nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 3, 3, padding=1)
            self.bn = nn.BatchNorm2d(3)
            self.register_buffer("scale", m.ones(3))
            self.register_buffer("cache", m.zeros(2), persistent=False)

        def forward(self, x):
            return self.bn(self.conv(x)) * self.scale.reshape(1, 3, 1, 1)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Block()
            shared = nn.Linear(4, 4)
            self.seq = nn.Sequential(shared, nn.ReLU(), shared)
            self.register_parameter("temperature", nn.Parameter(m.ones(1)))
            self.add_module("head", nn.Linear(4, 2))

    return Net()


@requires_torch
def test_traversal_names_and_order_match_torch():
    ours, theirs = build(tc), build(torch)
    for method in ("named_modules", "named_children", "named_parameters", "named_buffers"):
        a = [name for name, _ in getattr(ours, method)()]
        b = [name for name, _ in getattr(theirs, method)()]
        assert a == b, method
    assert [type(x).__name__ for x in ours.modules()] == \
        [type(x).__name__ for x in theirs.modules()]
    assert [type(x).__name__ for x in ours.children()] == \
        [type(x).__name__ for x in theirs.children()]
    assert len(list(ours.buffers())) == len(list(theirs.buffers()))
    # duplicates listed when asked
    a = [n for n, _ in ours.named_modules(remove_duplicate=False)]
    b = [n for n, _ in theirs.named_modules(remove_duplicate=False)]
    assert a == b
    assert [n for n, _ in ours.named_buffers(recurse=False)] == []
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert "block.cache" not in ours.state_dict() and "block.scale" in ours.state_dict()


@requires_torch
def test_non_persistent_buffer_is_moved_but_not_saved_or_loaded():
    ours = build(tc)
    sd = ours.state_dict()
    assert "block.cache" not in sd
    ours.load_state_dict(sd)                       # strict: no key missing
    ours.double()
    assert ours.block.cache.dtype == np.float64
    ours.block.register_buffer("cache", tc.zeros(2), persistent=True)
    assert "block.cache" in ours.state_dict()


def test_get_submodule_parameter_buffer():
    net = build(tc)
    assert net.get_submodule("block.bn") is net.block.bn
    assert net.get_submodule("") is net
    assert net.get_parameter("block.conv.weight") is net.block.conv.weight
    assert net.get_buffer("block.bn.running_mean") is net.block.bn.running_mean
    with pytest.raises(AttributeError, match="nope"):
        net.get_submodule("block.nope")
    with pytest.raises(AttributeError, match="missing"):
        net.get_parameter("block.conv.missing")


def test_register_errors():
    m = tc.nn.Module()
    with pytest.raises(KeyError):
        m.register_buffer("a.b", tc.zeros(1))
    with pytest.raises(TypeError):
        m.register_parameter("w", tc.zeros(1))       # not a Parameter
    with pytest.raises(TypeError):
        m.add_module("sub", 3)
    m.register_parameter("w", None)
    assert list(m.named_parameters()) == []
    m.w = tc.nn.Parameter(tc.ones(2))
    assert [n for n, _ in m.named_parameters()] == ["w"]


def test_apply_visits_children_first_then_self():
    net = build(tc)
    seen = []
    out = net.apply(lambda mod: seen.append(type(mod).__name__))
    assert out is net
    assert seen[-1] == "Net" and seen[0] == "Conv2d"
    assert seen.index("Block") > seen.index("BatchNorm2d")


@requires_torch
def test_forward_hooks_and_pre_hooks_match_torch():
    def run(m):
        torch.manual_seed(0)
        lin = m.nn.Linear(3, 2)
        calls = []
        h1 = lin.register_forward_pre_hook(lambda mod, args: (args[0] * 2,))
        h2 = lin.register_forward_hook(lambda mod, args, out: out + 1)
        h3 = lin.register_forward_hook(lambda mod, args, out: calls.append("late"))
        h4 = lin.register_forward_hook(lambda mod, args, out: calls.append("early"),
                                       prepend=True)
        h5 = lin.register_forward_pre_hook(lambda mod, args, kwargs: ((args[0] - 1,), kwargs),
                                           with_kwargs=True)
        x = m.ones(1, 3)
        with m.no_grad():
            lin.weight.copy_(m.tensor([[0.1, 0.2, 0.3], [-0.4, 0.5, -0.6]]))
            lin.bias.copy_(m.tensor([0.01, -0.02]))
        first = lin(x).detach().numpy().copy()
        for h in (h1, h2, h3, h4, h5):
            h.remove()
        plain = lin(x).detach().numpy().copy()
        return first, plain, calls

    a, b = run(tc), run(torch)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-6)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-6)
    assert a[2] == b[2] == ["early", "late"]


def test_hook_handle_as_context_manager_and_kwargs_forward_hook():
    lin = tc.nn.Linear(2, 2)
    seen = []
    with lin.register_forward_hook(lambda mod, args, kwargs, out: seen.append(kwargs),
                                   with_kwargs=True):
        lin(tc.ones(1, 2))
    lin(tc.ones(1, 2))
    assert seen == [{}]
    with pytest.raises(TypeError):
        lin.register_forward_hook(3)


def test_pre_hook_non_tuple_result_becomes_single_argument():
    ident = tc.nn.Identity()
    ident.register_forward_pre_hook(lambda mod, args: tc.full((2,), 5.0))
    np.testing.assert_array_equal(ident(tc.zeros(2)).numpy(), [5.0, 5.0])


# ----------------------------------------------------------------------------- freezing

def _backbone_and_head(m):
    nn = m.nn
    backbone = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(),
                             nn.Flatten())
    head = nn.Linear(4 * 4 * 4, 3)
    return backbone, head


@requires_torch
def test_frozen_backbone_fine_tuning_matches_torch_and_records_no_backbone_graph():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 1, 8, 8))
    y = rng.integers(0, 3, 5)
    results = {}
    for m in (tc, torch):
        backbone, head = _backbone_and_head(m)
        backbone.double()
        head.double()
        results[m.__name__] = (backbone, head)
    (tb, th), (rb, rh) = results["tinygrad_cv"], results["torch"]
    # the same initial weights in both
    tb.load_state_dict({k: v.detach().numpy() for k, v in rb.state_dict().items()})
    th.load_state_dict({k: v.detach().numpy() for k, v in rh.state_dict().items()})
    frozen_before = [p.numpy().copy() for p in tb.parameters()]
    for b in (tb, rb):
        b.requires_grad_(False)
    opt_t = tc.optim.SGD([p for p in list(tb.parameters()) + list(th.parameters())
                          if p.requires_grad], lr=0.1, momentum=0.9)
    opt_r = torch.optim.SGD([p for p in list(rb.parameters()) + list(rh.parameters())
                             if p.requires_grad], lr=0.1, momentum=0.9)
    # an optimizer given the frozen parameters too must leave them alone (grad None)
    opt_all = tc.optim.Adam(list(tb.parameters()), lr=1.0)
    for _ in range(3):
        feats = tb(tc.tensor(x, dtype=tc.float64))
        assert feats.grad_fn is None, "a frozen backbone on a plain input records no graph"
        loss = tc.nn.functional.cross_entropy(th(feats), tc.tensor(y))
        opt_t.zero_grad()
        loss.backward()
        opt_t.step()
        opt_all.step()
        loss_r = torch.nn.functional.cross_entropy(rh(rb(torch.tensor(x))), torch.tensor(y))
        opt_r.zero_grad()
        loss_r.backward()
        opt_r.step()
        np.testing.assert_allclose(loss.item(), loss_r.item(), rtol=1e-12)
    assert all(p.grad is None for p in tb.parameters())
    for before, p in zip(frozen_before, tb.parameters()):
        np.testing.assert_array_equal(p.numpy(), before)
    for a, b in zip(th.parameters(), rh.parameters()):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_frozen_middle_conv_computes_no_weight_gradient():
    """conv1 trains, conv2 is frozen: conv2's node needs only its input gradient, so its
    backward skips dW (the op computes only what needs_input_grad asks for)."""
    nn = tc.nn
    conv1, conv2 = nn.Conv2d(1, 3, 3), nn.Conv2d(3, 2, 3)
    conv2.requires_grad_(False)
    h = conv1(tc.randn(2, 1, 8, 8))
    out = conv2(h)
    assert out.grad_fn.needs_input_grad == (True, False, False)
    out.sum().backward()
    assert conv2.weight.grad is None and conv2.bias.grad is None
    assert conv1.weight.grad is not None and np.any(conv1.weight.grad.numpy())
    # unfreezing brings the gradient back
    conv2.requires_grad_(True)
    conv2(conv1(tc.randn(2, 1, 8, 8))).sum().backward()
    assert conv2.weight.grad is not None


def test_deepcopy_gives_an_independent_module_with_its_hooks():
    """EMA and model-averaging code deep-copies a model (with lazy layers and hooks)."""
    import copy
    net = tc.nn.Sequential(tc.nn.LazyLinear(3), tc.nn.GELU(), tc.nn.LayerNorm(3))
    net(tc.ones(2, 4))
    calls = []
    net.register_forward_hook(lambda mod, args, out: calls.append(1))
    twin = copy.deepcopy(net)
    assert type(twin[0]) is tc.nn.Linear
    x = tc.randn(2, 4)
    np.testing.assert_array_equal(twin(x).numpy(), net(x).numpy())
    assert calls == [1, 1]
    with tc.no_grad():
        twin[0].weight.fill_(0.0)
    assert np.any(net[0].weight.numpy() != 0)
    assert twin[0].weight is not net[0].weight


@requires_torch
def test_parameter_list_and_dict_register_like_torch():
    def build(m):
        class Net(m.nn.Module):
            def __init__(self):
                super().__init__()
                self.scales = m.nn.ParameterList([m.nn.Parameter(m.ones(2)), m.zeros(3)])
                self.scales.append(m.nn.Parameter(m.ones(1)))
                self.table = m.nn.ParameterDict({"a": m.nn.Parameter(m.ones(2, 2))})
                self.table["b"] = m.nn.Parameter(m.zeros(1))

            def forward(self, x):
                return x * self.scales[0].sum() + self.table["a"].sum()
        return Net()

    ours, theirs = build(tc), build(torch)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert len(ours.scales) == 3 and isinstance(ours.scales[1], tc.nn.Parameter)
    assert list(ours.table.keys()) == ["a", "b"] and "b" in ours.table
    ours.scales[1] = tc.nn.Parameter(tc.full((3,), 2.0))
    assert ours.scales[1].numpy().tolist() == [2.0, 2.0, 2.0]
    out = ours(tc.ones(2))
    out.sum().backward()
    assert ours.scales[0].grad is not None and ours.table["a"].grad is not None
    assert len(ours.scales[:2]) == 2 and ours.table.pop("b").shape == (1,)


def _gradcam_net(m):
    nn = m.nn
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5))


@requires_torch
def test_full_backward_hooks_match_torch_gradcam_style():
    """Grad-CAM's recipe: a forward hook keeps a layer's activation, a full backward hook
    its output gradient; a hook returning a scaled grad_input changes the earlier
    layers' gradients exactly as in torch; pre-hooks may replace grad_output."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 7, 7))
    results = {}
    for m in (torch, tc):
        if m is torch:
            torch.manual_seed(0)
            net = _gradcam_net(torch).double()
            state = {k: v.detach().numpy() for k, v in net.state_dict().items()}
        else:
            net = _gradcam_net(tc).double()
            net.load_state_dict(state)
        seen = {}
        layer = net[2]
        h1 = layer.register_forward_hook(lambda mod, a, out: seen.__setitem__("act", out))
        h2 = layer.register_full_backward_hook(
            lambda mod, gi, go: seen.__setitem__("grads", (gi, go)) or (gi[0] * 2.0,))
        h3 = net[6].register_full_backward_pre_hook(lambda mod, go: (go[0] * 0.5,))
        first = net[0]
        inp = m.tensor(x, dtype=m.float64, requires_grad=True)
        out = net(inp)
        out[:, 1].sum().backward()
        gi, go = seen["grads"]
        results[m.__name__] = dict(
            act=seen["act"].detach().numpy().copy(), go=go[0].numpy().copy(),
            gi=gi[0].numpy().copy(), w0=first.weight.grad.numpy().copy(),
            x=inp.grad.numpy().copy())
        for h in (h1, h2, h3):
            h.remove()
        net.zero_grad()
        net(m.tensor(x, dtype=m.float64)).sum().backward()       # hooks gone
        results[m.__name__]["plain_w0"] = first.weight.grad.numpy().copy()
    for key in results["torch"]:
        np.testing.assert_allclose(results["tinygrad_cv"][key], results["torch"][key],
                                   rtol=1e-10, atol=1e-12, err_msg=key)


def test_backward_hook_on_a_layer_whose_input_needs_no_grad():
    conv = tc.nn.Conv2d(1, 2, 3)
    calls = []
    conv.register_full_backward_hook(lambda mod, gi, go: calls.append((gi, go[0].shape)))
    conv(tc.randn(1, 1, 5, 5)).sum().backward()
    assert calls == [((None,), (1, 2, 3, 3))]
    with tc.no_grad():
        conv(tc.randn(1, 1, 5, 5))
    assert len(calls) == 1


@requires_torch
def test_tensor_register_hook_and_retain_grad_match_torch():
    def run(m):
        x = m.tensor([1.0, -2.0, 3.0], requires_grad=True)
        handle = x.register_hook(lambda g: g + 1)          # leaf: before the graph is built
        grads = []
        for step in range(2):                              # hooks persist across graphs
            h = x * 2
            h.retain_grad()
            seen = []
            h.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 3)
            (h * h).sum().backward()
            grads.append((x.grad.numpy().copy(), h.grad.numpy().copy(), seen[0],
                          h.retains_grad))
        handle.remove()
        x.grad = None
        (x * x).sum().backward()
        grads.append(x.grad.numpy().copy())
        return grads

    ours, theirs = run(tc), run(torch)
    for a, b in zip(ours[:2], theirs[:2]):
        for u, v in zip(a, b):
            np.testing.assert_allclose(u, v)
    np.testing.assert_allclose(ours[2], theirs[2])
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        tc.ones(2).register_hook(lambda g: g)
