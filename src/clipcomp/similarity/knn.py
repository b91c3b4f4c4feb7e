"""Nearest neighbours between embedding sets with faiss: exact inner-product search shard by shard with an
exact top-k merge (memory bounded by one base shard plus the queries), or an approximate IVF/HNSW index whose
recall@k against exact search is measured on a sample of queries and reported with the results."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa

from clipcomp.errors import ClipcompError
from clipcomp.io import write_parquet
from clipcomp.similarity.embeddings import EmbeddingSet, open_embeddings, pq_rows


def check_compatible(a: EmbeddingSet, b: EmbeddingSet) -> None:
    if a.dim != b.dim:
        raise ClipcompError(f"{a.path} ({a.dim}-d) and {b.path} ({b.dim}-d): embeddings of different dimensions")
    ma, mb = a.meta.get("model_identity"), b.meta.get("model_identity")
    if ma and mb and ma != mb:
        raise ClipcompError(f"{a.path} and {b.path}: embeddings of different models ({a.meta.get('model')} "
                            f"{ma[:8]} vs {b.meta.get('model')} {mb[:8]}); embed both with the same model")


def _merge(best_d, best_i, d, i, k):
    """Top-k of two candidate lists per row: higher similarity first, then lower base index (deterministic)."""
    cd = np.concatenate([best_d, d], axis=1)
    ci = np.concatenate([best_i, i], axis=1)
    order = np.lexsort((ci, -cd), axis=1)[:, :k]
    return np.take_along_axis(cd, order, 1), np.take_along_axis(ci, order, 1)


_RES = None


def _gpus() -> int:
    import faiss

    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") and hasattr(faiss, "knn_gpu") else 0


def _gpu_resources():
    global _RES
    import faiss

    if _RES is None:
        _RES = faiss.StandardGpuResources()
    return _RES


def search_exact(queries: np.ndarray, base_shards, k: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(similarities nq×k, global base indices nq×k, base ids) over an iterable of (ids, matrix) shards."""
    import faiss

    nq = len(queries)
    best_d = np.full((nq, 0), -np.inf, np.float32)
    best_i = np.zeros((nq, 0), np.int64)
    ids: list[str] = []
    q = np.ascontiguousarray(queries, np.float32)
    for shard_ids, mat in base_shards:
        kk = min(k, len(mat))
        # faiss's brute-force kNN: blocked GEMM with the top-k kept in heaps, never the full q × shard matrix
        xb = np.ascontiguousarray(mat, np.float32)
        if _gpus() > 0:
            d, i = faiss.knn_gpu(_gpu_resources(), q, xb, kk, metric=faiss.METRIC_INNER_PRODUCT)
        else:
            d, i = faiss.knn(q, xb, kk, metric=faiss.METRIC_INNER_PRODUCT)
        best_d, best_i = _merge(best_d, best_i, d, i + len(ids), k)
        ids += shard_ids
    if best_d.shape[1] < k:
        raise ClipcompError(f"k = {k} but the base has only {len(ids)} vectors")
    return best_d, best_i, ids


def _shard_offsets(files: list[str]) -> list[int]:
    """Global row index of each shard's first row (from the Parquet footers; no data read)."""
    sizes = [pq_rows(f) for f in files]
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64).tolist() if sizes else []


def knn_shard_task(task: tuple[str, int], dim: int, queries: np.ndarray, k: int) -> dict:
    """One base shard against every query: its top-k (similarities, global indices, ids), on whichever worker."""
    import faiss

    from clipcomp.similarity.embeddings import read_shard

    path, offset = task
    ids, mat, normalized = read_shard(path, dim)
    kk = min(k, len(mat))
    xb = np.ascontiguousarray(mat, np.float32)
    q = np.ascontiguousarray(queries, np.float32)
    if _gpus() > 0:
        d, i = faiss.knn_gpu(_gpu_resources(), q, xb, kk, metric=faiss.METRIC_INNER_PRODUCT)
    else:
        d, i = faiss.knn(q, xb, kk, metric=faiss.METRIC_INNER_PRODUCT)
    return {"d": d, "i": i + offset, "ids": np.array(ids, dtype=object)[i], "n": len(mat), "normalized": normalized}


