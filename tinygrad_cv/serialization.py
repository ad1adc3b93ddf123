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
either the old file or the new one, never a truncated one. The temporary is named
`.<target name>.tinygrad_cv-tmp.<pid>.<random>`; it is removed when the write fails,
when SIGTERM/SIGINT ends the process during the write, and (for a writer killed with
SIGKILL) by the next save of the same target, once its writer's pid is gone.

Loading checks what a file is before believing it: a safetensors file starts with an
8-byte little-endian header length and that many bytes of JSON object; only a file
that is not one, and that starts with a zip's or a pickle's full signature, is called
a PyTorch checkpoint. Every malformed file gives a ValueError naming it, and nothing
a header claims is allocated before it is checked against the file's real size.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import signal
import struct
import threading

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
    try:
        tensors, header = _flatten(obj)
    except RecursionError:
        raise ValueError("save: the object is nested too deeply to save") from None
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


# ----------------------------------------------------------------------------- atomic writes
TEMP_MARKER = ".tinygrad_cv-tmp."
"""In every temporary's name: `.<target name>.tinygrad_cv-tmp.<pid>.<random>`."""
_WRITE_CHUNK = 8 << 20          # signal handlers run between chunks of a long write
_NAME_KEPT = 150                # of the target's name, so the temporary's fits NAME_MAX
_active_temporaries = set()     # this process's writes in progress (any thread)
_active_lock = threading.Lock()


def _temp_prefix(path):
    return "." + os.path.basename(path)[:_NAME_KEPT] + TEMP_MARKER


def _pid_is_gone(pid):
    """True when no process `pid` runs (a zombie counts as gone); unsure means alive."""
    if os.name != "posix" or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False            # alive, owned by someone else
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def remove_stale_temporaries(path):
    """Delete the temporaries of `path` left by writers that no longer run (a SIGKILL, a
    power cut): those whose pid is gone, or is ours but not a write in progress."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    prefix = _temp_prefix(path)
    try:
        names = [name for name in os.listdir(folder) if name.startswith(prefix)]
    except OSError:
        return
    with _active_lock:
        active = set(_active_temporaries)
    for name in names:
        pid_text, _, token = name[len(prefix):].partition(".")
        if not pid_text.isdigit() or not token:
            continue
        full = os.path.join(folder, name)
        pid = int(pid_text)
        stale = (full not in active) if pid == os.getpid() else _pid_is_gone(pid)
        if stale:
            with contextlib.suppress(OSError):
                os.unlink(full)


def _create_temporary(path):
    """(fd, path) of a new, empty temporary next to `path`, named as TEMP_MARKER says."""
    folder = os.path.dirname(os.path.abspath(path))
    prefix = _temp_prefix(path)
    while True:
        tmp_path = os.path.join(folder, f"{prefix}{os.getpid()}.{secrets.token_hex(6)}")
        try:
            return os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), tmp_path
        except FileExistsError:
            continue


@contextlib.contextmanager
def _removed_on_termination(tmp_path):
    """While the body runs (in the main thread), SIGTERM/SIGINT that would end the process
    first remove `tmp_path`, then end it with the same signal; a signal the program
    handles itself (a Python handler, KeyboardInterrupt included) goes to that handler,
    and the write's own error path cleans up if the handler raises."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def restore():
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    def on_signal(signum, frame):
        handler = previous.get(signum)
        if callable(handler):
            handler(signum, frame)
            return
        if handler == signal.SIG_IGN:
            return
        with contextlib.suppress(OSError):
            os.unlink(tmp_path)
        restore()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)       # die of the signal, as without this handler

    try:
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.getsignal(signum)
            signal.signal(signum, on_signal)
    except (ValueError, OSError):          # no signals here (an embedded interpreter)
        restore()
        previous.clear()
    try:
        yield
    finally:
        restore()


