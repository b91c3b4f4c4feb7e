"""Statistics at scale: parallel planning of single big inputs, the parallel merge, the memory-mapped index,
DuckDB views, OS CPU accounting and remote (HTTP) inputs -- all checked against an independent count."""

from __future__ import annotations

import http.server
import itertools
import json
import os
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import reference as ref

from clipcomp.cooccur import BuildOptions, build_stats
from clipcomp.cooccur import merge as merge_mod
from clipcomp.cooccur.build import _task_sizes
from clipcomp.cooccur.merge import merge_range, plan_merge
from clipcomp.cooccur.pairs import merge_runs
from clipcomp.corpus import plan_tasks
from clipcomp.stats import INDEX_DIR, ConceptStats


def _plan(path: str):
    probe = plan_tasks([path], target_bytes=1 << 62)
    target_bytes, target_rows = _task_sizes(probe.files)
    return plan_tasks([path], target_bytes=target_bytes, target_rows=target_rows)


def _reference(lines: list[str]):
    sets = ref.discovery_sets(lines, frozenset(), lambda w: w)
    return ref.count(sets)


def _check_exact(out, lines):
    uni, pairs = _reference(lines)
    s = ConceptStats.load(out)
    assert s.n_captions == len(lines)
    t = pq.read_table(Path(out) / "pairs.parquet")
    got = dict(zip(zip(t.column("a").to_pylist(), t.column("b").to_pylist(), strict=True),
                   t.column("count").to_pylist(), strict=True))
    assert got == dict(pairs)
    assert {c: s.count(c) for c in s.concepts} == dict(uni)


@pytest.fixture(scope="module")
def lines(cc3m_lines):
    return [line for line in cc3m_lines if line.strip()]


