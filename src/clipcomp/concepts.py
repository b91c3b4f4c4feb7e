"""Concept extraction: captions → per-caption *sets* of concept ids, vectorized over Arrow batches.

Pipeline per batch: Unicode lower-casing and a split on runs of non letters/digits (Arrow kernels), then
`dictionary_encode` so each distinct token type is filtered and lemmatized once (and cached across batches),
then NumPy for everything per token. Two modes:

* discovery (no vocabulary): stopwords, pure numbers and 1-character tokens are dropped, the rest
  lemmatized; ids index a growing lemma table (`extractor.lemmas`). Used to pick a vocabulary globally.
* vocabulary: the concepts are given (single words or multi-word phrases such as ``hot dog``). Phrases
  match as contiguous token sequences; the longest match starting leftmost wins and consumes its tokens,
  so "a hot dog" yields ``hot dog`` and not ``dog``. The vocabulary is authoritative: stopword and
  length filters do not apply to its entries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clipcomp.errors import ClipcompError

SPLIT_PATTERN = r"[^\p{L}\p{N}]+"  # tokens are maximal runs of Unicode letters and digits
LEMMATIZERS = ("simplemma", "spacy", "none")
_CACHE_LIMIT = 1_000_000  # token types a process remembers; beyond it, one-off types are forgotten


# ------------------------------------------------------------------------------------------ lemmatizers


def make_lemmatizer(name: str) -> Callable[[str], str]:
    """Return a word → lemma function; every backend works offline."""
    if name == "none":
        return lambda w: w
    if name == "simplemma":
        import simplemma

        def lemma(word: str) -> str:
            return simplemma.lemmatize(word, lang="en").lower()

        return lemma
    if name == "spacy":
        try:
            from spacy.lookups import load_lookups

            table = load_lookups("en", ["lemma_lookup"]).get_table("lemma_lookup")
        except (ImportError, ValueError, KeyError) as exc:
            raise ClipcompError(
                "--lemmatizer spacy needs spaCy and spacy-lookups-data "
                f"(pip install 'clipcomp[spacy]'): {exc}"
            ) from None
        return lambda w: str(table.get(w, w)).lower()
    raise ClipcompError(f"unknown lemmatizer {name!r} (expected one of {', '.join(LEMMATIZERS)})")


# ------------------------------------------------------------------------------------------- stopwords


def load_stopwords(spec: str) -> frozenset[str]:
    """`default` (the bundled English list), `none`, or a file with one word per line (# comments)."""
    if spec == "none":
        return frozenset()
    if spec == "default":
        text = resources.files("clipcomp").joinpath("data/stopwords_en.txt").read_text(encoding="utf-8")
        origin = "default list"
    else:
        try:
            with open(spec, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            raise ClipcompError(f"{spec}: stopwords file not found (or use --stopwords default|none)") from None
        except UnicodeDecodeError as exc:
            raise ClipcompError(f"{spec}: stopwords file is not UTF-8 ({exc.reason})") from None
        origin = spec
    words = set()
    for line in text.splitlines():
        w = line.strip().lower()
        if w and not w.startswith("#"):
            words.add(w)
    if not words and spec != "none":
        raise ClipcompError(f"{origin}: stopwords file holds no words")
    return frozenset(words)


# ------------------------------------------------------------------------------------------ tokenizing


_TOKEN_BYTE = np.zeros(256, dtype=bool)
for _lo, _hi in ((48, 57), (65, 90), (97, 122)):
    _TOKEN_BYTE[_lo:_hi + 1] = True
_ASCII_LOWER = np.arange(256, dtype=np.uint8)
_ASCII_LOWER[65:91] += 32


def _split_arrow(texts: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Unicode path (Arrow kernels, RE2): per-row token counts and the flat token array."""
    lists = pc.split_pattern_regex(pc.utf8_lower(texts), pattern=SPLIT_PATTERN)
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    return lengths, lists.flatten()


def _split_ascii(texts: pa.Array) -> tuple[np.ndarray, np.ndarray, pa.Array, np.ndarray]:
    """Fast path over the raw UTF-8 bytes with NumPy: for pure-ASCII rows, tokens are runs of [A-Za-z0-9]
    (exactly what the Unicode rule gives on ASCII). Returns (token rows, non-ASCII row mask, tokens of ASCII
    rows, ...). Rows holding any non-ASCII byte are left to the Unicode path."""
    n = len(texts)
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int32)[texts.offset:texts.offset + n + 1]
    data_buf = texts.buffers()[2]
    base = int(offsets[0])
    end = int(offsets[-1])
    data = np.frombuffer(data_buf, dtype=np.uint8)[base:end] if data_buf is not None and end > base \
        else np.zeros(0, np.uint8)
    rel = (offsets - base).astype(np.int64)
    row_len = np.diff(rel)
    high = np.flatnonzero(data >= 128)
    nonascii = np.zeros(n, bool)
    byte_ok = None
    if high.size:
        nonascii[np.searchsorted(rel, high, side="right") - 1] = True
        byte_ok = ~np.repeat(nonascii, row_len)
    tok = _TOKEN_BYTE[data]
    if byte_ok is not None:
        tok &= byte_ok
    prev = np.zeros_like(tok)
    prev[1:] = tok[:-1]
    nxt = np.zeros_like(tok)
    nxt[:-1] = tok[1:]
    starts_at_row = rel[:-1][row_len > 0]
    ends_at_row = rel[1:][row_len > 0] - 1
    prev[starts_at_row] = False
    nxt[ends_at_row] = False
    s = np.flatnonzero(tok & ~prev)
    e = np.flatnonzero(tok & ~nxt) + 1
    per_row = np.diff(np.searchsorted(s, rel))
    rows = np.repeat(np.arange(n, dtype=np.int64), per_row)
    tok_offsets = np.zeros(s.size + 1, dtype=np.int64)
    np.cumsum(e - s, out=tok_offsets[1:])
    tok_offsets = tok_offsets.astype(np.int32)
    values = data[tok]
    values |= 0x20  # ASCII letters and digits: setting bit 5 lower-cases letters and keeps digits
    tokens = pa.StringArray.from_buffers(s.size, pa.py_buffer(tok_offsets), pa.py_buffer(values))
    return rows, nonascii, tokens, row_len


def tokenize(texts: pa.Array) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Lower-case and split a string array into tokens (maximal runs of Unicode letters and digits).

    Returns (row of each token, token-type index of each token, token types). Tokens of a row are
    contiguous and in order; null rows have none. Pure-ASCII rows take a NumPy byte path, others Arrow's
    Unicode kernels; both give exactly the tokens of the Unicode rule.
    """
    rows, indices, types = tokenize_arrow(texts)
    return rows, indices, types.to_pylist()


def tokenize_arrow(texts: pa.Array) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """`tokenize` with the token types left as an Arrow string array (no Python strings made)."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if pa.types.is_large_string(texts.type) or pa.types.is_string_view(texts.type):
        texts = texts.cast(pa.string())
    if texts.null_count:
        texts = pc.fill_null(texts, "")
    rows, nonascii, tokens, _ = _split_ascii(texts)
    if nonascii.any():
        idx = np.flatnonzero(nonascii)
        lengths, flat = _split_arrow(texts.take(pa.array(idx)))
        rows = np.concatenate([rows, np.repeat(idx, lengths)])
        tokens = pa.concat_arrays([tokens, flat.cast(pa.string())])
    enc = tokens.dictionary_encode()
    indices = enc.indices.to_numpy(zero_copy_only=False)
    return rows.astype(np.int64, copy=False), indices, enc.dictionary


def tokenize_one(text: str) -> list[str]:
    """The same tokenizer for a single string (used for vocabulary entries and queries)."""
    _, indices, types = tokenize(pa.array([text], type=pa.string()))
    return [types[i] for i in indices if types[i]]


def row_sets(rows: np.ndarray, ids: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-row sorted unique ids as CSR (indptr, ids); rows must be non-decreasing, ids in [0, 2**32)."""
    if ids.size == 0:
        return np.zeros(n_rows + 1, dtype=np.int64), np.zeros(0, dtype=np.int32)
    codes = (rows.astype(np.int64) << 32) | ids.astype(np.int64)
    codes.sort()
    keep = np.empty(codes.size, dtype=bool)
    keep[0] = True
    np.not_equal(codes[1:], codes[:-1], out=keep[1:])
    codes = codes[keep]
    out_rows = codes >> 32
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(out_rows, minlength=n_rows), out=indptr[1:])
    return indptr, (codes & 0xFFFFFFFF).astype(np.int32)


# ------------------------------------------------------------------------------------------ vocabulary


@dataclass(frozen=True)
class VocabEntry:
    concept: str  # as the user wrote it, lower-cased, single-spaced ("t-shirt" stays "t-shirt")
    key: tuple[str, ...]  # lemmatized tokens that must match contiguously
    line: int = 0


def read_vocab_file(path: str, lemmatize: Callable[[str], str]) -> list[VocabEntry]:
    """One concept per line (# comments, blank lines skipped); duplicates are errors naming both lines."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise ClipcompError(f"{path}: vocabulary file not found") from None
    except UnicodeDecodeError as exc:
        raise ClipcompError(f"{path}: vocabulary file is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    entries: list[VocabEntry] = []
    by_concept: dict[str, int] = {}
    by_key: dict[tuple[str, ...], VocabEntry] = {}
    numbered = [(n, raw.strip()) for n, raw in enumerate(lines, start=1)]
    numbered = [(n, t) for n, t in numbered if t and not t.startswith("#")]
    # one tokenizer call for the whole file (a call per line costs more than counting a million captions)
    rows, indices, types = tokenize(pa.array([t for _, t in numbered], pa.string()))
    order = np.argsort(rows, kind="stable")  # non-ASCII rows' tokens come after the ASCII rows'
    rows, indices = rows[order], indices[order]
    bounds = np.searchsorted(rows, np.arange(len(numbered) + 1))
    for i, (n, text) in enumerate(numbered):
        tokens = [types[j] for j in indices[bounds[i]:bounds[i + 1]].tolist() if types[j]]
        if not tokens:
            raise ClipcompError(f"{path}: line {n}: {text!r} has no letters or digits")
        concept = " ".join(text.lower().split())
        if concept in by_concept:
            first_line = by_concept[concept]
            raise ClipcompError(f"{path}: line {n}: duplicate concept {concept!r} (first on line {first_line})")
        key = tuple(lemmatize(t) for t in tokens)
        if key in by_key:
            first = by_key[key]
            raise ClipcompError(
                f"{path}: line {n}: {concept!r} is the same concept as {first.concept!r} (line {first.line}) "
                f"after lemmatization ({' '.join(key)!r})"
            )
        by_concept[concept] = n
        entry = VocabEntry(concept, key, n)
        by_key[key] = entry
        entries.append(entry)
    if not entries:
        raise ClipcompError(f"{path}: vocabulary file holds no concepts")
    return entries


class PhraseMatcher:
    """Vectorized longest-leftmost matching of token sequences (a trie walked over all positions at once)."""

    def __init__(self, keys: list[tuple[str, ...]]) -> None:
        self.words: dict[str, int] = {}
        for key in keys:
            for w in key:
                self.words.setdefault(w, len(self.words))
        n_words = max(1, len(self.words))
        self.n_words = n_words
        trans: dict[int, int] = {}
        accept = [-1]
        for cid, key in enumerate(keys):
            state = 0
            for w in key:
                code = state * n_words + self.words[w]
                if code not in trans:
                    trans[code] = len(accept)
                    accept.append(-1)
                state = trans[code]
            accept[state] = cid
        order = sorted(trans)
        self.trans_keys = np.array(order, dtype=np.int64)
        self.trans_next = np.array([trans[k] for k in order], dtype=np.int64)
        self.accept = np.array(accept, dtype=np.int64)
        self.max_len = max(len(k) for k in keys) if keys else 0

    def _step(self, state: np.ndarray, wid: np.ndarray) -> np.ndarray:
        code = state * self.n_words + wid
        pos = np.searchsorted(self.trans_keys, code)
        pos = np.minimum(pos, self.trans_keys.size - 1)
        found = (self.trans_keys[pos] == code) & (wid >= 0)
        return np.where(found, self.trans_next[pos], -1)

    def match(self, wid: np.ndarray, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Given per-token word ids (-1 = not a vocabulary word) and row ids, return (positions, concept ids)."""
        if self.trans_keys.size == 0 or wid.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        starts = np.flatnonzero(wid >= 0)
        state = self._step(np.zeros(starts.size, np.int64), wid[starts])
        alive = state >= 0
        starts, state = starts[alive], state[alive]
        best_cid = np.full(starts.size, -1, np.int64)
        best_len = np.zeros(starts.size, np.int64)
        idx = np.arange(starts.size)
        k = 1
        n_tok = wid.size
        while idx.size:
            acc = self.accept[state]
            hit = acc >= 0
            best_cid[idx[hit]] = acc[hit]
            best_len[idx[hit]] = k
            if k >= self.max_len:
                break
            nxt = starts[idx] + k
            ok = nxt < n_tok
            nxt_c = np.minimum(nxt, n_tok - 1)
            ok &= row[nxt_c] == row[starts[idx]]
            new_state = np.where(ok, self._step(state, np.where(ok, wid[nxt_c], -1)), -1)
            keep = new_state >= 0
            idx, state = idx[keep], new_state[keep]
            k += 1
        m = best_cid >= 0
        starts, cids, lens = starts[m], best_cid[m], best_len[m]
        if self.max_len > 1 and starts.size:
            starts, cids = _resolve_overlaps(starts, lens, cids)
        return starts, cids


def _resolve_overlaps(starts: np.ndarray, lens: np.ndarray, cids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Greedy left-to-right selection of non-overlapping matches; Python only touches overlap clusters."""
    ends = starts + lens
    prev_end = np.empty_like(ends)
    prev_end[0] = -1
    np.maximum.accumulate(ends[:-1], out=prev_end[1:])
    conflict = starts < prev_end
    if not conflict.any():
        return starts, cids
    cluster = np.cumsum(~conflict) - 1
    bad_clusters = np.unique(cluster[conflict])
    keep = np.ones(starts.size, dtype=bool)
    members = np.flatnonzero(np.isin(cluster, bad_clusters))
    last_cluster, last_end = -1, -1
    for i in members.tolist():
        c = cluster[i]
        if c != last_cluster:
            last_cluster, last_end = c, -1
        if starts[i] < last_end:
            keep[i] = False
        else:
            last_end = ends[i]
    return starts[keep], cids[keep]


# ------------------------------------------------------------------------------------------- extractor


class ConceptExtractor:
    """Caption batches → CSR of concept-id sets. Picklable settings; caches are rebuilt per process."""

    def __init__(
        self,
        lemmatizer: str = "simplemma",
        stopwords: str | Iterable[str] = "default",
        vocab: list[VocabEntry] | None = None,
    ) -> None:
        self.lemmatizer_name = lemmatizer
        self._lemmatize = make_lemmatizer(lemmatizer)
        self.stopwords = load_stopwords(stopwords) if isinstance(stopwords, str) else frozenset(stopwords)
        self.vocab = vocab
        # token type → value (discovery: lemma id, vocabulary: word id; -1 = dropped). Types seen are kept
        # both in a dict and, for vectorized lookup of whole batches, in an Arrow array rebuilt as it grows;
        # only types missing from the array go through Python (and only new ones through the lemmatizer).
        self._reset_types()
        self.lemmas: list[str] = []  # discovery mode: id → lemma (per process, grows)
        self._lemma_ids: dict[str, int] = {}
        if vocab is not None:
            self.matcher = PhraseMatcher([e.key for e in vocab])
            self._single = np.full(self.matcher.n_words, -1, np.int64)
            if self.matcher.max_len == 1:
                for cid, e in enumerate(vocab):
                    self._single[self.matcher.words[e.key[0]]] = cid

    @property
    def concepts(self) -> list[str]:
        return [e.concept for e in self.vocab] if self.vocab is not None else self.lemmas

    def lemmatize(self, word: str) -> str:
        return self._lemmatize(word)

    def trim(self) -> None:
        """Between tasks: once the per-process tables outgrow the cache limit, keep only the recurring types
        (and their lemmas, renumbered) and forget the one-off ones, so memory stays flat on an endless
        stream of new words while frequent words are not lemmatized again. Lemma ids are per task anyway."""
        if len(self.lemmas) <= _CACHE_LIMIT and len(self._type_cache) <= _CACHE_LIMIT:
            return
        keep = self._known_value
        if self.vocab is None:
            used = np.unique(keep[keep >= 0])
            self.lemmas = [self.lemmas[i] for i in used.tolist()]
            self._lemma_ids = {lem: i for i, lem in enumerate(self.lemmas)}
            keep = np.where(keep >= 0, np.searchsorted(used, keep), -1)
        self._type_cache = dict(zip(self._known.to_pylist(), keep.tolist(), strict=True))
        self._known_value = keep
        self._recurring = []

    def _lemma_or_empty(self, tok: str) -> str:
        if len(tok) < 2 or tok.isnumeric() or tok in self.stopwords:
            return ""
        lemma = self._lemmatize(tok)
        if len(lemma) < 2 or lemma.isnumeric() or lemma in self.stopwords:
            return ""
        return lemma

    def _value_of(self, t: str) -> int:
        if self.vocab is not None:
            return self.matcher.words.get(self._lemmatize(t), -1) if t else -1
        lem = self._lemma_or_empty(t)
        if not lem:
            return -1
        lid = self._lemma_ids.get(lem)
        if lid is None:
            lid = self._lemma_ids[lem] = len(self.lemmas)
            self.lemmas.append(lem)
        return lid

    def _map_types(self, types: pa.Array) -> np.ndarray:
        """Value of each token type of a batch: an Arrow hash lookup against the *recurring* types seen so far,
        Python for the rest (a dict lookup, or the lemmatizer for a type never seen). Only types seen in two
        batches join the Arrow set: a long tail of one-off words would make its hash table (rebuilt per call)
        cost more than it saves."""
        out = np.full(len(types), -1, dtype=np.int64)
        if len(self._known):
            pos = pc.fill_null(pc.index_in(types, value_set=self._known), -1).to_numpy()
            hit = pos >= 0
            miss = np.flatnonzero(~hit)
            out[hit] = self._known_value[pos[hit]]
        else:
            miss = np.arange(len(types))
        if miss.size:
            cache = self._type_cache
            names = types.take(pa.array(miss)).to_pylist()
            vals = np.empty(len(names), np.int64)
            recurring = self._recurring
            for i, t in enumerate(names):
                v = cache.get(t)
                if v is None:
                    v = cache[t] = self._value_of(t)
                else:
                    recurring.append(t)
                vals[i] = v
            out[miss] = vals
            if len(recurring) >= 0.25 * len(self._known) + 2048:
                values = np.fromiter((cache[t] for t in recurring), np.int64, len(recurring))
                self._known = pa.concat_arrays([self._known, pa.array(recurring, pa.string())])
                self._known_value = np.concatenate([self._known_value, values])
                self._recurring = []
        if len(self._type_cache) > _CACHE_LIMIT and self.vocab is not None:  # vocabulary ids never go stale
            self.trim()
        return out

    def _reset_types(self) -> None:
        self._type_cache = {}
        self._recurring: list[str] = []
        self._known, self._known_value = pa.array([], pa.string()), np.zeros(0, np.int64)

    def encode(self, texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """CSR (indptr of len(texts)+1, int32 ids): each caption's sorted set of concept (or lemma) ids."""
        n = len(texts)
        rows, indices, types = tokenize_arrow(texts)
        tok = self._map_types(types)[indices] if indices.size else np.zeros(0, np.int64)
        if self.vocab is None:
            valid = tok >= 0
            return row_sets(rows[valid], tok[valid], n)
        if self.matcher.max_len == 1:
            valid = tok >= 0
            cid = self._single[tok[valid]]
            rv = rows[valid]
            ok = cid >= 0
            return row_sets(rv[ok], cid[ok], n)
        pos, cid = self.matcher.match(tok, rows)
        return row_sets(rows[pos], cid, n)

    def concepts_of(self, text: str) -> list[str]:
        """The concepts of one caption, sorted (discovery mode returns lemmas)."""
        indptr, ids = self.encode(pa.array([text], type=pa.string()))
        names = self.concepts
        return sorted(names[i] for i in ids.tolist())
