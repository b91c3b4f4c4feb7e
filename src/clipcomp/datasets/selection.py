"""Caption-selection suites: SugarCrepe JSON ({id: {filename, caption, negative_caption}}, one subset per file)
and generic manifests (image, positive, negative...)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from clipcomp.datasets.common import require_columns, resolve
from clipcomp.errors import ClipcompError
from clipcomp.io import read_json, read_table


@dataclass
class SelectionData:
    """Items of a caption-selection suite, and how its authors aggregate them.

    `ties_correct`: a negative scoring exactly as the positive counts as correct (ARO's Order suites take the
    argmax with the positive first) instead of wrong (strict ">", every other suite). `headline`: "pooled"
    (accuracy over all items) or "macro" (mean of per-subset accuracies over subsets with at least
    `min_subset_items` items, leaving out `macro_exclude`) — the official number of the suite; the other one is
    kept as `pooled_acc` (clipcomp's) when the headline is a macro."""

    name: str
    ids: list[str]
    subsets: list[str]
    paths: list[str]
    positives: list[str]
    negatives: list[list[str]]
    extra: dict[str, list] = field(default_factory=dict)
    ties_correct: bool = False
    headline: str = "pooled"
    min_subset_items: int = 1
    macro_exclude: tuple[str, ...] = ()
    headline_note: str = ""
    meta: dict = field(default_factory=dict)  # what the loader wants reported (e.g. items left out)


def json_files(files: list[str]) -> list[str]:
    """Files as given, folders replaced by their `*.json` files (sorted): suites keep one subset per file."""
    expanded: list[str] = []
    for f in files:
        if os.path.isdir(f):
            expanded.extend(sorted(os.path.join(f, n) for n in os.listdir(f) if n.endswith(".json")))
        else:
            expanded.append(f)
    return expanded


def load_sugarcrepe(files: list[str], image_root: str) -> SelectionData:
    """SugarCrepe JSON files ({id: {filename, caption, negative_caption}}), one subset per file."""
    data = SelectionData("sugarcrepe", [], [], [], [], [])
    expanded = json_files(files)
    for path in expanded:
        obj = read_json(path)
        if not isinstance(obj, dict):
            raise ClipcompError(f"{path}: expected SugarCrepe JSON {{id: {{filename, caption, negative_caption}}}}")
        subset = os.path.splitext(os.path.basename(path))[0]
        for key, item in obj.items():
            missing = [k for k in ("filename", "caption", "negative_caption") if k not in item]
            if missing:
                raise ClipcompError(f"{path}: item {key!r} lacks {', '.join(missing)}")
            data.ids.append(f"{subset}/{key}")
            data.subsets.append(subset)
            data.paths.append(resolve(item["filename"], image_root))
            data.positives.append(item["caption"])
            data.negatives.append([item["negative_caption"]])
    if not data.ids:
        raise ClipcompError(f"{', '.join(files)}: no SugarCrepe items found (expected JSON files of {{filename, "
                            "caption, negative_caption}} items)")
    if len(expanded) == 1:
        data.name = f"sugarcrepe/{data.subsets[0]}"
    return data


def load_selection_manifest(path: str, image_root: str | None = None) -> SelectionData:
    """A table with `image`, `positive` and negatives: `negative*` columns or a list column `negatives`."""
    table = read_table(path)
    require_columns(table, ["image", "positive"], path, "for caption selection")
    neg_cols = [c for c in table.column_names if c.startswith("negative") and c != "negatives"]
    if "negatives" in table.column_names:
        negs = [list(v or []) for v in table.column("negatives").to_pylist()]
    elif neg_cols:
        cols = [table.column(c).to_pylist() for c in neg_cols]
        negs = [[v for v in row if v] for row in zip(*cols, strict=True)]
    else:
        raise ClipcompError(f"{path}: no negative captions (columns 'negative', 'negative_2', ... or 'negatives')")
    for row, n in enumerate(negs, start=1):
        if not n:
            raise ClipcompError(f"{path}: row {row} has no negative caption")
    root = image_root or os.path.dirname(os.path.abspath(path))
    n = table.num_rows
    subsets = [str(s) for s in table.column("subset").to_pylist()] if "subset" in table.column_names else \
        ["all"] * n
    ids = [str(i) for i in table.column("id").to_pylist()] if "id" in table.column_names else \
        [str(i) for i in range(n)]
    known = {"image", "positive", "negatives", "subset", "id", *neg_cols}
    extra = {c: table.column(c).to_pylist() for c in table.column_names if c not in known}
    return SelectionData(os.path.splitext(os.path.basename(path))[0], ids, subsets,
                         [resolve(str(p), root) for p in table.column("image").to_pylist()],
                         [str(p) for p in table.column("positive").to_pylist()], negs, extra)


def open_suite(path: str, images: str | None, options: dict, cache: str) -> SelectionData:
    """SugarCrepe: JSON files (one per subset) or their folder, with the COCO val2017 images."""
    return load_sugarcrepe([path], images)


def open_select(path, images: str | None, options: dict, cache: str) -> SelectionData:
    """Generic caption selection: a manifest (image, positive, negative...) or SugarCrepe JSON files/folders."""
    from clipcomp.datasets.formats import detect_format

    paths = [path] if isinstance(path, str) else list(path)
    if len(paths) == 1 and detect_format(paths[0]) == "manifest":
        return load_selection_manifest(paths[0], images)
    if images is None:
        raise ClipcompError("SugarCrepe input needs --images DIR (the COCO val2017 images)")
    return load_sugarcrepe(paths, images)
