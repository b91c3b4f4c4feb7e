"""Winoground (Thrush et al. 2022) in its official layout: `examples.jsonl` lines {id, caption_0, caption_1,
image_0, image_1, tag, secondary_tag, …} and images `images/<image_k>.png` (or any path given in the line).
Also any 2×2 group table with the same columns (Winoground-style groups built from other data)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from clipcomp.datasets.common import resolve
from clipcomp.errors import ClipcompError


@dataclass
class WinogroundData:
    name: str
    ids: list[str] = field(default_factory=list)
    images: list[tuple[str, str]] = field(default_factory=list)
    captions: list[tuple[str, str]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)  # collapsed_tag (Object / Relation / Both), else tag
    secondary_tags: list[list[str]] = field(default_factory=list)  # Symbolic, Series, Pragmatics … (may be none)
    num_main_preds: list[str] = field(default_factory=list)  # "1" or "2" ("" when the file has none)


def _image(name: str, root: str) -> str:
    name = str(name)
    if os.path.splitext(name)[1]:
        return resolve(name, root)
    for cand in (os.path.join(root, "images", name + ".png"), os.path.join(root, name + ".png")):
        if os.path.exists(cand):
            return cand
    return os.path.join(root, "images", name + ".png")


def load_winoground(path: str, image_root: str | None = None) -> WinogroundData:
    root = image_root or os.path.dirname(os.path.abspath(path))
    data = WinogroundData("winoground")
    try:
        with open(path, encoding="utf-8") as f:
            lines = [ln for ln in f.read().splitlines() if ln.strip()]
    except FileNotFoundError:
        raise ClipcompError(f"{path}: Winoground examples file not found") from None
    for n, line in enumerate(lines, start=1):
        try:
            ex = json.loads(line)
        except ValueError as exc:
            raise ClipcompError(f"{path}: line {n} is not JSON ({exc}); expected Winoground examples.jsonl") from None
        missing = [k for k in ("caption_0", "caption_1", "image_0", "image_1") if k not in ex]
        if missing:
            raise ClipcompError(f"{path}: line {n} lacks {', '.join(missing)} (Winoground format)")
        data.ids.append(str(ex.get("id", n - 1)))
        data.images.append((_image(ex["image_0"], root), _image(ex["image_1"], root)))
        data.captions.append((ex["caption_0"], ex["caption_1"]))
        data.tags.append(str(ex.get("collapsed_tag") or ex.get("tag") or "all"))
        sec = ex.get("secondary_tag") or ""
        data.secondary_tags.append([t.strip() for t in (sec if isinstance(sec, list) else str(sec).split(","))
                                    if t.strip()])
        data.num_main_preds.append("" if ex.get("num_main_preds") is None else str(ex["num_main_preds"]))
    if not data.ids:
        raise ClipcompError(f"{path}: no Winoground examples")
    return data


def open_suite(path: str, images: str | None, options: dict, cache: str) -> WinogroundData:
    return load_winoground(path, images)
