"""Zero-shot classification: class-name prompts → averaged text embeddings → argmax over classes."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa

from clipcomp.datasets.classification import ClassificationData, load_image_folder, load_manifest
from clipcomp.errors import ClipcompError
from clipcomp.tasks.common import TaskResult

__all__ = ["ClassificationData", "evaluate", "load_image_folder", "load_manifest", "load_templates",
           "zero_shot_classifier"]


def load_templates(spec: str = "openai") -> list[str]:
    """`openai` (the 80 ImageNet prompts of CLIP), `simple`, or a file with one template per line ({} or {c})."""
    if spec in ("openai", "simple"):
        from clipcomp.models import import_open_clip

        import_open_clip()
        from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES, SIMPLE_IMAGENET_TEMPLATES

        funcs = OPENAI_IMAGENET_TEMPLATES if spec == "openai" else SIMPLE_IMAGENET_TEMPLATES
        return [f("{c}") for f in funcs]
    if not os.path.exists(spec):
        raise ClipcompError(f"{spec}: templates file not found (or use --templates openai|simple)")
    from clipcomp.io import read_text

    out = []
    for n, line in enumerate(read_text(spec, "templates file").splitlines(), start=1):
        t = line.strip()
        if not t or t.startswith("#"):
            continue
        if "{c}" not in t and "{}" not in t:
            raise ClipcompError(f"{spec}: line {n}: template {t!r} has no {{c}} or {{}} placeholder")
        out.append(t.replace("{}", "{c}"))
    if not out:
        raise ClipcompError(f"{spec}: no templates")
    return out


def zero_shot_classifier(embedder, classnames: list[str], templates: list[str]) -> np.ndarray:
    """(C, D): per class, the normalized mean of its normalized prompt embeddings (as open_clip does)."""
    prompts = [t.format(c=c) for c in classnames for t in templates]
    emb = embedder.texts(prompts).reshape(len(classnames), len(templates), -1)
    w = emb.mean(axis=1)
    return w / np.linalg.norm(w, axis=1, keepdims=True)


def evaluate(embedder, data: ClassificationData, templates: list[str], skip_bad: bool = False) -> TaskResult:
    if data.arrays is not None:
        from clipcomp.models.embed import ImageEmbeddings

        arr = embedder.arrays(data.arrays)
        img = ImageEmbeddings(arr, np.ones(len(arr), bool))
    else:
        img = embedder.images(data.paths, skip_bad=skip_bad)
    weights = zero_shot_classifier(embedder, data.classnames, templates)
    logits = img.embeddings @ weights.T
    labels = data.labels[img.ok]
    n_classes = len(data.classnames)
    k = 5  # CLIP_benchmark's acc5; NaN with fewer than 5 classes, as CLIP_benchmark reports it
    order = np.argsort(-logits, axis=1, kind="stable")
    pred = order[:, 0]
    rank = np.argmax(order == labels[:, None], axis=1)
    correct = pred == labels
    top5 = rank < k
    rival = np.where(np.arange(n_classes)[None, :] == labels[:, None], -np.inf, logits).max(axis=1) \
        if n_classes > 1 else np.full(len(labels), -np.inf)
    per_class = {}
    for ci, name in enumerate(data.classnames):
        m = labels == ci
        if m.any():
            per_class[name] = float(correct[m].mean())
    n = int(correct.size)
    metrics = {
        "acc1": float(correct.mean()) if n else float("nan"),
        "acc5": float(top5.mean()) if n and n_classes >= 5 else float("nan"),
        "mean_per_class_recall": float(np.mean(list(per_class.values()))) if per_class else float("nan"),
        "per_class_acc1": per_class,
        "n_classes": n_classes,
        "n_templates": len(templates),
    }
    ok_idx = np.flatnonzero(img.ok)
    cols = {
        "path": [data.paths[i] for i in ok_idx],
        "label": [data.classnames[i] for i in labels],
        "label_index": labels.astype(np.int64),
        "pred": [data.classnames[i] for i in pred],
        "pred_index": pred.astype(np.int64),
        "correct": correct,
        "correct_top5": top5,
        "rank": rank.astype(np.int64),
        "true_score": logits[np.arange(n), labels].astype(np.float64) if n else np.zeros(0),
        "pred_score": logits[np.arange(n), pred].astype(np.float64) if n else np.zeros(0),
        "margin": (logits[np.arange(n), labels] - rival).astype(np.float64) if n else np.zeros(0),
    }
    items = pa.table(cols)
    if data.extra is not None:
        extra = data.extra.take(pa.array(ok_idx))
        for name in extra.column_names:
            if name not in items.column_names:
                items = items.append_column(name, extra.column(name))
    return TaskResult("zeroshot_classification", data.name, items, metrics, img.errors)


def run_suite(embedder, data: ClassificationData, options: dict) -> TaskResult:
    """Zero-shot with the `templates` option (openai | simple | FILE)."""
    return evaluate(embedder, data, load_templates(options.get("templates", "openai")),
                    skip_bad=bool(options.get("skip_bad", False)))


def columns(suite: str, metrics: dict) -> dict[str, float]:
    return {f"{suite}/acc1": metrics.get("acc1")}
