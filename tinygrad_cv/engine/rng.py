"""Every random state a run depends on, captured and restored as plain data.

`capture(loaders)` returns tinygrad_cv's generators (`tc.manual_seed`'s), NumPy's
legacy global state (`np.random.seed`), Python's `random` state, every NumPy
Generator a loader shuffles with (its own `generator`, its sampler's, its batch
sampler's sampler's), and on a GPU run the state of each CuPy generator tinygrad_cv
draws from (the cuRAND states' bytes, copied to the host: plain arrays, no pickle).
`restore(state, loaders)` sets them back in place, so objects that hold a generator
keep holding the same, now rewound, one.
"""
from __future__ import annotations

import random
import sys
import warnings

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
    cupy_state = _capture_cupy()
    if cupy_state:
        state["cupy"] = cupy_state
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
    _restore_cupy(state.get("cupy", {}))
    for name, loader in (loaders or {}).items():
        saved = state.get("loaders", {}).get(name)
        if loader is None or saved is None:
            continue
        for path, gen in loader_generators(loader).items():
            if path in saved:
                gen.bit_generator.state = saved[path]


def _cupy_bit_generators():
    """{device: cuRAND bit generator} of the CuPy generators tinygrad_cv has made (none
    unless a GPU run drew random numbers; CuPy is never imported here)."""
    found = {}
    for dev, gen in tc_random._generators.items():
        if isinstance(gen, tc_random._CupyGenerator):
            bit_generator = getattr(gen._gen, "bit_generator", None)
            if hasattr(bit_generator, "_state"):
                found[dev] = bit_generator
    return found


def _capture_cupy():
    """{device: {"state": int8 host array, "size": states}}: CuPy keeps a generator's
    whole state in one device array of cuRAND states (its `_state`), copied here."""
    out = {}
    for dev, bit_generator in _cupy_bit_generators().items():
        device_state = bit_generator._state
        host = device_state.get() if hasattr(device_state, "get") else np.array(device_state)
        out[dev] = {"state": np.array(host, dtype=np.int8, copy=True),
                    "size": int(getattr(bit_generator, "_size", 0))}
    return out


def _restore_cupy(saved):
    """Put each saved CuPy generator's state back (making the generator first). Skipped
    when CuPy is not loaded: a GPU run's checkpoint resumed on the CPU draws nothing
    from CuPy. A state of another size (another GPU) is a RuntimeWarning, not an error."""
    if not saved or "cupy" not in sys.modules:
        return
    for dev, entry in saved.items():
        gen = tc_random.generator_for(dev)
        bit_generator = getattr(getattr(gen, "_gen", None), "bit_generator", None)
        target = getattr(bit_generator, "_state", None)
        host = np.asarray(entry["state"], dtype=np.int8)
        if target is None or tuple(target.shape) != host.shape:
            warnings.warn(f"the checkpoint's CuPy generator state of {dev} ({host.size} "
                          f"bytes) does not fit this one ({getattr(target, 'size', None)} "
                          f"bytes: another GPU or CuPy version?); it continues from the seed, "
                          f"so this resumed run is not bit-identical", RuntimeWarning,
                          stacklevel=3)
            continue
        if hasattr(target, "set"):
            target.set(host)          # cupy.ndarray: host -> device copy
        else:
            target[...] = host


def seed_everything(seed):
    """Seed tinygrad_cv, NumPy's legacy global generator and Python's `random`."""
    tc_random.manual_seed(seed)
    np.random.seed(seed % 2 ** 32)
    random.seed(seed)
