"""Attention: `F.scaled_dot_product_attention` and `nn.MultiheadAttention`, as torch's,
composed from differentiable ops (matmul, softmax, masked_fill, dropout), so every
gradient comes from those ops' own backward.
"""
from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor, empty
from . import functional as F
from . import init
from .linear import Linear
from .module import Module
from .parameter import Parameter


def _apply_mask(scores, mask, op):
    """A bool mask (True = keep) or an additive float mask, broadcast over `scores`."""
    if mask is None:
        return scores
    if not isinstance(mask, Tensor):
        raise TypeError(f"{op}: attn_mask must be a Tensor or None, got {type(mask).__name__}")
    if mask.dtype == np.bool_:
        return scores.masked_fill(~mask, float("-inf"))
    return scores + mask.astype(scores.dtype)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False):
    """softmax(q k^T * scale + mask) v over the last two dims (batch dims broadcast).
    A bool `attn_mask` marks the positions that may be attended (True), a float one is
    added; `is_causal` applies the lower-triangular mask (and excludes attn_mask)."""
    op = "scaled_dot_product_attention"
    if enable_gqa:
        raise NotImplementedError(f"{op}: enable_gqa is not supported by tinygrad_cv")
    if is_causal and attn_mask is not None:
        raise RuntimeError(f"{op}: _scaled_dot_product_attention: Explicit attn_mask should "
                           f"not be set when is_causal=True")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise RuntimeError(f"{op}: query {query.shape}, key {key.shape} and value "
                           f"{value.shape} do not fit (q and k share the last dim, k and v "
                           f"the sequence dim)")
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = (query @ key.transpose(-2, -1)) * scale
    if is_causal:
        from ..tensor import ones
        length, source = query.shape[-2], key.shape[-2]
        attn_mask = ones(length, source, dtype=np.bool_, device=query.device_str).tril()
    weights = F.softmax(_apply_mask(scores, attn_mask, op), dim=-1)
    if dropout_p > 0.0:
        weights = F.dropout(weights, dropout_p, training=True)
    return weights @ value


class MultiheadAttention(Module):
    """torch.nn.MultiheadAttention (same parameters and state-dict keys: in_proj_weight,
    in_proj_bias, out_proj.weight, out_proj.bias). Inputs (L, N, E), or (N, L, E) with
    `batch_first`, or unbatched (L, E). Not supported (they raise): kdim/vdim different
    from embed_dim, add_bias_kv, add_zero_attn."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False, device=None,
                 dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be greater than 0, got "
                             f"embed_dim={embed_dim} and num_heads={num_heads} instead")
        if embed_dim % num_heads:
            raise AssertionError("embed_dim must be divisible by num_heads")
        if add_bias_kv or add_zero_attn or (kdim not in (None, embed_dim)) or \
                (vdim not in (None, embed_dim)):
            raise NotImplementedError("MultiheadAttention: kdim/vdim != embed_dim, add_bias_kv "
                                      "and add_zero_attn are not supported by tinygrad_cv")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.kdim = self.vdim = embed_dim
        self._qkv_same_embed_dim = True
        self.dropout, self.batch_first = dropout, batch_first
        self.head_dim = embed_dim // num_heads
        self.in_proj_weight = Parameter(empty(3 * embed_dim, embed_dim, device=device,
                                              dtype=dtype))
        self.register_parameter("q_proj_weight", None)
        self.register_parameter("k_proj_weight", None)
        self.register_parameter("v_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(empty(3 * embed_dim, device=device, dtype=dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, device=device, dtype=dtype)
        self.bias_k = self.bias_v = None
        self.add_zero_attn = False
        self._reset_parameters()

    def _reset_parameters(self):
        init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        if is_causal and attn_mask is None:
            raise RuntimeError("Need attn_mask if specifying the is_causal hint")
        unbatched = query.ndim == 2
        if unbatched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        length, batch, embed = query.shape
        if embed != self.embed_dim:
            raise AssertionError(f"was expecting embedding dimension of {self.embed_dim}, but "
                                 f"got {embed}")
        source = key.shape[0]
        e, h, d = self.embed_dim, self.num_heads, self.head_dim
        w, b = self.in_proj_weight, self.in_proj_bias
        q = F.linear(query, w[:e], None if b is None else b[:e])
        k = F.linear(key, w[e:2 * e], None if b is None else b[e:2 * e])
        v = F.linear(value, w[2 * e:], None if b is None else b[2 * e:])
        # (L, N, E) -> (N * H, L, d), as torch
        q = q.reshape(length, batch * h, d).transpose(0, 1)
        k = k.reshape(source, batch * h, d).transpose(0, 1)
        v = v.reshape(source, batch * h, d).transpose(0, 1)
        scores = (q * (1.0 / math.sqrt(d))) @ k.transpose(-2, -1)
        scores = scores.reshape(batch, h, length, source)
        if attn_mask is not None:
            mask = attn_mask
            if mask.ndim == 3:
                mask = mask.reshape(batch, h, length, source)
            scores = self._mask(scores, mask)
        if key_padding_mask is not None:
            scores = self._mask(scores, key_padding_mask.reshape(batch, 1, 1, source))
        weights = F.softmax(scores, dim=-1)
        dropped = F.dropout(weights, self.dropout, training=self.training) \
            if self.dropout > 0.0 else weights
        out = dropped.reshape(batch * h, length, source) @ v          # (N * H, L, d)
        out = out.transpose(0, 1).reshape(length * batch, e)
        out = self.out_proj(out).reshape(length, batch, e)
        if unbatched:
            out = out.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(1)
        if unbatched:
            weights = weights.squeeze(0)
        return out, weights

    @staticmethod
    def _mask(scores, mask):
        """torch's MHA masks: bool True = *not* allowed; float masks are added."""
        if mask.dtype == np.bool_:
            return scores.masked_fill(mask, float("-inf"))
        return scores + mask.astype(scores.dtype)
