"""Dropout: inverted dropout in training, identity in eval."""
from __future__ import annotations

from . import functional as F
from .module import Module


class Dropout(Module):
    """Zeroes each element with probability p and scales the rest by 1/(1-p) in training;
    returns the input itself in eval. The mask comes from the seeded device generator."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input):
        return F.dropout(input, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout2d(Module):
    """Zero whole channels: each (sample, channel) plane with probability p, the rest
    scaled by 1/(1-p), in training; identity in eval. As torch, a 3-D input is read as
    (N, C, L) (channel-wise 1-D dropout). `inplace` is accepted, as Dropout's (no effect)."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input):
        return F.dropout2d(input, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout1d(Dropout2d):
    """Zero whole channels of (N, C, L) or unbatched (C, L) inputs, as torch."""

    def forward(self, input):
        return F.dropout1d(input, self.p, self.training)