def _write_all(fd, payload):
    view = memoryview(payload).cast("B")
    written = 0
    while written < len(view):
        written += os.write(fd, view[written:written + _WRITE_CHUNK])


def write_atomically(path, payload: bytes):
    """Write `payload` to `path` through a flushed temporary file and `os.replace`.

    On any failure (a full disk, a signal, an error) the temporary is removed and the
    old `path` is left as it was; an OSError names `path`."""
    path = os.fspath(path)
    remove_stale_temporaries(path)
    try:
        fd, tmp_path = _create_temporary(path)
    except OSError as exc:            # a missing or read-only folder
        raise _write_error(path, exc) from exc
    with _active_lock:
        _active_temporaries.add(tmp_path)
    try:
        with _removed_on_termination(tmp_path):
            try:
                try:
                    _write_all(fd, payload)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.chmod(tmp_path, _new_file_mode(path))
                os.replace(tmp_path, path)
            except BaseException as exc:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_path)
                if isinstance(exc, OSError) and not isinstance(exc, InterruptedError):
                    raise _write_error(path, exc) from exc
                raise
    finally:
        with _active_lock:
            _active_temporaries.discard(tmp_path)
    _sync_folder(path)


def _write_error(path, exc):
    """The OSError of a failed write, with the target's path in its message."""
    reason = exc.strerror or str(exc)
    hint = " (the disk is full)" if exc.errno == errno.ENOSPC else ""
    message = f"save: could not write {path}: {reason}{hint}; the old file, if any, is unchanged"
    return OSError(exc.errno, message) if exc.errno is not None else OSError(message)


def _sync_folder(path):
    """Flush the rename itself to disk (best effort: not every system can)."""
    with contextlib.suppress(OSError):
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ----------------------------------------------------------------------------- loading
MAX_HEADER_BYTES = 100_000_000
"""The largest safetensors header read (the safetensors library's own limit)."""


def load(f, map_location=None, weights_only=None):
    """Load what `save` wrote (or any safetensors file) from a path or binary file.

    `map_location`: None or "cpu" (the default: tensors load on the CPU), "cuda",
    "cuda:N" or a device. `weights_only` is accepted for `torch.load` compatibility and
    changes nothing: loading never runs code. A file that is not a valid safetensors
    file, or whose tinygrad_cv metadata is malformed, raises ValueError naming it.
    """
    if map_location is not None and not isinstance(map_location, str) \
            and type(map_location).__name__ != "device":
        raise TypeError(f"load: map_location must be None, a device string like 'cpu' or "
                        f"'cuda:0', or a device; got {type(map_location).__name__}")
    device = canonical_device(None if map_location is None else str(map_location))
    where = _describe(f)
    arrays, metadata = _read_file(f, where)
    wrap = lambda arr: Tensor(transfer(arr, device), dtype=arr.dtype, device=device)  # noqa: E731

    if STRUCTURE_METADATA in metadata:
        structure = _metadata_json(metadata, STRUCTURE_METADATA, where)
        try:
            return _decode(structure, arrays, wrap, device, where)
        except RecursionError:
            raise ValueError(f"load: {where}: the {STRUCTURE_METADATA} metadata is nested "
                             f"too deeply") from None
    order = list(arrays)
    if KEYS_METADATA in metadata:
        keys = _metadata_json(metadata, KEYS_METADATA, where)
        if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
            raise ValueError(f"load: {where}: the {KEYS_METADATA} metadata must be a JSON "
                             f"list of tensor names")
        if set(keys) == set(arrays):   # keys metadata from another writer: trust the tensors
            order = keys
    return {key: wrap(arrays[key]) for key in order}