def search_exact_set(queries: np.ndarray, base: EmbeddingSet, k: int, engine=None, progress: bool = True
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact top-k of every query over an embedding directory, one task per base shard on `engine` (local or
    Dask), merged exactly (similarity, then base index): (similarities, global indices, neighbour ids), each
    nq × k. Memory: one shard per worker plus the queries' top-k; the base is never gathered."""
    from clipcomp.procs import Engine
    from clipcomp.progress import progress_bar

    tasks = list(zip(base.files, _shard_offsets(base.files), strict=True))
    nq = len(queries)
    best_d = np.full((nq, 0), -np.inf, np.float32)
    best_i = np.zeros((nq, 0), np.int64)
    best_id = np.zeros((nq, 0), object)
    n = 0
    eng = engine or Engine()
    with progress_bar(base.meta.get("n_items") or 0, "vectors", enabled=progress and bool(base.meta.get("n_items")),
                      desc="knn") as bar:
        q = eng.share(np.ascontiguousarray(queries, np.float32))
        for _, r in eng.map(knn_shard_task, tasks, base.dim, q, k):
            cd = np.concatenate([best_d, r["d"]], axis=1)
            ci = np.concatenate([best_i, r["i"]], axis=1)
            cid = np.concatenate([best_id, r["ids"]], axis=1)
            order = np.lexsort((ci, -cd), axis=1)[:, :k]  # a total order: any arrival order gives the same top-k
            best_d, best_i = np.take_along_axis(cd, order, 1), np.take_along_axis(ci, order, 1)
            best_id = np.take_along_axis(cid, order, 1)
            base.normalized |= r["normalized"]
            n += r["n"]
            bar.update(r["n"])
    if best_d.shape[1] < k:
        raise ClipcompError(f"k = {k} but the base has only {n} vectors")
    return best_d, best_i, best_id


def build_index(base: np.ndarray, kind: str, nlist: int | None = None, nprobe: int = 16, hnsw_m: int = 32,
                seed: int = 0):
    import faiss

    dim = base.shape[1]
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = max(64, nprobe * 4)
    elif kind == "ivf":
        nlist = nlist or max(1, int(4 * np.sqrt(len(base))))
        quant = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quant, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        train = base[rng.choice(len(base), min(len(base), nlist * 64), replace=False)]
        index.train(np.ascontiguousarray(train, np.float32))
        index.nprobe = min(nprobe, nlist)
    else:
        raise ClipcompError(f"--index {kind!r}: expected ivf or hnsw (or --exact)")
    index.add(np.ascontiguousarray(base, np.float32))
    return index


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of the exact top-k found by the approximate search (per query, as sets)."""
    hits = [len(set(a.tolist()) & set(e.tolist())) / len(e) for a, e in zip(approx, exact, strict=True)]
    return float(np.mean(hits)) if hits else float("nan")


def knn(queries: str, base: str, out: str, k: int = 10, index: str | None = None, nlist: int | None = None,
        nprobe: int = 16, recall_sample: int = 1000, seed: int = 0, force: bool = False, progress: bool = True,
        engine=None) -> dict:
    """k nearest base vectors of every query → OUT/neighbors.parquet (query_id, rank, base_id, similarity).
    Exact search runs one task per base shard on `engine` (EngineOptions: local, or Dask for a cluster) and
    writes the same file either way; an approximate index is built on one machine (local only)."""
    from clipcomp.io import atomic_write_json, check_output_path, prepare_output
    from clipcomp.procs import Engine, EngineOptions

    check_output_path(out)
    if k < 1:
        raise ClipcompError(f"-k must be ≥ 1 (got {k})")
    engine = engine or EngineOptions()
    engine.validate()
    if index is not None and engine.engine != "local":
        raise ClipcompError(f"--index {index} builds one in-memory index on this machine: use --engine local "
                            "(exact search is the one that runs on Dask)")
    q, b = open_embeddings(queries), open_embeddings(base)
    check_compatible(q, b)
    prepare_output(out, "similarity knn", {"queries": os.path.abspath(queries), "base": os.path.abspath(base),
                                           "k": k, "index": index, "nlist": nlist, "nprobe": nprobe, "seed": seed},
                   force=force, markers=("neighbors.parquet",))
    q_ids, q_mat = q.load()
    info = {"k": k, "mode": "exact" if index is None else f"approximate ({index})", "n_queries": len(q_ids)}
    if index is None:
        with Engine(engine) as eng:
            d, i, nb_ids = search_exact_set(q_mat, b, k, eng, progress)
        n_base = int(sum(pq_rows(f) for f in b.files))
    else:
        b_ids, b_mat = b.load()
        idx = build_index(b_mat, index, nlist, nprobe, seed=seed)
        d, i = idx.search(np.ascontiguousarray(q_mat, np.float32), k)
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(len(q_mat), min(recall_sample, len(q_mat)), replace=False))
        _, ei, _ = search_exact(q_mat[sample], b.shards(), k)
        info["recall_at_k"] = recall_at_k(i[sample], ei)
        info["recall_sample"] = int(sample.size)
        nb_ids, n_base = np.array(b_ids, dtype=object)[np.clip(i, 0, None)], len(b_ids)
    info["n_base"] = n_base
    info["normalized_on_read"] = [name for name, e in (("queries", q), ("base", b)) if e.normalized]
    table = pa.table({"query_id": pa.array(np.repeat(np.array(q_ids, dtype=object), k).tolist(), pa.string()),
                      "rank": pa.array(np.tile(np.arange(k), len(q_ids)), pa.int32()),
                      "base_id": pa.array(nb_ids.reshape(-1).tolist(), pa.string()),
                      "similarity": pa.array(d.reshape(-1).astype(np.float32))})
    write_parquet(table, os.path.join(out, "neighbors.parquet"))
    atomic_write_json(os.path.join(out, "meta.json"), info)
    return info


def nearest_similarity(queries: np.ndarray, base_shards) -> np.ndarray:
    """Per query, the cosine similarity of its nearest base vector (exact)."""
    d, _, _ = search_exact(queries, base_shards, 1)
    return d[:, 0]
