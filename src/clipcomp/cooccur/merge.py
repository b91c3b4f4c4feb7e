"""Reduce step: add partial counts from all tasks, exactly, in bounded memory."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather

from clipcomp.cooccur.pairs import merge_runs
from clipcomp.io import atomic_output


def merge_lemma_counts(paths: list[str], group: int = 64) -> pa.Table:
    """Sum per-task (lemma, count) tables into one, sorted by lemma."""
    acc: pa.Table | None = None
    for i in range(0, len(paths), group):
        tables = [feather.read_table(p) for p in paths[i:i + group]]
        if acc is not None:
            tables.append(acc)
        merged = pa.concat_tables(tables).group_by("lemma").aggregate([("count", "sum")])
        acc = merged.rename_columns(["lemma", "count"])
    if acc is None:
        return pa.table({"lemma": pa.array([], pa.string()), "count": pa.array([], pa.int64())})
    return acc.sort_by("lemma")


def select_vocabulary(counts: pa.Table, min_count: int, max_concepts: int | None) -> pa.Table:
    """Concepts with document count ≥ min_count, the max_concepts most frequent (ties by name); by name."""
    table = counts.filter(pc.greater_equal(counts.column("count"), min_count))
    if max_concepts is not None and table.num_rows > max_concepts:
        table = table.sort_by([("count", "descending"), ("lemma", "ascending")]).slice(0, max_concepts)
    return table.sort_by("lemma").rename_columns(["concept", "count"])


def open_run(path: str) -> np.ndarray:
    """A partial's codes or counts, memory-mapped: `.npy` (a task's partial) or raw `.i64` (a compacted one)."""
    if path.endswith(".i64"):
        return np.memmap(path, "<i8", "r") if os.path.getsize(path) else np.zeros(0, np.int64)
    return np.load(path, mmap_mode="r")


def sum_arrays(paths: list[str], size: int) -> np.ndarray:
    total = np.zeros(size, np.int64)
    for p in paths:
        total += np.load(p)
    return total


def merge_pair_partials(
    parts: list[tuple[str, str]], n_concepts: int, budget: int = 40_000_000
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (codes, counts) chunks in ascending code order, summing all partials.

    Partials are memory-mapped; the code space is cut into ranges of whole first-concept rows holding at
    most ~budget entries across all partials, so memory stays bounded however many partials there are.
    """
    runs = [(open_run(c), open_run(n)) for c, n in parts]
    runs = [r for r in runs if r[0].size]
    if not runs:
        return
    total = sum(r[0].size for r in runs)
    if total <= budget:
        yield merge_runs([(np.asarray(c), np.asarray(n)) for c, n in runs])
        return
    n_buckets = min(n_concepts, 4096)
    edges = (np.arange(n_buckets + 1, dtype=np.int64) * n_concepts // n_buckets) * n_concepts
    per_bucket = np.zeros(n_buckets, np.int64)
    cuts = []
    for codes, _ in runs:
        pos = np.searchsorted(codes, edges)
        cuts.append(pos)
        per_bucket += np.diff(pos)
    lo = 0
    while lo < n_buckets:
        hi, size = lo, 0
        while hi < n_buckets and (hi == lo or size + per_bucket[hi] <= budget):
            size += per_bucket[hi]
            hi += 1
        chunk = [(np.asarray(c[cut[lo]:cut[hi]]), np.asarray(n[cut[lo]:cut[hi]]))
                 for (c, n), cut in zip(runs, cuts, strict=True)]
        merged = merge_runs(chunk)
        if merged[0].size:
            yield merged
        lo = hi


@dataclass(frozen=True)
class MergeTask:
    """One key range [lo, hi) of pair codes, merged from every partial by one worker."""

    tid: int
    lo: int
    hi: int
    parts: tuple[tuple[str, str], ...]

    @property
    def label(self) -> str:
        return f"pair codes {self.lo}-{self.hi}"


def plan_merge(parts: list[tuple[str, str]], n_concepts: int, n_ranges: int, budget: int = 20_000_000
               ) -> list[MergeTask]:
    """Cut the code space into ranges of whole first-concept rows with about equal numbers of partial
    entries: `n_ranges` of them (several per worker, so that writing overlaps merging) unless that makes them
    smaller than 250k entries, more when one would exceed `budget` entries."""
    runs = [open_run(c) for c, _ in parts]
    total = sum(r.size for r in runs)
    if total == 0 or n_concepts == 0:
        return []
    n_buckets = min(n_concepts, 4096)
    edges = (np.arange(n_buckets + 1, dtype=np.int64) * n_concepts // n_buckets) * n_concepts
    per_bucket = np.zeros(n_buckets, np.int64)
    for codes in runs:
        per_bucket += np.diff(np.searchsorted(codes, edges))
    want = max(min(n_ranges, total // 250_000), -(-total // budget), 1)
    cum = np.cumsum(per_bucket)
    # bucket boundaries nearest to the equal-size quantiles
    cut_buckets = np.unique(np.searchsorted(cum, total * np.arange(1, want) / want, side="left") + 1)
    bounds = [0, *[int(b) for b in cut_buckets if 0 < b < n_buckets], n_buckets]
    bounds = sorted(set(bounds))
    return [MergeTask(i, int(edges[a]), int(edges[b]), tuple(parts)) for i, (a, b) in
            enumerate(zip(bounds[:-1], bounds[1:], strict=True))]


def merge_range(task: MergeTask) -> tuple[np.ndarray, np.ndarray]:
    """The summed (codes, counts) of one range, from memory-mapped partials."""
    chunk = []
    for c, n in task.parts:
        codes = open_run(c)
        lo, hi = np.searchsorted(codes, [task.lo, task.hi])
        if hi > lo:
            chunk.append((np.asarray(codes[lo:hi]), np.asarray(open_run(n)[lo:hi])))
    return merge_runs(chunk)


COMPACT_GROUP = 8  # partials of one level merged together
COMPACT_BYTES = 1 << 30  # compaction starts once the partials on disk exceed this (small corpora never pay it)


class Compactor:
    """Merges finished pair partials into larger ones while the counting phase goes on, so that disk holds a
    small multiple of the distinct pairs instead of one partial per task (LAION-scale runs have thousands).

    Whenever `group` partials of the same level exist, a background thread sums them (range by range, in
    bounded memory) into one level+1 partial (raw `.i64` files), records which partials it replaced
    (`compact-L-K.json`, written before the inputs are deleted) and deletes them. A killed run loses
    nothing: an unrecorded compaction is redone from its still-present inputs, a recorded one stands.
    """

    def __init__(self, work_dir: str, phase: str, n_concepts: int, group: int | None = None,
                 budget: int = 4_000_000):
        self.work, self.phase, self.n_concepts = work_dir, phase, n_concepts
        self.group, self.budget = max(2, group or COMPACT_GROUP), budget
        self._lock = threading.Lock()
        self._levels: dict[int, list[tuple[str, str]]] = {}
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._replaced: set[str] = set()
        self._made: list[tuple[int, tuple[str, str]]] = []
        for name in sorted(os.listdir(work_dir)):  # compactions of an earlier, interrupted run
            if name.startswith(f"compact-{phase}-") and name.endswith(".json"):
                with open(os.path.join(work_dir, name), encoding="utf-8") as f:
                    rec = json.load(f)
                self._replaced.update(c for c, _ in rec["inputs"])
                self._made.append((rec["level"], tuple(rec["output"])))
        self._counter = len(self._made)
        self._bytes = 0  # bytes of the live partials this run knows about
        self._stopped = False

    def add(self, part: tuple[str, str], level: int = 0) -> None:
        """A finished partial (codes, counts); starts a compaction when its level has a full group and the
        partials on disk exceed COMPACT_BYTES."""
        with self._lock:
            if part[0] in self._replaced:
                return
            self._levels.setdefault(level, []).append(part)
            self._bytes += sum(os.path.getsize(p) for p in part if os.path.exists(p))
            if self._thread is None or not self._thread.is_alive():
                self._start()

    def _start(self) -> None:
        if self._bytes <= COMPACT_BYTES or self._stopped:
            return
        for level, parts in sorted(self._levels.items()):
            if len(parts) >= self.group:
                batch, self._levels[level] = parts[:self.group], parts[self.group:]
                self._counter += 1
                self._thread = threading.Thread(target=self._compact, args=(level, batch, self._counter),
                                                name="compactor", daemon=True)
                self._thread.start()
                return

    def _compact(self, level: int, batch: list[tuple[str, str]], k: int) -> None:
        try:
            base = os.path.join(self.work, f"compact-{self.phase}-{level + 1}-{k:06d}")
            out = (base + ".codes.i64", base + ".counts.i64")
            with atomic_output(out[0]) as t0, atomic_output(out[1]) as t1, open(t0, "wb") as fc, \
                    open(t1, "wb") as fn:
                for codes, counts in merge_pair_partials(batch, self.n_concepts, self.budget):
                    np.asarray(codes, "<i8").tofile(fc)
                    np.asarray(counts, "<i8").tofile(fn)
            rec = {"level": level + 1, "output": list(out), "inputs": [list(p) for p in batch]}
            with atomic_output(base + ".json") as tmp, open(tmp, "w", encoding="utf-8") as f:
                json.dump(rec, f)
            freed = 0
            for c, n in batch:
                for path in (c, n):
                    if os.path.exists(path):
                        freed += os.path.getsize(path)
                        os.remove(path)
            with self._lock:
                self._replaced.update(c for c, _ in batch)
                self._levels.setdefault(level + 1, []).append(out)
                self._bytes += os.path.getsize(out[0]) + os.path.getsize(out[1]) - freed
                self._start()
        except BaseException as exc:  # reported by finish()
            self._error = exc

    def stop(self) -> None:
        """No new compactions; wait for the running one (it finishes or leaves its inputs intact)."""
        with self._lock:
            self._stopped = True
            thread = self._thread
        if thread is not None:
            thread.join()

    def finish(self, parts: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Wait for compactions; the partials that now hold every count: compacted ones plus the rest."""
        while True:
            with self._lock:
                thread = self._thread
            if thread is None or not thread.is_alive():
                break
            thread.join()
        if self._error is not None:
            raise self._error
        live: list[tuple[str, str]] = []
        seen = set()
        for _, out in self._made:
            if out[0] not in self._replaced:
                live.append(tuple(out))
                seen.add(out[0])
        for level_parts in self._levels.values():
            for p in level_parts:
                if p[0] not in self._replaced and p[0] not in seen:
                    live.append(tuple(p))
                    seen.add(p[0])
        for p in parts:
            if p[0] not in self._replaced and p[0] not in seen:
                live.append(tuple(p))
                seen.add(p[0])
        return sorted(live)
