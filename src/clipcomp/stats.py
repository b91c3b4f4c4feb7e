"""ConceptStats: the on-disk concept statistics (counts, pair counts, PMI) and the queries researchers run.

Directory layout::

    concepts.parquet   concept (str), count (int64)                 -- sorted by concept
    pairs.parquet      a, b (str, a < b), count, pmi, npmi          -- one row per pair seen together
    meta.json          n_captions, settings, inputs, versions, tallies
    vocab.parquet      concept, key (lemmatized tokens)             -- only for a user vocabulary
    index/             codes.i64, counts.i64, tcodes.i64, tcounts.i64 (raw little-endian, memory-mapped on load):
                       the pairs' codes ``a_id*V + b_id`` in pairs.parquet row order (ascending) with their
                       counts, and the transposed codes ``b_id*V + a_id`` (ascending) with theirs -- so opening
                       is instant and a concept's pairs are two contiguous slices

PMI is over document-level probabilities with natural log (Qu & Xie): with add-k smoothing k (default 0)
``pmi = ln(N·(n_ab+k) / ((n_a+k)·(n_b+k)))`` and ``npmi = pmi / −ln((n_ab+k)/N)`` (1 when n_ab+k = N).
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from clipcomp.errors import ClipcompError

CONCEPTS_FILE = "concepts.parquet"
PAIRS_FILE = "pairs.parquet"
META_FILE = "meta.json"
VOCAB_FILE = "vocab.parquet"
INDEX_DIR = "index"
INDEX_FILES = ("codes.i64", "counts.i64", "tcodes.i64", "tcounts.i64")
ROW_GROUP_ROWS = 1 << 20
PAIRS_SCHEMA = pa.schema([("a", pa.string()), ("b", pa.string()), ("count", pa.int64()),
                          ("pmi", pa.float64()), ("npmi", pa.float64())])


def divmod_codes(codes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``divmod(codes, n)`` for non-negative int64 codes < 2**52, ~5x faster than NumPy's integer
    division: a float quotient, corrected by one where rounding put it off."""
    codes = np.asarray(codes, np.int64)
    q = (codes * (1.0 / n)).astype(np.int64)
    r = codes - q * n
    low = r < 0
    q[low] -= 1
    r[low] += n
    high = r >= n
    q[high] += 1
    r[high] -= n
    return q, r


def pmi_values(n_ab, n_a, n_b, n: int, smoothing: float = 0.0):
    """PMI and NPMI (NumPy-vectorized); unseen pairs without smoothing give (-inf, -1)."""
    n_ab = np.asarray(n_ab, dtype=np.float64) + smoothing
    n_a = np.asarray(n_a, dtype=np.float64) + smoothing
    n_b = np.asarray(n_b, dtype=np.float64) + smoothing
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(n) + np.log(n_ab) - np.log(n_a) - np.log(n_b)
        denom = -(np.log(n_ab) - np.log(n))
        npmi = np.where(denom > 0, pmi / np.where(denom > 0, denom, 1.0), 1.0)
        npmi = np.where(n_ab > 0, npmi, -1.0)
    return pmi, npmi


def pair_table(codes: np.ndarray, counts: np.ndarray, concepts: pa.Array, concept_counts: np.ndarray,
               n_captions: int, smoothing: float) -> pa.Table:
    """The pairs.parquet rows for sorted (code, count) arrays: names, count, PMI and NPMI."""
    n_concepts = len(concepts)
    a, b = divmod_codes(codes, n_concepts)
    pmi, npmi = pmi_values(counts, concept_counts[a], concept_counts[b], n_captions, smoothing)
    return pa.table([concepts.take(a), concepts.take(b), pa.array(np.asarray(counts, np.int64)), pa.array(pmi),
                     pa.array(npmi)], schema=PAIRS_SCHEMA)


