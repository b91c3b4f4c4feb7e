"""Vectorized pair counting: concept-id sets (CSR) → unordered pair codes → exact (code, count) runs.

A pair {a, b} with a < b is the int64 code ``a * V + b``; sorted codes are therefore sorted by (a, b).
Runs are sorted unique codes with their counts; runs add by merging, which is all a reduce step needs.
"""

from __future__ import annotations

import numpy as np

_TRIU_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _triu(k: int) -> tuple[np.ndarray, np.ndarray]:
    got = _TRIU_CACHE.get(k)
    if got is None:
        got = _TRIU_CACHE[k] = np.triu_indices(k, 1)
    return got


def pair_codes(indptr: np.ndarray, ids: np.ndarray, n_concepts: int) -> np.ndarray:
    """All unordered pairs within each row's id set (ids unique per row), as unsorted int64 codes."""
    lens = np.diff(indptr)
    multi = lens >= 2
    if not multi.any():
        return np.zeros(0, np.int64)
    out = []
    ids64 = ids.astype(np.int64, copy=False)
    for k in np.unique(lens[multi]).tolist():
        starts = indptr[:-1][lens == k]
        mat = ids64[starts[:, None] + np.arange(k)]
        i, j = _triu(k)
        a, b = mat[:, i], mat[:, j]
        lo = np.minimum(a, b)
        lo *= n_concepts
        lo += np.maximum(a, b)
        out.append(lo.ravel())
    return np.concatenate(out) if len(out) > 1 else out[0]


def compact(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort codes and count repeats: (unique codes, counts)."""
    if codes.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    codes = np.sort(codes)
    starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
    counts = np.diff(np.append(starts, codes.size)).astype(np.int64)
    return codes[starts], counts


def merge_runs(runs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Add several (codes, counts) runs into one; exact, result sorted by code."""
    runs = [r for r in runs if r[0].size]
    if not runs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if len(runs) == 1:
        return np.asarray(runs[0][0], np.int64), np.asarray(runs[0][1], np.int64)
    codes = np.concatenate([r[0] for r in runs])
    counts = np.concatenate([r[1] for r in runs]).astype(np.int64, copy=False)
    order = np.argsort(codes, kind="stable")
    codes = codes[order]
    counts = counts[order]
    starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
    return codes[starts], np.add.reduceat(counts, starts)


class PairAccumulator:
    """Collect pair codes of one task; compacts itself so memory stays bounded by distinct pairs."""

    def __init__(self, n_concepts: int, buffer_limit: int = 16_000_000) -> None:
        self.n_concepts = n_concepts
        self.buffer_limit = buffer_limit
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []

    def add_sets(self, indptr: np.ndarray, ids: np.ndarray) -> None:
        codes = pair_codes(indptr, ids, self.n_concepts)
        if codes.size:
            self._buffer.append(codes)
            self._buffered += codes.size
            if self._buffered >= self.buffer_limit:
                self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._runs.append(compact(np.concatenate(self._buffer)))
            self._buffer, self._buffered = [], 0
            if len(self._runs) > 4:
                self._runs = [merge_runs(self._runs)]

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        self._flush()
        return merge_runs(self._runs)
