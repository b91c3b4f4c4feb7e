"""In-memory-generated image sets stored as one memory-mapped array: DIR/images.npy (uint8 N×H×W×3) and
DIR/manifest.parquet (one row per image: caption, class, label, domain, …). The fast path for miniature
experiments (no PNG decoding): training reads rows straight from the map (`clipcomp train --data DIR`)."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa

from clipcomp.errors import ClipcompError
from clipcomp.io import read_table


def is_arrays_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "images.npy")) and os.path.isfile(os.path.join(path, "manifest.parquet"))


class ArraysDataset:
    """Rows of an arrays directory: `.images(rows)`, `.captions`, `.table` (the manifest), `len()`."""

    def __init__(self, path: str, caption_column: str = "caption") -> None:
        if not is_arrays_dir(path):
            raise ClipcompError(f"{path}: not an arrays dataset (needs images.npy and manifest.parquet)")
        try:
            self._images = np.load(os.path.join(path, "images.npy"), mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise ClipcompError(f"{path}/images.npy: unreadable ({exc})") from None
        self.table: pa.Table = read_table(os.path.join(path, "manifest.parquet"))
        if self._images.ndim != 4 or self._images.shape[-1] != 3 or self._images.dtype != np.uint8:
            raise ClipcompError(f"{path}/images.npy: expected uint8 N×H×W×3, got {self._images.dtype} "
                                f"{self._images.shape}")
        if self.table.num_rows != len(self._images):
            raise ClipcompError(f"{path}: manifest.parquet has {self.table.num_rows} rows but images.npy holds "
                                f"{len(self._images)} images")
        if caption_column not in self.table.column_names:
            raise ClipcompError(f"{path}/manifest.parquet: no {caption_column!r} column "
                                f"(columns: {', '.join(self.table.column_names)})")
        self.captions = [str(c) for c in self.table.column(caption_column).to_pylist()]
        self.path = path

    def __len__(self) -> int:
        return len(self._images)

    def images(self, rows) -> np.ndarray:
        return np.asarray(self._images[np.asarray(rows, np.int64)])