class PairsWriter:
    """Streams pairs.parquet and its memory-mappable index (index/) from chunks in ascending code order."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self.path = os.path.join(out_dir, PAIRS_FILE)
        self.index = os.path.join(out_dir, INDEX_DIR)
        os.makedirs(self.index + ".tmp", exist_ok=True)
        self._writer = pq.ParquetWriter(self.path + ".tmp", PAIRS_SCHEMA, compression="zstd")
        self._codes = open(os.path.join(self.index + ".tmp", "codes.i64"), "wb")  # noqa: SIM115
        self._counts = open(os.path.join(self.index + ".tmp", "counts.i64"), "wb")  # noqa: SIM115
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self.rows = 0

    def write(self, table: pa.Table, codes: np.ndarray, counts: np.ndarray) -> None:
        if table.num_rows:
            np.asarray(codes, "<i8").tofile(self._codes)
            np.asarray(counts, "<i8").tofile(self._counts)
            self.rows += table.num_rows
            self._pending.append(table)
            self._pending_rows += table.num_rows
            if self._pending_rows >= ROW_GROUP_ROWS:
                self._flush(final=False)

    def _flush(self, final: bool) -> None:
        """Row groups of exactly ROW_GROUP_ROWS rows (the last one shorter): the file's bytes then do not
        depend on how the merge was cut into ranges, i.e. not on the number of workers."""
        table = pa.concat_tables(self._pending)
        n_full = table.num_rows // ROW_GROUP_ROWS * ROW_GROUP_ROWS
        end = table.num_rows if final else n_full
        for s in range(0, end, ROW_GROUP_ROWS):
            self._writer.write_table(table.slice(s, min(ROW_GROUP_ROWS, end - s)))
        rest = table.slice(end)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def close(self, n_concepts: int) -> int:
        if self._pending:
            self._flush(final=True)
        if self.rows == 0:
            self._writer.write_table(PAIRS_SCHEMA.empty_table())
        self._writer.close()
        self._codes.close()
        self._counts.close()
        tmp = self.index + ".tmp"
        codes = np.memmap(os.path.join(tmp, "codes.i64"), "<i8", "r") if self.rows else np.zeros(0, np.int64)
        counts = np.memmap(os.path.join(tmp, "counts.i64"), "<i8", "r") if self.rows else np.zeros(0, np.int64)
        tcodes, tcounts = transpose_index(codes, counts, n_concepts)
        tcodes.astype("<i8").tofile(os.path.join(tmp, "tcodes.i64"))
        tcounts.astype("<i8").tofile(os.path.join(tmp, "tcounts.i64"))
        with open(os.path.join(tmp, "index.json"), "w", encoding="utf-8") as f:
            json.dump({"rows": self.rows, "n_concepts": n_concepts, "dtype": "<i8",
                       "files": list(INDEX_FILES)}, f)
        del codes, counts, tcodes, tcounts
        os.replace(self.path + ".tmp", self.path)  # a streaming writer: opened in __init__, committed here
        import shutil

        shutil.rmtree(self.index, ignore_errors=True)
        os.replace(tmp, self.index)
        return self.rows

    def abort(self) -> None:
        for f in (self._codes, self._counts):
            f.close()
        self._writer.close()


def transpose_index(codes: np.ndarray, counts: np.ndarray, n_concepts: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes ``b*V + a`` in ascending order with their counts: a stable sort of b (radix sort when ids fit
    16 bits) of the (a, b)-sorted codes leaves a ascending within each b."""
    v = max(1, n_concepts)
    a, b = divmod_codes(codes, v)
    order = np.argsort(b.astype(np.uint16 if v <= 1 << 16 else np.int32), kind="stable")
    return b[order] * v + a[order], np.asarray(counts)[order]


def write_pairs(path: str, chunks: Iterable[tuple[np.ndarray, np.ndarray]], concepts: pa.Array,
                concept_counts: np.ndarray, n_captions: int, smoothing: float) -> int:
    """Write pairs.parquet (+ index/) from sorted (code, count) chunks; returns the number of rows."""
    writer = PairsWriter(os.path.dirname(path) or ".")
    try:
        for codes, counts in chunks:
            for s in range(0, codes.size, 4_000_000):
                c, n = np.asarray(codes[s:s + 4_000_000]), np.asarray(counts[s:s + 4_000_000])
                writer.write(pair_table(c, n, concepts, concept_counts, n_captions, smoothing), c, n)
    except BaseException:
        writer.abort()
        raise
    return writer.close(len(concepts))


def write_concepts(path: str, concepts: pa.Array, counts: np.ndarray) -> None:
    from clipcomp.io import atomic_output

    with atomic_output(path) as tmp:
        pq.write_table(pa.table({"concept": concepts, "count": pa.array(counts, pa.int64())}), tmp,
                       compression="zstd")


