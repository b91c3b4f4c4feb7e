"""Gates: before an experiment measures what a manipulation does, it shows that its model learned the base task.

One function, `check_gates`, used by every experiment and by the pretrained stand-in (`clipcomp base`):

- natural accuracy — zero-shot accuracy on the natural test domain ≥ `min_accuracy` (default 0.9) on at least
  `min_items` (default 1,000) test items;
- no collapse — in every test domain the model was trained on, the most frequent prediction is < `max_collapse`
  (default 0.5) of the items;
- similarity spread (similarity work only, when nearest-neighbour similarities are given) — their standard
  deviation ≥ `min_nn_sd` (0.05) and their mean ≤ `max_nn_mean` (0.9), i.e. not a collapsed embedding space;
- graded similarity (`graded_similarity_gates`, scale-free): random corpus pairs have mean cosine ≤
  `max_random_pair` (0.5: the space is not collapsed) and the test items' nearest-train *distances* (1 − cos) span
  a range — their 90th percentile ≥ `min_nn_distance_ratio` (3) × their 10th — so "more similar" ranks items even
  where a dense corpus puts every nearest neighbour close (cosines near 1 with a small sd).

`gate_table(gates)` is the Markdown table that heads every report; `require(gates)` stops an experiment on the
first failed gate with one line naming the gate and by how much it missed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from clipcomp.errors import ClipcompError


@dataclass(frozen=True)
class GateSettings:
    min_accuracy: float = 0.9
    min_items: int = 1000
    max_collapse: float = 0.5
    min_nn_sd: float = 0.05
    max_nn_mean: float = 0.9
    max_random_pair: float = 0.5
    min_nn_distance_ratio: float = 3.0

    def __post_init__(self) -> None:
        if not (isinstance(self.min_nn_distance_ratio, (int, float)) and math.isfinite(self.min_nn_distance_ratio)
                and self.min_nn_distance_ratio >= 1):
            raise ClipcompError(f"gate threshold min-nn-distance-ratio = {self.min_nn_distance_ratio!r}: must be ≥ 1")
        for name in ("min_accuracy", "max_collapse", "min_nn_sd", "max_nn_mean", "max_random_pair"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or not 0.0 <= v <= 1.0:
                raise ClipcompError(f"gate threshold {name.replace('_', '-')} = {v!r}: must be in [0, 1]")
        if self.min_items < 1:
            raise ClipcompError(f"gate threshold min-items = {self.min_items}: must be ≥ 1")


@dataclass(frozen=True)
class Gate:
    name: str
    domain: str
    value: float
    threshold: float
    direction: str  # ">=" or "<" or "<="
    n: int
    passed: bool

    @property
    def margin(self) -> float:
        return self.value - self.threshold


def _ok(value: float, threshold: float, direction: str) -> bool:
    if not math.isfinite(value):
        return False
    return value >= threshold if direction == ">=" else (value < threshold if direction == "<" else value <= threshold)


def check_gates(predictions: dict[str, tuple[np.ndarray, np.ndarray]], trained_domains: list[str] | tuple[str, ...],
                settings: GateSettings | None = None, natural: str = "natural",
                nn_similarity: np.ndarray | None = None) -> list[Gate]:
    """Gates from per-domain (labels, predicted labels) of a zero-shot test, and optionally the nearest-neighbour
    similarities of test items to the training set."""
    s = settings or GateSettings()
    if natural not in predictions:
        raise ClipcompError(f"gates: no {natural!r} test domain (have {', '.join(predictions) or 'none'})")
    gates = []
    y, p = (np.asarray(a) for a in predictions[natural])
    acc = float((y == p).mean()) if y.size else float("nan")
    gates.append(Gate("natural accuracy", natural, acc, s.min_accuracy, ">=", int(y.size),
                      _ok(acc, s.min_accuracy, ">=") and y.size >= s.min_items))
    gates.append(Gate("natural test items", natural, float(y.size), float(s.min_items), ">=", int(y.size),
                      y.size >= s.min_items))
    for d in trained_domains:
        if d not in predictions:
            continue
        _, pd = (np.asarray(a) for a in predictions[d])
        share = float(np.bincount(pd.astype(np.int64)).max() / pd.size) if pd.size else float("nan")
        gates.append(Gate("no collapse (top prediction share)", d, share, s.max_collapse, "<", int(pd.size),
                          _ok(share, s.max_collapse, "<")))
    if nn_similarity is not None:
        gates += similarity_gates(nn_similarity, s)
    return gates


def similarity_gates(nn_similarity: np.ndarray, settings: GateSettings | None = None) -> list[Gate]:
    """The similarity-spread gates alone: test items' nearest-neighbour similarities are spread (sd) and not all
    near 1 (mean) — an embedding space in which "more similar" means something."""
    s = settings or GateSettings()
    v = np.asarray(nn_similarity, np.float64)
    sd, mean = (float(v.std()), float(v.mean())) if v.size else (float("nan"), float("nan"))
    return [Gate("nearest-neighbour similarity sd", "test", sd, s.min_nn_sd, ">=", int(v.size),
                 _ok(sd, s.min_nn_sd, ">=")),
            Gate("nearest-neighbour similarity mean", "test", mean, s.max_nn_mean, "<=", int(v.size),
                 _ok(mean, s.max_nn_mean, "<="))]


def graded_similarity_gates(nn_similarity: np.ndarray, random_pair_similarity: np.ndarray,
                            settings: GateSettings | None = None) -> list[Gate]:
    """Scale-free similarity gates: the space is not collapsed (random pairs' mean cosine ≤ max_random_pair) and
    nearest-train distances are graded (q90 / q10 of 1 − cos ≥ min_nn_distance_ratio; q10 floored at 1e-4)."""
    s = settings or GateSettings()
    rp = np.asarray(random_pair_similarity, np.float64)
    dist = 1.0 - np.asarray(nn_similarity, np.float64)
    rp_mean = float(rp.mean()) if rp.size else float("nan")
    if dist.size:
        q10, q90 = np.quantile(dist, [0.1, 0.9])
        ratio = float(q90 / max(float(q10), 1e-4))
    else:
        ratio = float("nan")
    return [Gate("no collapse (random-pair cosine mean)", "corpus", rp_mean, s.max_random_pair, "<=", int(rp.size),
                 _ok(rp_mean, s.max_random_pair, "<=")),
            Gate("graded nearest-train distance (q90 / q10)", "test", ratio, s.min_nn_distance_ratio, ">=",
                 int(dist.size), _ok(ratio, s.min_nn_distance_ratio, ">="))]


def accuracy_by_domain(predictions: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    return {d: float((np.asarray(y) == np.asarray(p)).mean()) for d, (y, p) in predictions.items()}


def gate_table(gates: list[Gate]) -> str:
    """The Markdown gate table that heads every report."""
    lines = ["| gate | domain | value | threshold | items | result |", "|---|---|---:|---|---:|---|"]
    for g in gates:
        val = f"{g.value:,.0f}" if g.name.endswith("items") else f"{g.value:.3f}"
        thr = f"{g.direction} {g.threshold:,.0f}" if g.name.endswith("items") else f"{g.direction} {g.threshold:.3f}"
        lines.append(f"| {g.name} | {g.domain} | {val} | {thr} | {g.n:,} | {'pass' if g.passed else '**FAIL**'} |")
    return "\n".join(lines) + "\n"


def require(gates: list[Gate], what: str = "the base model") -> None:
    """Stop with one line on the first failed gate (which gate, the value, the threshold, by how much)."""
    for g in gates:
        if not g.passed:
            raise ClipcompError(f"gate failed for {what}: {g.name} ({g.domain}) = {g.value:.3f}, needs "
                                f"{g.direction} {g.threshold:.3f} (missed by {abs(g.margin):.3f}; {g.n:,} items); "
                                "no effect is reported")


def gates_json(gates: list[Gate]) -> list[dict]:
    return [{**asdict(g), "margin": g.margin} for g in gates]


def unit_correlation(units: dict[str, tuple[list[float], list[float]]], min_units_for_p: int = 5) -> dict:
    """Spearman ρ between x and y over *independent units* (e.g. test domains), each unit's values first averaged
    over its seeds — never over (unit × seed) pseudo-replicates. A p-value only with ≥ `min_units_for_p` units."""
    from scipy import stats

    xs = [float(np.mean(x)) for x, _ in units.values()]
    ys = [float(np.mean(y)) for _, y in units.values()]
    out = {"n_units": len(xs), "rho": float("nan"), "p": None}
    if len(xs) >= 3 and len(set(xs)) > 1 and len(set(ys)) > 1:
        r = stats.spearmanr(xs, ys)
        out["rho"] = float(r.statistic)
        if len(xs) >= min_units_for_p:
            out["p"] = float(r.pvalue)
    return out


def format_unit_correlation(name: str, res: dict) -> str:
    p = f"p = {res['p']:.2g}" if res["p"] is not None else f"no p-value with {res['n_units']} units"
    return f"Spearman ρ({name}) over the {res['n_units']} unit means = {res['rho']:.2f} ({p})."
