"""SVO-Probes (Hendricks & Nematzadeh 2021) in its official file `svo_probes.csv` (sentence, pos_triplet,
neg_triplet, subj_neg, verb_neg, obj_neg, pos_url, neg_url, pos_image_id, neg_image_id): a sentence, an image it
describes and one that differs in the subject, the verb or the object. Images are read from `--images` as
`<image_id>.jpg` (or .jpeg/.png), else by the URL's file name, as image_urls.txt downloads them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from clipcomp.errors import ClipcompError

COLUMNS = ("sentence", "subj_neg", "verb_neg", "obj_neg", "pos_image_id", "neg_image_id")


@dataclass
class SVOData:
    name: str = "svo-probes"
    sentences: list[str] = field(default_factory=list)
    pos: list[str] = field(default_factory=list)
    neg: list[str] = field(default_factory=list)
    pos_ids: list[int] = field(default_factory=list)
    neg_ids: list[int] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # subj | verb | obj | mixed (more than one flag)
    n_missing: int = 0


def _flag(v) -> bool:
    return v if isinstance(v, bool) else str(v).strip().lower() in ("true", "1")


def _path(image_id, url, index: dict[str, str]) -> str | None:
    for ext in (".jpg", ".jpeg", ".png"):
        if f"{image_id}{ext}" in index:
            return index[f"{image_id}{ext}"]
    base = str(url or "").rsplit("/", 1)[-1].split("?")[0]
    return index.get(base)


def load_svo(path: str, images: str) -> SVOData:
    from clipcomp.io import read_table

    if os.path.isdir(path):
        path = os.path.join(path, "svo_probes.csv")
    t = read_table(path)
    missing = [c for c in COLUMNS if c not in t.column_names]
    if missing:
        raise ClipcompError(f"{path}: lacks {', '.join(missing)} (SVO-Probes svo_probes.csv: sentence, pos_triplet, "
                            "neg_triplet, subj_neg, verb_neg, obj_neg, pos_url, neg_url, pos_image_id, neg_image_id)")
    try:
        index = {n: os.path.join(images, n) for n in os.listdir(images)}
    except OSError:
        raise ClipcompError(f"--images {images}: not a readable folder") from None
    data = SVOData()
    for r in t.to_pylist():
        p, n = _path(r["pos_image_id"], r.get("pos_url"), index), _path(r["neg_image_id"], r.get("neg_url"), index)
        if p is None or n is None:  # the official notebook drops rows whose pair lacks a score
            data.n_missing += 1
            continue
        flags = [k for k in ("subj", "verb", "obj") if _flag(r[f"{k}_neg"])]
        data.sentences.append(str(r["sentence"]))
        data.pos.append(p)
        data.neg.append(n)
        data.pos_ids.append(int(r["pos_image_id"]))
        data.neg_ids.append(int(r["neg_image_id"]))
        data.kinds.append(flags[0] if len(flags) == 1 else "mixed")
    if not data.sentences:
        raise ClipcompError(f"{path}: no row has both images under {images} ({data.n_missing} rows lack one)")
    return data


def open_suite(path: str, images: str | None, options: dict, cache: str) -> SVOData:
    return load_svo(path, images)
