"""Counts and PMI equal an independent plain-Python computation on real captions."""

from __future__ import annotations

import math
import os

import pyarrow.parquet as pq
import pytest
import reference as ref
import simplemma

from clipcomp.concepts import load_stopwords
from clipcomp.cooccur import BuildOptions, build_stats
from clipcomp.stats import ConceptStats


def _tables(out):
    concepts = pq.read_table(os.path.join(out, "concepts.parquet")).to_pylist()
    pairs = pq.read_table(os.path.join(out, "pairs.parquet")).to_pylist()
    return {r["concept"]: r["count"] for r in concepts}, pairs


def _check(out, uni, pairs_ref, n):
    concepts, pairs = _tables(out)
    assert concepts == {c: k for c, k in uni.items()}
    got = {(r["a"], r["b"]): r for r in pairs}
    assert set(got) == set(pairs_ref)
    for (a, b), n_ab in pairs_ref.items():
        r = got[(a, b)]
        assert a < b
        assert r["count"] == n_ab
        assert r["pmi"] == pytest.approx(ref.pmi(n_ab, uni[a], uni[b], n), rel=1e-12, abs=1e-12)
        assert r["npmi"] == pytest.approx(ref.npmi(n_ab, uni[a], uni[b], n), rel=1e-12, abs=1e-12)


def test_vocab_file_no_lemmatizer_no_stopwords_matches_plain_count(tmp_path, cc3m_path, cc3m_lines):
    # The acceptance case: tokens = lower-cased runs of letters and digits, document counts.
    sets = [set(ref.tokens(line)) for line in cc3m_lines]
    freq = ref.count(sets)[0]
    vocab_words = sorted(w for w, c in freq.items() if c >= 20) + ["zebra", "notaword123"]
    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text("\n".join(vocab_words) + "\n")
    out = tmp_path / "stats"
    res = build_stats([cc3m_path], str(out), BuildOptions(vocab=str(vocab_file), lemmatizer="none",
                                                          stopwords="none"))
    assert res.n_captions == len(cc3m_lines)
    uni, pairs = ref.count(sets, set(vocab_words))
    for w in vocab_words:  # concepts that never occur are still listed, with count 0
        uni.setdefault(w, 0)
    _check(str(out), uni, pairs, len(cc3m_lines))


def test_discovered_vocabulary_matches_reference(tmp_path, cc3m_path, cc3m_lines):
    stop = load_stopwords("default")

    def lemmatize(w):
        return simplemma.lemmatize(w, lang="en").lower()

    sets = ref.discovery_sets(cc3m_lines, stop, lemmatize)
    doc = ref.count(sets)[0]
    vocab = {c for c, k in doc.items() if k >= 3}
    uni, pairs = ref.count(sets, vocab)
    out = tmp_path / "stats"
    build_stats([cc3m_path], str(out), BuildOptions(min_count=3))
    _check(str(out), uni, pairs, len(cc3m_lines))


def test_max_concepts_keeps_most_frequent(tmp_path, cc3m_path, cc3m_lines):
    stop = load_stopwords("default")
    sets = ref.discovery_sets(cc3m_lines, stop, lambda w: w)
    doc = ref.count(sets)[0]
    top = sorted(doc.items(), key=lambda kv: (-kv[1], kv[0]))[:50]
    out = tmp_path / "stats"
    build_stats([cc3m_path], str(out), BuildOptions(lemmatizer="none", max_concepts=50, min_count=1))
    concepts, _ = _tables(str(out))
    assert concepts == dict(top)


