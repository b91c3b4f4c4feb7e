"""Binding probes on held-out synthetic scenes.

For each scene, the canonical caption names every object with its size and colour, left to right.
  image → text, choose the true caption over one with
    swap_attribute   the colours of two objects swapped          (binding)
    replace_attribute one object's colour replaced by an absent colour
    replace_object   one object's shape replaced by an absent shape
  text → image, choose the true scene over the same scene re-rendered with two objects' colours swapped
    (the two images differ only in which object has which colour).
A choice is correct when the true option scores strictly higher (ties are wrong). `binding_accuracy` is the
image→text attribute-swap accuracy.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from clipcomp.errors import ClipcompError
from clipcomp.synth.captions import full_caption
from clipcomp.synth.negatives import pick, replace_colour, replace_shape, swap_colours
from clipcomp.synth.render import render_scene
from clipcomp.synth.world import COLOUR_RGB, DEFAULT_SHAPES, SHAPES_AVAILABLE, Scene
from clipcomp.tasks.common import TaskResult

PROBES = ("swap_attribute", "replace_attribute", "replace_object", "t2i_swap_attribute")


def build_probes(scenes: list[Scene], seed: int = 0, colours: list[str] | None = None,
                 shapes: list[str] | None = None) -> dict:
    """Captions and negative images for every scene (deterministic for a seed)."""
    rng = np.random.default_rng([seed, 424242])
    colours = colours or list(COLOUR_RGB)
    shapes = shapes or list(DEFAULT_SHAPES)
    out = {k: [] for k in ("true", "swap", "replace_attribute", "replace_object", "pair", "neg_image")}
    for sc in scenes:
        k = len(sc.objects)
        i, j = (int(v) for v in rng.choice(k, size=2, replace=False))
        out["pair"].append((i, j))
        out["true"].append(full_caption(sc))
        swapped = swap_colours(sc, i, j)
        out["swap"].append(full_caption(sc, swapped))
        absent_c = [c for c in colours if c not in {o.colour for o in sc.objects}]
        r = int(rng.integers(k))
        new_colour = pick(rng, absent_c)
        out["replace_attribute"].append(full_caption(sc, replace_colour(sc, r, new_colour)))
        absent_s = [s for s in shapes if s not in {o.shape for o in sc.objects}] or \
            [s for s in SHAPES_AVAILABLE if s not in {o.shape for o in sc.objects}]
        r = int(rng.integers(k))
        new_shape = pick(rng, absent_s)
        out["replace_object"].append(full_caption(sc, replace_shape(sc, r, new_shape)))
        out["neg_image"].append(render_scene(sc.with_objects(swapped)))
    out["neg_image"] = np.stack(out["neg_image"]) if out["neg_image"] else np.zeros((0, 1, 1, 3), np.uint8)
    return out


def evaluate(embedder, scenes: list[Scene], images: np.ndarray, seed: int = 0, colours: list[str] | None = None,
             shapes: list[str] | None = None, name: str = "synth") -> TaskResult:
    """`embedder` needs `.arrays(uint8 images)` and `.texts(list)` returning normalized embeddings."""
    probes = build_probes(scenes, seed, colours, shapes)
    img = embedder.arrays(images)
    neg_img = embedder.arrays(probes["neg_image"])
    t_true = embedder.texts(probes["true"])
    s_true = np.einsum("nd,nd->n", img, t_true)
    correct = {}
    for probe, key in (("swap_attribute", "swap"), ("replace_attribute", "replace_attribute"),
                       ("replace_object", "replace_object")):
        s_neg = np.einsum("nd,nd->n", img, embedder.texts(probes[key]))
        correct[probe] = s_true > s_neg
    correct["t2i_swap_attribute"] = s_true > np.einsum("nd,nd->n", neg_img, t_true)
    n_obj = np.array([len(s.objects) for s in scenes])
    metrics = {f"{p}_acc": float(correct[p].mean()) if correct[p].size else float("nan") for p in PROBES}
    metrics["binding_accuracy"] = metrics["swap_attribute_acc"]
    metrics["by_n_objects"] = {int(k): {p: float(correct[p][n_obj == k].mean()) for p in PROBES}
                               for k in sorted(set(n_obj.tolist()))}
    items = pa.table({
        "scene": np.arange(len(scenes)), "n_objects": n_obj, "caption": probes["true"],
        "swap_caption": probes["swap"], "replace_attribute_caption": probes["replace_attribute"],
        "replace_object_caption": probes["replace_object"],
        **{f"correct_{p}": correct[p] for p in PROBES},
        "correct": correct["swap_attribute"],
    })
    return TaskResult("binding", name, items, metrics)


def evaluate_dataset(embedder, data_dir: str, n_scenes: int = 1000, split: str = "test", seed: int = 0) -> TaskResult:
    """Binding probes on the first `n_scenes` scenes of a synthetic dataset's split, with the world's own
    colours and shapes as replacement vocabularies (the one binding evaluation the CLI and sweeps share)."""
    import os

    from clipcomp.synth.dataset import SynthDataset

    ds = SynthDataset(data_dir, split)
    n = min(n_scenes, len(ds))
    world = ds.meta["settings"]["world"]
    return evaluate(embedder, ds.scenes()[:n], ds.images(np.arange(n)), seed=seed, colours=world["colours"],
                    shapes=world["shapes"], name=os.path.basename(os.path.normpath(data_dir)))


def open_suite(path: str, images: str | None, options: dict, cache: str) -> str:
    """A synthetic dataset directory is read by the probe itself."""
    return path


def run_suite(embedder, data_dir: str, options: dict) -> TaskResult:
    """Options: scenes (default 1000), split (test), seed (0: the probe choices)."""
    scenes = int(options.get("scenes", 1000))
    if scenes < 1:
        raise ClipcompError(f"--scenes must be ≥ 1 (got {scenes})")
    return evaluate_dataset(embedder, data_dir, scenes, str(options.get("split", "test")), int(options.get("seed", 0)))


def columns(suite: str, metrics: dict) -> dict[str, float]:
    keys = ("binding_accuracy", "replace_attribute_acc", "replace_object_acc", "t2i_swap_attribute_acc")
    return {f"{suite}/{k}": metrics[k] for k in keys if k in metrics}
