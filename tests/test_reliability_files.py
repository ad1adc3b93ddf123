"""Files under stress (issue 11, items 3, 11, 13): format detection by what a file is,
malformed headers and metadata, full disks, and writers killed mid-save."""
from __future__ import annotations

import errno
import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

from tinygrad_cv import nn, serialization
from tinygrad_cv.serialization import load, load_metadata, save
from tinygrad_cv.tensor import Tensor
from tests.helpers import requires_torch, torch

ROOT = Path(__file__).resolve().parents[1]
TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.tinygrad_cv-tmp\.(?P<pid>\d+)\.[0-9a-f]+$")


def mlp_state_dict(hidden):
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    return model.state_dict()


def assert_same(loaded, original):
    assert list(loaded) == list(original)
    for key, value in original.items():
        np.testing.assert_array_equal(loaded[key].numpy(), value.numpy(), err_msg=key)


# ----------------------------------------------------------------------------- item 3: sniffing
def test_an_mlp_with_64_hidden_units_loads_although_its_header_length_starts_with_0x80(tmp_path):
    """Regression: the header length of this file is 384 = 0x180, whose first byte 0x80 was
    taken for a pickle's protocol opcode."""
    sd = mlp_state_dict(64)
    path = tmp_path / "mlp64.safetensors"
    save(sd, path)
    assert path.read_bytes()[0] == 0x80
    assert_same(load(path), sd)
    with open(path, "rb") as f:
        assert_same(load(f), sd)
    assert load_metadata(path) == {}
    for pad in range(300):                   # metadata of a length that keeps the 0x80
        save(sd, path, metadata={"model": "m" * pad})
        if path.read_bytes()[0] == 0x80:
            break
    assert path.read_bytes()[0] == 0x80
    assert load_metadata(path) == {"model": "m" * pad}
    assert load_metadata(io.BytesIO(path.read_bytes())) == {"model": "m" * pad}


def test_files_of_every_header_length_first_byte_load(tmp_path):
    """safetensors pads its header to a multiple of 8, so its first byte takes 32 values;
    key names of 1..300 characters hit every one of them (and several header sizes)."""
    seen = set()
    for n in range(1, 301):
        sd = {"k" * n: Tensor(np.arange(n % 7 + 1, dtype=np.float32))}
        data = io.BytesIO()
        save(sd, data)
        raw = data.getvalue()
        seen.add(raw[0])
        path = tmp_path / f"f{n}.st"
        path.write_bytes(raw)
        assert_same(load(path), sd)
        assert_same(load(io.BytesIO(raw)), sd)
    assert seen == set(range(0, 256, 8))


@requires_torch
@pytest.mark.parametrize("zipfile", [True, False], ids=["zip", "legacy-pickle"])
def test_real_pytorch_checkpoints_are_still_recognised(tmp_path, zipfile):
    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, path, _use_new_zipfile_serialization=zipfile)
    for source in (path, io.BytesIO(path.read_bytes())):
        with pytest.raises(ValueError, match="looks like a PyTorch pickle checkpoint"):
            load(source)


@pytest.mark.parametrize("raw, pattern", [
    (b"PK\x03\x04" + b"\x00" * 40, "PyTorch pickle"),
    (b"\x80\x02}q\x00." + b"\x00" * 40, "PyTorch pickle"),
    (b"\x80\x09" + b"\x00" * 40, "not a valid safetensors file"),   # no pickle protocol 9
    (b"PK\x05\x06" + b"\x00" * 40, "not a valid safetensors file"),  # not a zip's start
    (b"abc", "not a valid safetensors file"),
    (b"", "not a valid safetensors file"),
], ids=["zip", "pickle2", "0x80-not-pickle", "PK-not-zip", "short", "empty"])
def test_signatures_are_matched_in_full(tmp_path, raw, pattern):
    path = tmp_path / "file.bin"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=f"{re.escape(str(path))}.*{pattern}|{pattern}"):
        load(path)
    with pytest.raises(ValueError, match=pattern):
        load(io.BytesIO(raw))


# ----------------------------------------------------------------------------- item 13: malformed
def safetensors_bytes(metadata, tensors=None):
    tensors = {"w": np.ones(2, np.float32)} if tensors is None else tensors
    return safetensors.numpy.save(tensors, metadata=metadata)


