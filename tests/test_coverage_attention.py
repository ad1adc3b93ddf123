"""F.scaled_dot_product_attention and nn.MultiheadAttention against torch in float64
(outputs, attention weights, every input and parameter gradient; masks of both kinds,
batch_first, unbatched, no bias), and a ViT encoder block from one source text."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cv as tc
from tests.helpers import requires_torch, torch, torch_parity

rng = np.random.default_rng(41)


def N(*shape):
    return rng.standard_normal(shape)


@requires_torch
@pytest.mark.parametrize("kind", ["none", "bool", "float", "causal", "scale"])
def test_sdpa_matches_torch(kind):
    q, k, v = N(2, 3, 4, 8), N(2, 3, 6, 8), N(2, 3, 6, 5)
    mask = None
    if kind == "bool":
        mask = rng.random((4, 6)) > 0.3
        mask[:, 0] = True                      # every query sees something
    elif kind == "float":
        mask = N(2, 1, 4, 6)
    kw = dict(is_causal=kind == "causal", scale=0.3 if kind == "scale" else None)
    if kind == "causal":
        k, v = k[:, :, :4], v[:, :, :4]

    def run(m, a, b, c):
        f = m.nn.functional
        tm = None if mask is None else m.tensor(mask, dtype=None if mask.dtype == bool
                                                else m.float64)
        return f.scaled_dot_product_attention(a, b, c, attn_mask=tm, **kw)
    torch_parity(lambda *t: run(tc, *t), lambda *t: run(torch, *t), q, k, v, atol=1e-12,
                 rtol=1e-10)


MHA = [
    ("default", dict(), dict(), (5, 3, 8), 5),
    ("batch_first", dict(batch_first=True), dict(), (3, 5, 8), 5),
    ("no_bias", dict(bias=False), dict(), (4, 2, 8), 4),
    ("cross_lengths", dict(), dict(), (4, 2, 8), 6),
    ("no_weights", dict(), dict(need_weights=False), (5, 3, 8), 5),
    ("per_head_weights", dict(), dict(average_attn_weights=False), (5, 2, 8), 5),
    ("key_padding", dict(), dict(key_padding_mask="pad"), (5, 3, 8), 5),
    ("bool_mask", dict(), dict(attn_mask="bool2d"), (5, 3, 8), 5),
    ("float_mask3d", dict(), dict(attn_mask="float3d"), (5, 3, 8), 5),
    ("causal", dict(), dict(attn_mask="causal", is_causal=True), (5, 3, 8), 5),
    ("unbatched", dict(), dict(), (5, 8), 5),
]


@requires_torch
@pytest.mark.parametrize("name,ctor,call,qshape,source", MHA, ids=[m[0] for m in MHA])
def test_multihead_attention_matches_torch(name, ctor, call, qshape, source):
    torch.manual_seed(0)
    ref = torch.nn.MultiheadAttention(8, 2, **ctor).double()
    ours = tc.nn.MultiheadAttention(8, 2, **ctor).double()
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    batch_first = ctor.get("batch_first", False)
    if len(qshape) == 2:
        kvshape = (source, 8)
        batch = None
    elif batch_first:
        kvshape = (qshape[0], source, 8)
        batch = qshape[0]
    else:
        kvshape = (source, qshape[1], 8)
        batch = qshape[1]
    length = qshape[1] if batch_first else qshape[0]
    arrays = [N(*qshape), N(*kvshape), N(*kvshape)]

    def extras(m):
        out = {}
        for key, value in call.items():
            if value == "pad":
                pad = np.zeros((batch, source), bool)
                pad[0, -2:] = True
                out[key] = m.tensor(pad)
            elif value == "bool2d":
                mask = rng_mask.random((length, source)) > 0.6
                mask[:, 0] = False
                out[key] = m.tensor(mask)
            elif value == "float3d":
                out[key] = m.tensor(float_mask, dtype=m.float64)
            elif value == "causal":
                out[key] = m.tensor(np.triu(np.ones((length, source), bool), 1))
            else:
                out[key] = value
        return out
    float_mask = N(batch * 2 if batch else 2, length, source)
    state = np.random.default_rng(5)
    rng_mask = state
    ours_extra = extras(tc)
    rng_mask = np.random.default_rng(5)
    theirs_extra = extras(torch)
    a = [tc.tensor(x, dtype=tc.float64, requires_grad=True) for x in arrays]
    b = [torch.tensor(x, requires_grad=True) for x in arrays]
    out, weights = ours(*a, **ours_extra)
    ref_out, ref_weights = ref(*b, **theirs_extra)
    np.testing.assert_allclose(out.numpy(), ref_out.detach().numpy(), rtol=1e-10, atol=1e-12)
    if ref_weights is None:
        assert weights is None
    else:
        np.testing.assert_allclose(weights.numpy(), ref_weights.detach().numpy(), rtol=1e-10,
                                   atol=1e-12)
    up = N(*ref_out.shape)
    loss = (out * tc.tensor(up, dtype=tc.float64)).sum()
    ref_loss = (ref_out * torch.tensor(up)).sum()
    if ref_weights is not None:
        loss = loss + weights.sum() * 0.5
        ref_loss = ref_loss + ref_weights.sum() * 0.5
    loss.backward()
    ref_loss.backward()
    for i, (x, y) in enumerate(zip(a, b)):
        np.testing.assert_allclose(x.grad.numpy(), y.grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=f"input {i}")
    for (pname, p), q in zip(ours.named_parameters(), ref.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=pname)


def test_multihead_attention_errors():
    with pytest.raises(AssertionError, match="divisible"):
        tc.nn.MultiheadAttention(10, 3)
    with pytest.raises(NotImplementedError, match="kdim"):
        tc.nn.MultiheadAttention(8, 2, kdim=4)
    mha = tc.nn.MultiheadAttention(8, 2)
    with pytest.raises(RuntimeError, match="is_causal"):
        mha(tc.zeros(3, 1, 8), tc.zeros(3, 1, 8), tc.zeros(3, 1, 8), is_causal=True)


VIT_BLOCK = '''
class MLPBlock(nn.Sequential):
    def __init__(self, in_dim, mlp_dim, dropout):
        super().__init__(nn.Linear(in_dim, mlp_dim), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(mlp_dim, in_dim), nn.Dropout(dropout))


class EncoderBlock(nn.Module):              # torchvision's ViT encoder block, in brief
    def __init__(self, num_heads, hidden_dim, mlp_dim, dropout, attention_dropout):
        super().__init__()
        self.num_heads = num_heads
        self.ln_1 = nn.LayerNorm(hidden_dim, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(hidden_dim, num_heads,
                                                    dropout=attention_dropout,
                                                    batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.ln_2 = nn.LayerNorm(hidden_dim, eps=1e-6)
        self.mlp = MLPBlock(hidden_dim, mlp_dim, dropout)

    def forward(self, input):
        torch._assert(input.dim() == 3, f"Expected (batch_size, seq_length, hidden_dim) got {input.shape}")
        x = self.ln_1(input)
        x, _ = self.self_attention(x, x, x, need_weights=False)
        x = self.dropout(x)
        x = x + input
        y = self.ln_2(x)
        y = self.mlp(y)
        return x + y
'''


@requires_torch
def test_vit_encoder_block_ports_unchanged():
    ns_t, ns_o = {}, {}
    exec("import torch\nimport torch.nn as nn\n" + VIT_BLOCK, ns_t)
    exec("import tinygrad_cv as torch\nimport tinygrad_cv.nn as nn\n" + VIT_BLOCK, ns_o)
    torch.manual_seed(0)
    theirs = ns_t["EncoderBlock"](4, 16, 32, 0.0, 0.0).double()
    ours = ns_o["EncoderBlock"](4, 16, 32, 0.0, 0.0).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    torch_parity(ours, theirs, N(2, 7, 16), atol=1e-11, rtol=1e-9)
