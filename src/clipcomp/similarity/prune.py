"""Pruning a training set by similarity to test sets (Mayilvahanan et al., ICLR 2024), and semantic
deduplication (SemDeDup, Abbas et al., 2023).

Similarity-aligned pruning: every test item t gets a threshold τ_t = its nearest-neighbour similarity in a
reference set of its own (the paper: ImageNet-train); a base (training) item b is removed when sim(b, t) > τ_t for
some t (beyond a stated float32 tolerance; τ and sim(b, t) come from one routine) —
the base is then no more similar to the test sets than the reference is. Controls remove the same number of items:
`near` (the items most similar to the test set, max over t), `far` (the least similar) and `random` (seeded).

SemDeDup as clip-ood runs it: faiss k-means on the normalized embeddings; within each cluster an item is removed
when its cosine similarity to any earlier item of the cluster exceeds `threshold` (0.876 = 1 − 0.124 in the 2024
paper, after 50k-cluster k-means); vectorized per cluster.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa

from clipcomp.errors import ClipcompError
from clipcomp.similarity.embeddings import open_embeddings, pq_rows, read_ids
from clipcomp.similarity.knn import check_compatible

CONTROLS = ("near", "far", "random")
TIE_TOLERANCE = 1e-6  # cosine; a base item counts as more similar than τ only beyond this (float32 round-off)


def similarities(tests: np.ndarray, block: np.ndarray) -> np.ndarray:
    """Cosine similarities tests × block in float32: the one routine behind both the thresholds τ and the
    candidates' similarities, so an item compared with itself gives the same number on both sides."""
    return np.ascontiguousarray(tests, np.float32) @ np.ascontiguousarray(block, np.float32).T


def _blocks(shards, block: int):
    for item in shards:
        mat = item[1] if isinstance(item, tuple) else item
        for s in range(0, len(mat), block):
            yield mat[s:s + block]


def thresholds(tests: np.ndarray, reference_shards, block: int = 4096) -> np.ndarray:
    """τ_t: each test item's nearest-neighbour similarity in the reference (streamed shard by shard)."""
    tau = np.full(len(tests), -np.inf, np.float32)
    for b in _blocks(reference_shards, block):
        np.maximum(tau, similarities(tests, b).max(axis=1), out=tau)
    return tau


def aligned_pass(base_shards, tests: np.ndarray, tau: np.ndarray, test_slices: list[slice] | None = None,
                 tol: float = TIE_TOLERANCE, block: int = 4096) -> dict[str, np.ndarray]:
    """One streamed pass over the base: per item, removed (sim(b, t) > τ_t + tol for some t; clip-ood
    src/sims_and_paths/get_paths_chunk.py l.49-50, strict >), max_t sim(b, t), and removed per test set.
    Memory: one block of the base × the tests; per-item outputs are scalars."""
    removed, max_sim, per_set = [], [], []
    slices = test_slices or [slice(0, len(tests))]
    limit = tau[:, None] + np.float32(tol)
    for b in _blocks(base_shards, block):
        sims = similarities(tests, b)  # (tests, block)
        over = sims > limit
        removed.append(over.any(axis=0))
        max_sim.append(sims.max(axis=0) if len(tests) else np.full(len(b), -np.inf, np.float32))
        per_set.append(np.stack([over[sl].any(axis=0) for sl in slices], axis=1))

    def cat(xs, dt):
        return np.concatenate(xs) if xs else np.zeros(0, dt)

    return {"aligned": cat(removed, bool), "max_similarity": cat(max_sim, np.float32),
            "per_test_set": np.concatenate(per_set) if per_set else np.zeros((0, len(slices)), bool)}


def tau_shard_task(path: str, dim: int, tests: np.ndarray, block: int = 4096) -> dict:
    """One reference shard: each test item's best similarity in it (the parent takes the max over shards)."""
    from clipcomp.similarity.embeddings import read_shard

    _, mat, normalized = read_shard(path, dim, with_ids=False)
    return {"tau": thresholds(tests, [mat], block), "normalized": normalized}