def load_metadata(f) -> dict:
    """The `metadata=` dict that `save` stored in `f` ({} when there is none)."""
    where = _describe(f)
    if hasattr(f, "read"):
        metadata = _header_of_bytes(_read_bytes(f, where), where)[1]
    else:
        path = os.fspath(f)
        with open(path, "rb") as fh:
            metadata = _header_of_file(fh, where)[1]
        try:   # the library's checks of the tensors' layout (it reads no tensor data)
            with safetensors.safe_open(path, framework="numpy"):
                pass
        except safetensors.SafetensorError as exc:
            raise ValueError(f"load: {where} is not a valid safetensors file ({exc})") from None
    if INFO_METADATA not in metadata:
        return {}
    info = _metadata_json(metadata, INFO_METADATA, where, op="load_metadata")
    if not isinstance(info, dict):
        raise ValueError(f"load_metadata: {where}: the {INFO_METADATA} metadata is not a "
                         f"JSON object")
    return info


def _describe(f):
    """How errors name `f`: its path, a file object's name, or its type."""
    if hasattr(f, "read"):
        name = getattr(f, "name", None)
        return os.fsdecode(name) if isinstance(name, (str, bytes)) else \
            f"<{type(f).__name__} object>"
    return os.fsdecode(os.fspath(f))


def _read_bytes(f, where):
    data = f.read()
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"load: {where} is not a binary file object (its read() returned "
                         f"{type(data).__name__}); open the file with 'rb'")
    return bytes(data)


_NUMPY_DTYPES = {"BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64", "F16", "F32",
                 "F64", "C64"}


def _read_file(f, where):
    """({key: NumPy array}, metadata dict) from a path or a binary file object."""
    header = {}
    try:
        if hasattr(f, "read"):
            data = _read_bytes(f, where)
            header, metadata = _header_of_bytes(data, where)
            _check_dtypes(header, where)
            arrays = dict(safetensors_numpy.load(data)) if _tensor_names(header) else {}
            return arrays, metadata
        path = os.fspath(f)
        with open(path, "rb") as fh:
            header, metadata = _header_of_file(fh, where)
        _check_dtypes(header, where)
        with safetensors.safe_open(path, framework="numpy") as st:
            arrays = {key: st.get_tensor(key) for key in st.keys()}
        return arrays, metadata
    except safetensors.SafetensorError as exc:
        raise ValueError(f"load: {where} is not a valid safetensors file ({exc})") from None
    except TypeError as exc:   # a dtype NumPy lacks, such as bfloat16
        if str(exc).startswith("load: "):      # _check_dtypes' own message
            raise
        odd = [key for key in _tensor_names(header) if isinstance(header[key], dict)
               and header[key].get("dtype") not in _NUMPY_DTYPES]
        which = f"tensor '{odd[0]}'" if odd else "a tensor"
        raise TypeError(f"load: {which} in {where} has a dtype NumPy cannot hold ({exc}); "
                        f"convert it (e.g. to float32) before saving") from None


def _check_dtypes(header, where):
    """Refuse dtypes plain NumPy lacks (bfloat16, float8) before loading: with ml_dtypes
    imported (onnx imports it) safetensors would hand them over as NumPy arrays that no
    op here computes with, so the answer must not depend on what else was imported."""
    odd = [key for key in _tensor_names(header) if isinstance(header[key], dict)
           and header[key].get("dtype") not in _NUMPY_DTYPES]
    if odd:
        raise TypeError(f"load: tensor '{odd[0]}' in {where} has a dtype NumPy cannot hold "
                        f"({header[odd[0]].get('dtype')}); convert it (e.g. to float32) "
                        "before saving")


def _tensor_names(header):
    return [key for key in header if key != "__metadata__"]


def _header_of_file(fh, where):
    """(header dict, metadata dict) of an open binary file, read and checked."""
    size = os.fstat(fh.fileno()).st_size
    head = fh.read(8)
    length = _header_length(head, size, where)
    if length is None:
        raise ValueError(_not_safetensors_message(head + fh.read(8), where))
    return _parse_header(head + fh.read(length), length, where)


