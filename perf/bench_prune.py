"""Similarity-aligned pruning and SemDeDup from embedding shards beside the NumPy/faiss script a user would write, in
one run: time, peak RSS of each (its own process) and the exact-agreement check of the kept sets.

Vectors (512-d float16 shards): a long-tailed mixture — 20,000 cluster centres with Zipf-like sizes, 8 % of the base
near-duplicates of another base item (cosine ≈ 0.99) — so the clusters SemDeDup sees range from a handful of items
to tens of thousands. Base 1M, tests 10k (drawn from the 2,000 "rendition" centres, a tenth of the clusters),
reference 100k (from the other centres, "ImageNet-train").

  * clipcomp: `similarity.prune.prune` (τ from the reference, then one streamed pass over the base shards; a second
    pass writes the ids) and `similarity.prune.dedup` (streamed: k-means sample, per-shard assignment, a
    cluster-ordered scratch file, one cluster at a time);
  * the user's script: every base shard loaded into one float32 matrix; τ by faiss `IndexFlatIP` over the
    reference; candidates by `base_block @ tests.T > τ`; SemDeDup by faiss `Kmeans` on the same seeded 256·k
    sample, then per cluster `tril(x xᵀ, −1).max(1) ≤ threshold` (clip-ood's rule) in NumPy.

    python perf/bench_prune.py --base 1000000 --tests 10000 --reference 100000 --shard 62500
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np


def vectors(n: int, dim: int, rng, centres, weights, dup: float = 0.0) -> np.ndarray:
    out = np.empty((n, dim), np.float16)
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        x = centres[rng.choice(len(centres), size=m, p=weights)] + 0.45 * rng.normal(size=(m, dim)).astype(
            np.float32) / np.sqrt(dim)
        out[s:s + m] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16)
    if dup:
        k = int(dup * n)
        dst = rng.choice(n, k, replace=False)
        src = rng.integers(0, n, k)
        x = out[src].astype(np.float32) + 0.1 * rng.normal(size=(k, dim)).astype(np.float32) / np.sqrt(dim)
        out[dst] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16)
    return out


def peak_gib() -> float:
    """This process's own peak RSS: VmHWM of its address space. (getrusage's ru_maxrss survives exec on Linux, so
    a child started by the data-generating parent would report the parent's peak.)"""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ---- the child processes -------------------------------------------------------------------------------------------

def child_clipcomp_prune(d: str) -> dict:
    from clipcomp.similarity.prune import prune

    t0 = time.perf_counter()
    rep = prune(f"{d}/base", [f"{d}/tests"], f"{d}/reference", f"{d}/out_prune", force=True)
    return {"seconds": time.perf_counter() - t0, "peak_gib": peak_gib(), "removed": rep["n_removed"]}


def child_user_prune(d: str) -> dict:
    import faiss
    import pyarrow.parquet as pq

    from clipcomp.similarity.embeddings import open_embeddings

    t0 = time.perf_counter()
    base = np.concatenate([m for _, m in open_embeddings(f"{d}/base").shards()])  # the whole base in memory
    _, tests = open_embeddings(f"{d}/tests").load()
    _, ref = open_embeddings(f"{d}/reference").load()
    index = faiss.IndexFlatIP(ref.shape[1])
    index.add(ref)
    tau = index.search(tests, 1)[0][:, 0]
    removed = np.zeros(len(base), bool)
    for s in range(0, len(base), 8192):
        removed[s:s + 8192] = (tests @ base[s:s + 8192].T > tau[:, None]).any(axis=0)
    secs = time.perf_counter() - t0
    ours = set(pq.read_table(f"{d}/out_prune/removed.parquet").column("id").to_pylist())
    mine = {str(i) for i in np.flatnonzero(removed)}
    return {"seconds": secs, "peak_gib": peak_gib(), "removed": int(removed.sum()), "identical": ours == mine,
            "only_clipcomp": len(ours - mine), "only_user": len(mine - ours)}


def child_clipcomp_dedup(d: str, k: int, thr: float) -> dict:
    from clipcomp.similarity.prune import dedup

    t0 = time.perf_counter()
    rep = dedup(f"{d}/base", f"{d}/out_dedup", n_clusters=k, threshold=thr, force=True)
    return {"seconds": time.perf_counter() - t0, "peak_gib": peak_gib(), "removed": rep["n_removed"]}


