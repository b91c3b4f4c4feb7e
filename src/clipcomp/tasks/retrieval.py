"""Image↔text retrieval on a COCO-style captions JSON: Recall@K in both directions."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from clipcomp.datasets.coco import CaptionData, default_image_root, load_coco_captions
from clipcomp.tasks.common import TaskResult

__all__ = ["CaptionData", "default_image_root", "evaluate", "load_coco_captions"]

KS = (1, 5, 10)


def evaluate(embedder, data: CaptionData, skip_bad: bool = False) -> TaskResult:
    img = embedder.images(data.paths, skip_bad=skip_bad)
    keep_img = np.flatnonzero(img.ok)
    remap = -np.ones(len(data.paths), np.int64)
    remap[keep_img] = np.arange(keep_img.size)
    cap_ok = remap[data.caption_image] >= 0
    cap_idx = np.flatnonzero(cap_ok)
    owner = remap[data.caption_image[cap_ok]]
    txt = embedder.texts([data.captions[i] for i in cap_idx])
    sim = txt @ img.embeddings.T  # (captions, images)
    # text → image: rank of the caption's own image (number of images scoring strictly higher)
    own = sim[np.arange(owner.size), owner]
    t2i_rank = (sim > own[:, None]).sum(axis=1)
    # image → text: captions scoring strictly higher than the image's best own caption
    best_own = np.full(keep_img.size, -np.inf)
    np.maximum.at(best_own, owner, own)
    i2t_rank = (sim > best_own[None, :]).sum(axis=0).astype(np.int64)
    i2t_rank[~np.isfinite(best_own)] = np.iinfo(np.int64).max
    has_caption = i2t_rank < np.iinfo(np.int64).max
    metrics = {}
    for k in KS:
        metrics[f"text_retrieval_recall@{k}"] = float((i2t_rank[has_caption] < k).mean()) if has_caption.any() \
            else float("nan")
        metrics[f"image_retrieval_recall@{k}"] = float((t2i_rank < k).mean()) if t2i_rank.size else float("nan")
    metrics["n_images"] = int(keep_img.size)
    metrics["n_captions"] = int(cap_idx.size)
    t2i = pa.table({
        "direction": ["text_to_image"] * int(cap_idx.size),
        "query": [data.captions[i] for i in cap_idx],
        "image": [data.paths[keep_img[o]] for o in owner],
        "image_id": [data.image_ids[keep_img[o]] for o in owner],
        "rank": t2i_rank.astype(np.int64),
        **{f"hit@{k}": t2i_rank < k for k in KS},
        "correct": t2i_rank < 1,
    })
    i2t = pa.table({
        "direction": ["image_to_text"] * int(has_caption.sum()),
        "query": [data.paths[keep_img[i]] for i in np.flatnonzero(has_caption)],
        "image": [data.paths[keep_img[i]] for i in np.flatnonzero(has_caption)],
        "image_id": [data.image_ids[keep_img[i]] for i in np.flatnonzero(has_caption)],
        "rank": i2t_rank[has_caption].astype(np.int64),
        **{f"hit@{k}": i2t_rank[has_caption] < k for k in KS},
        "correct": i2t_rank[has_caption] < 1,
    })
    items = pa.concat_tables([t2i, i2t])
    return TaskResult("zeroshot_retrieval", data.name, items, metrics, img.errors)


def run_suite(embedder, data: CaptionData, options: dict) -> TaskResult:
    return evaluate(embedder, data, skip_bad=bool(options.get("skip_bad", False)))


def columns(suite: str, metrics: dict) -> dict[str, float]:
    """Recall@5 both ways."""
    return {f"{suite}/{k}": metrics[k] for k in ("image_retrieval_recall@5", "text_retrieval_recall@5")
            if k in metrics}
