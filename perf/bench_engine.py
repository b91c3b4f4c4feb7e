"""Local vs Dask for every heavy stage, in the same run, on this machine: wall time at equal cores (local: one
process, 2 threads; Dask: a scheduler and 2 single-thread worker processes started as `dask scheduler` /
`dask worker`, as on a cluster), identical outputs, and the scheduler process's peak RSS at two input sizes
(it should be flat: tasks carry paths, never data); and the scaling from 1 to 2 Dask workers.
Local runs use the same 2 cores (2 threads; negatives: a pool of 2 processes).

    python perf/bench_engine.py [--captions 20000] [--base 200000] [--repeats 2]

Stages: embed (text, clipcomp-micro, realistic captions), negatives generate, similarity knn (exact), prune
(aligned), dedup (SemDeDup). Vectors are float16 unit vectors around 2,000 centres (perf/bench_similarity.py's
generator idea); captions come from perf/realistic_corpus.py (real CC3M/Flickr8k halves + a Zipf tail).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def vectors(out: str, n: int, dim: int, shard: int, seed: int, centres: np.ndarray) -> str:
    from clipcomp.similarity.embeddings import write_embeddings

    rng = np.random.default_rng(seed)
    x = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.standard_normal((n, dim), dtype=np.float32)
    x[1::50] = x[0::50][: len(x[1::50])]  # exact duplicates for SemDeDup to find
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    write_embeddings(out, [f"{Path(out).name}-{i}" for i in range(n)], x, {"model": "bench"}, shard_size=shard)
    return out


class Cluster:
    """`dask scheduler` + `dask worker --nworkers N --nthreads 1` as separate processes."""

    def __init__(self, workers: int, tmp: str) -> None:
        dask = shutil.which("dask", path=os.path.dirname(sys.executable)) or "dask"
        os.makedirs(tmp, exist_ok=True)
        self.file = os.path.join(tmp, "scheduler.json")
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        self.scheduler = subprocess.Popen([dask, "scheduler", "--scheduler-file", self.file, "--port", "0",
                                           "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          env=env)
        for _ in range(300):
            if os.path.exists(self.file):
                break
            time.sleep(0.1)
        self.workers = subprocess.Popen([dask, "worker", "--scheduler-file", self.file, "--nworkers", str(workers),
                                         "--nthreads", "1", "--no-dashboard", "--memory-limit", "0"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        from dask.distributed import Client

        with Client(scheduler_file=self.file) as c:
            c.wait_for_workers(workers, timeout=120)
            self.address = c.scheduler.address

    def scheduler_peak_mb(self) -> float:
        with open(f"/proc/{self.scheduler.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def close(self) -> None:
        for p in (self.workers, self.scheduler):
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def same(a: str, b: str, names: list[str]) -> bool:
    return all(Path(a, n).read_bytes() == Path(b, n).read_bytes() for n in names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--captions", type=int, default=20_000, help="captions for embed and negatives")
    ap.add_argument("--base", type=int, default=200_000, help="base vectors for knn, prune, dedup")
    ap.add_argument("--shard", type=int, default=25_000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from clipcomp.negatives import NegativeOptions, generate_negatives
    from clipcomp.procs import EngineOptions
    from clipcomp.similarity.embeddings import embed_to_files
    from clipcomp.similarity.knn import knn
    from clipcomp.similarity.prune import dedup, prune

    tmp = tempfile.mkdtemp(prefix="bench-engine-")
    try:
        subprocess.run([sys.executable, str(ROOT / "perf" / "realistic_corpus.py"), str(args.captions), "-o",
                        f"{tmp}/corpus"], check=True, stdout=subprocess.DEVNULL)
        caps = f"{tmp}/corpus/captions.txt"
        import pyarrow as pa
        import pyarrow.parquet as pq

        lines = Path(caps).read_text(encoding="utf-8").splitlines()
        table = f"{tmp}/captions.parquet"  # embed reads a table: id + caption
        pq.write_table(pa.table({"id": [f"c{i}" for i in range(len(lines))], "caption": lines}), table)
        rng = np.random.default_rng(0)
        centres = rng.standard_normal((2000, 512), dtype=np.float32)
        base = vectors(f"{tmp}/base", args.base, 512, args.shard, 1, centres)
        big = vectors(f"{tmp}/base4", 4 * args.base, 512, args.shard, 2, centres)
        tests = vectors(f"{tmp}/tests", 2_000, 512, args.shard, 3, centres)
        ref = vectors(f"{tmp}/ref", 20_000, 512, args.shard, 4, centres)
        queries = vectors(f"{tmp}/queries", 10_000, 512, args.shard, 5, centres)
        import atexit

        cluster = Cluster(2, tmp + "/c2")
        atexit.register(cluster.close)  # never leave a scheduler or workers behind
        one = Cluster(1, tmp + "/c1")
        atexit.register(one.close)
        dask = EngineOptions("dask", cluster.address)
        dask1 = EngineOptions("dask", one.address)
        stages = {
            "embed": (lambda o, e: embed_to_files(table, o, "clipcomp-micro", modality="text", shard_size=2_000,
                                                  batch_size=256, device="cpu", cache_dir=None, progress=False,
                                                  engine=e), None),
            "negatives generate": (lambda o, e: generate_negatives(
                [caps], o, NegativeOptions(types=("replace-obj", "replace-att", "swap-att"),
                                           engine=e.engine if e else "local",
                                           scheduler=e.scheduler if e else None, workers=2),
                progress=False), ["negatives.parquet", "unperturbable.parquet"]),
            "similarity knn": (lambda o, e: knn(queries, base, o, k=10, progress=False, engine=e),
                               ["neighbors.parquet"]),
            "similarity prune": (lambda o, e: prune(base, [tests], ref, o, progress=False, engine=e),
                                 ["kept.parquet", "removed.parquet", "report.json"]),
            "similarity dedup": (lambda o, e: dedup(base, o, n_clusters=200, threshold=0.95, engine=e),
                                 ["kept.parquet", "removed.parquet", "report.json"]),
        }
        rows = []
        print(f"{'stage':20s} {'local s':>9s} {'dask×1 s':>9s} {'dask×2 s':>9s} {'dask/local':>10s} "
              f"{'speed-up 1→2':>12s}  identical", flush=True)
        for name, (fn, files) in stages.items():
            times = {"local": [], "dask": [], "dask1": []}
            for r in range(args.repeats):  # interleaved: local, dask ×2, dask ×1, local, …
                for tag, eng in (("local", None), ("dask", dask), ("dask1", dask1)):
                    out = f"{tmp}/{name.replace(' ', '_')}-{tag}-{r}"
                    t0 = time.perf_counter()
                    fn(out, eng)
                    times[tag].append(time.perf_counter() - t0)
            a, b = f"{tmp}/{name.replace(' ', '_')}-local-0", f"{tmp}/{name.replace(' ', '_')}-dask-0"
            if files is None:  # embeddings: ids identical, vectors within float16 round-off
                from clipcomp.similarity.embeddings import open_embeddings

                ia, xa = open_embeddings(a).load()
                ib, xb = open_embeddings(b).load()
                ident = f"ids equal {ia == ib}, max |Δ| {np.abs(xa - xb).max():.1e}"
            else:
                ident = "bytes equal" if same(a, b, files) else "DIFFERENT"
            lo, da, d1 = min(times["local"]), min(times["dask"]), min(times["dask1"])
            rows.append({"stage": name, "local_s": lo, "dask_s": da, "dask1_s": d1, "ratio": da / lo,
                         "speedup_1_to_2": d1 / da, "identical": ident, "all_times": times})
            print(f"{name:20s} {lo:9.1f} {d1:9.1f} {da:9.1f} {da / lo:10.2f} {d1 / da:12.2f}  {ident}", flush=True)
        rss = {}
        for label, emb in (("1x", base), ("4x", big)):
            knn(queries, emb, f"{tmp}/rss-{label}", k=10, progress=False, engine=dask)
            rss[label] = cluster.scheduler_peak_mb()
        print(f"scheduler peak RSS after knn over {args.base:,} base vectors: {rss['1x']:.0f} MB; after "
              f"{4 * args.base:,}: {rss['4x']:.0f} MB", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps({"rows": rows, "scheduler_peak_mb": rss, "args": vars(args)},
                                                  indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
