"""A calibrated natural-vs-rendition classifier on embeddings, and the contamination of a corpus
(Mayilvahanan et al., ICLR 2025).

Fit: scikit-learn logistic regression (C chosen by cross-validation) on half of the labelled embeddings; the
decision threshold is calibrated on a quarter to the smallest value whose precision's Wilson 95% lower bound
reaches the target (the paper's "strict" threshold: 0.98), so the precision holds beyond the calibration
sample; precision, recall and the false-positive rate at that threshold are measured
on the last quarter (held out from both) and reported with Wilson 95% intervals.
Apply: per-item probabilities and flags; the flagged fraction q; the rendition fraction corrected for the
classifier's measured error rates (Rogan–Gladen: π = (q − FPR)/(TPR − FPR), clipped to [0, 1]) with a
bootstrap 95% CI that resamples the corpus and the held-out test items; clean single-domain subsets; and a
caption-keyword baseline beside it.
"""

from __future__ import annotations

import os
import pickle
import re

import numpy as np
import pyarrow as pa

from clipcomp.errors import ClipcompError
from clipcomp.io import write_parquet

KEYWORDS = ("sketch", "drawing", "drawn", "painting", "painted", "cartoon", "illustration", "clipart", "clip art",
            "doodle", "vector", "icon", "render", "rendering", "anime", "comic", "art", "artwork", "graphic",
            "watercolor", "watercolour", "pencil", "logo")


def _wilson(k: int, n: int) -> list[float]:
    """Wilson 95% interval of k successes in n (SciPy's binomtest; NaN for n = 0)."""
    if n == 0:
        return [float("nan"), float("nan")]
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=0.95, method="wilson")
    return [float(ci.low), float(ci.high)]


