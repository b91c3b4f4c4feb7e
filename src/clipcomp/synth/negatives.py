"""The synthetic world's negatives, in one place: the perturbations of a scene (swap two objects' colours,
replace a colour, replace a shape), the seeded choice of a replacement word, and the NegCLIP-style hard
negative of a training caption. The lab's training data (`synth.dataset`) and the binding probes
(`tasks.binding`) both build on these, so a "swap" means the same thing in training and in evaluation."""

from __future__ import annotations

import numpy as np

from clipcomp.synth.captions import join, phrase
from clipcomp.synth.world import DEFAULT_COLOURS, DEFAULT_SHAPES, Obj, Scene


def pick(rng: np.random.Generator, words: list[str]) -> str:
    """One word, uniformly, with one draw from `rng` (the draw every negative of the world uses)."""
    return words[int(rng.integers(len(words)))]


def swap_colours(scene: Scene, i: int, j: int) -> list[Obj]:
    objs = list(scene.objects)
    a, b = objs[i], objs[j]
    objs[i] = Obj(a.shape, b.colour, a.size, a.x, a.y, a.extent)
    objs[j] = Obj(b.shape, a.colour, b.size, b.x, b.y, b.extent)
    return objs


def replace_colour(scene: Scene, i: int, colour: str) -> list[Obj]:
    objs = list(scene.objects)
    a = objs[i]
    objs[i] = Obj(a.shape, colour, a.size, a.x, a.y, a.extent)
    return objs


def replace_shape(scene: Scene, i: int, shape: str) -> list[Obj]:
    objs = list(scene.objects)
    a = objs[i]
    objs[i] = Obj(shape, a.colour, a.size, a.x, a.y, a.extent)
    return objs


def hard_negative(scene: Scene, mentioned: list[int], attrs: list[list[str]], rng: np.random.Generator,
                  template_caption: str, objects_text: str, colours: list[str] | None = None,
                  shapes: list[str] | None = None) -> tuple[str, str]:
    """NegCLIP-style negative of a training caption: swap the colours of two mentioned objects when the caption
    names two colours, else replace a named colour, else replace a shape. Replacements come from the world's own
    vocabularies (`colours`, `shapes`): preferably a word absent from the scene, else any other word of the world,
    so a negative never names a colour or shape that no positive caption can use."""
    colours = list(colours) if colours else list(DEFAULT_COLOURS)
    shapes = list(shapes) if shapes else list(DEFAULT_SHAPES)
    coloured = [m for m, a in zip(mentioned, attrs, strict=True) if "colour" in a]
    objs = list(scene.objects)
    kind = "swap_colour"
    if len(coloured) >= 2:
        i, j = (int(v) for v in rng.choice(coloured, size=2, replace=False))
        objs = swap_colours(scene, i, j)
    elif coloured:
        kind = "replace_colour"
        i = coloured[0]
        absent = [c for c in colours if c not in {o.colour for o in scene.objects}] or \
            [c for c in colours if c != scene.objects[i].colour]
        objs = replace_colour(scene, i, pick(rng, absent))
    else:
        kind = "replace_shape"
        absent = [s for s in shapes if s not in {o.shape for o in scene.objects}] or \
            [s for s in shapes if s != scene.objects[mentioned[0]].shape]
        objs = replace_shape(scene, mentioned[0], pick(rng, absent))
    neg_objects = join([phrase(objs[m], a) for m, a in zip(mentioned, attrs, strict=True)])
    return template_caption.replace(objects_text, neg_objects), kind
