"""The PMI analysis reproduces exact r, gap and bins on constructed data; reports and plots are written."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("scipy")

from clipcomp.analysis.pmi import analyze, attach_pmi, equal_count_bins, top_bottom_gap, wilson_interval  # noqa: E402
from clipcomp.cli import main  # noqa: E402
from clipcomp.cooccur import BuildOptions, build_stats  # noqa: E402
from clipcomp.stats import ConceptStats  # noqa: E402


def test_exact_numbers_on_constructed_arrays():
    pmi = np.array([-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5,
                    7.0, 7.5])
    correct = np.array([0, 0, 0, 1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1], dtype=float)
    res = analyze(pmi, correct, n_bins=4, tail=0.1, n_boot=200, seed=1)
    assert res.pearson == pytest.approx(np.corrcoef(pmi, correct)[0, 1], abs=1e-12)
    ranks = np.argsort(np.argsort(pmi))
    from scipy.stats import rankdata

    assert res.spearman == pytest.approx(np.corrcoef(ranks, rankdata(correct))[0, 1], abs=1e-12)
    # top 10% = last 2 items (1, 1), bottom 10% = first 2 (0, 0)
    assert (res.gap, res.top_accuracy, res.bottom_accuracy, res.tail_k) == (1.0, 1.0, 0.0, 2)
    assert [b["n"] for b in res.bins] == [5, 5, 5, 5]
    assert [b["accuracy"] for b in res.bins] == [0.2, 0.6, 0.6, 1.0]
    assert [b["pmi_mean"] for b in res.bins] == [-1.0, 1.5, 4.0, 6.5]
    lo, hi = wilson_interval(1, 5)
    assert (res.bins[0]["ci_low"], res.bins[0]["ci_high"]) == pytest.approx((lo, hi))
    assert lo == pytest.approx(0.03622, abs=1e-4) and hi == pytest.approx(0.62447, abs=1e-4)
    assert res.bin_pearson == pytest.approx(np.corrcoef([-1.0, 1.5, 4.0, 6.5], [0.2, 0.6, 0.6, 1.0])[0, 1])
    assert res.pearson_ci[0] <= res.pearson <= res.pearson_ci[1]
    # same seed, same CIs
    assert analyze(pmi, correct, n_bins=4, tail=0.1, n_boot=200, seed=1).pearson_ci == res.pearson_ci


def test_partial_correlation_removes_a_frequency_confound():
    rng = np.random.default_rng(0)
    freq = rng.normal(size=400)
    pmi = freq + 0.01 * rng.normal(size=400)  # PMI is (almost) only frequency here
    correct = (freq + 0.3 * rng.normal(size=400) > 0).astype(float)
    res = analyze(pmi, correct, freq[:, None], n_boot=0)
    assert res.pearson > 0.5
    assert abs(res.partial_r) < 0.15
    x = np.column_stack([np.ones(400), freq])
    rx = pmi - x @ np.linalg.lstsq(x, pmi, rcond=None)[0]
    ry = correct - x @ np.linalg.lstsq(x, correct, rcond=None)[0]
    assert res.partial_r == pytest.approx(np.corrcoef(rx, ry)[0, 1])


def test_gap_and_bins_helpers():
    x = np.arange(100, dtype=float)
    y = (x >= 50).astype(float)
    assert top_bottom_gap(x, y, 0.05) == (1.0, 1.0, 0.0, 5)
    bins = equal_count_bins(x, y, 3)
    assert [b["n"] for b in bins] == [34, 33, 33]


@pytest.fixture(scope="module")
def constructed_stats(tmp_path_factory):
    """A corpus whose counts are known: N=100 captions."""
    d = tmp_path_factory.mktemp("cs")
    lines = (["dog frisbee"] * 20 + ["dog"] * 20 + ["frisbee"] * 5 + ["cat sofa"] * 10 + ["cat"] * 15
             + ["sofa"] * 5 + ["dog sofa"] * 1 + ["empty"] * 24)
    (d / "c.txt").write_text("\n".join(lines) + "\n")
    build_stats([str(d / "c.txt")], str(d / "s"), BuildOptions(min_count=1, lemmatizer="none", stopwords="none"))
    return ConceptStats.load(d / "s")


def test_attach_pmi_uses_exact_pmi(constructed_stats):
    s = constructed_stats
    assert s.n_captions == 100
    items = pa.table({"concept_a": ["dog", "cat", "dog", "dog", "zebra"],
                      "concept_b": ["frisbee", "sofa", "sofa", "cat", "dog"],
                      "correct": [1, 1, 0, 0, 1]})
    out = attach_pmi(items, s, ("concept_a", "concept_b"))
    pmi = out.column("pmi").to_pylist()
    assert pmi[0] == pytest.approx(math.log(100 * 20 / (41 * 25)))
    assert pmi[1] == pytest.approx(math.log(100 * 10 / (25 * 16)))
    assert pmi[2] == pytest.approx(math.log(100 * 1 / (41 * 16)))
    assert math.isnan(pmi[3]) and math.isnan(pmi[4])
    assert out.column("pmi_status").to_pylist() == ["ok", "ok", "ok", "unseen_pair", "unknown_concept"]
    text = attach_pmi(pa.table({"caption": ["a dog with a frisbee on a sofa"], "correct": [1]}), s,
                      text_column="caption")
    expected = np.mean([math.log(100 * 20 / (41 * 25)), math.log(100 * 1 / (41 * 16))])
    assert text.column("pmi").to_pylist()[0] == pytest.approx(expected)
    assert text.column("n_pairs").to_pylist() == [3] and text.column("n_unseen").to_pylist() == [1]


def test_cli_analyze_pmi_end_to_end(tmp_path, constructed_stats):
    rng = np.random.default_rng(3)
    pairs = [("dog", "frisbee"), ("cat", "sofa"), ("dog", "sofa"), ("dog", "cat")]
    rows = [(a, b, int(rng.random() < p)) for _ in range(40) for (a, b), p in zip(pairs, (0.9, 0.7, 0.3, 0.5),
                                                                                  strict=True)]
    table = pa.table({"concept_a": [r[0] for r in rows], "concept_b": [r[1] for r in rows],
                      "correct": [r[2] for r in rows]})
    pq.write_table(table, tmp_path / "items.parquet")
    main(["analyze", "pmi", str(tmp_path / "items.parquet"), "--stats", constructed_stats.path, "-o",
          str(tmp_path / "a"), "--bins", "3", "--boot", "100"])
    res = json.loads((tmp_path / "a" / "analysis.json").read_text())
    used = [r for r in rows if (r[0], r[1]) != ("dog", "cat")]
    x = np.array([constructed_stats.pmi(a, b) for a, b, _ in used])
    y = np.array([c for _, _, c in used], dtype=float)
    assert res["n_used"] == len(used) and res["excluded"] == {"unseen_pair": 40}
    assert res["pearson"] == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert res["unseen_accuracy"] == pytest.approx(np.mean([r[2] for r in rows if (r[0], r[1]) == ("dog", "cat")]))
    assert res["group_level"]["n_groups"] == 3
    assert (tmp_path / "a" / "pmi_curve.png").stat().st_size > 10_000
    assert "Pearson r" in (tmp_path / "a" / "report.md").read_text()


def test_results_without_needed_columns(tmp_path, constructed_stats, capsys):
    pq.write_table(pa.table({"x": [1, 2, 3]}), tmp_path / "r.parquet")
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "pmi", str(tmp_path / "r.parquet"), "--stats", constructed_stats.path,
              "-o", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "r.parquet" in err and "--pairs A,B or --text-column" in err
    with pytest.raises(SystemExit):
        main(["analyze", "pmi", str(tmp_path / "r.parquet"), "--stats", constructed_stats.path,
              "--pairs", "a,b", "-o", str(tmp_path / "o")])
    assert "no column 'correct'" in capsys.readouterr().err


def test_vqa_yes_bias(tmp_path, constructed_stats):
    rows = []
    for q, a, p, n in (("is there a dog with a frisbee", "yes", "yes", 10), ("is there a dog with a frisbee", "no",
                                                                              "yes", 6),
                       ("is there a dog with a frisbee", "no", "no", 4), ("is there a dog on the sofa", "yes", "no", 7),
                       ("is there a dog on the sofa", "yes", "yes", 3), ("is there a dog on the sofa", "no", "no", 10),
                       ("is the cat on the sofa", "yes", "yes", 8), ("is the cat on the sofa", "no", "yes", 2),
                       ("is the cat on the sofa", "no", "no", 8)):
        rows += [{"question": q, "answer": a, "prediction": p}] * n
    path = tmp_path / "vqa.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    main(["analyze", "vqa", str(path), "--stats", constructed_stats.path, "-o", str(tmp_path / "v"), "--bins", "3",
          "--boot", "50"])
    res = json.loads((tmp_path / "v" / "analysis.json").read_text())
    s = constructed_stats
    pmi_q = {"dog with a frisbee": s.pmi("dog", "frisbee"), "dog on the sofa": s.pmi("dog", "sofa"),
             "cat on the sofa": s.pmi("cat", "sofa")}
    assert res["n_yes"] == 28 and res["n_no"] == 30
    yes = [r for r in rows if r["answer"] == "yes"]
    x = np.array([next(v for k, v in pmi_q.items() if k in r["question"]) for r in yes])
    y = np.array([r["prediction"] == "yes" for r in yes], dtype=float)
    assert res["yes_given_yes"]["pearson"] == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert res["accuracy"]["accuracy"] == pytest.approx(np.mean([r["answer"] == r["prediction"] for r in rows]))


def test_cli_with_pmi_given_in_the_results(tmp_path):
    rng = np.random.default_rng(5)
    pmi = rng.normal(size=300)
    correct = (pmi + rng.normal(size=300) > 0).astype(int)
    pq.write_table(pa.table({"pmi": pmi, "correct": correct}), tmp_path / "r.parquet")
    main(["analyze", "pmi", str(tmp_path / "r.parquet"), "-o", str(tmp_path / "a"), "--bins", "5", "--boot", "50"])
    res = json.loads((tmp_path / "a" / "analysis.json").read_text())
    assert res["pearson"] == pytest.approx(np.corrcoef(pmi, correct)[0, 1])
    order = np.argsort(pmi, kind="stable")
    assert res["gap"] == pytest.approx(correct[order[-15:]].mean() - correct[order[:15]].mean())
    assert [b["n"] for b in res["bins"]] == [60] * 5
