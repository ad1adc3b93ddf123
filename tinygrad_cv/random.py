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


class _CupyGenerator:
    """CuPy's `Generator` with the NumPy methods the library uses that CuPy lacks
    (`normal`); everything else is delegated unchanged."""

    __slots__ = ("_gen",)

    def __init__(self, gen):
        self._gen = gen

    def normal(self, loc=0.0, scale=1.0, size=None):
        return loc + scale * self._gen.standard_normal(size)

    def __getattr__(self, name):
        return getattr(self._gen, name)


def generator_for(dev: str):
    """The generator of a canonical device: numpy's on "cpu", cupy's on "cuda:N"."""
    gen = _generators.get(dev)
    if gen is None:
        xp = array_module(dev)
        if xp is np:
            gen = np.random.default_rng(_seed)
        else:
            gen = _CupyGenerator(xp.random.default_rng(_seed))
        _generators[dev] = gen
    return gen


def get_rng_state():
    """The seed and every CPU generator's state (NumPy bit-generator dicts), for a
    checkpoint. CuPy generators are left out: their state cannot be read back."""
    return {"seed": _seed,
            "generators": {dev: gen.bit_generator.state for dev, gen in _generators.items()
                           if isinstance(gen, np.random.Generator)}}


def set_rng_state(state):
    """Restore what `get_rng_state()` returned (generators it lacks start afresh from
    the seed, as after `manual_seed`)."""
    global _seed
    seed = state.get("seed")
    _seed = None if seed is None else int(seed)
    _generators.clear()
    for dev, bit_state in state.get("generators", {}).items():
        gen = np.random.default_rng(_seed)
        gen.bit_generator.state = bit_state
        _generators[dev] = gen
