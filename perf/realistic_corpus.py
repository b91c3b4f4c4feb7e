"""A realistic, seeded benchmark corpus for the statistics engine: recombined real captions + a Zipf long tail.

A resample of a few thousand captions has a few hundred thousand distinct concept pairs however large N is;
web alt-text (LAION, DataComp) has millions of word types and a number of distinct pairs that grows with N.
This generator approximates that:

* each caption joins the **first half of one real caption with the second half of another** (CC3M and
  Flickr8k captions from ``../shared/data``; the bundled CC3M excerpt when absent), so co-occurrences are
  new combinations of real words, not copies;
* it then carries **rare words** drawn from a Zipf law (P(rank r) ∝ r^-s over ``--tail-types`` types; s = 1.05
  by default) — pronounceable pseudo-words built from syllables, 3 % of them with an accented letter so that
  the Unicode tokenizer path is exercised as it is on LAION — a Poisson number per caption (mean 1.2),
  inserted between the halves.

Written as plain text (one caption per line) and as Parquet shards with LAION's ``TEXT`` column and
100k-row groups.

    python perf/realistic_corpus.py 1000000 -o /tmp/corpus-1m [--seed 0]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
BUNDLED = HERE.parent / "src" / "clipcomp" / "data" / "cc3m_val_captions.txt"

_CONSONANTS = list("bcdfghjklmnprstvwz")
_VOWELS = list("aeiouy")
SYLLABLES = [c + v for c in _CONSONANTS for v in _VOWELS]  # 108 syllables
ACCENTED = ["é", "ü", "ñ", "ø", "å", "ç"]


def load_real_captions() -> tuple[list[str], str]:
    """Real captions and where they came from (CC3M + Flickr8k when ../shared is present)."""
    caps: list[str] = []
    names = []
    cc3m = SHARED / "cc3m_val_captions.tsv"
    flickr = SHARED / "flickr8k_captions.txt"
    if cc3m.exists():
        caps += [line.split("\t")[0] for line in cc3m.read_text(encoding="utf-8").splitlines()]
        names.append(f"{cc3m.name} ({len(caps):,})")
    else:
        caps += BUNDLED.read_text(encoding="utf-8").splitlines()
        names.append(f"bundled CC3M excerpt ({len(caps):,})")
    if flickr.exists():
        fl = flickr.read_text(encoding="utf-8").splitlines()
        caps += fl
        names.append(f"{flickr.name} ({len(fl):,})")
    caps = [" ".join(c.split()) for c in caps if c.strip()]
    return caps, " + ".join(names)


def halves(captions: list[str]) -> tuple[pa.Array, pa.Array]:
    """First and second halves of each caption, cut at the word boundary nearest the middle."""
    first, second = [], []
    for c in captions:
        words = re.split(r"\s+", c)
        k = max(1, len(words) // 2)
        first.append(" ".join(words[:k]))
        second.append(" ".join(words[k:]))
    return pa.array(first, pa.string()), pa.array(second, pa.string())


def zipf_ranks(rng: np.random.Generator, size: int, n_types: int, s: float) -> np.ndarray:
    """Ranks 0..n_types-1 with P(r) ∝ (r+1)^-s, by inverting the continuous CDF (exact enough for a tail)."""
    u = rng.random(size)
    if abs(s - 1.0) < 1e-9:
        x = np.power(n_types + 1.0, u)
    else:
        a = 1.0 - s
        x = np.power(1.0 + u * (np.power(n_types + 1.0, a) - 1.0), 1.0 / a)
    return np.clip(x.astype(np.int64) - 1, 0, n_types - 1)


def pseudo_words(ranks: np.ndarray) -> pa.Array:
    """Rank → a pronounceable word of 2–5 syllables (distinct ranks give distinct words)."""
    syl = pa.array(SYLLABLES + ACCENTED, pa.string())
    base = len(SYLLABLES)
    r = ranks.astype(np.int64) + base  # ≥ 2 syllables, so no pseudo-word is a 2-letter stopword
    parts = []
    digits = []
    while True:
        digits.append(r % base)
        r = r // base
        if not (r > 0).any():
            break
    n_digits = np.zeros(ranks.size, np.int64)
    rr = ranks.astype(np.int64) + base
    while (rr > 0).any():
        n_digits += rr > 0
        rr //= base
    for i, d in enumerate(reversed(digits)):
        pos = len(digits) - 1 - i
        idx = np.where(n_digits > pos, d, -1)
        parts.append(syl.take(pa.array(idx, mask=idx < 0)))
    # 3 % of types carry an accented letter (by rank, so a type is always spelled the same)
    accent = (ranks * 2654435761 % 100) < 3
    acc_idx = np.where(accent, base + ranks % len(ACCENTED), -1)
    parts.append(syl.take(pa.array(acc_idx, mask=acc_idx < 0)))
    return pc.binary_join_element_wise(*parts, "", null_handling="skip")


def make_captions(captions: list[str], n: int, rng: np.random.Generator, tail_types: int, zipf_s: float,
                  rare_mean: float) -> pa.Array:
    first, second = halves(captions)
    i = rng.integers(0, len(captions), n)
    j = rng.integers(0, len(captions), n)
    k = np.minimum(rng.poisson(rare_mean, n), 4)
    cols = [first.take(pa.array(i))]
    for slot in range(4):
        has = k > slot
        words = pseudo_words(zipf_ranks(rng, n, tail_types, zipf_s))
        cols.append(pc.if_else(pa.array(has), words, pa.scalar(None, pa.string())))
    cols.append(second.take(pa.array(j)))
    return pc.binary_join_element_wise(*cols, " ", null_handling="skip")


def write_corpus(n: int, out: str | Path, seed: int = 0, shard_rows: int = 2_000_000, tail_types: int = 20_000_000,
                 zipf_s: float = 1.05, rare_mean: float = 1.2, text: bool = True, parquet: bool = True) -> dict:
    """Write N captions as ``OUT/parquet/part-*.parquet`` (TEXT, 100k-row groups) and ``OUT/captions.txt``."""
    out = Path(out)
    captions, source = load_real_captions()
    rng = np.random.default_rng(seed)
    (out / "parquet").mkdir(parents=True, exist_ok=True)
    txt = open(out / "captions.txt", "wb") if text else None  # noqa: SIM115 - streamed shard by shard
    try:
        for s, start in enumerate(range(0, n, shard_rows)):
            arr = make_captions(captions, min(shard_rows, n - start), rng, tail_types, zipf_s, rare_mean)
            if parquet:
                pq.write_table(pa.table({"TEXT": arr}), out / "parquet" / f"part-{s:05d}.parquet",
                               row_group_size=100_000)
            if txt is not None:
                joined = pc.binary_join(pa.array([arr], pa.list_(pa.string())), "\n")[0].as_py()
                txt.write(joined.encode("utf-8"))
                txt.write(b"\n")
    finally:
        if txt is not None:
            txt.close()
    return {"n": n, "seed": seed, "source": source, "tail_types": tail_types, "zipf_s": zipf_s,
            "rare_mean": rare_mean}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", type=int)
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tail-types", type=int, default=20_000_000)
    ap.add_argument("--zipf-s", type=float, default=1.05)
    ap.add_argument("--rare-mean", type=float, default=1.2)
    args = ap.parse_args()
    info = write_corpus(args.n, args.out, args.seed, tail_types=args.tail_types, zipf_s=args.zipf_s,
                        rare_mean=args.rare_mean)
    print(info)


if __name__ == "__main__":
    main()
