"""Download one file, verify its MD5 and move it into place atomically.

The file is streamed into a temporary file in the destination folder and renamed over
the final name only once its checksum matches, so an interrupted or corrupted download
never leaves a file that looks complete.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from urllib.request import Request, urlopen

from ..errors import UserError

CHUNK_SIZE = 1 << 16
TIMEOUT_S = 30


class ChecksumError(UserError, ValueError):
    """Downloaded bytes whose MD5 is not the published one."""


def md5_of_bytes(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def md5_of_file(path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _progress_bar(total, description):
    """A tqdm bar in bytes when tqdm is installed, else None (downloads stay silent)."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                desc=description, leave=False)


def download_file(url: str, destination, md5: str, progress: bool = True) -> None:
    """Fetch `url` into `destination`, replacing it only if the bytes' MD5 equals `md5`.

    Raises `urllib.error.URLError`/`OSError` on network failures and `ChecksumError` on
    a checksum mismatch; in both cases nothing is left at `destination`.
    """
    destination = os.fspath(destination)
    folder = os.path.dirname(destination) or "."
    os.makedirs(folder, exist_ok=True)
    fd, temp_path = tempfile.mkstemp(prefix=os.path.basename(destination) + ".",
                                     suffix=".part", dir=folder)
    digest = hashlib.md5()
    try:
        request = Request(url, headers={"User-Agent": "tinygrad_cv"})
        with os.fdopen(fd, "wb") as out, urlopen(request, timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            bar = _progress_bar(int(length) if length else None,
                                os.path.basename(destination)) if progress else None
            try:
                for chunk in iter(lambda: response.read(CHUNK_SIZE), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
        if digest.hexdigest() != md5:
            raise ChecksumError(f"{url}: downloaded MD5 {digest.hexdigest()} does not match "
                                f"the published {md5}")
        os.replace(temp_path, destination)
    except BaseException:
        if os.path.exists(temp_path):
            os.remove(temp_path)
        raise
