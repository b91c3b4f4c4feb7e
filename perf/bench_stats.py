"""Benchmark `stats build` end to end on a LAION-like corpus, beside a plain-Python baseline.

The corpus: N captions resampled (seeded) from real CC3M validation captions, written as a Parquet shard set
with a LAION-style `TEXT` column. Prints captions/s end to end, the time split between extraction (read,
tokenize, lemmatize, per-caption sets) and counting (pairs + merge), and peak RSS of the whole process tree
(summed over the build and its workers). The baseline is what research code does: regex tokens, stopwords,
lemmatizer with a cache, a Python set per caption, `Counter` over `itertools.combinations` — timed on a
subset in the same run.

    python perf/bench_stats.py --n 1000000 10000000 --workers 2
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parent / "src" / "clipcomp" / "data" / "cc3m_val_captions.txt"
SHARED_SOURCE = HERE.parent.parent / "shared" / "data" / "cc3m_val_captions.tsv"


def load_source() -> list[str]:
    path = SHARED_SOURCE if SHARED_SOURCE.exists() else DEFAULT_SOURCE
    with open(path, encoding="utf-8") as f:
        return [line.split("\t")[0] for line in f.read().splitlines()]


def make_corpus(captions: list[str], n: int, out_dir: Path, shard_rows: int = 2_000_000, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    src = pa.array(captions, pa.string())
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, start in enumerate(range(0, n, shard_rows)):
        idx = rng.integers(0, len(captions), min(shard_rows, n - start))
        pq.write_table(pa.table({"TEXT": src.take(pa.array(idx))}), out_dir / f"part-{i:05d}.parquet",
                       row_group_size=100_000)
    return out_dir


def _tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (from /proc)."""
    total = 0
    stack = [pid]
    page = os.sysconf("SC_PAGE_SIZE")
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * page
            with open(f"/proc/{p}/task/{p}/children") as f:
                stack.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return total


def run_build(corpus: Path, out: Path, workers: int, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "clipcomp.cli", "stats", "build", str(corpus), "-o", str(out), "--force",
           "-q", "--workers", str(workers), *extra]
    peak = 0
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            stop.wait(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    if proc.returncode:
        raise SystemExit(f"build failed: {err}")
    run = json.loads((out / "run.json").read_text())
    meta = json.loads((out / "meta.json").read_text())
    return {"wall": wall, "peak_rss": peak, "run": run, "meta": meta}


def baseline(captions: list[str], min_count: int) -> tuple[float, int]:
    """Captions/s of the plain-Python approach doing the same job: tokens, stopwords, simplemma lemmas (with a
    cache), a set per caption, document counts, the vocabulary (count ≥ min_count), then `Counter` over
    `itertools.combinations` of each caption's concept set. Returns (rate, number of concepts)."""
    import simplemma

    from clipcomp.concepts import load_stopwords

    stop = load_stopwords("default")
    token = re.compile(r"[^\W_]+")
    cache: dict[str, str] = {}
    t0 = time.perf_counter()
    sets = []
    for cap in captions:
        s = set()
        for t in token.findall(cap.lower()):
            if len(t) < 2 or t.isnumeric() or t in stop:
                continue
            lem = cache.get(t)
            if lem is None:
                lem = cache[t] = simplemma.lemmatize(t, lang="en").lower()
            if len(lem) < 2 or lem.isnumeric() or lem in stop:
                continue
            s.add(lem)
        sets.append(s)
    doc = Counter(itertools.chain.from_iterable(sets))
    vocab = {c for c, n in doc.items() if n >= min_count}
    pairs: Counter = Counter()
    for s in sets:
        pairs.update(itertools.combinations(sorted(s & vocab), 2))
    return len(captions) / (time.perf_counter() - t0), len(vocab)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--min-count", type=int, default=25)
    ap.add_argument("--baseline-n", type=int, default=200_000)
    ap.add_argument("--engine", default="local")
    ap.add_argument("--workdir", default=None, help="where corpora are written (default: a temp dir)")
    args = ap.parse_args()

    captions = load_source()
    base_dir = Path(args.workdir or tempfile.mkdtemp(prefix="clipcomp-bench-"))
    print(f"source: {len(captions):,} real CC3M captions; machine: {os.cpu_count()} cores; "
          f"workers: {args.workers}; engine: {args.engine}")
    rows = []
    for n in args.n:
        corpus = make_corpus(captions, n, base_dir / f"corpus-{n}")
        res = run_build(corpus, base_dir / f"stats-{n}", args.workers,
                        ["--min-count", str(args.min_count), "--engine", args.engine])
        ph = res["run"]["phase_seconds"]
        rate = n / res["wall"]
        rows.append((n, res))
        print(f"N={n:>11,}  wall {res['wall']:7.2f} s  {rate:>10,.0f} captions/s end to end  "
              f"(in-process {res['run']['captions_per_second']:,.0f}/s)  "
              f"extract {ph.get('discover', 0):.2f} s | select {ph.get('select', 0):.2f} s | "
              f"pairs {ph.get('pairs', 0):.2f} s | merge+write {ph.get('merge', 0):.2f} s  "
              f"peak RSS {res['peak_rss'] / 2**30:.2f} GiB  "
              f"concepts {res['meta']['n_concepts']:,}  pairs {res['meta']['n_pairs']:,}")
    # Baseline on a subset of the same resampled corpus; min-count scaled to the subset size.
    n0 = rows[0][0]
    sub = pq.read_table(base_dir / f"corpus-{n0}" / "part-00000.parquet").column("TEXT").to_pylist()
    sub = sub[: args.baseline_n]
    b, n_vocab = baseline(sub, max(1, round(args.min_count * len(sub) / n0)))
    print(f"plain-Python baseline (1 process, {len(sub):,} captions, {n_vocab:,} concepts): {b:,.0f} captions/s")
    for n, res in rows:
        print(f"speed-up at N={n:,}: {n / res['wall'] / b:.1f}x over the baseline "
              f"({n / res['wall'] / (b * args.workers):.1f}x over {args.workers} ideal baseline processes)")


if __name__ == "__main__":
    main()
