"""Engine checkpoints: one safetensors file (tensors) with JSON structure, never pickle.

A checkpoint holds everything needed to continue a run exactly:
  meta       format, version, epoch, iteration, batches done in the current epoch,
             seed, model class, the config (JSON text), the validation history
  state_dict the model's parameters and buffers
  optimizer  the optimizer's state dict (and `grads`: gradients accumulated so far,
             when saved in the middle of a gradient-accumulation cycle)
  schedulers every lr scheduler's state dict, in order
  hooks      the state of every hook that has one (best score, EMA weights, ...)
  rng        every random state now; `epoch_rng` the states when the current epoch's
             loader iteration started (to rebuild the same epoch order on resume)
Written with `tinygrad_cv.serialization.save` (atomic). `work_dir/last_checkpoint` is a
text file with the newest checkpoint's path, as mmengine.
"""
from __future__ import annotations

import json
import os

from ..errors import UserError
from ..serialization import load, write_atomically

FORMAT = "tinygrad_cv.engine.checkpoint"
VERSION = 1
LAST_CHECKPOINT = "last_checkpoint"


class CheckpointMismatchError(UserError):
    """A checkpoint of another model or config; names the mismatching keys."""


def write_last_checkpoint(work_dir, path):
    write_atomically(os.path.join(work_dir, LAST_CHECKPOINT),
                     (os.path.abspath(path) + "\n").encode("utf-8"))


def find_latest(work_dir):
    """The path `work_dir/last_checkpoint` names, or None when there is none."""
    marker = os.path.join(work_dir, LAST_CHECKPOINT)
    if not os.path.isfile(marker):
        return None
    with open(marker, encoding="utf-8") as fh:
        path = fh.read().strip()
    if not path:
        return None
    if not os.path.isfile(path):
        raise UserError(f"{marker} names {path}, which does not exist")
    return path


def read_checkpoint(path):
    """The checkpoint dict in `path`; UserError when the file is not an engine checkpoint."""
    try:
        ckpt = load(path)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{path}: cannot be read as a checkpoint: "
                        f"{str(exc).splitlines()[0]}") from None
    if not (isinstance(ckpt, dict) and isinstance(ckpt.get("meta"), dict)
            and ckpt["meta"].get("format") == FORMAT):
        raise UserError(f"{path}: is not a tinygrad_cv engine checkpoint (no {FORMAT!r} meta); "
                        f"to start from a weights file, use load_from")
    if ckpt["meta"].get("version") != VERSION:
        raise UserError(f"{path}: checkpoint version {ckpt['meta'].get('version')!r}; "
                        f"this version reads {VERSION}")
    return ckpt


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def config_differences(saved, current, section="model"):
    """Dotted keys of `section` whose values differ between two config dicts."""
    a = _flatten((saved or {}).get(section, {}), section)
    b = _flatten((current or {}).get(section, {}), section)
    return sorted(k for k in set(a) | set(b) if a.get(k, "<missing>") != b.get(k, "<missing>"))


def check_model_state(path, model, state):
    """Refuse `state` unless its keys and shapes are the model's; names the keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else ""))
        if unexpected:
            parts.append("unexpected " + ", ".join(unexpected[:8])
                         + (" ..." if len(unexpected) > 8 else ""))
        if shapes:
            parts.append("shape mismatch " + "; ".join(shapes[:8]))
        raise CheckpointMismatchError(f"{path}: holds weights of another model than "
                                      f"{type(model).__name__}: " + "; ".join(parts))


def config_json(cfg):
    """JSON text of a config (None stays None)."""
    if cfg is None:
        return None
    if hasattr(cfg, "to_json"):
        return cfg.to_json()
    return json.dumps(cfg, default=repr)
