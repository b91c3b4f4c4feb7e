"""Vectorized pair counting: concept-id sets (CSR) → unordered pair codes → exact (code, count) runs.

A pair {a, b} with a < b is the int64 code ``a * V + b``; sorted codes are therefore sorted by (a, b).
Runs are sorted unique codes with their counts; runs add by merging, which is all a reduce step needs.
"""

from __future__ import annotations

import numpy as np

from clipcomp.stats import divmod_codes

_TRIU_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _triu(k: int) -> tuple[np.ndarray, np.ndarray]:
    got = _TRIU_CACHE.get(k)
    if got is None:
        got = _TRIU_CACHE[k] = np.triu_indices(k, 1)
    return got


def pair_codes(indptr: np.ndarray, ids: np.ndarray, n_concepts: int, triangular: bool = False) -> np.ndarray:
    """All unordered pairs within each row's id set (ids unique per row), as unsorted int64 codes.

    Codes are ``a*V + b`` or, with `triangular`, the index of (a, b) in the packed upper triangle.
    """
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
        hi = np.maximum(a, b)
        if triangular:  # a*V - a*(a+1)/2 + (b - a - 1)
            hi -= lo + 1
            hi += lo * (2 * n_concepts - lo - 1) // 2
            out.append(hi.ravel())
        else:
            lo *= n_concepts
            lo += hi
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


_ONE = np.ones(1, dtype=np.uint32)
_DENSE: dict[int, np.ndarray] = {}
_DIRTY: set[int] = set()


def _dense_buffer(n_tri: int) -> np.ndarray:
    """A zeroed uint32 triangle, reused across tasks of one process (zeroing 1 GB per task would dominate).

    A task that died mid-way leaves it dirty; the next user then zeroes it in full.
    """
    buf = _DENSE.get(n_tri)
    if buf is None:
        _DENSE.clear()
        _DIRTY.clear()
        buf = _DENSE[n_tri] = np.zeros(n_tri, np.uint32)
    elif n_tri in _DIRTY:
        buf.fill(0)
    _DIRTY.add(n_tri)
    return buf


class PairAccumulator:
    """Collect the pair counts of one task, exactly, in memory bounded independently of the task size.

    Codes are buffered and compacted by sorting. Once a task has produced more codes than 1/16 of the
    packed triangle (and the triangle as uint32 fits `dense_bytes`), counting switches to a dense array
    with ``np.add.at`` — cheaper per code, but only worth its allocation on big tasks. uint32 is exact for
    any task of fewer than 2**32 captions.
    """

    def __init__(self, n_concepts: int, dense_bytes: int = 1 << 30, buffer_limit: int = 16_000_000) -> None:
        self.n_concepts = n_concepts
        self.buffer_limit = buffer_limit
        self.n_tri = n_concepts * (n_concepts - 1) // 2
        self.dense_allowed = 0 < self.n_tri * 4 <= dense_bytes
        self.switch_at = max(1, self.n_tri // 16)
        self._acc: np.ndarray | None = None
        self._seen = 0
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []

    @property
    def dense(self) -> bool:
        return self._acc is not None

    def _tri(self, codes: np.ndarray) -> np.ndarray:
        v = self.n_concepts
        a, b = divmod_codes(codes, v)
        b -= a + 1
        b += a * (2 * v - a - 1) // 2
        return b

    def add_sets(self, indptr: np.ndarray, ids: np.ndarray) -> None:
        if self._acc is not None:  # dense: triangle indices straight away
            tri = pair_codes(indptr, ids, self.n_concepts, triangular=True)
            np.add.at(self._acc, tri, _ONE)
            return
        codes = pair_codes(indptr, ids, self.n_concepts)
        if not codes.size:
            return
        self._seen += codes.size
        if self._acc is None and self.dense_allowed and self._seen >= self.switch_at:
            self._acc = _dense_buffer(self.n_tri)
            for c in self._buffer:
                np.add.at(self._acc, self._tri(c), _ONE)
            for c, n in self._runs:
                np.add.at(self._acc, self._tri(c), n.astype(np.uint32))
            self._buffer, self._buffered, self._runs = [], 0, []
        if self._acc is not None:
            np.add.at(self._acc, self._tri(codes), _ONE)
            return
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
        """Sorted unique ``a*V + b`` codes and their counts."""
        if self._acc is not None:
            tri = np.flatnonzero(self._acc)
            counts = self._acc[tri].astype(np.int64)
            self._acc[tri] = 0  # hand the buffer back all-zero for the next task in this process
            _DIRTY.discard(self._acc.size)
            v = self.n_concepts
            a_all = np.arange(v, dtype=np.int64)
            row_start = a_all * v - a_all * (a_all + 1) // 2  # tri index of (a, a+1)
            a = np.searchsorted(row_start, tri, side="right") - 1
            b = tri - row_start[a] + a + 1
            return a * v + b, counts
        self._flush()
        return merge_runs(self._runs)
