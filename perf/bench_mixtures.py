"""Kempf mixture building on a DomainNet-sized manifest beside the Polars query a user would write, same run, same
output rows.

The manifest: 6 domains with DomainNet's train/test sizes (clipart 48,833 … real 175,327; 586,575 rows), 345
classes with a long tail (Zipf-like weights, every cell non-empty), a split column. Settings timed: cg-high (T =
sketch, 15 held-out classes, subsampled to the single-rendition size), leave-out-domain and cg-low with allow_pct
0.2. clipcomp runs `build_mixture` with `shuffle=False` (manifest order, as their code) so the Polars query — filter,
per-cell head(ceil(shrink × n)), then drop the last row of the first `excess` cells in their domain/class order —
must give the same rows. Median of `--repeats`, interleaved.

    python perf/bench_mixtures.py --repeats 3
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

SIZES = {"clipart": (33_525, 14_604), "infograph": (36_023, 15_582), "painting": (50_416, 21_850),
         "quickdraw": (120_750, 51_750), "real": (120_906, 52_041), "sketch": (48_212, 20_916)}
HELD = [0, 11, 13, 15, 25, 58, 174, 190, 197, 218, 225, 250, 305, 319, 320]  # their 15 classes (indices)


def manifest(seed: int = 0):
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, 346) ** 0.6
    cols = {k: [] for k in ("class", "domain", "split")}
    for d, (n_train, n_test) in SIZES.items():
        for split, n in (("train", n_train), ("test", n_test)):
            w = rng.permutation(weights)
            counts = 1 + rng.multinomial(n - 345, w / w.sum())
            cls = np.repeat(np.arange(345), counts)
            cols["class"].append(cls)
            cols["domain"].append(np.full(cls.size, d))
            cols["split"].append(np.full(cls.size, split))
    cls = np.concatenate(cols["class"])
    order = rng.permutation(cls.size)  # rows interleaved, as a real manifest is not sorted by cell
    t = pa.table({"image": [f"img/{i}.jpg" for i in range(cls.size)],
                  "class": pa.array([f"class_{c:03d}" for c in cls[order]]),
                  "domain": pa.array(np.concatenate(cols["domain"])[order].tolist()),
                  "split": pa.array(np.concatenate(cols["split"])[order].tolist())})
    return t


def polars_kempf(df, setting: str, test_domain: str, held: list[str], allow_pct: float = 0.0):
    """The query a user would write for subsample_domainnet_lso.py (manifest order inside each cell)."""
    import polars as pl

    df = df.with_row_index("row")
    train = df.filter(pl.col("split") == "train")
    renditions = ["clipart", "infograph", "painting", "quickdraw", "sketch"]
    others = [d for d in renditions if d != test_domain]
    is_t, is_h = pl.col("domain") == test_domain, pl.col("class").is_in(held)
    if setting == "cg-high":
        cand = train.filter(~(is_t & is_h)) if allow_pct == 0 else train
    elif setting == "cg-low":
        cand = train.filter(~pl.col("domain").is_in(others))
        cand = cand.filter(~(is_t & is_h)) if allow_pct == 0 else cand
    else:  # leave-out-domain
        cand = train.filter(~is_t)
    reference = train.filter(~pl.col("domain").is_in(others) & ~(is_t & is_h)).height
    shrink = reference / cand.height
    cell = cand.with_columns(pl.len().over("domain", "class").alias("n"),
                             pl.int_range(pl.len()).over("domain", "class").alias("k"),
                             (is_t & is_h).alias("protected"))
    if allow_pct > 0:
        h_rows = cell.filter(pl.col("protected"))
        allowed = h_rows.group_by("class").agg(pl.len().alias("n")).select(
            (pl.col("n") * allow_pct * shrink).ceil().sum()).item()
        shrink2 = (reference - allowed) / (cand.height - h_rows.height)
        limit = pl.when(pl.col("protected")).then((pl.col("n") * allow_pct * shrink).ceil()).otherwise(
            (pl.col("n") * shrink2).ceil())
    else:
        limit = (pl.col("n") * shrink).ceil()
    kept = cell.filter(pl.col("k") < limit)
    excess = kept.height - reference
    if excess:
        sizes = train.group_by("domain").agg(pl.len().alias("size"))
        first = df.group_by("class", maintain_order=True).agg(pl.col("row").min().alias("first"))
        last = (kept.filter(~pl.col("protected")).group_by("domain", "class").agg(pl.col("row").last())
                .join(sizes, on="domain").join(first, on="class")
                .sort(["size", "domain", "first"], descending=[True, False, False]).head(excess))
        kept = kept.filter(~pl.col("row").is_in(last["row"].implode()))
    return set(kept["row"].to_list())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import polars as pl
    import pyarrow as pa

    from clipcomp.datasets.mixtures import MixSpec, build_mixture

    t0 = time.perf_counter()
    table = manifest()
    print(f"manifest: {table.num_rows:,} rows, 6 domains, 345 classes ({time.perf_counter() - t0:.1f} s to make)")
    table = table.append_column("row", pa.array(np.arange(table.num_rows)))
    df = pl.from_arrow(table.drop_columns(["row"]))
    held = [f"class_{c:03d}" for c in HELD]
    cases = [("cg-high", 0.0), ("leave-out-domain", 0.0), ("cg-low", 0.2)]
    print(f"{'setting':<28}{'rows':>9}{'clipcomp s':>12}{'Polars s':>10}  same rows")
    for setting, allow in cases:
        tc, tp = [], []
        for _ in range(args.repeats):
            s = time.perf_counter()
            train, _, meta = build_mixture(table, MixSpec(setting=setting, test_domain="sketch", held_out_classes=held,
                                                          shuffle=False, allow_pct=allow))
            tc.append(time.perf_counter() - s)
            s = time.perf_counter()
            rows_pl = polars_kempf(df, setting, "sketch", held, allow)
            tp.append(time.perf_counter() - s)
        same = set(train.column("row").to_pylist()) == rows_pl
        name = setting + (f" allow {allow}" if allow else "")
        print(f"{name:<28}{train.num_rows:>9,}{np.median(tc):>12.2f}{np.median(tp):>10.2f}  {same}")
        assert math.isfinite(meta["subsampling"]["shrink_factor"])


if __name__ == "__main__":
    main()
