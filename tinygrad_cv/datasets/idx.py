"""Reader for the IDX format of MNIST-style files (raw or gzip-compressed).

IDX layout (big-endian): two zero bytes, a type code, the number of dimensions, one
4-byte size per dimension, then the values in C order. Every check that can fail raises
`IDXFormatError` naming the file, so a truncated or corrupt file is never read as a
silently shorter dataset.

The header is read and checked first, and the file then yields at most the byte count
it declares plus one (to detect trailing data): a small .gz that inflates to gigabytes
(a decompression bomb, or a corrupt download) is rejected with only the declared size
in memory, and a header declaring more than `MAX_IDX_BYTES`, more than the file could
hold, or sizes whose product overflows is rejected before anything is allocated.
"""
from __future__ import annotations

import os
import zlib

import numpy as np

from ..errors import UserError

GZIP_MAGIC = b"\x1f\x8b"

# IDX type code -> big-endian dtype of the values.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


MAX_IDX_BYTES = 1 << 32
"""The most data bytes an IDX header may declare (4 GiB; EMNIST's largest file is 0.6 GiB)."""
DEFLATE_MAX_RATIO = 1032
"""Deflate's largest possible expansion (bytes out per byte in): a .gz of n bytes cannot
hold more than about 1032 * n bytes, so a header declaring more is refused unread."""
_READ_CHUNK = 1 << 20


class IDXFormatError(UserError, ValueError):
    """A file that is not a complete, well-formed IDX file."""


def _check_magic(head: bytes, source: str):
    """(dtype, ndim) from the first 4 bytes."""
    if len(head) < 4:
        raise IDXFormatError(f"{source}: {len(head)} bytes is too short for an IDX header")
    zero0, zero1, type_code, ndim = head[0], head[1], head[2], head[3]
    magic = int.from_bytes(head[:4], "big")
    if zero0 != 0 or zero1 != 0 or type_code not in IDX_DTYPES:
        raise IDXFormatError(f"{source}: bad magic number 0x{magic:08x}; an IDX file starts "
                             "with two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0b "
                             "int16, 0x0c int32, 0x0d float32, 0x0e float64) and a dimension "
                             "count (e.g. 0x00000803 = 2051 for MNIST images)")
    if ndim == 0:
        raise IDXFormatError(f"{source}: magic 0x{magic:08x} declares 0 dimensions")
    return IDX_DTYPES[type_code], ndim


def _declared_data_bytes(shape, dtype, source, most=None, what=""):
    """The data byte count the header declares, refused when the product overflows a
    64-bit size, exceeds MAX_IDX_BYTES, or exceeds `most` (what the file can hold)."""
    count = 1
    for n in shape:
        count *= n
    nbytes = count * dtype.itemsize
    if nbytes >= 2 ** 63:
        raise IDXFormatError(f"{source}: the header declares shape {shape}, whose size "
                             f"({count} values) overflows a 64-bit size; the file is corrupt")
    if nbytes > MAX_IDX_BYTES:
        raise IDXFormatError(f"{source}: the header declares shape {shape} of {dtype.name} "
                             f"({nbytes} bytes), more than the {MAX_IDX_BYTES} bytes an IDX "
                             f"file may hold here; the file is corrupt")
    if most is not None and nbytes > most:
        raise IDXFormatError(f"{source}: truncated: shape {shape} of {dtype.name} needs "
                             f"{nbytes} data bytes, {what}")
    return nbytes


class _RawStream:
    def __init__(self, f):
        self.f = f

    def read_into(self, view) -> int:
        filled = 0
        while filled < len(view):
            n = self.f.readinto(view[filled:])
            if not n:
                break
            filled += n
        return filled


