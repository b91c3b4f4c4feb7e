"""ConceptStats: the on-disk concept statistics (counts, pair counts, PMI) and the queries researchers run.

Directory layout::

    concepts.parquet   concept (str), count (int64)                 -- sorted by concept
    pairs.parquet      a, b (str, a < b), count, pmi, npmi          -- one row per pair seen together
    meta.json          n_captions, settings, inputs, versions, tallies
    vocab.parquet      concept, key (lemmatized tokens)             -- only for a user vocabulary

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
PAIRS_SCHEMA = pa.schema([("a", pa.string()), ("b", pa.string()), ("count", pa.int64()),
                          ("pmi", pa.float64()), ("npmi", pa.float64())])


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


def write_pairs(path: str, chunks: Iterable[tuple[np.ndarray, np.ndarray]], concepts: pa.Array,
                concept_counts: np.ndarray, n_captions: int, smoothing: float) -> int:
    """Write pairs.parquet from sorted (code, count) chunks; returns the number of rows."""
    n_concepts = len(concepts)
    rows = 0
    tmp = path + ".tmp"
    with pq.ParquetWriter(tmp, PAIRS_SCHEMA, compression="zstd") as writer:
        for codes, counts in chunks:
            for s in range(0, codes.size, 4_000_000):
                c = np.asarray(codes[s:s + 4_000_000])
                n = np.asarray(counts[s:s + 4_000_000])
                a, b = c // n_concepts, c % n_concepts
                pmi, npmi = pmi_values(n, concept_counts[a], concept_counts[b], n_captions, smoothing)
                writer.write_table(pa.table([concepts.take(a), concepts.take(b), pa.array(n, pa.int64()),
                                             pa.array(pmi), pa.array(npmi)], schema=PAIRS_SCHEMA))
                rows += c.size
        if rows == 0:
            writer.write_table(PAIRS_SCHEMA.empty_table())
    os.replace(tmp, path)
    return rows


def write_concepts(path: str, concepts: pa.Array, counts: np.ndarray) -> None:
    tmp = path + ".tmp"
    pq.write_table(pa.table({"concept": concepts, "count": pa.array(counts, pa.int64())}), tmp,
                   compression="zstd")
    os.replace(tmp, path)


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
    """Read-side API: ``ConceptStats.load(dir).pmi("dog", "frisbee")``."""

    def __init__(self, path: str, concepts: pa.Array, counts: np.ndarray, pairs: pa.Table, meta: dict) -> None:
        self.path = path
        self.meta = meta
        self.n_captions = int(meta["n_captions"])
        self.smoothing = float(meta.get("settings", {}).get("smoothing", 0.0))
        self._concepts = concepts
        self._names = concepts.to_pylist()
        self._index = {c: i for i, c in enumerate(self._names)}
        self._counts = counts
        self.pairs = pairs
        n = len(self._names)
        a = pc.index_in(pairs.column("a"), value_set=concepts).to_numpy(zero_copy_only=False).astype(np.int64)
        b = pc.index_in(pairs.column("b"), value_set=concepts).to_numpy(zero_copy_only=False).astype(np.int64)
        self._codes = a * n + b
        order = np.argsort(self._codes, kind="stable")
        self._order = order  # table row of each sorted code
        self._by_b = None  # lazily: sorted positions ordered by b (the per-concept index's second half)
        self._codes = self._codes[order]
        self._pair_counts = pairs.column("count").to_numpy()[order]
        self._pa, self._pb = a[order], b[order]
        self._extractor = None

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
            pairs = pq.read_table(os.path.join(path, PAIRS_FILE))
        except (ValueError, pa.ArrowInvalid, OSError) as exc:
            raise ClipcompError(f"{path}: unreadable ConceptStats ({exc})") from None
        return cls(path, concepts.column("concept").combine_chunks(), concepts.column("count").to_numpy(),
                   pairs, meta)

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
        k = int(np.searchsorted(self._codes, code))
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
        table = self.pairs
        if concept is not None:
            # the concept's pairs by index (rows with a == c are one range of the sorted codes; rows with
            # b == c come from a b-ordered permutation built once), not a scan of every pair
            table = table.take(pa.array(self._rows_of(self._id(concept))))
        table = table.filter(pc.greater_equal(table.column("count"), min_count))
        order = "ascending" if lowest else "descending"
        table = table.sort_by([(by, order), ("a", "ascending"), ("b", "ascending")]).slice(0, k)
        return [PairStat(**r) for r in table.to_pylist()]

    def _rows_of(self, c: int) -> np.ndarray:
        """Table rows of every pair containing concept id `c`, in table order."""
        n = len(self._names)
        lo, hi = np.searchsorted(self._codes, [c * n, (c + 1) * n])
        if self._by_b is None:
            self._by_b = np.argsort(self._pb, kind="stable")
            self._pb_sorted = self._pb[self._by_b]
        blo, bhi = np.searchsorted(self._pb_sorted, [c, c + 1])
        rows = np.concatenate([self._order[lo:hi], self._order[self._by_b[blo:bhi]]])
        return np.unique(rows)

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
