"""Every random state a run depends on, captured and restored as plain data.

`capture(loaders)` returns tinygrad_cv's generators (`tc.manual_seed`'s), NumPy's
legacy global state (`np.random.seed`), Python's `random` state, and every NumPy
Generator a loader shuffles with (its own `generator`, its sampler's, its batch
sampler's sampler's). `restore(state, loaders)` sets them back in place, so objects
that hold a generator keep holding the same, now rewound, one.
"""
from __future__ import annotations

import random

import numpy as np

from .. import random as tc_random

_LOADER_PATHS = ("generator", "sampler.generator", "batch_sampler.sampler.generator")


def _attr_path(obj, path):
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def loader_generators(loader):
    """{path: Generator} of the distinct NumPy Generators a loader draws from."""
    found, seen = {}, set()
    for path in _LOADER_PATHS:
        gen = _attr_path(loader, path)
        if isinstance(gen, np.random.Generator) and id(gen) not in seen:
            seen.add(id(gen))
            found[path] = gen
    return found


def capture(loaders=None):
    """A JSON/array-only snapshot of every random state (see the module docstring)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "tinygrad_cv": tc_random.get_rng_state(),
        "numpy_global": {"kind": kind, "keys": np.array(keys, dtype=np.uint32), "pos": int(pos),
                         "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": version, "internal": np.array(internal, dtype=np.uint64),
                   "gauss_next": gauss_next},
        "loaders": {},
    }
    for name, loader in (loaders or {}).items():
        if loader is not None:
            state["loaders"][name] = {path: gen.bit_generator.state
                                      for path, gen in loader_generators(loader).items()}
    return state


def restore(state, loaders=None):
    """Set every random state back to `state` (from `capture`)."""
    tc_random.set_rng_state(state["tinygrad_cv"])
    g = state["numpy_global"]
    np.random.set_state((g["kind"], np.asarray(g["keys"], dtype=np.uint32), int(g["pos"]),
                         int(g["has_gauss"]), float(g["cached_gaussian"])))
    p = state["python"]
    random.setstate((int(p["version"]), tuple(int(v) for v in p["internal"]), p["gauss_next"]))
    for name, loader in (loaders or {}).items():
        saved = state.get("loaders", {}).get(name)
        if loader is None or saved is None:
            continue
        for path, gen in loader_generators(loader).items():
            if path in saved:
                gen.bit_generator.state = saved[path]


def seed_everything(seed):
    """Seed tinygrad_cv, NumPy's legacy global generator and Python's `random`."""
    tc_random.manual_seed(seed)
    np.random.seed(seed % 2 ** 32)
    random.seed(seed)
