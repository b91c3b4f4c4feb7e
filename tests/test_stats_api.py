"""ConceptStats queries and the stats CLI commands, on statistics built from real captions."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import reference as ref

from clipcomp.cli import main
from clipcomp.concepts import load_stopwords
from clipcomp.cooccur import BuildOptions, build_stats
from clipcomp.stats import ConceptStats


@pytest.fixture(scope="module")
def built(tmp_path_factory, cc3m_path):
    out = tmp_path_factory.mktemp("stats") / "cc3m"
    build_stats([cc3m_path], str(out), BuildOptions(min_count=5, lemmatizer="none"))
    return out


@pytest.fixture(scope="module")
def reference_counts(cc3m_lines):
    sets = ref.discovery_sets(cc3m_lines, load_stopwords("default"), lambda w: w)
    doc = ref.count(sets)[0]
    vocab = {c for c, k in doc.items() if k >= 5}
    return ref.count(sets, vocab)


def test_counts_pmi_npmi(built, reference_counts, cc3m_lines):
    uni, pairs = reference_counts
    s = ConceptStats.load(built)
    n = len(cc3m_lines)
    assert s.n_captions == n and len(s) == len(uni)
    for (a, b), n_ab in itertools.islice(sorted(pairs.items()), 0, None, 97):
        assert s.count(a) == uni[a] and s.count(a, b) == n_ab == s.count(b, a)
        assert s.pmi(a, b) == pytest.approx(ref.pmi(n_ab, uni[a], uni[b], n))
        assert s.pmi(b, a) == s.pmi(a, b)
        assert s.npmi(a, b) == pytest.approx(ref.npmi(n_ab, uni[a], uni[b], n))
    never = next((a, b) for a, b in itertools.combinations(sorted(uni), 2) if (a, b) not in pairs)
    assert s.count(*never) == 0 and s.pmi(*never) == -math.inf and s.npmi(*never) == -1.0
    with pytest.raises(KeyError):
        s.pmi("dog", "notaconcept")


def test_top_pairs(built, reference_counts, cc3m_lines):
    uni, pairs = reference_counts
    n = len(cc3m_lines)
    s = ConceptStats.load(built)
    ranked = sorted(((ref.pmi(c, uni[a], uni[b], n), a, b) for (a, b), c in pairs.items() if c >= 5),
                    key=lambda t: (-t[0], t[1], t[2]))
    top = s.top_pairs(k=10, min_count=5)
    assert [(p.a, p.b) for p in top] == [(a, b) for _, a, b in ranked[:10]]
    low = s.top_pairs(k=5, lowest=True)
    assert all(low[i].pmi <= low[i + 1].pmi for i in range(4))
    dog = s.top_pairs(concept="dog", k=50)
    assert dog and all("dog" in (p.a, p.b) for p in dog)
    assert len(dog) == sum(1 for (a, b) in pairs if "dog" in (a, b)) or len(dog) == 50


def test_score_caption(built):
    s = ConceptStats.load(built)
    sc = s.score("A dog runs on the beach with a ball, near the ocean!")
    assert sc.concepts == sorted(c for c in ["dog", "runs", "beach", "ball", "near", "ocean"] if c in s)
    seen = [p.pmi for p in sc.pairs]
    assert sc.mean_pmi == pytest.approx(sum(seen) / len(seen))
    assert sc.min_pmi == min(seen) and sc.max_pmi == max(seen)
    n_pairs = len(sc.concepts) * (len(sc.concepts) - 1) // 2
    assert len(sc.pairs) + len(sc.unseen) == n_pairs
    assert all(s.count(a, b) == 0 for a, b in sc.unseen)


def test_cli_queries(built, capsys):
    main(["stats", "pmi", str(built), "dog", "beach", "--json"])
    row = json.loads(capsys.readouterr().out)
    s = ConceptStats.load(built)
    assert row["count_ab"] == s.count("dog", "beach") and row["pmi"] == pytest.approx(s.pmi("dog", "beach"))
    main(["stats", "top", str(built), "--concept", "dog", "-k", "3", "--json"])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(x["a"], x["b"]) for x in lines] == [(p.a, p.b) for p in s.top_pairs(concept="dog", k=3)]
    main(["stats", "score", str(built), "a dog on the beach", "--json"])
    assert json.loads(capsys.readouterr().out)["concepts"] == ["beach", "dog"]
    main(["stats", "info", str(built), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert info["n_captions"] == 15833 and info["settings"]["lemmatizer"] == "none"
    main(["stats", "info", str(built)])
    assert "15,833" in capsys.readouterr().out


def test_unknown_concept_suggests_close_matches(built, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["stats", "pmi", str(built), "dgo", "beach"])
    assert exc.value.code == 2
    assert "'dgo' is not a concept" in capsys.readouterr().err


def test_user_vocab_score_uses_phrases(tmp_path, cc3m_path):
    (tmp_path / "v.txt").write_text("christmas tree\ntree\nlight\nhouse\n")
    out = tmp_path / "s"
    build_stats([cc3m_path], str(out), BuildOptions(vocab=str(tmp_path / "v.txt")))
    s = ConceptStats.load(out)
    assert s.score("Christmas trees with lights by the house").concepts == ["christmas tree", "house", "light"]


def test_top_pairs_of_a_concept_by_index_equals_a_full_scan(tmp_path, cc3m_path):
    import pyarrow.compute as pc

    from clipcomp import ConceptStats
    from clipcomp.cooccur import BuildOptions, build_stats

    build_stats([cc3m_path], str(tmp_path / "s"), BuildOptions(min_count=5))
    s = ConceptStats.load(tmp_path / "s")
    t = s.pairs
    for c in ("dog", "beach", "man", "city", "zebra" if "zebra" in s else "tree"):
        for min_count in (1, 3):
            for lowest in (False, True):
                for by in ("pmi", "count"):
                    got = [p.__dict__ for p in s.top_pairs(concept=c, k=12, min_count=min_count, lowest=lowest,
                                                           by=by)]
                    m = pc.and_(pc.greater_equal(t.column("count"), min_count),
                                pc.or_(pc.equal(t.column("a"), c), pc.equal(t.column("b"), c)))
                    ref = t.filter(m).sort_by([(by, "ascending" if lowest else "descending"), ("a", "ascending"),
                                               ("b", "ascending")]).slice(0, 12).to_pylist()
                    assert got == ref, (c, min_count, lowest, by)
