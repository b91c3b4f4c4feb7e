"""Pasted-object edits (Qu & Xie's ImageNet-Paste, generalized): cut objects out of real images with their
masks (COCO polygons) or take RGBA concept images, and paste them onto natural images at a given fraction of
the image area and a seeded position, keeping the base image's label.

The pasted patch keeps the object's aspect ratio; its bounding box covers `area_fraction` of the base image
(default 1/10). Positions are `random` (uniform, seeded) or `grid` (the centres of a 3×3 grid, cycled). Every
edit records the source object, so the objects used for evaluation and those used for training augmentation
can be kept disjoint (`split_sources`, `check_disjoint`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from PIL import Image, ImageDraw

from clipcomp.errors import ClipcompError
from clipcomp.io import write_parquet


@dataclass(frozen=True)
class SourceObject:
    """An object to paste: a region of an image with a polygon mask, or a whole RGBA image."""

    source_id: str
    concept: str
    image: str
    polygons: tuple[tuple[float, ...], ...] = ()  # COCO [x1, y1, x2, y2, ...] lists; empty: use the alpha
    bbox: tuple[float, float, float, float] | None = None  # x, y, w, h


def coco_objects(instances_json: str, image_root: str, min_area: float = 1024.0,
                 categories: list[str] | None = None) -> list[SourceObject]:
    """Polygon-annotated COCO objects (crowd/RLE annotations skipped), largest first per image."""
    from clipcomp.io import read_json

    obj = read_json(instances_json, "COCO instances JSON")
    if not isinstance(obj, dict) or "categories" not in obj or "annotations" not in obj:
        raise ClipcompError(f"{instances_json}: expected COCO instances JSON (categories, annotations)")
    cats = {c["id"]: c["name"] for c in obj["categories"]}
    files = {im["id"]: im["file_name"] for im in obj["images"]}
    out = []
    for a in obj["annotations"]:
        if a.get("iscrowd") or not isinstance(a.get("segmentation"), list) or a.get("area", 0) < min_area:
            continue
        name = cats[a["category_id"]]
        if categories and name not in categories:
            continue
        polys = tuple(tuple(float(v) for v in p) for p in a["segmentation"] if len(p) >= 6)
        if not polys:
            continue
        out.append(SourceObject(f"coco:{a['id']}", name, os.path.join(image_root, files[a["image_id"]]), polys,
                                tuple(float(v) for v in a["bbox"])))
    return sorted(out, key=lambda s: s.source_id)


def rgba_objects(root: str) -> list[SourceObject]:
    """RGBA concept images laid out as ROOT/<concept>/<image>.png (the concept is the folder name)."""
    if not os.path.isdir(root):
        raise ClipcompError(f"{root}: folder of RGBA concept images not found")
    out = []
    for concept in sorted(os.listdir(root)):
        folder = os.path.join(root, concept)
        if not os.path.isdir(folder) or concept.startswith("."):
            continue
        for fn in sorted(os.listdir(folder)):
            if fn.lower().endswith((".png", ".webp", ".tif", ".tiff")):
                path = os.path.join(folder, fn)
                out.append(SourceObject(f"rgba:{concept}/{fn}", concept.replace("_", " "), path))
    if not out:
        raise ClipcompError(f"{root}: no RGBA images (expected ROOT/<concept>/<image>.png)")
    return out


def polygon_mask(size: tuple[int, int], polygons) -> np.ndarray:
    """Boolean H×W mask of COCO polygons (even-odd union of the parts)."""
    m = Image.new("L", size, 0)
    d = ImageDraw.Draw(m)
    for p in polygons:
        d.polygon(list(zip(p[0::2], p[1::2], strict=True)), fill=255)
    return np.asarray(m) > 0


def cut_out(src: SourceObject) -> Image.Image:
    """The object as an RGBA image cropped to its mask's bounding box."""
    try:
        img = Image.open(src.image)
        img.load()
    except OSError as exc:
        raise ClipcompError(f"{src.image}: cannot read image ({exc})") from None
    if not src.polygons:
        rgba = img.convert("RGBA")
        box = rgba.getchannel("A").getbbox()
        if box is None:
            raise ClipcompError(f"{src.image}: RGBA concept image is fully transparent")
        return rgba.crop(box)
    rgb = img.convert("RGB")
    mask = polygon_mask(rgb.size, src.polygons)
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        raise ClipcompError(f"{src.source_id}: empty mask")
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    rgba = rgb.crop(box).convert("RGBA")
    rgba.putalpha(Image.fromarray((mask[box[1]:box[3], box[0]:box[2]] * 255).astype(np.uint8)))
    return rgba