def test_multiword_phrases_match_as_phrases(tmp_path):
    flickr = __import__("conftest").shared_path("flickr8k_captions.txt")
    lines = flickr.read_text(encoding="utf-8").splitlines()
    entries = ["hot dog", "dog", "teddy bear", "bear", "swimming pool", "pool", "ice cream", "cream",
               "red", "shirt", "red shirt", "t shirt", "fire hydrant", "soccer ball", "ball", "man", "woman",
               "tennis ball", "tennis", "ice", "cream cone", "ice cream cone"]
    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text("# phrases and their parts\n" + "\n".join(entries) + "\n")
    out = tmp_path / "stats"
    build_stats([str(flickr)], str(out), BuildOptions(vocab=str(vocab_file), lemmatizer="none", stopwords="none",
                                                      workers=2))
    vocab = {tuple(e.split()): e for e in entries}
    sets = ref.phrase_sets(lines, vocab)
    uni, pairs = ref.count(sets)
    for e in entries:
        uni.setdefault(e, 0)
    assert uni["hot dog"] > 0 and uni["ice cream cone"] > 0
    _check(str(out), uni, pairs, len(lines))


def test_phrases_with_lemmatizer(tmp_path, cc3m_path, cc3m_lines):
    entries = ["christmas tree", "tree", "hot air balloon", "balloon", "living room", "room", "dog", "city"]
    vocab_file = tmp_path / "vocab.txt"
    vocab_file.write_text("\n".join(entries) + "\n")

    def lemmatize(w):
        return simplemma.lemmatize(w, lang="en").lower()

    out = tmp_path / "stats"
    build_stats([cc3m_path], str(out), BuildOptions(vocab=str(vocab_file)))
    vocab = {tuple(lemmatize(t) for t in e.split()): e for e in entries}
    sets = ref.phrase_sets(cc3m_lines, vocab, lemmatize)
    uni, pairs = ref.count(sets)
    for e in entries:
        uni.setdefault(e, 0)
    assert uni["christmas tree"] > 0
    _check(str(out), uni, pairs, len(cc3m_lines))


def test_byte_range_split_and_workers_give_identical_files(tmp_path, cc3m_path):
    one = tmp_path / "one"
    many = tmp_path / "many"
    build_stats([cc3m_path], str(one), BuildOptions(min_count=2))
    build_stats([cc3m_path], str(many), BuildOptions(min_count=2, workers=2, task_bytes=50_000))
    for name in ("concepts.parquet", "pairs.parquet"):
        assert (one / name).read_bytes() == (many / name).read_bytes()


def test_dask_engine_is_byte_identical(tmp_path, cc3m_path):
    pytest.importorskip("dask.distributed")
    local = tmp_path / "local"
    dask = tmp_path / "dask"
    build_stats([cc3m_path], str(local), BuildOptions(min_count=2, task_bytes=200_000))
    res = build_stats([cc3m_path], str(dask), BuildOptions(min_count=2, task_bytes=200_000, engine="dask",
                                                           workers=2))
    assert res.n_captions == 15833
    for name in ("concepts.parquet", "pairs.parquet", "meta.json"):
        assert (local / name).read_bytes() == (dask / name).read_bytes()


def test_smoothing_is_add_k(tmp_path, cc3m_path):
    out = tmp_path / "s"
    build_stats([cc3m_path], str(out), BuildOptions(min_count=50, smoothing=1.0))
    stats = ConceptStats.load(out)
    a, b = "man", "woman"
    n_a, n_b, n_ab, n = stats.count(a), stats.count(b), stats.count(a, b), stats.n_captions
    assert stats.pmi(a, b) == pytest.approx(math.log(n * (n_ab + 1) / ((n_a + 1) * (n_b + 1))))
    assert stats.meta["settings"]["smoothing"] == 1.0


def test_spawned_workers_give_identical_files(tmp_path, cc3m_path, monkeypatch):
    monkeypatch.setenv("CLIPCOMP_START_METHOD", "spawn")
    a, b = tmp_path / "a", tmp_path / "b"
    build_stats([cc3m_path], str(a), BuildOptions(min_count=2, task_bytes=150_000))
    build_stats([cc3m_path], str(b), BuildOptions(min_count=2, task_bytes=150_000, workers=2))
    for name in ("concepts.parquet", "pairs.parquet", "meta.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