DEEP = "[" * 100_000 + "]" * 100_000
MALFORMED_METADATA = [
    ({serialization.STRUCTURE_METADATA: "{not json"}, "is not valid JSON"),
    ({serialization.STRUCTURE_METADATA: DEEP}, "nested too deeply"),
    ({serialization.STRUCTURE_METADATA: json.dumps({"__tensor__": "missing"})},
     "refers to a tensor 'missing' the file does not hold"),
    ({serialization.STRUCTURE_METADATA: json.dumps({"__tensor__": 5})}, "refers to a tensor 5"),
    ({serialization.STRUCTURE_METADATA: json.dumps({"__dict__": 5})}, "unrecognised entry"),
    ({serialization.STRUCTURE_METADATA: json.dumps({"__dict__": [[[1], 2]]})},
     "unrecognised entry"),
    ({serialization.STRUCTURE_METADATA: json.dumps({"__dict__": [[1]]})}, "unrecognised entry"),
    ({serialization.STRUCTURE_METADATA: json.dumps({"__tuple__": 3})}, "unrecognised entry"),
    ({serialization.STRUCTURE_METADATA: json.dumps({"a": 1})}, "unrecognised entry"),
    ({serialization.KEYS_METADATA: "[1, 2"}, "is not valid JSON"),
    ({serialization.KEYS_METADATA: json.dumps({"w": 1})}, "must be a JSON list"),
    ({serialization.KEYS_METADATA: json.dumps([["w"]])}, "must be a JSON list"),
]


@pytest.mark.parametrize("metadata, pattern", MALFORMED_METADATA,
                         ids=lambda v: "" if isinstance(v, dict) else v[:20])
def test_malformed_metadata_raises_our_value_error_naming_the_file(tmp_path, metadata, pattern):
    """Regression: JSONDecodeError, KeyError, TypeError and RecursionError escaped."""
    raw = safetensors_bytes(metadata)
    path = tmp_path / "bad-metadata.st"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=f"load: {re.escape(str(path))}: .*{pattern}"):
        load(path)
    with pytest.raises(ValueError, match=f"load: <BytesIO object>: .*{pattern}"):
        load(io.BytesIO(raw))


def test_a_structure_nested_deeper_than_python_recursion_is_refused_cleanly(tmp_path):
    deep = "[" * 600 + "]" * 600        # JSON parses it; rebuilding it recursively cannot
    path = tmp_path / "deep.st"
    path.write_bytes(safetensors_bytes({serialization.STRUCTURE_METADATA: deep}))
    with pytest.raises(ValueError, match="deep.st.*nested too deeply"):
        load(path)
    nested = []
    for _ in range(5000):
        nested = [nested]
    with pytest.raises(ValueError, match="save: the object is nested too deeply"):
        save(nested, tmp_path / "x.st")
    assert not (tmp_path / "x.st").exists()


def header_file(header_bytes, length=None, data=b""):
    length = len(header_bytes) if length is None else length
    return struct.pack("<Q", length) + header_bytes + data


