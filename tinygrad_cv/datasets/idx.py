"""Reader for the IDX format of MNIST-style files (raw or gzip-compressed).

IDX layout (big-endian): two zero bytes, a type code, the number of dimensions, one
4-byte size per dimension, then the values in C order. Every check that can fail raises
`IDXFormatError` naming the file, so a truncated or corrupt file is never read as a
silently shorter dataset.
"""
from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

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


class IDXFormatError(ValueError):
    """A file that is not a complete, well-formed IDX file."""


def read_idx_bytes(path) -> bytes:
    """The file's IDX bytes, decompressed when it starts with the gzip magic number."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError as exc:
        raise IDXFormatError(f"{path}: the gzip stream is truncated ({exc}); "
                             "delete the file and download it again") from None
    except (OSError, zlib.error) as exc:
        raise IDXFormatError(f"{path}: the gzip data is corrupt ({exc}); "
                             "delete the file and download it again") from None


def parse_idx(buffer: bytes, source: str = "<bytes>") -> np.ndarray:
    """A native-endian NumPy array from the bytes of an IDX file; `source` names it in errors."""
    if len(buffer) < 4:
        raise IDXFormatError(f"{source}: {len(buffer)} bytes is too short for an IDX header")
    zero0, zero1, type_code, ndim = buffer[0], buffer[1], buffer[2], buffer[3]
    magic = int.from_bytes(buffer[:4], "big")
    if zero0 != 0 or zero1 != 0 or type_code not in IDX_DTYPES:
        raise IDXFormatError(f"{source}: bad magic number 0x{magic:08x}; an IDX file starts "
                             "with two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0b "
                             "int16, 0x0c int32, 0x0d float32, 0x0e float64) and a dimension "
                             "count (e.g. 0x00000803 = 2051 for MNIST images)")
    if ndim == 0:
        raise IDXFormatError(f"{source}: magic 0x{magic:08x} declares 0 dimensions")
    header_size = 4 + 4 * ndim
    if len(buffer) < header_size:
        raise IDXFormatError(f"{source}: truncated header: {ndim} dimensions need "
                             f"{header_size} header bytes, the file has {len(buffer)}")
    shape = tuple(int.from_bytes(buffer[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(buffer) - header_size
    if actual < expected:
        raise IDXFormatError(f"{source}: truncated: shape {shape} of {dtype.name} needs "
                             f"{expected} data bytes, the file has {actual}")
    if actual > expected:
        raise IDXFormatError(f"{source}: {actual - expected} unexpected bytes after the "
                             f"{expected} data bytes of shape {shape}")
    values = np.frombuffer(buffer, dtype=dtype, count=expected // dtype.itemsize,
                           offset=header_size)
    return values.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def read_idx(path) -> np.ndarray:
    """Read an IDX file (raw or .gz) into a NumPy array, validating header and size."""
    return parse_idx(read_idx_bytes(path), os.fspath(path))
