"""Domain contamination as Mayilvahanan et al. (ICLR 2025, "In search of forgotten domain generalization") measure
it: two one-vs-rest classifiers on embeddings — natural-vs-rest and rendition-vs-rest (hand labels may have a
third, ambiguous class, a negative for both) — each with its threshold set for a strict precision (0.98) **at the
prevalence of the corpus it is applied to**, clean natural and clean rendition subsets each from its own
classifier, and the paper's lower bound ("at least x % renditions": the strict classifier's flagged share) beside
the corrected (Rogan–Gladen) estimate with a bootstrap CI.

Why the prevalence matters: precision = π·TPR / (π·TPR + (1 − π)·FPR). A threshold calibrated on labelled data at
80 % renditions and applied to a corpus at 9 % loses its precision (round 3 measured 0.72–0.86 against 0.95). Here
each threshold is chosen at apply time, for the corpus: `prevalence="corpus"` (default) estimates the corpus's π by
Rogan–Gladen (at the Youden-optimal threshold) from the held-out error rates and corrects the calibration split's
precision to it; `"labelled"` uses the labelled set as is (right when it was drawn from the corpus itself); a
number fixes π. The output says which. The correction assumes each class's score distribution is the same in the
labelled set and the corpus (true of a labelled sample of the corpus; not when, say, the ambiguous share of the
negatives differs) — label a sample of the corpus and use `"labelled"` when in doubt.
The threshold is the smallest whose precision at π reaches the target with
TPR's Wilson lower and FPR's Wilson upper bound (conservative), so it holds beyond the calibration sample.
Fitting: scikit-learn LogisticRegressionCV on half of the labelled items, calibration on a quarter, the error rates
reported (with Wilson intervals and their item counts) on the last quarter.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from clipcomp.errors import ClipcompError

Z = 1.959963984540054
PREVALENCE_MODES = ("corpus", "labelled")


def wilson(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def min_calibration_positives(target: float) -> int:
    """Positives a calibration split needs before a Wilson 95 % lower bound can reach `target` at all
    (n / (n + z²) ≥ target)."""
    return math.ceil(target * Z * Z / (1 - target)) if target < 1 else 10**9


@dataclass
class OneVsRest:
    """One classifier: the positive class, the model, and its calibration / test scores (for thresholds set later
    at a corpus's prevalence)."""

    name: str
    model: object
    calib: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    info: dict = field(default_factory=dict)

    def proba(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(np.asarray(x, np.float32))[:, 1]


def _splits(y: np.ndarray, seed: int) -> np.ndarray:
    """0 fit / 1 calibrate / 2 test, 50/25/25 within each label (stratified)."""
    rng = np.random.default_rng([seed, 3_141])
    parts = np.zeros(len(y), int)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        a, b = int(len(idx) * 0.5), int(len(idx) * 0.75)
        parts[idx[a:b]], parts[idx[b:]] = 1, 2
    return parts


def fit_one_vs_rest(x: np.ndarray, labels, natural: str = "natural", ambiguous: str = "ambiguous",
                    target_precision: float = 0.98, seed: int = 0, where: str = "labelled data"
                    ) -> dict[str, OneVsRest]:
    """{"natural": natural-vs-rest, "rendition": rendition-vs-rest}. Labels: the natural label, the ambiguous
    label, anything else is a rendition."""
    from sklearn.linear_model import LogisticRegressionCV

    if not 0 < target_precision <= 1 or not math.isfinite(target_precision):
        raise ClipcompError(f"--target-precision must be in (0, 1] (got {target_precision})")
    lab = np.array([str(v) for v in labels], dtype=object)
    kind = np.where(lab == natural, "natural", np.where(lab == ambiguous, "ambiguous", "rendition"))
    present = sorted(set(kind.tolist()))
    if "natural" not in present or "rendition" not in present:
        raise ClipcompError(f"{where}: one class only ({', '.join(present)}); the classifiers need natural and "
                            f"rendition examples (natural label {natural!r})")
    parts = _splits(kind, seed)
    need = min_calibration_positives(target_precision)
    out = {}
    for name in ("natural", "rendition"):
        y = (kind == name).astype(int)
        n_cal = int((y[parts == 1] == 1).sum())
        if n_cal < need:
            raise ClipcompError(f"{where}: the calibration split has {n_cal} {name} items, fewer than the {need} "
                                f"a 95 % bound at precision {target_precision} needs; label more items (≥ "
                                f"{4 * need} {name}) or lower --target-precision")
        if len(np.unique(y[parts == 0])) < 2:
            raise ClipcompError(f"{where}: too few examples to fit the {name}-vs-rest classifier")
        model = LogisticRegressionCV(Cs=8, cv=3, max_iter=2000, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            model.fit(x[parts == 0], y[parts == 0])
        clf = OneVsRest(name, model, (np.zeros(0), np.zeros(0)), (np.zeros(0), np.zeros(0)))
        clf.calib = (clf.proba(x[parts == 1]), y[parts == 1])
        clf.test = (clf.proba(x[parts == 2]), y[parts == 2])
        clf.info = {"C": float(np.ravel(model.C_)[0]), "n_fit": int((parts == 0).sum()),
                    "n_calibration": int((parts == 1).sum()), "n_test": int((parts == 2).sum()),
                    "labelled_counts": {k: int((kind == k).sum()) for k in ("natural", "rendition", "ambiguous")},
                    "target_precision": target_precision}
        out[name] = clf
    return out


def precision_at(tpr: float, fpr: float, prevalence: float) -> float:
    num = prevalence * tpr
    den = num + (1 - prevalence) * fpr
    return float(num / den) if den > 0 else float("nan")


def _rates(scores: np.ndarray, y: np.ndarray, threshold: float) -> dict:
    flag = scores >= threshold
    tp, fp = int((flag & (y == 1)).sum()), int((flag & (y == 0)).sum())
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    return {"tp": tp, "fp": fp, "n_pos": n_pos, "n_neg": n_neg, "tpr": tp / max(1, n_pos),
            "fpr": fp / max(1, n_neg)}


def calibrate_at_prevalence(scores: np.ndarray, y: np.ndarray, target: float, prevalence: float) -> float:
    """Smallest threshold whose precision at `prevalence` — from TPR's Wilson lower and FPR's Wilson upper bound
    on the calibration split — reaches `target`."""
    order = np.argsort(-scores, kind="stable")
    ps, ys = scores[order], y[order]
    tp, fp = np.cumsum(ys == 1), np.cumsum(ys == 0)
    n_pos, n_neg = max(1, int((y == 1).sum())), max(1, int((y == 0).sum()))

    def bound(k, n, lower):
        p = k / n
        centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
        half = Z * np.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
        return centre - half if lower else centre + half

    tpr_lo, fpr_hi = bound(tp, n_pos, True), bound(fp, n_neg, False)
    num = prevalence * tpr_lo
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = num / (num + (1 - prevalence) * fpr_hi)
    last = np.r_[ps[1:] != ps[:-1], True]  # never split tied scores
    ok = np.flatnonzero(last & (prec >= target) & (tp > 0))
    if ok.size == 0:
        best = float(np.nanmax(np.where(last, prec, np.nan))) if last.any() else float("nan")
        raise ClipcompError(f"no threshold reaches precision {target} at prevalence {prevalence:.3f} on the "
                            f"{len(ys)} calibration items (best {best:.3f}); lower --target-precision or label "
                            "more items")
    return float(ps[ok[-1]])


def rogan_gladen(q: float, tpr: float, fpr: float) -> float:
    if tpr - fpr <= 0:
        return float("nan")
    return float(np.clip((q - fpr) / (tpr - fpr), 0.0, 1.0))


def estimate_prevalence(clf: OneVsRest, corpus_scores: np.ndarray, threshold: float | None = None) -> float:
    """The corpus's share of the classifier's positive class, Rogan–Gladen corrected at `threshold` (default: the
    calibration split's Youden-optimal threshold, where TPR − FPR — the estimator's denominator — is largest)."""
    if threshold is None:
        ps, y = clf.calib
        cand = np.unique(ps)
        if cand.size > 512:
            cand = np.quantile(ps, np.linspace(0.002, 0.998, 512))
        youden = [(_rates(ps, y, t)["tpr"] - _rates(ps, y, t)["fpr"], t) for t in cand]
        threshold = max(youden)[1]
    r = _rates(*clf.test, threshold)
    q = float((corpus_scores >= threshold).mean()) if corpus_scores.size else float("nan")
    return rogan_gladen(q, r["tpr"], r["fpr"])


def assess(clf: OneVsRest, corpus_scores: np.ndarray, target: float, prevalence, n_boot: int = 2000,
           seed: int = 0) -> dict:
    """Threshold at the corpus prevalence, held-out precision (at that prevalence), recall and FPR with CIs and
    counts, the flagged share (the paper's lower bound) and the Rogan–Gladen estimate with a bootstrap CI."""
    if isinstance(prevalence, str):
        if prevalence not in PREVALENCE_MODES:
            raise ClipcompError(f"--prevalence {prevalence!r}: expected corpus, labelled or a number in (0, 1)")
        if prevalence == "labelled":
            y = clf.calib[1]
            pi, how = float(y.mean()), "labelled set (assumed drawn from the corpus)"
        else:
            pi, how = estimate_prevalence(clf, corpus_scores), "corpus estimate (Rogan–Gladen, Youden threshold)"
    else:
        pi, how = float(prevalence), "given"
        if not 0 < pi < 1:
            raise ClipcompError(f"--prevalence must be in (0, 1) (got {prevalence})")
    pi_used = float(np.clip(pi, 1e-4, 1 - 1e-4)) if math.isfinite(pi) else 0.5
    thr = calibrate_at_prevalence(*clf.calib, target, pi_used)
    r = _rates(*clf.test, thr)
    rng = np.random.default_rng([seed, 2_718])
    tprs = rng.binomial(r["n_pos"], r["tpr"], n_boot) / max(1, r["n_pos"])
    fprs = rng.binomial(r["n_neg"], r["fpr"], n_boot) / max(1, r["n_neg"])
    with np.errstate(invalid="ignore", divide="ignore"):
        precs = pi_used * tprs / (pi_used * tprs + (1 - pi_used) * fprs)
    precs = precs[np.isfinite(precs)]
    flags = corpus_scores >= thr
    n = int(flags.size)
    q = float(flags.mean()) if n else float("nan")
    qs = rng.binomial(n, q, n_boot) / max(1, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        est = np.clip((qs - fprs) / (tprs - fprs), 0, 1)
    est = est[((tprs - fprs) > 0) & np.isfinite(est)]
    return {"classifier": f"{clf.name}-vs-rest", "threshold": thr, "prevalence": pi, "prevalence_source": how,
            "precision_at_prevalence": precision_at(r["tpr"], r["fpr"], pi_used),
            "precision_ci": (np.percentile(precs, [2.5, 97.5]).tolist() if precs.size else [float("nan")] * 2),
            "recall": r["tpr"], "recall_ci": list(wilson(r["tp"], r["n_pos"])), "fpr": r["fpr"],
            "fpr_ci": list(wilson(r["fp"], r["n_neg"])), "test_positives": r["n_pos"],
            "test_negatives": r["n_neg"], "n_calibration": int(clf.calib[1].size), "n": n,
            "flagged_fraction": q, "flagged_ci": list(wilson(int(flags.sum()), n)),
            "lower_bound": q, "corrected_fraction": rogan_gladen(q, r["tpr"], r["fpr"]),
            "corrected_ci": (np.percentile(est, [2.5, 97.5]).tolist() if est.size else [float("nan")] * 2),
            **clf.info}


def contamination_report(classifiers: dict[str, OneVsRest], corpus: np.ndarray, target: float | None = None,
                         prevalence="corpus", n_boot: int = 2000, seed: int = 0) -> tuple[dict, dict]:
    """({natural: assessment, rendition: assessment}, {clean_natural, clean_rendition masks})."""
    out, masks = {}, {}
    for name, clf in classifiers.items():
        t = target if target is not None else clf.info["target_precision"]
        scores = clf.proba(corpus)
        out[name] = assess(clf, scores, t, prevalence, n_boot, seed)
        masks[f"clean_{name}"] = scores >= out[name]["threshold"]
    return out, masks


def clean_test_set(classifiers: dict[str, OneVsRest], assessments: dict, x: np.ndarray, domain: str) -> np.ndarray:
    """Keep-mask for a test set of `domain` ("natural" or "rendition"): items the other domain's classifier flags
    (at its corpus threshold) are removed."""
    other = "rendition" if domain == "natural" else "natural"
    return classifiers[other].proba(x) < assessments[other]["threshold"]
