"""Linear probe: logistic regression on frozen image embeddings (CLIP_benchmark's protocol, scikit-learn).

Single-label (ClassificationData): train on the train split, choose the inverse regularization C on a
validation split carved from it (seeded, 20 %), refit on train + validation with that C, report test top-1
accuracy. Multi-label (COCO instance labels: every category present in the image): one-vs-rest logistic
regression, C chosen by validation mAP, report test mAP (macro over classes with a positive in the test
split). Without a given test split, a seeded 60/20/20 split of the items is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from clipcomp.errors import ClipcompError
from clipcomp.io import read_json
from clipcomp.tasks.common import TaskResult, resolve

C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


@dataclass
class ProbeData:
    name: str
    paths: list[str]
    targets: np.ndarray  # (n,) class ids, or (n, k) 0/1 for multi-label
    classnames: list[str]
    split: np.ndarray | None = None  # "train"/"test" per item, or None
    multilabel: bool = False
    extra: dict = field(default_factory=dict)


def from_classification(data) -> ProbeData:
    split = None
    if data.extra is not None and "split" in data.extra.column_names:
        split = np.array([str(s) for s in data.extra.column("split").to_pylist()])
    return ProbeData(data.name, list(data.paths), np.asarray(data.labels), list(data.classnames), split)


def coco_multilabel(instances: str, image_root: str | None = None) -> ProbeData:
    """COCO instances JSON → multi-label targets (each category with at least one box in the image)."""
    obj = read_json(instances)
    if not isinstance(obj, dict) or not {"images", "annotations", "categories"} <= set(obj):
        raise ClipcompError(f"{instances}: expected a COCO instances JSON (images, annotations, categories)")
    cats = sorted(obj["categories"], key=lambda c: c["id"])
    col = {c["id"]: k for k, c in enumerate(cats)}
    images = sorted(obj["images"], key=lambda im: im["id"])
    row = {im["id"]: r for r, im in enumerate(images)}
    y = np.zeros((len(images), len(cats)), np.int8)
    for ann in obj["annotations"]:
        if ann["image_id"] in row and ann["category_id"] in col:
            y[row[ann["image_id"]], col[ann["category_id"]]] = 1
    root = image_root or os.path.dirname(os.path.dirname(os.path.abspath(instances)))
    if image_root is None:
        split_dir = os.path.join(root, os.path.basename(instances).replace("instances_", "").replace(".json", ""))
        root = split_dir if os.path.isdir(split_dir) else root
    return ProbeData(os.path.basename(instances), [resolve(im["file_name"], root) for im in images], y,
                     [c["name"] for c in cats], multilabel=True)


def _splits(n: int, split: np.ndarray | None, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if split is not None and {"train", "test"} <= set(split.tolist()):
        train_all = np.flatnonzero(split == "train")
        test = np.flatnonzero(split == "test")
        perm = rng.permutation(train_all)
        n_val = max(1, len(perm) // 5)
        return perm[n_val:], perm[:n_val], test
    perm = rng.permutation(n)
    a, b = int(0.6 * n), int(0.8 * n)
    return perm[:a], perm[a:b], perm[b:]


def _fit(x, y, c: float, multilabel: bool, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    clf = LogisticRegression(C=c, max_iter=1000, random_state=seed)
    if multilabel:
        clf = OneVsRestClassifier(clf)
    return clf.fit(x, y)


def _score(clf, x, y, multilabel: bool) -> float:
    if not multilabel:
        return float((clf.predict(x) == y).mean())
    from sklearn.metrics import average_precision_score

    keep = y.sum(axis=0) > 0
    if not keep.any():
        return float("nan")
    proba = clf.predict_proba(x)
    return float(average_precision_score(y[:, keep], proba[:, keep], average="macro"))


def evaluate(embedder, data: ProbeData, seed: int = 0, skip_bad: bool = False) -> TaskResult:
    img = embedder.images(data.paths, skip_bad=skip_bad)
    ok = np.flatnonzero(img.ok)
    x = img.embeddings.astype(np.float64)
    y = data.targets[ok]
    split = data.split[ok] if data.split is not None else None
    tr, va, te = _splits(len(ok), split, seed)
    if min(len(tr), len(va), len(te)) == 0:
        raise ClipcompError(f"{data.name}: too few images for a linear probe ({len(ok)})")
    if data.multilabel:
        usable = (y[tr].sum(axis=0) > 0) & (y[tr].sum(axis=0) < len(tr))
        y = y[:, usable]
    else:
        # a class the train part never shows cannot be predicted; keep the items, sklearn handles the labels
        pass
    scores = {}
    for c in C_GRID:
        try:
            scores[c] = _score(_fit(x[tr], y[tr], c, data.multilabel, seed), x[va], y[va], data.multilabel)
        except ValueError as exc:
            raise ClipcompError(f"{data.name}: linear probe cannot fit ({exc})") from None
    best_c = max(C_GRID, key=lambda c: (np.nan_to_num(scores[c], nan=-1.0), -c))
    trva = np.concatenate([tr, va])
    clf = _fit(x[trva], y[trva], best_c, data.multilabel, seed)
    test = _score(clf, x[te], y[te], data.multilabel)
    metric = "map" if data.multilabel else "acc1"
    metrics = {metric: test, "C": best_c, "val_scores": {str(k): v for k, v in scores.items()},
               "n_train": int(len(trva)), "n_test": int(len(te))}
    pred = clf.predict(x[te])
    items = pa.table({"image": [data.paths[ok[i]] for i in te],
                      "target": [list(map(int, r)) for r in y[te]] if data.multilabel else y[te].astype(np.int64),
                      "prediction": [list(map(int, r)) for r in pred] if data.multilabel else pred.astype(np.int64)})
    return TaskResult("linear_probe", data.name, items, metrics, img.errors)


def open_suite(path: str, images: str | None, options: dict, cache: str) -> ProbeData:
    """COCO instances JSON → multi-label probe; image folder or path,label manifest → single-label probe."""
    from clipcomp.datasets import detect_format, open_dataset

    if detect_format(path) == "coco":
        return coco_multilabel(path, images)
    return from_classification(open_dataset(path, "classification", images, classnames=options.get("classnames")))


def run_suite(embedder, data: ProbeData, options: dict) -> TaskResult:
    return evaluate(embedder, data, seed=int(options.get("seed", 0)), skip_bad=bool(options.get("skip_bad", False)))


def columns(suite: str, metrics: dict) -> dict[str, float]:
    key = "map" if "map" in metrics else "acc1"
    return {f"{suite}/{key}": metrics[key]}
