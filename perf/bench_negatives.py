"""Benchmark ConcretePlant negative generation and the training-step cost of Cement + gradient diagnostics.

1. Negatives per second on real captions — every CC3M and Flickr8k caption of `../shared/data` (56k, a long
   tail of real words), topped up to `--captions` with seeded recombinations of two real captions' halves (else
   the bundled CC3M excerpt) — with 1 and 2 workers, end to end (`clipcomp negatives generate` in a fresh process:
   spaCy, norms and WordNet loading included), **beside a plain spaCy loop** (a fresh process that loads the same
   model and runs `nlp.pipe` over the same captions, doing only the parse), in the same run; the projection to
   COCO's 590k training captions from the measured 2-worker rate.
2. Training step time of `cement` (with its gradient-share measurement on every step) vs plain `infonce`
   and `negclip`, same model, batch and data (the synthetic lab world), steps timed after warm-up;
   runs interleaved and repeated.

    python perf/bench_negatives.py [--captions 100000] [--steps 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data" / "cc3m_val_captions.tsv"
FLICKR = HERE.parent.parent / "shared" / "data" / "flickr8k_captions.txt"
BUNDLED = HERE.parent / "src" / "clipcomp" / "data" / "cc3m_val_captions.txt"
SPACY_LOOP = """
import sys, time
t0 = time.perf_counter()
from clipcomp.nlp import nlp
model = nlp()
caps = open(sys.argv[1], encoding="utf-8").read().splitlines()
n = 0
for doc in model.pipe(caps, batch_size=256):
    n += len(doc)
print(len(caps), n, time.perf_counter() - t0)
"""


def captions(n: int) -> tuple[list[str], str]:
    """Real captions first (CC3M, then Flickr8k), then seeded recombinations of real halves up to n."""
    import random

    if SHARED.exists():
        lines = [ln.split("\t")[0] for ln in SHARED.read_text(encoding="utf-8").splitlines()]
        if FLICKR.exists():
            lines += [ln.split("\t")[-1] for ln in FLICKR.read_text(encoding="utf-8").splitlines()]
        what = "CC3M + Flickr8k (../shared)"
    else:
        lines = BUNDLED.read_text(encoding="utf-8").splitlines()
        what = "bundled CC3M excerpt"
    real = [c.strip() for c in lines if c.strip()]
    out = real[:n]
    rng = random.Random(0)
    while len(out) < n:
        a, b = rng.choice(real).split(), rng.choice(real).split()
        out.append(" ".join(a[: len(a) // 2] + b[len(b) // 2:]))
    return out, f"{what}: {min(n, len(real)):,} real captions + {max(0, n - len(real)):,} recombined halves"


def bench_spacy(src: Path) -> dict:
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", SPACY_LOOP, str(src)], check=True, capture_output=True, text=True)
    n, tokens, inner = res.stdout.split()
    return {"wall": time.perf_counter() - t0, "captions": int(n), "tokens": int(tokens), "in_process": float(inner)}


def bench_generate(n: int, workdir: Path) -> dict:
    src = workdir / "captions.txt"
    caps, what = captions(n)
    src.write_text("\n".join(caps) + "\n", encoding="utf-8")
    print(f"corpus: {what}", flush=True)
    out = {"spacy": bench_spacy(src)}
    for workers in (1, 2):
        dest = workdir / f"neg-{workers}"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "clipcomp.cli", "negatives", "generate", str(src), "-o", str(dest),
                        "--workers", str(workers), "--force"], check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        meta = json.loads((dest / "meta.json").read_text())
        out[workers] = {"wall": wall, "captions": meta["n_captions"], "negatives": meta["n_negatives"],
                        "cpu": meta["cpu_seconds"], "in_process": meta["seconds"]}
    return out


def bench_steps(steps: int, repeats: int, workdir: Path) -> dict:
    from clipcomp.synth.captions import CaptionKnobs
    from clipcomp.synth.dataset import DatasetSpec, generate
    from clipcomp.synth.world import WorldConfig
    from clipcomp.train.trainer import TrainConfig, train

    data = workdir / "synth"
    generate(WorldConfig(min_objects=3, max_objects=4, resolution=64), CaptionKnobs(), DatasetSpec(
        out=str(data), n_train=4000, n_test=10, workers=2), progress=False, force=True)
    import pyarrow as pa
    import pyarrow.parquet as pq

    m = pq.read_table(data / "manifest.parquet")
    m = m.append_column("conc", pa.array([0.5] * m.num_rows, pa.float64()))
    pq.write_table(m, data / "manifest.parquet")
    arms = {"infonce": {}, "negclip": {"hard_negatives": "negative_caption"},
            "cement": {"hard_negatives": "negative_caption", "concreteness": "conc"}}
    times: dict[str, list[float]] = {a: [] for a in arms}
    for r in range(repeats):
        for arm, fields in arms.items():
            out = workdir / f"run-{arm}-{r}"
            warm = 5
            cfg = TrainConfig(data=str(data), model="clipcomp-micro", steps=warm + steps, batch_size=128, lr=1e-3,
                              warmup=0, loss=arm, fields=fields, out=str(out), log_every=1, threads=2,
                              checkpoint_every=10_000)
            train(cfg, progress=False, force=True)
            lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
            # per-step time after warm-up, from the logged elapsed times
            el = [x["elapsed_s"] for x in lines]
            times[arm].append((el[-1] - el[warm - 1]) / steps)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--captions", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="clipcomp-negbench-"))
    print(f"machine: {os.cpu_count()} cores")
    gen = bench_generate(args.captions, work)
    sp = gen.pop("spacy")
    print(f"plain spaCy loop (nlp.pipe, parse only): {sp['captions']:,} captions in {sp['wall']:.1f} s end to end "
          f"({sp['captions'] / sp['wall']:,.0f} captions/s; {sp['tokens']:,} tokens)")
    for w, r in gen.items():
        rate = r["captions"] / r["wall"]
        print(f"negatives generate, {w} worker(s): {r['captions']:,} captions → {r['negatives']:,} negatives in "
              f"{r['wall']:.1f} s end to end ({rate:,.0f} captions/s; in-process {r['captions'] / r['in_process']:,.0f}"
              f"/s; task CPU {r['cpu']:.1f} s)")
    print(f"clipcomp / spaCy parse, 1 worker: {gen[1]['wall'] / sp['wall']:.2f}× the time; "
          f"2 workers / 1 worker speed-up: {gen[1]['wall'] / gen[2]['wall']:.2f}×")
    rate2 = gen[2]["captions"] / gen[2]["in_process"]
    print(f"projection: COCO's 590k training captions in {590_000 / rate2 / 60:.1f} minutes with 2 workers")
    times = bench_steps(args.steps, args.repeats, work)
    import statistics

    base = statistics.median(times["infonce"])
    for arm, ts in times.items():
        med = statistics.median(ts)
        print(f"train step ({arm}): median {med * 1000:.1f} ms over {len(ts)} runs "
              f"({', '.join(f'{t * 1000:.1f}' for t in ts)}); {100 * (med / base - 1):+.1f}% vs infonce")


if __name__ == "__main__":
    main()
