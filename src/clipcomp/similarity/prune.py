"""Pruning a training set by similarity to test sets (Mayilvahanan et al., ICLR 2024), and semantic
deduplication (SemDeDup, Abbas et al., 2023).

Similarity-aligned pruning: every test item t gets a threshold τ_t = its nearest-neighbour similarity in a
reference set (the paper: ImageNet-train); a base (training) item b is removed when sim(b, t) > τ_t for some t —
the base is then no more similar to the test sets than the reference is. Controls remove the same number of items:
`near` (the items most similar to the test set, max over t), `far` (the least similar) and `random` (seeded).

SemDeDup: faiss k-means on the normalized embeddings; within each cluster, items in order of increasing
similarity to the centroid (the least prototypical first, as the paper keeps them) are kept unless their cosine
similarity to an item already kept exceeds `threshold` (the 2024 paper used 0.876 after 50k-cluster k-means).
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa

from clipcomp.errors import ClipcompError
from clipcomp.io import write_parquet
from clipcomp.similarity.embeddings import open_embeddings
from clipcomp.similarity.knn import check_compatible, nearest_similarity

CONTROLS = ("near", "far", "random")


def max_excess_and_similarity(base: np.ndarray, tests: np.ndarray, tau: np.ndarray,
                              block: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Per base item: whether sim(b, t) > τ_t for some test t, and max_t sim(b, t) (blockwise matrix products)."""
    remove = np.zeros(len(base), bool)
    max_sim = np.full(len(base), -np.inf, np.float32)
    t = np.ascontiguousarray(tests, np.float32)
    for s in range(0, len(base), block):
        sims = np.ascontiguousarray(base[s:s + block], np.float32) @ t.T
        remove[s:s + block] = (sims > tau[None, :]).any(axis=1)
        max_sim[s:s + block] = sims.max(axis=1)
    return remove, max_sim