def child_user_dedup(d: str, k: int, thr: float) -> dict:
    import faiss
    import pyarrow.parquet as pq

    from clipcomp.similarity.embeddings import open_embeddings
    from clipcomp.similarity.prune import kmeans_sample

    t0 = time.perf_counter()
    x = np.concatenate([m for _, m in open_embeddings(f"{d}/base").shards()])
    km = faiss.Kmeans(x.shape[1], k, niter=20, seed=0, spherical=True, verbose=False)
    km.train(x[kmeans_sample(len(x), k, 0)])
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(km.centroids)
    assign = np.concatenate([index.search(x[s:s + 65536], 1)[1][:, 0] for s in range(0, len(x), 65536)])
    keep = np.zeros(len(x), bool)
    for c in range(k):
        idx = np.flatnonzero(assign == c)
        if idx.size == 0:
            continue
        xc = x[idx]
        for s in range(0, len(idx), 2048):  # tril(x xᵀ, −1) row max, in row blocks
            sims = xc[s:s + 2048] @ xc[:s + 2048].T
            rows = np.arange(s, min(s + 2048, len(idx)))
            sims = np.where(np.arange(sims.shape[1])[None, :] < rows[:, None], sims, 0.0)
            keep[idx[rows]] = sims.max(axis=1) <= thr
    secs = time.perf_counter() - t0
    ours = set(pq.read_table(f"{d}/out_dedup/removed.parquet").column("id").to_pylist())
    mine = {str(i) for i in np.flatnonzero(~keep)}
    return {"seconds": secs, "peak_gib": peak_gib(), "removed": int((~keep).sum()), "identical": ours == mine,
            "only_clipcomp": len(ours - mine), "only_user": len(mine - ours)}


CHILDREN = {"clipcomp_prune": child_clipcomp_prune, "user_prune": child_user_prune,
            "clipcomp_dedup": child_clipcomp_dedup, "user_dedup": child_user_dedup}


def run_child(name: str, *args) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", name, *map(str, args)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=int, default=1_000_000)
    ap.add_argument("--tests", type=int, default=10_000)
    ap.add_argument("--reference", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--shard", type=int, default=62_500)
    ap.add_argument("--clusters", type=int, default=1_000, help="SemDeDup k-means clusters")
    ap.add_argument("--threshold", type=float, default=0.876)
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        name, *rest = args.child
        extra = [int(rest[1]), float(rest[2])] if name.endswith("dedup") else []
        print(json.dumps(CHILDREN[name](rest[0], *extra)))
        return

    from clipcomp.similarity.embeddings import write_embeddings

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20_000, args.dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    w = 1.0 / np.arange(1, 20_001) ** 1.1
    rng.shuffle(w)
    w_rend, w_nat = w.copy(), w.copy()
    w_rend[2000:] = 0  # tests: the "rendition" centres
    w_nat[:2000] = 0  # reference: the others
    tmp = tempfile.mkdtemp(prefix="clipcomp-bench-prune-")
    try:
        t0 = time.perf_counter()
        base = vectors(args.base, args.dim, rng, centres, w / w.sum(), dup=0.08)
        write_embeddings(f"{tmp}/base", [str(i) for i in range(args.base)], base, {"model_identity": "m"},
                         shard_size=args.shard, dtype="float16")
        del base
        for name, n, ww in (("tests", args.tests, w_rend), ("reference", args.reference, w_nat)):
            write_embeddings(f"{tmp}/{name}", [f"{name}{i}" for i in range(n)],
                             vectors(n, args.dim, rng, centres, ww / ww.sum()), {"model_identity": "m"},
                             shard_size=args.shard, dtype="float16")
        shard_gib = args.shard * args.dim * 4 / 2**30
        print(f"base {args.base:,} × {args.dim} float16 in {-(-args.base // args.shard)} shards of {args.shard:,} "
              f"(one shard as float32: {shard_gib:.2f} GiB; the whole base: {args.base * args.dim * 4 / 2**30:.2f} "
              f"GiB); tests {args.tests:,}; reference {args.reference:,}; cores {os.cpu_count()}; data "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        res = {}
        for name in ("clipcomp_prune", "user_prune"):
            res[name] = run_child(name, tmp)
            print(name, res[name], flush=True)
        for name in ("clipcomp_dedup", "user_dedup"):
            res[name] = run_child(name, tmp, args.clusters, args.threshold)
            print(name, res[name], flush=True)
        print(json.dumps(res))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
