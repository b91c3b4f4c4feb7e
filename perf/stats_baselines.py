"""What a data engineer would write instead of `clipcomp stats build --vocab`: DuckDB SQL, Polars, plain Python.

All three do the same job as clipcomp with a given single-word vocabulary: lower-case, split on runs of
non letters/digits (the same Unicode rule), lemmatize each distinct token once (simplemma, as clipcomp),
keep tokens whose lemma is a vocabulary concept, one set per caption, then document counts of concepts and
of unordered concept pairs. Each returns ``(concept_counts: dict[str, int], pairs: pyarrow.Table(a, b,
count))`` with ``a < b`` so the benchmark can check exact agreement with clipcomp's output.

Run one in its own process (so its peak memory is its own):

    python perf/stats_baselines.py duckdb VOCAB.txt CORPUS_FILES... --threads 2 -o pairs.parquet
"""

from __future__ import annotations

import argparse
import itertools
import re
import time
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TOKEN_RE = r"[\p{L}\p{N}]+"  # maximal runs of Unicode letters and digits (clipcomp's tokenizer rule)


def read_vocab(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [w.strip().lower() for w in f if w.strip() and not w.startswith("#")]


LEMMATIZER = "simplemma"


def lemma(word: str) -> str:
    if LEMMATIZER == "none":
        return word
    import simplemma

    return simplemma.lemmatize(word, lang="en").lower()


def lemma_map(tokens: list[str], vocab: list[str]) -> tuple[list[str], list[int]]:
    """Distinct tokens → concept id (only tokens whose lemma is a vocabulary concept)."""
    index = _keys(vocab)
    keep_t, keep_c = [], []
    for t in tokens:
        if not t:
            continue
        cid = index.get(lemma(t))
        if cid is not None:
            keep_t.append(t)
            keep_c.append(cid)
    return keep_t, keep_c


def _keys(vocab: list[str]) -> dict[str, int]:
    """Concept key = the lemma of the vocabulary word (clipcomp lemmatizes vocabulary entries too)."""
    return {lemma(w): i for i, w in enumerate(vocab)}


def _source_sql(files: list[str]) -> str:
    if files[0].endswith(".parquet"):
        return "read_parquet([" + ", ".join(f"'{f}'" for f in files) + "])"
    return ("read_csv([" + ", ".join(f"'{f}'" for f in files) + "], columns={'TEXT': 'VARCHAR'}, header=false, "
            "delim=chr(1), quote='', escape='', auto_detect=false)")


def run_duckdb(files: list[str], vocab: list[str], threads: int) -> tuple[dict[str, int], pa.Table]:
    """DuckDB: tokens by regexp_extract_all, a token→concept join table, per-caption DISTINCT, a self-join."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET preserve_insertion_order = false")
    src = _source_sql(files)
    con.execute(f"CREATE TEMP TABLE caps AS SELECT row_number() OVER () AS rid, lower(TEXT) AS t FROM {src}")
    con.execute(f"CREATE TEMP TABLE toks AS SELECT rid, unnest(regexp_extract_all(t, '{TOKEN_RE}')) AS token "
                "FROM caps")
    distinct = con.execute("SELECT DISTINCT token FROM toks").to_arrow_table().column(0).to_pylist()
    tk, cid = lemma_map(distinct, vocab)
    con.register("lemmas", pa.table({"token": pa.array(tk, pa.string()), "cid": pa.array(cid, pa.int32())}))
    con.execute("CREATE TEMP TABLE sets AS SELECT DISTINCT rid, cid FROM toks JOIN lemmas USING (token)")
    counts = con.execute("SELECT cid, count(*) FROM sets GROUP BY cid").fetchall()
    pairs = con.execute(
        "SELECT x.cid AS a, y.cid AS b, count(*) AS count FROM sets x JOIN sets y "
        "ON x.rid = y.rid AND x.cid < y.cid GROUP BY ALL").to_arrow_table()
    return _named(counts, pairs, vocab)


def run_polars(files: list[str], vocab: list[str], threads: int) -> tuple[dict[str, int], pa.Table]:
    """Polars (lazy, streaming): str.extract_all tokens, explode, join a token→concept frame, unique, self-join."""
    import os

    os.environ["POLARS_MAX_THREADS"] = str(threads)
    import polars as pl

    if files[0].endswith(".parquet"):
        lf = pl.scan_parquet(files).select(pl.col("TEXT"))
    else:
        lf = pl.scan_csv(files, has_header=False, new_columns=["TEXT"], separator="\x01", quote_char=None,
                         schema={"TEXT": pl.String})
    toks = (lf.with_row_index("rid")
            .select("rid", pl.col("TEXT").str.to_lowercase().str.extract_all(TOKEN_RE).alias("token"))
            .explode("token").drop_nulls("token"))
    toks = toks.collect(engine="streaming")
    distinct = toks.get_column("token").unique().to_list()
    tk, cid = lemma_map(distinct, vocab)
    lemmas = pl.DataFrame({"token": tk, "cid": pl.Series(cid, dtype=pl.Int32)})
    sets = toks.lazy().join(lemmas.lazy(), on="token").select("rid", "cid").unique().collect(engine="streaming")
    counts = sets.group_by("cid").len().rows()
    pairs = (sets.lazy().join(sets.lazy(), on="rid", suffix="_b").filter(pl.col("cid") < pl.col("cid_b"))
             .group_by("cid", "cid_b").len().collect(engine="streaming"))
    pairs = pairs.rename({"cid": "a", "cid_b": "b", "len": "count"}).to_arrow()
    return _named(counts, pairs, vocab)


def run_python(files: list[str], vocab: list[str], limit: int | None = None) -> tuple[dict[str, int], pa.Table, int]:
    """The plain-Python loop research code uses: regex tokens, cached lemmas, a set per caption, Counter."""
    index = _keys(vocab)
    token = re.compile(r"[^\W_]+")
    cache: dict[str, int] = {}
    doc: Counter = Counter()
    pairs: Counter = Counter()
    n = 0
    for texts in _iter_texts(files):
        for cap in texts:
            s = set()
            for t in token.findall((cap or "").lower()):
                c = cache.get(t)
                if c is None:
                    c = cache[t] = index.get(lemma(t), -1)
                if c >= 0:
                    s.add(c)
            doc.update(s)
            pairs.update(itertools.combinations(sorted(s), 2))
            n += 1
            if limit is not None and n >= limit:
                break
        if limit is not None and n >= limit:
            break
    keys = np.array(list(pairs.keys()), np.int64).reshape(-1, 2)
    table = pa.table({"a": keys[:, 0], "b": keys[:, 1], "count": np.fromiter(pairs.values(), np.int64)})
    c, p = _named(list(doc.items()), table, vocab)
    return c, p, n


def _iter_texts(files: list[str]):
    for f in files:
        if f.endswith(".parquet"):
            pf = pq.ParquetFile(f)
            for i in range(pf.num_row_groups):
                yield pf.read_row_group(i, columns=["TEXT"]).column(0).to_pylist()
        else:
            with open(f, encoding="utf-8") as fh:
                while lines := fh.readlines(1 << 24):
                    yield [line.rstrip("\n") for line in lines]


def _named(counts, pairs: pa.Table, vocab: list[str]) -> tuple[dict[str, int], pa.Table]:
    names = pa.array(vocab, pa.string())
    x = np.asarray(pairs.column("a").to_numpy(), np.int64)
    y = np.asarray(pairs.column("b").to_numpy(), np.int64)
    rank = np.argsort(np.argsort(np.array(vocab, dtype=object)))  # a < b by name, as clipcomp writes pairs
    swap = rank[x] > rank[y]
    a, b = np.where(swap, y, x), np.where(swap, x, y)
    return ({vocab[int(c)]: int(n) for c, n in counts},
            pa.table({"a": names.take(a), "b": names.take(b), "count": pairs.column("count").cast(pa.int64())}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tool", choices=["duckdb", "polars", "python"])
    ap.add_argument("vocab")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lemmatizer", default="simplemma", choices=["simplemma", "none"])
    ap.add_argument("--limit", type=int, default=None, help="python only: stop after this many captions")
    ap.add_argument("-o", "--out", required=True, help="pairs Parquet (a, b, count) for the agreement check")
    args = ap.parse_args()
    global LEMMATIZER
    LEMMATIZER = args.lemmatizer
    vocab = read_vocab(args.vocab)
    t0 = time.perf_counter()
    if args.tool == "duckdb":
        counts, pairs = run_duckdb(args.files, vocab, args.threads)
        n = None
    elif args.tool == "polars":
        counts, pairs = run_polars(args.files, vocab, args.threads)
        n = None
    else:
        counts, pairs, n = run_python(args.files, vocab, args.limit)
    seconds = time.perf_counter() - t0
    pq.write_table(pairs, args.out)
    pq.write_table(pa.table({"concept": list(counts), "count": list(counts.values())}), args.out + ".concepts")
    print(f"{args.tool}: {seconds:.2f} s, {len(counts):,} concepts, {pairs.num_rows:,} pairs"
          + (f", {n:,} captions" if n is not None else ""))


if __name__ == "__main__":
    main()
