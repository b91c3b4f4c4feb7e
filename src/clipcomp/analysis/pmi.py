"""Accuracy vs PMI: join per-item model results with ConceptStats and measure the dependence.

Numbers only (the report and plot are in `report.py`): Pearson and Spearman r with seeded bootstrap 95% CIs,
accuracy in equal-count PMI bins with Wilson 95% intervals, the top-vs-bottom-5% accuracy gap, the partial
correlation controlling for the concepts' own frequencies, and counts of unseen pairs. Items whose pair was
never seen together (PMI = −inf without smoothing) or whose concepts are not in the vocabulary are counted
and reported apart, never silently mixed in.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from scipy import stats as sps

from clipcomp.errors import ClipcompError
from clipcomp.stats import ConceptStats


# ------------------------------------------------------------------------------------------ joining
def attach_pmi(items: pa.Table, stats: ConceptStats, pair_columns: tuple[str, str] | None = None,
               text_column: str | None = None) -> pa.Table:
    """Add `pmi`, `npmi`, `pair_count`, `n_pairs`, `n_unseen`, `log_freq_a`, `log_freq_b`, `pmi_status`.

    Explicit pair columns give one pair per item. A text column gives the caption's concepts (extracted with
    the same settings as the statistics) and the item's PMI is the mean over its concept pairs seen in the
    corpus (as in Qu & Xie); `log_freq_a/b` are then the mean and the minimum log count of its concepts.
    """
    n = items.num_rows
    pmi = np.full(n, np.nan)
    npmi = np.full(n, np.nan)
    pair_count = np.zeros(n, np.int64)
    n_pairs = np.zeros(n, np.int64)
    n_unseen = np.zeros(n, np.int64)
    fa = np.full(n, np.nan)
    fb = np.full(n, np.nan)
    status = []
    if pair_columns:
        a_col, b_col = pair_columns
        for c in (a_col, b_col):
            if c not in items.column_names:
                raise ClipcompError(f"results have no column {c!r} (columns: {', '.join(items.column_names)})")
        for i, (a, b) in enumerate(zip(items.column(a_col).to_pylist(), items.column(b_col).to_pylist(),
                                       strict=True)):
            if a is None or b is None or str(a) not in stats or str(b) not in stats:
                status.append("unknown_concept")
                continue
            p = stats.pair(str(a), str(b))
            n_pairs[i] = 1
            pair_count[i] = p.count
            fa[i], fb[i] = math.log(stats.count(p.a)), math.log(stats.count(p.b))
            if p.count == 0 and stats.smoothing == 0:
                n_unseen[i] = 1
                status.append("unseen_pair")
                continue
            pmi[i], npmi[i] = p.pmi, p.npmi
            status.append("ok")
    elif text_column:
        if text_column not in items.column_names:
            raise ClipcompError(f"results have no column {text_column!r} (columns: {', '.join(items.column_names)})")
        for i, text in enumerate(items.column(text_column).to_pylist()):
            concepts = stats.concepts_in(text or "")
            if len(concepts) < 2:
                status.append("fewer_than_two_concepts")
                continue
            counts = [stats.count(c) for c in concepts]
            fa[i], fb[i] = float(np.mean(np.log(counts))), float(np.min(np.log(counts)))
            vals, nvals, cnts = [], [], []
            for x, y in itertools.combinations(concepts, 2):
                p = stats.pair(x, y)
                n_pairs[i] += 1
                if p.count == 0 and stats.smoothing == 0:
                    n_unseen[i] += 1
                    continue
                vals.append(p.pmi)
                nvals.append(p.npmi)
                cnts.append(p.count)
            if not vals:
                status.append("unseen_pair")
                continue
            pmi[i], npmi[i], pair_count[i] = np.mean(vals), np.mean(nvals), int(np.min(cnts))
            status.append("ok")
    else:
        raise ClipcompError("give the concept pair columns (--pairs A,B) or a text column (--text-column)")
    out = items
    for name, arr in (("pmi", pmi), ("npmi", npmi), ("pair_count", pair_count), ("n_pairs", n_pairs),
                      ("n_unseen", n_unseen), ("log_freq_a", fa), ("log_freq_b", fb)):
        if name in out.column_names:
            out = out.drop_columns([name])
        out = out.append_column(name, pa.array(arr))
    if "pmi_status" in out.column_names:
        out = out.drop_columns(["pmi_status"])
    return out.append_column("pmi_status", pa.array(status, pa.string()))


# ------------------------------------------------------------------------------------------ statistics
def wilson_interval(successes: float, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson 95% interval of a proportion (SciPy's binomtest for whole counts; the same formula otherwise)."""
    if n == 0:
        return (float("nan"), float("nan"))
    if float(successes).is_integer() and abs(z - 1.959963984540054) < 1e-12:
        ci = sps.binomtest(int(successes), n).proportion_ci(confidence_level=0.95, method="wilson")
        return (float(ci.low), float(ci.high))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(sps.pearsonr(x, y).statistic)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(sps.spearmanr(x, y).statistic)


