"""Contamination as Mayilvahanan et al. (2025) measure it: two one-vs-rest classifiers, thresholds at the corpus's
prevalence, clean subsets that keep their precision on a corpus at 9 % renditions, lower bound + Rogan–Gladen."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from clipcomp.errors import ClipcompError  # noqa: E402
from clipcomp.similarity.contamination import (  # noqa: E402
    clean_test_set,
    contamination_report,
    fit_one_vs_rest,
    min_calibration_positives,
    precision_at,
)


def world(rng, n, frac_ren, frac_amb=0.0, d=8):
    """natural ~ N(0), rendition ~ N(+5 e0), ambiguous ~ N(+2 e0): overlapping tails, so thresholds matter."""
    kind = rng.choice(["natural", "rendition", "ambiguous"], size=n, p=[1 - frac_ren - frac_amb, frac_ren, frac_amb])
    x = rng.normal(size=(n, d))
    x[:, 0] += np.where(kind == "rendition", 5.0, np.where(kind == "ambiguous", 2.0, 0.0))
    return x.astype(np.float32), kind


def test_clean_subsets_keep_their_precision_at_corpus_prevalence():
    rng = np.random.default_rng(0)
    xl, kl = world(rng, 16_000, 0.5)  # labelled at 50 % renditions
    clfs = fit_one_vs_rest(xl, kl, target_precision=0.95, seed=0)
    xc, kc = world(rng, 40_000, 0.09)  # the corpus: 9 % renditions
    rep, masks = contamination_report(clfs, xc, n_boot=500, seed=1)
    for name in ("natural", "rendition"):
        sel = masks[f"clean_{name}"]
        true_precision = float((kc[sel] == name).mean())
        lo, hi = rep[name]["precision_ci"]
        assert true_precision >= 0.95 - 0.02, (name, true_precision)  # reaches the target (within sampling)
        assert lo - 0.02 <= true_precision  # and its CI covers what it claims, from below
        assert rep[name]["prevalence_source"].startswith("corpus")
    r = rep["rendition"]
    assert abs(r["prevalence"] - 0.09) < 0.03  # the corpus prevalence the threshold was set at
    assert r["lower_bound"] <= 0.09 + 0.01  # the paper's "at least" share is a lower bound
    assert r["corrected_ci"][0] <= 0.09 <= r["corrected_ci"][1] + 0.01
    # a threshold calibrated at the labelled prevalence (60 %) would not hold on the 9 % corpus
    rep_lab, masks_lab = contamination_report(clfs, xc, prevalence="labelled", n_boot=200)
    p_lab = float((kc[masks_lab["clean_rendition"]] == "rendition").mean())
    assert p_lab < float((kc[masks["clean_rendition"]] == "rendition").mean())
    # clean test sets: flagged items of the other domain leave
    xt, kt = world(rng, 2000, 0.5)
    keep = clean_test_set(clfs, rep, xt[kt == "rendition"], "rendition")
    assert 0 < keep.mean() <= 1.0


def test_three_way_labels_make_ambiguous_a_negative_of_both():
    rng = np.random.default_rng(2)
    x, k = world(rng, 12_000, 0.45, 0.1)
    clfs = fit_one_vs_rest(x, k, target_precision=0.9, seed=0)
    assert clfs["natural"].info["labelled_counts"]["ambiguous"] == int((k == "ambiguous").sum())
    for name, clf in clfs.items():
        y_all = np.concatenate([clf.calib[1], clf.test[1]])
        assert y_all.sum() < len(y_all)  # ambiguous items are among the negatives of both classifiers
        assert name in ("natural", "rendition")
    rep, masks = contamination_report(clfs, x, prevalence="labelled", n_boot=100)
    assert not (masks["clean_natural"] & masks["clean_rendition"]).any()


def test_bad_labelled_sets_and_targets():
    rng = np.random.default_rng(1)
    x, k = world(rng, 500, 0.5)
    with pytest.raises(ClipcompError, match="one class only"):
        fit_one_vs_rest(x[k == "natural"], k[k == "natural"])
    with pytest.raises(ClipcompError, match="target-precision must be in"):
        fit_one_vs_rest(x, k, target_precision=1.5)
    with pytest.raises(ClipcompError, match="fewer than the 189 a 95 % bound"):
        fit_one_vs_rest(x[:400], k[:400], target_precision=0.98)
    assert min_calibration_positives(0.98) == 189  # 0.98 · 1.96² / 0.02 = 188.2
    assert precision_at(0.9, 0.1, 0.5) == pytest.approx(0.9)
