"""ARO (Yuksekgonul et al. 2023, "When and why vision-language models behave like bags-of-words") in its
official files: VG-Relation (`visual_genome_relation.json`) and VG-Attribution
(`visual_genome_attribution.json`) — lists of {image_path | image_id, bbox_x, bbox_y, bbox_w, bbox_h,
true_caption, false_caption, relation_name | attributes} whose images are cropped to the box, as ARO does —
and COCO-Order / Flickr-Order, which ARO *builds* from captions with four word-order perturbations (shuffle
nouns and adjectives; shuffle everything but nouns and adjectives; shuffle trigrams; shuffle words within
trigrams): the image must prefer its caption over the four perturbed ones.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from clipcomp.datasets.common import resolve
from clipcomp.datasets.selection import SelectionData
from clipcomp.errors import ClipcompError
from clipcomp.io import read_json


def _crop(path: str, box: tuple[float, float, float, float], crop_dir: str) -> str:
    """The box of an image as a PNG in crop_dir (content-addressed: made once)."""
    from PIL import Image

    key = hashlib.sha1(f"{os.path.abspath(path)}|{box}".encode()).hexdigest()[:20]
    out = os.path.join(crop_dir, f"{key}.png")
    if not os.path.exists(out):
        os.makedirs(crop_dir, exist_ok=True)
        from clipcomp.io import atomic_output

        try:
            with Image.open(path) as im, atomic_output(out) as tmp:
                x, y, w, h = box
                im.convert("RGB").crop((int(x), int(y), int(x + w), int(y + h))).save(tmp, format="PNG")
        except (OSError, ValueError) as exc:
            raise ClipcompError(f"{path}: unreadable image for an ARO crop ({exc})") from None
    return out


def load_vg(path: str, image_root: str, crop_dir: str, kind: str = "relation") -> SelectionData:
    """VG-Relation (subset = relation_name) or VG-Attribution (subset = the attribute pair)."""
    items = read_json(path)
    if not isinstance(items, list) or not items or not isinstance(items[0], dict):
        raise ClipcompError(f"{path}: expected ARO VG JSON (a list of {{image_path, bbox_x, ..., true_caption, "
                            "false_caption}})")
    data = SelectionData(f"aro/vg_{kind}", [], [], [], [], [])
    for i, it in enumerate(items):
        missing = [k for k in ("bbox_x", "bbox_y", "bbox_w", "bbox_h", "true_caption", "false_caption") if k not in it]
        if missing or not ("image_path" in it or "image_id" in it):
            raise ClipcompError(f"{path}: item {i} lacks {', '.join(missing) or 'image_path'} (ARO VG format)")
        image = it.get("image_path") or f"{it['image_id']}.jpg"
        src = resolve(str(image), image_root)
        box = (float(it["bbox_x"]), float(it["bbox_y"]), float(it["bbox_w"]), float(it["bbox_h"]))
        if kind == "relation":
            subset = str(it.get("relation_name", "relation"))
        else:
            attrs = it.get("attributes") or ["attribute"]
            subset = "-".join(str(a) for a in attrs)
        data.ids.append(str(i))
        data.subsets.append(subset)
        data.paths.append(_crop(src, box, crop_dir) if os.path.exists(src) else src)
        data.positives.append(it["true_caption"])
        data.negatives.append([it["false_caption"]])
    return data


# ------------------------------------------------------------------------------------- order perturbations


def _shuffle_positions(words: list[str], positions: list[int], rng) -> list[str]:
    out = list(words)
    if len(positions) > 1:
        perm = rng.permutation(len(positions))
        for dst, src in zip(positions, perm, strict=True):
            out[dst] = words[positions[src]]
    return out


def _trigrams(words: list[str]) -> list[list[str]]:
    return [words[i:i + 3] for i in range(0, len(words), 3)]


def order_perturbations(doc, rng) -> list[str]:
    """ARO's four perturbations of a spaCy doc (lower-cased words, punctuation dropped as ARO does)."""
    toks = [t for t in doc if not t.is_punct and not t.is_space]
    words = [t.text.lower() for t in toks]
    na = [i for i, t in enumerate(toks) if t.pos_ in ("NOUN", "PROPN", "ADJ")]
    rest = [i for i in range(len(toks)) if i not in set(na)]
    tri = _trigrams(words)
    order = rng.permutation(len(tri))
    return [" ".join(_shuffle_positions(words, na, rng)),
            " ".join(_shuffle_positions(words, rest, rng)),
            " ".join(w for k in order for w in tri[k]),
            " ".join(w for t in tri for w in (list(np.array(t)[rng.permutation(len(t))]) if len(t) > 1 else t))]


