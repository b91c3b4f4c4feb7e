"""Benchmark `clipcomp similarity knn` (exact, sharded faiss) against a blockwise NumPy matrix-product baseline on
the same float16 embedding shards, in one run, with the exact-agreement check; approximate IVF build/search time
and recall@10; SemDeDup time. Vectors: a mixture of 2,000 Gaussian clusters on the unit sphere (embeddings
cluster; uniform random vectors would make every neighbour equally far).

    python perf/bench_similarity.py --base 1000000 --queries 10000 --dim 512 --shard 100000
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time

import numpy as np


def clustered(n: int, dim: int, rng, centres) -> np.ndarray:
    out = np.empty((n, dim), np.float16)
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        noise = rng.normal(size=(m, dim)).astype(np.float32) / np.sqrt(dim)
        x = centres[rng.integers(len(centres), size=m)] + 0.35 * noise
        out[s:s + m] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16)
    return out


def numpy_topk(q: np.ndarray, shards, k: int):
    best_d = np.full((len(q), 0), -np.inf, np.float32)
    best_i = np.zeros((len(q), 0), np.int64)
    off = 0
    for _, b in shards:
        s = q @ b.T
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        d = np.take_along_axis(s, part, 1)
        cd, ci = np.concatenate([best_d, d], 1), np.concatenate([best_i, part + off], 1)
        o = np.lexsort((ci, -cd), axis=1)[:, :k]
        best_d, best_i = np.take_along_axis(cd, o, 1), np.take_along_axis(ci, o, 1)
        off += len(b)
    return best_d, best_i


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--shard", type=int, default=100_000)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--dedup", type=int, default=200_000, help="vectors for the SemDeDup timing")
    args = ap.parse_args()

    from clipcomp.similarity.embeddings import open_embeddings, write_embeddings
    from clipcomp.similarity.knn import build_index, recall_at_k, search_exact
    from clipcomp.similarity.prune import semdedup

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2000, args.dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    tmp = tempfile.mkdtemp(prefix="clipcomp-bench-sim-")
    try:
        base = clustered(args.base, args.dim, rng, centres)
        q = clustered(args.queries, args.dim, rng, centres).astype(np.float32)
        write_embeddings(os.path.join(tmp, "b"), [str(i) for i in range(args.base)], base, {"model_identity": "m"},
                         shard_size=args.shard, dtype="float16")
        del base
        b = open_embeddings(os.path.join(tmp, "b"))
        print(f"base {args.base:,} × {args.dim} float16 in {len(b.files)} shards; {args.queries:,} queries; "
              f"k = {args.k}; cores {os.cpu_count()}")
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        t0 = time.perf_counter()
        fd, fi, _ = search_exact(q, b.shards(), args.k)
        t_faiss = time.perf_counter() - t0
        t0 = time.perf_counter()
        nd, ni = numpy_topk(q, b.shards(), args.k)
        t_np = time.perf_counter() - t0
        same = float(np.mean(fi == ni))
        print(f"exact, clipcomp (faiss, sharded) : {t_faiss:8.1f} s   ({args.queries / t_faiss:,.0f} queries/s)")
        print(f"exact, NumPy blockwise matmul    : {t_np:8.1f} s   ({args.queries / t_np:,.0f} queries/s)")
        print(f"agreement: {same:.5f} of neighbour ids identical; max |Δsim| {np.max(np.abs(fd - nd)):.2e}; "
              f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB (before search "
              f"{rss0:.2f})")
        _, mat = b.load()
        t0 = time.perf_counter()
        idx = build_index(mat, "ivf", nprobe=16)
        t_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, ai = idx.search(q, args.k)
        t_search = time.perf_counter() - t0
        print(f"IVF (nlist {idx.nlist}, nprobe 16): build {t_build:.1f} s, search {t_search:.1f} s, "
              f"recall@{args.k} {recall_at_k(ai, fi):.3f}")
        n = min(args.dedup, len(mat))
        t0 = time.perf_counter()
        keep = semdedup(mat[:n], n_clusters=max(1, n // 1000), threshold=0.876)
        print(f"SemDeDup {n:,} vectors ({max(1, n // 1000)} clusters): {time.perf_counter() - t0:.1f} s, "
              f"kept {keep.sum():,}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
