"""`save(obj, path)` / `load(path)`: checkpoints in the safetensors format, never pickle.

A safetensors file is an 8-byte header length, a JSON header (each tensor's dtype,
shape and byte range, plus a `__metadata__` dict of strings) and the raw tensor bytes.
Loading one can run no code, unlike a pickle.

Two layouts are written, both ordinary safetensors files:

1. **Flat state dict** (`{str: Tensor}`, e.g. `model.state_dict()`): every tensor is
   stored under its own key, so `safetensors.torch.load_file(path)` in PyTorch returns the
   same keys and values, and a file from `safetensors.torch.save_file` loads here as a
   dict of Tensors. Metadata: `format: "pt"` and `tinygrad_cv.keys`, a JSON list of the
   keys in insertion order (safetensors itself keeps them sorted).

2. **Anything else** (an optimizer's state dict, nested dicts/lists/tuples of Tensors,
   NumPy arrays and Python scalars/strings/None): each tensor is stored under the dotted
   path of where it sat, e.g. `state.0.exp_avg`, and the rest of the structure goes in
   the metadata key `tinygrad_cv.structure` as JSON, where
     - a dict is `{"__dict__": [[key, value], ...]}` (keys may be str, int, float, bool,
       None: an optimizer's state is keyed by int),
     - a tuple is `{"__tuple__": [...]}`, a list a JSON list,
     - a Tensor is `{"__tensor__": "<key in the file>"}`, a NumPy array
       `{"__ndarray__": "<key>"}`,
     - str, int, float (inf/nan included), bool and None are themselves.
   NumPy scalars are saved as the Python scalar of the same value.

Tensors are saved from host memory (CuPy arrays are copied to the host) and load on the
CPU, or on `map_location`. Unlike `torch.load`, the device a tensor was saved from is not
recorded. `requires_grad` is not saved (state dicts hold plain tensors).

Writes to a path are atomic: the bytes go to a temporary file in the same folder, which
is flushed to disk and then renamed over the target with `os.replace`, so a crash leaves
either the old file or the new one, never a truncated one.
"""
from __future__ import annotations

import contextlib
import json
import os
import struct
import tempfile

import numpy as np
import safetensors
import safetensors.numpy as safetensors_numpy

from .backend import canonical_device, is_device_array, to_numpy, transfer
from .tensor import Tensor

KEYS_METADATA = "tinygrad_cv.keys"
STRUCTURE_METADATA = "tinygrad_cv.structure"
INFO_METADATA = "tinygrad_cv.info"
"""Metadata key of the caller's `metadata=` dict (JSON): what is needed to use the file."""
_SCALAR_TYPES = (str, int, float, bool, type(None))
_SUPPORTED = "Tensor, NumPy array, dict, list, tuple, str, int, float, bool and None"


# ----------------------------------------------------------------------------- saving
def save(obj, f, metadata=None):
    """Save `obj` (a state dict, an optimizer state dict, ...) to the path or binary file `f`.

    `metadata` (our addition to torch.save's signature): a JSON-able dict stored in the
    file's header, e.g. the model name, dataset, class names and normalisation a weights
    file needs to be used; `load_metadata(f)` reads it back without loading tensors.
    Raises TypeError, before writing anything, when `obj` holds something that is not
    a Tensor, a NumPy array, a dict, list or tuple of those, or a Python scalar/str/None.
    """
    tensors, header = _flatten(obj)
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise TypeError(f"save: metadata must be a dict, got {type(metadata).__name__}")
        try:
            header[INFO_METADATA] = json.dumps(metadata)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"save: metadata must be JSON-serialisable ({exc})") from None
    metadata = header
    payload = safetensors_numpy.save(tensors, metadata=metadata)
    if hasattr(f, "write"):
        f.write(payload)   # a file object: the caller owns it, so no atomic rename
        return
    write_atomically(f, payload)


def _is_flat_state_dict(obj):
    return isinstance(obj, dict) and all(
        isinstance(key, str) and isinstance(value, Tensor) for key, value in obj.items())


def _host_array(value):
    """A C-contiguous host NumPy array of a Tensor's or raw array's data (copied from a GPU)."""
    arr = to_numpy(value.data if isinstance(value, Tensor) else value)
    return arr if arr.flags.c_contiguous else arr.copy(order="C")   # keeps 0-d shapes


def _flatten(obj):
    """(tensors by key, metadata) for `obj`, in one of the two layouts described above."""
    if _is_flat_state_dict(obj):
        tensors = {key: _host_array(value) for key, value in obj.items()}
        return tensors, {"format": "pt", KEYS_METADATA: json.dumps(list(obj))}
    tensors = {}
    structure = _encode(obj, "", tensors)
    return tensors, {"format": "pt", STRUCTURE_METADATA: json.dumps(structure)}


def _unique_key(path, tensors):
    """The dotted path as a key, with '#n' appended if another tensor already took it."""
    key = path or "_"
    n = 1
    while key in tensors:
        key = f"{path or '_'}#{n}"
        n += 1
    return key


def _join(path, part):
    return f"{path}.{part}" if path else str(part)


def _encode(value, path, tensors):
    """The JSON-able description of `value`; its tensors are added to `tensors`."""
    if isinstance(value, Tensor) or is_device_array(value):
        key = _unique_key(path, tensors)
        tensors[key] = _host_array(value)
        return {"__tensor__" if isinstance(value, Tensor) else "__ndarray__": key}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, _SCALAR_TYPES):
        return value
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if not isinstance(key, _SCALAR_TYPES):
                raise TypeError(f"save: cannot save a dict key of type {type(key).__name__} "
                                f"at '{path or '<root>'}'; keys must be str, int, float, "
                                f"bool or None")
            items.append([key, _encode(item, _join(path, key), tensors)])
        return {"__dict__": items}
    if isinstance(value, (list, tuple)):
        encoded = [_encode(item, _join(path, i), tensors) for i, item in enumerate(value)]
        return {"__tuple__": encoded} if isinstance(value, tuple) else encoded
    raise TypeError(f"save: cannot save an object of type {type(value).__name__} at "
                    f"'{path or '<root>'}'; supported: {_SUPPORTED}")