@dataclass(frozen=True)
class PairStat:
    a: str
    b: str
    count: int
    pmi: float
    npmi: float


@dataclass
class CaptionScore:
    """A caption's concepts and the PMI of every pair among them."""

    text: str
    concepts: list[str]
    pairs: list[PairStat] = field(default_factory=list)
    unseen: list[tuple[str, str]] = field(default_factory=list)

    def _seen(self) -> list[float]:
        return [p.pmi for p in self.pairs if math.isfinite(p.pmi)]

    @property
    def mean_pmi(self) -> float:
        v = self._seen()
        return float(np.mean(v)) if v else float("nan")

    @property
    def min_pmi(self) -> float:
        v = self._seen()
        return min(v) if v else float("nan")

    @property
    def max_pmi(self) -> float:
        v = self._seen()
        return max(v) if v else float("nan")

    def as_dict(self) -> dict:
        return {"text": self.text, "concepts": self.concepts,
                "pairs": [p.__dict__ for p in self.pairs], "unseen": [list(u) for u in self.unseen],
                "mean_pmi": self.mean_pmi, "min_pmi": self.min_pmi, "max_pmi": self.max_pmi}


class ConceptStats:
    """Read-side API: ``ConceptStats.load(dir).pmi("dog", "frisbee")``.

    Opening reads the concept table and memory-maps the pair index (``index/``), so it takes milliseconds
    however many pairs there are; ``pairs`` (the full Parquet table) is read only when first asked for.
    """

    def __init__(self, path: str, concepts: pa.Array, counts: np.ndarray, meta: dict, codes: np.ndarray,
                 pair_counts: np.ndarray, tcodes: np.ndarray | None = None, tcounts: np.ndarray | None = None,
                 pairs: pa.Table | None = None) -> None:
        self.path = path
        self.meta = meta
        self.n_captions = int(meta["n_captions"])
        self.smoothing = float(meta.get("settings", {}).get("smoothing", 0.0))
        self._concepts = concepts
        self._names = concepts.to_pylist()
        self._index = {c: i for i, c in enumerate(self._names)}
        self._counts = counts
        self._codes = codes  # ascending a*V + b, one per pairs.parquet row
        self._pair_counts = pair_counts
        self._tcodes, self._tcounts = tcodes, tcounts  # b*V + a ascending; built on first use when absent
        self._pairs = pairs
        self._extractor = None
        self._duck = None

    # ---------------------------------------------------------------------------------------- loading
    @classmethod
    def load(cls, path: str | os.PathLike) -> ConceptStats:
        path = os.fspath(path)
        if not os.path.exists(path):
            raise ClipcompError(f"{path}: ConceptStats directory not found (build one with `clipcomp stats build`)")
        if not os.path.isdir(path):
            raise ClipcompError(f"{path}: is a file, expected a ConceptStats directory")
        for name in (CONCEPTS_FILE, PAIRS_FILE, META_FILE):
            if not os.path.exists(os.path.join(path, name)):
                raise ClipcompError(f"{path}: not a ConceptStats directory (missing {name}; "
                                    "build one with `clipcomp stats build`)")
        try:
            with open(os.path.join(path, META_FILE), encoding="utf-8") as f:
                meta = json.load(f)
            concepts = pq.read_table(os.path.join(path, CONCEPTS_FILE))
            names = concepts.column("concept").combine_chunks()
            counts = concepts.column("count").to_numpy()
            index = _open_index(path, len(names), int(meta.get("n_pairs", -1)))
            if index is not None:
                return cls(path, names, counts, meta, *index)
            # a directory written before the index existed: build the index from the table, in memory
            pairs = pq.read_table(os.path.join(path, PAIRS_FILE), memory_map=True)
        except (ValueError, pa.ArrowInvalid, OSError) as exc:
            raise ClipcompError(f"{path}: unreadable ConceptStats ({exc})") from None
        n = len(names)
        a = pc.index_in(pairs.column("a"), value_set=names).to_numpy(zero_copy_only=False).astype(np.int64)
        b = pc.index_in(pairs.column("b"), value_set=names).to_numpy(zero_copy_only=False).astype(np.int64)
        codes = a * n + b
        if codes.size and not (codes[1:] > codes[:-1]).all():
            order = np.argsort(codes, kind="stable")
            pairs, codes = pairs.take(pa.array(order)), codes[order]
        return cls(path, names, counts, meta, codes, pairs.column("count").to_numpy(), None, None, pairs)

    @property
    def pairs(self) -> pa.Table:
        """The whole pairs table (a, b, count, pmi, npmi), read from pairs.parquet on first use."""
        if self._pairs is None:
            self._pairs = pq.read_table(os.path.join(self.path, PAIRS_FILE), memory_map=True)
        return self._pairs

    def sql(self, query: str):
        """Run DuckDB SQL over views ``pairs`` and ``concepts`` (the Parquet files); returns a DuckDB relation
        (``.df()``, ``.pl()``, ``.fetchall()``, ``.to_arrow_table()``). Needs the `duckdb` package."""
        if self._duck is None:
            try:
                import duckdb
            except ImportError:
                raise ClipcompError("ConceptStats.sql needs DuckDB (pip install 'clipcomp[sql]')") from None
            con = duckdb.connect()
            for view, name in (("pairs", PAIRS_FILE), ("concepts", CONCEPTS_FILE)):
                file = os.path.join(self.path, name).replace("'", "''")
                con.execute(f"CREATE VIEW {view} AS SELECT * FROM read_parquet('{file}')")
            self._duck = con
        return self._duck.sql(query)

    # ---------------------------------------------------------------------------------------- queries
    @property
    def concepts(self) -> list[str]:
        return list(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, concept: str) -> bool:
        return self._normalize(concept) in self._index

    def _normalize(self, concept: str) -> str:
        return " ".join(concept.lower().split())

    def _id(self, concept: str) -> int:
        key = self._normalize(concept)
        i = self._index.get(key)
        if i is None:
            raise KeyError(f"{concept!r} is not a concept of {self.path}")
        return i

    def count(self, a: str, b: str | None = None) -> int:
        """Document count of a concept, or of a pair when b is given."""
        if b is None:
            return int(self._counts[self._id(a)])
        return self._pair_count(self._id(a), self._id(b))

    def _pair_count(self, i: int, j: int) -> int:
        if i == j:
            return int(self._counts[i])
        lo, hi = min(i, j), max(i, j)
        code = lo * len(self._names) + hi
        k = int(self._codes.searchsorted(code))
        if k < self._codes.size and self._codes[k] == code:
            return int(self._pair_counts[k])
        return 0

    def _pmi_ids(self, i: int, j: int) -> tuple[float, float, int]:
        i, j = min(i, j), max(i, j)  # same operand order as pairs.parquet, so values agree bit for bit
        n_ab = self._pair_count(i, j)
        pmi, npmi = pmi_values(n_ab, self._counts[i], self._counts[j], self.n_captions, self.smoothing)
        return float(pmi), float(npmi), n_ab

    def pmi(self, a: str, b: str) -> float:
        return self._pmi_ids(self._id(a), self._id(b))[0]

    def npmi(self, a: str, b: str) -> float:
        return self._pmi_ids(self._id(a), self._id(b))[1]

    def pair(self, a: str, b: str) -> PairStat:
        i, j = self._id(a), self._id(b)
        pmi, npmi, n_ab = self._pmi_ids(i, j)
        x, y = sorted((self._names[i], self._names[j]))
        return PairStat(x, y, n_ab, pmi, npmi)

    def top_pairs(self, concept: str | None = None, k: int = 10, lowest: bool = False,
                  min_count: int = 1, by: str = "pmi") -> list[PairStat]:
        """Highest (or lowest) PMI pairs, optionally those containing `concept`, among pairs seen ≥ min_count."""
        if by not in ("pmi", "npmi", "count"):
            raise ClipcompError(f"unknown ranking {by!r} (expected pmi, npmi or count)")
        # a concept's pairs by index: pairs (c, x) are one slice of the sorted codes, pairs (x, c) one slice of
        # the transposed codes -- two contiguous reads, no scan of every pair
        if concept is not None:
            codes, counts = self._pairs_of(self._id(concept))
        else:
            codes, counts = np.asarray(self._codes), np.asarray(self._pair_counts)
        keep = counts >= min_count
        if not keep.all():
            codes, counts = codes[keep], counts[keep]
        if codes.size == 0 or k <= 0:
            return []
        a, b = divmod_codes(codes, len(self._names))
        if by == "count":
            value = counts.astype(np.float64)
        else:
            pmi, npmi = pmi_values(counts, self._counts[a], self._counts[b], self.n_captions, self.smoothing)
            value = pmi if by == "pmi" else npmi
        key = value if lowest else -value
        key = np.where(np.isnan(key), np.inf, key)
        if key.size > k:  # everything tied with the k-th value, then order by (value, (a, b) by name = code)
            cut = np.partition(key, k - 1)[k - 1]
            cand = np.flatnonzero(key <= cut)
        else:
            cand = np.arange(key.size)
        cand = cand[np.lexsort((codes[cand], key[cand]))][:k]
        pmi, npmi = pmi_values(counts[cand], self._counts[a[cand]], self._counts[b[cand]], self.n_captions,
                               self.smoothing)
        return [PairStat(self._names[int(x)], self._names[int(y)], int(n), float(p), float(q))
                for x, y, n, p, q in zip(a[cand], b[cand], counts[cand], pmi, npmi, strict=True)]

    def _pairs_of(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        """(codes a*V + b, counts) of every pair containing concept id `c`."""
        n = len(self._names)
        lo, hi = self._codes.searchsorted([c * n, (c + 1) * n])
        if self._tcodes is None:
            self._tcodes, self._tcounts = transpose_index(np.asarray(self._codes), np.asarray(self._pair_counts), n)
        tlo, thi = self._tcodes.searchsorted([c * n, (c + 1) * n])
        t = np.asarray(self._tcodes[tlo:thi])
        # (x, c) pairs: transposed code c*V + x → code x*V + c
        codes = np.concatenate([np.asarray(self._codes[lo:hi]), (t - c * n) * n + c])
        counts = np.concatenate([np.asarray(self._pair_counts[lo:hi]), np.asarray(self._tcounts[tlo:thi])])
        return codes, counts

    # ---------------------------------------------------------------------------------------- captions
    def extractor(self):
        """A ConceptExtractor with the settings these statistics were built with."""
        if self._extractor is None:
            from clipcomp.concepts import ConceptExtractor, VocabEntry

            settings = self.meta.get("settings", {})
            stop = self.meta.get("stopword_list", [])
            vocab_path = os.path.join(self.path, VOCAB_FILE)
            if os.path.exists(vocab_path):
                t = pq.read_table(vocab_path)
                vocab = [VocabEntry(c, tuple(k)) for c, k in
                         zip(t.column("concept").to_pylist(), t.column("key").to_pylist(), strict=True)]
                self._extractor = ConceptExtractor(settings.get("lemmatizer", "simplemma"), stop, vocab=vocab)
            else:
                self._extractor = ConceptExtractor(settings.get("lemmatizer", "simplemma"), stop)
        return self._extractor

    def concepts_in(self, text: str) -> list[str]:
        """The caption's concepts that are in this vocabulary, sorted."""
        found = self.extractor().concepts_of(text)
        return sorted({c for c in found if c in self._index})

    def score(self, text: str) -> CaptionScore:
        concepts = self.concepts_in(text)
        out = CaptionScore(text, concepts)
        for x, y in itertools.combinations(concepts, 2):
            p = self.pair(x, y)
            if p.count == 0:
                out.unseen.append((p.a, p.b))
            if p.count > 0 or self.smoothing > 0:
                out.pairs.append(p)
        return out

    def info(self) -> dict:
        return {"path": self.path, "n_captions": self.n_captions, "n_concepts": len(self._names),
                "n_pairs": int(self._codes.size), **{k: v for k, v in self.meta.items()
                                                     if k not in ("stopword_list", "n_captions")}}


def _open_index(path: str, n_concepts: int, n_pairs: int):
    """Memory-map index/ when it is complete and matches this directory; None otherwise."""
    folder = os.path.join(path, INDEX_DIR)
    try:
        with open(os.path.join(folder, "index.json"), encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError):
        return None
    if info.get("n_concepts") != n_concepts or (n_pairs >= 0 and info.get("rows") != n_pairs):
        return None
    rows = int(info["rows"])
    arrays = []
    for name in INDEX_FILES:
        file = os.path.join(folder, name)
        if not os.path.exists(file) or os.path.getsize(file) != rows * 8:
            return None
        arrays.append(np.memmap(file, "<i8", "r") if rows else np.zeros(0, np.int64))
    return arrays
