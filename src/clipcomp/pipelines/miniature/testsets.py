"""The miniature world's two benchmarks and the paste-augmentation training set.

* `pairs`: GenPairs in miniature — freshly drawn two-object scenes, one class shape and one partner shape, the
  same number for every (class, partner) pair, so the test set spans the whole PMI range, unseen pairs included.
* `paste`: ImageNet-Paste in miniature — a scene with the class shape alone, and a partner shape cut out of its
  own rendering (by its exact mask) pasted at a fixed area fraction of the image, away from the class object.
* `paste_training_set`: the fix of Qu & Xie — class scenes with a *random* partner pasted and a caption naming
  the class object only, so the pasted object stops predicting the class.

Concept images used for evaluation and for augmentation never coincide: they are drawn from disjoint colour
sets (a rendered shape is fully determined by shape, colour and size), and the manifests record each source.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from clipcomp.benchgen.paste import paste, place
from clipcomp.errors import ClipcompError
from clipcomp.io import atomic_output, atomic_write_json, write_parquet
from clipcomp.synth.captions import CaptionKnobs, caption_scene, full_caption
from clipcomp.synth.render import render_scene
from clipcomp.synth.world import BACKGROUND, Obj, WorldConfig, sample_scene


def _single(shape: str, base: WorldConfig, colours: list[str] | None = None) -> WorldConfig:
    return WorldConfig(shapes=[shape], colours=list(colours or base.colours), sizes=list(base.sizes),
                       min_objects=1, max_objects=1, resolution=base.resolution)


def _pair(a: str, b: str, base: WorldConfig) -> WorldConfig:
    return WorldConfig(shapes=[a, b], colours=list(base.colours), sizes=list(base.sizes), min_objects=2,
                       max_objects=2, resolution=base.resolution)


def source_colours(colours: list[str], purpose: str) -> list[str]:
    """Colours of pasted concept images: even positions for evaluation, odd ones for training augmentation."""
    if len(colours) < 2:
        raise ClipcompError("paste sources need at least 2 colours (evaluation and augmentation use disjoint ones)")
    return list(colours[0::2] if purpose == "eval" else colours[1::2])


def save_set(out_dir: str, images: np.ndarray, rows: dict[str, list], meta: dict) -> pa.Table:
    os.makedirs(out_dir, exist_ok=True)
    with atomic_output(os.path.join(out_dir, "images.npy")) as tmp:
        np.save(tmp, images)
    table = pa.table(rows)
    with atomic_output(os.path.join(out_dir, "manifest.parquet")) as tmp:
        pq.write_table(table, tmp)
    atomic_write_json(os.path.join(out_dir, "meta.json"), meta)
    return table


def load_set(out_dir: str) -> tuple[np.ndarray, pa.Table]:
    path = os.path.join(out_dir, "manifest.parquet")
    if not os.path.exists(path):
        raise ClipcompError(f"{out_dir}: no test set here (manifest.parquet missing)")
    return np.load(os.path.join(out_dir, "images.npy")), pq.read_table(path)


def pairs(classes: list[str], partners: list[str], base: WorldConfig, per_pair: int, seed: int
          ) -> tuple[np.ndarray, dict[str, list]]:
    """`per_pair` two-object scenes for every (class, partner); each pair from its own seeded stream."""
    res = base.resolution
    images = np.empty((len(classes) * len(partners) * per_pair, res, res, 3), np.uint8)
    rows: dict[str, list] = {k: [] for k in ("class", "partner", "label", "caption", "class_size", "partner_size",
                                             "class_colour", "partner_colour")}
    n = 0
    for ci, c in enumerate(classes):
        for pi, p in enumerate(partners):
            cfg = _pair(c, p, base)
            rng = np.random.default_rng([seed, 101, ci, pi])
            for _ in range(per_pair):
                scene = sample_scene(cfg, rng)
                images[n] = render_scene(scene)
                oc = next(o for o in scene.objects if o.shape == c)
                op = next(o for o in scene.objects if o.shape == p)
                for k, v in (("class", c), ("partner", p), ("label", ci), ("caption", full_caption(scene)),
                             ("class_size", oc.size), ("partner_size", op.size), ("class_colour", oc.colour),
                             ("partner_colour", op.colour)):
                    rows[k].append(v)
                n += 1
    return images, rows


def concept_patch(shape: str, base: WorldConfig, colours: list[str], rng: np.random.Generator
                  ) -> tuple[Image.Image, Obj]:
    """A partner shape rendered alone, cut out by its exact mask (RGBA, cropped to the mask's box)."""
    scene = sample_scene(_single(shape, base, colours), rng)
    img = render_scene(scene)
    mask = (img != np.array(BACKGROUND, np.uint8)).any(axis=-1)
    ys, xs = np.nonzero(mask)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    rgba = np.dstack([img, (mask * 255).astype(np.uint8)])[box[1]:box[3], box[0]:box[2]]
    return Image.fromarray(rgba, "RGBA"), scene.objects[0]


def _paste_away(base_img: Image.Image, obj: Obj, patch: Image.Image, area_fraction: float,
                rng: np.random.Generator, tries: int = 50) -> tuple[Image.Image, np.ndarray, tuple, int]:
    """Paste at a seeded random position; the first of `tries` that does not touch the class object (else the
    one overlapping it least). Returns the image, the pasted mask, the box and the overlapped pixels."""
    cls = np.zeros((base_img.height, base_img.width), bool)
    cls[obj.y:obj.y + obj.extent, obj.x:obj.x + obj.extent] = True
    best = None
    for _ in range(tries):
        box = place(base_img.size, patch.size, area_fraction, "random", rng)
        x, y, w, h = box
        overlap = int(cls[y:y + h, x:x + w].sum())
        if best is None or overlap < best[1]:
            best = (box, overlap)
        if overlap == 0:
            break
    edited, mask = paste(base_img, patch, best[0], resample=Image.NEAREST)
    return edited, mask, best[0], best[1]


def pasted(classes: list[str], partners: list[str], base: WorldConfig, per_pair: int, area_fraction: float,
           seed: int) -> tuple[np.ndarray, dict[str, list]]:
    """`per_pair` class scenes with the partner pasted, for every (class, partner)."""
    res = base.resolution
    colours = source_colours(base.colours, "eval")
    images = np.empty((len(classes) * len(partners) * per_pair, res, res, 3), np.uint8)
    rows: dict[str, list] = {k: [] for k in ("class", "partner", "label", "class_size", "class_colour",
                                             "source_image", "x", "y", "w", "h", "area_fraction", "mask_fraction",
                                             "overlap_pixels")}
    n = 0
    for ci, c in enumerate(classes):
        for pi, p in enumerate(partners):
            rng = np.random.default_rng([seed, 202, ci, pi])
            for _ in range(per_pair):
                scene = sample_scene(_single(c, base), rng)
                base_img = Image.fromarray(render_scene(scene))
                patch, src = concept_patch(p, base, colours, rng)
                edited, mask, box, overlap = _paste_away(base_img, scene.objects[0], patch, area_fraction, rng)
                images[n] = np.asarray(edited)
                for k, v in (("class", c), ("partner", p), ("label", ci), ("class_size", scene.objects[0].size),
                             ("class_colour", scene.objects[0].colour),
                             ("source_image", f"{p}/{src.colour}/{src.size}"), ("x", box[0]), ("y", box[1]),
                             ("w", box[2]), ("h", box[3]), ("area_fraction", box[2] * box[3] / res**2),
                             ("mask_fraction", float(mask.mean())), ("overlap_pixels", overlap)):
                    rows[k].append(v)
                n += 1
    return images, rows


def paste_training_set(out: str, classes: list[str], partners: list[str], base: WorldConfig, knobs: CaptionKnobs,
                       n: int, area_fraction: float, seed: int) -> dict:
    """A trainable synthetic dataset (the `clipcomp train` format) of class scenes with a uniformly random
    partner pasted and captions that name the class object only."""
    from clipcomp.synth.dataset import manifest_schema

    meta_path = os.path.join(out, "meta.json")
    settings = {"version": 2, "world": {**base.__dict__, "shapes": list(classes) + list(partners)},
                "purpose": "paste augmentation",
                "classes": list(classes), "partners": list(partners), "n": n, "area_fraction": area_fraction,
                "seed": seed, "captions": knobs.__dict__}
    if os.path.exists(meta_path):
        with open(meta_path, encoding="utf-8") as f:
            old = json.load(f)
        if old.get("settings") == json.loads(json.dumps(settings)):
            return old
        raise ClipcompError(f"{out}: holds a paste-augmentation set with other settings; use another out")
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    colours = source_colours(base.colours, "train")
    rng = np.random.default_rng([seed, 303])
    res = base.resolution
    images = np.empty((n, res, res, 3), np.uint8)
    rows: dict[str, list] = {k: [] for k in manifest_schema().names}
    sources = []
    shard = "images/train-00000.npy"
    for i in range(n):
        c = classes[int(rng.integers(len(classes)))]
        p = partners[int(rng.integers(len(partners)))]
        scene = sample_scene(_single(c, base), rng)
        patch, src = concept_patch(p, base, colours, rng)
        edited, _, box, _ = _paste_away(Image.fromarray(render_scene(scene)), scene.objects[0], patch,
                                        area_fraction, rng)
        images[i] = np.asarray(edited)
        truth = caption_scene(scene, knobs, rng)  # the class object only: the pasted partner is not named
        pasted_obj = Obj(p, src.colour, src.size, box[0], box[1], max(box[2], box[3]))
        sources.append(f"{p}/{src.colour}/{src.size}")
        for k, v in (("image", f"{shard}#{i}"), ("shard", shard), ("index", i), ("split", "train"),
                     ("caption", truth.caption), ("full_caption", truth.caption), ("negative_caption", truth.caption),
                     ("negative_kind", "none"), ("objects", [scene.objects[0].as_dict(), pasted_obj.as_dict()]),
                     ("n_objects", 2), ("mentioned", [0]), ("mentioned_attributes", truth.attributes),
                     ("anchor", 0), ("style", "flat")):
            rows[k].append(v)
    with atomic_output(os.path.join(out, shard)) as tmp:
        np.save(tmp, images)
    table = pa.table(rows).cast(manifest_schema()).append_column("source_image", pa.array(sources))
    write_parquet(table, os.path.join(out, "manifest.parquet"))
    meta = {"settings": json.loads(json.dumps(settings)), "n_train": n, "n_test": 0, "n_shards": 1}
    atomic_write_json(meta_path, meta)
    return meta


