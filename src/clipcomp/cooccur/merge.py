"""Reduce step: add partial counts from all tasks, exactly, in bounded memory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather

from clipcomp.cooccur.pairs import merge_runs


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
    runs = [(np.load(c, mmap_mode="r"), np.load(n, mmap_mode="r")) for c, n in parts]
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
    runs = [np.load(c, mmap_mode="r") for c, _ in parts]
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
        codes = np.load(c, mmap_mode="r")
        lo, hi = np.searchsorted(codes, [task.lo, task.hi])
        if hi > lo:
            chunk.append((np.asarray(codes[lo:hi]), np.asarray(np.load(n, mmap_mode="r")[lo:hi])))
    return merge_runs(chunk)
