"""`checkpoint`, as torch.utils.checkpoint: here it simply runs the function.

torch's checkpointing saves memory by recomputing a segment's forward during backward.
tinygrad_cv keeps every activation instead: the values and gradients are the same and
the code ports unchanged; only the memory saving is absent. The keyword arguments torch
takes (`use_reentrant`, `preserve_rng_state`, `context_fn`, `determinism_check`,
`debug`, `early_stop`) are accepted and change nothing.
"""
from __future__ import annotations

def checkpoint(function, *args, use_reentrant=None, context_fn=None,
               determinism_check="default", debug=False, early_stop=True,
               preserve_rng_state=True, **kwargs):
    """`function(*args, **kwargs)`, as `torch.utils.checkpoint.checkpoint` computes it."""
    if not callable(function):
        raise TypeError(f"checkpoint: function must be callable, got "
                        f"{type(function).__name__}")
    if use_reentrant and kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
    return function(*args, **kwargs)


def checkpoint_sequential(functions, segments, input, use_reentrant=None, **kwargs):
    """Run a Sequential (or a list of modules) on `input`, as torch's
    checkpoint_sequential computes it (`segments` only splits the recomputation there)."""
    if hasattr(functions, "children") and not isinstance(functions, (list, tuple)):
        functions = list(functions.children())
    if int(segments) < 1:
        raise ValueError(f"checkpoint_sequential: segments must be >= 1, got {segments}")
    for fn in functions:
        input = fn(input)
    return input


__all__ = ["checkpoint", "checkpoint_sequential"]
