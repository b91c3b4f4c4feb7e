"""What every dataset loader shares: image file extensions, required-column checks and image path resolution."""

from __future__ import annotations

import os

import pyarrow as pa

from clipcomp.errors import ClipcompError

__all__ = ["IMAGE_EXTENSIONS", "require_columns", "resolve"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def require_columns(table: pa.Table, columns: list[str], path: str, what: str = "") -> None:
    """One-line error naming the file and the missing columns (and the columns it has)."""
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise ClipcompError(f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}"
                            f"{' ' + what if what else ''} (columns: {', '.join(table.column_names)})")


def resolve(path: str, root: str | None) -> str:
    """An image path as given when absolute (or no root), else under `root`."""
    return path if os.path.isabs(path) or root is None else os.path.join(root, path)
