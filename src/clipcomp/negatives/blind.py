"""Blind-text check: can a model that never sees the image tell a caption from its negative?

SugarCrepe showed that many benchmarks' negatives are implausible text, so a text-only scorer finds them.
Two text-only scorers, each picking the more plausible of (caption, negative):

* **PMI** (plausibility of the concepts together): the mean PMI of the text's concept pairs in a ConceptStats
  of the training corpus (pairs never seen together count as the lowest PMI seen);
* **bigram LM** (grammaticality proxy): mean log-probability per token under an add-k bigram model of a
  caption corpus. By default the model is *held out*: the distinct captions are split into `folds` seeded
  folds and each pair is scored by a model fitted on the other folds, so it never saw the caption it judges
  (a model fitted on the scored captions prefers them by memory — 100 % "detection" of any negative).

Accuracy = share of pairs where the scorer prefers the caption (ties count half). A good negative set sits
near 50 %; the report gives each scorer's accuracy overall and per negative type, with Wilson intervals.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from clipcomp.concepts import tokenize_one


class BigramLM:
    """Add-k bigram language model over lower-cased word tokens (sentence boundaries included)."""

    def __init__(self, texts, k: float = 0.1) -> None:
        self.k = k
        self.uni: Counter = Counter()
        self.bi: Counter = Counter()
        for t in texts:
            toks = ["<s>", *tokenize_one(t or ""), "</s>"]
            self.uni.update(toks[:-1])
            self.bi.update(zip(toks[:-1], toks[1:], strict=False))
        self.vocab = len(self.uni) + 1

    def score(self, text: str) -> float:
        toks = ["<s>", *tokenize_one(text or ""), "</s>"]
        lp = [math.log((self.bi.get((a, b), 0) + self.k) / (self.uni.get(a, 0) + self.k * self.vocab))
              for a, b in zip(toks[:-1], toks[1:], strict=False)]
        return float(np.mean(lp))


def pmi_score(stats, text: str, floor: float) -> float:
    """Mean PMI of the text's concept pairs; unseen pairs count as `floor`; no pair at all → 0."""
    s = stats.score(text)
    vals = [p.pmi if math.isfinite(p.pmi) else floor for p in s.pairs] + [floor] * len(s.unseen)
    return float(np.mean(vals)) if vals else 0.0


def _accuracy(pos: np.ndarray, neg: np.ndarray) -> dict:
    from scipy.stats import binomtest

    wins = (pos > neg).astype(float) + 0.5 * (pos == neg)
    n = len(wins)
    k = int(round(wins.sum()))
    ci = binomtest(k, n).proportion_ci(method="wilson") if n else None
    return {"n": n, "accuracy": float(wins.mean()) if n else float("nan"),
            "ci95": [float(ci.low), float(ci.high)] if ci else None}


def held_out_lm_scores(caps: list[str], negs: list[str], k: float = 0.1, folds: int = 2, seed: int = 0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Bigram-LM scores of captions and negatives, each pair scored by a model fitted on the other folds of the
    distinct captions (cross-fitting), never on its own caption."""
    uniq = sorted(set(caps))
    fold_of = dict(zip(uniq, np.random.default_rng([seed, 4_242]).permutation(len(uniq)) % folds, strict=True))
    row_fold = np.array([fold_of[c] for c in caps])
    p, q = np.zeros(len(caps)), np.zeros(len(caps))
    for f in range(folds):
        rows = np.flatnonzero(row_fold == f)
        if rows.size == 0:
            continue
        lm = BigramLM([c for c in uniq if fold_of[c] != f], k=k)
        p[rows] = [lm.score(caps[i]) for i in rows]
        q[rows] = [lm.score(negs[i]) for i in rows]
    return p, q


def blind_check(negatives, stats=None, corpus=None, k: float = 0.1, folds: int = 2, seed: int = 0) -> dict:
    """Text-only accuracy of telling caption from negative, overall and per type, for each scorer.

    `negatives`: a table/DataFrame-like with caption, negative, type columns (a negatives.parquet).
    `stats`: a ConceptStats (PMI scorer); `corpus`: captions for the bigram LM (default: held out — the
    negatives' own captions, cross-fitted over `folds` folds).
    """
    import pyarrow as pa

    from clipcomp.errors import ClipcompError

    table = negatives if isinstance(negatives, pa.Table) else pa.Table.from_pandas(negatives)
    if table.num_rows == 0:
        raise ClipcompError("no negatives to check (the table is empty); a check of nothing has no accuracy")
    caps = table.column("caption").to_pylist()
    negs = table.column("negative").to_pylist()
    types = np.array(table.column("type").to_pylist())
    scorers = {}
    if corpus is not None:
        if not corpus:
            raise ClipcompError("the LM corpus is empty (no captions to fit the bigram model)")
        lm = BigramLM(corpus, k=k)
        scorers["bigram_lm"] = (np.array([lm.score(c) for c in caps]), np.array([lm.score(n) for n in negs]))
        lm_training = "the given corpus"
    else:
        if len(set(caps)) < folds:
            raise ClipcompError(f"{len(set(caps))} distinct caption(s): the held-out LM needs at least {folds} "
                                "(give --corpus with captions to fit it on)")
        scorers["bigram_lm"] = held_out_lm_scores(caps, negs, k, folds, seed)
        lm_training = f"held out: {folds}-fold cross-fit on the distinct captions (seed {seed})"
    if stats is not None:
        finite = stats.pairs.column("pmi").to_numpy()
        floor = float(np.min(finite[np.isfinite(finite)])) if finite.size else -10.0
        scorers["pmi"] = (np.array([pmi_score(stats, c, floor) for c in caps]),
                          np.array([pmi_score(stats, n, floor) for n in negs]))
    report = {}
    for name, (p, q) in scorers.items():
        report[name] = {"all": _accuracy(p, q),
                        "by_type": {t: _accuracy(p[types == t], q[types == t]) for t in sorted(set(types))}}
    report["bigram_lm"]["training"] = lm_training
    return report