def partial_correlation(x: np.ndarray, y: np.ndarray, covariates: np.ndarray) -> float:
    """Pearson r of the residuals of x and y after least-squares regression on [1, covariates]."""
    design = np.column_stack([np.ones(x.size), covariates])
    rx = x - design @ np.linalg.lstsq(design, x, rcond=None)[0]
    ry = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    return _pearson(rx, ry)


def top_bottom_gap(x: np.ndarray, y: np.ndarray, fraction: float = 0.05) -> tuple[float, float, float, int]:
    """(accuracy of the top `fraction` of items by x) − (bottom fraction); returns gap, top, bottom, k."""
    k = max(1, int(math.floor(fraction * x.size + 0.5)))  # round half up: 5% of 210 items is 11
    order = np.argsort(x, kind="stable")
    bottom, top = y[order[:k]].mean(), y[order[-k:]].mean()
    return float(top - bottom), float(top), float(bottom), k


def equal_count_bins(x: np.ndarray, y: np.ndarray, n_bins: int) -> list[dict]:
    """Sort by x and cut into n_bins groups of (nearly) equal size; accuracy with Wilson 95% CI per bin."""
    order = np.argsort(x, kind="stable")
    out = []
    for b, idx in enumerate(np.array_split(order, min(n_bins, x.size))):
        if idx.size == 0:
            continue
        succ = int(y[idx].sum())
        lo, hi = wilson_interval(succ, idx.size)
        out.append({"bin": b, "n": int(idx.size), "pmi_min": float(x[idx].min()), "pmi_max": float(x[idx].max()),
                    "pmi_mean": float(x[idx].mean()), "accuracy": succ / idx.size, "ci_low": lo, "ci_high": hi})
    return out


def _bootstrap(stat, arrays: list[np.ndarray], n_boot: int, seed: int) -> tuple[float, float]:
    if n_boot <= 0 or arrays[0].size < 3:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    n = arrays[0].size
    vals = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        v = stat(*[a[idx] for a in arrays])
        if np.isfinite(v):
            vals.append(v)
    if not vals:
        return (float("nan"), float("nan"))
    return float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))


@dataclass
class PMIAnalysis:
    n_items: int
    n_used: int
    excluded: dict[str, int]
    accuracy: float
    pearson: float
    pearson_ci: tuple[float, float]
    spearman: float
    spearman_ci: tuple[float, float]
    partial_r: float
    partial_r_ci: tuple[float, float]
    gap: float
    gap_ci: tuple[float, float]
    top_accuracy: float
    bottom_accuracy: float
    tail_k: int
    bins: list[dict]
    bin_pearson: float
    unseen_accuracy: float | None
    group_level: dict | None = None
    settings: dict = field(default_factory=dict)
    accuracy_ci: tuple[float, float] = (float("nan"), float("nan"))
    chance: float | None = None
    at_chance: bool = False

    def set_chance(self, chance: float | None) -> None:
        """Record the guessing accuracy; at chance (its Wilson CI covers it), r and gaps measure only noise."""
        self.chance = chance
        lo, hi = self.accuracy_ci
        self.at_chance = chance is not None and math.isfinite(lo) and lo <= chance <= hi

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        for k in ("pearson_ci", "spearman_ci", "partial_r_ci", "gap_ci", "accuracy_ci"):
            d[k] = list(d[k])
        return d