def build_order(captions: list[tuple[str, str]], name: str, seed: int = 0) -> SelectionData:
    """COCO-Order / Flickr-Order from (image path, caption) pairs: the caption against its 4 perturbations
    (perturbations that leave the word order unchanged are dropped; an item with none left is skipped)."""
    from clipcomp.nlp import nlp

    rng = np.random.default_rng(seed)
    data = SelectionData(name, [], [], [], [], [])
    texts = [c for _, c in captions]
    for i, ((image, _caption), doc) in enumerate(zip(captions, nlp().pipe(texts, batch_size=256), strict=True)):
        truth = " ".join(t.text.lower() for t in doc if not t.is_punct and not t.is_space)
        negs = [p for p in order_perturbations(doc, rng) if p != truth]
        if not negs:
            continue
        data.ids.append(str(i))
        data.subsets.append(name.split("/")[-1])
        data.paths.append(image)
        data.positives.append(truth)
        data.negatives.append(negs)
    if not data.ids:
        raise ClipcompError(f"{name}: no caption could be perturbed")
    return data


def coco_order(annotations: str, image_root: str, per_image: int = 1, seed: int = 0) -> SelectionData:
    """COCO-Order built from a COCO captions JSON (the first `per_image` captions of each image)."""
    obj = read_json(annotations)
    if not isinstance(obj, dict) or "annotations" not in obj or "images" not in obj:
        raise ClipcompError(f"{annotations}: expected a COCO captions JSON (images, annotations)")
    files = {im["id"]: im["file_name"] for im in obj["images"]}
    seen: dict[int, int] = {}
    pairs = []
    for ann in sorted(obj["annotations"], key=lambda a: (a["image_id"], a["id"])):
        k = seen.get(ann["image_id"], 0)
        if k < per_image and ann["image_id"] in files:
            seen[ann["image_id"]] = k + 1
            pairs.append((resolve(files[ann["image_id"]], image_root), ann["caption"].strip()))
    return build_order(pairs, "aro/coco_order", seed)


def flickr_order(captions_file: str, image_root: str, per_image: int = 1, seed: int = 0) -> SelectionData:
    """Flickr-Order from Flickr30k/8k caption lists: `image.jpg#k<TAB>caption` lines or a CSV with image,
    caption columns."""
    from clipcomp.io import read_table

    pairs: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    if captions_file.endswith((".csv", ".parquet", ".jsonl")):
        t = read_table(captions_file)
        rows = zip(t.column("image").to_pylist(), t.column("caption").to_pylist(), strict=True)
    else:
        with open(captions_file, encoding="utf-8") as f:
            rows = [(ln.split("\t", 1)[0].split("#")[0], ln.split("\t", 1)[1]) for ln in f.read().splitlines()
                    if "\t" in ln]
    for image, cap in rows:
        k = seen.get(image, 0)
        if k < per_image:
            seen[image] = k + 1
            pairs.append((resolve(image, image_root), cap.strip()))
    if not pairs:
        raise ClipcompError(f"{captions_file}: no (image, caption) rows (expected `image.jpg#0<TAB>caption` lines "
                            "or an image, caption table)")
    return build_order(pairs, "aro/flickr_order", seed)


def open_vg_relation(path: str, images: str | None, options: dict, cache: str) -> SelectionData:
    """ARO VG-Relation; the box crops go to the suite's cache directory (never the output directory)."""
    return load_vg(path, images, os.path.join(cache, "crops"), "relation")


def open_vg_attribution(path: str, images: str | None, options: dict, cache: str) -> SelectionData:
    return load_vg(path, images, os.path.join(cache, "crops"), "attribution")


def open_coco_order(path: str, images: str | None, options: dict, cache: str) -> SelectionData:
    from clipcomp.datasets.coco import default_image_root

    return coco_order(path, images or default_image_root(path), int(options.get("per_image", 1)),
                      int(options.get("seed", 0)))


def open_flickr_order(path: str, images: str | None, options: dict, cache: str) -> SelectionData:
    return flickr_order(path, images, int(options.get("per_image", 1)), int(options.get("seed", 0)))