def aligned_shard_task(path: str, dim: int, tests: np.ndarray, tau: np.ndarray, slices: list[slice], tol: float,
                       block: int = 4096) -> dict:
    """One base shard's `aligned_pass` (the same blocks as a local pass, so the same bits)."""
    from clipcomp.similarity.embeddings import read_shard

    _, mat, normalized = read_shard(path, dim, with_ids=False)
    return {**aligned_pass([mat], tests, tau, slices, tol, block), "normalized": normalized}


def thresholds_set(tests: np.ndarray, reference, engine, progress: bool = True) -> np.ndarray:
    """`thresholds` over an embedding directory, one task per reference shard on `engine`."""
    from clipcomp.progress import progress_bar

    tau = np.full(len(tests), -np.inf, np.float32)
    shared = engine.share(np.ascontiguousarray(tests, np.float32))
    with progress_bar(len(reference.files), "shards", enabled=progress, desc="reference") as bar:
        for _, r in engine.map(tau_shard_task, reference.files, reference.dim, shared):
            np.maximum(tau, r["tau"], out=tau)  # max is exact in any order
            reference.normalized |= r["normalized"]
            bar.update(1)
    return tau


def aligned_set(base, tests: np.ndarray, tau: np.ndarray, slices: list[slice], tol: float, engine,
                progress: bool = True) -> dict[str, np.ndarray]:
    """`aligned_pass` over an embedding directory, one task per base shard on `engine`, concatenated in shard
    order. Memory per worker: one shard and the tests; the parent holds per-item scalars only."""
    from clipcomp.progress import progress_bar

    t, ta = engine.share(np.ascontiguousarray(tests, np.float32)), engine.share(tau)

    def done(r):
        base.normalized |= r["normalized"]
        bar.update(1)

    with progress_bar(len(base.files), "shards", enabled=progress, desc="prune") as bar:
        parts = engine.map_ordered(aligned_shard_task, base.files, base.dim, t, ta, slices, tol, on_done=done)
    if not parts:
        return aligned_pass([], tests, tau, slices, tol)
    return {k: np.concatenate([p[k] for p in parts]) for k in ("aligned", "max_similarity", "per_test_set")}