@pytest.mark.parametrize("raw, pattern", [
    (header_file(b'{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}', data=b"x"),
     "not a valid safetensors file"),                                 # the library's error
    (header_file(b'{"w": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"), "nested too deeply"),
    (header_file(b'{"a": 1,}'), "JSON header is malformed"),
    (header_file(b'[1, 2, 3]'), "not a valid safetensors file"),
    (header_file(b'{"__metadata__": {"a": 1}}'), "must map strings to strings"),
    (header_file(b'{}', length=2 ** 40), "not a valid safetensors file"),
    (header_file(b'{}', length=2 ** 64 - 1), "not a valid safetensors file"),
], ids=["safetensor-error", "deep-header", "bad-json", "not-object", "metadata-types",
        "huge-length", "max-length"])
def test_malformed_headers_raise_our_value_error_for_paths_and_file_objects(tmp_path, raw,
                                                                            pattern):
    path = tmp_path / "bad.st"
    path.write_bytes(raw)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=f"{re.escape(str(path))}.*{pattern}"):
            load(path)
        with pytest.raises(ValueError, match=f"<BytesIO object>.*{pattern}"):
            load(io.BytesIO(raw))
        with open(path, "rb") as f, pytest.raises(ValueError, match=f"bad.st.*{pattern}"):
            load(f)                                    # a file object is named by its path
        with pytest.raises(ValueError, match=pattern):
            load_metadata(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2 ** 20, f"{peak} bytes allocated for a {len(raw)}-byte file"


def test_a_text_mode_file_object_is_a_clear_error(tmp_path):
    path = tmp_path / "m.st"
    save({"w": Tensor(np.ones(2, np.float32))}, path)
    with open(path, encoding="latin-1") as f, pytest.raises(ValueError, match="open the file "
                                                                               "with 'rb'"):
        load(f)


# ----------------------------------------------------------------------------- item 13: full disk
def temporaries(folder):
    return [name for name in os.listdir(folder) if serialization.TEMP_MARKER in name]


def test_a_full_disk_names_the_path_and_leaves_the_old_file_and_no_temporary(tmp_path,
                                                                             monkeypatch):
    path = tmp_path / "model.safetensors"
    save(mlp_state_dict(8), path)
    before = path.read_bytes()
    real_write = os.write
    calls = []

    def full_disk(fd, data):
        calls.append(len(data))
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, bytes(data[: len(data) // 2]))   # a short write first

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(OSError, match=rf"\[Errno 28\] save: could not write "
                                      rf"{re.escape(str(path))}: No space left on device") as err:
        save(mlp_state_dict(64), path)
    monkeypatch.undo()
    assert err.value.errno == errno.ENOSPC
    assert len(calls) == 2
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.safetensors"]


def test_a_missing_folder_names_the_target(tmp_path):
    path = tmp_path / "no-such-folder" / "model.safetensors"
    with pytest.raises(FileNotFoundError, match=rf"save: could not write {re.escape(str(path))}"):
        save({"w": Tensor(np.ones(2, np.float32))}, path)


# ----------------------------------------------------------------------------- item 11: temporaries
def test_temporaries_are_named_recognisably(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    seen = []
    real_fsync = os.fsync

    def look(fd):
        seen.extend(temporaries(tmp_path))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", look)
    save(mlp_state_dict(8), path)
    (name,) = seen
    match = TEMP_NAME.match(name)
    assert match and match["target"] == "model.safetensors"
    assert int(match["pid"]) == os.getpid()
    assert temporaries(tmp_path) == []


def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_save_removes_stale_temporaries_of_its_target_only(tmp_path):
    path = tmp_path / "model.safetensors"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        gone = dead_pid()
        stale = [f".model.safetensors.tinygrad_cv-tmp.{gone}.abc123",
                 f".model.safetensors.tinygrad_cv-tmp.{os.getpid()}.def456"]  # ours, not active
        kept = [f".model.safetensors.tinygrad_cv-tmp.{sleeper.pid}.0a0b0c",   # a live writer
                f".other.safetensors.tinygrad_cv-tmp.{gone}.abc123",          # another target
                f".model.safetensors.{gone}.tmp"]                            # not ours
        for name in stale + kept:
            (tmp_path / name).write_bytes(b"x" * 1000)
        save(mlp_state_dict(8), path)
        assert sorted(os.listdir(tmp_path)) == sorted(kept + ["model.safetensors"])
    finally:
        sleeper.kill()
        sleeper.wait()


SAVER = textwrap.dedent('''
    import os, signal, sys, time
    import numpy as np
    from tinygrad_cv import serialization
    from tinygrad_cv.tensor import Tensor

    mode, path = sys.argv[1], sys.argv[2]
    if mode == "handled":
        signal.signal(signal.SIGTERM, lambda *a: print("handler ran", flush=True))
    real_fsync = os.fsync

    def slow_fsync(fd):                 # the temporary is written; the rename is to come
        os.fsync = real_fsync
        print("writing", flush=True)
        time.sleep(2 if mode == "handled" else 60)
        return real_fsync(fd)

    os.fsync = slow_fsync
    try:
        serialization.save({"w": Tensor(np.full(3_000_000, 2.0, np.float32))}, path)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(0)
    print("saved", flush=True)
    print("handler restored", signal.getsignal(signal.SIGTERM) is not None, flush=True)
''')


def start_saver(tmp_path, mode, path):
    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    proc = subprocess.Popen([sys.executable, str(script), mode, str(path)], cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.strip() == "writing", line + proc.stderr.read()
    return proc


def test_a_save_killed_with_sigkill_is_cleaned_up_by_the_next_save(tmp_path):
    path = tmp_path / "model.safetensors"
    save({"w": Tensor(np.ones(3, np.float32))}, path)
    proc = start_saver(tmp_path, "plain", path)
    proc.kill()
    proc.wait()
    assert len(temporaries(tmp_path)) == 1          # SIGKILL cannot be handled ...
    np.testing.assert_array_equal(load(path)["w"].numpy(), np.ones(3))   # old file intact
    save({"w": Tensor(np.zeros(3, np.float32))}, path)
    assert temporaries(tmp_path) == []              # ... the next save removes its temporary
    np.testing.assert_array_equal(load(path)["w"].numpy(), np.zeros(3))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_save_ended_by_a_signal_removes_its_temporary(tmp_path, signum):
    path = tmp_path / "model.safetensors"
    save({"w": Tensor(np.ones(3, np.float32))}, path)
    proc = start_saver(tmp_path, "plain", path)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    if signum == signal.SIGTERM:
        assert proc.returncode == -signal.SIGTERM, err   # it still dies of the signal
    else:
        assert proc.returncode == 0 and "interrupted" in out, err   # KeyboardInterrupt
    assert temporaries(tmp_path) == []
    np.testing.assert_array_equal(load(path)["w"].numpy(), np.ones(3))


def test_a_programs_own_signal_handler_is_called_and_the_save_completes(tmp_path):
    path = tmp_path / "model.safetensors"
    proc = start_saver(tmp_path, "handled", path)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.split("\n")[:3] == ["handler ran", "saved", "handler restored True"], out
    assert temporaries(tmp_path) == []
    assert load(path)["w"].shape == (3_000_000,)


def test_signal_handlers_are_restored_after_a_save(tmp_path):
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    save({"w": Tensor(np.ones(3, np.float32))}, tmp_path / "m.st")
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


# ----------------------------------------------------------------------------- item 12: IDX bombs
def idx_header(type_code, shape):
    return bytes([0, 0, type_code, len(shape)]) + b"".join(struct.pack(">I", n) for n in shape)


def gzip_bomb(header, gib=1):
    """A ~1 MB .gz that inflates to `gib` GiB: the header, then zeros, as 64 gzip members
    per GiB (concatenated members are one valid .gz file)."""
    import gzip
    zeros = gzip.compress(bytes(16 << 20), compresslevel=9)
    return gzip.compress(header + bytes(16 << 20), compresslevel=9) + zeros * (64 * gib - 1)


def peak_bytes_of(fn):
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_gzip_bomb_is_rejected_with_only_the_declared_size_in_memory(tmp_path):
    """Regression (issue 11.12): a 1 MB .gz inflating to 1 GiB peaked at 2.1 GB RSS."""
    from tinygrad_cv.datasets import IDXFormatError, read_idx
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip_bomb(idx_header(0x08, (10, 28, 28))))
    assert path.stat().st_size < 2 << 20

    def read():
        with pytest.raises(IDXFormatError, match=f"{re.escape(str(path))}: unexpected bytes "
                                                 f"after the 7840 data bytes"):
            read_idx(path)
    peak = peak_bytes_of(read)
    assert peak < 8 << 20, f"peak {peak} bytes"


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("type_code, shape, pattern", [
    (0x08, (2 ** 32 - 1,) * 4, r"overflows a 64-bit size"),
    (0x0E, (2 ** 31, 2 ** 31, 2 ** 31), r"overflows a 64-bit size"),
    (0x08, (60000, 60000, 60000), r"more than the 4294967296 bytes"),
    (0x0D, (100000, 100, 100), r"truncated: shape \(100000, 100, 100\) of float32 needs "
                               r"4000000000 data bytes, (more than a \d+-byte gzip file "
                               r"can hold|the file has 16)"),
], ids=["overflow-u8", "overflow-f8", "absurd", "more-than-the-file-holds"])
def test_absurd_idx_headers_are_refused_before_allocating(tmp_path, compress, type_code, shape,
                                                          pattern):
    import gzip
    from tinygrad_cv.datasets import IDXFormatError, read_idx
    raw = idx_header(type_code, shape) + bytes(16)
    path = tmp_path / ("bad-idx.gz" if compress else "bad-idx")
    path.write_bytes(gzip.compress(raw) if compress else raw)

    def read():
        with pytest.raises(IDXFormatError, match=f"{re.escape(str(path))}: .*{pattern}"):
            read_idx(path)
    assert peak_bytes_of(read) < 4 << 20


def test_multi_member_gzip_idx_files_still_read(tmp_path):
    import gzip
    from tinygrad_cv.datasets import read_idx
    images = (np.arange(3 * 28 * 28) % 251).astype(np.uint8).reshape(3, 28, 28)
    raw = idx_header(0x08, images.shape) + images.tobytes()
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]) + b"\0" * 8)
    np.testing.assert_array_equal(read_idx(path), images)
