"""Captions with the data knobs of Gurung et al. (2025), and the binding-probe captions.

Knobs (all probabilities, seeded):
  attribute_density  each attribute (colour, size) of a mentioned object is named with this probability
  completeness       each object other than the anchor is mentioned with this probability
  saliency_bias      the anchor (always mentioned) is a largest object with this probability, otherwise one
                     of the smaller objects (any object when all are equally large)
  order_shuffle      mentioned objects are listed in random order with this probability, else left to right
  relations          with this probability (two or more mentioned objects) the first two are joined by their
                     spatial relation ("a red circle to the left of a blue square", "… above …"), the relation of
                     the axis on which they are further apart, either object named first (so each relation word
                     is as frequent as its opposite); default 0 (the lab's documented captions)
  templates          sentence frames with `{objects}`, picked uniformly
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from clipcomp.config import typed
from clipcomp.errors import ClipcompError
from clipcomp.synth.world import SIZE_FRACTION, Obj, Scene

DEFAULT_TEMPLATES = ("{objects}", "a picture of {objects}", "an image with {objects}",
                     "{objects} on a dark background")
ATTRIBUTES = ("size", "colour")


@typed
class CaptionKnobs:
    attribute_density: float = 1.0
    completeness: float = 1.0
    saliency_bias: float = 0.0
    order_shuffle: float = 0.5
    relations: float = 0.0
    templates: list[str] = field(default_factory=lambda: list(DEFAULT_TEMPLATES))

    def validate(self, where: str = "captions") -> None:
        for name in ("attribute_density", "completeness", "saliency_bias", "order_shuffle", "relations"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ClipcompError(f"{where}.{name}: {v!r} is not a probability in [0, 1]")
        if not self.templates:
            raise ClipcompError(f"{where}.templates: at least one template")
        for t in self.templates:
            if t.count("{objects}") != 1:
                raise ClipcompError(f"{where}.templates: {t!r} must contain {{objects}} exactly once")


@dataclass
class CaptionTruth:
    caption: str
    mentioned: list[int]  # indices into scene.objects, in caption order
    attributes: list[list[str]]  # per mentioned object, the attributes named
    anchor: int


def article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def phrase(obj: Obj, attrs: list[str] | tuple[str, ...] = ATTRIBUTES) -> str:
    words = [obj.size] if "size" in attrs else []
    if "colour" in attrs:
        words.append(obj.colour)
    words.append(obj.shape)
    return f"{article(words[0])} {' '.join(words)}"


def join(phrases: list[str]) -> str:
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _largest(scene: Scene) -> list[int]:
    fr = [SIZE_FRACTION[o.size] for o in scene.objects]
    top = max(fr)
    return [i for i, f in enumerate(fr) if f == top]


def caption_scene(scene: Scene, knobs: CaptionKnobs, rng: np.random.Generator) -> CaptionTruth:
    k = len(scene.objects)
    largest = _largest(scene)
    others = [i for i in range(k) if i not in largest]
    pool = others if others and rng.random() >= knobs.saliency_bias else largest
    anchor = int(rng.choice(pool))
    mentioned = [anchor] + [i for i in range(k) if i != anchor and rng.random() < knobs.completeness]
    if rng.random() < knobs.order_shuffle:
        mentioned = [mentioned[i] for i in rng.permutation(len(mentioned))]
    else:
        mentioned = sorted(mentioned, key=lambda i: (scene.objects[i].x, scene.objects[i].y))
    attrs = [[a for a in ATTRIBUTES if rng.random() < knobs.attribute_density] for _ in mentioned]
    phrases = [phrase(scene.objects[i], a) for i, a in zip(mentioned, attrs, strict=True)]
    # the draw happens only when the knob is on, so relations = 0 leaves every other caption as it was
    if knobs.relations > 0 and len(mentioned) >= 2 and rng.random() < knobs.relations:
        a, b = (0, 1) if rng.random() < 0.5 else (1, 0)  # either object first: "left of" as often as "right of"
        rel = relation(scene.objects[mentioned[a]], scene.objects[mentioned[b]])
        first = f"{phrases[a]} {rel} {phrases[b]}"
        objects = first if len(phrases) == 2 else f"{first} and " + join(phrases[2:])
    else:
        objects = join(phrases)
    template = knobs.templates[int(rng.integers(len(knobs.templates)))]
    return CaptionTruth(template.format(objects=objects), mentioned, attrs, anchor)


RELATIONS = ("to the left of", "to the right of", "above", "below")


def relation(a: Obj, b: Obj) -> str:
    """Where `a` is relative to `b`, on the axis along which their centres are further apart (image y grows
    downwards)."""
    dx, dy = a.cx - b.cx, a.cy - b.cy
    if abs(dx) >= abs(dy):
        return "to the left of" if dx < 0 else "to the right of"
    return "above" if dy < 0 else "below"


# ------------------------------------------------------------------------------------------ probes
def left_to_right(scene: Scene) -> list[int]:
    return sorted(range(len(scene.objects)), key=lambda i: (scene.objects[i].x, scene.objects[i].y))


def full_caption(scene: Scene, objects: list[Obj] | None = None) -> str:
    """Every object with every attribute, left to right: the canonical probe caption."""
    objs = list(objects if objects is not None else scene.objects)
    return join([phrase(objs[i]) for i in left_to_right(scene)])