def calibrate_threshold(p: np.ndarray, y: np.ndarray, target: float, conservative: bool = True) -> float:
    """Smallest threshold τ (among the scores) whose precision(p ≥ τ) reaches the target — with `conservative`,
    the Wilson 95% lower bound of that precision must reach it, so that the precision holds on new data rather
    than only on the calibration sample; error when no threshold reaches it."""
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    n = np.arange(1, len(ys) + 1)
    precision = tp / n
    bound = precision
    if conservative:
        z = 1.959963984540054
        centre = (precision + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(precision * (1 - precision) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        bound = centre - half
    # a threshold must not split tied scores: only the last index of each run of equal scores is a cut point
    last = np.r_[ps[1:] != ps[:-1], True]
    ok = np.flatnonzero(last & (bound >= target) & (tp > 0))
    if ok.size == 0:
        best = float(np.max(bound[last])) if last.any() else float("nan")
        what = "whose 95% lower bound reaches" if conservative else "reaches"
        raise ClipcompError(f"no threshold has a precision {what} {target} on the {len(ys)} calibration items "
                            f"(best {best:.3f}); lower --target-precision or give more/cleaner labelled data")
    return float(ps[ok[-1]])


class DomainClassifier:
    def __init__(self, model, threshold: float, stats: dict) -> None:
        self.model, self.threshold, self.stats = model, threshold, stats

    def proba(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(np.asarray(x, np.float32))[:, 1]


def fit_classifier(x: np.ndarray, y: np.ndarray, target_precision: float = 0.98, seed: int = 0,
                   where: str = "labelled data") -> DomainClassifier:
    from sklearn.linear_model import LogisticRegressionCV

    y = np.asarray(y).astype(int)
    if len(np.unique(y)) < 2:
        raise ClipcompError(f"{where}: one class only ({'rendition' if y.size and y[0] else 'natural'}); the "
                            "classifier needs natural and rendition examples")
    if not 0 < target_precision <= 1:
        raise ClipcompError(f"--target-precision must be in (0, 1] (got {target_precision})")
    rng = np.random.default_rng([seed, 3_141])
    parts = np.zeros(len(y), int)  # 0 fit, 1 calibrate, 2 test — stratified by class
    for c in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == c))
        a, b = int(len(idx) * 0.5), int(len(idx) * 0.75)
        parts[idx[a:b]], parts[idx[b:]] = 1, 2
    for p_, name in ((0, "fitting"), (1, "calibration"), (2, "test")):
        if len(np.unique(y[parts == p_])) < 2:
            raise ClipcompError(f"{where}: too few examples of one class for a {name} split "
                                f"({int((y == 0).sum())} natural, {int((y == 1).sum())} rendition)")
    import warnings

    model = LogisticRegressionCV(Cs=8, cv=3, max_iter=2000, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # scikit-learn's announced default changes; we set none
        model.fit(x[parts == 0], y[parts == 0])
    clf = DomainClassifier(model, 0.5, {})
    clf.threshold = calibrate_threshold(clf.proba(x[parts == 1]), y[parts == 1], target_precision)
    pt, yt = clf.proba(x[parts == 2]), y[parts == 2]
    flag = pt >= clf.threshold
    tp, fp = int((flag & (yt == 1)).sum()), int((flag & (yt == 0)).sum())
    n_pos, n_neg = int((yt == 1).sum()), int((yt == 0).sum())
    clf.stats = {"threshold": clf.threshold, "target_precision": target_precision, "C": float(np.ravel(model.C_)[0]),
                 "n_fit": int((parts == 0).sum()), "n_calibration": int((parts == 1).sum()),
                 "n_test": int((parts == 2).sum()), "test_positives": n_pos, "test_negatives": n_neg,
                 "precision": tp / max(1, tp + fp), "precision_ci": _wilson(tp, tp + fp),
                 "recall": tp / max(1, n_pos), "recall_ci": _wilson(tp, n_pos),
                 "fpr": fp / max(1, n_neg), "fpr_ci": _wilson(fp, n_neg), "tp": tp, "fp": fp}
    return clf


def corrected_fraction(q: float, tpr: float, fpr: float) -> float:
    """Rogan–Gladen estimate of the true positive fraction from the flagged fraction q."""
    if tpr - fpr <= 0:
        return float("nan")
    return float(np.clip((q - fpr) / (tpr - fpr), 0.0, 1.0))


def contamination(flags: np.ndarray, stats: dict, n_boot: int = 2000, seed: int = 0) -> dict:
    """Flagged fraction, corrected fraction and its bootstrap 95% CI (corpus and test-set error rates resampled)."""
    flags = np.asarray(flags, bool)
    q = float(flags.mean()) if flags.size else float("nan")
    tpr, fpr = stats["recall"], stats["fpr"]
    rng = np.random.default_rng([seed, 2_718])
    n, n_pos, n_neg = flags.size, stats["test_positives"], stats["test_negatives"]
    qs = rng.binomial(n, q, n_boot) / n
    tprs = rng.binomial(n_pos, tpr, n_boot) / max(1, n_pos)
    fprs = rng.binomial(n_neg, fpr, n_boot) / max(1, n_neg)
    denom = tprs - fprs
    with np.errstate(divide="ignore", invalid="ignore"):
        est = np.clip((qs - fprs) / denom, 0.0, 1.0)
    est = est[(denom > 0) & np.isfinite(est)]
    lo, hi = (np.percentile(est, [2.5, 97.5]).tolist() if est.size else [float("nan")] * 2)
    return {"n": n, "flagged_fraction": q, "flagged_ci": _wilson(int(flags.sum()), n),
            "corrected_fraction": corrected_fraction(q, tpr, fpr), "corrected_ci": [lo, hi]}


def _keyed(table_path: str, keys: list, values: list) -> dict:
    """id → value, with relative ids also under their path resolved against the table's folder (as embedded)."""
    root = os.path.dirname(os.path.abspath(table_path))
    out = {}
    for k, v in zip(keys, values, strict=True):
        k = str(k)
        out[k] = v
        if not os.path.isabs(k):
            out[os.path.join(root, k)] = v
    return out


def keyword_flags(captions: list[str]) -> np.ndarray:
    pat = re.compile(r"\b(" + "|".join(re.escape(k) for k in KEYWORDS) + r")s?\b", re.I)
    return np.array([bool(pat.search(c or "")) for c in captions])


FIT_MODES = ("two-classifiers", "single")


def domains_fit(emb: str, labels: str, out: str, natural: str = "natural", id_column: str = "id",
                domain_column: str = "domain", target_precision: float = 0.98, seed: int = 0,
                force: bool = False, mode: str = "two-classifiers", ambiguous: str = "ambiguous") -> dict:
    """Fit on embeddings whose ids have a domain in `labels`. `two-classifiers` (default, the paper's method;
    clipcomp.similarity.contamination): natural-vs-rest and rendition-vs-rest, thresholds set later at the corpus's
    prevalence; `single`: one natural-vs-rendition classifier calibrated on the labelled set (clipcomp ≤ 0.3)."""
    if mode not in FIT_MODES:
        raise ClipcompError(f"--mode {mode!r}: expected one of {', '.join(FIT_MODES)}")
    from clipcomp.io import atomic_write_json, check_output_path, prepare_output, read_table
    from clipcomp.similarity.embeddings import open_embeddings

    check_output_path(out)
    e = open_embeddings(emb)
    lt = read_table(labels)
    for c in (id_column, domain_column):
        if c not in lt.column_names:
            raise ClipcompError(f"{labels}: no column {c!r} (columns: {', '.join(lt.column_names)})")
    lab = _keyed(labels, lt.column(id_column).to_pylist(), [str(v) for v in lt.column(domain_column).to_pylist()])
    ids, mat = e.load()
    known = np.array([i in lab for i in ids])
    if not known.any():
        raise ClipcompError(f"{labels}: none of its {id_column!r} values matches an id of {emb}")
    known_labels = [lab[i] for i in np.array(ids, dtype=object)[known]]
    settings = {"emb": os.path.abspath(emb), "labels": os.path.abspath(labels), "natural": natural,
                "target_precision": target_precision, "seed": seed, "mode": mode, "ambiguous": ambiguous}
    if mode == "two-classifiers":
        from clipcomp.similarity.contamination import fit_one_vs_rest

        clfs = fit_one_vs_rest(mat[known], known_labels, natural, ambiguous, target_precision, seed, where=labels)
        prepare_output(out, "domains fit", settings, force=force, markers=("classifier.pkl",))
        with open(os.path.join(out, "classifier.pkl"), "wb") as f:
            pickle.dump({"classifiers": clfs, "model_identity": e.meta.get("model_identity"), "dim": e.dim,
                         "target_precision": target_precision}, f)
        stats = {"mode": mode, "n_labelled": int(known.sum()), "n_unlabelled": int((~known).sum()),
                 **{name: c.info for name, c in clfs.items()},
                 "note": "thresholds are set by `domains apply` at the prevalence of the corpus"}
        atomic_write_json(os.path.join(out, "calibration.json"), stats)
        return stats
    y = np.array([v != natural for v in known_labels])
    clf = fit_classifier(mat[known], y, target_precision, seed, where=labels)
    prepare_output(out, "domains fit", settings, force=force, markers=("classifier.pkl",))
    with open(os.path.join(out, "classifier.pkl"), "wb") as f:
        pickle.dump({"model": clf.model, "threshold": clf.threshold, "stats": clf.stats,
                     "model_identity": e.meta.get("model_identity"), "dim": e.dim}, f)
    stats = {"mode": mode, **clf.stats, "n_labelled": int(known.sum()), "n_unlabelled": int((~known).sum())}
    atomic_write_json(os.path.join(out, "calibration.json"), stats)
    return stats


def _load_pickle(path: str) -> dict:
    p = os.path.join(path, "classifier.pkl") if os.path.isdir(path) else path
    if not os.path.exists(p):
        raise ClipcompError(f"{path}: no classifier.pkl (run `clipcomp domains fit`)")
    try:
        with open(p, "rb") as f:
            return pickle.load(f)  # noqa: S301 - a file this tool wrote
    except Exception as exc:  # noqa: BLE001
        raise ClipcompError(f"{p}: unreadable classifier ({type(exc).__name__})") from None


def load_classifier(path: str) -> tuple[DomainClassifier, dict]:
    p = os.path.join(path, "classifier.pkl") if os.path.isdir(path) else path
    if not os.path.exists(p):
        raise ClipcompError(f"{path}: no classifier.pkl (run `clipcomp domains fit`)")
    try:
        with open(p, "rb") as f:
            obj = pickle.load(f)  # noqa: S301 - a file this tool wrote
    except Exception as exc:  # noqa: BLE001
        raise ClipcompError(f"{p}: unreadable classifier ({type(exc).__name__})") from None
    return DomainClassifier(obj["model"], obj["threshold"], obj["stats"]), obj


def domains_apply(classifier: str, emb: str, out: str, captions: str | None = None, text_column: str = "caption",
                  id_column: str = "image", n_boot: int = 2000, seed: int = 0, force: bool = False,
                  prevalence: str | float = "corpus") -> dict:
    """Probabilities, flags, the contamination estimate and clean subsets for a corpus of embeddings (for a
    two-classifier fit: thresholds at the corpus prevalence, see clipcomp.similarity.contamination)."""
    from clipcomp.io import atomic_write_json, check_output_path, prepare_output
    from clipcomp.similarity.embeddings import open_embeddings

    check_output_path(out)
    obj = _load_pickle(classifier)
    e = open_embeddings(emb)
    if "classifiers" in obj:
        return _apply_two(obj, classifier, emb, e, out, prevalence, n_boot, seed, force,
                          (captions, text_column, id_column))
    clf, obj = load_classifier(classifier)
    _check_classifier(obj, e, emb, classifier)
    prepare_output(out, "domains apply", {"classifier": os.path.abspath(classifier), "emb": os.path.abspath(emb),
                                          "captions": captions, "seed": seed}, force=force,
                   markers=("items.parquet",))
    ids, mat = e.load()
    p = clf.proba(mat)
    flags = p >= clf.threshold
    cols = {"id": pa.array(ids, pa.string()), "p_rendition": pa.array(p.astype(np.float64)),
            "rendition": pa.array(flags)}
    report = {"classifier": clf.stats, **contamination(flags, clf.stats, n_boot, seed)}
    if captions:
        kw = _keyword_baseline(captions, text_column, id_column, ids)
        cols["keyword_rendition"] = pa.array(kw)
        report["keyword_baseline"] = {"flagged_fraction": float(kw.mean()), "keywords": list(KEYWORDS)}
    write_parquet(pa.table(cols), os.path.join(out, "items.parquet"))
    arr = np.array(ids, dtype=object)
    write_parquet(pa.table({"id": pa.array(arr[~flags].tolist(), pa.string())}), os.path.join(out, "natural.parquet"))
    write_parquet(pa.table({"id": pa.array(arr[flags].tolist(), pa.string())}), os.path.join(out, "rendition.parquet"))
    atomic_write_json(os.path.join(out, "report.json"), report)
    return report


def _check_classifier(obj: dict, e, emb: str, classifier: str) -> None:
    if obj.get("dim") != e.dim or (obj.get("model_identity") and e.meta.get("model_identity")
                                   and obj["model_identity"] != e.meta["model_identity"]):
        raise ClipcompError(f"{emb}: embeddings of another model or dimension than the classifier {classifier}")


def _keyword_baseline(captions: str, text_column: str, id_column: str, ids: list[str]) -> np.ndarray:
    from clipcomp.io import read_table

    t = read_table(captions)
    if id_column not in t.column_names or text_column not in t.column_names:
        raise ClipcompError(f"{captions}: needs columns {id_column!r} and {text_column!r} "
                            f"(columns: {', '.join(t.column_names)})")
    cap = _keyed(captions, t.column(id_column).to_pylist(), t.column(text_column).to_pylist())
    return keyword_flags([cap.get(i, "") or "" for i in ids])


def _apply_two(obj: dict, classifier: str, emb: str, e, out: str, prevalence, n_boot: int, seed: int,
               force: bool, caption_args: tuple) -> dict:
    from clipcomp.io import atomic_write_json, prepare_output
    from clipcomp.similarity.contamination import contamination_report

    _check_classifier(obj, e, emb, classifier)
    prepare_output(out, "domains apply", {"classifier": os.path.abspath(classifier), "emb": os.path.abspath(emb),
                                          "prevalence": prevalence, "seed": seed}, force=force,
                   markers=("items.parquet",))
    ids, mat = e.load()
    clfs = obj["classifiers"]
    rep, masks = contamination_report(clfs, mat, obj.get("target_precision"), prevalence, n_boot, seed)
    cols = {"id": pa.array(ids, pa.string())}
    for name, clf in clfs.items():
        cols[f"p_{name}"] = pa.array(clf.proba(mat).astype(np.float64))
        cols[f"clean_{name}"] = pa.array(masks[f"clean_{name}"])
    write_parquet(pa.table(cols), os.path.join(out, "items.parquet"))
    arr = np.array(ids, dtype=object)
    for name in clfs:
        write_parquet(pa.table({"id": pa.array(arr[masks[f"clean_{name}"]].tolist(), pa.string())}),
                      os.path.join(out, f"{name}.parquet"))
    r = rep["rendition"]
    report = {"mode": "two-classifiers", "n": len(ids), "classifiers": rep,
              "lower_bound": r["lower_bound"], "corrected_fraction": r["corrected_fraction"],
              "corrected_ci": r["corrected_ci"], "flagged_fraction": r["flagged_fraction"]}
    if caption_args[0]:
        kw = _keyword_baseline(caption_args[0], caption_args[1], caption_args[2], ids)
        report["keyword_baseline"] = {"flagged_fraction": float(kw.mean()), "keywords": list(KEYWORDS)}
    atomic_write_json(os.path.join(out, "report.json"), report)
    return report