def place(base_size: tuple[int, int], patch_size: tuple[int, int], area_fraction: float, position: str,
          rng: np.random.Generator, index: int = 0) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the resized patch: w·h ≈ area_fraction·W·H, aspect kept, inside the image."""
    if not 0 < area_fraction < 1:
        raise ClipcompError(f"area_fraction must be in (0, 1) (got {area_fraction})")
    bw, bh = base_size
    pw, ph = patch_size
    scale = math.sqrt(area_fraction * bw * bh / (pw * ph))
    w, h = max(1, round(pw * scale)), max(1, round(ph * scale))
    if w > bw or h > bh:  # a very elongated object: shrink to fit, keeping the aspect ratio
        f = min(bw / w, bh / h)
        w, h = max(1, int(w * f)), max(1, int(h * f))
    if position == "random":
        x = int(rng.integers(0, bw - w + 1))
        y = int(rng.integers(0, bh - h + 1))
    elif position == "grid":
        gx, gy = index % 3, (index // 3) % 3
        x = min(max(0, round((gx + 0.5) * bw / 3 - w / 2)), bw - w)
        y = min(max(0, round((gy + 0.5) * bh / 3 - h / 2)), bh - h)
    else:
        raise ClipcompError(f"unknown position {position!r} (expected random or grid)")
    return x, y, w, h


def paste(base: Image.Image, patch: Image.Image, box: tuple[int, int, int, int],
          resample: int = Image.BILINEAR) -> tuple[Image.Image, np.ndarray]:
    """Paste the RGBA patch resized to box; returns the edited RGB image and the pasted mask (H×W bool).
    Bilinear suits photos; flat-colour renderings use NEAREST so every pasted pixel keeps its exact colour."""
    x, y, w, h = box
    resized = patch.resize((w, h), resample)
    alpha = (np.asarray(resized.getchannel("A")) >= 128)
    hard = Image.fromarray((alpha * 255).astype(np.uint8))
    out = base.convert("RGB").copy()
    out.paste(resized.convert("RGB"), (x, y), hard)
    mask = np.zeros((base.height, base.width), bool)
    mask[y:y + h, x:x + w] = alpha
    return out, mask


def split_sources(sources: list[SourceObject], eval_fraction: float = 0.5, seed: int = 0
                  ) -> tuple[list[SourceObject], list[SourceObject]]:
    """Disjoint (eval, train) sets of source objects, split by source *image* so no photo is in both."""
    images = sorted({s.image for s in sources})
    rng = np.random.default_rng([seed, 7])
    chosen = set(rng.choice(len(images), size=int(round(eval_fraction * len(images))), replace=False).tolist())
    ev = {images[i] for i in chosen}
    return [s for s in sources if s.image in ev], [s for s in sources if s.image not in ev]


def check_disjoint(eval_manifest: pa.Table, train_manifest: pa.Table) -> None:
    a = set(eval_manifest.column("source_image").to_pylist())
    b = set(train_manifest.column("source_image").to_pylist())
    if a & b:
        raise ClipcompError(f"{len(a & b)} concept image(s) are used both for evaluation and for training "
                            f"augmentation, e.g. {sorted(a & b)[0]}")


def build(bases: list[tuple[str, str]], sources: list[SourceObject], out_dir: str, area_fraction: float = 0.1,
          position: str = "random", per_base: int = 1, seed: int = 0, stats=None,
          exclude_images: set[str] | None = None) -> pa.Table:
    """Edit every base image (path, label) with `per_base` seeded source objects; write images + manifest."""
    if exclude_images:
        sources = [s for s in sources if s.image not in exclude_images]
    if not sources:
        raise ClipcompError("no source objects to paste (all excluded?)")
    os.makedirs(os.path.join(out_dir, "images"), exist_ok=True)
    rng = np.random.default_rng([seed, 11])
    rows: dict[str, list] = {k: [] for k in ("path", "label", "concept", "base_image", "source_id", "source_image",
                                             "x", "y", "w", "h", "area_fraction", "mask_fraction", "pmi")}
    cache: dict[str, Image.Image] = {}
    n = 0
    for base_path, label in bases:
        try:
            base = Image.open(base_path).convert("RGB")
        except OSError as exc:
            raise ClipcompError(f"{base_path}: cannot read base image ({exc})") from None
        for _ in range(per_base):
            src = sources[int(rng.integers(len(sources)))]
            if src.source_id not in cache:
                cache[src.source_id] = cut_out(src)
            patch = cache[src.source_id]
            box = place(base.size, patch.size, area_fraction, position, rng, n)
            edited, mask = paste(base, patch, box)
            name = f"{n:06d}_{os.path.splitext(os.path.basename(base_path))[0]}.png"
            edited.save(os.path.join(out_dir, "images", name))
            pmi = None  # no statistics, or label/concept not among their concepts
            if stats is not None and label in stats and src.concept in stats:
                pmi = stats.pmi(label, src.concept)
            W, H = base.size
            for k, v in (("path", os.path.join("images", name)), ("label", label), ("concept", src.concept),
                         ("base_image", base_path), ("source_id", src.source_id), ("source_image", src.image),
                         ("x", box[0]), ("y", box[1]), ("w", box[2]), ("h", box[3]),
                         ("area_fraction", box[2] * box[3] / (W * H)), ("mask_fraction", float(mask.mean())),
                         ("pmi", pmi)):
                rows[k].append(v)
            n += 1
    table = pa.table({k: pa.array(v, pa.float64()) if k == "pmi" else v for k, v in rows.items()})

    write_parquet(table, os.path.join(out_dir, "manifest.parquet"))
    return table


def build_paste_benchmark(bases: str, out: str, coco: str | None = None, coco_images: str | None = None,
                          rgba: str | None = None, area_fraction: float = 0.1, position: str = "random",
                          per_base: int = 1, min_area: float = 1024.0, eval_fraction: float = 0.5,
                          train_out: str | None = None, stats: str | None = None, seed: int = 0,
                          force: bool = False) -> dict:
    """Pasted-object edits of natural images (a class-folder tree or a path,label manifest): objects from COCO
    polygons or RGBA folders; with `train_out`, augmentation edits from disjoint source objects."""
    from clipcomp.datasets.classification import load_image_folder, load_manifest
    from clipcomp.io import prepare_output
    from clipcomp.stats import ConceptStats

    data = load_image_folder(bases) if os.path.isdir(bases) else load_manifest(bases)
    base_list = [(p, data.classnames[int(label)]) for p, label in zip(data.paths, data.labels, strict=True)]
    if (coco is None) == (rgba is None):
        raise ClipcompError("give the objects to paste: --coco JSON --coco-images DIR, or --rgba DIR")
    if coco:
        if not coco_images:
            raise ClipcompError("--coco needs --coco-images (the folder of its images)")
        sources = coco_objects(coco, coco_images, min_area=min_area)
    else:
        sources = rgba_objects(rgba)
    if not sources:
        raise ClipcompError("no objects to paste were found")
    if not 0 < area_fraction < 1:
        raise ClipcompError(f"--area-fraction must be in (0, 1) (got {area_fraction})")
    if train_out and not 0 < eval_fraction < 1:
        raise ClipcompError(f"--eval-fraction must be in (0, 1) (got {eval_fraction})")
    st = ConceptStats.load(stats) if stats else None
    settings = {"bases": os.path.abspath(bases), "coco": coco, "rgba": rgba, "area_fraction": area_fraction,
                "position": position, "per_base": per_base, "min_area": min_area, "eval_fraction": eval_fraction,
                "stats": stats, "seed": seed, "train_out": train_out}
    prepare_output(out, "bench paste", settings, force=force, markers=("manifest.parquet",))
    ev, tr = split_sources(sources, eval_fraction, seed) if train_out else (sources, [])
    table = build(base_list, ev, out, area_fraction, position, per_base, seed, st)
    res = {"n_edits": table.num_rows, "n_sources": len(ev), "out": out}
    if train_out:
        if not tr:
            raise ClipcompError("no source objects left for augmentation; lower --eval-fraction")
        prepare_output(train_out, "bench paste (augmentation)", settings, force=force, markers=("manifest.parquet",))
        ttable = build(base_list, tr, train_out, area_fraction, position, per_base, seed + 1, st)
        check_disjoint(table, ttable)
        res.update({"n_train_edits": ttable.num_rows, "n_train_sources": len(tr), "train_out": train_out})
    return res
