"""conv_transpose2d / nn.ConvTranspose2d: a slow loop reference over hypothesis geometry,
float64 gradient checks, and PyTorch parity of the output and every gradient."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinygrad_cv as tc
from tinygrad_cv.ops.conv_transpose import conv_transpose2d

from tests.helpers import gradcheck, requires_torch, torch


def ref_conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation):
    """The definition: every input pixel scatters its weighted kernel into the output."""
    n, c_in, h, wd = x.shape
    _, c_out_g, kh, kw = w.shape
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
    out_h = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    out_w = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    y = np.zeros((n, c_out_g * groups, out_h, out_w))
    c_in_g = c_in // groups
    for b_ in range(n):
        for ci in range(c_in):
            g = ci // c_in_g
            for i in range(h):
                for j in range(wd):
                    for ki in range(kh):
                        for kj in range(kw):
                            oi, oj = i * sh - ph + ki * dh, j * sw - pw + kj * dw
                            if 0 <= oi < out_h and 0 <= oj < out_w:
                                y[b_, g * c_out_g:(g + 1) * c_out_g, oi, oj] += \
                                    x[b_, ci, i, j] * w[ci, :, ki, kj]
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


@st.composite
def geometries(draw):
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    out_h = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1
    out_w = (w - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1
    if out_h < 1 or out_w < 1:
        padding = (0, 0)
    return dict(x=(draw(st.integers(1, 2)), c_in, h, w), w=(c_in, c_out // groups, kh, kw),
                stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                dilation=dilation, bias=draw(st.booleans()))


@settings(max_examples=40, deadline=None)
@given(geometries())
def test_conv_transpose2d_matches_the_loop_definition(case):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(case["x"])
    w = rng.standard_normal(case["w"])
    b = rng.standard_normal(case["w"][1] * case["groups"]) if case["bias"] else None
    args = (case["stride"], case["padding"], case["output_padding"], case["groups"],
            case["dilation"])
    got = conv_transpose2d(tc.Tensor(x, dtype=tc.float64), tc.Tensor(w, dtype=tc.float64),
                           None if b is None else tc.Tensor(b, dtype=tc.float64), *args)
    np.testing.assert_allclose(got.numpy(), ref_conv_transpose2d(x, w, b, *args),
                               rtol=1e-12, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(geometries())
def test_conv_transpose2d_gradcheck(case):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(case["x"]), rng.standard_normal(case["w"])]
    if case["bias"]:
        arrays.append(rng.standard_normal(case["w"][1] * case["groups"]))
    gradcheck(lambda *t: conv_transpose2d(*t, stride=case["stride"], padding=case["padding"],
                                          output_padding=case["output_padding"],
                                          groups=case["groups"], dilation=case["dilation"]),
              *arrays)


@requires_torch
@pytest.mark.parametrize("kwargs", [dict(stride=2, padding=1, output_padding=1),
                                    dict(stride=2), dict(groups=2, dilation=2, padding=2),
                                    dict(stride=(2, 1), padding=(0, 1), bias=False)])
def test_conv_transpose2d_module_matches_torch(kwargs):
    torch.manual_seed(0)
    ref = torch.nn.ConvTranspose2d(4, 6, 3, **kwargs).double()
    ours = tc.nn.ConvTranspose2d(4, 6, 3, dtype=tc.float64, **kwargs)
    ours.load_state_dict({k: tc.Tensor(v.detach().numpy(), dtype=tc.float64)
                          for k, v in ref.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((2, 4, 5, 6))
    xt = torch.tensor(x, requires_grad=True)
    xo = tc.Tensor(x, dtype=tc.float64, requires_grad=True)
    yt, yo = ref(xt), ours(xo)
    u = np.random.default_rng(3).standard_normal(tuple(yt.shape))
    (yt * torch.tensor(u)).sum().backward()
    (yo * tc.Tensor(u, dtype=tc.float64)).sum().backward()
    np.testing.assert_allclose(yo.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(xo.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    for (name, p), (_, pt) in zip(ours.named_parameters(), ref.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), pt.grad.numpy(), rtol=1e-10, atol=1e-10,
                                   err_msg=name)
    assert list(ours.state_dict()) == list(ref.state_dict())


@requires_torch
def test_conv_transpose2d_output_size_argument_as_torch():
    ref = torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    ours = tc.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    x = np.zeros((1, 2, 4, 4), np.float32)
    assert ours(tc.Tensor(x), output_size=[8, 8]).shape == tuple(
        ref(torch.tensor(x), output_size=[8, 8]).shape)
    with pytest.raises(ValueError, match="output_size"):
        ours(tc.Tensor(x), output_size=[12, 12])


def test_conv_transpose2d_bad_input_names_the_op_and_shapes():
    with pytest.raises(ValueError, match=r"conv_transpose2d: input has 3 channels but the "
                                         r"weight expects in_channels=4"):
        conv_transpose2d(tc.zeros(1, 3, 4, 4), tc.zeros(4, 2, 3, 3))
    with pytest.raises(ValueError, match="output_padding must be smaller"):
        conv_transpose2d(tc.zeros(1, 4, 4, 4), tc.zeros(4, 2, 3, 3), stride=2,
                         output_padding=2)
    layer = tc.nn.ConvTranspose2d(4, 2, 3)
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(4, 2.*input has 5 channels"):
        layer(tc.zeros(1, 5, 4, 4))


@requires_torch
@pytest.mark.parametrize("output_size", [1, (3, 2), (None, 4)])
def test_adaptive_max_pool2d_module_matches_torch(output_size):
    x = np.random.default_rng(5).standard_normal((2, 3, 7, 5))
    xt = torch.tensor(x, requires_grad=True)
    xo = tc.Tensor(x, dtype=tc.float64, requires_grad=True)
    yt, it = torch.nn.AdaptiveMaxPool2d(output_size, return_indices=True)(xt)
    yo, io = tc.nn.AdaptiveMaxPool2d(output_size, return_indices=True)(xo)
    yt.sum().backward()
    yo.sum().backward()
    np.testing.assert_array_equal(yo.numpy(), yt.detach().numpy())
    np.testing.assert_array_equal(io.numpy(), it.numpy())
    np.testing.assert_array_equal(xo.grad.numpy(), xt.grad.numpy())
