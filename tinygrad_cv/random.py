"""Random numbers: one seeded generator per device, reset by `manual_seed`.

Every random draw in the library (rand/randn, init, dropout, DataLoader shuffling
without its own seed) goes through `generator_for`, so `tc.manual_seed(n)` makes a whole
run reproducible.
"""
from __future__ import annotations

import numpy as np

from .backend import array_module

_seed = None
_generators = {}


def manual_seed(seed: int):
    """Seed every device's generator, as `torch.manual_seed`."""
    global _seed
    if not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed: expected an int, got {type(seed).__name__}")
    _seed = int(seed)
    _generators.clear()
    return _seed


def initial_seed():
    return _seed


def generator_for(dev: str):
    """The generator of a canonical device: numpy's on "cpu", cupy's on "cuda:N"."""
    gen = _generators.get(dev)
    if gen is None:
        xp = array_module(dev)
        gen = xp.random.default_rng(_seed)
        _generators[dev] = gen
    return gen
