"""Caption shards on object stores or web servers: ``s3://``, ``gs://``, ``az://``, ``hf://``, ``http(s)://`` …

LAION and DataComp metadata live as Parquet shards in buckets and behind HTTP. Remote inputs are opened
through fsspec (the filesystem layer pandas, Dask and Hugging Face use; it hands PyArrow seekable files), so
the statistics engine streams them exactly as it streams local files: Parquet footers and row groups are
read by range requests, text files by byte ranges. Credentials and endpoints come from the user's own
fsspec/cloud configuration; nothing here reaches the network on its own.
"""

from __future__ import annotations

import re
from functools import lru_cache

from clipcomp.errors import ClipcompError

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
BLOCK_SIZE = 8 << 20  # read-ahead per request: large enough that a row group is a few requests


def is_remote(path: str) -> bool:
    """A URL with a scheme other than file://."""
    return bool(_URL.match(path)) and not path.lower().startswith("file://")


@lru_cache(maxsize=16)
def _filesystem(protocol: str):
    try:
        import fsspec
    except ImportError:
        raise ClipcompError("remote inputs need fsspec (pip install 'clipcomp[remote]')") from None
    try:
        return fsspec.filesystem(protocol)
    except (ImportError, ValueError) as exc:
        raise ClipcompError(f"cannot open {protocol}:// inputs ({exc}); install the fsspec backend for it "
                            "(e.g. aiohttp for http, s3fs for s3, gcsfs for gs)") from None


def filesystem(url: str):
    """(fsspec filesystem, the path it understands) for a URL."""
    protocol = url.split("://", 1)[0].lower()
    fs = _filesystem(protocol)
    path = url if protocol in ("http", "https") else fs._strip_protocol(url)
    return fs, path


def _failed(url: str, exc: BaseException) -> ClipcompError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        return ClipcompError(f"{url}: input not found")
    return ClipcompError(f"{url}: cannot read ({text})")


def info(url: str) -> dict:
    """Size in bytes and a version token (ETag / mtime / generation when the store gives one)."""
    fs, path = filesystem(url)
    try:
        meta = fs.info(path)
    except Exception as exc:  # noqa: BLE001 - any backend error becomes one line naming the URL
        raise _failed(url, exc) from None
    size = meta.get("size")
    if size is None:
        raise ClipcompError(f"{url}: the server does not report a size (needed to plan byte ranges)")
    version = next((str(meta[k]) for k in ("ETag", "etag", "mtime", "LastModified", "last_modified",
                                           "generation", "updated") if meta.get(k) is not None), "")
    return {"size": int(size), "version": version}


def open_remote(url: str):
    """A seekable binary file over the URL (range requests, read-ahead of BLOCK_SIZE)."""
    fs, path = filesystem(url)
    try:
        return fs.open(path, "rb", block_size=BLOCK_SIZE)
    except Exception as exc:  # noqa: BLE001
        raise _failed(url, exc) from None


def expand(spec: str) -> list[str]:
    """A URL, or a glob pattern / prefix on stores that can list (not plain HTTP), as sorted URLs."""
    protocol = spec.split("://", 1)[0].lower()
    if protocol in ("http", "https") or not any(ch in spec for ch in "*?["):
        return [spec]
    fs, path = filesystem(spec)
    try:
        found = sorted(fs.glob(path))
    except Exception as exc:  # noqa: BLE001
        raise _failed(spec, exc) from None
    if not found:
        raise ClipcompError(f"{spec}: no files match this pattern")
    return [f"{protocol}://{p}" for p in found]