def _new_file_mode(path):
    """Permissions for the written file: the old file's, else what open() would give."""
    try:
        return os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomically(path, payload: bytes):
    """Write `payload` to `path` through a flushed temporary file and `os.replace`."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.",
                                    suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(payload)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp_path, _new_file_mode(path))
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_path)
        raise


# ----------------------------------------------------------------------------- loading
def load(f, map_location=None, weights_only=None):
    """Load what `save` wrote (or any safetensors file) from a path or binary file.

    `map_location`: None or "cpu" (the default: tensors load on the CPU), "cuda",
    "cuda:N" or a device. `weights_only` is accepted for `torch.load` compatibility and
    changes nothing: loading never runs code.
    """
    if map_location is not None and not isinstance(map_location, str) \
            and type(map_location).__name__ != "device":
        raise TypeError(f"load: map_location must be None, a device string like 'cpu' or "
                        f"'cuda:0', or a device; got {type(map_location).__name__}")
    device = canonical_device(None if map_location is None else str(map_location))
    arrays, metadata = _read_file(f)
    wrap = lambda arr: Tensor(transfer(arr, device), dtype=arr.dtype, device=device)  # noqa: E731

    if STRUCTURE_METADATA in metadata:
        structure = json.loads(metadata[STRUCTURE_METADATA])
        return _decode(structure, arrays, wrap, device)
    order = json.loads(metadata[KEYS_METADATA]) if KEYS_METADATA in metadata else list(arrays)
    if set(order) != set(arrays):   # keys metadata from another writer: trust the tensors
        order = list(arrays)
    return {key: wrap(arrays[key]) for key in order}


def load_metadata(f) -> dict:
    """The `metadata=` dict that `save` stored in `f` ({} when there is none)."""
    if hasattr(f, "read"):
        header = _metadata_from_bytes(f.read(), "<file object>")
    else:
        path = os.fspath(f)
        with open(path, "rb") as fh:
            _check_header_prefix(fh.read(16), path)
        try:
            with safetensors.safe_open(path, framework="numpy") as st:
                header = st.metadata() or {}
        except safetensors.SafetensorError as exc:
            raise ValueError(f"load: {path} is not a valid safetensors file ({exc})") from None
    try:
        info = json.loads(header.get(INFO_METADATA, "{}"))
    except ValueError as exc:
        raise ValueError(f"load_metadata: malformed {INFO_METADATA} metadata ({exc})") from None
    if not isinstance(info, dict):
        raise ValueError(f"load_metadata: {INFO_METADATA} metadata is not a JSON object")
    return info


def _read_file(f):
    """({key: NumPy array}, metadata dict) from a path or a binary file object."""
    if hasattr(f, "read"):
        data = f.read()
        metadata = _metadata_from_bytes(data, "<file object>")
        return safetensors_numpy.load(data), metadata
    path = os.fspath(f)
    with open(path, "rb") as fh:
        _check_header_prefix(fh.read(16), path)
    try:
        with safetensors.safe_open(path, framework="numpy") as st:
            metadata = st.metadata() or {}
            arrays = {key: _get_tensor(st, key, path) for key in st.keys()}
    except safetensors.SafetensorError as exc:
        raise ValueError(f"load: {path} is not a valid safetensors file ({exc})") from None
    return arrays, metadata


def _get_tensor(st, key, path):
    try:
        return st.get_tensor(key)
    except TypeError as exc:   # a dtype NumPy lacks, such as bfloat16
        raise TypeError(f"load: tensor '{key}' in {path} has a dtype NumPy cannot hold "
                        f"({exc}); convert it (e.g. to float32) before saving") from None


def _check_header_prefix(head: bytes, where):
    """Recognise PyTorch's pickle-based checkpoints early and say what to do about them."""
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80"):
        raise ValueError(f"load: {where} looks like a PyTorch pickle checkpoint (torch.save); "
                         f"tinygrad_cv never unpickles. Re-save it in PyTorch with "
                         f"safetensors.torch.save_file(state_dict, path)")


def _metadata_from_bytes(data: bytes, where):
    _check_header_prefix(data[:16], where)
    try:
        (header_len,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + header_len])
    except (struct.error, ValueError) as exc:
        raise ValueError(f"load: {where} is not a valid safetensors file ({exc})") from None
    return header.get("__metadata__") or {}


def _decode(node, arrays, wrap, device):
    """Rebuild one value of the structure, taking tensors from `arrays`."""
    if isinstance(node, list):
        return [_decode(item, arrays, wrap, device) for item in node]
    if not isinstance(node, dict):
        return node
    if "__tensor__" in node:
        return wrap(arrays[node["__tensor__"]])
    if "__ndarray__" in node:
        arr = arrays[node["__ndarray__"]]
        return arr if device == "cpu" else transfer(arr, device)
    if "__tuple__" in node:
        return tuple(_decode(item, arrays, wrap, device) for item in node["__tuple__"])
    if "__dict__" in node:
        return {key: _decode(item, arrays, wrap, device) for key, item in node["__dict__"]}
    raise ValueError(f"load: unrecognised entry in the {STRUCTURE_METADATA} metadata: {node!r}")