def _header_of_bytes(data, where):
    """(header dict, metadata dict) of a whole file's bytes, checked."""
    length = _header_length(data[:8], len(data), where)
    if length is None:
        raise ValueError(_not_safetensors_message(data[:16], where))
    return _parse_header(data[:8 + length], length, where)


def _header_length(head, size, where):
    """The header length the first 8 bytes declare, or None when it cannot be one (a
    file too short, a length beyond the file or safetensors' limit): never allocated
    before this check."""
    if len(head) < 8 or size < 8:
        return None
    (length,) = struct.unpack("<Q", head)
    if length < 2 or length > size - 8 or length > MAX_HEADER_BYTES:
        return None
    return length


def _parse_header(prefix, length, where):
    """Parse the JSON header in `prefix` (8 length bytes + the header)."""
    text = prefix[8:8 + length]
    if not text.startswith(b"{"):
        raise ValueError(_not_safetensors_message(prefix[:16], where))
    try:
        header = json.loads(text)
    except (ValueError, RecursionError) as exc:
        if _looks_like_pickle_or_zip(prefix[:16]):
            raise ValueError(_not_safetensors_message(prefix[:16], where)) from None
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ValueError(f"load: {where} is not a valid safetensors file (its JSON header "
                         f"is malformed: {reason})") from None
    if not isinstance(header, dict):
        raise ValueError(f"load: {where} is not a valid safetensors file (its header is "
                         f"not a JSON object)")
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in metadata.items()):
        raise ValueError(f"load: {where} is not a valid safetensors file (its __metadata__ "
                         f"must map strings to strings)")
    return header, metadata


def _looks_like_pickle_or_zip(head):
    """The full signature of a zip file (torch.save's default) or of a protocol 2-5 pickle
    (torch.save's legacy format)."""
    return head.startswith(b"PK\x03\x04") or (len(head) >= 2 and head[0] == 0x80
                                              and 2 <= head[1] <= 5)


def _not_safetensors_message(head, where):
    if _looks_like_pickle_or_zip(head):
        return (f"load: {where} looks like a PyTorch pickle checkpoint (torch.save); "
                f"tinygrad_cv never unpickles. Re-save it in PyTorch with "
                f"safetensors.torch.save_file(state_dict, path)")
    return (f"load: {where} is not a valid safetensors file (it does not start with an "
            f"8-byte header length followed by that many bytes of JSON header)")


def _metadata_json(metadata, key, where, op="load"):
    try:
        return json.loads(metadata[key])
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ValueError(f"{op}: {where}: the {key} metadata is not valid JSON "
                         f"({reason})") from None


_DICT_KEY_TYPES = (str, int, float, bool, type(None))


def _decode(node, arrays, wrap, device, where):
    """Rebuild one value of the structure, taking tensors from `arrays`; any entry that
    `save` could not have written raises ValueError naming the file."""
    if isinstance(node, list):
        return [_decode(item, arrays, wrap, device, where) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((kind, value),) = node.items()
        if kind in ("__tensor__", "__ndarray__"):
            if not isinstance(value, str) or value not in arrays:
                raise ValueError(f"load: {where}: the {STRUCTURE_METADATA} metadata refers "
                                 f"to a tensor {value!r} the file does not hold")
            arr = arrays[value]
            if kind == "__tensor__":
                return wrap(arr)
            return arr if device == "cpu" else transfer(arr, device)
        if kind == "__tuple__" and isinstance(value, list):
            return tuple(_decode(item, arrays, wrap, device, where) for item in value)
        if kind == "__dict__" and isinstance(value, list) and all(
                isinstance(item, list) and len(item) == 2
                and isinstance(item[0], _DICT_KEY_TYPES) for item in value):
            return {key: _decode(item, arrays, wrap, device, where) for key, item in value}
    shown = repr(node)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    raise ValueError(f"load: {where}: unrecognised entry in the {STRUCTURE_METADATA} "
                     f"metadata: {shown}")
