"""Benchmark `clipcomp stats knobs` beside the plain spaCy parse it needs, in the same run.

The corpus is perf/bench_negatives.py's: every CC3M and Flickr8k caption of `../shared/data` (56k real captions,
a long tail), topped up to `--captions` with seeded recombinations of two real captions' halves. Each measurement
is a fresh process: (1) a plain spaCy loop — the same model, `nlp.pipe` over the captions, nothing else; (2)
`clipcomp stats knobs` end to end (reading, parsing, measuring, writing captions.parquet); with 1 and 2 workers.
Runs are interleaved and repeated; the overhead is knobs' wall time over the plain parse with the same number of
processes (the parse with 2 processes: spaCy's `n_process=2`).

    python perf/bench_knobs.py [--captions 100000] [--repeats 2]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_negatives import captions  # noqa: E402

SPACY_LOOP = """
import sys, time
t0 = time.perf_counter()
from clipcomp.nlp import nlp
model = nlp()
caps = open(sys.argv[1], encoding="utf-8").read().splitlines()
n = 0
for doc in model.pipe(caps, batch_size=1000, n_process=int(sys.argv[2])):
    n += len(doc)
print(len(caps), n, time.perf_counter() - t0)
"""


def plain_parse(src: Path, workers: int) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", SPACY_LOOP, str(src), str(workers)], check=True, capture_output=True)
    return time.perf_counter() - t0


def knobs(src: Path, out: Path, workers: int) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "clipcomp.cli", "stats", "knobs", str(src), "-o", str(out), "-q",
                    "--force", "--workers", str(workers)], check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--captions", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "captions.txt"
        caps, what = captions(args.captions)
        src.write_text("\n".join(caps) + "\n", encoding="utf-8")
        res: dict = {"corpus": what, "captions": len(caps), "cpu_count": os.cpu_count(), "runs": []}
        for r in range(args.repeats):
            for w in args.workers:
                p = plain_parse(src, w)
                k = knobs(src, Path(tmp) / f"out-{w}", w)
                res["runs"].append({"repeat": r, "workers": w, "plain_parse_s": p, "knobs_s": k, "ratio": k / p})
                print(json.dumps(res["runs"][-1]), flush=True)
        for w in args.workers:
            rs = [x for x in res["runs"] if x["workers"] == w]
            p = min(x["plain_parse_s"] for x in rs)
            k = min(x["knobs_s"] for x in rs)
            print(f"{w} worker(s): plain spaCy parse {p:.1f} s, stats knobs {k:.1f} s = {k / p:.2f}x the parse "
                  f"({len(caps) / k:,.0f} captions/s)  [best of {len(rs)}; {what}]")


if __name__ == "__main__":
    main()