def controls(max_sim: np.ndarray, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Equal-size controls from the per-item max similarity: near (most similar), far (least), random."""
    order = np.lexsort((np.arange(len(max_sim)), -max_sim))  # most similar first, ties by index
    near = np.zeros(len(max_sim), bool)
    near[order[:n]] = True
    far = np.zeros(len(max_sim), bool)
    if n:
        far[order[-n:]] = True
    rnd = np.zeros(len(max_sim), bool)
    rnd[np.random.default_rng([seed, 6_006]).choice(len(max_sim), n, replace=False)] = True
    return {"near": near, "far": far, "random": rnd}


def max_excess_and_similarity(base: np.ndarray, tests: np.ndarray, tau: np.ndarray,
                              block: int = 4096, tol: float = TIE_TOLERANCE) -> tuple[np.ndarray, np.ndarray]:
    """Per base item: whether sim(b, t) > τ_t (+ tol) for some test t, and max_t sim(b, t)."""
    res = aligned_pass([base], tests, tau, tol=tol, block=block)
    return res["aligned"], res["max_similarity"]


def prune_sets(base: np.ndarray, tests: np.ndarray, reference: np.ndarray, seed: int = 0,
               tol: float = TIE_TOLERANCE) -> dict[str, np.ndarray]:
    """Boolean 'removed' masks over the base for aligned pruning and its equal-size controls. The reference
    (the paper: ImageNet-train) is a set of its own; τ and the candidates come from `similarities`."""
    if reference is base:
        raise ClipcompError("the reference set is the base itself: pass a separate reference (the paper: "
                            "ImageNet-train) — a base that is its own reference prunes nothing by definition")
    if base.shape[1:] != reference.shape[1:] or base.shape[1:] != tests.shape[1:]:
        raise ClipcompError(f"base {base.shape[1:]}, tests {tests.shape[1:]} and reference "
                            f"{reference.shape[1:]}: embeddings of different dimensions")
    tau = thresholds(tests, [reference])
    res = aligned_pass([base], tests, tau, tol=tol)
    out = {"aligned": res["aligned"], **controls(res["max_similarity"], int(res["aligned"].sum()), seed)}
    return {**out, "max_similarity": res["max_similarity"], "tau": tau}


def prune(base: str, tests: list[str], reference: str, out: str, method: str = "aligned", seed: int = 0,
          labels: str | None = None, label_column: str = "label", id_column: str = "id",
          force: bool = False, tol: float = TIE_TOLERANCE, progress: bool = True, engine=None) -> dict:
    """Write OUT/kept.parquet and OUT/removed.parquet (base ids, max similarity to the test sets) + report.json.
    The base is streamed shard by shard (memory: one shard and the tests; per-item scalars), one task per shard
    on `engine` (EngineOptions: local, or Dask for a cluster; the same files either way)."""
    import pyarrow.parquet as pq

    from clipcomp.io import atomic_output, atomic_write_json, check_output_path, prepare_output, read_table
    from clipcomp.procs import Engine, EngineOptions

    check_output_path(out)
    engine = engine or EngineOptions()
    engine.validate()
    if method not in ("aligned", *CONTROLS):
        raise ClipcompError(f"--method {method!r}: expected aligned, near, far or random")
    if not 0 <= tol < 1:
        raise ClipcompError(f"--tolerance must be in [0, 1) (got {tol})")
    if os.path.realpath(base) == os.path.realpath(reference):
        raise ClipcompError(f"{reference}: the reference is the base itself; pass a separate reference set "
                            "(the paper: ImageNet-train)")
    b, ref = open_embeddings(base), open_embeddings(reference)
    check_compatible(b, ref)
    t_sets = [open_embeddings(t) for t in tests]
    for t in t_sets:
        check_compatible(b, t)
    settings = {"base": os.path.abspath(base), "tests": [os.path.abspath(t) for t in tests],
                "reference": os.path.abspath(reference), "method": method, "seed": seed, "tolerance": tol}
    prepare_output(out, "similarity prune", settings, force=force, markers=("kept.parquet",))
    t_parts = [t.load() for t in t_sets]
    t_mat = np.concatenate([m for _, m in t_parts])
    bounds = np.cumsum([0] + [len(i) for i, _ in t_parts])
    slices = [slice(int(a), int(z)) for a, z in zip(bounds[:-1], bounds[1:], strict=True)]
    with Engine(engine) as eng:
        tau = thresholds_set(t_mat, ref, eng, progress)
        res = aligned_set(b, t_mat, tau, slices, tol, eng, progress)
    sets = {"aligned": res["aligned"], **controls(res["max_similarity"], int(res["aligned"].sum()), seed)}
    removed = sets[method]
    lab = None
    if labels:
        lt = read_table(labels)
        if id_column not in lt.column_names or label_column not in lt.column_names:
            raise ClipcompError(f"{labels}: needs columns {id_column!r} and {label_column!r} "
                                f"(columns: {', '.join(lt.column_names)})")
        lab = dict(zip(lt.column(id_column).to_pylist(), lt.column(label_column).to_pylist(), strict=True))
    per: dict[str, int] = {}
    schema = pa.schema([("id", pa.string()), ("max_similarity", pa.float32())])
    with atomic_output(os.path.join(out, "kept.parquet")) as kept_tmp, \
            atomic_output(os.path.join(out, "removed.parquet")) as rem_tmp:
        writers = {True: pq.ParquetWriter(rem_tmp, schema), False: pq.ParquetWriter(kept_tmp, schema)}
        try:
            offset = 0
            for ids in map(read_ids, b.files):  # second pass: ids only, shard by shard
                sl = slice(offset, offset + len(ids))
                ids_arr = np.array(ids, dtype=object)
                for flag in (True, False):
                    m = removed[sl] == flag
                    writers[flag].write_table(pa.table({"id": pa.array(ids_arr[m].tolist(), pa.string()),
                                                        "max_similarity": pa.array(res["max_similarity"][sl][m])},
                                                       schema=schema))
                if lab is not None:
                    for i in ids_arr[removed[sl]]:
                        key = str(lab.get(i, "unknown"))
                        per[key] = per.get(key, 0) + 1
                offset += len(ids)
        finally:
            for w in writers.values():
                w.close()
    report = {"method": method, "n_base": int(len(removed)), "n_removed": int(removed.sum()),
              "n_removed_aligned": int(sets["aligned"].sum()), "n_tests": [len(i) for i, _ in t_parts],
              "tau_mean": float(np.mean(tau)) if len(tau) else float("nan"), "tolerance": tol,
              "removed_per_test_set": {p: int(res["per_test_set"][:, k].sum()) for k, p in enumerate(tests)},
              "controls_size": int(sets["aligned"].sum()),
              "normalized_on_read": [n for n, e in (("base", b), ("reference", ref), *(
                  (t, s) for t, s in zip(tests, t_sets, strict=True))) if e.normalized]}
    if lab is not None:
        report["removed_per_class"] = dict(sorted(per.items()))
    atomic_write_json(os.path.join(out, "report.json"), report)
    return report


def _write_split(e, keep: np.ndarray, out: str, names: tuple[str, str]) -> None:
    """OUT/<names[0]>.parquet (ids where keep) and OUT/<names[1]>.parquet (the rest), shard by shard."""
    import pyarrow.parquet as pq

    from clipcomp.io import atomic_output

    schema = pa.schema([("id", pa.string())])
    with atomic_output(os.path.join(out, f"{names[0]}.parquet")) as a_tmp, \
            atomic_output(os.path.join(out, f"{names[1]}.parquet")) as b_tmp:
        writers = {True: pq.ParquetWriter(a_tmp, schema), False: pq.ParquetWriter(b_tmp, schema)}
        try:
            offset = 0
            for ids in map(read_ids, e.files):
                arr = np.array(ids, dtype=object)
                m = keep[offset:offset + len(ids)]
                for flag in (True, False):
                    writers[flag].write_table(pa.table({"id": pa.array(arr[m == flag].tolist(), pa.string())},
                                                       schema=schema))
                offset += len(ids)
        finally:
            for w in writers.values():
                w.close()


SEMDEDUP_ORDERS = ("dataset", "centroid")
KMEANS_POINTS_PER_CENTROID = 256  # faiss's max_points_per_centroid: k-means trains on at most 256·k points


def kmeans_sample(n: int, k: int, seed: int) -> np.ndarray:
    """Sorted indices of the k-means training sample: every item when n ≤ 256·k, else a seeded choice of 256·k
    (faiss would subsample to the same size itself; choosing it here makes the in-memory and the streamed
    SemDeDup train on identical points)."""
    cap = KMEANS_POINTS_PER_CENTROID * k
    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng([seed, 5_150]).choice(n, cap, replace=False))


def _centroids(sample: np.ndarray, k: int, seed: int, niter: int) -> np.ndarray:
    import faiss

    if k <= 1:
        return np.ascontiguousarray(sample.mean(axis=0, keepdims=True), np.float32)
    km = faiss.Kmeans(sample.shape[1], k, niter=niter, seed=seed, spherical=True, verbose=False)
    km.train(np.ascontiguousarray(sample, np.float32))
    return np.ascontiguousarray(km.centroids, np.float32)


def _assign(x: np.ndarray, centroids: np.ndarray, block: int = 65_536) -> np.ndarray:
    """Nearest centroid (L2, as faiss k-means assigns) per row, in fixed row blocks."""
    import faiss

    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(centroids)
    out = np.empty(len(x), np.int64)
    for s in range(0, len(x), block):
        out[s:s + block] = index.search(np.ascontiguousarray(x[s:s + block], np.float32), 1)[1][:, 0]
    return out


def _cluster_keep(xc: np.ndarray, threshold: float, block: int) -> np.ndarray:
    """Keep-mask of one cluster's rows (in their order): a row is removed when its cosine similarity to an
    earlier row exceeds `threshold` (tril(−1), row max). Vectorized in row blocks."""
    keep = np.empty(len(xc), bool)
    for s in range(0, len(xc), block):
        sims = xc[s:s + block] @ xc[:s + block].T  # rows s.., columns up to the block's end
        rows = np.arange(s, min(s + block, len(xc)))
        sims = np.where(np.arange(sims.shape[1])[None, :] < rows[:, None], sims, 0.0)  # tril(−1), zeros above
        keep[rows] = sims.max(axis=1) <= threshold
    return keep


def _cluster_order(idx: np.ndarray, xc: np.ndarray, centroid: np.ndarray, order: str) -> np.ndarray:
    """Positions into the cluster (dataset order by default; `centroid`: least prototypical first)."""
    if order == "centroid":
        return np.lexsort((idx, xc @ centroid))
    return np.arange(len(idx))


def semdedup(vectors: np.ndarray, n_clusters: int, threshold: float, seed: int = 0, niter: int = 20,
             order: str = "dataset", block: int = 2048) -> np.ndarray:
    """Boolean keep-mask. Within each faiss k-means cluster, an item is removed when its cosine similarity to any
    earlier item of the cluster exceeds `threshold` (clip-ood src/deduplication/utils.py l.155-166 and l.202-207:
    tril(sims, −1), row max, keep ≤ 1 − 0.124 = 0.876; earlier = dataset order). `order="centroid"` puts the
    least prototypical items first (SemDeDup's keep-hard ordering; an option). Vectorized: row blocks of the
    cluster's similarity matrix, no per-item Python loop. `semdedup_shards` is the same rule streamed."""
    if order not in SEMDEDUP_ORDERS:
        raise ClipcompError(f"--order {order!r}: expected one of {', '.join(SEMDEDUP_ORDERS)}")
    x = np.ascontiguousarray(vectors, np.float32)
    n = len(x)
    k = max(1, min(n_clusters, n))
    cent = _centroids(x[kmeans_sample(n, k, seed)], k, seed, niter)
    assign = _assign(x, cent) if k > 1 else np.zeros(n, np.int64)
    keep = np.zeros(n, bool)
    by_cluster = np.argsort(assign, kind="stable")
    starts = np.r_[0, np.flatnonzero(np.diff(assign[by_cluster])) + 1, n]
    for a, z in zip(starts[:-1], starts[1:], strict=True):
        idx = by_cluster[a:z]  # dataset order inside the cluster
        pos = _cluster_order(idx, x[idx], cent[assign[idx[0]]], order)
        keep[idx[pos]] = _cluster_keep(x[idx[pos]], threshold, block)
    return keep


def sample_shard_task(task: tuple[str, np.ndarray], dim: int) -> np.ndarray:
    """The k-means sample's rows of one shard (`task`: path, row positions inside it)."""
    from clipcomp.similarity.embeddings import read_shard

    path, rows = task
    return np.ascontiguousarray(read_shard(path, dim, with_ids=False)[1][rows], np.float32)


def assign_shard_task(path: str, dim: int, centroids: np.ndarray) -> dict:
    """Nearest centroid of every row of one shard."""
    from clipcomp.similarity.embeddings import read_shard

    _, mat, normalized = read_shard(path, dim, with_ids=False)
    a = _assign(mat, centroids) if len(centroids) > 1 else np.zeros(len(mat), np.int64)
    return {"assign": a.astype(np.int32), "normalized": normalized}


def scatter_shard_task(task: tuple[str, np.ndarray, np.ndarray, np.ndarray], dim: int, scratch: str) -> int:
    """Writes one shard's rows into the cluster-ordered scratch file: `task` = (path, the rows' clusters, the
    clusters present, where this shard's rows of each start in the file). Shards write disjoint regions, so the
    file is the same whatever order the tasks run in."""
    from clipcomp.similarity.embeddings import read_shard

    path, assign, clusters, at = task
    _, mat, _ = read_shard(path, dim, with_ids=False)
    srt = np.argsort(assign, kind="stable")
    rows = np.ascontiguousarray(mat[srt], np.float32)
    _, first, cnt = np.unique(assign[srt], return_index=True, return_counts=True)
    fd = os.open(scratch, os.O_WRONLY)
    try:
        for f0, m, row in zip(first.tolist(), cnt.tolist(), at.tolist(), strict=True):
            os.pwrite(fd, rows[f0:f0 + m].tobytes(), int(row) * dim * 4)
    finally:
        os.close(fd)
    return len(mat)


def cluster_keep_task(task: tuple[np.ndarray, np.ndarray], dim: int, scratch: str, centroids: np.ndarray,
                      threshold: float, order: str, block: int) -> np.ndarray:
    """Keep-mask (slab order) of a run of whole clusters: `task` = (one row (cluster, slab start, slab end) per
    cluster, the dataset index of each of the run's slab rows). Reads only its clusters from the scratch file."""
    bounds, idx_all = task
    lo = int(bounds[0, 1])
    keep = np.zeros(int(bounds[-1, 2]) - lo, bool)
    fd = os.open(scratch, os.O_RDONLY)
    try:
        for c, a, z in bounds.tolist():
            xc = np.frombuffer(os.pread(fd, (z - a) * dim * 4, a * dim * 4), np.float32).reshape(z - a, dim)
            idx = idx_all[a - lo:z - lo]
            pos = _cluster_order(idx, xc, centroids[c], order)
            part = np.empty(z - a, bool)
            part[pos] = _cluster_keep(xc[pos], threshold, block)
            keep[a - lo:z - lo] = part
    finally:
        os.close(fd)
    return keep


def _cluster_groups(starts: np.ndarray, target_rows: int) -> list[np.ndarray]:
    """Consecutive non-empty clusters grouped into tasks of about `target_rows` slab rows each."""
    groups, cur, rows = [], [], 0
    for c in range(len(starts) - 1):
        a, z = int(starts[c]), int(starts[c + 1])
        if z == a:
            continue
        cur.append((c, a, z))
        rows += z - a
        if rows >= target_rows:
            groups.append(np.array(cur, np.int64))
            cur, rows = [], 0
    if cur:
        groups.append(np.array(cur, np.int64))
    return groups


def semdedup_shards(emb, n_clusters: int, threshold: float, seed: int = 0, niter: int = 20,
                    order: str = "dataset", block: int = 2048, workdir: str | None = None, engine=None,
                    progress: bool = False) -> np.ndarray:
    """`semdedup` on an embedding directory without holding it, in four passes of tasks on `engine` (local or a
    Dask cluster; workdir must then be on a file system the workers share): the k-means sample's rows; each
    shard's clusters; each shard's rows written into a cluster-ordered scratch file (disjoint positional writes);
    then runs of whole clusters read back and deduplicated. Memory: one shard or one cluster run per worker, and
    per-item scalars in the parent; disk: one float32 copy of the vectors (in `workdir`, removed after). Same kept
    set as `semdedup`, whichever engine."""
    import shutil
    import tempfile

    from clipcomp.procs import Engine
    from clipcomp.progress import progress_bar

    if order not in SEMDEDUP_ORDERS:
        raise ClipcompError(f"--order {order!r}: expected one of {', '.join(SEMDEDUP_ORDERS)}")
    eng = engine or Engine()
    sizes = [pq_rows(f) for f in emb.files]
    offsets = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    n, d = int(offsets[-1]), emb.dim
    k = max(1, min(n_clusters, n))
    want = kmeans_sample(n, k, seed)
    cuts = np.searchsorted(want, offsets)
    tasks = [(f, want[cuts[j]:cuts[j + 1]] - offsets[j]) for j, f in enumerate(emb.files)]
    sample = eng.map_ordered(sample_shard_task, [t for t in tasks if len(t[1])], d)
    cent = _centroids(np.concatenate(sample) if sample else np.zeros((0, d), np.float32), k, seed, niter)
    del sample
    with progress_bar(len(emb.files), "shards", enabled=progress, desc="dedup: assign") as bar:
        def on_assign(r):
            emb.normalized |= r["normalized"]
            bar.update(1)

        parts = eng.map_ordered(assign_shard_task, emb.files, d, eng.share(cent), on_done=on_assign)
    assign = np.concatenate([p["assign"] for p in parts]) if parts else np.zeros(0, np.int32)
    del parts
    counts = np.bincount(assign, minlength=k)
    starts = np.r_[0, np.cumsum(counts)].astype(np.int64)
    keep = np.zeros(n, bool)
    if n == 0:
        return keep
    filled = starts[:-1].copy()
    scatter = []
    for j, f in enumerate(emb.files):  # where each shard's rows of each cluster go (dataset order inside)
        a = assign[offsets[j]:offsets[j + 1]]
        cl, cnt = np.unique(a, return_counts=True)
        scatter.append((f, a, cl, filled[cl].copy()))
        filled[cl] += cnt
    tmp = tempfile.mkdtemp(prefix="semdedup-", dir=workdir)
    try:
        scratch = os.path.join(tmp, "by_cluster.f32")
        with open(scratch, "wb") as fh:
            fh.truncate(n * d * 4)
        with progress_bar(len(emb.files), "shards", enabled=progress, desc="dedup: group") as bar:
            eng.map_ordered(scatter_shard_task, scatter, d, scratch, on_done=lambda _: bar.update(1))
        del scatter
        order_idx = np.argsort(assign, kind="stable")  # dataset index of each slab row
        groups = _cluster_groups(starts, max(int(np.median(sizes)) if sizes else 1, 1))
        shared_cent = eng.share(cent)
        with progress_bar(n, "vectors", enabled=progress, desc="dedup: clusters") as bar:
            done = eng.map(cluster_keep_task, [(g, order_idx[g[0, 1]:g[-1, 2]]) for g in groups], d, scratch,
                           shared_cent, threshold, order, block)
            for j, slab_keep in done:
                lo, hi = int(groups[j][0, 1]), int(groups[j][-1, 2])
                keep[order_idx[lo:hi]] = slab_keep
                bar.update(hi - lo)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return keep


def dedup(emb: str, out: str, n_clusters: int = 100, threshold: float = 0.876, seed: int = 0,
          force: bool = False, order: str = "dataset", engine=None, progress: bool = False) -> dict:
    """SemDeDup of an embedding directory → OUT/kept.parquet, OUT/removed.parquet, report.json; streamed
    (`semdedup_shards`), its tasks on `engine` (EngineOptions: local, or Dask; the same files either way)."""
    from clipcomp.io import atomic_write_json, check_output_path, prepare_output
    from clipcomp.procs import Engine, EngineOptions

    check_output_path(out)
    engine = engine or EngineOptions()
    engine.validate()
    if order not in SEMDEDUP_ORDERS:
        raise ClipcompError(f"--order {order!r}: expected one of {', '.join(SEMDEDUP_ORDERS)}")
    if not -1 <= threshold <= 1:
        raise ClipcompError(f"--threshold must be a cosine in [-1, 1] (got {threshold})")
    e = open_embeddings(emb)
    prepare_output(out, "similarity dedup", {"emb": os.path.abspath(emb), "n_clusters": n_clusters,
                                             "threshold": threshold, "seed": seed, "order": order}, force=force,
                   markers=("kept.parquet",))
    with Engine(engine) as eng:
        keep = semdedup_shards(e, n_clusters, threshold, seed, order=order, workdir=out, engine=eng,
                               progress=progress)
    _write_split(e, keep, out, ("kept", "removed"))
    rep = {"n": int(keep.size), "n_kept": int(keep.sum()), "n_removed": int((~keep).sum()), "n_clusters": n_clusters,
           "threshold": threshold, "normalized_on_read": e.normalized}
    atomic_write_json(os.path.join(out, "report.json"), rep)
    return rep
