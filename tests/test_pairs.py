"""The pair-counting kernels: dense and sorting accumulators, run merging, bounded-memory partial merge."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np

from clipcomp.cooccur.merge import merge_pair_partials
from clipcomp.cooccur.pairs import PairAccumulator, compact, merge_runs, pair_codes


def _random_sets(rng, n_rows, v):
    sets = [sorted(set(rng.integers(0, v, rng.integers(0, 12)).tolist())) for _ in range(n_rows)]
    indptr = np.zeros(n_rows + 1, np.int64)
    indptr[1:] = np.cumsum([len(s) for s in sets])
    ids = np.array([i for s in sets for i in rng.permutation(s).tolist()], dtype=np.int32)
    return sets, indptr, ids


def test_pair_codes_and_both_accumulators_match_counter():
    rng = np.random.default_rng(1)
    v = 57
    sets, indptr, ids = _random_sets(rng, 3000, v)
    expected = Counter(itertools.chain.from_iterable(itertools.combinations(s, 2) for s in sets))
    codes = pair_codes(indptr, ids, v)
    assert sorted(codes.tolist()) == sorted(a * v + b for s in sets for a, b in itertools.combinations(s, 2))
    for dense_bytes, buffer_limit in ((1 << 30, 10), (1 << 30, 10**9), (0, 50), (0, 10**9)):
        acc = PairAccumulator(v, dense_bytes=dense_bytes, buffer_limit=buffer_limit)
        acc.switch_at = 5000  # switch to dense part-way through, with buffered codes and compacted runs
        for lo in range(0, 3000, 256):
            hi = min(lo + 256, 3000)
            acc.add_sets(indptr[lo:hi + 1] - indptr[lo], ids[indptr[lo]:indptr[hi]])
        assert acc.dense == (dense_bytes > 0)
        got_codes, got_counts = acc.result()
        assert np.all(np.diff(got_codes) > 0)
        assert {(int(c) // v, int(c) % v): int(n) for c, n in zip(got_codes, got_counts, strict=True)} == expected


def test_merge_runs_and_partials(tmp_path):
    rng = np.random.default_rng(2)
    v = 300
    runs = [compact(rng.integers(0, v * v, 5000)) for _ in range(7)]
    expected = Counter()
    for c, n in runs:
        expected.update(dict(zip(c.tolist(), n.tolist(), strict=True)))
    codes, counts = merge_runs(runs)
    assert dict(zip(codes.tolist(), counts.tolist(), strict=True)) == expected
    parts = []
    for i, (c, n) in enumerate(runs):
        np.save(tmp_path / f"c{i}.npy", c)
        np.save(tmp_path / f"n{i}.npy", n)
        parts.append((str(tmp_path / f"c{i}.npy"), str(tmp_path / f"n{i}.npy")))
    chunks = list(merge_pair_partials(parts, v, budget=3000))  # forces the range-partitioned path
    assert len(chunks) > 3
    all_codes = np.concatenate([c for c, _ in chunks])
    assert np.all(np.diff(all_codes) > 0)
    assert dict(zip(all_codes.tolist(), np.concatenate([n for _, n in chunks]).tolist(), strict=True)) == expected


def test_dense_buffer_reused_and_cleaned_after_an_abandoned_task():
    rng = np.random.default_rng(3)
    v = 40
    sets, indptr, ids = _random_sets(rng, 500, v)
    expected = Counter(itertools.chain.from_iterable(itertools.combinations(s, 2) for s in sets))
    abandoned = PairAccumulator(v)
    abandoned.switch_at = 1
    abandoned.add_sets(indptr, ids)
    assert abandoned.dense  # never asked for its result, as when a task dies mid-way
    for _ in range(2):
        acc = PairAccumulator(v)
        acc.switch_at = 1
        acc.add_sets(indptr, ids)
        codes, counts = acc.result()
        assert {(int(c) // v, int(c) % v): int(n) for c, n in zip(codes, counts, strict=True)} == expected