def test_one_big_text_file_is_planned_into_many_tasks(tmp_path, cc3m_lines):
    # ~60 MB, one caption per line: the size of 1M LAION captions in one file
    path = tmp_path / "big.txt"
    block = ("\n".join(cc3m_lines) + "\n").encode()
    with open(path, "wb") as f:
        for _ in range(-(-60_000_000 // len(block))):
            f.write(block)
    plan = _plan(str(path))
    assert len(plan.tasks) >= 8
    assert sorted((t.start, t.end) for t in plan.tasks)[0][0] == 0


def test_single_row_group_parquet_is_cut_into_row_slices(tmp_path, lines):
    path = tmp_path / "one.parquet"
    pq.write_table(pa.table({"TEXT": lines}), path, row_group_size=len(lines) + 1)
    assert pq.ParquetFile(path).metadata.num_row_groups == 1
    plan = plan_tasks([str(path)], target_rows=len(lines) // 8)
    assert len(plan.tasks) >= 2 and all(t.row_groups == (0,) for t in plan.tasks)
    spans = sorted((t.start, t.end) for t in plan.tasks)
    assert spans[0][0] == 0 and spans[-1][1] == len(lines)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    out = tmp_path / "stats"
    build_stats([str(path)], str(out), BuildOptions(min_count=1, lemmatizer="none", stopwords="none",
                                                    workers=2, task_rows=len(lines) // 4))
    _check_exact(out, lines)


def test_default_task_sizes_give_parallel_work_from_one_million_captions():
    text_bytes, _ = _task_sizes([{"format": "text", "bytes": 63_000_000}])
    assert -(-63_000_000 // text_bytes) >= 8
    _, rows = _task_sizes([{"format": "parquet", "bytes": 0, "rows": 1_000_000}])
    assert -(-1_000_000 // rows) >= 8


def test_parallel_merge_ranges_cover_every_pair_once(tmp_path):
    rng = np.random.default_rng(0)
    v = 300
    parts = []
    tmp = tmp_path
    runs = []
    for i in range(5):
        a = rng.integers(0, v - 1, 20_000)
        b = a + 1 + rng.integers(0, v - 1 - a)
        codes, counts = np.unique(a * v + b, return_counts=True)
        np.save(tmp / f"c{i}.npy", codes)
        np.save(tmp / f"n{i}.npy", counts.astype(np.int64))
        parts.append((str(tmp / f"c{i}.npy"), str(tmp / f"n{i}.npy")))
        runs.append((codes, counts.astype(np.int64)))
    want = merge_runs(runs)
    tasks = plan_merge(parts, v, n_ranges=7, budget=10_000)
    assert len(tasks) >= 7
    assert tasks[0].lo == 0 and tasks[-1].hi == v * v
    assert all(a.hi == b.lo for a, b in itertools.pairwise(tasks))
    got = [merge_range(t) for t in tasks]
    assert np.array_equal(np.concatenate([g[0] for g in got]), want[0])
    assert np.array_equal(np.concatenate([g[1] for g in got]), want[1])


def test_counts_exact_through_a_many_range_parallel_merge(tmp_path, cc3m_path, lines, monkeypatch):
    # force many small merge ranges (forked workers inherit the patched budget)
    real = merge_mod.plan_merge

    def many(parts, n_concepts, n_ranges, budget=20_000_000):
        return real(parts, n_concepts, n_ranges, budget=5_000)

    monkeypatch.setattr("clipcomp.cooccur.build.plan_merge", many)
    out = tmp_path / "stats"
    build_stats([cc3m_path], str(out), BuildOptions(min_count=1, lemmatizer="none", stopwords="none", workers=2,
                                                    task_bytes=200_000))
    run = json.loads((out / "run.json").read_text())
    assert run["n_merge_tasks"] >= 10
    _check_exact(out, lines)


def test_run_json_has_os_cpu_seconds_per_phase(tmp_path, cc3m_path):
    out = tmp_path / "stats"
    build_stats([cc3m_path], str(out), BuildOptions(min_count=3, workers=2, task_bytes=300_000))
    run = json.loads((out / "run.json").read_text())
    assert set(run["phase_cpu_seconds"]) == {"discover", "pairs", "merge"}
    assert all(v > 0 for v in run["phase_cpu_seconds"].values())
    assert run["process_cpu_seconds"] > 0 and run["children_cpu_seconds"] > 0
    # CPU of the extraction is process time, not a sum of wall clocks: never more than the phase's CPU
    assert 0 < run["extract_cpu_seconds"] <= run["phase_cpu_seconds"]["discover"] + 1e-6


def test_index_is_memory_mapped_and_agrees_with_the_table(tmp_path, cc3m_path):
    out = tmp_path / "stats"
    build_stats([cc3m_path], str(out), BuildOptions(min_count=3))
    s = ConceptStats.load(out)
    assert isinstance(s._codes, np.memmap) and s._pairs is None  # nothing read but the concepts
    table = s.pairs
    assert s._pairs is not None and table.num_rows == s.info()["n_pairs"]
    # a directory without index/ (written before it existed) answers the same
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for name in ("concepts.parquet", "pairs.parquet", "meta.json"):
        (legacy / name).write_bytes((out / name).read_bytes())
    old = ConceptStats.load(legacy)
    assert not (legacy / INDEX_DIR).exists()
    for c in ("dog", "man", "beach", "city"):
        assert s.top_pairs(concept=c, k=15) == old.top_pairs(concept=c, k=15)
        # the index answers exactly what a scan of the table gives (ties by a, b)
        rows = [r for r in table.to_pylist() if c in (r["a"], r["b"])]
        rows.sort(key=lambda r: (-r["pmi"], r["a"], r["b"]))
        assert [(p.a, p.b, p.count, p.pmi) for p in s.top_pairs(concept=c, k=15)] == \
            [(r["a"], r["b"], r["count"], r["pmi"]) for r in rows[:15]]
    assert s.top_pairs(k=10, min_count=5) == old.top_pairs(k=10, min_count=5)
    assert s.top_pairs(k=7, lowest=True, by="npmi") == old.top_pairs(k=7, lowest=True, by="npmi")
    assert s.top_pairs(k=5, by="count") == old.top_pairs(k=5, by="count")
    for a, b in (("dog", "beach"), ("man", "city")):
        assert s.pair(a, b) == old.pair(a, b)


def test_sql_views_over_the_parquet_files(tmp_path, cc3m_path):
    pytest.importorskip("duckdb")
    out = tmp_path / "stats"
    build_stats([cc3m_path], str(out), BuildOptions(min_count=3))
    s = ConceptStats.load(out)
    assert s.sql("SELECT count(*) FROM pairs").fetchall()[0][0] == s.info()["n_pairs"]
    (n,) = s.sql("SELECT count FROM pairs WHERE a = 'beach' AND b = 'dog'").fetchall()[0]
    assert n == s.count("dog", "beach")
    assert s.sql("SELECT count(*) FROM concepts").fetchall()[0][0] == len(s)


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """A static file server that honours Range requests (as object stores and CDNs do)."""

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self._serve(head=True)

    def do_GET(self):
        self._serve(head=False)

    def _serve(self, head: bool):
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(404)
            return
        size = os.path.getsize(path)
        rng = self.headers.get("Range")
        start, end = 0, size - 1
        if rng and rng.startswith("bytes="):
            lo, _, hi = rng[6:].partition("-")
            start = int(lo) if lo else size - int(hi)
            end = min(int(hi), size - 1) if hi and lo else size - 1
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if not head:
            with open(path, "rb") as f:
                f.seek(start)
                self.wfile.write(f.read(end - start + 1))


@pytest.fixture
def http_root(tmp_path):
    pytest.importorskip("fsspec")
    pytest.importorskip("aiohttp")
    root = tmp_path / "www"
    root.mkdir()
    handler = lambda *a, **k: _RangeHandler(*a, directory=str(root), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_remote_http_inputs_give_the_same_statistics(tmp_path, http_root, lines):
    root, url = http_root
    half = len(lines) // 2
    pq.write_table(pa.table({"TEXT": lines[:half]}), root / "part-0.parquet", row_group_size=2000)
    (root / "part-1.txt").write_text("\n".join(lines[half:]) + "\n", encoding="utf-8")
    opts = dict(min_count=1, lemmatizer="none", stopwords="none", workers=2, task_bytes=100_000, task_rows=3000)
    remote_out, local_out = tmp_path / "remote", tmp_path / "local"
    build_stats([f"{url}/part-0.parquet", f"{url}/part-1.txt"], str(remote_out), BuildOptions(**opts))
    build_stats([str(root / "part-0.parquet"), str(root / "part-1.txt")], str(local_out), BuildOptions(**opts))
    assert json.loads((remote_out / "run.json").read_text())["n_tasks"] >= 4
    for name in ("concepts.parquet", "pairs.parquet"):
        assert (remote_out / name).read_bytes() == (local_out / name).read_bytes()
    _check_exact(remote_out, lines)
    meta = json.loads((remote_out / "meta.json").read_text())
    assert meta["inputs"][0]["path"].startswith("http://")


def test_remote_missing_file_is_one_line_error(http_root, tmp_path):
    from clipcomp.errors import ClipcompError

    _, url = http_root
    with pytest.raises(ClipcompError, match="part-9.parquet"):
        build_stats([f"{url}/part-9.parquet"], str(tmp_path / "x"), BuildOptions())


def test_background_compaction_keeps_counts_exact_and_files_identical(tmp_path, cc3m_path, lines, monkeypatch):
    opts = dict(min_count=1, lemmatizer="none", stopwords="none", workers=2, task_bytes=60_000, keep_work=True)
    monkeypatch.setattr(merge_mod, "COMPACT_GROUP", 10_000)
    plain = tmp_path / "plain"
    build_stats([cc3m_path], str(plain), BuildOptions(**opts))
    monkeypatch.setattr(merge_mod, "COMPACT_GROUP", 2)
    monkeypatch.setattr(merge_mod, "COMPACT_BYTES", 0)
    compacted = tmp_path / "compacted"
    build_stats([cc3m_path], str(compacted), BuildOptions(**opts))
    records = sorted((compacted / "_work").glob("compact-pairs-*.json"))
    assert len(records) >= 4 and any(json.loads(r.read_text())["level"] >= 2 for r in records)
    n_tasks = json.loads((compacted / "run.json").read_text())["n_tasks"]
    assert n_tasks >= 8 and len(list((compacted / "_work").glob("pairs-*.codes.npy"))) <= 1  # replaced
    for name in ("concepts.parquet", "pairs.parquet"):
        assert (compacted / name).read_bytes() == (plain / name).read_bytes()
    _check_exact(compacted, lines)


def test_build_interrupted_after_compactions_resumes_exactly(tmp_path, cc3m_path, lines, monkeypatch):
    import clipcomp.cooccur.engine as engine

    monkeypatch.setattr(merge_mod, "COMPACT_GROUP", 2)
    monkeypatch.setattr(merge_mod, "COMPACT_BYTES", 0)
    opts = BuildOptions(min_count=1, lemmatizer="none", stopwords="none", task_bytes=60_000)
    real = engine.run_task
    calls = []

    def dying(phase, task, ctx):
        if phase == "pairs" and len(calls) == 9:
            raise KeyboardInterrupt
        if phase == "pairs":
            calls.append(task.tid)
        return real(phase, task, ctx)

    monkeypatch.setattr(engine, "run_task", dying)
    out = tmp_path / "s"
    with pytest.raises(KeyboardInterrupt):
        build_stats([cc3m_path], str(out), opts)
    assert list((out / "_work").glob("compact-pairs-*.json"))  # compactions happened before the interrupt
    monkeypatch.setattr(engine, "run_task", real)
    build_stats([cc3m_path], str(out), opts)
    _check_exact(out, lines)