def prune_sets(base: np.ndarray, tests: np.ndarray, reference: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Boolean 'removed' masks over the base for aligned pruning and its equal-size controls."""
    tau = nearest_similarity(tests, [([str(i) for i in range(len(reference))], reference)])
    aligned, max_sim = max_excess_and_similarity(base, tests, tau)
    n = int(aligned.sum())
    order = np.lexsort((np.arange(len(base)), -max_sim))  # most similar first, ties by index
    near = np.zeros(len(base), bool)
    near[order[:n]] = True
    far = np.zeros(len(base), bool)
    if n:
        far[order[-n:]] = True
    rnd = np.zeros(len(base), bool)
    rnd[np.random.default_rng([seed, 6_006]).choice(len(base), n, replace=False)] = True
    return {"aligned": aligned, "near": near, "far": far, "random": rnd, "max_similarity": max_sim, "tau": tau}


def prune(base: str, tests: list[str], reference: str, out: str, method: str = "aligned", seed: int = 0,
          labels: str | None = None, label_column: str = "label", id_column: str = "id",
          force: bool = False) -> dict:
    """Write OUT/kept.parquet and OUT/removed.parquet (base ids, max similarity to the test sets) + report.json."""
    from clipcomp.io import atomic_write_json, check_output_path, prepare_output, read_table

    check_output_path(out)
    if method not in ("aligned", *CONTROLS):
        raise ClipcompError(f"--method {method!r}: expected aligned, near, far or random")
    b, ref = open_embeddings(base), open_embeddings(reference)
    check_compatible(b, ref)
    t_sets = [open_embeddings(t) for t in tests]
    for t in t_sets:
        check_compatible(b, t)
    settings = {"base": os.path.abspath(base), "tests": [os.path.abspath(t) for t in tests],
                "reference": os.path.abspath(reference), "method": method, "seed": seed}
    prepare_output(out, "similarity prune", settings, force=force, markers=("kept.parquet",))
    b_ids, b_mat = b.load()
    t_parts = [t.load() for t in t_sets]
    t_mat = np.concatenate([m for _, m in t_parts])
    _, r_mat = ref.load()
    sets = prune_sets(b_mat, t_mat, r_mat, seed)
    removed = sets[method]
    ids = np.array(b_ids, dtype=object)
    for name, mask in (("kept", ~removed), ("removed", removed)):
        write_parquet(pa.table({"id": pa.array(ids[mask].tolist(), pa.string()),
                                 "max_similarity": pa.array(sets["max_similarity"][mask])}),
                       os.path.join(out, f"{name}.parquet"))
    report = {"method": method, "n_base": len(b_ids), "n_removed": int(removed.sum()),
              "n_removed_aligned": int(sets["aligned"].sum()), "n_tests": [len(i) for i, _ in t_parts],
              "tau_mean": float(np.mean(sets["tau"]))}
    per_test = {}
    offset = 0
    for path, (t_ids, _) in zip(tests, t_parts, strict=True):
        sl = slice(offset, offset + len(t_ids))  # the thresholds are per test item: reuse them
        sub, _ = max_excess_and_similarity(b_mat, t_mat[sl], sets["tau"][sl])
        per_test[path] = int(sub.sum())
        offset += len(t_ids)
    report["removed_per_test_set"] = per_test
    if labels:
        lt = read_table(labels)
        if id_column not in lt.column_names or label_column not in lt.column_names:
            raise ClipcompError(f"{labels}: needs columns {id_column!r} and {label_column!r} "
                                f"(columns: {', '.join(lt.column_names)})")
        lab = dict(zip(lt.column(id_column).to_pylist(), lt.column(label_column).to_pylist(), strict=True))
        per: dict[str, int] = {}
        for i in ids[removed]:
            key = str(lab.get(i, "unknown"))
            per[key] = per.get(key, 0) + 1
        report["removed_per_class"] = dict(sorted(per.items()))
    atomic_write_json(os.path.join(out, "report.json"), report)
    return report


def semdedup(vectors: np.ndarray, n_clusters: int, threshold: float, seed: int = 0,
             niter: int = 20) -> np.ndarray:
    """Boolean keep-mask: SemDeDup within faiss k-means clusters (see the module docstring)."""
    import faiss

    x = np.ascontiguousarray(vectors, np.float32)
    n = len(x)
    k = max(1, min(n_clusters, n))
    if k > 1:
        km = faiss.Kmeans(x.shape[1], k, niter=niter, seed=seed, spherical=True, verbose=False)
        km.train(x)
        _, assign = km.index.search(x, 1)
        assign = assign[:, 0]
        cent = km.centroids
    else:
        assign = np.zeros(n, np.int64)
        cent = x.mean(axis=0, keepdims=True)
    keep = np.zeros(n, bool)
    for c in np.unique(assign):
        idx = np.flatnonzero(assign == c)
        to_c = x[idx] @ cent[c]
        order = idx[np.lexsort((idx, to_c))]  # least prototypical first, ties by index
        kept: list[int] = []
        for i in order:
            if not kept or float(np.max(x[kept] @ x[i])) <= threshold:
                kept.append(int(i))
        keep[kept] = True
    return keep


def dedup(emb: str, out: str, n_clusters: int = 100, threshold: float = 0.876, seed: int = 0,
          force: bool = False) -> dict:
    from clipcomp.io import atomic_write_json, check_output_path, prepare_output

    check_output_path(out)
    if not -1 <= threshold <= 1:
        raise ClipcompError(f"--threshold must be a cosine in [-1, 1] (got {threshold})")
    e = open_embeddings(emb)
    prepare_output(out, "similarity dedup", {"emb": os.path.abspath(emb), "n_clusters": n_clusters,
                                             "threshold": threshold, "seed": seed}, force=force,
                   markers=("kept.parquet",))
    ids, mat = e.load()
    keep = semdedup(mat, n_clusters, threshold, seed)
    arr = np.array(ids, dtype=object)
    for name, mask in (("kept", keep), ("removed", ~keep)):
        write_parquet(pa.table({"id": pa.array(arr[mask].tolist(), pa.string())}),
                       os.path.join(out, f"{name}.parquet"))
    rep = {"n": len(ids), "n_kept": int(keep.sum()), "n_removed": int((~keep).sum()), "n_clusters": n_clusters,
           "threshold": threshold}
    atomic_write_json(os.path.join(out, "report.json"), rep)
    return rep