class _GzipStream:
    """Decompresses a .gz file (one or more members) into the caller's buffer, never more
    than the buffer asks for."""

    def __init__(self, f, source):
        self.f = f
        self.source = source
        self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.pending = b""
        self.exhausted = False
        self.done = False

    def _corrupt(self, detail):
        return IDXFormatError(f"{self.source}: the gzip data is corrupt ({detail}); "
                              "delete the file and download it again")

    def _next_member(self):
        rest = self.inflate.unused_data
        while len(rest) < 2 and not self.exhausted:
            more = self.f.read(_READ_CHUNK)
            self.exhausted = not more
            rest += more
        if not rest.strip(b"\0"):      # gzip tolerates zero padding after the last member
            self.done = True
            return
        if not rest.startswith(GZIP_MAGIC):
            raise self._corrupt("unexpected data after the end of the gzip stream")
        self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.pending = rest

    def read_into(self, view) -> int:
        filled = 0
        while filled < len(view) and not self.done:
            if self.inflate.eof:
                self._next_member()
                continue
            if not self.pending and not self.exhausted:
                self.pending = self.f.read(_READ_CHUNK)
                self.exhausted = not self.pending
            try:
                out = self.inflate.decompress(self.pending, min(len(view) - filled, _READ_CHUNK))
            except zlib.error as exc:
                raise self._corrupt(exc) from None
            self.pending = self.inflate.unconsumed_tail
            view[filled:filled + len(out)] = out
            filled += len(out)
            if not out and not self.pending and self.exhausted and not self.inflate.eof:
                raise IDXFormatError(f"{self.source}: the gzip stream is truncated (it ends "
                                     "before its end-of-stream marker); delete the file and "
                                     "download it again")
        return filled


def read_idx_bytes(path) -> bytearray:
    """The file's IDX bytes (header and data), decompressed when it starts with the gzip
    magic number; the header is checked before the data is read, and at most the declared
    size (plus one byte, to detect trailing data) is ever decompressed."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        compressed = f.read(2) == GZIP_MAGIC
        f.seek(0)
        file_size = os.fstat(f.fileno()).st_size
        stream = _GzipStream(f, path) if compressed else _RawStream(f)

        head = bytearray(4)
        got = stream.read_into(memoryview(head))
        dtype, ndim = _check_magic(bytes(head[:got]), path)
        dims = bytearray(4 * ndim)
        got = stream.read_into(memoryview(dims))
        header_size = 4 + 4 * ndim
        if got < len(dims):
            raise IDXFormatError(f"{path}: truncated header: {ndim} dimensions need "
                                 f"{header_size} header bytes, the file has {4 + got}")
        shape = tuple(int.from_bytes(dims[4 * i:4 * i + 4], "big") for i in range(ndim))
        if compressed:
            most = DEFLATE_MAX_RATIO * file_size
            what = f"more than a {file_size}-byte gzip file can hold"
        else:
            most = file_size - header_size
            what = f"the file has {most}"
        expected = _declared_data_bytes(shape, dtype, path, most, what)

        buffer = bytearray(header_size + expected)
        buffer[:4] = head
        buffer[4:header_size] = dims
        got = stream.read_into(memoryview(buffer)[header_size:])
        if got < expected:
            raise IDXFormatError(f"{path}: truncated: shape {shape} of {dtype.name} needs "
                                 f"{expected} data bytes, the file has {got}")
        if stream.read_into(memoryview(bytearray(1))):
            extra = (f"{file_size - header_size - expected} " if not compressed else "")
            raise IDXFormatError(f"{path}: {extra}unexpected bytes after the {expected} data "
                                 f"bytes of shape {shape}")
    return buffer


def parse_idx(buffer, source: str = "<bytes>") -> np.ndarray:
    """A native-endian NumPy array from the bytes of an IDX file; `source` names it in errors."""
    dtype, ndim = _check_magic(bytes(buffer[:4]), source)
    header_size = 4 + 4 * ndim
    if len(buffer) < header_size:
        raise IDXFormatError(f"{source}: truncated header: {ndim} dimensions need "
                             f"{header_size} header bytes, the file has {len(buffer)}")
    shape = tuple(int.from_bytes(buffer[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    actual = len(buffer) - header_size
    expected = _declared_data_bytes(shape, dtype, source, actual, f"the file has {actual}")
    if actual > expected:
        raise IDXFormatError(f"{source}: {actual - expected} unexpected bytes after the "
                             f"{expected} data bytes of shape {shape}")
    values = np.frombuffer(buffer, dtype=dtype, count=expected // dtype.itemsize,
                           offset=header_size)
    return values.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def read_idx(path) -> np.ndarray:
    """Read an IDX file (raw or .gz) into a NumPy array, validating header and size."""
    return parse_idx(read_idx_bytes(path), os.fspath(path))
