"""VL-CheckList (Zhao et al. 2022) in its official layout: the repository's `corpus/v1/<Type>/…/<name>.yaml`
files (ANNO_PATH, IMG_ROOT) pointing at `data/…/*.json` — lists of [image path, {"POS": [...], "NEG": [...]}] —
with the images under the dataset folder (`vg/`, `hake/`, `swig/`; `--images`). Read as vl_checklist/
data_loader.py `load_itc_samples` does (l. 41-57: items whose image is missing are left out) and scored as
evaluate.py's `itc` task (l. 97-125): the first positive against the first negative, correct when it scores
strictly higher; each corpus keeps its first MAX_NUM/2 items (configs/sample.yaml: MAX_NUM 2000). A subset is
`<Type>/<name>` (e.g. `Attribute/color/vg`); Object, Attribute and Relation are the means of their subsets."""

from __future__ import annotations

import glob
import os

from clipcomp.datasets.selection import SelectionData
from clipcomp.errors import ClipcompError
from clipcomp.io import read_json

MAX_NUM = 2000  # configs/sample.yaml; evaluate.py keeps d.data[name][:int(max_number / 2)] for itc


def _yaml(path: str) -> dict:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            obj = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise ClipcompError(f"{path}: unreadable VL-CheckList corpus file ({exc})") from None
    if not isinstance(obj, dict) or "ANNO_PATH" not in obj or "IMG_ROOT" not in obj:
        raise ClipcompError(f"{path}: lacks ANNO_PATH or IMG_ROOT (VL-CheckList corpus yaml)")
    return obj


def corpora(root: str, types: list[str] | None = None) -> list[tuple[str, str, str]]:
    """(subset, annotation JSON, image root relative to the dataset folder) for every corpus yaml."""
    base = os.path.join(root, "corpus", "v1")
    if not os.path.isdir(base):
        raise ClipcompError(f"{root}: no corpus/v1/ (VL-CheckList layout: the repository's corpus/v1/<Type>/…/"
                            "<name>.yaml and data/…/*.json)")
    out = []
    for y in sorted(glob.glob(os.path.join(base, "**", "*.yaml"), recursive=True)):
        rel = os.path.relpath(y, base)[:-len(".yaml")].replace(os.sep, "/")
        if types and not any(rel.startswith(t.rstrip("/") + "/") for t in types):
            continue
        cfg = _yaml(y)
        out.append((rel, os.path.join(root, cfg["ANNO_PATH"]), str(cfg["IMG_ROOT"])))
    if not out:
        raise ClipcompError(f"{root}: no VL-CheckList corpus yaml files" + (f" under {types}" if types else ""))
    return out


def load_vl_checklist(root: str, images: str, max_num: int = MAX_NUM, types: list[str] | None = None) -> SelectionData:
    data = SelectionData("vl-checklist", [], [], [], [], [], headline="macro",
                         headline_note="mean of the Object, Attribute and Relation means of the corpus accuracies")
    missing = 0
    for subset, anno, img_root in corpora(root, types):
        items = read_json(anno)
        if not isinstance(items, list):
            raise ClipcompError(f"{anno}: expected a list of [image, {{POS: [...], NEG: [...]}}] (VL-CheckList)")
        kept = []
        for i, x in enumerate(items):
            if not (isinstance(x, list) and len(x) == 2 and isinstance(x[1], dict) and x[1].get("POS")
                    and x[1].get("NEG")):
                raise ClipcompError(f"{anno}: item {i} is not [image, {{POS: [...], NEG: [...]}}] (VL-CheckList)")
            path = os.path.join(images, img_root, str(x[0]))
            if os.path.exists(path):
                kept.append((path, x[1]))
            else:
                missing += 1
        if max_num:
            kept = kept[:int(max_num / 2)]
        for k, (path, texts) in enumerate(kept):
            data.ids.append(f"{subset}/{k}")
            data.subsets.append(subset)
            data.paths.append(path)
            data.positives.append(str(texts["POS"][0]))
            data.negatives.append([str(texts["NEG"][0])])
    data.meta["n_missing_images"] = missing
    if not data.ids:
        raise ClipcompError(f"{root}: no VL-CheckList item has its image under {images} ({missing} missing)")
    return data


def open_suite(path: str, images: str | None, options: dict, cache: str) -> SelectionData:
    return load_vl_checklist(path, images, int(options.get("max_num", MAX_NUM)), options.get("types"))
