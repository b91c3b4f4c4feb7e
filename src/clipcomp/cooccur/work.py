"""Per-task work, run inside worker processes (local pool or Dask): read → extract → count → partial files.

Every partial is written under a temporary name and renamed; a task's JSON marker is written last, so a
task is finished exactly when its marker exists and a killed run never leaves a half partial behind.
Phases:
  ``discover``  vocabulary from the corpus, pass 1: per-task lemma document counts + the caption→lemma sets
  ``pairs``     pass 2: map a task's lemma sets onto the global vocabulary and count pairs
  ``vocab``     a given vocabulary: one pass counting concepts and pairs
  ``merge``     reduce: one key range of pair codes summed over all partials, as ready pairs rows
Every result carries ``cpu_seconds`` (the worker process's CPU time for the task, from the OS).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather
import pyarrow.parquet as pq

from clipcomp.concepts import ConceptExtractor, VocabEntry
from clipcomp.cooccur.pairs import PairAccumulator
from clipcomp.corpus import ReadTally, Task, iter_texts
from clipcomp.io import atomic_output
from clipcomp.procs import keep_freed_memory


@dataclass(frozen=True)
class WorkContext:
    """Everything a worker needs, small and picklable."""

    work_dir: str
    lemmatizer: str
    stopwords: tuple[str, ...]
    vocab_file: str | None = None  # vocab.parquet (concept, key) in vocabulary mode; concepts in pass 2
    concepts_file: str | None = None  # merge: concept, count (the final concept table)
    n_captions: int = 0  # merge: for PMI
    smoothing: float = 0.0
    batch_rows: int = 131_072


def marker(work_dir: str, phase: str, tid: int) -> str:
    return os.path.join(work_dir, f"{phase}-{tid:06d}.json")


def part(work_dir: str, phase: str, tid: int, name: str) -> str:
    return os.path.join(work_dir, f"{phase}-{tid:06d}.{name}")


def _save_npy(path: str, arr: np.ndarray) -> None:
    with atomic_output(path) as tmp:
        np.save(tmp, arr)


def _save_json(path: str, obj: dict) -> None:
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f)


_EXTRACTORS: dict[tuple, ConceptExtractor] = {}
_VOCABS: dict[str, pa.Array] = {}


def _extractor(ctx: WorkContext) -> ConceptExtractor:
    key = (ctx.lemmatizer, ctx.stopwords, ctx.vocab_file)
    ex = _EXTRACTORS.get(key)
    if ex is None:
        vocab = None
        if ctx.vocab_file is not None:
            table = pq.read_table(ctx.vocab_file)
            vocab = [VocabEntry(c, tuple(k)) for c, k in zip(table.column("concept").to_pylist(),
                                                               table.column("key").to_pylist(), strict=True)]
        ex = ConceptExtractor(ctx.lemmatizer, ctx.stopwords, vocab=vocab)
        _EXTRACTORS.clear()
        _EXTRACTORS[key] = ex
    return ex


def warm_up(ctx: WorkContext) -> None:
    """Build this process's extractor and load the lemmatizer's dictionary now (forked workers inherit it)."""
    keep_freed_memory()
    _extractor(ctx).lemmatize("warming")


def release_caches() -> None:
    """Drop per-process caches (extractor, vocabulary, the dense pair buffer) once a build is over."""
    from clipcomp.cooccur import pairs

    _EXTRACTORS.clear()
    _VOCABS.clear()
    _CONCEPT_TABLES.clear()
    pairs._DENSE.clear()


def _result(task: Task, tally: ReadTally, t0: float, **extra) -> dict:
    out = {"tid": task.tid, "label": task.label, **tally.as_dict(), "seconds": time.perf_counter() - t0}
    out.update(extra)
    return out


def run_task(phase: str, task: Task, ctx: WorkContext) -> dict:
    """Run one phase of one task, write its partials, and return its tally (also stored as the marker)."""
    done = marker(ctx.work_dir, phase, task.tid)
    if os.path.exists(done):
        with open(done, encoding="utf-8") as f:
            return json.load(f)
    keep_freed_memory()
    cpu0 = time.process_time()
    if phase == "merge":
        result = _merge(task, ctx)
    elif phase == "discover":
        result = _discover(task, ctx)
    elif phase == "pairs":
        result = _pairs(task, ctx)
    elif phase == "vocab":
        result = _vocab(task, ctx)
    else:
        raise ValueError(f"unknown phase {phase!r}")
    result["cpu_seconds"] = time.process_time() - cpu0
    _save_json(done, result)
    return result


def _discover(task: Task, ctx: WorkContext) -> dict:
    t0 = time.perf_counter()
    ex = _extractor(ctx)
    ex.trim()
    tally = ReadTally()
    counts = np.zeros(1024, np.int64)
    lens_parts, id_parts = [], []
    t_extract = c_extract = 0.0
    for texts in iter_texts(task, tally, ctx.batch_rows):
        t1, c1 = time.perf_counter(), time.process_time()
        indptr, ids = ex.encode(texts)
        t_extract += time.perf_counter() - t1
        c_extract += time.process_time() - c1
        if len(ex.lemmas) > counts.size:
            counts = np.concatenate([counts, np.zeros(max(len(ex.lemmas), 2 * counts.size) - counts.size,
                                                      np.int64)])
        counts[: len(ex.lemmas)] += np.bincount(ids, minlength=len(ex.lemmas))
        lens_parts.append(np.diff(indptr).astype(np.uint32))
        id_parts.append(ids)
    # the extractor's lemma ids are per process (shared by its tasks): keep this task's lemmas only
    counts = counts[: len(ex.lemmas)]
    used = np.flatnonzero(counts)
    remap = np.full(counts.size, -1, np.int32)
    remap[used] = np.arange(used.size, dtype=np.int32)
    id_parts = [remap[ids] for ids in id_parts]
    lemmas = pa.table({"lemma": pa.array(ex.lemmas, pa.string()).take(pa.array(used)),
                       "count": pa.array(counts[used], pa.int64())})
    with atomic_output(part(ctx.work_dir, "discover", task.tid, "lemmas.arrow")) as tmp:
        feather.write_feather(lemmas, tmp, compression="uncompressed")
    _save_npy(part(ctx.work_dir, "discover", task.tid, "lens.npy"),
              np.concatenate(lens_parts) if lens_parts else np.zeros(0, np.uint32))
    _save_npy(part(ctx.work_dir, "discover", task.tid, "ids.npy"),
              np.concatenate(id_parts) if id_parts else np.zeros(0, np.int32))
    return _result(task, tally, t0, extract_seconds=t_extract, extract_cpu_seconds=c_extract)


def _global_vocab(path: str) -> pa.Array:
    arr = _VOCABS.get(path)
    if arr is None:
        arr = pq.read_table(path, columns=["concept"]).column("concept").combine_chunks()
        _VOCABS.clear()
        _VOCABS[path] = arr
    return arr


def _pairs(task: Task, ctx: WorkContext) -> dict:
    """Pass 2: no re-reading of text; the pass-1 lemma sets are remapped onto global concept ids."""
    t0 = time.perf_counter()
    with open(marker(ctx.work_dir, "discover", task.tid), encoding="utf-8") as f:
        tally_d = json.load(f)
    vocab = _global_vocab(ctx.vocab_file)
    lemmas = feather.read_table(part(ctx.work_dir, "discover", task.tid, "lemmas.arrow")).column("lemma")
    local_to_global = pc.fill_null(pc.index_in(lemmas, value_set=vocab), -1).to_numpy(zero_copy_only=False)
    lens = np.load(part(ctx.work_dir, "discover", task.tid, "lens.npy")).astype(np.int64)
    ids = np.load(part(ctx.work_dir, "discover", task.tid, "ids.npy"))
    acc = PairAccumulator(len(vocab))
    step = 262_144
    pos = 0
    for r0 in range(0, lens.size, step):
        chunk_lens = lens[r0:r0 + step]
        n_ids = int(chunk_lens.sum())
        gid = local_to_global[ids[pos:pos + n_ids]] if local_to_global.size else np.zeros(0, np.int64)
        pos += n_ids
        rows = np.repeat(np.arange(chunk_lens.size), chunk_lens)
        keep = gid >= 0
        indptr = np.zeros(chunk_lens.size + 1, np.int64)
        np.cumsum(np.bincount(rows[keep], minlength=chunk_lens.size), out=indptr[1:])
        acc.add_sets(indptr, gid[keep])
    codes, counts = acc.result()
    _save_npy(part(ctx.work_dir, "pairs", task.tid, "codes.npy"), codes)
    _save_npy(part(ctx.work_dir, "pairs", task.tid, "counts.npy"), counts)
    tally = ReadTally(**{k: tally_d[k] for k in ("n_rows", "n_null", "n_empty", "n_invalid_utf8")})
    return _result(task, tally, t0, n_pair_codes=int(codes.size))


def _vocab(task: Task, ctx: WorkContext) -> dict:
    t0 = time.perf_counter()
    ex = _extractor(ctx)
    n_concepts = len(ex.vocab or [])
    tally = ReadTally()
    unigram = np.zeros(n_concepts, np.int64)
    acc = PairAccumulator(n_concepts)
    t_extract = c_extract = 0.0
    for texts in iter_texts(task, tally, ctx.batch_rows):
        t1, c1 = time.perf_counter(), time.process_time()
        indptr, ids = ex.encode(texts)
        t_extract += time.perf_counter() - t1
        c_extract += time.process_time() - c1
        unigram += np.bincount(ids, minlength=n_concepts)
        acc.add_sets(indptr, ids)
    codes, counts = acc.result()
    _save_npy(part(ctx.work_dir, "vocab", task.tid, "unigram.npy"), unigram)
    _save_npy(part(ctx.work_dir, "vocab", task.tid, "codes.npy"), codes)
    _save_npy(part(ctx.work_dir, "vocab", task.tid, "counts.npy"), counts)
    return _result(task, tally, t0, extract_seconds=t_extract, extract_cpu_seconds=c_extract,
                   n_pair_codes=int(codes.size))


_CONCEPT_TABLES: dict[str, tuple[pa.Array, np.ndarray]] = {}


def _merge(task, ctx: WorkContext) -> dict:
    """Sum one code range over all partials and write it as pairs rows (Arrow IPC) + its index arrays."""
    from clipcomp.cooccur.merge import merge_range
    from clipcomp.stats import pair_table

    t0 = time.perf_counter()
    got = _CONCEPT_TABLES.get(ctx.concepts_file)
    if got is None:
        table = pq.read_table(ctx.concepts_file)
        got = (table.column("concept").combine_chunks(), table.column("count").to_numpy())
        _CONCEPT_TABLES.clear()
        _CONCEPT_TABLES[ctx.concepts_file] = got
    codes, counts = merge_range(task)
    table = pair_table(codes, counts, got[0], got[1], ctx.n_captions, ctx.smoothing)
    with atomic_output(part(ctx.work_dir, "merge", task.tid, "arrow")) as tmp:  # last: the task counts as done
        with pa.OSFile(tmp, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=1 << 20)
        _save_npy(part(ctx.work_dir, "merge", task.tid, "codes.npy"), codes)
        _save_npy(part(ctx.work_dir, "merge", task.tid, "counts.npy"), counts)
    return {"tid": task.tid, "label": task.label, "rows": int(codes.size), "seconds": time.perf_counter() - t0}