def analyze(pmi: np.ndarray, correct: np.ndarray, freq: np.ndarray | None = None,
            status: list[str] | None = None, groups: list | None = None, n_bins: int = 10,
            tail: float = 0.05, n_boot: int = 1000, seed: int = 0) -> PMIAnalysis:
    """The analysis proper, on plain arrays (items with a finite PMI are used)."""
    pmi = np.asarray(pmi, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if pmi.shape != correct.shape:
        raise ClipcompError("pmi and correctness have different lengths")
    n_items = pmi.size
    used = np.isfinite(pmi)
    excluded: dict[str, int] = {}
    if status is not None:
        for s, u in zip(status, used, strict=True):
            if not u:
                excluded[s] = excluded.get(s, 0) + 1
    elif (~used).any():
        excluded["no_pmi"] = int((~used).sum())
    unseen = np.array([s == "unseen_pair" for s in status]) if status is not None else np.zeros(n_items, bool)
    x, y = pmi[used], correct[used]
    if x.size < 3:
        raise ClipcompError(f"only {x.size} item(s) have a PMI; need at least 3 for an analysis "
                            f"(excluded: {excluded or 'none'})")
    cov = freq[used] if freq is not None else None
    if cov is not None:
        cov = np.asarray(cov, dtype=np.float64)
        cov = cov.reshape(cov.shape[0], -1)
        finite = np.isfinite(cov).all(axis=1)
        if not finite.all():
            cov = None
    gap, top, bottom, k = top_bottom_gap(x, y, tail)
    bins = equal_count_bins(x, y, n_bins)
    bin_r = _pearson(np.array([b["pmi_mean"] for b in bins]), np.array([b["accuracy"] for b in bins]))

    def partial(xx, yy, cc):
        return partial_correlation(xx, yy, cc)

    result = PMIAnalysis(
        n_items=n_items, n_used=int(x.size), excluded=excluded, accuracy=float(y.mean()),
        pearson=_pearson(x, y), pearson_ci=_bootstrap(_pearson, [x, y], n_boot, seed),
        spearman=_spearman(x, y), spearman_ci=_bootstrap(_spearman, [x, y], n_boot, seed + 1),
        partial_r=partial(x, y, cov) if cov is not None else float("nan"),
        partial_r_ci=_bootstrap(partial, [x, y, cov], n_boot, seed + 2) if cov is not None else
        (float("nan"), float("nan")),
        gap=gap, gap_ci=_bootstrap(lambda a, b: top_bottom_gap(a, b, tail)[0], [x, y], n_boot, seed + 3),
        top_accuracy=top, bottom_accuracy=bottom, tail_k=k, bins=bins, bin_pearson=bin_r,
        unseen_accuracy=float(correct[unseen].mean()) if unseen.any() else None,
        settings={"n_bins": n_bins, "tail": tail, "n_boot": n_boot, "seed": seed},
        accuracy_ci=wilson_interval(float(y.sum()), int(y.size)),
    )
    if groups is not None:
        result.group_level = _group_level(np.asarray(groups, dtype=object)[used], x, y)
    return result


def _group_level(groups: np.ndarray, x: np.ndarray, y: np.ndarray) -> dict | None:
    """When several items share a concept pair: r between the pair's PMI and the pair's accuracy."""
    keys, inv = np.unique(groups.astype(str), return_inverse=True)
    if keys.size == groups.size or keys.size < 3:
        return None
    acc = np.bincount(inv, weights=y) / np.bincount(inv)
    gx = np.bincount(inv, weights=x) / np.bincount(inv)
    return {"n_groups": int(keys.size), "pearson": _pearson(gx, acc), "spearman": _spearman(gx, acc)}


def analyze_given_pmi(items: pa.Table, pmi_column: str = "pmi", correct_column: str = "correct",
                      n_bins: int = 10, tail: float = 0.05, n_boot: int = 1000, seed: int = 0
                      ) -> tuple[pa.Table, PMIAnalysis]:
    """The analysis on PMI values already in the results (e.g. from another tool); frequency covariates come
    from `log_freq_a`/`log_freq_b` or `count_a`/`count_b` columns when present."""
    for c in (pmi_column, correct_column):
        if c not in items.column_names:
            raise ClipcompError(f"results have no column {c!r} (columns: {', '.join(items.column_names)})")
    pmi = np.asarray(items.column(pmi_column).to_numpy(zero_copy_only=False), dtype=np.float64)
    correct = np.asarray(items.column(correct_column).to_numpy(zero_copy_only=False), dtype=np.float64)
    freq = None
    for a, b, log in (("log_freq_a", "log_freq_b", False), ("count_a", "count_b", True)):
        if a in items.column_names and b in items.column_names:
            fa = np.asarray(items.column(a).to_numpy(zero_copy_only=False), dtype=np.float64)
            fb = np.asarray(items.column(b).to_numpy(zero_copy_only=False), dtype=np.float64)
            freq = np.log(np.column_stack([fa, fb])) if log else np.column_stack([fa, fb])
            break
    status = ["ok" if np.isfinite(v) else ("unseen_pair" if v == -np.inf else "no_pmi") for v in pmi]
    res = analyze(pmi, correct, freq, status, None, n_bins, tail, n_boot, seed)
    res.settings.update({"correct_column": correct_column, "pmi_column": pmi_column})
    return items, res


def analyze_results(items: pa.Table, stats: ConceptStats, correct_column: str = "correct",
                    pair_columns: tuple[str, str] | None = None, text_column: str | None = None,
                    n_bins: int = 10, tail: float = 0.05, n_boot: int = 1000, seed: int = 0
                    ) -> tuple[pa.Table, PMIAnalysis]:
    """Join results with PMI (see attach_pmi) and analyze; returns the joined table and the analysis."""
    if correct_column not in items.column_names:
        raise ClipcompError(f"results have no column {correct_column!r} (columns: {', '.join(items.column_names)}); "
                            "pass --correct-column")
    joined = attach_pmi(items, stats, pair_columns, text_column)
    correct = np.asarray(joined.column(correct_column).to_numpy(zero_copy_only=False), dtype=np.float64)
    freq = np.column_stack([joined.column("log_freq_a").to_numpy(), joined.column("log_freq_b").to_numpy()])
    groups = None
    if pair_columns:
        a = joined.column(pair_columns[0]).to_pylist()
        b = joined.column(pair_columns[1]).to_pylist()
        groups = ["\t".join(sorted((str(u), str(v)))) for u, v in zip(a, b, strict=True)]
    res = analyze(joined.column("pmi").to_numpy(), correct, freq, joined.column("pmi_status").to_pylist(),
                  groups, n_bins, tail, n_boot, seed)
    res.settings.update({"correct_column": correct_column, "pair_columns": list(pair_columns or []),
                         "text_column": text_column, "stats": stats.path})
    return joined, res
